//! The receive path, the same for gossip, sync and pushes:
//!
//! 1. verify the bytes (size, structure, `verify_strict` signature);
//! 2. route by space: a server we belong to, a server we replicate, one of
//!    our DMs — anything else is ignored;
//! 3. members: open the payload with the epoch key and check permission
//!    (control events through the fold's `authorize` at their place in
//!    display order; channel entries through `may_post`); replicas, which
//!    cannot decrypt, check the author's rate and the space's quota;
//! 4. append to the ledger, which checks the chain (seq, backlink, lamport,
//!    equivocation);
//! 5. apply: refold the control state or update the message indexes, and
//!    tell subscribers.
//!
//! An entry that cannot be judged yet is held back (bounded), not refused:
//! one whose predecessor is missing waits in a gap buffer while the gap is
//! backfilled from the peer that sent it; one waiting for a key, a channel
//! or its author's join waits until the control state changes. Only what
//! is provably wrong is rejected (gossip then penalises the sender).

use bytes::Bytes;
use identity_core::UserId;
use messaging_proto::{Body, ControlEvent, DmId, EntryHash, ServerId, SpaceId, VerifiedEntry};
use net_overlay::{GossipVerdict, PeerId};
use storage_ledger::{AppendOutcome, LedgerError, LedgerStore};

use super::{AuthorRate, Held, LocalRole, MAX_BLOCKED_ENTRIES, MAX_GAP_ENTRIES, NodeCore};
use crate::api::{ErrorCategory, Event, NodeError};
use crate::control::{ControlRecord, Denied, ServerState};
use crate::keys::OpenError;

/// What became of a received entry.
#[derive(Debug)]
pub(crate) enum Ingested {
    /// Stored and applied.
    Accepted,
    /// Already held.
    Duplicate,
    /// Held back until something it depends on arrives.
    Held,
    /// Not for us (a space we neither belong to nor replicate).
    Ignored,
    /// Provably invalid.
    Rejected(NodeError),
}

impl Ingested {
    /// The verdict to report to gossipsub.
    pub(crate) fn verdict(&self) -> GossipVerdict {
        match self {
            Self::Accepted => GossipVerdict::Accept,
            Self::Rejected(_) => GossipVerdict::Reject,
            Self::Duplicate | Self::Held | Self::Ignored => GossipVerdict::Ignore,
        }
    }
}

/// Where an entry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// Live gossip from this peer (rate limits apply).
    Gossip(PeerId),
    /// A sync fetch from this peer.
    Peer(PeerId),
    /// A push from this peer (rate limits apply at replicas).
    Push(PeerId),
    /// Our own held-back entries, retried.
    Retry,
}

impl Source {
    pub(crate) fn peer(self) -> Option<PeerId> {
        match self {
            Self::Gossip(peer) | Self::Peer(peer) | Self::Push(peer) => Some(peer),
            Self::Retry => None,
        }
    }
}

fn rejected(code: &str, message: &str) -> Ingested {
    Ingested::Rejected(NodeError::new(ErrorCategory::Protocol, code, message))
}

impl NodeCore {
    /// Verifies and ingests encoded entry bytes.
    pub(crate) async fn ingest_bytes(
        &mut self,
        bytes: Bytes,
        gossip_from: Option<PeerId>,
    ) -> Ingested {
        let source = gossip_from.map_or(Source::Retry, Source::Gossip);
        self.ingest_bytes_from(bytes, source).await
    }

    pub(crate) async fn ingest_bytes_from(&mut self, bytes: Bytes, source: Source) -> Ingested {
        self.ingest_checked(VerifiedEntry::verify(bytes), source)
            .await
    }

    /// Ingests the outcome of verifying received bytes (verified here or,
    /// for a batch fetched by sync, off the actor: see `sync`).
    pub(crate) async fn ingest_checked(
        &mut self,
        verified: Result<VerifiedEntry, messaging_proto::ProtoError>,
        source: Source,
    ) -> Ingested {
        self.metrics.entries_received.inc();
        let result = match verified {
            Ok(entry) => {
                let timestamp_ms = entry.header().timestamp_ms;
                let result = self.ingest_entry(entry, source).await;
                if matches!((&result, source), (Ingested::Accepted, Source::Gossip(_))) {
                    let latency = self.now_ms().saturating_sub(timestamp_ms);
                    self.metrics
                        .delivery_latency
                        .observe(latency as f64 / 1000.0);
                }
                self.settle().await;
                result
            }
            Err(err) => Ingested::Rejected(err.into()),
        };
        match &result {
            Ingested::Accepted => {
                self.metrics.entries_accepted.inc();
            }
            Ingested::Rejected(err) => {
                let label = crate::metrics::ReasonLabel {
                    reason: err.code.clone(),
                };
                self.metrics.entries_rejected.get_or_create(&label).inc();
            }
            _ => {}
        }
        result
    }

    /// Ingests one verified entry, then any held-back successors of its feed.
    pub(crate) async fn ingest_entry(&mut self, entry: VerifiedEntry, source: Source) -> Ingested {
        let result = self.ingest_one(entry.clone(), source).await;
        if matches!(result, Ingested::Accepted) {
            let mut last = entry;
            loop {
                let key = (last.log_id(), *last.author());
                let space = last.space();
                let next = self.held.get_mut(&space).and_then(|held| {
                    let successor = held.gaps.get_mut(&key)?.remove(&(last.seq() + 1))?;
                    held.gap_count = held.gap_count.saturating_sub(1);
                    Some(successor)
                });
                let Some(next) = next else {
                    break;
                };
                match self.ingest_one(next.clone(), Source::Retry).await {
                    Ingested::Accepted => last = next,
                    _ => break,
                }
            }
        }
        result
    }

    async fn ingest_one(&mut self, entry: VerifiedEntry, source: Source) -> Ingested {
        let space = entry.space();
        let server = ServerId::from_bytes(*space.as_bytes());
        if let Some(runtime) = self.servers.get(&server) {
            return match runtime.role {
                LocalRole::Member => self.ingest_member(server, entry, source).await,
                LocalRole::Replica => self.ingest_replica(server, entry, source).await,
            };
        }
        if let Some(peer) = self.dm_peer_of(&entry) {
            return self.ingest_dm(peer, entry, source).await;
        }
        if self.is_replica() {
            return self.ingest_unknown_space_as_replica(entry, source).await;
        }
        Ingested::Ignored
    }

    /// The other participant, if the entry belongs to one of our DMs.
    fn dm_peer_of(&self, entry: &VerifiedEntry) -> Option<UserId> {
        let space = entry.space();
        let dm = DmId::from_bytes(*space.as_bytes());
        if let Some(peer) = self.dms.get(&dm) {
            return Some(*peer);
        }
        let author = *entry.author();
        (author != self.me && DmId::between(&author, &self.me) == dm).then_some(author)
    }

    async fn ingest_member(
        &mut self,
        server: ServerId,
        entry: VerifiedEntry,
        source: Source,
    ) -> Ingested {
        if entry.genesis_of().is_some() {
            return if entry.genesis_of() == Some(server) {
                Ingested::Duplicate
            } else {
                Ingested::Ignored
            };
        }
        let control_log = self
            .servers
            .get(&server)
            .and_then(|runtime| runtime.control_log);
        if Some(entry.log_id()) == control_log {
            self.ingest_control(server, entry, source).await
        } else {
            self.ingest_channel(server, entry, source).await
        }
    }

    /// Appends to the ledger and maps the chain rules to an outcome.
    fn append_checked(&mut self, entry: &VerifiedEntry, source: Source) -> Result<(), Ingested> {
        match self.ledger.append_deferred(entry) {
            Ok((AppendOutcome::Appended, _ticket)) => {
                self.note_space_bytes(entry.space(), entry.len());
                Ok(())
            }
            Ok((AppendOutcome::Duplicate, _)) => Err(Ingested::Duplicate),
            Err(LedgerError::SeqGap { .. }) => Err(self.hold_gap(entry.clone(), source)),
            // Our disk failed, not the sender: nothing to penalise; a later
            // sync brings the entry again.
            Err(err) if err.category() != storage_ledger::ErrorCategory::Protocol => {
                tracing::debug!(code = err.code(), "cannot store a received entry");
                Err(Ingested::Ignored)
            }
            Err(err) => {
                if err.code() == "ledger.equivocation" {
                    tracing::warn!(author = %entry.author(), seq = entry.seq(), "equivocation detected; the first entry is kept");
                }
                Err(Ingested::Rejected(err.into()))
            }
        }
    }

    async fn ingest_control(
        &mut self,
        server: ServerId,
        entry: VerifiedEntry,
        source: Source,
    ) -> Ingested {
        if matches!(self.ledger.get_by_hash(&entry.hash()), Ok(Some(_))) {
            return Ingested::Duplicate;
        }
        let payload = match self.keys.open(&entry) {
            Ok(payload) => payload,
            Err(OpenError::NoKey(epoch)) => {
                tracing::debug!(epoch, "no key for this epoch yet; holding the entry");
                return self.hold_blocked(entry);
            }
            Err(OpenError::Invalid(err)) => return Ingested::Rejected(err.into()),
        };
        let Some(record) = ControlRecord::from_entry(&entry, &payload) else {
            return rejected(
                "node.not_control",
                "a control log entry must carry a control event",
            );
        };
        let Some(decision) = self.check_control(&server, &record) else {
            return Ingested::Ignored;
        };
        if let Err(denied) = decision {
            let member = self
                .servers
                .get(&server)
                .and_then(|runtime| runtime.state.as_ref())
                .is_some_and(|state| state.is_member(&record.author));
            tracing::debug!(
                code = denied.code(),
                kind = record.event.kind(),
                author = %record.author,
                seq = record.seq,
                member,
                "control event not allowed at its place"
            );
            if !member {
                // Maybe an event we have not seen yet makes its author a
                // member (a join, an inviter's join): wait for it.
                return self.hold_blocked(entry);
            }
            // A member's event is kept even when the fold refuses it, as its
            // author (and everyone who saw it in another order) keeps it:
            // every member must hold the same log, and the fold, which sees
            // every record, decides the same everywhere.
        }
        if let Err(outcome) = self.append_checked(&entry, source) {
            return outcome;
        }
        self.apply_control(server, record).await;
        Ingested::Accepted
    }

    /// May this control record be applied at its place in display order?
    /// `None` when the server has no state (not a member).
    pub(crate) fn check_control(
        &self,
        server: &ServerId,
        record: &ControlRecord,
    ) -> Option<Result<(), crate::control::Denied>> {
        let runtime = self.servers.get(server)?;
        let state = runtime.state.as_ref()?;
        let after_all = state
            .last_applied()
            .is_none_or(|last| record.order_key() > last);
        if after_all {
            return Some(state.authorize(record));
        }
        let genesis = runtime.genesis_record.as_ref()?;
        let mut all: Vec<ControlRecord> = runtime.records.values().cloned().collect();
        all.push(record.clone());
        let folded = ServerState::fold(*server, genesis, runtime.control_log?, &all).ok()?;
        match folded
            .rejected()
            .iter()
            .find(|(hash, _)| *hash == record.hash)
        {
            Some((_, denied)) => Some(Err(denied.clone())),
            None => Some(Ok(())),
        }
    }

    /// Applies an allowed control record (ours or received) and reacts to it.
    pub(crate) async fn apply_control(&mut self, server: ServerId, record: ControlRecord) {
        let Some(runtime) = self.servers.get_mut(&server) else {
            return;
        };
        runtime.records.insert(record.order_key(), record.clone());
        let applied_in_order = runtime.state.as_mut().is_some_and(|state| {
            state
                .last_applied()
                .is_none_or(|last| record.order_key() > last)
                && state.apply(&record).is_ok()
        });
        // A record the fold refuses at its place is kept but has no effect
        // (no key taken from it, no grant owed because of it) — until an
        // earlier record arrives that makes the fold allow it. Only a
        // refold can change what was refused before.
        let effective: Vec<ControlRecord> = if applied_in_order {
            vec![record]
        } else {
            let refused_before = self.refused_records(&server);
            self.refold(&server);
            let refused_now = self.refused_records(&server);
            self.after_lost_rotations(server, &record, &refused_before)
                .await;
            let mut effective: Vec<ControlRecord> = self
                .servers
                .get(&server)
                .map(|runtime| {
                    runtime
                        .records
                        .values()
                        .filter(|known| {
                            known.hash != record.hash
                                && refused_before.contains(&known.hash)
                                && !refused_now.contains(&known.hash)
                        })
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            if !refused_now.contains(&record.hash) {
                effective.push(record);
            }
            effective
        };
        for record in &effective {
            self.after_control(server, record).await;
        }
        self.retry_held(SpaceId::from(server));
        self.emit(Event::ServerUpdated {
            server_id: server.to_hex(),
        });
    }

    /// Key rotations the fold refuses as concurrent (another moderator
    /// rotated to the same epoch first in the control order), newly
    /// refused or just arrived:
    /// - their key still decrypts what their author sealed under it before
    ///   it learnt of the other rotation, so we keep it (not to encrypt);
    /// - when one of them is ours, the members removed on our side of the
    ///   race may hold the kept rotation's key (its author did not know of
    ///   the removal): we rotate again (`rotation_owed`).
    async fn after_lost_rotations(
        &mut self,
        server: ServerId,
        record: &ControlRecord,
        refused_before: &std::collections::HashSet<EntryHash>,
    ) {
        let Some(runtime) = self.servers.get(&server) else {
            return;
        };
        let Some(state) = runtime.state.as_ref() else {
            return;
        };
        let lost: std::collections::HashSet<&EntryHash> = state
            .rejected()
            .iter()
            .filter(|(hash, denied)| {
                *denied == Denied::ConcurrentRotation
                    && (*hash == record.hash || !refused_before.contains(hash))
            })
            .map(|(hash, _)| hash)
            .collect();
        let lost: Vec<ControlRecord> = runtime
            .records
            .values()
            .filter(|known| lost.contains(&known.hash))
            .cloned()
            .collect();
        for lost in lost {
            let ControlEvent::KeyRotation(rotation) = &lost.event else {
                continue;
            };
            self.learn_rotation_key(server, rotation, false).await;
        }
        if self.rotation_owed(&server) {
            tracing::info!(%server, "the fold changed and we owe a key rotation; rotating");
            self.deferred_rotations.insert(server);
        }
    }

    /// The records of `server` its fold refuses.
    fn refused_records(&self, server: &ServerId) -> std::collections::HashSet<EntryHash> {
        self.servers
            .get(server)
            .and_then(|runtime| runtime.state.as_ref())
            .map(|state| state.rejected().iter().map(|(hash, _)| *hash).collect())
            .unwrap_or_default()
    }

    /// Recomputes a server's state from its genesis and every record.
    pub(crate) fn refold(&mut self, server: &ServerId) {
        let Some(runtime) = self.servers.get_mut(server) else {
            return;
        };
        let (Some(genesis), Some(control_log)) =
            (runtime.genesis_record.as_ref(), runtime.control_log)
        else {
            return;
        };
        let records: Vec<ControlRecord> = runtime.records.values().cloned().collect();
        match ServerState::fold(*server, genesis, control_log, &records) {
            Ok(state) => runtime.state = Some(state),
            Err(err) => tracing::error!(%server, %err, "cannot fold the control log"),
        }
    }

    async fn ingest_channel(
        &mut self,
        server: ServerId,
        entry: VerifiedEntry,
        source: Source,
    ) -> Ingested {
        let author = *entry.author();
        let log = entry.log_id();
        let Some(state) = self
            .servers
            .get(&server)
            .and_then(|runtime| runtime.state.as_ref())
        else {
            return Ingested::Ignored;
        };
        let Some(channel) = state.channel_by_log(&log).map(|channel| channel.id) else {
            // Perhaps a channel whose creation we have not seen yet.
            return self.hold_blocked(entry);
        };
        if !state.may_post(&author, &log, entry.seq()) {
            let known = state.is_member(&author)
                || state.departure(&author).is_some()
                || state.is_banned(&author);
            return if known {
                rejected(
                    "permission.not_allowed_to_post",
                    "the author may not post in this channel",
                )
            } else {
                // Perhaps a new member whose join has not arrived yet.
                self.hold_blocked(entry)
            };
        }
        if let Source::Gossip(_) = source
            && !self.take_rate(&author)
        {
            return Ingested::Ignored;
        }
        let payload = match self.keys.open(&entry) {
            Ok(payload) => payload,
            Err(OpenError::NoKey(epoch)) => {
                tracing::debug!(epoch, "no key for this epoch yet; holding the entry");
                return self.hold_blocked(entry);
            }
            Err(OpenError::Invalid(err)) => return Ingested::Rejected(err.into()),
        };
        if matches!(payload.body, Body::Control(_)) {
            return rejected(
                "node.control_in_channel",
                "control events belong in the control log",
            );
        }
        if let Err(outcome) = self.append_checked(&entry, source) {
            return outcome;
        }
        self.apply_message(Some((server, channel)), &entry, &payload)
            .await;
        Ingested::Accepted
    }

    /// Members' rate limit on live traffic: `author_rate_per_sec`, burst
    /// `author_burst`. Entries over it are dropped (sync fetches them later).
    fn take_rate(&mut self, author: &UserId) -> bool {
        let (rate, burst) = (self.config.author_rate_per_sec, self.config.author_burst);
        take_token(&mut self.rates, author, rate, burst)
    }

    fn hold_gap(&mut self, entry: VerifiedEntry, source: Source) -> Ingested {
        let space = entry.space();
        let held = self.held.entry(space).or_default();
        if held.gap_count >= MAX_GAP_ENTRIES {
            return Ingested::Ignored;
        }
        let slot = held
            .gaps
            .entry((entry.log_id(), *entry.author()))
            .or_default();
        tracing::debug!(author = %entry.author(), seq = entry.seq(), "entry held: an earlier one of its feed is missing");
        if slot.insert(entry.seq(), entry).is_none() {
            held.gap_count += 1;
        }
        // Backfill the gap from whoever sent it.
        if let Some(peer) = source.peer() {
            self.start_sync(space, peer);
        }
        Ingested::Held
    }

    pub(crate) fn hold_blocked(&mut self, entry: VerifiedEntry) -> Ingested {
        let held = self.held.entry(entry.space()).or_default();
        if held
            .blocked
            .iter()
            .any(|known| known.hash() == entry.hash())
        {
            return Ingested::Held;
        }
        if held.blocked.len() >= MAX_BLOCKED_ENTRIES {
            held.blocked.pop_front();
        }
        tracing::debug!(author = %entry.author(), seq = entry.seq(), "entry held until it can be judged");
        held.blocked.push_back(entry);
        Ingested::Held
    }

    /// Marks a space whose held-back entries should be tried again.
    pub(crate) fn retry_held(&mut self, space: SpaceId) {
        self.retry_spaces.insert(space);
    }

    /// Tries held-back entries again until nothing more can be applied.
    pub(crate) async fn settle(&mut self) {
        for _ in 0..8 {
            let spaces: Vec<SpaceId> = self.retry_spaces.drain().collect();
            if spaces.is_empty() {
                return;
            }
            for space in spaces {
                let Some(held) = self.held.get_mut(&space) else {
                    continue;
                };
                let mut blocked: Vec<VerifiedEntry> = held.blocked.drain(..).collect();
                blocked.sort_by_key(|entry| (entry.log_id(), *entry.author(), entry.seq()));
                for entry in blocked {
                    let _ = self.ingest_entry(entry, Source::Retry).await;
                }
            }
        }
    }

    /// Entries held back for a space (for status).
    pub(crate) fn held_count(&self, space: &SpaceId) -> usize {
        self.held
            .get(space)
            .map_or(0, |held: &Held| held.gap_count + held.blocked.len())
    }

    pub(crate) fn note_space_bytes(&mut self, space: SpaceId, len: usize) {
        *self.space_bytes.entry(space).or_default() += len as u64;
    }
}

/// Takes one token from `author`'s bucket.
pub(crate) fn take_token(
    rates: &mut std::collections::HashMap<UserId, AuthorRate>,
    author: &UserId,
    rate: f64,
    burst: f64,
) -> bool {
    let now = std::time::Instant::now();
    let bucket = rates.entry(*author).or_insert(AuthorRate {
        tokens: burst,
        last: now,
    });
    let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
    bucket.last = now;
    bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
    if bucket.tokens >= 1.0 {
        bucket.tokens -= 1.0;
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_author_over_its_rate_is_refused_until_tokens_refill() {
        let mut rates = std::collections::HashMap::new();
        let author = identity_core::Identity::from_secret_bytes(&[1; 32]).user_id();
        let other = identity_core::Identity::from_secret_bytes(&[2; 32]).user_id();
        let accepted = (0..150)
            .filter(|_| take_token(&mut rates, &author, 20.0, 100.0))
            .count();
        assert!(
            (100..=120).contains(&accepted),
            "{accepted} of a burst of 150 accepted"
        );
        // Another author is not affected.
        assert!(take_token(&mut rates, &other, 20.0, 100.0));
        std::thread::sleep(std::time::Duration::from_millis(120));
        assert!(
            take_token(&mut rates, &author, 20.0, 100.0),
            "tokens refill at the rate"
        );
    }
}
