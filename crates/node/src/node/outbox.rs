//! The outbox: every entry we write stays here, persisted, until some peer
//! is known to hold it (its heads, a push answer, a range it fetched).
//! Until then delivery is retried for ever: gossip again (for servers) and
//! push to the replicas and the DM peer, after 2 s, then doubling to 5
//! minutes, each delay with ±25 % jitter. Publishing with no peer connected
//! is not an error: the retries and the peers' own syncs deliver it later.
//!
//! Gossip carries no receipts, so a retry of an entry already published
//! also asks the server's connected members how far they hold our feed of
//! its log (`SyncRequest::Head`, one small request per member, at most
//! [`MAX_PROBED_PEERS`] members and one round per log every
//! [`PROBE_INTERVAL`]): their answers confirm it about 2 s after it was
//! sent instead of at the next periodic sync (30 s by default).
//!
//! The same bookkeeping gives each message its delivery state: held by
//! nobody else yet, by a replica, or by k of the n other members.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use identity_core::UserId;
use messaging_proto::{
    EntryHash, LogId, PushResult, ServerId, SpaceId, SyncRequest, SyncResponse, VerifiedEntry,
};
use net_overlay::PeerId;
use rand::RngExt;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use storage_ledger::LedgerStore;

use super::holders::Noted;
use super::{Internal, NodeCore};
use crate::api::{DeliveryState, Event};
use crate::local_store::ns;

/// Most of our recent messages per log whose delivery state we follow.
const RECENT_PER_LOG: usize = 256;

/// Most members asked at once how far they hold our feed of a log.
pub(crate) const MAX_PROBED_PEERS: usize = 16;

/// Shortest time between two rounds of such questions for one log.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// One entry waiting for a peer to confirm it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct OutboxItem {
    hash: String,
    log: String,
    seq: u64,
    dm_peer: Option<String>,
    attempts: u32,
    /// The next retry by the wall clock: stored, so that a restart keeps
    /// the schedule (as a hint; see [`OutboxItem::restored`]).
    next_ms: u64,
    /// The next retry by the monotonic clock, which is what schedules it:
    /// a wall clock set back by an hour must not hold retries for an hour.
    #[serde(skip)]
    due: Option<Instant>,
}

impl OutboxItem {
    /// An item read back at start: due when its stored time comes, but
    /// never later than `max_delay` from now (the stored time is by a wall
    /// clock that may have been set back meanwhile).
    pub(crate) fn restored(mut self, now_ms: u64, max_delay: Duration) -> Self {
        let wait = Duration::from_millis(self.next_ms.saturating_sub(now_ms)).min(max_delay);
        self.due = Some(Instant::now() + wait);
        self
    }

    fn schedule(&mut self, now_ms: u64, delay: Duration) {
        self.next_ms = now_ms.saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        self.due = Some(Instant::now() + delay);
    }

    fn is_due(&self, now: Instant) -> bool {
        self.due.is_none_or(|due| due <= now)
    }

    pub(crate) fn hash(&self) -> Option<EntryHash> {
        self.hash.parse().ok()
    }

    fn log(&self) -> Option<LogId> {
        self.log.parse().ok()
    }

    fn dm_peer(&self) -> Option<UserId> {
        self.dm_peer.as_deref().and_then(|peer| peer.parse().ok())
    }
}

impl NodeCore {
    fn retry_delay(&self, attempts: u32) -> Duration {
        let timers = &self.config.timers;
        let exponent = attempts.min(16);
        let delay = timers
            .outbox_first_retry
            .saturating_mul(1 << exponent)
            .min(timers.outbox_max_retry);
        delay.mul_f64(rand::rng().random_range(0.75..1.25))
    }

    pub(crate) async fn add_to_outbox(&mut self, entry: &VerifiedEntry, dm_peer: Option<UserId>) {
        let mut item = OutboxItem {
            hash: entry.hash().to_hex(),
            log: entry.log_id().to_hex(),
            seq: entry.seq(),
            dm_peer: dm_peer.map(|peer| peer.to_string()),
            attempts: 0,
            next_ms: 0,
            due: None,
        };
        item.schedule(self.now_ms(), self.retry_delay(0));
        // The entry itself is durable already; the outbox record rides on
        // the next flush (if it is lost, peers' syncs still fetch the entry).
        if let Err(err) = self.store.put(ns::OUTBOX, entry.hash().as_bytes(), &item) {
            tracing::warn!(code = err.code, "cannot persist an outbox record");
        }
        self.outbox.insert(entry.hash(), item);
    }

    /// Retries every due outbox entry.
    pub(crate) async fn retry_outbox(&mut self) {
        let now = Instant::now();
        let now_ms = self.now_ms();
        let due: Vec<EntryHash> = self
            .outbox
            .iter()
            .filter(|(_, item)| item.is_due(now))
            .map(|(hash, _)| *hash)
            .collect();
        if due.is_empty() {
            return;
        }
        // A server entry already published is retried only towards the
        // connected replicas; with none, nothing would be sent, so it is not
        // read back nor its record rewritten (in a busy server every entry
        // waits a few retries for the peers' heads to confirm it).
        let replicas_connected = self.servers.keys().any(|server| {
            self.replica_peers(server)
                .iter()
                .any(|peer| self.connected.contains(peer))
        });
        // The newest due published entry of each log: the members are asked
        // whether they hold it.
        let mut probes: HashMap<LogId, u64> = HashMap::new();
        for hash in due {
            let Some(mut item) = self.outbox.get(&hash).cloned() else {
                continue;
            };
            let published = item.dm_peer.is_none() && self.published.contains(&hash);
            if published && let Some(log) = item.log() {
                let seq = probes.entry(log).or_default();
                *seq = (*seq).max(item.seq);
            }
            let nothing_to_send = published && !replicas_connected;
            if !nothing_to_send {
                match self.ledger.get_by_hash(&hash) {
                    Ok(Some(bytes)) => match VerifiedEntry::decode_stored(bytes) {
                        Ok(entry) => self.deliver(&entry, item.dm_peer()).await,
                        Err(err) => tracing::warn!(%err, "unreadable outbox entry"),
                    },
                    Ok(None) => {
                        // Pruned or lost: nothing left to deliver.
                        self.forget_outbox(&hash);
                        continue;
                    }
                    Err(err) => tracing::warn!(%err, "cannot read an outbox entry"),
                }
            }
            item.attempts = item.attempts.saturating_add(1);
            item.schedule(now_ms, self.retry_delay(item.attempts));
            if !nothing_to_send {
                let _ = self.store.put(ns::OUTBOX, hash.as_bytes(), &item);
            }
            self.outbox.insert(hash, item);
        }
        self.probed
            .retain(|_, at| now.saturating_duration_since(*at) < PROBE_INTERVAL);
        for (log, seq) in probes {
            if let std::collections::hash_map::Entry::Vacant(slot) = self.probed.entry(log) {
                slot.insert(now);
                self.probe_holders(log, seq);
            }
        }
    }

    /// Asks the server's connected members not yet known to hold our entry
    /// `seq` of `log` (a random [`MAX_PROBED_PEERS`] of them) how far they
    /// hold our feed of it; each answer is handled like heads seen in a
    /// sync (`peer_holds`).
    fn probe_holders(&self, log: LogId, seq: u64) {
        let Some(server) = self.server_of_log(&log) else {
            return;
        };
        let mut peers: Vec<PeerId> = self
            .topic_peers
            .get(&server)
            .into_iter()
            .flatten()
            .filter(|peer| self.connected.contains(peer) && self.holders.held(&log, peer) < seq)
            .copied()
            .collect();
        peers.shuffle(&mut rand::rng());
        peers.truncate(MAX_PROBED_PEERS);
        for peer in peers {
            let overlay = self.overlay.clone();
            let internal = self.internal_tx.clone();
            let me = self.me;
            tokio::spawn(async move {
                let request = SyncRequest::Head { log, author: me };
                if let Ok(SyncResponse::Heads(page)) = overlay.sync(peer, request).await
                    && let Some(head) = page.heads.iter().find(|head| head.author == me)
                {
                    let _ = internal
                        .send(Internal::PeerHolds {
                            peer,
                            log,
                            seq: head.seq,
                        })
                        .await;
                }
            });
        }
    }

    fn forget_outbox(&mut self, hash: &EntryHash) {
        self.published.remove(hash);
        if self.outbox.remove(hash).is_some() {
            let _ = self.store.delete(ns::OUTBOX, hash.as_bytes());
        }
    }

    /// Whether an entry of ours in `server` waits for confirmation.
    pub(crate) fn outbox_holds_server(&self, server: &ServerId) -> bool {
        self.outbox.values().any(|item| {
            item.log()
                .is_some_and(|log| self.server_of_log(&log) == Some(*server))
        })
    }

    /// Number of entries waiting for confirmation.
    pub(crate) fn outbox_depth(&self) -> usize {
        self.outbox.len()
    }

    /// A peer holds our feed of `log` up to `seq`: confirm outbox entries
    /// and move delivery states along.
    pub(crate) async fn peer_holds(&mut self, peer: PeerId, log: LogId, seq: u64) {
        let noted = self.holders.note(peer, log, seq, &self.connected);
        if noted == Noted::Known {
            return;
        }
        let confirmed: Vec<EntryHash> = self
            .outbox
            .iter()
            .filter(|(_, item)| item.log() == Some(log) && item.seq <= seq)
            .map(|(hash, _)| *hash)
            .collect();
        for hash in confirmed {
            self.forget_outbox(&hash);
        }
        self.update_delivery(log);
    }

    /// Remembers one of our messages for delivery tracking.
    pub(crate) fn note_mine(&mut self, entry: &VerifiedEntry) {
        let log = entry.log_id();
        let recent = self.recent_mine.entry(log).or_default();
        recent.push_back((entry.seq(), entry.hash(), None));
        while recent.len() > RECENT_PER_LOG {
            recent.pop_front();
        }
        self.update_delivery(log);
    }

    /// The delivery state of our entry `seq` in `log`.
    pub(crate) fn delivery_state(&self, log: &LogId, seq: u64) -> DeliveryState {
        self.log_holders(log).state_of(seq)
    }

    /// Who holds how much of our feed in `log`, and how many members count.
    /// Peers are mapped to users once per peer (`FeedHolders`): turning a
    /// peer id into a user id decompresses a curve point, far too slow to
    /// repeat for every message and peer.
    fn log_holders(&self, log: &LogId) -> LogHolders {
        let (counted, of) = match self.server_of_log(log) {
            Some(server) => {
                let state = self
                    .servers
                    .get(&server)
                    .and_then(|runtime| runtime.state.as_ref());
                let of = state.map_or(0, |state| state.members().count().saturating_sub(1));
                (Counted::MembersOf(state), of)
            }
            // A DM: the other participant is the one member that counts.
            None => (
                Counted::Only(
                    self.dms
                        .get(&messaging_proto::DmId::from_bytes(*log.as_bytes()))
                        .copied(),
                ),
                1,
            ),
        };
        let holders = self
            .holders
            .of_log(log)
            .map(|(held, user)| (held, user.is_some_and(|user| counted.counts(&user))))
            .collect();
        LogHolders { holders, of }
    }

    /// Emits the changed delivery states of our recent entries in `log`.
    fn update_delivery(&mut self, log: LogId) {
        let Some(recent) = self.recent_mine.get(&log) else {
            return;
        };
        let holders = self.log_holders(&log);
        let states: Vec<(usize, EntryHash, DeliveryState)> = recent
            .iter()
            .enumerate()
            .filter_map(|(index, (seq, hash, last))| {
                let state = holders.state_of(*seq);
                (Some(state) != *last).then_some((index, *hash, state))
            })
            .collect();
        for (index, hash, state) in states {
            if let Some(recent) = self.recent_mine.get_mut(&log)
                && let Some(slot) = recent.get_mut(index)
            {
                slot.2 = Some(state);
            }
            self.emit(Event::Delivery {
                message_id: hash.to_hex(),
                state,
            });
        }
    }

    /// The server a log belongs to, if it is one of ours.
    pub(crate) fn server_of_log(&self, log: &LogId) -> Option<ServerId> {
        self.servers
            .values()
            .find(|runtime| {
                runtime.control_log.as_ref() == Some(log)
                    || runtime
                        .state
                        .as_ref()
                        .is_some_and(|state| state.channel_by_log(log).is_some())
            })
            .map(|runtime| runtime.id)
    }

    /// Pushes entries to the server's bootstrap peers we are connected to.
    pub(crate) fn push_to_replicas(&self, server: ServerId, entries: Vec<bytes::Bytes>) {
        let replicas: Vec<PeerId> = self
            .replica_peers(&server)
            .into_iter()
            .filter(|peer| self.connected.contains(peer))
            .collect();
        for peer in replicas {
            self.push(peer, SpaceId::from(server), entries.clone(), None);
        }
    }

    /// Pushes entries to a peer in the background and records what it holds.
    pub(crate) fn push(
        &self,
        peer: PeerId,
        space: SpaceId,
        entries: Vec<bytes::Bytes>,
        inbox: Option<messaging_proto::InboxTag>,
    ) {
        let overlay = self.overlay.clone();
        let internal = self.internal_tx.clone();
        let me = self.me;
        tokio::spawn(async move {
            let decoded: Vec<Option<VerifiedEntry>> = entries
                .iter()
                .map(|bytes| VerifiedEntry::decode_stored(bytes.clone()).ok())
                .collect();
            let request = SyncRequest::Push {
                space,
                entries,
                inbox,
            };
            if let Ok(SyncResponse::Push(results)) = overlay.sync(peer, request).await {
                for (entry, result) in decoded.iter().zip(results) {
                    if let (Some(entry), PushResult::Stored | PushResult::Duplicate) =
                        (entry, result)
                        && entry.author() == &me
                    {
                        let _ = internal
                            .send(Internal::PeerHolds {
                                peer,
                                log: entry.log_id(),
                                seq: entry.seq(),
                            })
                            .await;
                    }
                }
            }
        });
    }

    /// At shutdown: push every outbox entry to connected replicas and DM
    /// peers, waiting at most `timeout` in all.
    pub(crate) async fn drain_outbox(&mut self, timeout: Duration) {
        if self.outbox.is_empty() {
            return;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let hashes: Vec<EntryHash> = self.outbox.keys().copied().collect();
        for hash in hashes {
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            let Some(item) = self.outbox.get(&hash).cloned() else {
                continue;
            };
            let Ok(Some(bytes)) = self.ledger.get_by_hash(&hash) else {
                continue;
            };
            let Ok(entry) = VerifiedEntry::decode_stored(bytes) else {
                continue;
            };
            let _ = tokio::time::timeout_at(deadline, self.deliver(&entry, item.dm_peer())).await;
        }
    }
}

/// Whose holding counts as seen.
enum Counted<'a> {
    /// The members of a server (none while its state is unknown).
    MembersOf(Option<&'a crate::control::ServerState>),
    /// The other participant of a DM.
    Only(Option<UserId>),
}

impl Counted<'_> {
    fn counts(&self, user: &UserId) -> bool {
        match self {
            Counted::MembersOf(state) => state.is_some_and(|state| state.is_member(user)),
            Counted::Only(other) => *other == Some(*user),
        }
    }
}

/// The peers holding our feed of one log: how far each holds it and
/// whether it is a member who counts; `of`: how many members could.
struct LogHolders {
    holders: Vec<(u64, bool)>,
    of: usize,
}

impl LogHolders {
    fn state_of(&self, seq: u64) -> DeliveryState {
        let holding = self.holders.iter().filter(|(held, _)| *held >= seq);
        let (mut peers, mut members) = (0usize, 0usize);
        for (_, member) in holding {
            peers += 1;
            members += usize::from(*member);
        }
        if members > 0 {
            DeliveryState::Seen {
                by: u32::try_from(members).unwrap_or(u32::MAX),
                of: u32::try_from(self.of).unwrap_or(u32::MAX),
            }
        } else if peers > 0 {
            DeliveryState::Replicated
        } else {
            DeliveryState::Stored
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(next_ms: u64) -> OutboxItem {
        OutboxItem {
            hash: String::new(),
            log: String::new(),
            seq: 1,
            dm_peer: None,
            attempts: 3,
            next_ms,
            due: None,
        }
    }

    #[test]
    fn a_restored_item_waits_for_its_time_but_never_longer_than_the_longest_retry() {
        let now_ms = 1_800_000_000_000;
        let max = Duration::from_secs(300);
        let start = Instant::now();
        // Stored an hour ahead (a wall clock set back since): due within
        // the longest retry delay, not in an hour.
        let ahead = item(now_ms + 3_600_000).restored(now_ms, max);
        assert!(!ahead.is_due(start));
        assert!(ahead.is_due(start + max + Duration::from_secs(1)));
        // Stored 10 s ahead: due in 10 s.
        let soon = item(now_ms + 10_000).restored(now_ms, max);
        assert!(!soon.is_due(start + Duration::from_secs(9)));
        assert!(soon.is_due(start + Duration::from_secs(11)));
        // Overdue: due now.
        assert!(
            item(now_ms - 5_000)
                .restored(now_ms, max)
                .is_due(Instant::now())
        );
    }
}
