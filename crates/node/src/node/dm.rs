//! Direct messages: a DM between two users is one log whose id is the
//! conversation id (derived from both user ids), encrypted under a key both
//! derive from X25519 of their identity keys. Delivery: pushed straight to
//! the other user when connected, and to the replicas of servers we share
//! (filed under the recipient's inbox tag), retried from the outbox until
//! someone holds it. Only users who share a server with us may DM us.

use identity_core::UserId;
use messaging_proto::{
    Body, DmId, EpochKey, InboxTag, Payload, Sealing, SpaceId, Text, VerifiedEntry,
};
use net_overlay::PeerId;

use super::ingest::{Ingested, Source};
use super::messages::{parse_txn, txn_key, txn_text};
use super::{NodeCore, Reply, peer_of};
use crate::api::{DmView, ErrorCategory, NodeError, Response, SendAck};
use crate::local_store::ns;

impl NodeCore {
    /// Whether we share a server with `user`.
    pub(crate) fn shares_server_with(&self, user: &UserId) -> bool {
        self.servers
            .values()
            .filter_map(|runtime| runtime.state.as_ref())
            .any(|state| state.is_member(user) && state.is_member(&self.me))
    }

    /// Makes sure we hold the DM key with `peer` and remember the
    /// conversation.
    async fn open_dm(&mut self, peer: UserId) -> Result<DmId, NodeError> {
        let dm = DmId::between(&self.me, &peer);
        let space = SpaceId::from(dm);
        if !self.keys.has(&space, 1) {
            let shared = self.identity.dm_key(&peer)?;
            self.keys
                .add(space, EpochKey::from_bytes(1, *shared.as_bytes()), true)
                .await?;
        }
        if self.dms.insert(dm, peer).is_none() {
            self.store
                .put(ns::DMS, dm.as_bytes(), &peer.to_string())?
                .await?;
        }
        Ok(dm)
    }

    pub(crate) async fn send_dm(
        &mut self,
        user: &str,
        text: String,
        txn: Option<String>,
        reply: Reply,
    ) {
        let result = self.prepare_dm(user, text, txn).await;
        match result {
            Ok(DmPrepared::Duplicate(ack)) => {
                let _ = reply.send(Ok(Response::Sent(ack)));
            }
            Ok(DmPrepared::New {
                entry,
                tickets,
                ack,
                peer,
            }) => {
                self.finish_when_durable(
                    *entry,
                    tickets,
                    Some(reply),
                    Response::Sent(ack),
                    Some(peer),
                );
            }
            Err(err) => {
                let _ = reply.send(Err(err));
            }
        }
    }

    async fn prepare_dm(
        &mut self,
        user: &str,
        text: String,
        txn: Option<String>,
    ) -> Result<DmPrepared, NodeError> {
        let peer = self.resolve_user(None, user)?;
        if peer == self.me {
            return Err(NodeError::invalid(
                "node.dm_self",
                "you cannot send a DM to yourself",
            ));
        }
        if !self.shares_server_with(&peer) {
            return Err(NodeError::permission(
                "permission.no_shared_server",
                "you can only message users who share a server with you",
            ));
        }
        let dm = self.open_dm(peer).await?;
        let log = dm.log_id();
        let txn = parse_txn(txn)?;
        if let Some(existing) = self.existing_txn(&log, &txn)? {
            return Ok(DmPrepared::Duplicate(SendAck {
                message_id: existing.to_hex(),
                client_txn_id: txn_text(&txn),
                timestamp_ms: 0,
                duplicate: true,
            }));
        }
        let payload = Payload {
            client_txn_id: txn,
            body: Body::Text(Text {
                body: text,
                reply_to: None,
            }),
        };
        payload.to_bytes()?;
        let key = self
            .keys
            .get(&SpaceId::from(dm), 1)
            .first()
            .cloned()
            .ok_or_else(|| NodeError::new(ErrorCategory::Crypto, "node.no_key", "no DM key"))?;
        let (entry, durable) = self.author(
            Some(SpaceId::from(dm)),
            log,
            &payload,
            Sealing::Encrypt(&key),
        )?;
        let mut tickets = vec![durable];
        if !payload.client_txn_id.as_bytes().is_empty() {
            let key = txn_key(&log, &self.me, &payload.client_txn_id);
            tickets.push(self.store.put(ns::TXN, &key, &entry.hash().to_hex())?);
        }
        self.apply_message(None, &entry, &payload).await;
        let ack = SendAck {
            message_id: entry.hash().to_hex(),
            client_txn_id: txn_text(&payload.client_txn_id),
            timestamp_ms: entry.header().timestamp_ms,
            duplicate: false,
        };
        Ok(DmPrepared::New {
            entry: Box::new(entry),
            tickets,
            ack,
            peer,
        })
    }

    /// Pushes DM entries to the peer (if connected) and to the connected
    /// replicas of servers we share with them.
    pub(crate) fn push_dm(&self, peer: UserId, entries: Vec<bytes::Bytes>) {
        let space = SpaceId::from(DmId::between(&self.me, &peer));
        let tag = Some(InboxTag::of(&peer));
        let direct = peer_of(&peer);
        if self.connected.contains(&direct) {
            self.push(direct, space, entries.clone(), tag);
        }
        let mut replicas: Vec<PeerId> = self
            .servers
            .values()
            .filter(|runtime| {
                runtime
                    .state
                    .as_ref()
                    .is_some_and(|state| state.is_member(&peer))
            })
            .flat_map(|runtime| self.replica_peers(&runtime.id))
            .filter(|replica| self.connected.contains(replica) && *replica != direct)
            .collect();
        replicas.sort();
        replicas.dedup();
        for replica in replicas {
            self.push(replica, space, entries.clone(), tag);
        }
    }

    pub(crate) async fn ingest_dm(
        &mut self,
        peer: UserId,
        entry: VerifiedEntry,
        source: Source,
    ) -> Ingested {
        if *entry.author() != self.me && !self.shares_server_with(entry.author()) {
            // Perhaps we have not synced the server we share yet.
            return self.hold_blocked(entry);
        }
        let dm = match self.open_dm(peer).await {
            Ok(dm) => dm,
            Err(err) => return Ingested::Rejected(err),
        };
        if entry.log_id() != dm.log_id() {
            return Ingested::Rejected(NodeError::new(
                ErrorCategory::Protocol,
                "node.dm_wrong_log",
                "a DM entry must be in the conversation's log",
            ));
        }
        let payload = match self.keys.open(&entry) {
            Ok(payload) => payload,
            Err(crate::keys::OpenError::NoKey(_)) => return self.hold_blocked(entry),
            Err(crate::keys::OpenError::Invalid(err)) => return Ingested::Rejected(err.into()),
        };
        if matches!(payload.body, Body::Control(_)) {
            return Ingested::Rejected(NodeError::new(
                ErrorCategory::Protocol,
                "node.control_in_dm",
                "control events do not belong in a DM",
            ));
        }
        match self.ledger_append_for_dm(&entry, source) {
            Ok(()) => {}
            Err(outcome) => return outcome,
        }
        self.apply_message(None, &entry, &payload).await;
        Ingested::Accepted
    }

    fn ledger_append_for_dm(
        &mut self,
        entry: &VerifiedEntry,
        source: Source,
    ) -> Result<(), Ingested> {
        use storage_ledger::LedgerStore;
        match self.ledger.append_deferred(entry) {
            Ok((storage_ledger::AppendOutcome::Appended, _)) => Ok(()),
            Ok((storage_ledger::AppendOutcome::Duplicate, _)) => Err(Ingested::Duplicate),
            Err(storage_ledger::LedgerError::SeqGap { .. }) => {
                if let Some(peer) = source.peer() {
                    self.start_sync(entry.space(), peer);
                }
                Err(self.hold_blocked(entry.clone()))
            }
            Err(err) => Err(Ingested::Rejected(err.into())),
        }
    }

    pub(crate) fn dm_history(
        &self,
        user: &str,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Response, NodeError> {
        let peer = self.resolve_user(None, user)?;
        let dm = DmId::between(&self.me, &peer);
        self.log_history(None, &dm.log_id(), limit, before)
            .map(Response::History)
    }

    pub(crate) fn dm_views(&self) -> Vec<DmView> {
        let mut views: Vec<DmView> = self
            .dms
            .iter()
            .map(|(dm, peer)| DmView {
                user_id: peer.to_string(),
                display_name: self.display_name_of(peer, None),
                unread: self.unread_of(&dm.log_id()),
            })
            .collect();
        views.sort_by(|a, b| a.display_name.cmp(&b.display_name));
        views
    }
}

enum DmPrepared {
    Duplicate(SendAck),
    New {
        entry: Box<VerifiedEntry>,
        tickets: Vec<storage_ledger::Durable>,
        ack: SendAck,
        peer: UserId,
    },
}
