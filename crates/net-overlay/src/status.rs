//! What the overlay reports about the network, for the UI and diagnostics.

use libp2p::{Multiaddr, PeerId};
use messaging_proto::ServerId;

/// Our reachability as AutoNAT sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum NatStatus {
    /// Not known yet (or AutoNAT is off).
    #[default]
    Unknown,
    /// Reachable from the internet at this address.
    Public(Multiaddr),
    /// Behind a NAT or firewall: reachable through relays only (or after a
    /// hole punch).
    Private,
}

/// The state of the overlay at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NetworkStatus {
    /// Our peer id.
    pub peer_id: Option<PeerId>,
    /// Addresses we listen on.
    pub listen_addrs: Vec<Multiaddr>,
    /// Addresses others have confirmed they can reach us at.
    pub external_addrs: Vec<Multiaddr>,
    /// AutoNAT's verdict.
    pub nat: NatStatus,
    /// Peers with at least one established connection.
    pub connected_peers: Vec<PeerId>,
    /// Peers in the Kademlia routing table.
    pub routing_table_size: usize,
    /// Gossip mesh size per subscribed server.
    pub mesh_peers: Vec<(ServerId, usize)>,
    /// Peers subscribed to each server's topic (mesh or not).
    pub topic_peers: Vec<(ServerId, usize)>,
    /// Relays holding a reservation for us.
    pub relay_reservations: Vec<PeerId>,
}
