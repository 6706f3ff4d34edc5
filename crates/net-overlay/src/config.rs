//! Overlay configuration: which transports, which optional behaviours, the
//! protocol timers, and the bounds of every queue.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::Boxed;
use libp2p::{Multiaddr, PeerId, identity::Keypair};

use crate::address_book::AddressBookSnapshot;
use crate::clock::Clock;

/// A Prometheus registry shared by the overlay and the node.
pub type SharedRegistry = Arc<parking_lot::Mutex<prometheus_client::registry::Registry>>;

/// A transport whose connections are already authenticated and multiplexed.
pub type BoxedTransport = Boxed<(PeerId, StreamMuxerBox)>;

/// Builds a custom base transport for a key pair (used by the simulator to
/// wrap the memory transport in a link model).
pub type TransportFactory = Arc<dyn Fn(&Keypair) -> std::io::Result<BoxedTransport> + Send + Sync>;

/// Which transport the overlay uses.
#[derive(Clone, Default)]
pub enum TransportConfig {
    /// Real sockets: QUIC (primary) and TCP + Noise + Yamux (fallback for
    /// networks that block UDP), with DNS resolution.
    #[default]
    Network,
    /// libp2p's in-process memory transport (`/memory/<port>` addresses),
    /// for tests and the simulator.
    Memory,
    /// Any other transport, e.g. the memory transport behind a link model.
    Custom(TransportFactory),
}

impl fmt::Debug for TransportConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Network => f.write_str("Network"),
            Self::Memory => f.write_str("Memory"),
            Self::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// Kademlia mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KadMode {
    /// Serve DHT requests only once an external address is confirmed
    /// (libp2p's default; right for peers behind NAT).
    #[default]
    Auto,
    /// Always serve DHT requests (bootstrap nodes, tests, LAN).
    Server,
    /// Never serve DHT requests.
    Client,
}

/// Gossipsub timers and mesh sizes.
#[derive(Clone, Debug)]
pub struct GossipConfig {
    /// Time between heartbeats (libp2p default 1 s).
    pub heartbeat_interval: Duration,
    /// Delay before the first heartbeat (libp2p default 5 s; we use less so
    /// that a fresh node's mesh forms quickly).
    pub heartbeat_initial_delay: Duration,
    /// Target mesh degree (D).
    pub mesh_n: usize,
    /// Lower bound of the mesh degree (D_low).
    pub mesh_n_low: usize,
    /// Upper bound of the mesh degree (D_high).
    pub mesh_n_high: usize,
    /// Minimum outbound peers in the mesh (must be < mesh_n_low and ≤ mesh_n / 2).
    pub mesh_outbound_min: usize,
    /// How long message ids are remembered to drop duplicates.
    pub duplicate_cache_time: Duration,
    /// Publish our own messages to every subscribed peer we know, not only
    /// to the mesh (libp2p's default, on: one hop less, many more
    /// duplicates; ours: off).
    pub flood_publish: bool,
    /// Messages larger than this (bytes) make a receiver tell its mesh
    /// peers "I don't want it" (gossipsub 1.2), which saves duplicates
    /// (libp2p's default: 1,000).
    pub idontwant_threshold: usize,
}

impl Default for GossipConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(1),
            heartbeat_initial_delay: Duration::from_millis(100),
            // Measured with the simulator (docs/simulation.md, "Gossip
            // settings"): libp2p's D = 6 / 4 / 12 with flood publishing gave
            // 6–7 duplicates per message at 30 members; D = 4 / 3 / 6
            // without flood publishing gives 2.3–2.6 and fewer link bytes,
            // for about 15 ms more median latency. Sync repairs what a
            // thinner mesh misses.
            mesh_n: 4,
            mesh_n_low: 3,
            mesh_n_high: 6,
            mesh_outbound_min: 2,
            duplicate_cache_time: Duration::from_secs(120),
            flood_publish: false,
            idontwant_threshold: 1000,
        }
    }
}

/// Everything the overlay needs to start.
#[derive(Clone, Debug)]
pub struct OverlayConfig {
    /// Transport choice.
    pub transport: TransportConfig,
    /// Addresses to listen on (e.g. `/ip4/0.0.0.0/udp/0/quic-v1`).
    pub listen: Vec<Multiaddr>,
    /// Addresses others can reach us at, known without AutoNAT (a bootstrap
    /// node's public address). A relay serves reservations only once it has
    /// an external address.
    pub external_addrs: Vec<Multiaddr>,
    /// Peers to dial at start and keep connected (each address must end in
    /// `/p2p/<peer id>`).
    pub bootstrap: Vec<Multiaddr>,
    /// Peers remembered from earlier runs, dialled when the bootstrap peers
    /// cannot be reached.
    pub address_book: AddressBookSnapshot,
    /// Kademlia mode.
    pub kad_mode: KadMode,
    /// LAN discovery with mDNS (on for desktop peers, off for bootstrap nodes).
    pub mdns: bool,
    /// Act as a circuit relay (v2) for others (bootstrap nodes).
    pub relay_server: bool,
    /// Accept relayed connections and hole-punch with DCUtR (desktop peers).
    pub relay_client: bool,
    /// Probe our reachability with AutoNAT.
    pub autonat: bool,
    /// Gossipsub timers.
    pub gossip: GossipConfig,
    /// Timeout of sync and directory requests.
    pub request_timeout: Duration,
    /// Connections without any open stream are closed after this long.
    pub idle_connection_timeout: Duration,
    /// Most established connections in total.
    pub max_connections: u32,
    /// Most established connections per peer.
    pub max_connections_per_peer: u32,
    /// Inbound sync requests allowed per peer per second (sustained).
    pub sync_requests_per_second: f64,
    /// Inbound sync requests a peer may burst.
    pub sync_request_burst: f64,
    /// Capacity of the command channel.
    pub command_capacity: usize,
    /// Capacity of the event channel (a slow consumer gets `Lagged`).
    pub event_capacity: usize,
    /// Interval of maintenance work (redials, expiry of pending requests).
    pub maintenance_interval: Duration,
    /// The protocol version string announced by identify.
    pub agent_version: String,
    /// Where libp2p's own metrics are registered (none: no metrics).
    pub metrics: Option<SharedRegistry>,
    /// The wall clock that advert expiries are checked against (a node
    /// sets it to its own clock).
    pub clock: Clock,
}

impl Default for OverlayConfig {
    fn default() -> Self {
        Self {
            transport: TransportConfig::Network,
            listen: Vec::new(),
            external_addrs: Vec::new(),
            bootstrap: Vec::new(),
            address_book: AddressBookSnapshot::default(),
            kad_mode: KadMode::Auto,
            mdns: false,
            relay_server: false,
            relay_client: true,
            autonat: true,
            gossip: GossipConfig::default(),
            request_timeout: Duration::from_secs(20),
            idle_connection_timeout: Duration::from_secs(60),
            max_connections: 512,
            max_connections_per_peer: 4,
            sync_requests_per_second: 50.0,
            sync_request_burst: 200.0,
            command_capacity: 1024,
            event_capacity: 4096,
            maintenance_interval: Duration::from_millis(500),
            agent_version: format!("palaver/{}", env!("CARGO_PKG_VERSION")),
            metrics: None,
            clock: Clock::system(),
        }
    }
}

impl OverlayConfig {
    /// A configuration for in-process tests and the simulator: memory
    /// transport, Kademlia server mode, no NAT traversal, no mDNS.
    pub fn memory() -> Self {
        Self {
            transport: TransportConfig::Memory,
            kad_mode: KadMode::Server,
            relay_client: false,
            autonat: false,
            ..Self::default()
        }
    }

    /// A bootstrap / relay / replica node on real sockets.
    pub fn bootstrap_node(listen: Vec<Multiaddr>) -> Self {
        Self {
            listen,
            kad_mode: KadMode::Server,
            relay_server: true,
            relay_client: false,
            mdns: false,
            ..Self::default()
        }
    }

    /// A desktop peer on real sockets (mDNS on, relay client on).
    pub fn desktop(listen: Vec<Multiaddr>) -> Self {
        Self {
            listen,
            mdns: true,
            ..Self::default()
        }
    }
}
