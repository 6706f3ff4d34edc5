//! Writing our own entries: the next link of our feed, sealed, appended,
//! and acknowledged only once durable. Publishing waits for durability
//! too: an entry peers may hold must never be lost to a crash, or our next
//! entry would reuse its seq (an equivocation).

use bytes::Bytes;
use identity_core::UserId;
use messaging_proto::{
    EntryDraft, GossipMessage, LogId, Payload, Sealing, ServerId, SpaceId, VerifiedEntry,
};
use net_overlay::PublishOutcome;
use storage_ledger::{Durable, LedgerStore};

use super::{Internal, NodeCore, Reply};
use crate::api::{ErrorCategory, Event, NodeError, Response};

impl NodeCore {
    /// Seals the next entry of our feed in `log` and appends it; returns the
    /// entry and the ticket that resolves when it is durable.
    pub(crate) fn author(
        &mut self,
        space: Option<SpaceId>,
        log: LogId,
        payload: &Payload,
        sealing: Sealing<'_>,
    ) -> Result<(VerifiedEntry, Durable), NodeError> {
        // After a storage failure the ledger is reopened before it is
        // written again, and what it held but had not made durable is gone:
        // reopen it now, so that the next link follows what is durable.
        self.ledger.recover()?;
        self.refold_after_reopen();
        let head = self.ledger.head(&log, &self.me)?;
        let (seq, backlink) = head.map_or((1, None), |head| (head.seq + 1, Some(head.hash)));
        let lamport = self
            .ledger
            .max_lamport(&log)?
            .max(head.map_or(0, |head| head.lamport))
            + 1;
        let draft = EntryDraft {
            space,
            log_id: log,
            seq,
            backlink,
            lamport,
            timestamp_ms: self.now_ms(),
        };
        let entry = VerifiedEntry::seal(&mut rand::rng(), &self.identity, draft, payload, sealing)?;
        let (_, durable) = self.ledger.append_deferred(&entry)?;
        self.note_space_bytes(entry.space(), entry.len());
        Ok((entry, durable))
    }

    /// Seals an entry of a server under its current key (or unencrypted
    /// for key distribution).
    pub(crate) fn author_in_server(
        &mut self,
        server: &ServerId,
        log: LogId,
        payload: &Payload,
    ) -> Result<(VerifiedEntry, Durable), NodeError> {
        let space = SpaceId::from(*server);
        let plain = payload
            .control()
            .is_some_and(messaging_proto::ControlEvent::is_key_distribution);
        if plain {
            return self.author(Some(space), log, payload, Sealing::Plain);
        }
        let epoch = self
            .servers
            .get(server)
            .and_then(|runtime| runtime.state.as_ref())
            .map_or(1, crate::control::ServerState::current_epoch);
        let key = self
            .keys
            .get(&space, epoch)
            .first()
            .cloned()
            .or_else(|| self.keys.latest(&space).cloned())
            .ok_or_else(|| {
                NodeError::new(
                    ErrorCategory::Crypto,
                    "node.no_key",
                    "we do not hold this server's current key yet; wait for a member to share it",
                )
            })?;
        self.author(Some(space), log, payload, Sealing::Encrypt(&key))
    }

    /// Waits in the background for `durable`, then hands the entry back to
    /// the actor (`Internal::Authored`), which publishes and replies.
    pub(crate) fn finish_when_durable(
        &mut self,
        entry: VerifiedEntry,
        tickets: Vec<Durable>,
        reply: Option<Reply>,
        response: Response,
        dm_peer: Option<UserId>,
    ) {
        let internal = self.internal_tx.clone();
        self.authoring_in_flight += 1;
        tokio::spawn(async move {
            let mut result = Ok(());
            for ticket in tickets {
                if let Err(err) = ticket.await {
                    result = Err(NodeError::from(err));
                }
            }
            let _ = internal
                .send(Internal::Authored {
                    entry: Box::new(entry),
                    result,
                    reply,
                    response,
                    dm_peer,
                })
                .await;
        });
    }

    pub(crate) async fn on_authored(
        &mut self,
        entry: VerifiedEntry,
        result: Result<(), NodeError>,
        reply: Option<Reply>,
        response: Response,
        dm_peer: Option<UserId>,
    ) {
        if let Err(err) = result {
            tracing::error!(code = err.code, "an entry we wrote did not become durable");
            self.emit(Event::Error(err.clone()));
            if let Some(reply) = reply {
                let _ = reply.send(Err(err));
            }
            return;
        }
        self.add_to_outbox(&entry, dm_peer).await;
        self.deliver(&entry, dm_peer).await;
        if let Some(reply) = reply {
            let _ = reply.send(Ok(response));
        }
        self.note_mine(&entry);
    }

    /// Sends an entry to whoever should have it: gossip for a server, the
    /// peer or the replicas for a DM.
    pub(crate) async fn deliver(&mut self, entry: &VerifiedEntry, dm_peer: Option<UserId>) {
        match dm_peer {
            None => {
                let server = ServerId::from_bytes(*entry.space().as_bytes());
                let hash = entry.hash();
                if !self.published.contains(&hash) {
                    let data =
                        Bytes::from(GossipMessage::Entry(entry.encoded().clone()).to_bytes());
                    match self.overlay.publish(server, data).await {
                        Ok(PublishOutcome::Sent | PublishOutcome::Duplicate)
                            if self.outbox.contains_key(&hash) =>
                        {
                            self.published.insert(hash);
                        }
                        Ok(_) => {}
                        Err(err) => tracing::debug!(%err, "publish failed; the outbox retries"),
                    }
                }
                self.push_to_replicas(server, vec![entry.encoded().clone()]);
            }
            Some(peer) => self.push_dm(peer, vec![entry.encoded().clone()]),
        }
    }
}
