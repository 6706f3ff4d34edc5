//! The public face of the overlay: [`OverlayHandle`] (a cheap `Clone`) sends
//! bounded commands with reply channels to the event loop, and the loop
//! emits [`OverlayEvent`]s on a bounded channel; a consumer that falls
//! behind gets [`OverlayEvent::Lagged`] with the number it missed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use libp2p::gossipsub::MessageId;
use libp2p::{Multiaddr, PeerId};
use messaging_proto::{
    DirectoryRequest, DirectoryResponse, ServerId, SignedAdvert, SyncRequest, SyncResponse,
};
use tokio::sync::{mpsc, oneshot};

use crate::address_book::AddressBookSnapshot;
use crate::error::OverlayError;
use crate::status::{NatStatus, NetworkStatus};

/// Identifies an inbound sync request until it is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InboundToken(pub(crate) u64);

/// The node's verdict on a gossip message, reported back to gossipsub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GossipVerdict {
    /// Valid: deliver and forward it.
    Accept,
    /// Invalid (bad signature, forged, not a member…): drop it and penalise
    /// the peer that sent it.
    Reject,
    /// Not forwarded, without penalty (duplicate, cannot judge yet).
    Ignore,
}

/// What happened to a publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishOutcome {
    /// Sent to at least one peer.
    Sent,
    /// No peer is subscribed yet: not an error — the entry is in the ledger
    /// and sync or the outbox delivers it later.
    NoPeers,
    /// The same bytes were published before.
    Duplicate,
}

/// A verified advert found in the DHT, with the lookup's cost.
#[derive(Clone, Debug)]
pub struct AdvertLookup {
    /// The advert with the highest `seq` among valid ones found.
    pub advert: SignedAdvert,
    /// Requests the lookup sent.
    pub requests: u32,
    /// Invalid records that were found and discarded.
    pub rejected: u32,
    /// How long the lookup took.
    pub duration: Duration,
}

/// Something the overlay tells the node.
#[derive(Clone, Debug)]
pub enum OverlayEvent {
    /// Listening on a new address.
    Listening {
        /// The address.
        addr: Multiaddr,
    },
    /// The first connection to a peer was established.
    PeerConnected {
        /// The peer.
        peer: PeerId,
        /// The remote address of that connection.
        addr: Multiaddr,
    },
    /// The last connection to a peer closed.
    PeerDisconnected {
        /// The peer.
        peer: PeerId,
    },
    /// A peer subscribed to a server's topic (it shares the server: a good
    /// moment to sync).
    PeerSubscribed {
        /// The peer.
        peer: PeerId,
        /// The server.
        server: ServerId,
    },
    /// A peer left a server's topic.
    PeerUnsubscribed {
        /// The peer.
        peer: PeerId,
        /// The server.
        server: ServerId,
    },
    /// A gossip message waits for validation: answer with
    /// [`OverlayHandle::report_gossip`].
    Gossip {
        /// The server whose topic it came on.
        server: ServerId,
        /// The peer that forwarded it to us.
        source: PeerId,
        /// Its id (BLAKE3 of `data`).
        id: MessageId,
        /// The encoded `GossipMessage`.
        data: Bytes,
    },
    /// A peer asks something of our ledger: answer with
    /// [`OverlayHandle::respond_sync`].
    SyncRequest {
        /// The peer.
        peer: PeerId,
        /// The decoded, checked request.
        request: SyncRequest,
        /// The token to answer with.
        token: InboundToken,
    },
    /// AutoNAT changed its verdict.
    NatChanged(NatStatus),
    /// The consumer fell behind and this many events were dropped.
    Lagged {
        /// How many.
        missed: u64,
    },
}

/// Sends events without ever blocking the event loop: when the channel is
/// full the event is counted as missed and the consumer is told with
/// [`OverlayEvent::Lagged`] as soon as there is room.
#[derive(Clone, Debug)]
pub(crate) struct EventSender {
    inner: mpsc::Sender<OverlayEvent>,
    missed: Arc<AtomicU64>,
}

impl EventSender {
    pub(crate) fn new(inner: mpsc::Sender<OverlayEvent>) -> Self {
        Self {
            inner,
            missed: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Sends `event`; returns false (and counts it) when the channel is full.
    pub(crate) fn send(&self, event: OverlayEvent) -> bool {
        let missed = self.missed.load(Ordering::Relaxed);
        if missed > 0 {
            if self
                .inner
                .try_send(OverlayEvent::Lagged { missed })
                .is_err()
            {
                self.missed.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            self.missed.fetch_sub(missed, Ordering::Relaxed);
        }
        if self.inner.try_send(event).is_err() {
            self.missed.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, OverlayError>>;

/// Commands the handle sends to the event loop.
#[derive(Debug)]
pub(crate) enum Command {
    Listen(Multiaddr, Reply<()>),
    AddExternalAddress(Multiaddr, Reply<()>),
    Dial(Multiaddr, Reply<PeerId>),
    AddPeer {
        server: Option<ServerId>,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        keep_connected: bool,
        reply: Reply<()>,
    },
    DialServerPeers(ServerId, Reply<usize>),
    Subscribe(ServerId, Reply<()>),
    Unsubscribe(ServerId, Reply<()>),
    Publish(ServerId, Bytes, Reply<PublishOutcome>),
    ReportGossip(MessageId, PeerId, GossipVerdict),
    Sync(PeerId, SyncRequest, Reply<SyncResponse>),
    RespondSync(InboundToken, SyncResponse, Reply<()>),
    Directory(PeerId, DirectoryRequest, Reply<DirectoryResponse>),
    SetDirectory(Vec<SignedAdvert>, Reply<()>),
    PutAdvert(Box<SignedAdvert>, Reply<()>),
    GetAdvert(ServerId, Reply<AdvertLookup>),
    FindDirectoryProviders(Reply<Vec<PeerId>>),
    Status(Reply<NetworkStatus>),
    PeerScore(PeerId, Reply<Option<f64>>),
    AddressBook(Reply<AddressBookSnapshot>),
    #[cfg(feature = "test-utils")]
    PutRawRecord(libp2p::kad::Record, Reply<()>),
    #[cfg(feature = "test-utils")]
    LocalRecord(libp2p::kad::RecordKey, Reply<Option<Vec<u8>>>),
    #[cfg(feature = "test-utils")]
    SyncRaw(PeerId, Bytes, Reply<SyncResponse>),
    Shutdown(Reply<()>),
}

/// A cheap, cloneable handle to the overlay's event loop.
#[derive(Clone, Debug)]
pub struct OverlayHandle {
    commands: mpsc::Sender<Command>,
    peer_id: PeerId,
}

impl OverlayHandle {
    pub(crate) fn new(commands: mpsc::Sender<Command>, peer_id: PeerId) -> Self {
        Self { commands, peer_id }
    }

    /// Our peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, OverlayError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| OverlayError::Stopped)?;
        answer.await.map_err(|_| OverlayError::Stopped)?
    }

    /// Starts listening on `addr`.
    pub async fn listen(&self, addr: Multiaddr) -> Result<(), OverlayError> {
        self.call(|reply| Command::Listen(addr, reply)).await
    }

    /// Declares an address others can reach us at (e.g. a bootstrap node's
    /// public address, or its listen address when it is directly reachable).
    pub async fn add_external_address(&self, addr: Multiaddr) -> Result<(), OverlayError> {
        self.call(|reply| Command::AddExternalAddress(addr, reply))
            .await
    }

    /// Dials `addr` and waits for the connection; returns the peer's id. If
    /// the peer is being dialled already (a redial, another `dial`), waits
    /// for that dial instead of opening a second connection.
    pub async fn dial(&self, addr: Multiaddr) -> Result<PeerId, OverlayError> {
        self.call(|reply| Command::Dial(addr, reply)).await
    }

    /// Remembers a peer's addresses (for `server`, if any), adds them to the
    /// DHT routing table, and with `keep_connected` keeps it connected
    /// (redialling with backoff).
    pub async fn add_peer(
        &self,
        server: Option<ServerId>,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        keep_connected: bool,
    ) -> Result<(), OverlayError> {
        self.call(|reply| Command::AddPeer {
            server,
            peer,
            addrs,
            keep_connected,
            reply,
        })
        .await
    }

    /// Dials every remembered peer of `server` not connected yet; returns
    /// how many dials started.
    pub async fn dial_server_peers(&self, server: ServerId) -> Result<usize, OverlayError> {
        self.call(|reply| Command::DialServerPeers(server, reply))
            .await
    }

    /// Joins a server's gossip topic.
    pub async fn subscribe(&self, server: ServerId) -> Result<(), OverlayError> {
        self.call(|reply| Command::Subscribe(server, reply)).await
    }

    /// Leaves a server's gossip topic.
    pub async fn unsubscribe(&self, server: ServerId) -> Result<(), OverlayError> {
        self.call(|reply| Command::Unsubscribe(server, reply)).await
    }

    /// Publishes an encoded `GossipMessage` on a server's topic. Having no
    /// peers yet is [`PublishOutcome::NoPeers`], not an error.
    pub async fn publish(
        &self,
        server: ServerId,
        data: Bytes,
    ) -> Result<PublishOutcome, OverlayError> {
        self.call(|reply| Command::Publish(server, data, reply))
            .await
    }

    /// Reports the node's verdict on a gossip message.
    pub async fn report_gossip(
        &self,
        id: MessageId,
        source: PeerId,
        verdict: GossipVerdict,
    ) -> Result<(), OverlayError> {
        self.commands
            .send(Command::ReportGossip(id, source, verdict))
            .await
            .map_err(|_| OverlayError::Stopped)
    }

    /// Sends a sync request to `peer` and waits for its response.
    pub async fn sync(
        &self,
        peer: PeerId,
        request: SyncRequest,
    ) -> Result<SyncResponse, OverlayError> {
        self.call(|reply| Command::Sync(peer, request, reply)).await
    }

    /// Answers an inbound sync request.
    pub async fn respond_sync(
        &self,
        token: InboundToken,
        response: SyncResponse,
    ) -> Result<(), OverlayError> {
        self.call(|reply| Command::RespondSync(token, response, reply))
            .await
    }

    /// Asks `peer` for a page of its directory.
    pub async fn directory(
        &self,
        peer: PeerId,
        request: DirectoryRequest,
    ) -> Result<DirectoryResponse, OverlayError> {
        self.call(|reply| Command::Directory(peer, request, reply))
            .await
    }

    /// Sets the adverts this node serves in the public directory; while the
    /// list is not empty the node provides the directory key in the DHT.
    pub async fn set_directory(&self, adverts: Vec<SignedAdvert>) -> Result<(), OverlayError> {
        self.call(|reply| Command::SetDirectory(adverts, reply))
            .await
    }

    /// Stores an advert in the DHT (locally and at the closest peers).
    pub async fn put_advert(&self, advert: SignedAdvert) -> Result<(), OverlayError> {
        self.call(|reply| Command::PutAdvert(Box::new(advert), reply))
            .await
    }

    /// Looks up a server's advert in the DHT; only verified adverts count.
    pub async fn get_advert(&self, server: ServerId) -> Result<AdvertLookup, OverlayError> {
        self.call(|reply| Command::GetAdvert(server, reply)).await
    }

    /// Finds the peers that provide the public directory.
    pub async fn find_directory_providers(&self) -> Result<Vec<PeerId>, OverlayError> {
        self.call(Command::FindDirectoryProviders).await
    }

    /// Lists the public servers: finds directory providers, asks each for
    /// its adverts (all pages), verifies each advert, and keeps the newest
    /// version of each server. Providers that fail are skipped.
    pub async fn discover_public_servers(
        &self,
        now_ms: u64,
    ) -> Result<Vec<SignedAdvert>, OverlayError> {
        const MAX_PAGES_PER_PROVIDER: usize = 16;
        let mut found: std::collections::BTreeMap<ServerId, SignedAdvert> = Default::default();
        for provider in self.find_directory_providers().await? {
            let mut after_server = None;
            for _ in 0..MAX_PAGES_PER_PROVIDER {
                let request = DirectoryRequest {
                    limit: messaging_proto::limits::MAX_DIRECTORY_ADVERTS as u32,
                    after_server,
                };
                let Ok(page) = self.directory(provider, request).await else {
                    break;
                };
                for bytes in &page.adverts {
                    match SignedAdvert::from_bytes(bytes, now_ms) {
                        Ok(advert) => {
                            let server = advert.advert().server_id;
                            after_server = Some(server);
                            let newer = found
                                .get(&server)
                                .is_none_or(|known| known.advert().seq < advert.advert().seq);
                            if newer {
                                found.insert(server, advert);
                            }
                        }
                        Err(err) => {
                            tracing::debug!(%provider, %err, "directory returned an invalid advert")
                        }
                    }
                }
                if !page.more || page.adverts.is_empty() {
                    break;
                }
            }
        }
        Ok(found.into_values().collect())
    }

    /// The current network status.
    pub async fn status(&self) -> Result<NetworkStatus, OverlayError> {
        self.call(Command::Status).await
    }

    /// Gossipsub's score of a peer (None if unknown).
    pub async fn peer_score(&self, peer: PeerId) -> Result<Option<f64>, OverlayError> {
        self.call(|reply| Command::PeerScore(peer, reply)).await
    }

    /// The address book, for persistence.
    pub async fn address_book(&self) -> Result<AddressBookSnapshot, OverlayError> {
        self.call(Command::AddressBook).await
    }

    /// Test only: offers a record to the DHT without any local validation,
    /// as a malicious peer would.
    #[cfg(feature = "test-utils")]
    pub async fn put_raw_record(&self, record: libp2p::kad::Record) -> Result<(), OverlayError> {
        self.call(|reply| Command::PutRawRecord(record, reply))
            .await
    }

    /// Test only: the record this node stores under `key`, if any.
    #[cfg(feature = "test-utils")]
    pub async fn local_record(
        &self,
        key: libp2p::kad::RecordKey,
    ) -> Result<Option<Vec<u8>>, OverlayError> {
        self.call(|reply| Command::LocalRecord(key, reply)).await
    }

    /// Test only: sends arbitrary bytes as a sync request, as a broken or
    /// malicious peer would.
    #[cfg(feature = "test-utils")]
    pub async fn sync_raw(&self, peer: PeerId, bytes: Bytes) -> Result<SyncResponse, OverlayError> {
        self.call(|reply| Command::SyncRaw(peer, bytes, reply))
            .await
    }

    /// Stops the event loop and closes every connection.
    pub async fn shutdown(&self) -> Result<(), OverlayError> {
        self.call(Command::Shutdown).await
    }
}

/// A token bucket: a peer's inbound sync requests, its restart resets.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(burst: f64, now: Instant) -> Self {
        Self {
            tokens: burst,
            last: now,
        }
    }

    /// True when the bucket has refilled to `burst` by `now`.
    pub(crate) fn is_full(&self, rate: f64, burst: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * rate >= burst
    }

    /// Takes a token; on refusal returns how long until one is available.
    pub(crate) fn take(&mut self, rate: f64, burst: f64, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / rate.max(f64::MIN_POSITIVE),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket_refills_at_its_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0, start);
        assert!(bucket.take(10.0, 2.0, start).is_ok());
        assert!(bucket.take(10.0, 2.0, start).is_ok());
        let wait = bucket.take(10.0, 2.0, start).unwrap_err();
        assert!(wait <= Duration::from_millis(100));
        assert!(
            bucket
                .take(10.0, 2.0, start + Duration::from_millis(150))
                .is_ok()
        );
    }

    #[tokio::test]
    async fn lagging_consumer_is_told_how_much_it_missed() {
        let (tx, mut rx) = mpsc::channel(2);
        let sender = EventSender::new(tx);
        let event = || OverlayEvent::PeerDisconnected {
            peer: PeerId::random(),
        };
        assert!(sender.send(event()));
        assert!(sender.send(event()));
        assert!(!sender.send(event()));
        assert!(!sender.send(event()));
        rx.recv().await.unwrap();
        rx.recv().await.unwrap();
        // Room again: the next send first reports the two it missed.
        assert!(sender.send(event()));
        assert!(matches!(
            rx.recv().await,
            Some(OverlayEvent::Lagged { missed: 2 })
        ));
        assert!(matches!(
            rx.recv().await,
            Some(OverlayEvent::PeerDisconnected { .. })
        ));
    }
}
