//! The peer address book and the redial schedule.
//!
//! The address book remembers, per server, every peer seen serving or
//! subscribing to it and where it was reached (bounded: peers per server,
//! addresses per peer, servers; the least recently seen go first). The node
//! persists its snapshot and hands it back at the next start, so that a peer
//! whose configured bootstrap nodes are all down can still find the network
//! through the peers it met before.
//!
//! The redial schedule keeps "wanted" peers (bootstrap nodes, a server's
//! bootstrap list) connected: after a failure it waits 1 s, then doubles up
//! to 5 minutes, each delay with ±20 % jitter so that many peers do not
//! redial a restarted node at the same instant.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};
use messaging_proto::ServerId;
use rand::RngExt;

/// Most servers remembered.
pub(crate) const MAX_SERVERS: usize = 1024;
/// Most peers remembered per server (and for the server-less bootstrap set).
pub(crate) const MAX_PEERS_PER_SERVER: usize = 256;
/// Most addresses remembered per peer.
pub(crate) const MAX_ADDRS_PER_PEER: usize = 8;
/// Most wanted peers kept connected by the redial schedule.
pub(crate) const MAX_WANTED_PEERS: usize = 128;

const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(300);

/// One remembered peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownPeer {
    /// The server it was seen serving or subscribing to; `None` for
    /// bootstrap peers not tied to one server.
    pub server: Option<ServerId>,
    /// The peer.
    pub peer: PeerId,
    /// Where it was reached, most recent first.
    pub addrs: Vec<Multiaddr>,
    /// When it was last seen, ms since the Unix epoch.
    pub last_seen_ms: u64,
}

/// Everything the address book holds, for persistence by the node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressBookSnapshot {
    /// The remembered peers.
    pub peers: Vec<KnownPeer>,
}

#[derive(Debug, Default)]
struct PeerSet {
    peers: HashMap<PeerId, (Vec<Multiaddr>, u64)>,
}

impl PeerSet {
    fn remember(&mut self, peer: PeerId, addrs: &[Multiaddr], now_ms: u64) {
        let entry = self
            .peers
            .entry(peer)
            .or_insert_with(|| (Vec::new(), now_ms));
        entry.1 = entry.1.max(now_ms);
        for addr in addrs.iter().rev() {
            entry.0.retain(|known| known != addr);
            entry.0.insert(0, addr.clone());
        }
        entry.0.truncate(MAX_ADDRS_PER_PEER);
        if self.peers.len() > MAX_PEERS_PER_SERVER
            && let Some(oldest) = self
                .peers
                .iter()
                .min_by_key(|(_, (_, seen))| *seen)
                .map(|(peer, _)| *peer)
        {
            self.peers.remove(&oldest);
        }
    }

    fn newest(&self) -> u64 {
        self.peers
            .values()
            .map(|(_, seen)| *seen)
            .max()
            .unwrap_or(0)
    }
}

/// Per-server memory of peers and their addresses.
#[derive(Debug, Default)]
pub(crate) struct AddressBook {
    servers: HashMap<ServerId, PeerSet>,
    general: PeerSet,
}

impl AddressBook {
    /// Rebuilds an address book from a snapshot (limits applied).
    pub(crate) fn from_snapshot(snapshot: &AddressBookSnapshot) -> Self {
        let mut book = Self::default();
        for known in &snapshot.peers {
            book.remember(known.server, known.peer, &known.addrs, known.last_seen_ms);
        }
        book
    }

    /// Remembers that `peer` was reachable at `addrs` (for `server`, if any).
    pub(crate) fn remember(
        &mut self,
        server: Option<ServerId>,
        peer: PeerId,
        addrs: &[Multiaddr],
        now_ms: u64,
    ) {
        let addrs: Vec<Multiaddr> = addrs.iter().filter(|a| is_dialable(a)).cloned().collect();
        match server {
            None => self.general.remember(peer, &addrs, now_ms),
            Some(server) => {
                self.servers
                    .entry(server)
                    .or_default()
                    .remember(peer, &addrs, now_ms);
                if self.servers.len() > MAX_SERVERS
                    && let Some(oldest) = self
                        .servers
                        .iter()
                        .min_by_key(|(_, set)| set.newest())
                        .map(|(server, _)| *server)
                {
                    self.servers.remove(&oldest);
                }
            }
        }
    }

    /// Peers seen for `server`, most recently seen first.
    pub(crate) fn peers_for(&self, server: &ServerId) -> Vec<(PeerId, Vec<Multiaddr>)> {
        self.servers.get(server).map(sorted).unwrap_or_default()
    }

    /// Every remembered peer with an address, most recently seen first, each
    /// once.
    pub(crate) fn all_peers(&self) -> Vec<(PeerId, Vec<Multiaddr>)> {
        let mut merged: HashMap<PeerId, (Vec<Multiaddr>, u64)> = HashMap::new();
        for set in self.servers.values().chain(std::iter::once(&self.general)) {
            for (peer, (addrs, seen)) in &set.peers {
                let entry = merged.entry(*peer).or_insert_with(|| (Vec::new(), 0));
                entry.1 = entry.1.max(*seen);
                for addr in addrs {
                    if !entry.0.contains(addr) && entry.0.len() < MAX_ADDRS_PER_PEER {
                        entry.0.push(addr.clone());
                    }
                }
            }
        }
        sorted(&PeerSet { peers: merged })
    }

    /// Everything remembered, for persistence.
    pub(crate) fn snapshot(&self) -> AddressBookSnapshot {
        let mut peers = Vec::new();
        let sets = self
            .servers
            .iter()
            .map(|(server, set)| (Some(*server), set))
            .chain(std::iter::once((None, &self.general)));
        for (server, set) in sets {
            for (peer, (addrs, seen)) in &set.peers {
                peers.push(KnownPeer {
                    server,
                    peer: *peer,
                    addrs: addrs.clone(),
                    last_seen_ms: *seen,
                });
            }
        }
        peers.sort_by(|a, b| {
            b.last_seen_ms
                .cmp(&a.last_seen_ms)
                .then(a.peer.cmp(&b.peer))
        });
        AddressBookSnapshot { peers }
    }
}

fn sorted(set: &PeerSet) -> Vec<(PeerId, Vec<Multiaddr>)> {
    let mut peers: Vec<_> = set
        .peers
        .iter()
        .filter(|(_, (addrs, _))| !addrs.is_empty())
        .map(|(peer, (addrs, seen))| (*peer, addrs.clone(), *seen))
        .collect();
    peers.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    peers
        .into_iter()
        .map(|(peer, addrs, _)| (peer, addrs))
        .collect()
}

/// Addresses worth remembering: not unspecified (0.0.0.0) listen addresses.
fn is_dialable(addr: &Multiaddr) -> bool {
    use libp2p::multiaddr::Protocol;
    !addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}

#[derive(Debug)]
struct Wanted {
    addrs: Vec<Multiaddr>,
    failures: u32,
    next_attempt: Instant,
    connected: bool,
}

/// Keeps wanted peers connected, redialling with exponential backoff and
/// jitter.
#[derive(Debug, Default)]
pub(crate) struct RedialSchedule {
    wanted: HashMap<PeerId, Wanted>,
}

impl RedialSchedule {
    /// Adds (or updates the addresses of) a peer to keep connected. Returns
    /// false when the schedule is full.
    pub(crate) fn want(&mut self, peer: PeerId, addrs: Vec<Multiaddr>, now: Instant) -> bool {
        if let Some(wanted) = self.wanted.get_mut(&peer) {
            for addr in addrs {
                if !wanted.addrs.contains(&addr) && wanted.addrs.len() < MAX_ADDRS_PER_PEER {
                    wanted.addrs.push(addr);
                }
            }
            return true;
        }
        if self.wanted.len() >= MAX_WANTED_PEERS {
            return false;
        }
        self.wanted.insert(
            peer,
            Wanted {
                addrs,
                failures: 0,
                next_attempt: now,
                connected: false,
            },
        );
        true
    }

    /// True when the peer is in the schedule.
    pub(crate) fn is_wanted(&self, peer: &PeerId) -> bool {
        self.wanted.contains_key(peer)
    }

    /// Records a connection: the backoff resets.
    pub(crate) fn connected(&mut self, peer: &PeerId) {
        if let Some(wanted) = self.wanted.get_mut(peer) {
            wanted.connected = true;
            wanted.failures = 0;
        }
    }

    /// Records that the last connection closed: redial after the first delay.
    pub(crate) fn disconnected(&mut self, peer: &PeerId, now: Instant) {
        if let Some(wanted) = self.wanted.get_mut(peer) {
            wanted.connected = false;
            wanted.next_attempt = now + jitter(FIRST_RETRY);
        }
    }

    /// Records a failed dial: wait twice as long as last time (capped).
    pub(crate) fn failed(&mut self, peer: &PeerId, now: Instant) {
        if let Some(wanted) = self.wanted.get_mut(peer) {
            wanted.failures = wanted.failures.saturating_add(1);
            wanted.next_attempt = now + jitter(backoff(wanted.failures));
        }
    }

    /// Peers due for a dial now, with their addresses; each is then not due
    /// again until its backoff passes (a failure or success updates it).
    pub(crate) fn due(&mut self, now: Instant) -> Vec<(PeerId, Vec<Multiaddr>)> {
        let mut due = Vec::new();
        for (peer, wanted) in &mut self.wanted {
            if !wanted.connected && wanted.next_attempt <= now {
                wanted.next_attempt = now + jitter(backoff(wanted.failures + 1));
                due.push((*peer, wanted.addrs.clone()));
            }
        }
        due
    }

    /// True when every wanted peer has failed at least once and none is
    /// connected: time to fall back to the address book.
    pub(crate) fn all_failing(&self) -> bool {
        !self.wanted.is_empty() && self.wanted.values().all(|w| !w.connected && w.failures > 0)
    }
}

/// The delay after `failures` consecutive failures: 1 s, 2 s, 4 s … 300 s.
pub(crate) fn backoff(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    FIRST_RETRY.saturating_mul(1 << exponent).min(MAX_RETRY)
}

fn jitter(delay: Duration) -> Duration {
    let factor = rand::rng().random_range(0.8..1.2);
    delay.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/10.0.0.1/tcp/{port}").parse().unwrap()
    }

    #[test]
    fn remembers_recent_addresses_first_and_bounds_them() {
        let mut book = AddressBook::default();
        let server = ServerId::from_bytes([1; 32]);
        let peer = PeerId::random();
        for port in 0..20 {
            book.remember(Some(server), peer, &[addr(port)], u64::from(port));
        }
        let peers = book.peers_for(&server);
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0].1.len(), MAX_ADDRS_PER_PEER);
        assert_eq!(peers[0].1[0], addr(19));
        // Unspecified listen addresses are not worth remembering.
        let other = PeerId::random();
        book.remember(
            Some(server),
            other,
            &["/ip4/0.0.0.0/tcp/1".parse().unwrap()],
            50,
        );
        assert_eq!(book.peers_for(&server).len(), 1);
    }

    #[test]
    fn evicts_the_least_recently_seen_peer() {
        let mut book = AddressBook::default();
        let server = ServerId::from_bytes([1; 32]);
        let first = PeerId::random();
        book.remember(Some(server), first, &[addr(1)], 0);
        for i in 0..MAX_PEERS_PER_SERVER {
            book.remember(Some(server), PeerId::random(), &[addr(2)], 10 + i as u64);
        }
        let peers = book.peers_for(&server);
        assert_eq!(peers.len(), MAX_PEERS_PER_SERVER);
        assert!(peers.iter().all(|(peer, _)| *peer != first));
    }

    #[test]
    fn snapshot_round_trip() {
        let mut book = AddressBook::default();
        let server = ServerId::from_bytes([1; 32]);
        book.remember(Some(server), PeerId::random(), &[addr(1)], 5);
        book.remember(None, PeerId::random(), &[addr(2)], 6);
        let snapshot = book.snapshot();
        assert_eq!(snapshot.peers.len(), 2);
        assert_eq!(AddressBook::from_snapshot(&snapshot).snapshot(), snapshot);
        assert_eq!(book.all_peers().len(), 2);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(5), Duration::from_secs(16));
        assert_eq!(backoff(40), Duration::from_secs(300));
    }

    #[test]
    fn schedule_redials_after_backoff() {
        let now = Instant::now();
        let mut schedule = RedialSchedule::default();
        let peer = PeerId::random();
        assert!(schedule.want(peer, vec![addr(1)], now));
        assert_eq!(schedule.due(now).len(), 1);
        assert!(schedule.due(now).is_empty(), "not due twice");
        schedule.failed(&peer, now);
        assert!(schedule.all_failing());
        assert!(schedule.due(now + Duration::from_millis(500)).is_empty());
        assert_eq!(schedule.due(now + Duration::from_secs(3)).len(), 1);
        schedule.connected(&peer);
        assert!(!schedule.all_failing());
        assert!(schedule.due(now + Duration::from_secs(1000)).is_empty());
        schedule.disconnected(&peer, now);
        assert_eq!(schedule.due(now + Duration::from_secs(2)).len(), 1);
    }
}
