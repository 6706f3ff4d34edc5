//! What the subcommands print: lines for people, or with `--json` one JSON
//! object per line with the stable fields documented in `docs/cli.md`.
//! Lists print one object per item (nothing for an empty list); errors
//! print `{"error":{…}}` on standard output in `--json` mode and a sentence
//! on standard error otherwise.

use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use super::error::CliError;
use crate::api::{
    ChannelView, DeliveryState, MemberView, MessageView, ReactionView, Response, ServerDetail,
    StatusView,
};

/// A message as `history`, `dm history` and `tail` print it in `--json`
/// mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MessageLine {
    /// The server (`tail` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,
    /// The channel (`tail` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    /// The other user of a direct message (`dm tail` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The message id (hex).
    pub message_id: String,
    /// The author's user id.
    pub author: String,
    /// The author's display name.
    pub author_name: String,
    /// The current text (empty when redacted).
    pub text: String,
    /// The author's timestamp (ms since the Unix epoch).
    pub timestamp_ms: u64,
    /// Edited at least once.
    pub edited: bool,
    /// Deleted.
    pub redacted: bool,
    /// The message replied to.
    pub reply_to: Option<String>,
    /// Reactions.
    pub reactions: Vec<ReactionView>,
    /// Written by us.
    pub mine: bool,
    /// Where our message has got to (ours only).
    pub delivery: Option<DeliveryState>,
    /// Pass as `--before` to page back from this message.
    pub cursor: String,
}

impl MessageLine {
    /// The line of a message, with its server and channel when known.
    pub fn new(message: &MessageView, server_id: Option<&str>, channel_id: Option<&str>) -> Self {
        Self {
            server_id: server_id.map(str::to_owned),
            channel_id: channel_id.map(str::to_owned),
            user_id: None,
            message_id: message.message_id.clone(),
            author: message.author.clone(),
            author_name: message.author_name.clone(),
            text: message.text.clone(),
            timestamp_ms: message.timestamp_ms,
            edited: message.edited,
            redacted: message.redacted,
            reply_to: message.reply_to.clone(),
            reactions: message.reactions.clone(),
            mine: message.mine,
            delivery: message.delivery,
            cursor: message.cursor.clone(),
        }
    }
}

/// A server as `server create`, `server info` and `join` print it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServerLine {
    /// The server id (hex).
    pub server_id: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Listed in the public directory.
    pub public: bool,
    /// Our role (`member` … `owner`, or `replica`).
    pub role: String,
    /// Unread messages.
    pub unread: u64,
    /// Member count.
    pub members: usize,
    /// Live channels.
    pub channels: Vec<ChannelView>,
    /// The members.
    pub member_list: Vec<MemberView>,
    /// Bootstrap peers (multiaddrs).
    pub bootstrap_peers: Vec<String>,
    /// The current key epoch.
    pub key_epoch: u32,
    /// The folded state's hash (hex).
    pub state_hash: String,
}

impl From<&ServerDetail> for ServerLine {
    fn from(detail: &ServerDetail) -> Self {
        Self {
            server_id: detail.server.server_id.clone(),
            name: detail.server.name.clone(),
            description: detail.server.description.clone(),
            public: detail.server.public,
            role: detail.server.role.clone(),
            unread: detail.server.unread,
            members: detail.server.members,
            channels: detail.channels.clone(),
            member_list: detail.members.clone(),
            bootstrap_peers: detail.bootstrap_peers.clone(),
            key_epoch: detail.key_epoch,
            state_hash: detail.state_hash.clone(),
        }
    }
}

#[derive(Serialize)]
struct OkLine {
    ok: bool,
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned())
}

/// `2026-01-02T03:04:05Z`.
pub fn format_time(timestamp_ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(timestamp_ms)).to_string()
}

/// A user id shortened for people: its last 8 characters.
pub(crate) fn short(id: &str) -> &str {
    id.get(id.len().saturating_sub(8)..).unwrap_or(id)
}

/// One message for people.
pub fn message_text(message: &MessageView, channel_name: Option<&str>) -> String {
    let mut line = format!("[{}] ", format_time(message.timestamp_ms));
    if let Some(channel) = channel_name {
        line.push_str(&format!("#{channel} "));
    }
    line.push_str(&format!(
        "{} ({}): ",
        message.author_name,
        short(&message.author)
    ));
    if message.redacted {
        line.push_str("[deleted]");
    } else {
        line.push_str(&message.text);
        if message.edited {
            line.push_str(" (edited)");
        }
    }
    for reaction in &message.reactions {
        line.push_str(&format!(" [{} {}]", reaction.emoji, reaction.users.len()));
    }
    line
}

fn status_lines(status: &StatusView) -> Vec<String> {
    let list = |items: &[String]| {
        if items.is_empty() {
            "-".to_owned()
        } else {
            items.join(", ")
        }
    };
    let mut lines = vec![
        format!("user id:   {}", status.user_id),
        format!("listen:    {}", list(&status.listen_addrs)),
        format!("external:  {}", list(&status.external_addrs)),
        format!("nat:       {}", status.nat),
        format!(
            "peers:     {} connected, {} in the DHT routing table",
            status.connected_peers, status.dht_peers
        ),
        format!("relays:    {}", list(&status.relays)),
        format!("outbox:    {} entries waiting", status.outbox_depth),
        format!(
            "ledger:    {} entries, {} bytes",
            status.ledger_entries, status.ledger_bytes
        ),
    ];
    if status.servers.is_empty() {
        lines.push("servers:   -".to_owned());
    } else {
        lines.push("servers:".to_owned());
    }
    for server in &status.servers {
        let name = if server.name.is_empty() {
            "(replica)"
        } else {
            server.name.as_str()
        };
        let synced = server
            .last_sync_ms
            .map_or_else(|| "never".to_owned(), format_time);
        lines.push(format!(
            "  {} {name}: {} entries, {} pending, {} mesh / {} topic peers, {} replicas connected, last sync {synced}",
            server.server_id,
            server.entries,
            server.pending,
            server.mesh_peers,
            server.topic_peers,
            server.replicas_connected
        ));
    }
    lines
}

fn server_lines(detail: &ServerDetail) -> Vec<String> {
    let server = &detail.server;
    let mut lines = vec![
        format!("{}  {}", server.server_id, server.name),
        format!(
            "  {}, you are {}, {} members, key epoch {}",
            if server.public { "public" } else { "private" },
            server.role,
            server.members,
            detail.key_epoch
        ),
    ];
    if !server.description.is_empty() {
        lines.push(format!("  {}", server.description));
    }
    lines.push("  channels:".to_owned());
    for channel in &detail.channels {
        lines.push(format!("    {}  #{}", channel.channel_id, channel.name));
    }
    lines.push("  members:".to_owned());
    for member in &detail.members {
        lines.push(format!(
            "    {}  {} ({}{})",
            member.user_id,
            member.display_name,
            member.role,
            if member.online { ", online" } else { "" }
        ));
    }
    if !detail.bootstrap_peers.is_empty() {
        lines.push("  bootstrap peers:".to_owned());
        for peer in &detail.bootstrap_peers {
            lines.push(format!("    {peer}"));
        }
    }
    lines
}

/// The lines printing `response`; `done` is the human line for a bare
/// `Ok` (empty: print nothing).
pub fn render(response: &Response, json_mode: bool, done: &str) -> Vec<String> {
    if json_mode {
        return match response {
            Response::Ok => vec![json(&OkLine { ok: true })],
            Response::Identity(view) => vec![json(view)],
            Response::Status(view) => vec![json(view)],
            Response::Peers { peers } => peers.iter().map(json).collect(),
            Response::Servers { servers } => servers.iter().map(json).collect(),
            Response::Server(detail) => vec![json(&ServerLine::from(detail))],
            Response::Channels { channels } => channels.iter().map(json).collect(),
            Response::Channel(view) => vec![json(view)],
            Response::Invite(view) => vec![json(view)],
            Response::Discovered { servers } => servers.iter().map(json).collect(),
            Response::Sent(ack) => vec![json(ack)],
            // Oldest first, like the human output: the first line's cursor
            // pages back.
            Response::History(page) => page
                .messages
                .iter()
                .rev()
                .map(|message| json(&MessageLine::new(message, None, None)))
                .collect(),
            Response::Dms { conversations } => conversations.iter().map(json).collect(),
        };
    }
    match response {
        Response::Ok if done.is_empty() => Vec::new(),
        Response::Ok => vec![done.to_owned()],
        Response::Identity(view) => vec![format!("{}  {}", view.user_id, view.display_name)],
        Response::Status(view) => status_lines(view),
        Response::Peers { peers } => peers.iter().map(|peer| peer.peer_id.clone()).collect(),
        Response::Servers { servers } => servers
            .iter()
            .map(|server| {
                format!(
                    "{}  {}  ({}, {} members, {} unread)",
                    server.server_id, server.name, server.role, server.members, server.unread
                )
            })
            .collect(),
        Response::Server(detail) => server_lines(detail),
        Response::Channels { channels } => channels
            .iter()
            .map(|channel| {
                let mut line = format!("{}  #{}", channel.channel_id, channel.name);
                if !channel.topic.is_empty() {
                    line.push_str(&format!("  {}", channel.topic));
                }
                if channel.unread > 0 {
                    line.push_str(&format!("  ({} unread)", channel.unread));
                }
                line
            })
            .collect(),
        Response::Channel(channel) => vec![format!("{}  #{}", channel.channel_id, channel.name)],
        // The code alone, so that `$(palaver-node invite create …)` works.
        Response::Invite(view) => vec![view.invite.clone()],
        Response::Discovered { servers } => servers
            .iter()
            .map(|server| {
                format!(
                    "{}  {} — {} ({} members{})",
                    server.server_id,
                    server.name,
                    server.description,
                    server.members,
                    if server.joined { ", joined" } else { "" }
                )
            })
            .collect(),
        Response::Sent(ack) => vec![ack.message_id.clone()],
        Response::History(page) => page
            .messages
            .iter()
            .rev()
            .map(|message| message_text(message, None))
            .collect(),
        Response::Dms { conversations } => conversations
            .iter()
            .map(|dm| format!("{}  {} ({} unread)", dm.user_id, dm.display_name, dm.unread))
            .collect(),
    }
}

/// The lines of an error: (standard output, standard error).
pub fn render_error(err: &CliError, json_mode: bool) -> (Option<String>, Option<String>) {
    #[derive(Serialize)]
    struct ErrorLine<'a> {
        error: &'a crate::api::NodeError,
    }
    if json_mode {
        (Some(json(&ErrorLine { error: &err.error })), None)
    } else {
        (
            None,
            Some(format!("error: {} [{}]", err.error.message, err.error.code)),
        )
    }
}

/// Prints to standard output; a closed pipe (`| head`) is not an error.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    json: bool,
}

impl Output {
    /// Human output, or `--json`.
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// Whether `--json` was asked for.
    pub fn json(&self) -> bool {
        self.json
    }

    /// Prints lines.
    pub fn lines(&self, lines: &[String]) {
        let mut out = std::io::stdout().lock();
        for line in lines {
            if writeln!(out, "{line}").is_err() {
                return;
            }
        }
        let _ = out.flush();
    }

    /// Prints one value: JSON, or `human`.
    pub fn value<T: Serialize>(&self, value: &T, human: &str) {
        if self.json {
            self.lines(&[json(value)]);
        } else if !human.is_empty() {
            self.lines(&[human.to_owned()]);
        }
    }

    /// Prints a response.
    pub fn response(&self, response: &Response, done: &str) {
        self.lines(&render(response, self.json, done));
    }

    /// Prints an error.
    pub fn error(&self, err: &CliError) {
        let (out, err) = render_error(err, self.json);
        if let Some(line) = out {
            self.lines(&[line]);
        }
        if let Some(line) = err {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::api::{HistoryPage, InviteView, SendAck, ServerView};

    fn message(id: &str, text: &str, timestamp_ms: u64) -> MessageView {
        MessageView {
            message_id: id.to_owned(),
            author: "12D3KooWAuthor".to_owned(),
            author_name: "alice".to_owned(),
            text: text.to_owned(),
            timestamp_ms,
            edited: false,
            redacted: false,
            reply_to: None,
            reactions: vec![],
            mine: true,
            delivery: Some(DeliveryState::Stored),
            cursor: format!("cursor-{id}"),
        }
    }

    #[test]
    fn history_json_is_oldest_first_with_the_stable_fields() {
        let page = HistoryPage {
            // The API answers newest first.
            messages: vec![
                message("bb", "second", 2_000),
                message("aa", "first", 1_000),
            ],
            before: None,
        };
        let lines = render(&Response::History(page.clone()), true, "");
        assert_eq!(lines.len(), 2);
        let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(
            first,
            serde_json::json!({
                "message_id": "aa",
                "author": "12D3KooWAuthor",
                "author_name": "alice",
                "text": "first",
                "timestamp_ms": 1000,
                "edited": false,
                "redacted": false,
                "reply_to": null,
                "reactions": [],
                "mine": true,
                "delivery": {"state": "stored"},
                "cursor": "cursor-aa",
            })
        );
        let human = render(&Response::History(page), false, "");
        assert_eq!(
            human,
            [
                "[1970-01-01T00:00:01Z] alice (oWAuthor): first",
                "[1970-01-01T00:00:02Z] alice (oWAuthor): second"
            ]
        );
    }

    #[test]
    fn tail_lines_carry_server_and_channel() {
        let line = MessageLine::new(&message("aa", "hi", 5), Some("s1"), Some("c1"));
        let value: serde_json::Value = serde_json::from_str(&json(&line)).unwrap();
        assert_eq!(value["server_id"], "s1");
        assert_eq!(value["channel_id"], "c1");
        assert_eq!(value["text"], "hi");
        let without =
            serde_json::to_value(MessageLine::new(&message("aa", "hi", 5), None, None)).unwrap();
        assert!(without.get("server_id").is_none());
    }

    #[test]
    fn single_objects_lists_and_ok() {
        let ack = SendAck {
            message_id: "m1".to_owned(),
            client_txn_id: "t1".to_owned(),
            timestamp_ms: 7,
            duplicate: false,
        };
        assert_eq!(
            render(&Response::Sent(ack.clone()), true, ""),
            [r#"{"message_id":"m1","client_txn_id":"t1","timestamp_ms":7,"duplicate":false}"#]
        );
        assert_eq!(render(&Response::Sent(ack), false, ""), ["m1"]);
        let invite = InviteView {
            invite: "palaver://invite/abc".to_owned(),
            invite_id: "i1".to_owned(),
            expires_at_ms: None,
            max_uses: Some(2),
        };
        assert_eq!(
            render(&Response::Invite(invite.clone()), true, ""),
            [
                r#"{"invite":"palaver://invite/abc","invite_id":"i1","expires_at_ms":null,"max_uses":2}"#
            ]
        );
        assert_eq!(
            render(&Response::Invite(invite), false, ""),
            ["palaver://invite/abc"]
        );
        let server = ServerView {
            server_id: "s1".to_owned(),
            name: "garden".to_owned(),
            description: String::new(),
            public: false,
            role: "owner".to_owned(),
            unread: 0,
            members: 1,
        };
        let servers = Response::Servers {
            servers: vec![server.clone(), server],
        };
        assert_eq!(render(&servers, true, "").len(), 2);
        assert!(render(&Response::Servers { servers: vec![] }, true, "").is_empty());
        assert_eq!(render(&Response::Ok, true, "done"), [r#"{"ok":true}"#]);
        assert_eq!(render(&Response::Ok, false, "done"), ["done"]);
        assert!(render(&Response::Ok, false, "").is_empty());
    }

    #[test]
    fn errors_go_to_stdout_as_json_or_to_stderr_for_people() {
        let err = CliError::no_node(std::path::Path::new("/data"));
        let (out, err_line) = render_error(&err, true);
        let value: serde_json::Value = serde_json::from_str(&out.unwrap()).unwrap();
        assert_eq!(value["error"]["code"], "cli.no_node");
        assert_eq!(value["error"]["category"], "network");
        assert!(err_line.is_none());
        let (out, err_line) = render_error(&err, false);
        assert!(out.is_none());
        assert!(
            err_line
                .unwrap()
                .starts_with("error: no palaver-node is running for data directory /data")
        );
    }
}
