//! The app: owns the view model and the bridge; each frame it drains node
//! events and answers into the model (`logic`), draws the model and turns
//! the user's actions into requests (`ui`). Nothing here waits.

use std::time::{Duration, Instant};

use node::NodeConfig;
use node::api::{Event, HistoryPage, NodeError, Request, Response};

use crate::actions::Action;
use crate::bridge::{IdentityState, Inbound, Lifecycle, NodeBridge, Pending, StartRequest};
use crate::model::{Dialog, Model, PendingSend, Phase, Selection, Settings};
use crate::ui;

/// Messages per history page.
pub const PAGE: u32 = 50;
/// How often diagnostics refresh while open.
const STATUS_REFRESH: Duration = Duration::from_secs(1);
/// eframe storage key of the settings.
pub const SETTINGS_KEY: &str = "palaver.settings";
/// eframe storage key of the last selection.
const SELECTION_KEY: &str = "palaver.selection";

/// What an answer is for.
#[derive(Clone, Debug)]
enum Purpose {
    Identity,
    Servers,
    Detail(String),
    Dms,
    History {
        key: Selection,
    },
    Send {
        key: Selection,
        txn: String,
    },
    CreateServer,
    CreateChannel,
    Invite,
    Join,
    Discover,
    Status,
    /// Any other request: show an error toast if it fails.
    Other(&'static str),
}

/// How the app starts (tests use the memory transport and a temp dir).
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// The node's configuration.
    pub node: NodeConfig,
    /// When the process started (the first frame's time is logged from it).
    pub launched: Instant,
}

/// The Palaver desktop app.
pub struct PalaverApp {
    /// The view model.
    pub model: Model,
    bridge: NodeBridge,
    pending: Vec<(Purpose, Pending)>,
    last_status: Option<Instant>,
    restored_selection: Option<Selection>,
    launched: Instant,
    first_frame: bool,
    /// When the node was asked to start (its start-up time is logged).
    starting_since: Option<Instant>,
}

impl PalaverApp {
    /// Creates the app; `repaint` wakes the UI from the node's thread.
    pub fn new(
        config: AppConfig,
        settings: Settings,
        restored_selection: Option<Selection>,
        repaint: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        let data_dir = config.node.data_dir.clone();
        let launched = config.launched;
        let phase = match crate::bridge::identity_state(&data_dir) {
            IdentityState::Missing => Phase::Onboarding,
            IdentityState::Present { .. } => Phase::Unlock,
        };
        let keyring_available = phase == Phase::Onboarding && crate::bridge::keyring_available();
        let bridge = NodeBridge::new(config.node, repaint);
        let mut model = Model::new(
            phase,
            data_dir.display().to_string(),
            settings,
            keyring_available,
        );
        model.identity_form.display_name = model.settings.display_name.clone();
        let mut app = Self {
            model,
            bridge,
            pending: Vec::new(),
            last_status: None,
            restored_selection,
            launched,
            first_frame: false,
            starting_since: None,
        };
        // An identity kept in the OS keyring needs no passphrase.
        if matches!(
            crate::bridge::identity_state(std::path::Path::new(&app.model.data_dir)),
            IdentityState::Present { keyring: true }
        ) {
            app.model.phase = Phase::Starting;
            app.starting_since = Some(Instant::now());
            app.bridge.start(StartRequest::Unlock { passphrase: None });
        }
        app
    }

    /// Creates the app inside eframe (storage restores settings and the
    /// last selection).
    pub fn from_eframe(cc: &eframe::CreationContext<'_>, config: AppConfig) -> Self {
        let settings = cc
            .storage
            .and_then(|storage| eframe::get_value::<Settings>(storage, SETTINGS_KEY))
            .unwrap_or_default();
        let selection = cc
            .storage
            .and_then(|storage| eframe::get_value::<(String, String)>(storage, SELECTION_KEY))
            .map(|(server, channel)| Selection::Channel { server, channel });
        let ctx = cc.egui_ctx.clone();
        Self::new(config, settings, selection, move || ctx.request_repaint())
    }

    fn request(&mut self, purpose: Purpose, request: Request) {
        match self.bridge.request(request) {
            Ok(pending) => self.pending.push((purpose, pending)),
            Err(err) => self.on_error(&purpose, err),
        }
    }

    /// Drains events and answers into the model. Call once per frame.
    pub fn process(&mut self) {
        for inbound in self.bridge.drain() {
            match inbound {
                Inbound::Lifecycle(Lifecycle::Ready(_)) => {
                    if let Some(since) = self.starting_since.take() {
                        tracing::info!(
                            elapsed_ms = since.elapsed().as_millis() as u64,
                            "node started (identity unlocked, ledger open, overlay listening)"
                        );
                    }
                    self.model.phase = Phase::Ready;
                    self.model.identity_form = Default::default();
                    self.request(Purpose::Identity, Request::Identity);
                    self.request(Purpose::Servers, Request::ListServers);
                    self.request(Purpose::Dms, Request::DmList);
                }
                Inbound::Lifecycle(Lifecycle::Failed(err)) => {
                    self.model.phase = if crate::bridge::identity_state(std::path::Path::new(
                        &self.model.data_dir,
                    )) == IdentityState::Missing
                    {
                        Phase::Onboarding
                    } else {
                        Phase::Unlock
                    };
                    self.model.identity_form.error = Some(err.message);
                }
                Inbound::Event(event) => self.on_event(event),
            }
        }
        let mut answered = Vec::new();
        let mut index = 0;
        while index < self.pending.len() {
            if let Some(answer) = self.pending[index].1.poll() {
                let (purpose, _) = self.pending.swap_remove(index);
                answered.push((purpose, answer));
            } else {
                index += 1;
            }
        }
        for (purpose, answer) in answered {
            match answer {
                Ok(response) => self.on_response(purpose, response),
                Err(err) => self.on_error(&purpose, err),
            }
        }
        if matches!(self.model.dialog, Some(Dialog::Diagnostics))
            && self.model.phase == Phase::Ready
            && self
                .last_status
                .is_none_or(|at| at.elapsed() >= STATUS_REFRESH)
        {
            self.last_status = Some(Instant::now());
            self.request(Purpose::Status, Request::Status);
        }
    }

    /// Whether a request is waiting for its answer (tests wait on this).
    pub fn busy(&self) -> bool {
        !self.pending.is_empty() || self.model.phase == Phase::Starting
    }

    fn on_event(&mut self, event: Event) {
        let model = &mut self.model;
        match event {
            Event::ServersChanged => self.request(Purpose::Servers, Request::ListServers),
            Event::ServerUpdated { server_id } => {
                self.request(
                    Purpose::Detail(server_id.clone()),
                    Request::ServerInfo { server: server_id },
                );
            }
            Event::Message {
                server_id,
                channel_id,
                message,
            } => {
                let key = Selection::Channel {
                    server: server_id,
                    channel: channel_id.clone(),
                };
                let viewing = model.selected.as_ref() == Some(&key);
                let new = model.timelines.get(&key).is_none_or(|timeline| {
                    !timeline
                        .messages
                        .iter()
                        .any(|m| m.message_id == message.message_id)
                });
                if new && !message.mine && !viewing {
                    *model.unread.entry(channel_id).or_insert(0) += 1;
                }
                if let Some(timeline) = model.timelines.get_mut(&key) {
                    timeline.upsert(message);
                    if !viewing {
                        timeline.trim();
                    }
                }
                if viewing && new {
                    model.scroll_to_bottom = true;
                    self.mark_read_current();
                }
            }
            Event::DirectMessage { user_id, message } => {
                let key = Selection::Dm { user: user_id };
                let viewing = model.selected.as_ref() == Some(&key);
                if let Some(timeline) = model.timelines.get_mut(&key) {
                    timeline.upsert(message);
                    if !viewing {
                        timeline.trim();
                    }
                }
                if model.selected.as_ref() == Some(&key) {
                    model.scroll_to_bottom = true;
                }
                self.request(Purpose::Dms, Request::DmList);
            }
            Event::Delivery { message_id, state } => {
                for timeline in model.timelines.values_mut() {
                    if timeline.set_delivery(&message_id, state) {
                        break;
                    }
                }
            }
            Event::Error(err) => model.toast(err.message, true),
            Event::Lagged { .. } => {
                // We missed events: refresh what is on screen.
                self.request(Purpose::Servers, Request::ListServers);
                if let Some(key) = self.model.selected.clone() {
                    self.model.timelines.remove(&key);
                    self.load_page(key, None);
                }
            }
            Event::SyncProgress { .. } | Event::Network(_) => {}
        }
    }

    fn on_response(&mut self, purpose: Purpose, response: Response) {
        let model = &mut self.model;
        match (purpose, response) {
            (Purpose::Identity, Response::Identity(me)) => {
                if model.settings.display_name.is_empty() {
                    model.settings.display_name = me.display_name.clone();
                }
                model.me = Some(me);
            }
            (Purpose::Servers, Response::Servers { servers }) => {
                model.servers = servers;
                let ids: Vec<String> = model.servers.iter().map(|s| s.server_id.clone()).collect();
                // A server we left (or lost) goes with its channels; the
                // next detail that arrives picks a channel to show.
                model.details.retain(|id, _| ids.contains(id));
                if let Some(Selection::Channel { server, .. }) = &model.selected
                    && !ids.contains(server)
                {
                    model.selected = None;
                }
                for id in ids {
                    self.request(
                        Purpose::Detail(id.clone()),
                        Request::ServerInfo { server: id },
                    );
                }
            }
            (Purpose::Detail(server), Response::Server(detail)) => {
                for channel in &detail.channels {
                    model
                        .unread
                        .insert(channel.channel_id.clone(), channel.unread);
                }
                if let Some(view) = model.servers.iter_mut().find(|s| s.server_id == server) {
                    *view = detail.server.clone();
                }
                let channels = detail.channels.clone();
                model.details.insert(server.clone(), detail);
                // Restore the last selection, or pick the first channel.
                let restore = self.restored_selection.clone().filter(|selection| {
                    matches!(selection, Selection::Channel { server: s, channel }
                        if *s == server && channels.iter().any(|c| &c.channel_id == channel))
                });
                if let Some(selection) = restore {
                    self.restored_selection = None;
                    self.select(selection);
                } else if self.model.selected.is_none() {
                    if let Some(first) = channels.first() {
                        self.select(Selection::Channel {
                            server,
                            channel: first.channel_id.clone(),
                        });
                    }
                } else if let Some(Selection::Channel { server: s, channel }) =
                    self.model.selected.clone()
                {
                    // The channel we show was deleted: go to the first one.
                    if s == server
                        && !channels.iter().any(|c| c.channel_id == channel)
                        && let Some(first) = channels.first()
                    {
                        self.select(Selection::Channel {
                            server,
                            channel: first.channel_id.clone(),
                        });
                    }
                }
            }
            (Purpose::Dms, Response::Dms { conversations }) => model.dms = conversations,
            (Purpose::History { key }, Response::History(HistoryPage { messages, before })) => {
                let timeline = model.timelines.entry(key).or_default();
                let first_page = !timeline.loaded;
                timeline.add_page(messages, before.is_some());
                if first_page {
                    model.scroll_to_bottom = true;
                }
            }
            (Purpose::Send { key, txn }, Response::Sent(_)) => {
                if let Some(timeline) = model.timelines.get_mut(&key) {
                    timeline.pending.retain(|pending| pending.txn != txn);
                }
            }
            (Purpose::CreateServer, Response::Server(detail)) => {
                model.dialog = None;
                let server = detail.server.server_id.clone();
                let first = detail.channels.first().map(|c| c.channel_id.clone());
                model.details.insert(server.clone(), detail);
                self.request(Purpose::Servers, Request::ListServers);
                if let Some(channel) = first {
                    self.select(Selection::Channel { server, channel });
                }
            }
            (Purpose::CreateChannel, _) => {
                model.dialog = None;
            }
            (Purpose::Invite, Response::Invite(invite)) => {
                if let Some(Dialog::Invite { code, .. }) = &mut model.dialog {
                    *code = Some(invite.invite);
                }
            }
            (Purpose::Join, Response::Server(detail)) => {
                model.dialog = None;
                let server = detail.server.server_id.clone();
                let first = detail.channels.first().map(|c| c.channel_id.clone());
                model.toast(format!("Joined {}", detail.server.name), false);
                model.details.insert(server.clone(), detail);
                self.request(Purpose::Servers, Request::ListServers);
                if let Some(channel) = first {
                    self.select(Selection::Channel { server, channel });
                }
            }
            (Purpose::Discover, Response::Discovered { servers }) => {
                if let Some(Dialog::Discover {
                    servers: list,
                    loading,
                    ..
                }) = &mut model.dialog
                {
                    *list = servers;
                    *loading = false;
                }
            }
            (Purpose::Status, Response::Status(status)) => model.status = Some(status),
            _ => {}
        }
    }

    fn on_error(&mut self, purpose: &Purpose, err: NodeError) {
        let model = &mut self.model;
        match purpose {
            Purpose::Join => {
                if let Some(Dialog::Join { error, busy, .. }) = &mut model.dialog {
                    *error = Some(err.message);
                    *busy = false;
                    return;
                }
            }
            Purpose::CreateServer => {
                if let Some(Dialog::CreateServer { error, .. }) = &mut model.dialog {
                    *error = Some(err.message);
                    return;
                }
            }
            Purpose::CreateChannel => match &mut model.dialog {
                Some(Dialog::CreateChannel { error, .. })
                | Some(Dialog::RenameChannel { error, .. }) => {
                    *error = Some(err.message);
                    return;
                }
                _ => {}
            },
            Purpose::Invite => {
                if let Some(Dialog::Invite { error, .. }) = &mut model.dialog {
                    *error = Some(err.message);
                    return;
                }
            }
            Purpose::Discover => {
                if let Some(Dialog::Discover { error, loading, .. }) = &mut model.dialog {
                    *error = Some(err.message);
                    *loading = false;
                    return;
                }
            }
            Purpose::History { key } => {
                if let Some(timeline) = model.timelines.get_mut(key) {
                    timeline.loading = false;
                }
            }
            Purpose::Send { key, txn } => {
                // Kept with the reason, to be retried or discarded.
                if let Some(pending) = model
                    .timelines
                    .get_mut(key)
                    .and_then(|timeline| timeline.pending_send(txn))
                {
                    pending.failed = Some(err.message.clone());
                }
            }
            _ => {}
        }
        let what = match purpose {
            Purpose::Other(what) => format!("{what}: "),
            Purpose::Send { .. } => "Message not sent: ".to_owned(),
            _ => String::new(),
        };
        model.toast(format!("{what}{}", err.message), true);
    }

    fn select(&mut self, selection: Selection) {
        // The timeline we leave goes off screen: bounded again.
        if let Some(left) = self.model.selected.take()
            && left != selection
            && let Some(timeline) = self.model.timelines.get_mut(&left)
        {
            timeline.trim();
        }
        self.model.selected = Some(selection.clone());
        self.model.composer = Default::default();
        self.model.scroll_to_bottom = true;
        let loaded = self
            .model
            .timelines
            .get(&selection)
            .is_some_and(|t| t.loaded || t.loading);
        if !loaded {
            self.load_page(selection, None);
        }
        self.mark_read_current();
    }

    fn mark_read_current(&mut self) {
        if let Some(Selection::Channel { server, channel }) = self.model.selected.clone() {
            let had_unread = self.model.unread.get(&channel).copied().unwrap_or(0) > 0;
            self.model.unread.insert(channel.clone(), 0);
            if had_unread {
                self.request(
                    Purpose::Other("Mark as read"),
                    Request::MarkRead { server, channel },
                );
            }
        }
    }

    fn load_page(&mut self, key: Selection, before: Option<String>) {
        let timeline = self.model.timelines.entry(key.clone()).or_default();
        if timeline.loading {
            return;
        }
        timeline.loading = true;
        let request = match &key {
            Selection::Channel { server, channel } => Request::History {
                server: server.clone(),
                channel: channel.clone(),
                limit: PAGE,
                before,
            },
            Selection::Dm { user } => Request::DmHistory {
                user: user.clone(),
                limit: PAGE,
                before,
            },
        };
        self.request(Purpose::History { key }, request);
    }

    /// Carries out the user's actions.
    pub fn dispatch(&mut self, actions: Vec<Action>, ctx: &egui::Context) {
        for action in actions {
            self.apply(action, ctx);
        }
    }

    fn apply(&mut self, action: Action, ctx: &egui::Context) {
        match action {
            Action::CreateIdentity => {
                let form = &self.model.identity_form;
                let passphrase =
                    (!form.use_keyring).then(|| identity_core::Passphrase::new(&form.passphrase));
                let display_name = form.display_name.trim().to_owned();
                self.model.settings.display_name = display_name.clone();
                self.model.phase = Phase::Starting;
                self.model.identity_form.error = None;
                self.starting_since = Some(Instant::now());
                self.bridge.start(StartRequest::Create {
                    display_name,
                    passphrase,
                });
            }
            Action::Unlock => {
                let passphrase =
                    identity_core::Passphrase::new(&self.model.identity_form.passphrase);
                self.model.phase = Phase::Starting;
                self.model.identity_form.error = None;
                self.starting_since = Some(Instant::now());
                self.bridge.start(StartRequest::Unlock {
                    passphrase: Some(passphrase),
                });
            }
            Action::SelectServer(server) => {
                let channel = self
                    .model
                    .details
                    .get(&server)
                    .and_then(|detail| detail.channels.first())
                    .map(|c| c.channel_id.clone());
                if let Some(channel) = channel {
                    self.select(Selection::Channel { server, channel });
                }
            }
            Action::Select(selection) => self.select(selection),
            Action::OpenDialog(dialog) => {
                if let Dialog::Invite { server, .. } = &dialog {
                    let server = server.clone();
                    self.request(
                        Purpose::Invite,
                        Request::CreateInvite {
                            server,
                            expires_in_ms: Some(7 * 24 * 3600 * 1000),
                            max_uses: None,
                        },
                    );
                }
                let discover = matches!(dialog, Dialog::Discover { .. });
                self.model.dialog = Some(dialog);
                if discover {
                    self.apply(Action::Discover, ctx);
                }
            }
            Action::CloseDialog => self.model.dialog = None,
            Action::LoadOlder => {
                if let Some(key) = self.model.selected.clone() {
                    let first = self
                        .model
                        .timelines
                        .get(&key)
                        .filter(|t| t.more_older && !t.loading)
                        .and_then(|t| t.messages.first())
                        .map(|m| m.cursor.clone());
                    if let Some(cursor) = first {
                        self.load_page(key, Some(cursor));
                    }
                }
            }
            Action::Send { text, reply_to } => self.send(text, reply_to),
            Action::RetrySend(txn) => self.retry_send(&txn),
            Action::DiscardSend(txn) => {
                if let Some(timeline) = self.model.current_timeline_mut() {
                    timeline
                        .pending
                        .retain(|pending| pending.txn != txn || pending.failed.is_none());
                }
            }
            Action::Edit { message_id, text } => {
                self.model.composer = Default::default();
                if let Some(Selection::Channel { server, channel }) = self.model.selected.clone() {
                    self.request(
                        Purpose::Other("Edit"),
                        Request::Edit {
                            server,
                            channel,
                            message_id,
                            text,
                            client_txn_id: None,
                        },
                    );
                }
            }
            Action::StartEdit(message_id) => {
                let text = self
                    .model
                    .current_timeline()
                    .and_then(|t| t.messages.iter().find(|m| m.message_id == message_id))
                    .map(|m| m.text.clone());
                if let Some(text) = text {
                    self.model.composer.text = text;
                    self.model.composer.editing = Some(message_id);
                    self.model.composer.reply_to = None;
                }
            }
            Action::ReplyTo(message_id) => {
                self.model.composer.reply_to = Some(message_id);
                self.model.composer.editing = None;
            }
            Action::CancelCompose => self.model.composer = Default::default(),
            Action::Delete(message_id) => {
                if let Some(Selection::Channel { server, channel }) = self.model.selected.clone() {
                    self.request(
                        Purpose::Other("Delete"),
                        Request::Redact {
                            server,
                            channel,
                            message_id,
                            client_txn_id: None,
                        },
                    );
                }
            }
            Action::React {
                message_id,
                emoji,
                remove,
            } => {
                if let Some(Selection::Channel { server, channel }) = self.model.selected.clone() {
                    self.request(
                        Purpose::Other("Reaction"),
                        Request::React {
                            server,
                            channel,
                            message_id,
                            emoji,
                            remove,
                            client_txn_id: None,
                        },
                    );
                }
            }
            Action::CreateServer {
                name,
                description,
                public,
            } => self.request(
                Purpose::CreateServer,
                Request::CreateServer {
                    name,
                    description,
                    public,
                },
            ),
            Action::CreateChannel { server, name } => self.request(
                Purpose::CreateChannel,
                Request::CreateChannel {
                    server,
                    name,
                    topic: String::new(),
                },
            ),
            Action::RenameChannel {
                server,
                channel,
                name,
            } => self.request(
                Purpose::CreateChannel,
                Request::RenameChannel {
                    server,
                    channel,
                    name,
                    topic: None,
                },
            ),
            Action::LeaveServer { server } => {
                self.request(
                    Purpose::Other("Leave server"),
                    Request::LeaveServer { server },
                );
            }
            Action::DeleteChannel { server, channel } => {
                self.request(
                    Purpose::Other("Delete channel"),
                    Request::DeleteChannel { server, channel },
                );
            }
            Action::CreateInvite { server } => self.request(
                Purpose::Invite,
                Request::CreateInvite {
                    server,
                    expires_in_ms: Some(7 * 24 * 3600 * 1000),
                    max_uses: None,
                },
            ),
            Action::Join { code } => {
                if let Some(Dialog::Join { busy, error, .. }) = &mut self.model.dialog {
                    *busy = true;
                    *error = None;
                }
                self.request(Purpose::Join, Request::Join { invite: code });
            }
            Action::JoinPublic { server } => {
                self.request(Purpose::Join, Request::JoinPublic { server })
            }
            Action::Discover => {
                if let Some(Dialog::Discover { loading, error, .. }) = &mut self.model.dialog {
                    *loading = true;
                    *error = None;
                }
                self.request(Purpose::Discover, Request::Discover);
            }
            Action::OpenDm { user } => {
                self.model.dialog = None;
                self.select(Selection::Dm { user });
            }
            Action::Kick { server, user } => self.request(
                Purpose::Other("Kick"),
                Request::Kick {
                    server,
                    user,
                    reason: String::new(),
                },
            ),
            Action::Ban { server, user } => self.request(
                Purpose::Other("Ban"),
                Request::Ban {
                    server,
                    user,
                    reason: String::new(),
                },
            ),
            Action::GrantRole { server, user, role } => {
                self.request(
                    Purpose::Other("Grant role"),
                    Request::GrantRole { server, user, role },
                );
            }
            Action::RevokeRole { server, user, role } => {
                self.request(
                    Purpose::Other("Revoke role"),
                    Request::RevokeRole { server, user, role },
                );
            }
            Action::SetBootstrapPeers { server, peers } => {
                self.model.dialog = None;
                self.request(
                    Purpose::Other("Bootstrap peers"),
                    Request::SetBootstrapPeers { server, peers },
                );
            }
            Action::SaveSettings(settings) => {
                let renamed = settings.display_name != self.model.settings.display_name;
                if renamed && !settings.display_name.trim().is_empty() {
                    self.request(
                        Purpose::Other("Display name"),
                        Request::SetDisplayName {
                            name: settings.display_name.trim().to_owned(),
                        },
                    );
                }
                let restart = settings.listen_port != self.model.settings.listen_port
                    || settings.mdns != self.model.settings.mdns
                    || settings.bootstrap_peers != self.model.settings.bootstrap_peers;
                self.model.settings = settings;
                self.model.dialog = None;
                if restart {
                    self.model
                        .toast("Network settings apply the next time Palaver starts", false);
                }
            }
            Action::RefreshStatus => self.request(Purpose::Status, Request::Status),
            Action::Copy(text) => ctx.copy_text(text),
        }
    }

    fn send(&mut self, text: String, reply_to: Option<String>) {
        let text = text.trim_end().to_owned();
        if text.trim().is_empty() {
            return;
        }
        let Some(key) = self.model.selected.clone() else {
            return;
        };
        self.model.composer = Default::default();
        let pending = PendingSend {
            txn: random_txn(),
            text,
            reply_to,
            failed: None,
        };
        self.model
            .timelines
            .entry(key.clone())
            .or_default()
            .pending
            .push(pending.clone());
        self.model.scroll_to_bottom = true;
        self.request_send(key, pending);
    }

    /// Sends a refused message again, under its transaction id.
    fn retry_send(&mut self, txn: &str) {
        let Some(key) = self.model.selected.clone() else {
            return;
        };
        let Some(pending) = self
            .model
            .current_timeline_mut()
            .and_then(|timeline| timeline.pending_send(txn))
            .filter(|pending| pending.failed.is_some())
        else {
            return;
        };
        pending.failed = None;
        let pending = pending.clone();
        self.request_send(key, pending);
    }

    fn request_send(&mut self, key: Selection, pending: PendingSend) {
        let PendingSend {
            txn,
            text,
            reply_to,
            ..
        } = pending;
        let request = match &key {
            Selection::Channel { server, channel } => Request::Send {
                server: server.clone(),
                channel: channel.clone(),
                text,
                client_txn_id: Some(txn.clone()),
                reply_to,
            },
            Selection::Dm { user } => Request::DmSend {
                user: user.clone(),
                text,
                client_txn_id: Some(txn.clone()),
            },
        };
        self.request(Purpose::Send { key, txn }, request);
    }

    /// Stops the node (the window is closing).
    pub fn shutdown(&mut self) {
        self.bridge.shutdown();
    }
}

fn random_txn() -> String {
    let mut bytes = [0u8; 12];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut bytes);
    data_encoding::HEXLOWER.encode(&bytes)
}

impl eframe::App for PalaverApp {
    fn logic(&mut self, _ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.process();
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        if !self.first_frame {
            self.first_frame = true;
            tracing::info!(
                elapsed_ms = self.launched.elapsed().as_millis() as u64,
                "first frame"
            );
        }
        let actions = ui::draw(ui, &mut self.model);
        let ctx = ui.ctx().clone();
        self.dispatch(actions, &ctx);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, SETTINGS_KEY, &self.model.settings);
        if let Some(Selection::Channel { server, channel }) = &self.model.selected {
            eframe::set_value(storage, SELECTION_KEY, &(server.clone(), channel.clone()));
        }
    }

    fn on_exit(&mut self) {
        self.shutdown();
    }
}
