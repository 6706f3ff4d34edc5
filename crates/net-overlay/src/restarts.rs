//! Peers that come back from a restart before we noticed they left.
//!
//! Gossipsub tells a peer our topic subscriptions once: on the first
//! connection to it. A peer that restarts with the same identity (a crash,
//! a quick app restart, a SIGKILL) and reconnects while we still hold its
//! dead old connection is, to us, a peer we already know: nothing is sent,
//! and its new instance never learns which topics we are in. It then cannot
//! publish to us or choose us as a sync partner, and nothing in gossipsub
//! repairs that while one connection stays up. (libp2p/rust-libp2p#5097.)
//!
//! The repair: when a peer dials us while an older connection of the same
//! kind (direct, or relayed) is still up — one it dialed too, or one we
//! dialed more than [`SIMULTANEOUS_DIAL`] ago — we close every connection
//! to it and refuse new ones until they are gone; its redial (or ours) then
//! is a first connection again, and both sides announce their
//! subscriptions. Not restarts: a relayed connection upgraded to a direct
//! one by hole punching (DCUtR), and two peers that dial each other at the
//! same moment (each sees its own fresh outbound connection beside the
//! other's). Resets are also rate-limited per peer, so no pattern of dials
//! can make them loop.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::swarm::ConnectionId;

use crate::handle::TokenBucket;

/// Resets a peer may cause in a burst.
const RESET_BURST: f64 = 3.0;
/// Resets a peer may cause per second, sustained (one per 20 s).
const RESETS_PER_SECOND: f64 = 1.0 / 20.0;
/// New connections of a reset peer are refused at most this long, in case
/// its old connections take long to close.
pub(crate) const MAX_REFUSAL: Duration = Duration::from_secs(5);
/// Disconnected peers kept for their spent reset allowance stop being
/// kept beyond this many tracked peers.
pub(crate) const MAX_IDLE_TRACKED: usize = 1024;
/// An outbound connection younger than this beside a new inbound one is
/// taken as both peers dialling at once, not as a restart.
pub(crate) const SIMULTANEOUS_DIAL: Duration = Duration::from_secs(1);

/// How a connection reaches the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Path {
    /// A direct connection (QUIC, TCP, memory).
    Direct,
    /// Through a circuit relay.
    Relayed,
}

/// Connections to one peer and its reset allowance.
#[derive(Debug)]
struct PeerConnections {
    open: Vec<Connection>,
    /// Resets this peer may still cause.
    allowance: TokenBucket,
    /// Set while the peer's connections are being closed by a reset.
    refusing_since: Option<Instant>,
}

/// One open connection.
#[derive(Debug)]
struct Connection {
    id: ConnectionId,
    path: Path,
    inbound: bool,
    since: Instant,
}

/// What to do about a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing.
    Keep,
    /// The peer looks restarted: close all its connections and refuse new
    /// ones until they are gone.
    Reset,
}

/// The open connections of every connected peer. Bounded: an entry lives
/// while the peer has a connection (the swarm's connection limits) and,
/// after that, at most until its reset allowance refills (≤ 60 s), and
/// only while fewer than [`MAX_IDLE_TRACKED`] peers are tracked.
#[derive(Debug, Default)]
pub(crate) struct RestartedPeers {
    peers: HashMap<PeerId, PeerConnections>,
}

impl RestartedPeers {
    /// Records an established connection. `inbound` is true when the peer
    /// dialed us: a restarted peer dials, we do not know it left.
    pub(crate) fn established(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        path: Path,
        inbound: bool,
        now: Instant,
    ) -> Verdict {
        let entry = self.peers.entry(peer).or_insert_with(|| PeerConnections {
            open: Vec::new(),
            allowance: TokenBucket::new(RESET_BURST, now),
            refusing_since: None,
        });
        let stale_suspect = entry.open.iter().any(|open| {
            open.path == path
                && (open.inbound || now.saturating_duration_since(open.since) >= SIMULTANEOUS_DIAL)
        });
        entry.open.push(Connection {
            id: connection,
            path,
            inbound,
            since: now,
        });
        if !inbound || !stale_suspect || entry.refusing_since.is_some() {
            return Verdict::Keep;
        }
        if entry
            .allowance
            .take(RESETS_PER_SECOND, RESET_BURST, now)
            .is_err()
        {
            return Verdict::Keep;
        }
        entry.refusing_since = Some(now);
        Verdict::Reset
    }

    /// Records a closed connection. Returns true when this was the last
    /// connection of a peer being reset: stop refusing it.
    pub(crate) fn closed(&mut self, peer: &PeerId, connection: ConnectionId, now: Instant) -> bool {
        let Some(entry) = self.peers.get_mut(peer) else {
            return false;
        };
        entry.open.retain(|open| open.id != connection);
        if !entry.open.is_empty() {
            return false;
        }
        let was_refusing = entry.refusing_since.take().is_some();
        // Keep the entry while its allowance is spent, so that a peer cannot
        // reset its budget by disconnecting; drop it once it is full again.
        let full = entry.allowance.is_full(RESETS_PER_SECOND, RESET_BURST, now);
        if full || self.peers.len() > MAX_IDLE_TRACKED {
            self.peers.remove(peer);
        }
        was_refusing
    }

    /// Peers refused for longer than [`MAX_REFUSAL`]: stop refusing them.
    /// Also forgets disconnected peers whose allowance has refilled.
    pub(crate) fn expired(&mut self, now: Instant) -> Vec<PeerId> {
        let mut expired = Vec::new();
        self.peers.retain(|peer, entry| {
            if let Some(since) = entry.refusing_since
                && now.saturating_duration_since(since) >= MAX_REFUSAL
            {
                entry.refusing_since = None;
                expired.push(*peer);
            }
            let full = entry.allowance.is_full(RESETS_PER_SECOND, RESET_BURST, now);
            !(entry.open.is_empty() && entry.refusing_since.is_none() && full)
        });
        expired
    }

    /// Peers tracked (for tests of the bound).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(id: usize) -> ConnectionId {
        ConnectionId::new_unchecked(id)
    }

    /// `peer` dials in twice (connections `first` and `first + 1`), then
    /// both close; the verdict on the second connection.
    fn dial_twice_and_close(
        peers: &mut RestartedPeers,
        peer: PeerId,
        first: usize,
        now: Instant,
    ) -> Verdict {
        let (old, new) = (connection(first), connection(first + 1));
        peers.established(peer, old, Path::Direct, true, now);
        let verdict = peers.established(peer, new, Path::Direct, true, now);
        peers.closed(&peer, old, now);
        peers.closed(&peer, new, now);
        verdict
    }

    #[test]
    fn a_second_inbound_connection_of_the_same_path_resets_the_peer() {
        let mut peers = RestartedPeers::default();
        let peer = PeerId::random();
        let now = Instant::now();
        assert_eq!(
            peers.established(peer, connection(1), Path::Direct, true, now),
            Verdict::Keep
        );
        assert_eq!(
            peers.established(peer, connection(2), Path::Direct, true, now),
            Verdict::Reset
        );
        // While its connections close, more connections do not reset again.
        assert_eq!(
            peers.established(peer, connection(3), Path::Direct, true, now),
            Verdict::Keep
        );
        assert!(!peers.closed(&peer, connection(1), now));
        assert!(!peers.closed(&peer, connection(2), now));
        assert!(
            peers.closed(&peer, connection(3), now),
            "the last one ends it"
        );
    }

    #[test]
    fn hole_punching_and_our_own_dials_are_not_restarts() {
        let mut peers = RestartedPeers::default();
        let peer = PeerId::random();
        let now = Instant::now();
        peers.established(peer, connection(1), Path::Relayed, true, now);
        assert_eq!(
            peers.established(peer, connection(2), Path::Direct, true, now),
            Verdict::Keep,
            "a direct connection beside a relayed one (DCUtR)"
        );
        assert_eq!(
            peers.established(peer, connection(3), Path::Direct, false, now),
            Verdict::Keep,
            "a connection we dialed"
        );
    }

    #[test]
    fn dialling_each_other_at_once_is_not_a_restart_but_a_stale_dial_of_ours_is() {
        let mut peers = RestartedPeers::default();
        let (peer, other) = (PeerId::random(), PeerId::random());
        let now = Instant::now();
        peers.established(peer, connection(1), Path::Direct, false, now);
        assert_eq!(
            peers.established(peer, connection(2), Path::Direct, true, now),
            Verdict::Keep,
            "our own dial of a moment ago beside theirs"
        );
        peers.established(other, connection(3), Path::Direct, false, now);
        assert_eq!(
            peers.established(
                other,
                connection(4),
                Path::Direct,
                true,
                now + SIMULTANEOUS_DIAL
            ),
            Verdict::Reset,
            "a peer we dialed long ago dials us again: it restarted"
        );
    }

    #[test]
    fn resets_are_rate_limited_per_peer_and_refill() {
        let mut peers = RestartedPeers::default();
        let peer = PeerId::random();
        let start = Instant::now();
        for round in 0..3 {
            assert_eq!(
                dial_twice_and_close(&mut peers, peer, 2 * round, start),
                Verdict::Reset
            );
        }
        assert_eq!(
            dial_twice_and_close(&mut peers, peer, 6, start),
            Verdict::Keep,
            "the burst is spent, even across disconnections"
        );
        assert_eq!(
            dial_twice_and_close(&mut peers, peer, 8, start + Duration::from_secs(21)),
            Verdict::Reset,
            "one more after 20 s"
        );
    }

    #[test]
    fn a_refusal_ends_after_its_limit_and_idle_peers_are_forgotten() {
        let mut peers = RestartedPeers::default();
        let peer = PeerId::random();
        let start = Instant::now();
        peers.established(peer, connection(1), Path::Direct, true, start);
        peers.established(peer, connection(2), Path::Direct, true, start);
        assert!(peers.expired(start + Duration::from_secs(1)).is_empty());
        assert_eq!(peers.expired(start + MAX_REFUSAL), vec![peer]);
        peers.closed(&peer, connection(1), start);
        assert!(
            !peers.closed(&peer, connection(2), start),
            "no longer refusing"
        );
        assert_eq!(peers.len(), 1, "kept while its allowance refills");
        peers.expired(start + Duration::from_secs(60));
        assert_eq!(peers.len(), 0);

        let other = PeerId::random();
        peers.established(other, connection(3), Path::Direct, true, start);
        peers.closed(&other, connection(3), start);
        assert_eq!(peers.len(), 0, "an untouched allowance is not kept");
    }

    #[test]
    fn spent_allowances_of_gone_peers_are_kept_only_up_to_the_bound() {
        let mut peers = RestartedPeers::default();
        let now = Instant::now();
        for index in 0..(MAX_IDLE_TRACKED + 10) {
            assert_eq!(
                dial_twice_and_close(&mut peers, PeerId::random(), 2 * index, now),
                Verdict::Reset
            );
        }
        assert_eq!(peers.len(), MAX_IDLE_TRACKED);
    }
}
