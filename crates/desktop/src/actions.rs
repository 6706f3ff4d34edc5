//! What the user asked for. Panels emit actions; the app turns them into
//! node requests (or local UI changes). Keeping this separate from drawing
//! lets tests click through a panel and check what it asked for.

use crate::model::{Dialog, Selection, Settings};

/// One user intent.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create the identity from the form and start.
    CreateIdentity,
    /// Unlock the identity from the form and start.
    Unlock,
    /// Show a server (its first channel, or the last one viewed).
    SelectServer(String),
    /// Show a conversation.
    Select(Selection),
    /// Open a dialog.
    OpenDialog(Dialog),
    /// Close the dialog.
    CloseDialog,
    /// Load older messages of the current conversation.
    LoadOlder,
    /// Send the text in the current conversation.
    Send {
        /// The text.
        text: String,
        /// The message replied to.
        reply_to: Option<String>,
    },
    /// Send a refused message of the current conversation again (same
    /// client transaction id).
    RetrySend(String),
    /// Drop a refused message of the current conversation.
    DiscardSend(String),
    /// Replace the text of one of our messages.
    Edit {
        /// The message.
        message_id: String,
        /// The new text.
        text: String,
    },
    /// Start editing a message (fills the composer).
    StartEdit(String),
    /// Reply to a message (next send replies to it).
    ReplyTo(String),
    /// Cancel editing or replying.
    CancelCompose,
    /// Delete a message (ours, or anyone's as a moderator).
    Delete(String),
    /// Add or remove a reaction.
    React {
        /// The message.
        message_id: String,
        /// The emoji.
        emoji: String,
        /// Take it back.
        remove: bool,
    },
    /// Create a server.
    CreateServer {
        /// Name.
        name: String,
        /// Description.
        description: String,
        /// Public.
        public: bool,
    },
    /// Create a channel.
    CreateChannel {
        /// Server.
        server: String,
        /// Name.
        name: String,
    },
    /// Rename a channel.
    RenameChannel {
        /// Server.
        server: String,
        /// Channel.
        channel: String,
        /// New name.
        name: String,
    },
    /// Leave a server.
    LeaveServer {
        /// Server.
        server: String,
    },
    /// Delete a channel.
    DeleteChannel {
        /// Server.
        server: String,
        /// Channel.
        channel: String,
    },
    /// Create an invite for the invite dialog.
    CreateInvite {
        /// Server.
        server: String,
    },
    /// Join with an invite code.
    Join {
        /// The code.
        code: String,
    },
    /// Join a public server.
    JoinPublic {
        /// Server id.
        server: String,
    },
    /// Look up the public directory.
    Discover,
    /// Open a DM with a user.
    OpenDm {
        /// User id.
        user: String,
    },
    /// Moderation: kick.
    Kick {
        /// Server.
        server: String,
        /// User.
        user: String,
    },
    /// Moderation: ban.
    Ban {
        /// Server.
        server: String,
        /// User.
        user: String,
    },
    /// Give a role.
    GrantRole {
        /// Server.
        server: String,
        /// User.
        user: String,
        /// Role name.
        role: String,
    },
    /// Take a role back.
    RevokeRole {
        /// Server.
        server: String,
        /// User.
        user: String,
        /// Role name.
        role: String,
    },
    /// Set a server's bootstrap peers.
    SetBootstrapPeers {
        /// Server.
        server: String,
        /// Multiaddrs.
        peers: Vec<String>,
    },
    /// Save settings.
    SaveSettings(Settings),
    /// Refresh the diagnostics.
    RefreshStatus,
    /// Copy text to the clipboard.
    Copy(String),
}
