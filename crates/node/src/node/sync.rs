//! The sync engine.
//!
//! Client side (a spawned task per (space, peer), never more than one at a
//! time): ask the peer for its digest of the space; for every log whose
//! digest differs from ours, page through its heads, and fetch each
//! author's missing range in chunks of at most 1 MiB. Fetched entries go to
//! the node in feed order and take the ordinary receive path. Heads that
//! show the peer holding our own feed confirm outbox entries. Syncs run
//! when a peer subscribes to a server's topic, when a replica connects,
//! when a gap is detected, and periodically (jittered) with one random
//! peer of each space.
//!
//! Server side: digests, heads, ranges and the genesis are served from the
//! ledger; pushes take the receive path. DM spaces are served only to their
//! two participants, unless we are a replica.

use std::time::{Duration, Instant};

use bytes::Bytes;
use identity_core::UserId;
use messaging_proto::{
    DigestResponse, DmId, EntryHash, GossipMessage, Head, HeadsResponse, LogDigest, LogId,
    PushResult, RangeRequest, RangeResponse, ServerId, SpaceId, SyncErrorCode, SyncRequest,
    SyncResponse,
};
use net_overlay::{OverlayHandle, PeerId};
use rand::RngExt;
use rand::seq::IndexedRandom;
use storage_ledger::{LedgerStore, SledLedger};
use tokio::sync::mpsc;

use super::ingest::{Ingested, Source};
use super::{Internal, NodeCore, user_of};
use crate::api::{Event, NodeError};

/// Most entries one sync fetches (a later sync continues).
const MAX_FETCH_PER_SYNC: u64 = 200_000;

/// The size of a feed's first fetched chunk; each next one is twice as
/// large, up to [`messaging_proto::limits::MAX_SYNC_CHUNK_BYTES`]: the
/// node starts storing and showing a long backlog after a short chunk
/// (about 50 messages of 1 KiB) instead of after a whole megabyte has
/// arrived and been verified.
const FIRST_CHUNK_BYTES: usize = 64 * 1024;

/// Fetched chunks (at most 1 MiB each) waiting for verification, besides
/// the one being verified: the sync task fetches ahead while its
/// forwarder verifies one chunk at a time, off the actor, as the actor
/// ingests the one before.
const CHUNKS_AHEAD: usize = 2;

/// What a sync task hands its forwarder, in order.
enum Delivery {
    /// A fetched chunk of entries (encoded, not yet verified).
    Chunk(Vec<Bytes>),
    /// The sync's outcome, sent to the actor after every chunk.
    Done(Box<Internal>),
}

struct SyncTask {
    overlay: OverlayHandle,
    ledger: std::sync::Arc<SledLedger>,
    internal: mpsc::Sender<Internal>,
    me: UserId,
    space: SpaceId,
    peer: PeerId,
    /// The control log of a server, fetched first.
    control_log: Option<LogId>,
    /// We do not hold the genesis yet (a new replica).
    need_genesis: bool,
    /// To the task that hands verified chunks to the actor in order.
    deliveries: mpsc::Sender<Delivery>,
}

impl NodeCore {
    /// Starts a sync of `space` with `peer` unless one is running.
    pub(crate) fn start_sync(&mut self, space: SpaceId, peer: PeerId) {
        if peer == self.overlay.peer_id() || !self.syncing.insert((space, peer)) {
            return;
        }
        let server = ServerId::from_bytes(*space.as_bytes());
        let runtime = self.servers.get(&server);
        let (deliveries, delivered) = mpsc::channel(CHUNKS_AHEAD);
        self.tasks
            .spawn(tracing::Instrument::in_current_span(forward(
                delivered,
                self.internal_tx.clone(),
                peer,
            )));
        let task = SyncTask {
            overlay: self.overlay.clone(),
            ledger: self.ledger.clone(),
            internal: self.internal_tx.clone(),
            me: self.me,
            space,
            peer,
            control_log: runtime.and_then(|runtime| runtime.control_log),
            need_genesis: runtime.is_some_and(|runtime| runtime.genesis.is_none()),
            deliveries,
        };
        self.tasks
            .spawn(tracing::Instrument::in_current_span(task.run()));
    }

    pub(crate) async fn sync_done(
        &mut self,
        space: SpaceId,
        peer: PeerId,
        state_hash: Option<[u8; 32]>,
        fetched: u64,
        error: Option<NodeError>,
    ) {
        self.syncing.remove(&(space, peer));
        tracing::debug!(%space, %peer, fetched, failed = error.is_some(), "sync done");
        self.settle().await;
        let server = ServerId::from_bytes(*space.as_bytes());
        let now = self.now_ms();
        if let Some(runtime) = self.servers.get_mut(&server) {
            if error.is_none() {
                runtime.last_sync_ms = Some(now);
            }
            // Equal digests but different states: our fold diverged
            // (it should not); recompute it from the ledger.
            if let (Some(theirs), Some(state)) = (state_hash, runtime.state.as_ref())
                && fetched == 0
                && theirs != state.state_hash()
                && error.is_none()
            {
                tracing::warn!(%server, "state hash differs from a peer's; refolding");
                self.refold(&server);
            }
        }
        if let Some(error) = &error {
            tracing::debug!(%peer, code = error.code, "sync failed");
        }
        self.emit(Event::SyncProgress {
            space_id: space.to_hex(),
            fetched,
            done: true,
        });
    }

    fn jittered_interval(&self) -> Duration {
        self.config
            .timers
            .sync_interval
            .mul_f64(rand::rng().random_range(0.75..1.25))
    }

    /// Starts the periodic syncs that are due, each with one random peer.
    pub(crate) fn periodic_sync(&mut self) {
        let now = Instant::now();
        let mut spaces: Vec<(SpaceId, Vec<PeerId>)> = self
            .servers
            .keys()
            .map(|server| {
                let mut peers: Vec<PeerId> = self
                    .replica_peers(server)
                    .into_iter()
                    .filter(|peer| self.connected.contains(peer))
                    .collect();
                peers.extend(self.topic_peers.get(server).into_iter().flatten().copied());
                (SpaceId::from(*server), peers)
            })
            .collect();
        for (dm, peer) in &self.dms {
            let peer = super::peer_of(peer);
            if self.connected.contains(&peer) {
                spaces.push((SpaceId::from(*dm), vec![peer]));
            }
        }
        for (space, peers) in spaces {
            let due = self.next_sync.get(&space).is_none_or(|at| *at <= now);
            if !due {
                continue;
            }
            let next = now + self.jittered_interval();
            self.next_sync.insert(space, next);
            match peers.choose(&mut rand::rng()).copied() {
                Some(peer) => self.start_sync(space, peer),
                None => {
                    tracing::debug!(%space, me = %self.overlay.peer_id(), "no peer to sync with")
                }
            }
        }
    }

    /// Asks a replica which DM spaces wait for us.
    pub(crate) fn query_inbox(&self, peer: PeerId) {
        let overlay = self.overlay.clone();
        let internal = self.internal_tx.clone();
        let tag = messaging_proto::InboxTag::of(&self.me);
        tokio::spawn(async move {
            if let Ok(SyncResponse::Inbox(spaces)) =
                overlay.sync(peer, SyncRequest::Inbox { tag }).await
            {
                let _ = internal.send(Internal::InboxFound { peer, spaces }).await;
            }
        });
    }

    /// Answers a peer's sync request.
    pub(crate) async fn serve_sync(&mut self, peer: PeerId, request: SyncRequest) -> SyncResponse {
        self.metrics.sync_requests_served.inc();
        match request {
            SyncRequest::Digest { space } => {
                if !self.may_serve(&peer, &space) {
                    return SyncResponse::error(SyncErrorCode::NotFound, "unknown space");
                }
                match self.digest_of(&space) {
                    Ok(response) => SyncResponse::Digest(response),
                    Err(err) => SyncResponse::error(SyncErrorCode::Internal, &err.message),
                }
            }
            SyncRequest::Heads { log, after_author } => {
                if !self.may_serve_log(&peer, &log) {
                    return SyncResponse::error(SyncErrorCode::NotFound, "unknown log");
                }
                match self.ledger.heads(
                    &log,
                    after_author.as_ref(),
                    messaging_proto::limits::MAX_HEADS_PER_RESPONSE,
                ) {
                    Ok(page) => SyncResponse::Heads(HeadsResponse {
                        log,
                        heads: page.heads.iter().map(|head| head.to_sync()).collect(),
                        more: page.more,
                    }),
                    Err(err) => SyncResponse::error(SyncErrorCode::Internal, &err.to_string()),
                }
            }
            SyncRequest::Head { log, author } => {
                if !self.may_serve_log(&peer, &log) {
                    return SyncResponse::error(SyncErrorCode::NotFound, "unknown log");
                }
                match self.ledger.head(&log, &author) {
                    Ok(head) => SyncResponse::Heads(HeadsResponse {
                        log,
                        heads: head
                            .map(|head| storage_ledger::AuthorHead { author, head }.to_sync())
                            .into_iter()
                            .collect(),
                        more: false,
                    }),
                    Err(err) => SyncResponse::error(SyncErrorCode::Internal, &err.to_string()),
                }
            }
            SyncRequest::Range(range) => self.serve_range(&peer, range).await,
            SyncRequest::Genesis { server } => {
                match self
                    .ledger
                    .get_by_hash(&EntryHash::from_bytes(*server.as_bytes()))
                {
                    Ok(Some(genesis)) => SyncResponse::Genesis(genesis),
                    _ => SyncResponse::error(SyncErrorCode::NotFound, "unknown server"),
                }
            }
            SyncRequest::Push {
                space,
                entries,
                inbox,
            } => {
                let server = ServerId::from_bytes(*space.as_bytes());
                let replica_dm =
                    inbox.is_some() && self.is_replica() && !self.servers.contains_key(&server);
                let mut results = Vec::with_capacity(entries.len());
                let mut relay = Vec::new();
                for bytes in entries {
                    let outcome = match messaging_proto::VerifiedEntry::verify(bytes.clone()) {
                        Ok(entry) if entry.space() != space => Ingested::Rejected(NodeError::new(
                            crate::api::ErrorCategory::Protocol,
                            "sync.wrong_space",
                            "a pushed entry belongs to another space",
                        )),
                        Ok(entry) if replica_dm => {
                            self.ingest_replica_dm(entry, Source::Push(peer)).await
                        }
                        Ok(entry) => {
                            // Verified once, above.
                            let outcome = self.ingest_checked(Ok(entry), Source::Push(peer)).await;
                            if matches!(outcome, Ingested::Accepted) && inbox.is_none() {
                                relay.push(bytes);
                            }
                            outcome
                        }
                        Err(err) => Ingested::Rejected(err.into()),
                    };
                    results.push(match outcome {
                        Ingested::Accepted => PushResult::Stored,
                        Ingested::Duplicate => PushResult::Duplicate,
                        Ingested::Held => PushResult::Gap,
                        Ingested::Ignored | Ingested::Rejected(_) => PushResult::Rejected,
                    });
                }
                // A member pushes to replicas when it has no gossip mesh yet
                // (just started, or a mesh of one): pass what was new on to
                // the server's other members now rather than at their next
                // sync. Gossip ids are content hashes, so a copy that also
                // arrives from its author is dropped as a duplicate.
                if self.servers.contains_key(&server) {
                    for bytes in relay {
                        let data = Bytes::from(GossipMessage::Entry(bytes).to_bytes());
                        if let Err(err) = self.overlay.publish(server, data).await {
                            tracing::debug!(%err, "cannot relay a pushed entry over gossip");
                        }
                    }
                }
                if let Some(tag) = inbox
                    && results
                        .iter()
                        .any(|result| matches!(result, PushResult::Stored | PushResult::Duplicate))
                {
                    self.file_in_inbox(tag, space);
                }
                SyncResponse::Push(results)
            }
            SyncRequest::Inbox { tag } => {
                let mut spaces: Vec<SpaceId> = self
                    .inbox
                    .get(&tag)
                    .into_iter()
                    .flatten()
                    .copied()
                    .collect();
                spaces.sort();
                spaces.truncate(messaging_proto::limits::MAX_INBOX_SPACES);
                SyncResponse::Inbox(spaces)
            }
        }
    }

    async fn serve_range(&mut self, peer: &PeerId, range: RangeRequest) -> SyncResponse {
        if !self.may_serve_log(peer, &range.log) {
            return SyncResponse::error(SyncErrorCode::NotFound, "unknown log");
        }
        let chunk = match self.ledger.range(
            &range.log,
            &range.author,
            range.from_seq,
            usize::try_from(range.limit).unwrap_or(usize::MAX),
            usize::try_from(range.max_bytes).unwrap_or(usize::MAX),
        ) {
            Ok(chunk) => chunk,
            Err(err) => return SyncResponse::error(SyncErrorCode::Internal, &err.to_string()),
        };
        // Our own entries leave the node only once durable, as gossip and
        // pushes do: one that a crash or a storage failure takes back would
        // have its seq reused, and a peer holding it would refuse the new
        // entry as an equivocation (and everything after it). (Nothing
        // else writes while the actor waits here.)
        if range.author == self.me && !chunk.entries.is_empty() {
            let ledger = self.ledger.clone();
            let flushed = tokio::task::spawn_blocking(move || ledger.flush()).await;
            if !matches!(flushed, Ok(Ok(()))) {
                return SyncResponse::error(
                    SyncErrorCode::Internal,
                    "our entries are not durable yet",
                );
            }
        }
        // A peer fetching our feed holds it afterwards (delivery state).
        if range.author == self.me && !chunk.entries.is_empty() {
            let last = range.from_seq + chunk.entries.len() as u64 - 1;
            self.peer_holds(*peer, range.log, last).await;
        }
        SyncResponse::Range(RangeResponse {
            log: range.log,
            author: range.author,
            entries: chunk.entries,
            more: chunk.more,
        })
    }

    fn digest_of(&self, space: &SpaceId) -> Result<DigestResponse, NodeError> {
        let mut logs = Vec::new();
        for log in self
            .ledger
            .logs_in_space(space)?
            .into_iter()
            .take(messaging_proto::limits::MAX_DIGEST_LOGS)
        {
            let info = self.ledger.digest(&log)?;
            logs.push(LogDigest {
                log,
                digest: info.digest,
                author_count: info.author_count,
            });
        }
        let server = ServerId::from_bytes(*space.as_bytes());
        let state_hash = self
            .servers
            .get(&server)
            .and_then(|runtime| runtime.state.as_ref())
            .map(crate::control::ServerState::state_hash);
        Ok(DigestResponse {
            space: *space,
            logs,
            state_hash,
        })
    }

    /// Servers we hold are served to anyone (their content is ciphertext);
    /// DM spaces only to their participants, unless we are a replica.
    fn may_serve(&self, peer: &PeerId, space: &SpaceId) -> bool {
        let server = ServerId::from_bytes(*space.as_bytes());
        if self.servers.contains_key(&server) {
            return true;
        }
        if self.is_replica() {
            return true;
        }
        let dm = DmId::from_bytes(*space.as_bytes());
        match (self.dms.get(&dm), user_of(peer)) {
            (Some(other), Some(user)) => *other == user,
            _ => false,
        }
    }

    fn may_serve_log(&self, peer: &PeerId, log: &LogId) -> bool {
        // A DM's log id equals its space id; server logs are served when we
        // hold the server.
        let dm = DmId::from_bytes(*log.as_bytes());
        if self.dms.contains_key(&dm) {
            return self.may_serve(peer, &SpaceId::from(dm));
        }
        true
    }

    /// Whether this node replicates anything.
    pub(crate) fn is_replica(&self) -> bool {
        !matches!(self.config.replica, crate::config::ReplicaScope::None)
    }
}

impl SyncTask {
    async fn run(self) {
        let result = self.sync().await;
        let (state_hash, fetched, error) = match result {
            Ok((state_hash, fetched)) => (state_hash, fetched, None),
            Err((fetched, error)) => (None, fetched, Some(error)),
        };
        // After the last chunk: the actor learns the outcome once it holds
        // everything fetched.
        let _ = self
            .deliveries
            .send(Delivery::Done(Box::new(Internal::SyncDone {
                space: self.space,
                peer: self.peer,
                state_hash,
                fetched,
                error,
            })))
            .await;
    }

    async fn request(&self, request: SyncRequest) -> Result<SyncResponse, NodeError> {
        let response = self.overlay.sync(self.peer, request).await?;
        if let SyncResponse::Error(error) = &response {
            let mut err = NodeError::new(
                crate::api::ErrorCategory::Network,
                "sync.peer_error",
                format!("the peer refused: {}", error.message),
            );
            err.retry_after_ms = error.retry_after_ms;
            return Err(err);
        }
        Ok(response)
    }

    async fn sync(&self) -> Result<(Option<[u8; 32]>, u64), (u64, NodeError)> {
        let mut fetched = 0u64;
        if self.need_genesis {
            let server = ServerId::from_bytes(*self.space.as_bytes());
            if let Ok(SyncResponse::Genesis(genesis)) =
                self.request(SyncRequest::Genesis { server }).await
            {
                fetched += 1;
                self.deliver(vec![genesis]).await;
            }
        }
        let response = self
            .request(SyncRequest::Digest { space: self.space })
            .await
            .map_err(|err| (fetched, err))?;
        let SyncResponse::Digest(digest) = response else {
            return Err((fetched, NodeError::internal("unexpected sync response")));
        };
        let mut logs = digest.logs;
        // The control log first: it decides what the rest may contain.
        logs.sort_by_key(|log| Some(log.log) != self.control_log);
        // Whether the peer holds exactly what we hold: only then must our
        // states agree (a peer behind or ahead of us differs rightly).
        let mut identical = self.ledger.logs_in_space(&self.space).is_ok_and(|ours| {
            ours.iter()
                .all(|log| logs.iter().any(|remote| remote.log == *log))
        });
        for remote in logs {
            let ours = self
                .ledger
                .digest(&remote.log)
                .map_err(|err| (fetched, err.into()))?;
            if ours.digest != remote.digest {
                identical = false;
            }
            if ours.digest == remote.digest {
                // The peer holds exactly what we hold of this log.
                if let Ok(Some(head)) = self.ledger.head(&remote.log, &self.me) {
                    self.holds(remote.log, head.seq).await;
                }
                continue;
            }
            fetched += self
                .sync_log(remote.log, fetched)
                .await
                .map_err(|err| (fetched, err))?;
            if fetched >= MAX_FETCH_PER_SYNC {
                break;
            }
        }
        Ok((digest.state_hash.filter(|_| identical), fetched))
    }

    async fn sync_log(&self, log: LogId, already: u64) -> Result<u64, NodeError> {
        let mut fetched = 0u64;
        let mut after_author = None;
        loop {
            let SyncResponse::Heads(page) = self
                .request(SyncRequest::Heads { log, after_author })
                .await?
            else {
                return Err(NodeError::internal("unexpected sync response"));
            };
            for head in &page.heads {
                if head.author == self.me {
                    self.holds(log, head.seq).await;
                }
                fetched += self.fetch_feed(log, head).await?;
                if already + fetched >= MAX_FETCH_PER_SYNC {
                    return Ok(fetched);
                }
            }
            match (page.more, page.heads.last()) {
                (true, Some(last)) => after_author = Some(last.author),
                _ => return Ok(fetched),
            }
        }
    }

    async fn fetch_feed(&self, log: LogId, head: &Head) -> Result<u64, NodeError> {
        let ours = self
            .ledger
            .head(&log, &head.author)?
            .map_or(0, |ours| ours.seq);
        if ours >= head.seq {
            return Ok(0);
        }
        let mut from_seq = (ours + 1).max(head.first_seq);
        let mut fetched = 0u64;
        let mut max_bytes = FIRST_CHUNK_BYTES;
        while from_seq <= head.seq {
            let request = SyncRequest::Range(RangeRequest {
                log,
                author: head.author,
                from_seq,
                limit: messaging_proto::limits::MAX_RANGE_LIMIT,
                max_bytes: u32::try_from(max_bytes).unwrap_or(u32::MAX),
            });
            max_bytes = (max_bytes * 2).min(messaging_proto::limits::MAX_SYNC_CHUNK_BYTES);
            let SyncResponse::Range(range) = self.request(request).await? else {
                return Err(NodeError::internal("unexpected sync response"));
            };
            if range.entries.is_empty() {
                break;
            }
            let count = range.entries.len() as u64;
            from_seq += count;
            fetched += count;
            let more = range.more;
            self.deliver(range.entries).await;
            if !more {
                break;
            }
        }
        Ok(fetched)
    }

    /// Queues a fetched chunk for verification and the actor; waits only
    /// while [`CHUNKS_AHEAD`] chunks are queued, so the next chunk is
    /// fetched while this one is verified.
    async fn deliver(&self, entries: Vec<Bytes>) {
        let _ = self.deliveries.send(Delivery::Chunk(entries)).await;
    }

    async fn holds(&self, log: LogId, seq: u64) {
        let _ = self
            .internal
            .send(Internal::PeerHolds {
                peer: self.peer,
                log,
                seq,
            })
            .await;
    }
}

/// Verifies a sync task's chunks one at a time on a blocking thread (up
/// to 1 MiB of entries, about 50 µs of signature checking each) and hands
/// them to the actor in fetch order, then the sync's outcome. One chunk at
/// a time: chunks verified side by side would compete for the cores and
/// finish together, leaving the actor idle meanwhile.
async fn forward(
    mut deliveries: mpsc::Receiver<Delivery>,
    internal: mpsc::Sender<Internal>,
    peer: PeerId,
) {
    while let Some(delivery) = deliveries.recv().await {
        let message = match delivery {
            Delivery::Chunk(entries) => {
                let bytes = entries.iter().map(Bytes::len).sum();
                let verified = tokio::task::spawn_blocking(move || {
                    entries
                        .into_iter()
                        .map(messaging_proto::VerifiedEntry::verify)
                        .collect()
                })
                .await;
                match verified {
                    Ok(entries) => Internal::Fetched {
                        peer,
                        bytes,
                        entries,
                    },
                    // Shutting down (or a verifier panicked): the outcome
                    // must still reach the actor, which frees the sync slot.
                    Err(_) => continue,
                }
            }
            Delivery::Done(done) => *done,
        };
        if internal.send(message).await.is_err() {
            return;
        }
    }
}
