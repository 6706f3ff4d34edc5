//! The simulated network: libp2p's memory transport behind a seeded link
//! model.
//!
//! Every byte a node receives is held back by the link's one-way delay
//! before the reader sees it: a per-link base latency (drawn once per
//! connection from `latency_ms ± jitter_ms`) plus a small per-chunk jitter,
//! serialized through the link's bandwidth, in order (a later chunk never
//! overtakes an earlier one, like a TCP or QUIC stream). Streams are
//! reliable, so *loss* is modelled as what a reliable transport makes of
//! it: a lost chunk arrives one retransmission timeout later (3 × the
//! link's delay, at least 30 ms), and everything behind it waits
//! (head-of-line blocking). Partitions split nodes into groups: dials
//! across groups fail and open connections across groups fail at their
//! next read or write.
//!
//! The delays run on tokio's clock of the runtime that polls the stream.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{AsyncRead, AsyncWrite, FutureExt};
use libp2p::core::transport::memory::{Channel, MemoryTransportError};
use libp2p::core::transport::{
    DialOpts, ListenerId, MemoryTransport, TransportError, TransportEvent,
};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, Transport};
use net_overlay::{TransportConfig, TransportFactory};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::time::{Instant, Sleep};

/// Largest chunk read from the memory channel at once.
const READ_CHUNK: usize = 64 * 1024;

/// The properties of every link.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkParams {
    /// Mean one-way delay of a link.
    pub latency_ms: f64,
    /// Links' base delays spread uniformly over `latency_ms ± jitter_ms`;
    /// each chunk adds up to a tenth of that again.
    #[serde(default)]
    pub jitter_ms: f64,
    /// Probability that a chunk is lost (and retransmitted).
    #[serde(default)]
    pub loss: f64,
    /// Bandwidth of a link in each direction, kilobits per second
    /// (0: unlimited).
    #[serde(default)]
    pub bandwidth_kbps: u64,
}

impl LinkParams {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.latency_ms >= 0.0 && self.latency_ms < 60_000.0) {
            return Err("link.latency_ms must be between 0 and 60000".into());
        }
        if !(self.jitter_ms >= 0.0 && self.jitter_ms <= self.latency_ms) {
            return Err("link.jitter_ms must be between 0 and latency_ms".into());
        }
        if !(0.0..0.5).contains(&self.loss) {
            return Err("link.loss must be at least 0 and below 0.5".into());
        }
        Ok(())
    }
}

struct Shared {
    params: LinkParams,
    seed: u64,
    connections: AtomicU64,
    /// Bytes delivered over all links.
    bytes: AtomicU64,
    /// Memory port → partition group.
    groups: Mutex<HashMap<u64, u32>>,
    /// Which groups can reach which: `None` when the network is whole.
    split: Mutex<Option<HashMap<u32, u32>>>,
    /// Readers waiting on the dialing side, woken when the network splits
    /// so that cut connections fail at once.
    wakers: Mutex<Vec<std::task::Waker>>,
}

/// Most wakers kept (older ones are woken and dropped).
const MAX_WAKERS: usize = 4096;

/// The simulated network all nodes of a run share.
#[derive(Clone)]
pub struct LinkNet {
    shared: Arc<Shared>,
}

impl LinkNet {
    /// A whole network with `params` on every link, seeded by `seed`.
    pub fn new(params: LinkParams, seed: u64) -> Self {
        Self {
            shared: Arc::new(Shared {
                params,
                seed,
                connections: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                groups: Mutex::new(HashMap::new()),
                split: Mutex::new(None),
                wakers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The transport of node `node` (its partition group is set with
    /// [`LinkNet::split`]).
    pub fn transport(&self, node: u32) -> TransportConfig {
        let net = self.clone();
        let factory: TransportFactory = Arc::new(move |keypair| {
            let raw = LinkTransport {
                inner: MemoryTransport::default(),
                net: net.clone(),
                node,
            };
            net_overlay::upgrade(raw, keypair).map_err(|err| io::Error::other(err.to_string()))
        });
        TransportConfig::Custom(factory)
    }

    /// Splits the network: `side` maps nodes to groups (nodes not listed
    /// are in group 0); nodes of different groups cannot reach each other.
    pub fn split(&self, side: HashMap<u32, u32>) {
        *self.shared.split.lock() = Some(side);
        for waker in self.shared.wakers.lock().drain(..) {
            waker.wake();
        }
    }

    /// Heals the network.
    pub fn heal(&self) {
        *self.shared.split.lock() = None;
    }

    /// Bytes all links have delivered so far.
    pub fn bytes_carried(&self) -> u64 {
        self.shared.bytes.load(Ordering::Relaxed)
    }

    fn remember_waker(&self, waker: &std::task::Waker) {
        let mut wakers = self.shared.wakers.lock();
        if wakers.len() >= MAX_WAKERS {
            for waker in wakers.drain(..) {
                waker.wake();
            }
        }
        if !wakers.iter().any(|known| known.will_wake(waker)) {
            wakers.push(waker.clone());
        }
    }

    fn blocked(&self, a: u32, b: Option<u32>) -> bool {
        let Some(b) = b else {
            return false;
        };
        let split = self.shared.split.lock();
        match split.as_ref() {
            None => false,
            Some(side) => side.get(&a).copied().unwrap_or(0) != side.get(&b).copied().unwrap_or(0),
        }
    }

    fn node_of(&self, addr: &Multiaddr) -> Option<u32> {
        let port = memory_port(addr)?;
        self.shared.groups.lock().get(&port).copied()
    }

    fn link(&self, local: u32, remote: Option<u32>) -> LinkState {
        let n = self.shared.connections.fetch_add(1, Ordering::Relaxed);
        let seed = self
            .shared
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(u64::from(local) << 32)
            .wrapping_add(u64::from(remote.unwrap_or(u32::MAX)))
            .wrapping_add(n << 48);
        let mut rng = StdRng::seed_from_u64(seed);
        let params = &self.shared.params;
        let base_ms = if params.jitter_ms > 0.0 {
            params.latency_ms + rng.random_range(-params.jitter_ms..=params.jitter_ms)
        } else {
            params.latency_ms
        };
        LinkState {
            rng,
            base: Duration::from_secs_f64(base_ms.max(0.0) / 1e3),
            chunk_jitter_ms: params.jitter_ms / 10.0,
            loss: params.loss,
            rto: Duration::from_secs_f64((3.0 * base_ms / 1e3).max(0.030)),
            bytes_per_sec: params.bandwidth_kbps as f64 * 1000.0 / 8.0,
            last_ready: None,
        }
    }
}

fn memory_port(addr: &Multiaddr) -> Option<u64> {
    addr.iter().find_map(|protocol| match protocol {
        Protocol::Memory(port) => Some(port),
        _ => None,
    })
}

/// One direction's delay state.
struct LinkState {
    rng: StdRng,
    base: Duration,
    chunk_jitter_ms: f64,
    loss: f64,
    rto: Duration,
    bytes_per_sec: f64,
    last_ready: Option<Instant>,
}

impl LinkState {
    /// When a chunk of `len` bytes received now may be read.
    fn ready_at(&mut self, now: Instant, len: usize) -> Instant {
        let mut delay = self.base;
        if self.chunk_jitter_ms > 0.0 {
            delay +=
                Duration::from_secs_f64(self.rng.random_range(0.0..self.chunk_jitter_ms) / 1e3);
        }
        if self.loss > 0.0 && self.rng.random_range(0.0..1.0) < self.loss {
            delay += self.rto;
        }
        let mut ready = now + delay;
        if let Some(last) = self.last_ready {
            // In order, and no faster than the bandwidth.
            let serialize = if self.bytes_per_sec > 0.0 {
                Duration::from_secs_f64(len as f64 / self.bytes_per_sec)
            } else {
                Duration::ZERO
            };
            ready = ready.max(last + serialize);
        }
        self.last_ready = Some(ready);
        ready
    }
}

/// The memory transport of one node, behind the link model.
struct LinkTransport {
    inner: MemoryTransport,
    net: LinkNet,
    node: u32,
}

impl Transport for LinkTransport {
    type Output = LinkStream;
    type Error = MemoryTransportError;
    type ListenerUpgrade = BoxFuture<'static, Result<LinkStream, MemoryTransportError>>;
    type Dial = BoxFuture<'static, Result<LinkStream, MemoryTransportError>>;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        self.inner.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.inner.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        let remote = self.net.node_of(&addr);
        if self.net.blocked(self.node, remote) {
            return Err(TransportError::Other(MemoryTransportError::Unreachable));
        }
        let dial = self.inner.dial(addr, opts)?;
        let net = self.net.clone();
        let node = self.node;
        Ok(async move {
            let stream = dial.await?;
            Ok(LinkStream::new(stream, net, node, remote))
        }
        .boxed())
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        let node = self.node;
        let net = self.net.clone();
        match Pin::new(&mut self.inner).poll(cx) {
            Poll::Ready(event) => {
                if let TransportEvent::NewAddress { listen_addr, .. } = &event
                    && let Some(port) = memory_port(listen_addr)
                {
                    net.shared.groups.lock().insert(port, node);
                }
                Poll::Ready(event.map_upgrade(move |upgrade| {
                    let net = net.clone();
                    async move {
                        let stream = upgrade.await?;
                        Ok(LinkStream::new(stream, net, node, None))
                    }
                    .boxed()
                }))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// One end of a connection: what arrives is held back by the link model.
pub struct LinkStream {
    inner: Channel<Vec<u8>>,
    net: LinkNet,
    node: u32,
    /// The listener (known on the dialing side only).
    remote: Option<u32>,
    link: LinkState,
    /// Received chunks and when they may be read.
    arrived: VecDeque<(Instant, Vec<u8>, usize)>,
    inner_done: bool,
    timer: Option<Pin<Box<Sleep>>>,
}

impl LinkStream {
    fn new(inner: Channel<Vec<u8>>, net: LinkNet, node: u32, remote: Option<u32>) -> Self {
        let link = net.link(node, remote);
        Self {
            inner,
            net,
            node,
            remote,
            link,
            arrived: VecDeque::new(),
            inner_done: false,
            timer: None,
        }
    }

    fn check(&self) -> io::Result<()> {
        if self.net.blocked(self.node, self.remote) {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "network partitioned",
            ));
        }
        Ok(())
    }
}

impl AsyncRead for LinkStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        let this = &mut *self;
        // Take in everything that has arrived, stamped with its ready time.
        while !this.inner_done && this.arrived.len() < 1024 {
            let mut chunk = vec![0u8; READ_CHUNK];
            match Pin::new(&mut this.inner).poll_read(cx, &mut chunk) {
                Poll::Ready(Ok(0)) => this.inner_done = true,
                Poll::Ready(Ok(n)) => {
                    chunk.truncate(n);
                    this.net.shared.bytes.fetch_add(n as u64, Ordering::Relaxed);
                    let ready = this.link.ready_at(Instant::now(), n);
                    this.arrived.push_back((ready, chunk, 0));
                }
                Poll::Ready(Err(err)) => {
                    if this.arrived.is_empty() {
                        return Poll::Ready(Err(err));
                    }
                    this.inner_done = true;
                }
                Poll::Pending => {
                    if this.remote.is_some() {
                        this.net.remember_waker(cx.waker());
                    }
                    break;
                }
            }
        }
        let Some((ready, _, _)) = this.arrived.front() else {
            return if this.inner_done {
                Poll::Ready(Ok(0))
            } else {
                Poll::Pending
            };
        };
        let ready = *ready;
        if ready > Instant::now() {
            let timer = this
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(ready)));
            if timer.deadline() != ready {
                timer.as_mut().reset(ready);
            }
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        let mut written = 0;
        while written < buf.len() {
            let Some((ready, chunk, offset)) = this.arrived.front_mut() else {
                break;
            };
            if *ready > Instant::now() {
                break;
            }
            let n = (chunk.len() - *offset).min(buf.len() - written);
            buf[written..written + n].copy_from_slice(&chunk[*offset..*offset + n]);
            *offset += n;
            written += n;
            if *offset == chunk.len() {
                this.arrived.pop_front();
            }
        }
        Poll::Ready(Ok(written))
    }
}

impl AsyncWrite for LinkStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(params: LinkParams) -> LinkState {
        LinkNet::new(params, 7).link(1, Some(2))
    }

    #[test]
    fn chunks_keep_their_order_and_the_delay() {
        let mut link = state(LinkParams {
            latency_ms: 25.0,
            jitter_ms: 5.0,
            loss: 0.0,
            bandwidth_kbps: 0,
        });
        let start = Instant::now();
        let mut last = start;
        for _ in 0..1000 {
            let ready = link.ready_at(start, 100);
            assert!(ready >= last, "a chunk overtook an earlier one");
            assert!(ready - start >= Duration::from_millis(20));
            assert!(ready - start <= Duration::from_millis(31));
            last = ready;
        }
    }

    #[test]
    fn bandwidth_serializes_and_loss_adds_retransmissions() {
        let mut slow = state(LinkParams {
            latency_ms: 10.0,
            jitter_ms: 0.0,
            loss: 0.0,
            bandwidth_kbps: 800, // 100 kB/s
        });
        let start = Instant::now();
        let mut ready = start;
        for _ in 0..10 {
            ready = slow.ready_at(start, 10_000);
        }
        // Ten 10 kB chunks at 100 kB/s: about a second behind the first.
        let spread = ready - (start + Duration::from_millis(10));
        assert!(spread >= Duration::from_millis(850), "{spread:?}");

        let mut lossy = state(LinkParams {
            latency_ms: 10.0,
            jitter_ms: 0.0,
            loss: 0.2,
            bandwidth_kbps: 0,
        });
        let late = (0..2000)
            .filter(|_| {
                let now = Instant::now();
                lossy.last_ready = None;
                lossy.ready_at(now, 10) - now >= Duration::from_millis(30)
            })
            .count();
        assert!((300..500).contains(&late), "{late} of 2000 retransmitted");
    }

    #[test]
    fn the_same_seed_gives_the_same_links() {
        let params = LinkParams {
            latency_ms: 25.0,
            jitter_ms: 10.0,
            loss: 0.0,
            bandwidth_kbps: 0,
        };
        let a = LinkNet::new(params.clone(), 42).link(3, Some(4)).base;
        let b = LinkNet::new(params.clone(), 42).link(3, Some(4)).base;
        let c = LinkNet::new(params, 43).link(3, Some(4)).base;
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
