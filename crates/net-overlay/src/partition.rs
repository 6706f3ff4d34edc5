//! A memory transport whose network can be split into groups and healed:
//! for partition tests and the simulator.
//!
//! Every node is given a group number. While the network is split, a dial
//! to a node of another group fails, and every open connection between
//! groups fails at its next read or write (pending reads are woken, so the
//! failure is immediate). Healing lets dials through again; the overlay's
//! redial schedule and the node's syncs do the rest. A connection is judged
//! on the dialing side, which knows the listener's address (and so its
//! group); the listening side sees the connection close.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use futures::future::BoxFuture;
use futures::{AsyncRead, AsyncWrite, FutureExt};
use libp2p::core::transport::memory::{Channel, MemoryTransportError};
use libp2p::core::transport::{
    DialOpts, ListenerId, MemoryTransport, TransportError, TransportEvent,
};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, Transport};

use crate::config::{TransportConfig, TransportFactory};

/// Most wakers kept for pending reads (older ones are woken and dropped).
const MAX_WAKERS: usize = 4096;

#[derive(Default)]
struct Shared {
    split: AtomicBool,
    groups: parking_lot::Mutex<HashMap<u64, u32>>,
    wakers: parking_lot::Mutex<Vec<Waker>>,
}

/// A network of memory-transport nodes that can be split into groups.
#[derive(Clone, Default)]
pub struct PartitionNet {
    shared: Arc<Shared>,
}

impl PartitionNet {
    /// A new, healed network.
    pub fn new() -> Self {
        Self::default()
    }

    /// The transport configuration of a node in `group`.
    pub fn transport(&self, group: u32) -> TransportConfig {
        let net = self.clone();
        let factory: TransportFactory = Arc::new(move |keypair| {
            let raw = GroupTransport {
                inner: MemoryTransport::default(),
                net: net.clone(),
                group,
            };
            crate::transport::upgrade(raw, keypair).map_err(|err| io::Error::other(err.to_string()))
        });
        TransportConfig::Custom(factory)
    }

    /// Splits the network: groups can no longer reach each other.
    pub fn split(&self) {
        self.shared.split.store(true, Ordering::SeqCst);
        for waker in self.shared.wakers.lock().drain(..) {
            waker.wake();
        }
    }

    /// Heals the network.
    pub fn heal(&self) {
        self.shared.split.store(false, Ordering::SeqCst);
    }

    fn blocked(&self, from: u32, to: Option<u32>) -> bool {
        self.shared.split.load(Ordering::SeqCst) && to.is_some_and(|to| to != from)
    }

    fn group_of(&self, addr: &Multiaddr) -> Option<u32> {
        let port = memory_port(addr)?;
        self.shared.groups.lock().get(&port).copied()
    }

    fn remember_waker(&self, waker: &Waker) {
        let mut wakers = self.shared.wakers.lock();
        if wakers.len() >= MAX_WAKERS {
            for old in wakers.drain(..MAX_WAKERS / 2) {
                old.wake();
            }
        }
        wakers.push(waker.clone());
    }
}

fn memory_port(addr: &Multiaddr) -> Option<u64> {
    addr.iter().find_map(|protocol| match protocol {
        Protocol::Memory(port) => Some(port),
        _ => None,
    })
}

/// The memory transport of one node, aware of its group.
struct GroupTransport {
    inner: MemoryTransport,
    net: PartitionNet,
    group: u32,
}

impl Transport for GroupTransport {
    type Output = GatedStream;
    type Error = MemoryTransportError;
    type ListenerUpgrade = BoxFuture<'static, Result<GatedStream, MemoryTransportError>>;
    type Dial = BoxFuture<'static, Result<GatedStream, MemoryTransportError>>;

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
        let remote = self.net.group_of(&addr);
        if self.net.blocked(self.group, remote) {
            return Err(TransportError::Other(MemoryTransportError::Unreachable));
        }
        let dial = self.inner.dial(addr, opts)?;
        let net = self.net.clone();
        let group = self.group;
        Ok(async move {
            let stream = dial.await?;
            Ok(GatedStream {
                inner: stream,
                net,
                group,
                remote,
            })
        }
        .boxed())
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        let group = self.group;
        let net = self.net.clone();
        match Pin::new(&mut self.inner).poll(cx) {
            Poll::Ready(event) => {
                if let TransportEvent::NewAddress { listen_addr, .. } = &event
                    && let Some(port) = memory_port(listen_addr)
                {
                    net.shared.groups.lock().insert(port, group);
                }
                Poll::Ready(event.map_upgrade(move |upgrade| {
                    let net = net.clone();
                    async move {
                        let stream = upgrade.await?;
                        Ok(GatedStream {
                            inner: stream,
                            net,
                            group,
                            remote: None,
                        })
                    }
                    .boxed()
                }))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A connection that fails once the network is split between its ends.
pub struct GatedStream {
    inner: Channel<Vec<u8>>,
    net: PartitionNet,
    group: u32,
    /// The listener's group (known on the dialing side only).
    remote: Option<u32>,
}

impl GatedStream {
    fn check(&self) -> io::Result<()> {
        if self.net.blocked(self.group, self.remote) {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "network partitioned",
            ));
        }
        Ok(())
    }
}

impl AsyncRead for GatedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if result.is_pending() && self.remote.is_some() {
            self.net.remember_waker(cx.waker());
        }
        result
    }
}

impl AsyncWrite for GatedStream {
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
