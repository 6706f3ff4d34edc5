//! The view model: plain data that only node events and answers change.
//! The UI reads it to draw and emits [`crate::actions::Action`]s; it never
//! changes the model behind the node's back (except for drafts in forms).

use std::collections::{BTreeMap, HashMap, VecDeque};

use node::api::{
    DeliveryState, DmView, IdentityView, MessageView, PublicServerView, ServerDetail, ServerView,
    StatusView,
};

/// Where the app is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// No identity yet: create one.
    Onboarding,
    /// An identity exists and needs its passphrase.
    Unlock,
    /// Creating or unlocking, then starting the node.
    Starting,
    /// The node runs.
    Ready,
}

/// The first-launch and unlock form.
#[derive(Clone, Debug, Default)]
pub struct IdentityForm {
    /// Display name (create only).
    pub display_name: String,
    /// Passphrase.
    pub passphrase: String,
    /// Passphrase again (create only).
    pub confirm: String,
    /// Keep the secret in the OS keyring instead of a passphrase.
    pub use_keyring: bool,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

/// What the central panel shows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Selection {
    /// A channel of a server.
    Channel {
        /// Server id.
        server: String,
        /// Channel id.
        channel: String,
    },
    /// A DM conversation.
    Dm {
        /// The other user's id.
        user: String,
    },
}

/// Most messages a timeline off screen keeps in memory: busy channels in
/// the background of an app left open for days would otherwise grow
/// without bound.
pub const MAX_LIVE_MESSAGES: usize = 1_000;

/// One of our sends the node has not acknowledged.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingSend {
    /// Client transaction id: a retry sends it again, so a message the
    /// node stored after all is not written twice.
    pub txn: String,
    /// The text.
    pub text: String,
    /// The message replied to.
    pub reply_to: Option<String>,
    /// Why the node refused it (`None` while it is being sent).
    pub failed: Option<String>,
}

/// One conversation's messages, in display order (by cursor).
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// Messages, oldest first.
    pub messages: Vec<MessageView>,
    /// Our sends not yet acknowledged, or refused (kept until the user
    /// retries or discards them: typed words are never dropped silently).
    pub pending: Vec<PendingSend>,
    /// Older messages exist (page back from the first one's cursor).
    pub more_older: bool,
    /// A page request is in flight.
    pub loading: bool,
    /// The first page was loaded.
    pub loaded: bool,
}

impl Timeline {
    /// Inserts or replaces a message, keeping display order.
    pub fn upsert(&mut self, message: MessageView) {
        if let Some(existing) = self
            .messages
            .iter_mut()
            .find(|m| m.message_id == message.message_id)
        {
            *existing = message;
            return;
        }
        let at = self.messages.partition_point(|m| m.cursor < message.cursor);
        self.messages.insert(at, message);
    }

    /// Drops the oldest messages beyond [`MAX_LIVE_MESSAGES`] from memory
    /// (not from the node): done to timelines off screen, so nobody loses
    /// the rows they read; "Load older messages" brings them back.
    pub fn trim(&mut self) {
        let excess = self.messages.len().saturating_sub(MAX_LIVE_MESSAGES);
        if excess > 0 {
            self.messages.drain(..excess);
            self.more_older = true;
        }
    }

    /// Adds a page of older messages (newest first, as the node sends them).
    pub fn add_page(&mut self, page: Vec<MessageView>, more: bool) {
        for message in page {
            self.upsert(message);
        }
        self.more_older = more;
        self.loading = false;
        self.loaded = true;
    }

    /// Our send with this transaction id, if it is still here.
    pub fn pending_send(&mut self, txn: &str) -> Option<&mut PendingSend> {
        self.pending.iter_mut().find(|pending| pending.txn == txn)
    }

    /// Our latest message that is not redacted (for "edit last message").
    pub fn last_mine(&self) -> Option<&MessageView> {
        self.messages.iter().rev().find(|m| m.mine && !m.redacted)
    }

    /// Moves a delivery state onto a message, if it is here.
    pub fn set_delivery(&mut self, message_id: &str, state: DeliveryState) -> bool {
        match self
            .messages
            .iter_mut()
            .find(|m| m.message_id == message_id)
        {
            Some(message) => {
                message.delivery = Some(state);
                true
            }
            None => false,
        }
    }
}

/// The composer.
#[derive(Clone, Debug, Default)]
pub struct Composer {
    /// The text being written.
    pub text: String,
    /// Editing this message instead of sending a new one.
    pub editing: Option<String>,
    /// Replying to this message.
    pub reply_to: Option<String>,
}

/// A modal dialog.
#[derive(Clone, Debug, PartialEq)]
pub enum Dialog {
    /// Create a server.
    CreateServer {
        /// Name.
        name: String,
        /// Description.
        description: String,
        /// Public.
        public: bool,
        /// Last error.
        error: Option<String>,
    },
    /// Create a channel.
    CreateChannel {
        /// In this server.
        server: String,
        /// Name.
        name: String,
        /// Last error.
        error: Option<String>,
    },
    /// Rename a channel.
    RenameChannel {
        /// Server.
        server: String,
        /// Channel.
        channel: String,
        /// New name.
        name: String,
        /// Last error.
        error: Option<String>,
    },
    /// Confirm leaving a server.
    LeaveServer {
        /// Server id.
        server: String,
        /// Its name.
        name: String,
    },
    /// An invite to share.
    Invite {
        /// Server.
        server: String,
        /// The code, once created.
        code: Option<String>,
        /// Last error.
        error: Option<String>,
    },
    /// Join with a code.
    Join {
        /// The pasted code.
        code: String,
        /// Why it failed (shown inline).
        error: Option<String>,
        /// A join is in flight.
        busy: bool,
    },
    /// The public directory.
    Discover {
        /// Filter text.
        filter: String,
        /// Servers found.
        servers: Vec<PublicServerView>,
        /// A lookup is in flight.
        loading: bool,
        /// Last error.
        error: Option<String>,
    },
    /// Start a DM.
    NewDm {
        /// The user id.
        user: String,
        /// Last error.
        error: Option<String>,
    },
    /// A server's bootstrap peers (admins).
    BootstrapPeers {
        /// Server.
        server: String,
        /// One multiaddr per line.
        peers: String,
        /// Last error.
        error: Option<String>,
    },
    /// Settings, with the draft being edited.
    Settings(Settings),
    /// Diagnostics.
    Diagnostics,
}

/// Settings the user edits (some apply at the next start).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    /// Display name.
    pub display_name: String,
    /// UDP/TCP port to listen on (0: one chosen at the first start and kept,
    /// see `launch::listen_port`).
    pub listen_port: u16,
    /// LAN discovery.
    pub mdns: bool,
    /// Extra bootstrap peers, one multiaddr per line.
    pub bootstrap_peers: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            display_name: String::new(),
            listen_port: 0,
            mdns: true,
            bootstrap_peers: String::new(),
        }
    }
}

/// A short message at the bottom of the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Toast {
    /// The text.
    pub text: String,
    /// An error (red) or information.
    pub error: bool,
}

/// The whole view model.
#[derive(Debug)]
pub struct Model {
    /// Where the app is.
    pub phase: Phase,
    /// The identity form.
    pub identity_form: IdentityForm,
    /// Whether the OS keyring can be offered.
    pub keyring_available: bool,
    /// Our identity, once the node runs.
    pub me: Option<IdentityView>,
    /// Servers, in rail order.
    pub servers: Vec<ServerView>,
    /// Server details (channels, members) by server id.
    pub details: HashMap<String, ServerDetail>,
    /// Unread counts by channel id (kept live between refreshes).
    pub unread: HashMap<String, u64>,
    /// DM conversations.
    pub dms: Vec<DmView>,
    /// What the central panel shows.
    pub selected: Option<Selection>,
    /// Messages per conversation.
    pub timelines: HashMap<Selection, Timeline>,
    /// The composer.
    pub composer: Composer,
    /// The open dialog.
    pub dialog: Option<Dialog>,
    /// Settings (edited in the dialog, saved on apply).
    pub settings: Settings,
    /// Where data lives (shown in settings).
    pub data_dir: String,
    /// The last status (diagnostics).
    pub status: Option<StatusView>,
    /// Messages at the bottom of the window.
    pub toasts: VecDeque<Toast>,
    /// Scroll the timeline to the newest message at the next frame.
    pub scroll_to_bottom: bool,
    /// The zone and "now" that times are shown in.
    pub clock: crate::ui::time::Clock,
}

impl Model {
    /// A model for a data directory.
    pub fn new(
        phase: Phase,
        data_dir: String,
        settings: Settings,
        keyring_available: bool,
    ) -> Self {
        Self {
            phase,
            identity_form: IdentityForm::default(),
            keyring_available,
            me: None,
            servers: Vec::new(),
            details: HashMap::new(),
            unread: HashMap::new(),
            dms: Vec::new(),
            selected: None,
            timelines: HashMap::new(),
            composer: Composer::default(),
            dialog: None,
            settings,
            data_dir,
            status: None,
            toasts: VecDeque::new(),
            scroll_to_bottom: true,
            clock: crate::ui::time::Clock::Local,
        }
    }

    /// Shows a toast (the last few are kept).
    pub fn toast(&mut self, text: impl Into<String>, error: bool) {
        self.toasts.push_back(Toast {
            text: text.into(),
            error,
        });
        while self.toasts.len() > 4 {
            self.toasts.pop_front();
        }
    }

    /// The selected server, if a channel is selected.
    pub fn selected_server(&self) -> Option<&str> {
        match &self.selected {
            Some(Selection::Channel { server, .. }) => Some(server),
            _ => None,
        }
    }

    /// The timeline of the selection.
    pub fn current_timeline(&self) -> Option<&Timeline> {
        self.timelines.get(self.selected.as_ref()?)
    }

    /// The timeline on screen, to change it.
    pub fn current_timeline_mut(&mut self) -> Option<&mut Timeline> {
        self.timelines.get_mut(self.selected.as_ref()?)
    }

    /// Our role in a server.
    pub fn my_role(&self, server: &str) -> &str {
        self.servers
            .iter()
            .find(|s| s.server_id == server)
            .map_or("member", |s| s.role.as_str())
    }

    /// Whether we may manage channels, invites and members of a server.
    pub fn is_admin(&self, server: &str) -> bool {
        matches!(self.my_role(server), "admin" | "owner")
    }

    /// Whether we may delete others' messages.
    pub fn is_moderator(&self, server: &str) -> bool {
        matches!(self.my_role(server), "moderator" | "admin" | "owner")
    }

    /// Unread messages of a server (sum of its channels).
    pub fn server_unread(&self, server: &str) -> u64 {
        match self.details.get(server) {
            Some(detail) => detail
                .channels
                .iter()
                .map(|c| self.unread.get(&c.channel_id).copied().unwrap_or(c.unread))
                .sum(),
            None => self
                .servers
                .iter()
                .find(|s| s.server_id == server)
                .map_or(0, |s| s.unread),
        }
    }

    /// A display name for a user id, from any server we know.
    pub fn name_of(&self, user: &str) -> String {
        self.details
            .values()
            .flat_map(|detail| detail.members.iter())
            .find(|member| member.user_id == user)
            .map(|member| member.display_name.clone())
            .or_else(|| {
                self.dms
                    .iter()
                    .find(|dm| dm.user_id == user)
                    .map(|dm| dm.display_name.clone())
            })
            .unwrap_or_else(|| format!("user-{}", user.chars().rev().take(6).collect::<String>()))
    }

    /// Every member we know, for the DM picker: (user id, name).
    pub fn known_users(&self) -> BTreeMap<String, String> {
        let me = self
            .me
            .as_ref()
            .map(|me| me.user_id.clone())
            .unwrap_or_default();
        self.details
            .values()
            .flat_map(|detail| detail.members.iter())
            .filter(|member| member.user_id != me)
            .map(|member| (member.user_id.clone(), member.display_name.clone()))
            .collect()
    }
}
