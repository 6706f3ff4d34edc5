//! Building the API's views from the folded state, the ledger and the
//! private indexes; resolving the names and ids users type.

use identity_core::UserId;
use messaging_proto::{ChannelId, EntryHash, LogId, ServerId, SpaceId, Text, VerifiedEntry};
use net_overlay::NatStatus;
use storage_ledger::{LedgerStore, TimelinePosition};

use super::messages::{StoredEdit, StoredReactions};
use super::{LocalRole, NodeCore, peer_of};
use crate::api::{
    ChannelView, MemberView, MessageView, NodeError, ReactionView, ServerDetail, ServerSyncView,
    ServerView, StatusView,
};
use crate::control::ServerState;
use crate::local_store::ns;

impl NodeCore {
    /// A server by hex id or by unique name (case-insensitive).
    pub(crate) fn resolve_server(&self, text: &str) -> Result<ServerId, NodeError> {
        if let Ok(id) = text.parse::<ServerId>()
            && self.servers.get(&id).is_some_and(|runtime| !runtime.left)
        {
            return Ok(id);
        }
        let matches: Vec<ServerId> = self
            .servers
            .values()
            .filter(|runtime| {
                !runtime.left
                    && runtime
                        .state
                        .as_ref()
                        .is_some_and(|state| state.profile().name.eq_ignore_ascii_case(text))
            })
            .map(|runtime| runtime.id)
            .collect();
        match matches.as_slice() {
            [one] => Ok(*one),
            [] => Err(NodeError::not_found(
                "node.unknown_server",
                format!("no server named or with id {text:?}"),
            )),
            _ => Err(NodeError::invalid(
                "node.ambiguous_server",
                format!("several servers are named {text:?}; use the server id"),
            )),
        }
    }

    /// The state of a server we are a member of.
    pub(crate) fn member_state(&self, server: &ServerId) -> Result<&ServerState, NodeError> {
        self.servers
            .get(server)
            .and_then(|runtime| runtime.state.as_ref())
            .ok_or_else(|| {
                NodeError::not_found(
                    "node.not_a_member",
                    "this node only replicates that server; it is not a member",
                )
            })
    }

    /// A live channel by hex id or name; returns its id and log.
    pub(crate) fn resolve_channel(
        &self,
        server: &ServerId,
        text: &str,
    ) -> Result<(ChannelId, LogId), NodeError> {
        let state = self.member_state(server)?;
        let text = text.trim_start_matches('#');
        let channel = text
            .parse::<ChannelId>()
            .ok()
            .and_then(|id| state.channel(&id))
            .filter(|channel| !channel.deleted)
            .or_else(|| state.channel_by_name(text))
            .ok_or_else(|| {
                NodeError::not_found(
                    "node.unknown_channel",
                    format!("no channel named or with id {text:?}"),
                )
            })?;
        Ok((channel.id, channel.log))
    }

    /// A user by peer-id string, or by unique display name among the
    /// members of `server`.
    pub(crate) fn resolve_user(
        &self,
        server: Option<&ServerId>,
        text: &str,
    ) -> Result<UserId, NodeError> {
        if let Ok(user) = text.parse::<UserId>() {
            return Ok(user);
        }
        if let Some(state) = server.and_then(|server| self.servers.get(server)?.state.as_ref()) {
            let matches: Vec<UserId> = state
                .members()
                .filter(|member| self.display_name_of(&member.user, Some(state)) == text)
                .map(|member| member.user)
                .collect();
            if let [one] = matches.as_slice() {
                return Ok(*one);
            }
        }
        Err(NodeError::not_found(
            "node.unknown_user",
            format!("{text:?} is neither a user id nor the unique name of a member"),
        ))
    }

    pub(crate) fn display_name_of(&self, user: &UserId, state: Option<&ServerState>) -> String {
        if user == &self.me {
            return self.display_name.clone();
        }
        state
            .and_then(|state| state.member(user))
            .or_else(|| {
                self.servers
                    .values()
                    .filter_map(|runtime| runtime.state.as_ref()?.member(user))
                    .next()
            })
            .map(|member| member.display_name.clone())
            .or_else(|| self.names.get(user).cloned())
            .unwrap_or_else(|| short_id(user))
    }

    fn role_name(&self, runtime: &super::ServerRuntime) -> String {
        match runtime.role {
            LocalRole::Replica => "replica".to_owned(),
            LocalRole::Member => runtime
                .state
                .as_ref()
                .and_then(|state| state.role_of(&self.me))
                .map_or_else(|| "removed".to_owned(), |role| role.as_str().to_owned()),
        }
    }

    pub(crate) fn server_view(&self, server: &ServerId) -> Option<ServerView> {
        let runtime = self.servers.get(server)?;
        let state = runtime.state.as_ref();
        let unread = state.map_or(0, |state| {
            state
                .channels()
                .map(|channel| self.unread_of(&channel.log))
                .sum()
        });
        Some(ServerView {
            server_id: server.to_hex(),
            name: state.map_or_else(String::new, |state| state.profile().name.clone()),
            description: state
                .map_or_else(String::new, |state| state.profile().description.clone()),
            public: state.is_some_and(|state| {
                state.profile().visibility == messaging_proto::Visibility::Public
            }),
            role: self.role_name(runtime),
            unread,
            members: state.map_or(0, |state| state.members().count()),
        })
    }

    pub(crate) fn server_views(&self) -> Vec<ServerView> {
        let mut views: Vec<ServerView> = self
            .servers
            .values()
            .filter(|runtime| !runtime.left)
            .filter_map(|runtime| self.server_view(&runtime.id))
            .collect();
        views.sort_by(|a, b| a.name.cmp(&b.name).then(a.server_id.cmp(&b.server_id)));
        views
    }

    pub(crate) fn channel_views(&self, server: &ServerId) -> Result<Vec<ChannelView>, NodeError> {
        let state = self.member_state(server)?;
        Ok(state
            .channels()
            .map(|channel| ChannelView {
                channel_id: channel.id.to_hex(),
                name: channel.name.clone(),
                topic: channel.topic.clone(),
                unread: self.unread_of(&channel.log),
            })
            .collect())
    }

    pub(crate) fn server_detail(&self, server: &ServerId) -> Result<ServerDetail, NodeError> {
        let view = self
            .server_view(server)
            .ok_or_else(|| NodeError::not_found("node.unknown_server", "no such server"))?;
        let state = self.member_state(server)?;
        let members = state
            .members()
            .map(|member| MemberView {
                user_id: member.user.to_string(),
                display_name: self.display_name_of(&member.user, Some(state)),
                role: member.role.as_str().to_owned(),
                online: member.user == self.me || self.connected.contains(&peer_of(&member.user)),
            })
            .collect();
        Ok(ServerDetail {
            server: view,
            channels: self.channel_views(server)?,
            members,
            bootstrap_peers: state
                .bootstrap_peers()
                .iter()
                .flat_map(|peer| {
                    peer.addrs
                        .iter()
                        .map(move |addr| format!("{addr}/p2p/{}", peer.peer.to_peer_id()))
                })
                .collect(),
            key_epoch: state.current_epoch(),
            state_hash: data_encoding::HEXLOWER.encode(&state.state_hash()),
        })
    }

    /// A message as the UI shows it, with its edits, reactions and
    /// redaction applied.
    pub(crate) fn message_view(
        &self,
        channel: Option<(ServerId, ChannelId)>,
        entry: &VerifiedEntry,
        text: &Text,
        position: &TimelinePosition,
    ) -> MessageView {
        let hash = entry.hash();
        let author = *entry.author();
        // Printed once: base58 of the key is not free on the receive path.
        let author_id = author.to_string();
        let state = channel.and_then(|(server, _)| self.servers.get(&server)?.state.as_ref());
        let mut body = text.body.clone();
        let mut edited = false;
        if let Ok(Some(edit)) = self.store.get::<StoredEdit>(ns::EDITS, hash.as_bytes())
            && edit.author == author_id
        {
            body = edit.text;
            edited = true;
        }
        let redacted_by_author = matches!(
            self.store.get::<String>(ns::REDACTIONS, hash.as_bytes()),
            Ok(Some(by)) if by == author_id
        );
        let redacted_by_moderator = match (channel, state) {
            (Some((_, channel)), Some(state)) => state.is_moderator_redacted(&channel, &hash),
            _ => false,
        };
        let redacted = redacted_by_author || redacted_by_moderator;
        let reactions = if redacted {
            Vec::new()
        } else {
            self.store
                .get::<StoredReactions>(ns::REACTIONS, hash.as_bytes())
                .ok()
                .flatten()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(emoji, users)| {
                    let users: Vec<String> = users
                        .into_iter()
                        .filter(|(_, (_, _, present))| *present)
                        .map(|(user, _)| user)
                        .collect();
                    (!users.is_empty()).then_some(ReactionView { emoji, users })
                })
                .collect()
        };
        let mine = author == self.me;
        MessageView {
            message_id: hash.to_hex(),
            author: author_id,
            author_name: self.display_name_of(&author, state),
            text: if redacted { String::new() } else { body },
            timestamp_ms: entry.header().timestamp_ms,
            edited,
            redacted,
            reply_to: text.reply_to.map(|hash| hash.to_hex()),
            reactions,
            mine,
            delivery: mine.then(|| self.delivery_state(&entry.log_id(), entry.seq())),
            cursor: position.to_cursor(),
        }
    }

    /// The view of a stored text message by hash, if it is one.
    pub(crate) fn message_view_by_hash(
        &self,
        channel: Option<(ServerId, ChannelId)>,
        hash: &EntryHash,
    ) -> Option<MessageView> {
        let entry = self.find_entry(hash).ok()?;
        let payload = self.keys.open(&entry).ok()?;
        let messaging_proto::Body::Text(text) = &payload.body else {
            return None;
        };
        let position = TimelinePosition {
            lamport: entry.lamport(),
            author: *entry.author(),
            seq: entry.seq(),
        };
        Some(self.message_view(channel, &entry, text, &position))
    }

    pub(crate) async fn status(&self) -> Result<StatusView, NodeError> {
        let network = self.overlay.status().await?;
        let stats = self.ledger.stats()?;
        let mut servers: Vec<ServerSyncView> = self
            .servers
            .values()
            .map(|runtime| {
                let space = SpaceId::from(runtime.id);
                let replicas = self.replica_peers(&runtime.id);
                ServerSyncView {
                    server_id: runtime.id.to_hex(),
                    name: runtime
                        .state
                        .as_ref()
                        .map_or_else(String::new, |state| state.profile().name.clone()),
                    mesh_peers: network
                        .mesh_peers
                        .iter()
                        .find(|(server, _)| *server == runtime.id)
                        .map_or(0, |(_, peers)| *peers),
                    topic_peers: network
                        .topic_peers
                        .iter()
                        .find(|(server, _)| *server == runtime.id)
                        .map_or(0, |(_, peers)| *peers),
                    replicas_connected: replicas
                        .iter()
                        .filter(|peer| self.connected.contains(peer))
                        .count(),
                    entries: self.space_entries(&space),
                    pending: self.held_count(&space),
                    last_sync_ms: runtime.last_sync_ms,
                    state_hash: runtime.state.as_ref().map_or_else(String::new, |state| {
                        data_encoding::HEXLOWER.encode(&state.state_hash())
                    }),
                }
            })
            .collect();
        servers.sort_by(|a, b| a.name.cmp(&b.name).then(a.server_id.cmp(&b.server_id)));
        Ok(StatusView {
            user_id: self.me.to_string(),
            listen_addrs: network
                .listen_addrs
                .iter()
                .map(ToString::to_string)
                .collect(),
            external_addrs: network
                .external_addrs
                .iter()
                .map(ToString::to_string)
                .collect(),
            nat: match network.nat {
                NatStatus::Unknown => "unknown".to_owned(),
                NatStatus::Public(_) => "public".to_owned(),
                NatStatus::Private => "private".to_owned(),
            },
            connected_peers: network.connected_peers.len(),
            dht_peers: network.routing_table_size,
            relays: network
                .relay_reservations
                .iter()
                .map(ToString::to_string)
                .collect(),
            servers,
            outbox_depth: self.outbox_depth(),
            ledger_entries: stats.entries,
            ledger_bytes: stats.entry_bytes,
            entries_received: self.metrics.entries_received.get(),
            sync_requests_served: self.metrics.sync_requests_served.get(),
        })
    }

    /// Entries held for a space, summed over its logs.
    fn space_entries(&self, space: &SpaceId) -> u64 {
        self.ledger
            .logs_in_space(space)
            .map(|logs| {
                logs.iter()
                    .filter_map(|log| self.ledger.log_stats(log).ok())
                    .map(|stats| stats.entries)
                    .sum()
            })
            .unwrap_or(0)
    }
}

/// The first characters of a user id, for display when no name is known.
pub(crate) fn short_id(user: &UserId) -> String {
    let text = user.to_string();
    let tail: String = text
        .chars()
        .rev()
        .take(6)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("user-{tail}")
}
