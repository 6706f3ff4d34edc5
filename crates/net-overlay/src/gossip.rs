//! Gossipsub settings: anonymous messages, content-hash message ids,
//! application validation, and peer scoring that punishes invalid messages.
//!
//! Entries are already signed by their authors, so gossipsub's own message
//! signatures would be a second signature to verify on every hop: messages
//! are anonymous (no `from`, `seqno` or signature) and identified by
//! BLAKE3 of their data, which also deduplicates the same entry arriving
//! from several peers. Every message waits for the node's verdict
//! (`validate_messages`); a rejected message counts as an invalid delivery
//! in the sender's score, which is squared and weighted so that a few
//! invalid messages push a spammer below the graylist threshold, where all
//! its traffic is ignored.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use libp2p::gossipsub::{
    self, IdentTopic, MessageAuthenticity, MessageId, PeerScoreParams, PeerScoreThresholds,
    TopicHash, TopicScoreParams, ValidationMode,
};
use messaging_proto::ServerId;
use messaging_proto::limits::MAX_GOSSIP_MESSAGE_BYTES;

use crate::config::GossipConfig;
use crate::error::OverlayError;

/// Largest gossipsub RPC frame: one entry plus framing.
pub const MAX_TRANSMIT_SIZE: usize = MAX_GOSSIP_MESSAGE_BYTES + 1024;

/// Score thresholds (see [`PeerScoreThresholds`]).
pub(crate) const GOSSIP_THRESHOLD: f64 = -10.0;
/// Below this score we do not publish to the peer.
pub(crate) const PUBLISH_THRESHOLD: f64 = -50.0;
/// Below this score all of the peer's messages are ignored.
pub const GRAYLIST_THRESHOLD: f64 = -80.0;

/// The topic of a server.
pub(crate) fn topic(server: &ServerId) -> IdentTopic {
    IdentTopic::new(server.topic())
}

/// The topic hash of a server.
pub fn topic_hash(server: &ServerId) -> TopicHash {
    topic(server).hash()
}

/// The message id of gossip data: BLAKE3 of the bytes.
pub fn message_id(data: &[u8]) -> MessageId {
    MessageId::new(blake3::hash(data).as_bytes())
}

/// Gossipsub's settings from ours: anonymous messages with content-hash
/// ids, our size limit, mesh and timers. The simulation harness's bare
/// gossipsub baseline uses the same.
pub fn config_builder(config: &GossipConfig) -> gossipsub::ConfigBuilder {
    let mut builder = gossipsub::ConfigBuilder::default();
    builder
        .validation_mode(ValidationMode::Anonymous)
        .message_id_fn(|message| message_id(&message.data))
        .max_transmit_size(MAX_TRANSMIT_SIZE)
        .heartbeat_interval(config.heartbeat_interval)
        .heartbeat_initial_delay(config.heartbeat_initial_delay)
        .mesh_n(config.mesh_n)
        .mesh_n_low(config.mesh_n_low)
        .mesh_n_high(config.mesh_n_high)
        .mesh_outbound_min(config.mesh_outbound_min)
        .duplicate_cache_time(config.duplicate_cache_time)
        .flood_publish(config.flood_publish)
        .idontwant_message_size_threshold(config.idontwant_threshold)
        .idontwant_on_publish(true);
    builder
}

/// Builds the gossipsub behaviour.
pub(crate) fn behaviour(config: &GossipConfig) -> Result<gossipsub::Behaviour, OverlayError> {
    let gossip_config = config_builder(config)
        .validate_messages()
        .build()
        .map_err(|err| OverlayError::Config(format!("gossipsub: {err}")))?;
    let mut behaviour = gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, gossip_config)
        .map_err(|err| OverlayError::Config(format!("gossipsub: {err}")))?;
    behaviour
        .with_peer_score(score_params(), score_thresholds())
        .map_err(|err| OverlayError::Config(format!("gossipsub scoring: {err}")))?;
    Ok(behaviour)
}

/// Peer score parameters shared by every topic.
pub(crate) fn score_params() -> PeerScoreParams {
    let mut loopback = HashSet::new();
    loopback.insert(IpAddr::V4(Ipv4Addr::LOCALHOST));
    loopback.insert(IpAddr::V6(Ipv6Addr::LOCALHOST));
    PeerScoreParams {
        // Many peers behind one address is suspicious, but not on loopback.
        ip_colocation_factor_weight: -5.0,
        ip_colocation_factor_threshold: 16.0,
        ip_colocation_factor_whitelist: loopback,
        behaviour_penalty_weight: -10.0,
        behaviour_penalty_decay: 0.9,
        decay_interval: Duration::from_secs(1),
        retain_score: Duration::from_secs(600),
        ..PeerScoreParams::default()
    }
}

/// Per-topic score parameters: invalid messages weigh heavily; quiet
/// meshes are not punished (chat traffic is bursty, so mesh delivery
/// quotas would penalise honest peers of quiet servers).
pub(crate) fn topic_score_params() -> TopicScoreParams {
    TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 100.0,
        first_message_deliveries_weight: 0.5,
        first_message_deliveries_decay: 0.9,
        first_message_deliveries_cap: 20.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -20.0,
        invalid_message_deliveries_decay: 0.99,
        ..TopicScoreParams::default()
    }
}

/// Score thresholds.
pub(crate) fn score_thresholds() -> PeerScoreThresholds {
    PeerScoreThresholds {
        gossip_threshold: GOSSIP_THRESHOLD,
        publish_threshold: PUBLISH_THRESHOLD,
        graylist_threshold: GRAYLIST_THRESHOLD,
        accept_px_threshold: 10.0,
        opportunistic_graft_threshold: 3.0,
    }
}
