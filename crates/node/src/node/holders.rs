//! Which peers hold how much of our own feeds: the source of outbox
//! confirmations and of each message's delivery state. Bounded: any peer
//! can make itself known (peer ids cost nothing to make), so at most
//! [`MAX_TRACKED_PEERS`] peers are tracked; when a new one arrives and the
//! table is full, peers that are no longer connected are forgotten first,
//! and while every tracked peer is connected (the overlay bounds
//! connections) a new peer is not tracked.

use std::collections::{HashMap, HashSet};

use identity_core::UserId;
use messaging_proto::LogId;
use net_overlay::PeerId;

use super::user_of;

/// Most peers whose holdings are tracked.
pub(crate) const MAX_TRACKED_PEERS: usize = 4_096;

/// What [`FeedHolders::note`] made of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Noted {
    /// The peer holds more than we knew.
    Raised,
    /// Nothing new.
    Known,
    /// The table is full of connected peers: not tracked (what the peer
    /// holds still confirms outbox entries).
    Untracked,
}

/// What each tracked peer holds of our feeds.
#[derive(Debug, Default)]
pub(crate) struct FeedHolders {
    /// The seq of our feed each peer holds, per log.
    heads: HashMap<(LogId, PeerId), u64>,
    /// The user of every tracked peer (`None`: not a Palaver peer id),
    /// resolved once: it decompresses a curve point.
    users: HashMap<PeerId, Option<UserId>>,
}

impl FeedHolders {
    /// Records that `peer` holds our feed of `log` up to `seq`.
    /// `connected` are the peers connected now.
    pub(crate) fn note(
        &mut self,
        peer: PeerId,
        log: LogId,
        seq: u64,
        connected: &HashSet<PeerId>,
    ) -> Noted {
        if !self.users.contains_key(&peer) {
            if self.users.len() >= MAX_TRACKED_PEERS {
                self.forget_disconnected(connected);
            }
            if self.users.len() >= MAX_TRACKED_PEERS {
                return Noted::Untracked;
            }
            self.users.insert(peer, user_of(&peer));
        }
        let known = self.heads.entry((log, peer)).or_insert(0);
        if *known >= seq {
            return Noted::Known;
        }
        *known = seq;
        Noted::Raised
    }

    /// How much of our feed in `log` each tracked peer holds, with the
    /// peer's user.
    pub(crate) fn of_log<'a>(
        &'a self,
        log: &'a LogId,
    ) -> impl Iterator<Item = (u64, Option<UserId>)> + 'a {
        self.heads
            .iter()
            .filter(move |((held_log, _), _)| held_log == log)
            .map(|((_, peer), held)| (*held, self.users.get(peer).copied().flatten()))
    }

    /// How much of our feed in `log` `peer` is known to hold (0: nothing
    /// known).
    pub(crate) fn held(&self, log: &LogId, peer: &PeerId) -> u64 {
        self.heads.get(&(*log, *peer)).copied().unwrap_or(0)
    }

    /// Peers tracked now.
    #[cfg(test)]
    fn peers(&self) -> usize {
        self.users.len()
    }

    fn forget_disconnected(&mut self, connected: &HashSet<PeerId>) {
        self.users.retain(|peer, _| connected.contains(peer));
        self.heads.retain(|(_, peer), _| connected.contains(peer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerId {
        identity_core::Identity::generate(&mut rand::rng())
            .user_id()
            .to_peer_id()
    }

    const LOG: LogId = LogId::from_bytes([7; 32]);

    #[test]
    fn holdings_only_move_forward() {
        let mut holders = FeedHolders::default();
        let a = peer();
        let none = HashSet::new();
        assert_eq!(holders.note(a, LOG, 3, &none), Noted::Raised);
        assert_eq!(holders.note(a, LOG, 2, &none), Noted::Known);
        assert_eq!(holders.note(a, LOG, 3, &none), Noted::Known);
        assert_eq!(holders.note(a, LOG, 4, &none), Noted::Raised);
        let held: Vec<_> = holders.of_log(&LOG).collect();
        assert_eq!(held, vec![(4, user_of(&a))]);
        assert!(user_of(&a).is_some());
    }

    #[test]
    fn the_table_is_bounded_and_keeps_connected_peers() {
        let mut holders = FeedHolders::default();
        let kept = peer();
        let connected = HashSet::from([kept]);
        assert_eq!(holders.note(kept, LOG, 1, &connected), Noted::Raised);
        // Random peer ids without a Palaver key are cheap to make at
        // scale; the table never grows past its bound.
        for _ in 0..MAX_TRACKED_PEERS + 10 {
            holders.note(PeerId::random(), LOG, 1, &connected);
            assert!(holders.peers() <= MAX_TRACKED_PEERS);
        }
        assert!(holders.of_log(&LOG).count() <= MAX_TRACKED_PEERS);
        // The connected peer survived every eviction.
        assert_eq!(holders.note(kept, LOG, 1, &connected), Noted::Known);
        assert_eq!(holders.note(kept, LOG, 2, &connected), Noted::Raised);

        // Every tracked peer connected: a new one is not tracked.
        let mut full = FeedHolders::default();
        let all: HashSet<PeerId> = (0..MAX_TRACKED_PEERS).map(|_| PeerId::random()).collect();
        for peer in &all {
            full.note(*peer, LOG, 1, &all);
        }
        assert_eq!(full.note(PeerId::random(), LOG, 1, &all), Noted::Untracked);
        assert_eq!(full.peers(), MAX_TRACKED_PEERS);
    }
}
