//! The node actor: one task owns the ledger handle, the key book, every
//! server's folded state and the overlay handle, and serves commands,
//! overlay events and its own background results in one `select!` loop.
//! Work that waits on the network or on a flush (joins, syncs, durable
//! acknowledgements) runs in spawned tasks that report back through the
//! internal channel, so the loop never waits on a peer.

mod authoring;
mod dm;
mod holders;
mod ingest;
mod join;
mod messages;
mod outbox;
mod replica;
mod servers;
mod sync;
mod views;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use identity_core::{Identity, UserId};
use messaging_proto::{DmId, InboxTag, LogId, ServerId, SpaceId, VerifiedEntry};
use net_overlay::{Overlay, OverlayEvent, OverlayHandle, PeerId};
use serde::{Deserialize, Serialize};
use storage_ledger::{LedgerStore, SledLedger};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::api::{Event, NodeError, Request, Response};
use crate::config::{NodeConfig, ReplicaScope};
use crate::control::{ControlRecord, ServerState};
use crate::handle::{EventStream, NodeHandle};
use crate::keys::KeyBook;
use crate::local_store::{LocalStore, ns};

pub(crate) use outbox::OutboxItem;

/// How often the overlay's address book is saved.
const ADDRESS_BOOK_SAVE_INTERVAL: Duration = Duration::from_secs(60);
/// Capacity of the internal channel of background results.
const INTERNAL_CAPACITY: usize = 1024;
/// Most entries held back per space while waiting for earlier entries.
const MAX_GAP_ENTRIES: usize = 4096;
/// Most entries held back per space while waiting for a key, a channel or a
/// member's join.
const MAX_BLOCKED_ENTRIES: usize = 1024;

/// A command from a handle, with its reply channel.
pub(crate) struct Command {
    pub(crate) request: Request,
    pub(crate) reply: oneshot::Sender<Result<Response, NodeError>>,
}

pub(crate) type Reply = oneshot::Sender<Result<Response, NodeError>>;

/// Results of background work, sent back to the actor.
pub(crate) enum Internal {
    /// An entry we wrote is durable (or failed to become so).
    Authored {
        entry: Box<VerifiedEntry>,
        result: Result<(), NodeError>,
        reply: Option<Reply>,
        response: Response,
        dm_peer: Option<UserId>,
    },
    /// Entries fetched from a peer by a sync task, in feed order.
    Fetched {
        peer: PeerId,
        /// Encoded size of the chunk.
        bytes: usize,
        /// Each entry verified (by the sync task) or why it is not.
        entries: Vec<Result<VerifiedEntry, messaging_proto::ProtoError>>,
    },
    /// A peer holds our feed of `log` up to `seq`.
    PeerHolds { peer: PeerId, log: LogId, seq: u64 },
    /// A sync task finished.
    SyncDone {
        space: SpaceId,
        peer: PeerId,
        state_hash: Option<[u8; 32]>,
        fetched: u64,
        error: Option<NodeError>,
    },
    /// A join's network part finished.
    JoinFetched(Box<join::JoinProgress>),
    /// DM spaces a replica holds for us.
    InboxFound { peer: PeerId, spaces: Vec<SpaceId> },
    /// Public servers found in the directory.
    Discovered {
        result: Result<Vec<messaging_proto::SignedAdvert>, NodeError>,
        reply: Reply,
    },
}

/// What we are to a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LocalRole {
    /// A member: we hold the keys and fold the control log.
    Member,
    /// A replica: we store and serve ciphertext only.
    Replica,
}

/// What the private store keeps about a server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ServerRecord {
    pub(crate) role: LocalRole,
    pub(crate) joined_at_ms: u64,
    /// We left; forgotten once our `Leave` reached a peer.
    #[serde(default)]
    pub(crate) left: bool,
}

/// A server's runtime state.
pub(crate) struct ServerRuntime {
    pub(crate) id: ServerId,
    /// The genesis (a replica may not hold it yet).
    pub(crate) genesis: Option<VerifiedEntry>,
    /// The control log's id (from the genesis).
    pub(crate) control_log: Option<LogId>,
    pub(crate) role: LocalRole,
    /// Decrypted control records other than the genesis, by display order.
    pub(crate) records: BTreeMap<(u64, [u8; 32], u64), ControlRecord>,
    pub(crate) genesis_record: Option<ControlRecord>,
    pub(crate) state: Option<ServerState>,
    pub(crate) last_sync_ms: Option<u64>,
    /// When we last published the server's advert (monotonic: republishing
    /// must not wait for a wall clock set back to catch up).
    pub(crate) advert_published: Option<Instant>,
    /// We left: hidden from every request, kept only until our `Leave`
    /// reached a peer (`forget_left_servers`).
    pub(crate) left: bool,
}

/// Entries held back per space.
#[derive(Default)]
pub(crate) struct Held {
    /// Waiting for earlier entries of the same feed, by (log, author) and seq.
    pub(crate) gaps: HashMap<(LogId, UserId), BTreeMap<u64, VerifiedEntry>>,
    pub(crate) gap_count: usize,
    /// Waiting for a key, a channel or a member's join.
    pub(crate) blocked: VecDeque<VerifiedEntry>,
}

/// A token bucket per author (entries on receive).
pub(crate) struct AuthorRate {
    tokens: f64,
    last: Instant,
}

pub(crate) struct NodeCore {
    pub(crate) identity: Identity,
    pub(crate) me: UserId,
    pub(crate) config: NodeConfig,
    pub(crate) ledger: Arc<SledLedger>,
    pub(crate) store: LocalStore,
    pub(crate) keys: KeyBook,
    pub(crate) overlay: OverlayHandle,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) internal_tx: mpsc::Sender<Internal>,
    pub(crate) servers: HashMap<ServerId, ServerRuntime>,
    pub(crate) dms: HashMap<DmId, UserId>,
    pub(crate) held: HashMap<SpaceId, Held>,
    pub(crate) rates: HashMap<UserId, AuthorRate>,
    pub(crate) display_name: String,
    pub(crate) names: HashMap<UserId, String>,
    pub(crate) outbox: HashMap<messaging_proto::EntryHash, OutboxItem>,
    /// Outbox entries gossipsub accepted for publication: retries push them
    /// to replicas but do not publish them again (gossipsub refuses, and
    /// warns about, a message it has already published).
    pub(crate) published: HashSet<messaging_proto::EntryHash>,
    /// Entries written whose durable acknowledgement is still awaited.
    pub(crate) authoring_in_flight: usize,
    /// How much of our own feeds each peer holds (bounded).
    pub(crate) holders: holders::FeedHolders,
    /// When the members were last asked how far they hold our feed of a
    /// log (only logs asked within the last `outbox::PROBE_INTERVAL`).
    pub(crate) probed: HashMap<LogId, Instant>,
    pub(crate) connected: HashSet<PeerId>,
    /// Peers subscribed to each server's topic.
    pub(crate) topic_peers: HashMap<ServerId, HashSet<PeerId>>,
    pub(crate) syncing: HashSet<(SpaceId, PeerId)>,
    pub(crate) next_sync: HashMap<SpaceId, Instant>,
    pub(crate) unread: HashMap<LogId, u64>,
    /// Logs whose unread count changed since it was last saved.
    pub(crate) unread_dirty: HashSet<LogId>,
    pub(crate) inbox: HashMap<InboxTag, HashSet<SpaceId>>,
    pub(crate) space_bytes: HashMap<SpaceId, u64>,
    pub(crate) pending_joins: HashMap<ServerId, Vec<Reply>>,
    pub(crate) recent_mine: HashMap<
        LogId,
        VecDeque<(
            u64,
            messaging_proto::EntryHash,
            Option<crate::api::DeliveryState>,
        )>,
    >,
    /// Spaces whose held-back entries should be tried again.
    pub(crate) retry_spaces: HashSet<SpaceId>,
    /// Adverts of the public servers we host, served by the directory.
    pub(crate) directory: HashMap<ServerId, messaging_proto::SignedAdvert>,
    /// Key grants owed to new members, written outside the ingest path.
    pub(crate) deferred_grants: Vec<(ServerId, UserId)>,
    /// Servers of ours a member left: their key is rotated outside the
    /// ingest path, so that the member cannot read what follows.
    pub(crate) deferred_rotations: HashSet<ServerId>,
    /// The ledger's reopen count our server states were folded at.
    pub(crate) ledger_reopens: u64,
    /// Servers whose bootstrap peers changed.
    pub(crate) deferred_connect: HashSet<ServerId>,
    /// Background tasks that hold the ledger (syncs), ended at shutdown.
    pub(crate) tasks: tokio::task::JoinSet<()>,
    /// When the address book was last saved.
    pub(crate) address_book_saved: Option<Instant>,
    pub(crate) metrics: crate::metrics::NodeMetrics,
    pub(crate) shutdown: Option<Reply>,
}

/// Starts nodes.
pub struct Node;

impl Node {
    /// Opens the ledger in `config.data_dir`, starts the overlay with
    /// `identity`, restores servers, keys and the outbox, and spawns the
    /// node's task on the current tokio runtime.
    pub async fn start(
        identity: Identity,
        config: NodeConfig,
    ) -> Result<(NodeHandle, EventStream), NodeError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|err| {
            NodeError::new(
                crate::api::ErrorCategory::Storage,
                "node.data_dir",
                format!(
                    "cannot create the data directory {}: {err}",
                    config.data_dir.display()
                ),
            )
        })?;
        let ledger_dir = config.data_dir.join("ledger");
        let ledger = {
            let storage_key = identity.storage_key();
            let dir = ledger_dir.clone();
            tokio::task::spawn_blocking(move || SledLedger::open(&dir, &storage_key))
                .await
                .map_err(|err| NodeError::internal(format!("ledger open task: {err}")))??
        };
        let ledger = Arc::new(ledger);
        if !ledger.storage_key_matches() {
            return Err(NodeError::new(
                crate::api::ErrorCategory::Identity,
                "node.wrong_identity",
                "this data directory belongs to another identity",
            ));
        }
        let store = LocalStore::new(ledger.clone());
        let keys = KeyBook::load(store.clone())?;

        let mut overlay_config = config.overlay.clone();
        // One clock for the node and its overlay.
        overlay_config.clock = config.clock;
        let metrics = match &config.metrics {
            Some(registry) => {
                overlay_config.metrics = Some(registry.clone());
                crate::metrics::NodeMetrics::register(&mut registry.lock())
            }
            None => crate::metrics::NodeMetrics::default(),
        };
        if let Some(snapshot) = store.get::<crate::peers::StoredAddressBook>(ns::PEERS, b"book")? {
            overlay_config.address_book = snapshot.into_snapshot();
        }
        let (overlay, overlay_events) = Overlay::start(&identity, overlay_config)?;

        let (events, _) = broadcast::channel(config.event_capacity);
        let (command_tx, command_rx) = mpsc::channel(config.command_capacity);
        let (internal_tx, internal_rx) = mpsc::channel(INTERNAL_CAPACITY);
        let display_name = store
            .get::<String>(ns::PROFILE, b"display_name")?
            .or_else(|| config.display_name.clone())
            .unwrap_or_else(|| "anonymous".to_owned());
        let me = identity.user_id();
        let mut core = NodeCore {
            identity,
            me,
            config,
            ledger,
            store,
            keys,
            overlay: overlay.clone(),
            events: events.clone(),
            internal_tx,
            servers: HashMap::new(),
            dms: HashMap::new(),
            held: HashMap::new(),
            rates: HashMap::new(),
            display_name,
            names: HashMap::new(),
            outbox: HashMap::new(),
            published: HashSet::new(),
            authoring_in_flight: 0,
            holders: holders::FeedHolders::default(),
            probed: HashMap::new(),
            connected: HashSet::new(),
            topic_peers: HashMap::new(),
            syncing: HashSet::new(),
            next_sync: HashMap::new(),
            unread: HashMap::new(),
            unread_dirty: HashSet::new(),
            inbox: HashMap::new(),
            space_bytes: HashMap::new(),
            pending_joins: HashMap::new(),
            recent_mine: HashMap::new(),
            retry_spaces: HashSet::new(),
            directory: HashMap::new(),
            deferred_grants: Vec::new(),
            deferred_rotations: HashSet::new(),
            ledger_reopens: 0,
            deferred_connect: HashSet::new(),
            tasks: tokio::task::JoinSet::new(),
            address_book_saved: None,
            metrics,
            shutdown: None,
        };
        core.restore().await?;
        let handle = NodeHandle::new(command_tx, events.clone(), me);
        let stream = handle.subscribe();
        // Every log line of this node names it: several nodes in one
        // process (tests, the simulation harness) stay apart.
        let span = tracing::info_span!("node", user = %views::short_id(&me));
        tokio::spawn(tracing::Instrument::instrument(
            core.run(command_rx, overlay_events, internal_rx),
            span,
        ));
        Ok((handle, stream))
    }
}

impl NodeCore {
    /// Wall time by the node's clock (ms since the Unix epoch): entry
    /// timestamps, invite and advert expiries, outbox schedules.
    pub(crate) fn now_ms(&self) -> u64 {
        self.config.clock.now_ms()
    }

    /// Restores servers, keys, DMs, the outbox and counters from disk.
    async fn restore(&mut self) -> Result<(), NodeError> {
        for (user, name) in self.store.scan::<String>(ns::NAMES)? {
            if let Ok(user) = UserId::from_slice(&user) {
                self.names.insert(user, name);
            }
        }
        for (key, record) in self.store.scan::<ServerRecord>(ns::SERVERS)? {
            let Ok(server) = ServerId::from_slice(&key) else {
                continue;
            };
            if let Err(err) = self.load_server(server, record.role).await {
                tracing::warn!(%server, %err, "cannot restore a server");
            }
            if let Some(runtime) = self.servers.get_mut(&server) {
                runtime.left = record.left;
            }
        }
        for (key, peer) in self.store.scan::<String>(ns::DMS)? {
            if let (Ok(dm), Ok(peer)) = (DmId::from_slice(&key), peer.parse::<UserId>()) {
                self.dms.insert(dm, peer);
            }
        }
        for (key, count) in self.store.scan::<u64>(ns::UNREAD)? {
            if let Ok(log) = LogId::from_slice(&key) {
                self.unread.insert(log, count);
            }
        }
        let now_ms = self.now_ms();
        for (_, item) in self.store.scan::<OutboxItem>(ns::OUTBOX)? {
            if let Some(hash) = item.hash() {
                let item = item.restored(now_ms, self.config.timers.outbox_max_retry);
                self.outbox.insert(hash, item);
            }
        }
        for (key, ()) in self.store.scan::<()>(ns::INBOX)? {
            if key.len() == 64
                && let (Ok(tag), Ok(space)) = (
                    InboxTag::from_slice(&key[..32]),
                    SpaceId::from_slice(&key[32..]),
                )
            {
                self.inbox.entry(tag).or_default().insert(space);
            }
        }
        if let ReplicaScope::Servers(list) = &self.config.replica {
            for server in list.clone() {
                self.servers
                    .entry(server)
                    .or_insert_with(|| ServerRuntime::placeholder(server));
            }
        }
        // Subscribe to every server's topic and keep its bootstrap peers connected.
        let servers: Vec<ServerId> = self.servers.keys().copied().collect();
        for server in servers {
            self.connect_server(server).await;
        }
        Ok(())
    }

    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut overlay_events: mpsc::Receiver<OverlayEvent>,
        mut internal_rx: mpsc::Receiver<Internal>,
    ) {
        let mut tick = tokio::time::interval(self.config.timers.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command).await,
                    None => break,
                },
                event = overlay_events.recv() => match event {
                    Some(event) => self.on_overlay_event(event).await,
                    None => break,
                },
                Some(internal) = internal_rx.recv() => self.on_internal(internal).await,
                _ = tick.tick() => self.maintain().await,
            }
            self.settle().await;
            self.write_deferred().await;
            if self.shutdown.is_some() {
                break;
            }
        }
        self.stop(&mut internal_rx).await;
        // Background tasks that hold the ledger end first, then the ledger
        // itself closes (releasing its lock), and only then is the stop
        // confirmed, so that a node may start again on the same directory
        // at once.
        self.tasks.shutdown().await;
        let reply = self.shutdown.take();
        drop(self);
        if let Some(reply) = reply {
            let _ = reply.send(Ok(Response::Ok));
        }
        tracing::info!("node stopped");
    }

    /// Graceful shutdown: push what the outbox holds to connected peers
    /// (bounded wait), save the address book, flush the ledger, close the
    /// overlay.
    async fn stop(&mut self, internal_rx: &mut mpsc::Receiver<Internal>) {
        // Let durable acknowledgements in flight complete (at most 2 s).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while self.authoring_in_flight > 0
            && let Ok(Some(internal)) = tokio::time::timeout_at(deadline, internal_rx.recv()).await
        {
            if let Internal::Authored { .. } = internal {
                self.on_internal(internal).await;
            }
        }
        self.drain_outbox(Duration::from_secs(3)).await;
        self.save_address_book().await;
        let ledger = self.ledger.clone();
        let flushed = tokio::task::spawn_blocking(move || ledger.flush()).await;
        if !matches!(flushed, Ok(Ok(()))) {
            tracing::warn!("ledger flush at shutdown failed");
        }
        let _ = self.overlay.shutdown().await;
    }

    pub(crate) async fn save_address_book(&self) {
        if let Ok(snapshot) = self.overlay.address_book().await {
            let stored = crate::peers::StoredAddressBook::from_snapshot(&snapshot);
            if let Ok(ticket) = self.store.put(ns::PEERS, b"book", &stored) {
                let _ = ticket.await;
            }
        }
    }

    pub(crate) fn emit(&self, event: Event) {
        // No subscriber is not an error.
        let _ = self.events.send(event);
    }

    async fn on_command(&mut self, command: Command) {
        let Command { request, reply } = command;
        match request {
            Request::Shutdown => {
                self.shutdown = Some(reply);
            }
            Request::Join { invite } => self.join_with_invite(&invite, reply).await,
            Request::JoinPublic { server } => self.join_public(&server, reply).await,
            Request::Discover => self.discover(reply),
            Request::Send {
                server,
                channel,
                text,
                client_txn_id,
                reply_to,
            } => {
                self.send_message(&server, &channel, text, client_txn_id, reply_to, reply)
                    .await
            }
            Request::DmSend {
                user,
                text,
                client_txn_id,
            } => self.send_dm(&user, text, client_txn_id, reply).await,
            other => {
                let result = self.handle_request(other).await;
                let _ = reply.send(result);
            }
        }
    }

    /// Requests answered at once (no durable wait, no network wait).
    async fn handle_request(&mut self, request: Request) -> Result<Response, NodeError> {
        match request {
            Request::Identity => Ok(Response::Identity(crate::api::IdentityView {
                user_id: self.me.to_string(),
                display_name: self.display_name.clone(),
            })),
            Request::SetDisplayName { name } => self.set_display_name(name).await,
            Request::Status => self.status().await.map(Response::Status),
            Request::Peers => Ok(Response::Peers {
                peers: {
                    let mut peers: Vec<String> =
                        self.connected.iter().map(ToString::to_string).collect();
                    peers.sort();
                    peers
                        .into_iter()
                        .map(|peer_id| crate::api::PeerView { peer_id })
                        .collect()
                },
            }),
            Request::CreateServer {
                name,
                description,
                public,
            } => self.create_server(name, description, public).await,
            Request::ListServers => Ok(Response::Servers {
                servers: self.server_views(),
            }),
            Request::ServerInfo { server } => {
                let server = self.resolve_server(&server)?;
                self.server_detail(&server).map(Response::Server)
            }
            Request::UpdateServer {
                server,
                name,
                description,
                public,
            } => self.update_server(&server, name, description, public).await,
            Request::SetBootstrapPeers { server, peers } => {
                self.set_bootstrap_peers(&server, peers).await
            }
            Request::CreateChannel {
                server,
                name,
                topic,
            } => self.create_channel(&server, name, topic).await,
            Request::RenameChannel {
                server,
                channel,
                name,
                topic,
            } => self.rename_channel(&server, &channel, name, topic).await,
            Request::LeaveServer { server } => self.leave_server(&server).await,
            Request::DeleteChannel { server, channel } => {
                self.delete_channel(&server, &channel).await
            }
            Request::ListChannels { server } => {
                let server = self.resolve_server(&server)?;
                Ok(Response::Channels {
                    channels: self.channel_views(&server)?,
                })
            }
            Request::CreateInvite {
                server,
                expires_in_ms,
                max_uses,
            } => self.create_invite(&server, expires_in_ms, max_uses).await,
            Request::RevokeInvite { server, invite_id } => {
                self.revoke_invite(&server, &invite_id).await
            }
            Request::Edit {
                server,
                channel,
                message_id,
                text,
                client_txn_id,
            } => {
                self.edit_message(&server, &channel, &message_id, text, client_txn_id)
                    .await
            }
            Request::Redact {
                server,
                channel,
                message_id,
                client_txn_id,
            } => {
                self.redact_message(&server, &channel, &message_id, client_txn_id)
                    .await
            }
            Request::React {
                server,
                channel,
                message_id,
                emoji,
                remove,
                client_txn_id,
            } => {
                self.react(&server, &channel, &message_id, emoji, remove, client_txn_id)
                    .await
            }
            Request::History {
                server,
                channel,
                limit,
                before,
            } => self.history(&server, &channel, limit, before.as_deref()),
            Request::MarkRead { server, channel } => self.mark_read(&server, &channel).await,
            Request::DmHistory {
                user,
                limit,
                before,
            } => self.dm_history(&user, limit, before.as_deref()),
            Request::DmList => Ok(Response::Dms {
                conversations: self.dm_views(),
            }),
            Request::Kick {
                server,
                user,
                reason,
            } => self.remove_member(&server, &user, reason, false).await,
            Request::Ban {
                server,
                user,
                reason,
            } => self.remove_member(&server, &user, reason, true).await,
            Request::Unban { server, user } => self.unban(&server, &user).await,
            Request::GrantRole { server, user, role } => {
                self.change_role(&server, &user, &role, true).await
            }
            Request::RevokeRole { server, user, role } => {
                self.change_role(&server, &user, &role, false).await
            }
            Request::Shutdown
            | Request::Join { .. }
            | Request::JoinPublic { .. }
            | Request::Discover
            | Request::Send { .. }
            | Request::DmSend { .. } => {
                Err(NodeError::internal("request routed to the wrong handler"))
            }
        }
    }

    async fn set_display_name(&mut self, name: String) -> Result<Response, NodeError> {
        let count = name.chars().count();
        if count == 0 || count > messaging_proto::limits::MAX_DISPLAY_NAME_CHARS {
            return Err(NodeError::invalid(
                "node.invalid_display_name",
                "a display name has 1 to 64 characters",
            ));
        }
        self.store.put(ns::PROFILE, b"display_name", &name)?.await?;
        self.display_name = name;
        Ok(Response::Ok)
    }

    async fn on_overlay_event(&mut self, event: OverlayEvent) {
        match event {
            OverlayEvent::Gossip {
                server: _,
                source,
                id,
                data,
            } => {
                let verdict = match messaging_proto::GossipMessage::from_bytes(&data) {
                    Ok(messaging_proto::GossipMessage::Entry(bytes)) => {
                        let outcome = self.ingest_bytes(bytes, Some(source)).await;
                        if let ingest::Ingested::Rejected(err) = &outcome {
                            tracing::debug!(peer = %source, code = err.code, "gossip entry rejected");
                        }
                        outcome.verdict()
                    }
                    Err(_) => net_overlay::GossipVerdict::Reject,
                };
                let _ = self.overlay.report_gossip(id, source, verdict).await;
            }
            OverlayEvent::SyncRequest {
                peer,
                request,
                token,
            } => {
                let response = self.serve_sync(peer, request).await;
                let _ = self.overlay.respond_sync(token, response).await;
            }
            OverlayEvent::PeerConnected { peer, .. } => {
                self.connected.insert(peer);
                self.on_peer_connected(peer);
            }
            OverlayEvent::PeerDisconnected { peer } => {
                self.connected.remove(&peer);
                for peers in self.topic_peers.values_mut() {
                    peers.remove(&peer);
                }
            }
            OverlayEvent::PeerSubscribed { peer, server } => {
                self.topic_peers.entry(server).or_default().insert(peer);
                self.start_sync(SpaceId::from(server), peer);
            }
            OverlayEvent::PeerUnsubscribed { peer, server } => {
                if let Some(peers) = self.topic_peers.get_mut(&server) {
                    peers.remove(&peer);
                }
            }
            OverlayEvent::Lagged { missed } => {
                tracing::warn!(missed, "the node fell behind the overlay; sync will repair");
            }
            OverlayEvent::Listening { .. } | OverlayEvent::NatChanged(_) => {}
        }
    }

    async fn on_internal(&mut self, internal: Internal) {
        match internal {
            Internal::Authored {
                entry,
                result,
                reply,
                response,
                dm_peer,
            } => {
                self.authoring_in_flight = self.authoring_in_flight.saturating_sub(1);
                self.on_authored(*entry, result, reply, response, dm_peer)
                    .await
            }
            Internal::Fetched {
                peer,
                bytes,
                entries,
            } => {
                self.metrics.sync_bytes.inc_by(bytes as u64);
                for verified in entries {
                    let _ = self
                        .ingest_checked(verified, ingest::Source::Peer(peer))
                        .await;
                }
                // A chunk is a long turn: let the tasks that share this
                // worker (the sync task fetching the next chunk, its
                // forwarder) run before the next one.
                tokio::task::yield_now().await;
            }
            Internal::PeerHolds { peer, log, seq } => self.peer_holds(peer, log, seq).await,
            Internal::SyncDone {
                space,
                peer,
                state_hash,
                fetched,
                error,
            } => {
                self.sync_done(space, peer, state_hash, fetched, error)
                    .await
            }
            Internal::JoinFetched(progress) => self.join_fetched(*progress).await,
            Internal::InboxFound { peer, spaces } => {
                for space in spaces {
                    self.start_sync(space, peer);
                }
            }
            Internal::Discovered { result, reply } => {
                let response = result.map(|adverts| Response::Discovered {
                    servers: adverts
                        .iter()
                        .map(|advert| {
                            let content = advert.advert();
                            crate::api::PublicServerView {
                                server_id: content.server_id.to_hex(),
                                name: content.name.clone(),
                                description: content.description.clone(),
                                members: content.member_count,
                                joined: self.servers.contains_key(&content.server_id),
                            }
                        })
                        .collect(),
                });
                let _ = reply.send(response);
            }
        }
    }

    async fn maintain(&mut self) {
        while self.tasks.try_join_next().is_some() {}
        self.refold_after_reopen();
        self.metrics
            .outbox_depth
            .set(i64::try_from(self.outbox.len()).unwrap_or(i64::MAX));
        self.metrics
            .connected_peers
            .set(i64::try_from(self.connected.len()).unwrap_or(i64::MAX));
        for (space, bytes) in &self.space_bytes {
            let server = ServerId::from_bytes(*space.as_bytes());
            if self.servers.contains_key(&server) {
                let label = crate::metrics::ServerLabel {
                    server: server.to_hex(),
                };
                self.metrics
                    .stored_bytes
                    .get_or_create(&label)
                    .set(i64::try_from(*bytes).unwrap_or(i64::MAX));
            }
        }
        // The peer cache survives a crash, not only a clean shutdown.
        let due = self
            .address_book_saved
            .is_none_or(|saved| saved.elapsed() >= ADDRESS_BOOK_SAVE_INTERVAL);
        if due {
            self.address_book_saved = Some(Instant::now());
            self.save_address_book().await;
        }
        self.retry_outbox().await;
        self.forget_left_servers().await;
        self.periodic_sync();
        self.republish_adverts().await;
    }
}

impl ServerRecord {
    /// A server we are a member of (`left`: or were, until our `Leave`
    /// reaches a peer).
    pub(crate) fn member(joined_at_ms: u64, left: bool) -> Self {
        Self {
            role: LocalRole::Member,
            joined_at_ms,
            left,
        }
    }
}

impl ServerRuntime {
    /// A server we are a member of, folded up to its genesis.
    pub(crate) fn member(
        id: ServerId,
        genesis: VerifiedEntry,
        genesis_record: ControlRecord,
        state: ServerState,
    ) -> Self {
        Self {
            id,
            control_log: Some(genesis.log_id()),
            genesis: Some(genesis),
            role: LocalRole::Member,
            records: BTreeMap::new(),
            genesis_record: Some(genesis_record),
            state: Some(state),
            last_sync_ms: None,
            advert_published: None,
            left: false,
        }
    }

    /// A replica's entry for a server whose genesis we do not hold yet.
    pub(crate) fn placeholder(id: ServerId) -> Self {
        Self {
            id,
            genesis: None,
            control_log: None,
            role: LocalRole::Replica,
            records: BTreeMap::new(),
            genesis_record: None,
            state: None,
            last_sync_ms: None,
            advert_published: None,
            left: false,
        }
    }
}

/// The peer id of a user.
pub(crate) fn peer_of(user: &UserId) -> PeerId {
    user.to_peer_id()
}

/// The user of a peer id (every Palaver peer id is an Ed25519 user id).
pub(crate) fn user_of(peer: &PeerId) -> Option<UserId> {
    UserId::from_peer_id(peer).ok()
}
