//! Node configuration.

use std::path::PathBuf;
use std::time::Duration;

use messaging_proto::ServerId;
pub use net_overlay::Clock;
use net_overlay::OverlayConfig;

/// Which servers this node stores and serves without being a member (a
/// bootstrap / replica node holds ciphertext only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ReplicaScope {
    /// None (a normal peer).
    #[default]
    None,
    /// These servers.
    Servers(Vec<ServerId>),
    /// Any server whose entries are pushed to us or that we see gossip for.
    All,
}

/// Limits a replica enforces on what it stores.
#[derive(Clone, Debug)]
pub struct ReplicaLimits {
    /// Most bytes of entries stored per server (or DM space).
    pub quota_bytes_per_space: u64,
    /// Entries per second an author may add (sustained).
    pub author_rate_per_sec: f64,
    /// Entries an author may add in a burst.
    pub author_burst: f64,
}

impl Default for ReplicaLimits {
    fn default() -> Self {
        Self {
            quota_bytes_per_space: 1 << 30,
            author_rate_per_sec: 20.0,
            author_burst: 100.0,
        }
    }
}

/// Protocol timers; tests and the simulator shorten them.
#[derive(Clone, Debug)]
pub struct NodeTimers {
    /// Mean interval between periodic syncs with a peer of each server
    /// (each wait is jittered ±25 %).
    pub sync_interval: Duration,
    /// First outbox retry delay; doubles up to `outbox_max_retry`.
    pub outbox_first_retry: Duration,
    /// Longest outbox retry delay.
    pub outbox_max_retry: Duration,
    /// How long a public server's advert is valid; it is re-published at
    /// half of that.
    pub advert_lifetime: Duration,
    /// How long to wait for the first answer of a bootstrap peer when joining.
    pub join_timeout: Duration,
    /// Housekeeping tick.
    pub tick: Duration,
}

impl Default for NodeTimers {
    fn default() -> Self {
        Self {
            sync_interval: Duration::from_secs(30),
            outbox_first_retry: Duration::from_secs(2),
            outbox_max_retry: Duration::from_secs(300),
            advert_lifetime: Duration::from_secs(24 * 3600),
            join_timeout: Duration::from_secs(30),
            tick: Duration::from_millis(250),
        }
    }
}

impl NodeTimers {
    /// Short timers for in-process tests.
    pub fn fast() -> Self {
        Self {
            sync_interval: Duration::from_secs(2),
            outbox_first_retry: Duration::from_millis(300),
            outbox_max_retry: Duration::from_secs(3),
            advert_lifetime: Duration::from_secs(3600),
            join_timeout: Duration::from_secs(20),
            tick: Duration::from_millis(100),
        }
    }
}

/// Everything a node needs to start.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Where the ledger and private data live.
    pub data_dir: PathBuf,
    /// The name shown to others when we join or create servers.
    pub display_name: Option<String>,
    /// The network overlay.
    pub overlay: OverlayConfig,
    /// Servers we store and serve without membership.
    pub replica: ReplicaScope,
    /// A replica's limits.
    pub replica_limits: ReplicaLimits,
    /// Protocol timers.
    pub timers: NodeTimers,
    /// Capacity of the command channel.
    pub command_capacity: usize,
    /// Capacity of the event channel (a slow subscriber gets `Lagged`).
    pub event_capacity: usize,
    /// Inbound entries per second an author may add before being refused
    /// (members' rate limit, enforced on receive).
    pub author_rate_per_sec: f64,
    /// Burst of the members' rate limit.
    pub author_burst: f64,
    /// Where to register metrics (the overlay's too); none: no metrics.
    pub metrics: Option<net_overlay::SharedRegistry>,
    /// The wall clock the node stamps entries with and checks expiries
    /// against; the node gives it to its overlay too (replacing
    /// `overlay.clock`). The system clock unless a test or the simulator
    /// runs a peer whose clock is off.
    pub clock: Clock,
}

impl NodeConfig {
    /// A configuration with defaults for `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>, overlay: OverlayConfig) -> Self {
        Self {
            data_dir: data_dir.into(),
            display_name: None,
            overlay,
            replica: ReplicaScope::None,
            replica_limits: ReplicaLimits::default(),
            timers: NodeTimers::default(),
            command_capacity: 256,
            event_capacity: 4096,
            author_rate_per_sec: 20.0,
            author_burst: 100.0,
            metrics: None,
            clock: Clock::system(),
        }
    }
}
