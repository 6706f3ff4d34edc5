//! Small helpers about multiaddrs.

use net_overlay::{Multiaddr, PeerId, Protocol};

/// The peer id at the end of an address (`…/p2p/<peer id>`).
pub(crate) fn peer_of_addr(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().last().and_then(|protocol| match protocol {
        Protocol::P2p(peer) => Some(peer),
        _ => None,
    })
}

/// Whether an address is worth giving to others: not an unspecified
/// (0.0.0.0 / ::) listen address, not a relay circuit of ours.
pub(crate) fn is_dialable(addr: &Multiaddr) -> bool {
    !addr.iter().any(|protocol| match protocol {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}
