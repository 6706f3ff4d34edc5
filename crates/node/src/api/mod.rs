//! The node API: serializable requests, responses and events, shared by the
//! in-process handle ([`crate::NodeHandle`]), the headless node's control
//! socket and the desktop app.
//!
//! Ids travel as strings: servers, channels, messages and invites as
//! lowercase hex, users as their peer-id string (`12D3KooW…`). A server or
//! channel may also be named by its unique name.

mod error;

pub use error::{ErrorCategory, NodeError};

use serde::{Deserialize, Serialize};

/// A request to the node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Our identity.
    Identity,
    /// Changes our display name (used in later joins).
    SetDisplayName {
        /// 1..=64 characters.
        name: String,
    },
    /// Network and sync status.
    Status,
    /// Connected peers.
    Peers,
    /// Creates a server; every server starts with a `general` channel.
    CreateServer {
        /// 1..=100 characters.
        name: String,
        /// At most 1,000 characters.
        #[serde(default)]
        description: String,
        /// Listed in the public directory; anyone may join.
        #[serde(default)]
        public: bool,
    },
    /// The servers we belong to (or replicate).
    ListServers,
    /// One server in detail: channels, members, roles.
    ServerInfo {
        /// Id or unique name.
        server: String,
    },
    /// Changes a server's name, description or visibility (admins).
    UpdateServer {
        /// Id or unique name.
        server: String,
        /// 1..=100 characters.
        name: String,
        /// At most 1,000 characters.
        #[serde(default)]
        description: String,
        /// Listed in the public directory.
        #[serde(default)]
        public: bool,
    },
    /// Replaces a server's bootstrap peers (admins).
    SetBootstrapPeers {
        /// Id or unique name.
        server: String,
        /// Multiaddrs ending in `/p2p/<peer id>`.
        peers: Vec<String>,
    },
    /// Leaves a server (anyone but its owner): the others are told, and
    /// the server disappears from our lists.
    LeaveServer {
        /// Id or unique name.
        server: String,
    },
    /// Creates a channel (admins).
    CreateChannel {
        /// Id or unique name.
        server: String,
        /// 1..=64 characters.
        name: String,
        /// At most 500 characters.
        #[serde(default)]
        topic: String,
    },
    /// Renames a channel (admins).
    RenameChannel {
        /// Id or unique name.
        server: String,
        /// Id or unique name.
        channel: String,
        /// The new name.
        name: String,
        /// The new topic; absent (`null`): the topic stays as it is.
        #[serde(default)]
        topic: Option<String>,
    },
    /// Deletes a channel (admins).
    DeleteChannel {
        /// Id or unique name.
        server: String,
        /// Id or unique name.
        channel: String,
    },
    /// A server's live channels.
    ListChannels {
        /// Id or unique name.
        server: String,
    },
    /// Creates an invite code.
    CreateInvite {
        /// Id or unique name.
        server: String,
        /// Lifetime in milliseconds; none = never expires.
        #[serde(default)]
        expires_in_ms: Option<u64>,
        /// How many joins it admits; none = unlimited.
        #[serde(default)]
        max_uses: Option<u32>,
    },
    /// Revokes an invite.
    RevokeInvite {
        /// Id or unique name.
        server: String,
        /// The invite id (hex).
        invite_id: String,
    },
    /// Joins a server with a `palaver://invite/…` code.
    Join {
        /// The code.
        invite: String,
    },
    /// Joins a public server found in the directory.
    JoinPublic {
        /// The server id (hex).
        server: String,
    },
    /// Lists public servers from the directory.
    Discover,
    /// Sends a message; the reply comes once it is durable.
    Send {
        /// Id or unique name.
        server: String,
        /// Id or unique name.
        channel: String,
        /// At most 5,000 characters.
        text: String,
        /// A retry with the same id never creates a second message.
        #[serde(default)]
        client_txn_id: Option<String>,
        /// The message replied to.
        #[serde(default)]
        reply_to: Option<String>,
    },
    /// Edits one of our messages.
    Edit {
        /// Id or unique name.
        server: String,
        /// Id or unique name.
        channel: String,
        /// The message.
        message_id: String,
        /// The new text.
        text: String,
        /// Idempotency id.
        #[serde(default)]
        client_txn_id: Option<String>,
    },
    /// Deletes a message: our own, or anyone's as a moderator.
    Redact {
        /// Id or unique name.
        server: String,
        /// Id or unique name.
        channel: String,
        /// The message.
        message_id: String,
        /// Idempotency id.
        #[serde(default)]
        client_txn_id: Option<String>,
    },
    /// Adds or removes a reaction.
    React {
        /// Id or unique name.
        server: String,
        /// Id or unique name.
        channel: String,
        /// The message.
        message_id: String,
        /// One emoji (1..=64 bytes).
        emoji: String,
        /// True to take the reaction back.
        #[serde(default)]
        remove: bool,
        /// Idempotency id.
        #[serde(default)]
        client_txn_id: Option<String>,
    },
    /// A page of a channel's history, newest first.
    History {
        /// Id or unique name.
        server: String,
        /// Id or unique name.
        channel: String,
        /// Most messages (1..=500).
        limit: u32,
        /// A cursor from an earlier page: only older messages.
        #[serde(default)]
        before: Option<String>,
    },
    /// Marks a channel read up to its newest message.
    MarkRead {
        /// Id or unique name.
        server: String,
        /// Id or unique name.
        channel: String,
    },
    /// Sends a direct message.
    DmSend {
        /// The recipient's user id.
        user: String,
        /// At most 5,000 characters.
        text: String,
        /// Idempotency id.
        #[serde(default)]
        client_txn_id: Option<String>,
    },
    /// A page of a DM conversation, newest first.
    DmHistory {
        /// The other user's id.
        user: String,
        /// Most messages (1..=500).
        limit: u32,
        /// Only older than this cursor.
        #[serde(default)]
        before: Option<String>,
    },
    /// Our DM conversations.
    DmList,
    /// Removes a member (moderators).
    Kick {
        /// Id or unique name.
        server: String,
        /// The member's user id.
        user: String,
        /// Why.
        #[serde(default)]
        reason: String,
    },
    /// Bans a user (admins).
    Ban {
        /// Id or unique name.
        server: String,
        /// The user id.
        user: String,
        /// Why.
        #[serde(default)]
        reason: String,
    },
    /// Lifts a ban (admins).
    Unban {
        /// Id or unique name.
        server: String,
        /// The user id.
        user: String,
    },
    /// Gives a member a role.
    GrantRole {
        /// Id or unique name.
        server: String,
        /// The member's user id.
        user: String,
        /// `member`, `moderator`, `admin` or `owner`.
        role: String,
    },
    /// Takes a role back.
    RevokeRole {
        /// Id or unique name.
        server: String,
        /// The member's user id.
        user: String,
        /// The role.
        role: String,
    },
    /// Stops the node gracefully.
    Shutdown,
}

/// The answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// Done; nothing to return.
    Ok,
    /// Our identity.
    Identity(IdentityView),
    /// Network and sync status.
    Status(StatusView),
    /// Connected peers.
    Peers {
        /// The peers.
        peers: Vec<PeerView>,
    },
    /// Servers.
    Servers {
        /// The servers.
        servers: Vec<ServerView>,
    },
    /// One server in detail.
    Server(ServerDetail),
    /// Channels.
    Channels {
        /// The channels.
        channels: Vec<ChannelView>,
    },
    /// One channel.
    Channel(ChannelView),
    /// A new invite.
    Invite(InviteView),
    /// Public servers.
    Discovered {
        /// The servers.
        servers: Vec<PublicServerView>,
    },
    /// A message is durable.
    Sent(SendAck),
    /// A page of history.
    History(HistoryPage),
    /// DM conversations.
    Dms {
        /// The conversations.
        conversations: Vec<DmView>,
    },
}

/// Our identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityView {
    /// Our user id (peer id string).
    pub user_id: String,
    /// Our display name.
    pub display_name: String,
}

/// A peer we are connected to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerView {
    /// Its peer id.
    pub peer_id: String,
}

/// Network and sync status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    /// Our user id.
    pub user_id: String,
    /// Addresses we listen on.
    pub listen_addrs: Vec<String>,
    /// Addresses confirmed reachable from outside.
    pub external_addrs: Vec<String>,
    /// `unknown`, `public` or `private`.
    pub nat: String,
    /// Connected peers.
    pub connected_peers: usize,
    /// Peers in the DHT routing table.
    pub dht_peers: usize,
    /// Relays holding a reservation for us.
    pub relays: Vec<String>,
    /// Per-server sync state.
    pub servers: Vec<ServerSyncView>,
    /// Entries waiting in the outbox for a peer to confirm them.
    pub outbox_depth: usize,
    /// Entries in the local ledger.
    pub ledger_entries: u64,
    /// Bytes of entries in the local ledger.
    pub ledger_bytes: u64,
    /// Entries received from peers since the node started (gossip, pushes
    /// and sync), counted before any check: duplicates and refused ones
    /// too.
    #[serde(default)]
    pub entries_received: u64,
    /// Sync requests from peers answered since the node started
    /// (refusals too).
    #[serde(default)]
    pub sync_requests_served: u64,
}

/// The sync state of one server.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSyncView {
    /// The server id.
    pub server_id: String,
    /// Its name (empty for servers we only replicate).
    pub name: String,
    /// Gossip mesh peers.
    pub mesh_peers: usize,
    /// Peers subscribed to the server's topic.
    pub topic_peers: usize,
    /// Bootstrap / replica peers currently connected.
    pub replicas_connected: usize,
    /// Entries held for the server.
    pub entries: u64,
    /// Entries received but waiting for earlier ones or for a key.
    pub pending: usize,
    /// When the last sync with a peer finished (ms since the Unix epoch).
    pub last_sync_ms: Option<u64>,
    /// The folded state's hash (hex), for comparing with peers.
    pub state_hash: String,
}

/// A server in a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerView {
    /// The server id (hex).
    pub server_id: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Listed in the directory.
    pub public: bool,
    /// Our role (`member` … `owner`); `replica` when we only store it.
    pub role: String,
    /// Unread messages over all channels.
    pub unread: u64,
    /// Member count.
    pub members: usize,
}

/// A server in detail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerDetail {
    /// The summary.
    pub server: ServerView,
    /// Live channels.
    pub channels: Vec<ChannelView>,
    /// Members.
    pub members: Vec<MemberView>,
    /// Bootstrap peers (multiaddrs).
    pub bootstrap_peers: Vec<String>,
    /// The current key epoch.
    pub key_epoch: u32,
    /// The folded state's hash (hex).
    pub state_hash: String,
}

/// A channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelView {
    /// The channel id (hex).
    pub channel_id: String,
    /// Its name.
    pub name: String,
    /// Its topic.
    pub topic: String,
    /// Unread messages.
    pub unread: u64,
}

/// A member of a server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    /// The user id.
    pub user_id: String,
    /// The display name.
    pub display_name: String,
    /// `member`, `moderator`, `admin` or `owner`.
    pub role: String,
    /// Connected to us right now.
    pub online: bool,
}

/// A new invite.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteView {
    /// The `palaver://invite/…` code. A secret: it carries the server key.
    pub invite: String,
    /// The invite id (hex), for revoking it.
    pub invite_id: String,
    /// When it expires (ms since the Unix epoch).
    pub expires_at_ms: Option<u64>,
    /// How many joins it admits.
    pub max_uses: Option<u32>,
}

/// A public server from the directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicServerView {
    /// The server id (hex).
    pub server_id: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Approximate member count.
    pub members: u32,
    /// Whether we already belong to it.
    pub joined: bool,
}

/// The acknowledgement of a send: the entry is durable locally.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendAck {
    /// The new message's id (hex).
    pub message_id: String,
    /// The client transaction id it was sent with.
    pub client_txn_id: String,
    /// The message's timestamp.
    pub timestamp_ms: u64,
    /// True when this was a retry of an earlier send with the same id.
    pub duplicate: bool,
}

/// A page of history, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    /// The messages.
    pub messages: Vec<MessageView>,
    /// Pass as `before` to get the next older page; none at the start.
    pub before: Option<String>,
}

/// Where a message of ours has got to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not yet durable locally.
    Pending,
    /// Durable in our ledger.
    Stored,
    /// Also held by at least one replica (bootstrap peer).
    Replicated,
    /// Held by `by` of the `of` other members.
    Seen {
        /// Members holding it.
        by: u32,
        /// Other members.
        of: u32,
    },
}

/// A reaction on a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionView {
    /// The emoji.
    pub emoji: String,
    /// Who reacted (user ids).
    pub users: Vec<String>,
}

/// A message as the UI shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    /// The message id (hex).
    pub message_id: String,
    /// The author's user id.
    pub author: String,
    /// The author's display name.
    pub author_name: String,
    /// The current text (empty when redacted).
    pub text: String,
    /// The author's timestamp.
    pub timestamp_ms: u64,
    /// Edited at least once.
    pub edited: bool,
    /// Deleted by its author or a moderator.
    pub redacted: bool,
    /// The message this replies to.
    pub reply_to: Option<String>,
    /// Reactions.
    pub reactions: Vec<ReactionView>,
    /// Written by us.
    pub mine: bool,
    /// Delivery state (for our messages).
    pub delivery: Option<DeliveryState>,
    /// Position cursor (use as `before` to page back from here).
    pub cursor: String,
}

/// A DM conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmView {
    /// The other user's id.
    pub user_id: String,
    /// Their display name, if known.
    pub display_name: String,
    /// Unread messages.
    pub unread: u64,
}

/// Something that happened, pushed to every subscriber.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The list of servers changed (joined, created, left).
    ServersChanged,
    /// A server's state changed (channels, members, roles, profile).
    ServerUpdated {
        /// The server id.
        server_id: String,
    },
    /// A new or changed message in a channel.
    Message {
        /// The server id.
        server_id: String,
        /// The channel id.
        channel_id: String,
        /// The message as it now stands.
        message: MessageView,
    },
    /// A new or changed direct message.
    DirectMessage {
        /// The other user's id.
        user_id: String,
        /// The message.
        message: MessageView,
    },
    /// A message of ours moved along its delivery.
    Delivery {
        /// The message id.
        message_id: String,
        /// Its new state.
        state: DeliveryState,
    },
    /// A sync with a peer made progress.
    SyncProgress {
        /// The server (or DM space) id.
        space_id: String,
        /// Entries fetched so far in this sync.
        fetched: u64,
        /// True when the sync finished.
        done: bool,
    },
    /// Network status changed.
    Network(StatusView),
    /// Something failed in the background.
    Error(NodeError),
    /// This subscriber fell behind and missed events.
    Lagged {
        /// How many.
        missed: u64,
    },
}
