//! The client subcommands: each turns into one or a few requests on the
//! running node's control socket, and prints the answer.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use super::cli::{
    BootstrapCommand, ChannelCommand, Command, DmCommand, InviteCommand, RoleCommand, ServerCommand,
};
use super::error::CliError;
use super::output::{MessageLine, Output, message_text, short};
use super::socket::ControlClient;
use crate::api::{Event, Request, Response};

/// Longest text read from standard input for `-`.
const MAX_STDIN_BYTES: u64 = 1024 * 1024;

/// `-` means: read the value from standard input (without its final line
/// ending), so that secrets and long texts stay out of the process list.
fn argument(value: String, what: &str) -> Result<String, CliError> {
    if value != "-" {
        return Ok(value);
    }
    let mut text = String::new();
    std::io::stdin()
        .take(MAX_STDIN_BYTES)
        .read_to_string(&mut text)
        .map_err(|err| {
            CliError::usage(
                "cli.stdin",
                format!("cannot read the {what} from standard input: {err}"),
            )
        })?;
    let trimmed = text.trim_end_matches(['\n', '\r']);
    Ok(trimmed.to_owned())
}

/// Runs a client subcommand against the node serving `data_dir`.
pub(crate) async fn execute(
    command: Command,
    data_dir: &Path,
    out: Output,
) -> Result<(), CliError> {
    let mut client = ControlClient::connect(data_dir).await?;
    let (request, done) = match command {
        Command::Init(_) | Command::Run(_) => {
            return Err(CliError::usage(
                "cli.not_a_client_command",
                "init and run are not client commands",
            ));
        }
        Command::Tail(args) => {
            return tail(data_dir, &mut client, args.server, args.channel, out).await;
        }
        Command::Dm(DmCommand::Tail { user }) => return dm_tail(data_dir, user, out).await,
        Command::Shutdown => {
            client.request(Request::Shutdown).await?;
            out.value(&serde_json::json!({"ok": true}), "the node has stopped");
            return Ok(());
        }
        Command::Id => (Request::Identity, ""),
        Command::Status => (Request::Status, ""),
        Command::Peers => (Request::Peers, ""),
        Command::Server(ServerCommand::Create {
            name,
            public,
            description,
        }) => (
            Request::CreateServer {
                name,
                description,
                public,
            },
            "",
        ),
        Command::Server(ServerCommand::List) => (Request::ListServers, ""),
        Command::Server(ServerCommand::Info { server }) => (Request::ServerInfo { server }, ""),
        Command::Server(ServerCommand::Leave { server }) => {
            (Request::LeaveServer { server }, "left the server")
        }
        Command::Server(ServerCommand::Bootstrap(BootstrapCommand::Set { server, peers })) => (
            Request::SetBootstrapPeers { server, peers },
            "bootstrap peers set",
        ),
        Command::Channel(ChannelCommand::Create {
            server,
            name,
            topic,
        }) => (
            Request::CreateChannel {
                server,
                name,
                topic,
            },
            "",
        ),
        Command::Channel(ChannelCommand::List { server }) => (Request::ListChannels { server }, ""),
        Command::Channel(ChannelCommand::Rename {
            server,
            channel,
            name,
            topic,
        }) => (
            Request::RenameChannel {
                server,
                channel,
                name,
                topic,
            },
            "channel renamed",
        ),
        Command::Channel(ChannelCommand::Delete { server, channel }) => (
            Request::DeleteChannel { server, channel },
            "channel deleted",
        ),
        Command::Invite(InviteCommand::Create {
            server,
            expires,
            max_uses,
        }) => (
            Request::CreateInvite {
                server,
                expires_in_ms: expires
                    .map(|duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)),
                max_uses,
            },
            "",
        ),
        Command::Invite(InviteCommand::Revoke { server, invite_id }) => (
            Request::RevokeInvite { server, invite_id },
            "invite revoked",
        ),
        Command::Join(args) => match (args.invite, args.public) {
            (_, Some(server)) => (Request::JoinPublic { server }, ""),
            (Some(invite), None) => (
                Request::Join {
                    invite: argument(invite, "invite code")?,
                },
                "",
            ),
            (None, None) => {
                return Err(CliError::usage(
                    "cli.missing_invite",
                    "give an invite code or --public SERVER_ID",
                ));
            }
        },
        Command::Discover => (Request::Discover, ""),
        Command::Send(args) => (
            Request::Send {
                server: args.server,
                channel: args.channel,
                text: argument(args.text, "message text")?,
                client_txn_id: args.txn_id,
                reply_to: args.reply_to,
            },
            "",
        ),
        Command::Edit(args) => (
            Request::Edit {
                server: args.server,
                channel: args.channel,
                message_id: args.message_id,
                text: argument(args.text, "message text")?,
                client_txn_id: None,
            },
            "",
        ),
        Command::Redact(args) => (
            Request::Redact {
                server: args.server,
                channel: args.channel,
                message_id: args.message_id,
                client_txn_id: None,
            },
            "deleted",
        ),
        Command::React(args) => (
            Request::React {
                server: args.server,
                channel: args.channel,
                message_id: args.message_id,
                emoji: args.emoji,
                remove: args.remove,
                client_txn_id: None,
            },
            "",
        ),
        Command::History(args) => (
            Request::History {
                server: args.server,
                channel: args.channel,
                limit: args.limit,
                before: args.before,
            },
            "",
        ),
        Command::Dm(DmCommand::Send { user, text }) => (
            Request::DmSend {
                user,
                text: argument(text, "message text")?,
                client_txn_id: None,
            },
            "",
        ),
        Command::Dm(DmCommand::History {
            user,
            limit,
            before,
        }) => (
            Request::DmHistory {
                user,
                limit,
                before,
            },
            "",
        ),
        Command::Dm(DmCommand::List) => (Request::DmList, ""),
        Command::Kick(args) => (
            Request::Kick {
                server: args.server,
                user: args.user,
                reason: args.reason,
            },
            "kicked",
        ),
        Command::Ban(args) => (
            Request::Ban {
                server: args.server,
                user: args.user,
                reason: args.reason,
            },
            "banned",
        ),
        Command::Unban(args) => (
            Request::Unban {
                server: args.server,
                user: args.user,
            },
            "unbanned",
        ),
        Command::Role(RoleCommand::Grant { server, user, role }) => {
            (Request::GrantRole { server, user, role }, "role granted")
        }
        Command::Role(RoleCommand::Revoke { server, user, role }) => {
            (Request::RevokeRole { server, user, role }, "role revoked")
        }
    };
    let response = client.request(request).await?;
    out.response(&response, done);
    Ok(())
}

/// `tail SERVER [CHANNEL]`: prints the server's (or channel's) messages as
/// they arrive, until interrupted or the node stops.
async fn tail(
    data_dir: &Path,
    client: &mut ControlClient,
    server: String,
    channel: Option<String>,
    out: Output,
) -> Result<(), CliError> {
    let server_id = match client.request(Request::ServerInfo { server }).await? {
        Response::Server(detail) => detail.server.server_id,
        _ => return Err(unexpected()),
    };
    let mut names = channel_names(client, &server_id).await?;
    let channel_id = match channel {
        Some(channel) => Some(
            names
                .iter()
                .find(|(id, name)| **id == channel || **name == channel)
                .map(|(id, _)| id.clone())
                .ok_or_else(|| {
                    CliError::node(crate::api::NodeError::not_found(
                        "node.unknown_channel",
                        "no such channel in this server",
                    ))
                })?,
        ),
        None => None,
    };
    // A connection that subscribes carries only events from then on, so
    // the subscription has its own.
    let mut events = ControlClient::connect(data_dir).await?;
    events.subscribe().await?;
    while let Some(event) = events.next_event().await? {
        let (event_server, event_channel, message) = match event {
            Event::Message {
                server_id,
                channel_id,
                message,
            } => (server_id, channel_id, message),
            Event::Lagged { missed } => {
                tracing::warn!(missed, "tail fell behind and missed events");
                continue;
            }
            _ => continue,
        };
        if event_server != server_id
            || channel_id
                .as_ref()
                .is_some_and(|wanted| *wanted != event_channel)
        {
            continue;
        }
        if out.json() {
            out.value(
                &MessageLine::new(&message, Some(&event_server), Some(&event_channel)),
                "",
            );
        } else {
            if !names.contains_key(&event_channel) {
                // A channel created since we started.
                names = channel_names(client, &server_id).await.unwrap_or(names);
            }
            let name = names.get(&event_channel).map(String::as_str);
            out.lines(&[message_text(&message, name)]);
        }
    }
    Ok(())
}

/// `dm tail [USER]`: direct messages as they arrive.
async fn dm_tail(data_dir: &Path, user: Option<String>, out: Output) -> Result<(), CliError> {
    // Events name users by their canonical id.
    let user = match user {
        Some(text) => Some(
            text.parse::<identity_core::UserId>()
                .map_err(|_| {
                    CliError::node(crate::api::NodeError::not_found(
                        "node.unknown_user",
                        format!("{text:?} is not a user id"),
                    ))
                })?
                .to_string(),
        ),
        None => None,
    };
    let mut events = ControlClient::connect(data_dir).await?;
    events.subscribe().await?;
    while let Some(event) = events.next_event().await? {
        let (user_id, message) = match event {
            Event::DirectMessage { user_id, message } => (user_id, message),
            Event::Lagged { missed } => {
                tracing::warn!(missed, "dm tail fell behind and missed events");
                continue;
            }
            _ => continue,
        };
        if user.as_ref().is_some_and(|wanted| *wanted != user_id) {
            continue;
        }
        if out.json() {
            let mut line = MessageLine::new(&message, None, None);
            line.user_id = Some(user_id);
            out.value(&line, "");
        } else {
            out.lines(&[format!(
                "(dm {}) {}",
                short(&user_id),
                message_text(&message, None)
            )]);
        }
    }
    Ok(())
}

/// Channel id → name of a server.
async fn channel_names(
    client: &mut ControlClient,
    server_id: &str,
) -> Result<HashMap<String, String>, CliError> {
    match client
        .request(Request::ListChannels {
            server: server_id.to_owned(),
        })
        .await?
    {
        Response::Channels { channels } => Ok(channels
            .into_iter()
            .map(|channel| (channel.channel_id, channel.name))
            .collect()),
        _ => Err(unexpected()),
    }
}

fn unexpected() -> CliError {
    CliError::node(crate::api::NodeError::new(
        crate::api::ErrorCategory::Protocol,
        "socket.unexpected_answer",
        "the node gave an unexpected kind of answer",
    ))
}
