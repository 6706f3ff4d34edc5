//! Messages in channels: send, edit, redact, react, history, unread
//! counts; and the indexes that make edits, reactions and redactions show
//! on the message they target.
//!
//! Indexes live in the private store (they reveal plaintext): the latest
//! edit per message (only its author's edits count), reactions per message
//! (the latest add/remove of each user and emoji, in display order wins),
//! redactions, client transaction ids per (log, author) so that a retried
//! send never creates a second message, and unread counters per log.

use std::collections::BTreeMap;

use messaging_proto::{
    Body, ChannelId, EntryHash, LogId, Payload, ServerId, Text, TxnId, VerifiedEntry,
};
use serde::{Deserialize, Serialize};
use storage_ledger::{LedgerStore, TimelinePosition};

use super::{NodeCore, Reply};
use crate::api::{Event, HistoryPage, NodeError, Response, SendAck};
use crate::local_store::ns;

/// Most messages in one history page.
pub(crate) const MAX_HISTORY_PAGE: u32 = 500;

/// The latest edit of a message.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct StoredEdit {
    pub(crate) author: String,
    pub(crate) text: String,
    pub(crate) lamport: u64,
    pub(crate) seq: u64,
}

/// Reactions of a message: emoji → user → (lamport, seq, present).
pub(crate) type StoredReactions = BTreeMap<String, BTreeMap<String, (u64, u64, bool)>>;

pub(crate) fn txn_key(log: &LogId, author: &identity_core::UserId, txn: &TxnId) -> Vec<u8> {
    let mut key = log.as_bytes().to_vec();
    key.extend_from_slice(author.as_bytes());
    key.extend_from_slice(txn.as_bytes());
    key
}

/// A client transaction id from the API, or a fresh random one.
pub(crate) fn parse_txn(txn: Option<String>) -> Result<TxnId, NodeError> {
    match txn {
        Some(text) => TxnId::new(text.into_bytes()).map_err(|_| {
            NodeError::invalid(
                "node.invalid_txn_id",
                "a client transaction id has at most 32 bytes",
            )
        }),
        None => Ok(TxnId::random(&mut rand::rng())),
    }
}

pub(crate) fn txn_text(txn: &TxnId) -> String {
    String::from_utf8(txn.as_bytes().to_vec())
        .unwrap_or_else(|_| data_encoding::HEXLOWER.encode(txn.as_bytes()))
}

pub(crate) fn parse_message_id(text: &str) -> Result<EntryHash, NodeError> {
    text.parse()
        .map_err(|_| NodeError::invalid("node.invalid_message_id", "a message id is 64 hex digits"))
}

impl NodeCore {
    /// The entry already written for this transaction id, if any.
    pub(crate) fn existing_txn(
        &self,
        log: &LogId,
        txn: &TxnId,
    ) -> Result<Option<EntryHash>, NodeError> {
        if txn.as_bytes().is_empty() {
            return Ok(None);
        }
        let key = txn_key(log, &self.me, txn);
        Ok(self
            .store
            .get::<String>(ns::TXN, &key)?
            .and_then(|hex| hex.parse().ok()))
    }

    pub(crate) async fn send_message(
        &mut self,
        server: &str,
        channel: &str,
        text: String,
        txn: Option<String>,
        reply_to: Option<String>,
        reply: Reply,
    ) {
        let prepared = self.prepare_channel_payload(server, channel, txn, |_| {
            Ok(Body::Text(Text {
                body: text,
                reply_to: reply_to.as_deref().map(parse_message_id).transpose()?,
            }))
        });
        match prepared {
            Ok(Prepared::Duplicate(ack)) => {
                let _ = reply.send(Ok(Response::Sent(ack)));
            }
            Ok(Prepared::New {
                server,
                log,
                payload,
            }) => match self.write_channel_entry(server, log, payload).await {
                Ok((entry, durable, ack)) => {
                    self.finish_when_durable(entry, durable, Some(reply), Response::Sent(ack), None)
                }
                Err(err) => {
                    let _ = reply.send(Err(err));
                }
            },
            Err(err) => {
                let _ = reply.send(Err(err));
            }
        }
    }

    /// Resolves a channel we may post in and builds the payload, unless the
    /// transaction id was used already.
    fn prepare_channel_payload(
        &self,
        server: &str,
        channel: &str,
        txn: Option<String>,
        body: impl FnOnce(&Self) -> Result<Body, NodeError>,
    ) -> Result<Prepared, NodeError> {
        let server = self.resolve_server(server)?;
        let (_, log) = self.resolve_channel(&server, channel)?;
        let state = self.member_state(&server)?;
        if !state.is_member(&self.me) {
            return Err(NodeError::permission(
                "permission.not_a_member",
                "you are no longer a member of this server",
            ));
        }
        let txn = parse_txn(txn)?;
        if let Some(existing) = self.existing_txn(&log, &txn)? {
            return Ok(Prepared::Duplicate(SendAck {
                message_id: existing.to_hex(),
                client_txn_id: txn_text(&txn),
                timestamp_ms: self.entry_timestamp(&existing).unwrap_or(0),
                duplicate: true,
            }));
        }
        let body = body(self)?;
        let payload = Payload {
            client_txn_id: txn,
            body,
        };
        // Refuse invalid input before anything is written.
        payload.to_bytes()?;
        Ok(Prepared::New {
            server,
            log,
            payload,
        })
    }

    fn entry_timestamp(&self, hash: &EntryHash) -> Option<u64> {
        let bytes = self.ledger.get_by_hash(hash).ok()??;
        VerifiedEntry::decode_stored(bytes)
            .ok()
            .map(|entry| entry.header().timestamp_ms)
    }

    /// Writes a channel entry of ours: transaction index, entry, indexes.
    async fn write_channel_entry(
        &mut self,
        server: ServerId,
        log: LogId,
        payload: Payload,
    ) -> Result<(VerifiedEntry, Vec<storage_ledger::Durable>, SendAck), NodeError> {
        let (entry, durable) = self.author_in_server(&server, log, &payload)?;
        let mut tickets = vec![durable];
        if !payload.client_txn_id.as_bytes().is_empty() {
            // The acknowledgement waits for this record too, so that a retry
            // after a crash finds the message instead of writing it again.
            let key = txn_key(&log, &self.me, &payload.client_txn_id);
            tickets.push(self.store.put(ns::TXN, &key, &entry.hash().to_hex())?);
        }
        let channel = self
            .servers
            .get(&server)
            .and_then(|runtime| runtime.state.as_ref())
            .and_then(|state| state.channel_by_log(&log))
            .map(|channel| channel.id);
        self.apply_message(channel.map(|channel| (server, channel)), &entry, &payload)
            .await;
        let ack = SendAck {
            message_id: entry.hash().to_hex(),
            client_txn_id: txn_text(&payload.client_txn_id),
            timestamp_ms: entry.header().timestamp_ms,
            duplicate: false,
        };
        Ok((entry, tickets, ack))
    }

    /// Writes an edit, redaction or reaction and waits until it is durable.
    async fn write_and_wait(
        &mut self,
        server: ServerId,
        log: LogId,
        payload: Payload,
    ) -> Result<Response, NodeError> {
        let (entry, tickets, ack) = self.write_channel_entry(server, log, payload).await?;
        for ticket in tickets {
            ticket.await?;
        }
        self.add_to_outbox(&entry, None).await;
        self.deliver(&entry, None).await;
        self.note_mine(&entry);
        Ok(Response::Sent(ack))
    }

    pub(crate) async fn edit_message(
        &mut self,
        server: &str,
        channel: &str,
        message_id: &str,
        text: String,
        txn: Option<String>,
    ) -> Result<Response, NodeError> {
        let target = parse_message_id(message_id)?;
        let prepared = self.prepare_channel_payload(server, channel, txn, |core| {
            let target_entry = core.find_entry(&target)?;
            if target_entry.author() != &core.me {
                return Err(NodeError::permission(
                    "permission.not_your_message",
                    "only the author can edit a message",
                ));
            }
            Ok(Body::Edit { target, body: text })
        })?;
        self.finish_prepared(prepared).await
    }

    pub(crate) async fn redact_message(
        &mut self,
        server: &str,
        channel: &str,
        message_id: &str,
        txn: Option<String>,
    ) -> Result<Response, NodeError> {
        let target = parse_message_id(message_id)?;
        let target_entry = self.find_entry(&target)?;
        if target_entry.author() == &self.me {
            let prepared = self
                .prepare_channel_payload(server, channel, txn, |_| Ok(Body::Redact { target }))?;
            return self.finish_prepared(prepared).await;
        }
        // Someone else's message: a moderator redaction in the control log.
        let server_id = self.resolve_server(server)?;
        let (channel_id, _) = self.resolve_channel(&server_id, channel)?;
        let event = messaging_proto::ControlEvent::ModeratorRedact {
            channel_id,
            target,
            reason: String::new(),
        };
        self.author_control(server_id, event).await?;
        if let Some(view) = self.message_view_by_hash(Some((server_id, channel_id)), &target) {
            self.emit(Event::Message {
                server_id: server_id.to_hex(),
                channel_id: channel_id.to_hex(),
                message: view,
            });
        }
        Ok(Response::Ok)
    }

    pub(crate) async fn react(
        &mut self,
        server: &str,
        channel: &str,
        message_id: &str,
        emoji: String,
        remove: bool,
        txn: Option<String>,
    ) -> Result<Response, NodeError> {
        let target = parse_message_id(message_id)?;
        self.find_entry(&target)?;
        let prepared = self.prepare_channel_payload(server, channel, txn, |_| {
            Ok(Body::Reaction {
                target,
                emoji,
                remove,
            })
        })?;
        self.finish_prepared(prepared).await
    }

    async fn finish_prepared(&mut self, prepared: Prepared) -> Result<Response, NodeError> {
        match prepared {
            Prepared::Duplicate(ack) => Ok(Response::Sent(ack)),
            Prepared::New {
                server,
                log,
                payload,
            } => self.write_and_wait(server, log, payload).await,
        }
    }

    /// A stored entry by hash.
    pub(crate) fn find_entry(&self, hash: &EntryHash) -> Result<VerifiedEntry, NodeError> {
        let bytes = self
            .ledger
            .get_by_hash(hash)?
            .ok_or_else(|| NodeError::not_found("node.unknown_message", "no such message"))?;
        Ok(VerifiedEntry::decode_stored(bytes)?)
    }

    /// Applies a message-type payload (ours or received) to the indexes and
    /// tells subscribers. `channel` is `None` for DMs.
    pub(crate) async fn apply_message(
        &mut self,
        channel: Option<(ServerId, ChannelId)>,
        entry: &VerifiedEntry,
        payload: &Payload,
    ) {
        let author = *entry.author();
        let log = entry.log_id();
        let shown = match &payload.body {
            Body::Text(_) => {
                if !payload.client_txn_id.as_bytes().is_empty() {
                    // The first entry with this transaction id keeps it; a
                    // later one of another author (a double send) is stored
                    // but not shown, here as in history. (Ours never repeat
                    // an id, and find it taken by themselves: it is written
                    // when they are authored.)
                    let key = txn_key(&log, &author, &payload.client_txn_id);
                    let stored = self
                        .store
                        .put_if_absent(ns::TXN, &key, &entry.hash().to_hex());
                    if author != self.me
                        && matches!(stored, Ok(None))
                        && self.is_duplicate_txn(entry, payload)
                    {
                        return;
                    }
                }
                if author != self.me {
                    *self.unread.entry(log).or_default() += 1;
                    // Written once per actor turn (a fetched chunk or a push
                    // holds up to hundreds of messages), not per message.
                    self.unread_dirty.insert(log);
                }
                Some(entry.hash())
            }
            Body::Edit { target, body } => {
                let newer = match self.store.get::<StoredEdit>(ns::EDITS, target.as_bytes()) {
                    Ok(Some(known)) => (entry.lamport(), entry.seq()) > (known.lamport, known.seq),
                    _ => true,
                };
                if newer {
                    let edit = StoredEdit {
                        author: author.to_string(),
                        text: body.clone(),
                        lamport: entry.lamport(),
                        seq: entry.seq(),
                    };
                    let _ = self.store.put(ns::EDITS, target.as_bytes(), &edit);
                }
                Some(*target)
            }
            Body::Redact { target } => {
                let _ = self
                    .store
                    .put(ns::REDACTIONS, target.as_bytes(), &author.to_string());
                Some(*target)
            }
            Body::Reaction {
                target,
                emoji,
                remove,
            } => {
                let mut reactions: StoredReactions = self
                    .store
                    .get(ns::REACTIONS, target.as_bytes())
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let users = reactions.entry(emoji.clone()).or_default();
                let order = (entry.lamport(), entry.seq());
                let newer = users
                    .get(&author.to_string())
                    .is_none_or(|(lamport, seq, _)| order > (*lamport, *seq));
                // Bounded: at most one record per (user, emoji) of a message,
                // and at most 64 distinct emoji per message.
                if newer && (reactions.len() <= 64 || reactions.contains_key(emoji)) {
                    reactions
                        .entry(emoji.clone())
                        .or_default()
                        .insert(author.to_string(), (order.0, order.1, !*remove));
                    let _ = self.store.put(ns::REACTIONS, target.as_bytes(), &reactions);
                }
                Some(*target)
            }
            Body::Control(_) => None,
        };
        let Some(shown) = shown else {
            return;
        };
        let view = match &payload.body {
            // A new message: its view comes from what is in hand, not from
            // reading and decrypting it back.
            Body::Text(text) => {
                let position = storage_ledger::TimelinePosition {
                    lamport: entry.lamport(),
                    author,
                    seq: entry.seq(),
                };
                Some(self.message_view(channel, entry, text, &position))
            }
            _ => self.message_view_by_hash(channel, &shown),
        };
        let Some(view) = view else {
            return;
        };
        match channel {
            // A server we left is gone from every list: no events either.
            Some((server, _))
                if self
                    .servers
                    .get(&server)
                    .is_some_and(|runtime| runtime.left) => {}
            Some((server, channel)) => self.emit(Event::Message {
                server_id: server.to_hex(),
                channel_id: channel.to_hex(),
                message: view,
            }),
            None => {
                let peer = self
                    .dms
                    .get(&messaging_proto::DmId::from_bytes(*log.as_bytes()))
                    .copied()
                    .unwrap_or(author);
                self.emit(Event::DirectMessage {
                    user_id: peer.to_string(),
                    message: view,
                });
            }
        }
    }

    /// A page of a log's messages, newest first.
    pub(crate) fn log_history(
        &self,
        channel: Option<(ServerId, ChannelId)>,
        log: &LogId,
        limit: u32,
        before: Option<&str>,
    ) -> Result<HistoryPage, NodeError> {
        if limit == 0 || limit > MAX_HISTORY_PAGE {
            return Err(NodeError::invalid(
                "node.invalid_limit",
                format!("a history page has 1 to {MAX_HISTORY_PAGE} messages"),
            ));
        }
        let mut cursor = match before {
            Some(text) => Some(TimelinePosition::from_cursor(text).map_err(|_| {
                NodeError::invalid("node.invalid_cursor", "the history cursor is not valid")
            })?),
            None => None,
        };
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut messages = Vec::new();
        let mut more = true;
        while messages.len() < limit && more {
            let page = self.ledger.timeline_before(
                log,
                cursor.as_ref(),
                (limit - messages.len()).clamp(16, 1024),
            )?;
            more = page.more;
            if page.items.is_empty() {
                more = false;
            }
            for item in page.items {
                cursor = Some(item.position);
                if messages.len() >= limit {
                    more = true;
                    break;
                }
                let Ok(entry) = VerifiedEntry::decode_stored(item.entry) else {
                    continue;
                };
                let Ok(payload) = self.keys.open(&entry) else {
                    continue;
                };
                if let Body::Text(text) = &payload.body {
                    if self.is_duplicate_txn(&entry, &payload) {
                        continue;
                    }
                    messages.push(self.message_view(channel, &entry, text, &item.position));
                }
            }
        }
        let before = if more {
            messages.last().map(|message| message.cursor.clone())
        } else {
            None
        };
        Ok(HistoryPage { messages, before })
    }

    /// True when an earlier entry of the same author carries the same
    /// transaction id (a buggy or malicious double send): show it once.
    fn is_duplicate_txn(&self, entry: &VerifiedEntry, payload: &Payload) -> bool {
        if payload.client_txn_id.as_bytes().is_empty() {
            return false;
        }
        let key = txn_key(&entry.log_id(), entry.author(), &payload.client_txn_id);
        matches!(
            self.store.get::<String>(ns::TXN, &key),
            Ok(Some(first)) if first != entry.hash().to_hex()
        )
    }

    pub(crate) fn history(
        &self,
        server: &str,
        channel: &str,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Response, NodeError> {
        let server = self.resolve_server(server)?;
        let (channel, log) = self.resolve_channel(&server, channel)?;
        self.log_history(Some((server, channel)), &log, limit, before)
            .map(Response::History)
    }

    pub(crate) async fn mark_read(
        &mut self,
        server: &str,
        channel: &str,
    ) -> Result<Response, NodeError> {
        let server = self.resolve_server(server)?;
        let (_, log) = self.resolve_channel(&server, channel)?;
        self.unread.insert(log, 0);
        self.store.put(ns::UNREAD, log.as_bytes(), &0u64)?.await?;
        self.emit(Event::ServerUpdated {
            server_id: server.to_hex(),
        });
        Ok(Response::Ok)
    }

    /// Unread messages of a log.
    pub(crate) fn unread_of(&self, log: &LogId) -> u64 {
        self.unread.get(log).copied().unwrap_or(0)
    }
}

/// A payload ready to write, or the answer of an earlier identical send.
enum Prepared {
    Duplicate(SendAck),
    New {
        server: ServerId,
        log: LogId,
        payload: Payload,
    },
}
