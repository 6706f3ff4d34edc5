//! The command line of `palaver-node` (`clap` derive types). Every
//! subcommand but `init` and `run` is a client of a running node's control
//! socket; `docs/cli.md` documents them all.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use net_overlay::Multiaddr;

use super::logging::LogFormat;

/// `palaver-node`: a headless Palaver node (bootstrap, relay, replica) and a
/// scriptable chat client of it.
#[derive(Debug, Parser)]
#[command(name = "palaver-node", version, about, long_about = None)]
pub struct Cli {
    /// Options every subcommand accepts.
    #[command(flatten)]
    pub global: GlobalOptions,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand accepts.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalOptions {
    /// The node's data directory [default: the OS data directory, e.g.
    /// ~/.local/share/palaver/node on Linux].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Read the passphrase from the first line of FILE (otherwise
    /// PALAVER_PASSPHRASE, otherwise the OS keyring).
    #[arg(long, global = true, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Machine-readable output: one JSON object per line.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Creates the identity of this data directory.
    Init(InitArgs),
    /// Runs the node until SIGINT/SIGTERM or `palaver-node shutdown`.
    Run(Box<RunArgs>),
    /// Shows our user id and display name.
    Id,
    /// Shows addresses, NAT status, peers, DHT size and per-server sync state.
    Status,
    /// Lists connected peers.
    Peers,
    /// Servers: create, list, inspect, set bootstrap peers.
    #[command(subcommand)]
    Server(ServerCommand),
    /// Channels: create, list.
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// Invites: create, revoke.
    #[command(subcommand)]
    Invite(InviteCommand),
    /// Joins a server with an invite code, or a public server by id.
    Join(JoinArgs),
    /// Lists public servers from the directory.
    Discover,
    /// Sends a message; returns once it is durable.
    Send(SendArgs),
    /// Edits one of our messages.
    Edit(EditArgs),
    /// Deletes a message (ours, or anyone's as a moderator).
    Redact(MessageArgs),
    /// Adds or removes a reaction.
    React(ReactArgs),
    /// Shows a channel's history, oldest first.
    History(HistoryArgs),
    /// Prints a server's new messages as they arrive, until interrupted.
    Tail(TailArgs),
    /// Direct messages: send, history, list.
    #[command(subcommand)]
    Dm(DmCommand),
    /// Removes a member from a server (moderators).
    Kick(RemoveArgs),
    /// Bans a user from a server (admins).
    Ban(RemoveArgs),
    /// Lifts a ban (admins).
    Unban(UserArgs),
    /// Roles: grant, revoke.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Stops the running node gracefully.
    Shutdown,
}

/// `init`.
#[derive(Debug, Clone, Default, Args)]
pub struct InitArgs {
    /// The display name others see.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

/// `run`. Every setting can also come from `--config FILE`; flags override it.
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// Listen address (repeatable) [default: /ip4/0.0.0.0/udp/4001/quic-v1
    /// and /ip4/0.0.0.0/tcp/4001].
    #[arg(long = "listen", value_name = "MULTIADDR")]
    pub listen: Vec<Multiaddr>,
    /// Our public address, announced to others (repeatable); a relay serves
    /// reservations only once it has one.
    #[arg(long = "external", value_name = "MULTIADDR")]
    pub external: Vec<Multiaddr>,
    /// A peer to connect to at start and keep connected, ending in
    /// /p2p/<peer id> (repeatable).
    #[arg(long = "bootstrap", value_name = "MULTIADDR")]
    pub bootstrap: Vec<Multiaddr>,
    /// Store and serve this server's ciphertext without membership
    /// (repeatable; server id in hex).
    #[arg(
        long = "replica-for",
        value_name = "SERVER",
        conflicts_with = "replica_all"
    )]
    pub replica_for: Vec<String>,
    /// Store and serve every server whose entries reach us.
    #[arg(long)]
    pub replica_all: bool,
    /// Serve Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Log format.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// A TOML file with the same settings.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The display name others see (overrides the one given to `init`).
    #[arg(long, value_name = "NAME")]
    pub display_name: Option<String>,
}

/// `server …`.
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Creates a server (with a `general` channel).
    Create {
        /// Its name (1..=100 characters).
        name: String,
        /// List it in the public directory; anyone may join.
        #[arg(long)]
        public: bool,
        /// Its description.
        #[arg(long, value_name = "TEXT", default_value = "")]
        description: String,
    },
    /// Lists the servers we belong to (or replicate).
    List,
    /// Shows one server: channels, members, bootstrap peers.
    Info {
        /// Id or unique name.
        server: String,
    },
    /// Leaves a server (anyone but its owner).
    Leave {
        /// Id or unique name.
        server: String,
    },
    /// Bootstrap peers of a server.
    #[command(subcommand)]
    Bootstrap(BootstrapCommand),
}

/// `server bootstrap …`.
#[derive(Debug, Subcommand)]
pub enum BootstrapCommand {
    /// Replaces the server's bootstrap peers (admins).
    Set {
        /// Id or unique name.
        server: String,
        /// Multiaddrs ending in /p2p/<peer id>.
        #[arg(required = true, value_name = "MULTIADDR")]
        peers: Vec<String>,
    },
}

/// `channel …`.
#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// Creates a channel (admins).
    Create {
        /// Server id or unique name.
        server: String,
        /// The channel's name (1..=64 characters).
        name: String,
        /// Its topic.
        #[arg(long, value_name = "TEXT", default_value = "")]
        topic: String,
    },
    /// Lists a server's channels.
    List {
        /// Server id or unique name.
        server: String,
    },
    /// Renames a channel (admins).
    Rename {
        /// Server id or unique name.
        server: String,
        /// Channel id or unique name.
        channel: String,
        /// The new name (1..=64 characters).
        name: String,
        /// A new topic too (without it the topic stays).
        #[arg(long, value_name = "TEXT")]
        topic: Option<String>,
    },
    /// Deletes a channel (admins).
    Delete {
        /// Server id or unique name.
        server: String,
        /// Channel id or unique name.
        channel: String,
    },
}

/// `invite …`.
#[derive(Debug, Subcommand)]
pub enum InviteCommand {
    /// Creates an invite and prints its palaver://invite/… code (a secret:
    /// it carries the server's key).
    Create {
        /// Server id or unique name.
        server: String,
        /// Lifetime, e.g. `30m`, `7d`, `1h 30m` [default: never expires].
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        expires: Option<Duration>,
        /// How many joins it admits [default: unlimited].
        #[arg(long, value_name = "N")]
        max_uses: Option<u32>,
    },
    /// Revokes an invite.
    Revoke {
        /// Server id or unique name.
        server: String,
        /// The invite id (hex), as printed by `invite create`.
        invite_id: String,
    },
}

/// `join`.
#[derive(Debug, Clone, Args)]
pub struct JoinArgs {
    /// The palaver://invite/… code, or `-` to read it from standard input
    /// (which keeps it out of the process list).
    #[arg(
        value_name = "INVITE_CODE",
        required_unless_present = "public",
        conflicts_with = "public"
    )]
    pub invite: Option<String>,
    /// Join a public server by its id instead.
    #[arg(long, value_name = "SERVER_ID")]
    pub public: Option<String>,
}

/// `send`.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// Server id or unique name.
    pub server: String,
    /// Channel id or unique name.
    pub channel: String,
    /// The text (at most 5,000 characters), or `-` to read standard input.
    pub text: String,
    /// Reply to this message id.
    #[arg(long, value_name = "MESSAGE_ID")]
    pub reply_to: Option<String>,
    /// Idempotency id: a retry with the same id never sends twice.
    #[arg(long, value_name = "ID")]
    pub txn_id: Option<String>,
}

/// `edit`.
#[derive(Debug, Clone, Args)]
pub struct EditArgs {
    /// Server id or unique name.
    pub server: String,
    /// Channel id or unique name.
    pub channel: String,
    /// The message id.
    pub message_id: String,
    /// The new text, or `-` to read standard input.
    pub text: String,
}

/// A message addressed by server, channel and id.
#[derive(Debug, Clone, Args)]
pub struct MessageArgs {
    /// Server id or unique name.
    pub server: String,
    /// Channel id or unique name.
    pub channel: String,
    /// The message id.
    pub message_id: String,
}

/// `react`.
#[derive(Debug, Clone, Args)]
pub struct ReactArgs {
    /// Server id or unique name.
    pub server: String,
    /// Channel id or unique name.
    pub channel: String,
    /// The message id.
    pub message_id: String,
    /// One emoji.
    pub emoji: String,
    /// Take the reaction back.
    #[arg(long)]
    pub remove: bool,
}

/// `history`.
#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// Server id or unique name.
    pub server: String,
    /// Channel id or unique name.
    pub channel: String,
    /// Most messages (1..=500).
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub limit: u32,
    /// Only messages older than this cursor (the `cursor` of the oldest
    /// message of the previous page).
    #[arg(long, value_name = "CURSOR")]
    pub before: Option<String>,
}

/// `tail`.
#[derive(Debug, Clone, Args)]
pub struct TailArgs {
    /// Server id or unique name.
    pub server: String,
    /// Only this channel (id or unique name).
    pub channel: Option<String>,
}

/// `dm …`.
#[derive(Debug, Subcommand)]
pub enum DmCommand {
    /// Sends a direct message; returns once it is durable.
    Send {
        /// The recipient's user id.
        user: String,
        /// The text, or `-` to read standard input.
        text: String,
    },
    /// Shows a conversation, oldest first.
    History {
        /// The other user's id.
        user: String,
        /// Most messages (1..=500).
        #[arg(long, default_value_t = 50, value_name = "N")]
        limit: u32,
        /// Only messages older than this cursor.
        #[arg(long, value_name = "CURSOR")]
        before: Option<String>,
    },
    /// Lists our conversations.
    List,
    /// Prints new and changed direct messages as they arrive, until
    /// interrupted or the node stops.
    Tail {
        /// Only the conversation with this user id.
        user: Option<String>,
    },
}

/// `kick` and `ban`.
#[derive(Debug, Clone, Args)]
pub struct RemoveArgs {
    /// Server id or unique name.
    pub server: String,
    /// The user id.
    pub user: String,
    /// Why (recorded in the server's log).
    #[arg(long, default_value = "", value_name = "TEXT")]
    pub reason: String,
}

/// A user of a server.
#[derive(Debug, Clone, Args)]
pub struct UserArgs {
    /// Server id or unique name.
    pub server: String,
    /// The user id.
    pub user: String,
}

/// `role …`.
#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Gives a member a role (`member`, `moderator`, `admin`, `owner`).
    Grant {
        /// Server id or unique name.
        server: String,
        /// The member's user id.
        user: String,
        /// The role.
        role: String,
    },
    /// Takes a role back.
    Revoke {
        /// Server id or unique name.
        server: String,
        /// The member's user id.
        user: String,
        /// The role.
        role: String,
    },
}

/// Parses a duration such as `90s`, `30m`, `7d` or `1h 30m` (whole
/// milliseconds at least).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text.trim()).map_err(|err| {
        format!("{err} (expected a duration such as 90s, 30m, 12h, 7d or \"1h 30m\")")
    })?;
    if duration < Duration::from_millis(1) {
        return Err("a duration must be at least 1ms".to_owned());
    }
    Ok(duration)
}

impl Command {
    /// Whether this subcommand talks to a running node (everything but
    /// `init` and `run`).
    pub fn is_client(&self) -> bool {
        !matches!(self, Command::Init(_) | Command::Run(_))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            parse_duration(" 250ms ").unwrap(),
            Duration::from_millis(250)
        );
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("10").is_err(), "a unit is required");
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn global_options_go_anywhere_and_replica_flags_conflict() {
        let cli = Cli::try_parse_from(["palaver-node", "status", "--json", "--data-dir", "/tmp/x"])
            .unwrap();
        assert!(cli.global.json);
        assert_eq!(cli.global.data_dir, Some(PathBuf::from("/tmp/x")));
        assert!(
            Cli::try_parse_from([
                "palaver-node",
                "run",
                "--replica-all",
                "--replica-for",
                "ab"
            ])
            .is_err()
        );
        let cli = Cli::try_parse_from([
            "palaver-node",
            "invite",
            "create",
            "garden",
            "--expires",
            "7d",
            "--max-uses",
            "3",
        ])
        .unwrap();
        match cli.command {
            Command::Invite(InviteCommand::Create {
                expires, max_uses, ..
            }) => {
                assert_eq!(expires, Some(Duration::from_secs(7 * 86_400)));
                assert_eq!(max_uses, Some(3));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(Cli::try_parse_from(["palaver-node", "join"]).is_err());
        assert!(Cli::try_parse_from(["palaver-node", "join", "code", "--public", "ab"]).is_err());
        assert!(Cli::try_parse_from(["palaver-node", "join", "--public", "ab"]).is_ok());
    }
}
