//! The node's Prometheus metrics (registered beside libp2p's when a
//! registry is configured): entries received, accepted and rejected by
//! reason, delivery latency, outbox depth, sync bytes, connected peers and
//! stored bytes per server.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of a rejection.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabel {
    /// The stable error code.
    pub(crate) reason: String,
}

/// Labels of a server.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ServerLabel {
    /// The server id (hex).
    pub(crate) server: String,
}

/// The node's metrics.
#[derive(Clone)]
pub(crate) struct NodeMetrics {
    pub(crate) entries_received: Counter,
    pub(crate) entries_accepted: Counter,
    pub(crate) entries_rejected: Family<ReasonLabel, Counter>,
    pub(crate) delivery_latency: Histogram,
    pub(crate) outbox_depth: Gauge,
    pub(crate) sync_bytes: Counter,
    pub(crate) sync_requests_served: Counter,
    pub(crate) connected_peers: Gauge,
    pub(crate) stored_bytes: Family<ServerLabel, Gauge>,
}

fn latency_histogram() -> Histogram {
    // 5 ms … ~20 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.005, 2.0, 13,
    ))
}

impl Default for NodeMetrics {
    fn default() -> Self {
        Self {
            entries_received: Counter::default(),
            entries_accepted: Counter::default(),
            entries_rejected: Family::default(),
            delivery_latency: latency_histogram(),
            outbox_depth: Gauge::default(),
            sync_bytes: Counter::default(),
            sync_requests_served: Counter::default(),
            connected_peers: Gauge::default(),
            stored_bytes: Family::default(),
        }
    }
}

impl NodeMetrics {
    /// Metrics registered under `palaver_` in `registry`.
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let registry = registry.sub_registry_with_prefix("palaver");
        registry.register(
            "entries_received",
            "Entries received from peers (gossip, sync, pushes)",
            metrics.entries_received.clone(),
        );
        registry.register(
            "entries_accepted",
            "Received entries stored and applied",
            metrics.entries_accepted.clone(),
        );
        registry.register(
            "entries_rejected",
            "Received entries refused, by reason",
            metrics.entries_rejected.clone(),
        );
        registry.register(
            "delivery_latency_seconds",
            "Time from an entry's timestamp to its acceptance here (live gossip)",
            metrics.delivery_latency.clone(),
        );
        registry.register(
            "outbox_depth",
            "Entries of ours waiting for a peer to confirm them",
            metrics.outbox_depth.clone(),
        );
        registry.register(
            "sync_bytes",
            "Bytes of entries fetched by sync",
            metrics.sync_bytes.clone(),
        );
        registry.register(
            "sync_requests_served",
            "Sync requests from peers answered (refusals too)",
            metrics.sync_requests_served.clone(),
        );
        registry.register(
            "connected_peers",
            "Peers with an open connection",
            metrics.connected_peers.clone(),
        );
        registry.register(
            "stored_bytes",
            "Bytes of entries stored per server",
            metrics.stored_bytes.clone(),
        );
        metrics
    }
}
