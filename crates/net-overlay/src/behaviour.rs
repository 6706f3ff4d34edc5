//! The composed libp2p behaviour: a block list (restarted peers), identify,
//! ping, connection limits,
//! Kademlia, gossipsub, the sync and directory request-response protocols,
//! AutoNAT, circuit relay (server or client), DCUtR and mDNS; optional parts
//! sit in `Toggle`.

use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::kad::store::{MemoryStore, MemoryStoreConfig};
use libp2p::kad::{self, Caching, StoreInserts};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, allow_block_list, autonat, connection_limits, dcutr, gossipsub, identify, mdns,
    ping, relay,
};
use messaging_proto::limits::{
    MAX_DIRECTORY_REQUEST_BYTES, MAX_DIRECTORY_RESPONSE_BYTES, MAX_SIGNED_ADVERT_BYTES,
    MAX_SYNC_MESSAGE_BYTES,
};

use crate::codec::{DIRECTORY_PROTOCOL, FramedCodec, SYNC_PROTOCOL};
use crate::config::{KadMode, OverlayConfig};
use crate::error::OverlayError;

/// Kademlia protocol name: our own DHT, not the IPFS one.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/palaver/kad/1.0.0");
/// Identify protocol version string.
pub const IDENTIFY_PROTOCOL_VERSION: &str = "/palaver/1";
/// Most DHT records stored per node.
pub(crate) const MAX_STORED_RECORDS: usize = 4096;
/// Most providers stored per key (the directory key has many).
pub(crate) const MAX_PROVIDERS_PER_KEY: usize = 256;

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// Peers whose connections are being closed (`restarts.rs`): first, so
    /// that their new connections are refused before others see them.
    pub(crate) blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) kad: kad::Behaviour<MemoryStore>,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) sync: request_response::Behaviour<FramedCodec>,
    pub(crate) directory: request_response::Behaviour<FramedCodec>,
    pub(crate) autonat: Toggle<autonat::Behaviour>,
    pub(crate) relay_server: Toggle<relay::Behaviour>,
    pub(crate) relay_client: Toggle<relay::client::Behaviour>,
    pub(crate) dcutr: Toggle<dcutr::Behaviour>,
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
}

impl Behaviour {
    pub(crate) fn new(
        keypair: &Keypair,
        config: &OverlayConfig,
        relay_client: Option<relay::client::Behaviour>,
    ) -> Result<Self, OverlayError> {
        let peer_id = keypair.public().to_peer_id();
        let limits = connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                .with_max_established(Some(config.max_connections))
                .with_max_established_per_peer(Some(config.max_connections_per_peer))
                .with_max_pending_incoming(Some(128))
                .with_max_pending_outgoing(Some(128)),
        );
        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL_VERSION.to_owned(), keypair.public())
                .with_agent_version(config.agent_version.clone())
                .with_interval(Duration::from_secs(300)),
        );
        let ping = ping::Behaviour::new(ping::Config::new());

        let mut kad_config = kad::Config::new(KAD_PROTOCOL);
        kad_config
            .set_record_filtering(StoreInserts::FilterBoth)
            .set_caching(Caching::Disabled)
            .set_query_timeout(Duration::from_secs(30))
            .set_max_packet_size(16 * 1024 + MAX_SIGNED_ADVERT_BYTES)
            .set_record_ttl(Some(Duration::from_secs(7 * 24 * 3600)))
            .set_provider_record_ttl(Some(Duration::from_secs(24 * 3600)))
            .set_provider_publication_interval(Some(Duration::from_secs(3600)))
            // The event loop refreshes the routing table itself, and only
            // when it has peers: kad's own timer warns "No known peers"
            // every few minutes on a lone bootstrap node.
            .set_periodic_bootstrap_interval(None);
        let store = MemoryStore::with_config(
            peer_id,
            MemoryStoreConfig {
                max_records: MAX_STORED_RECORDS,
                // A little above the advert limit: validation, not the store,
                // is what refuses oversized adverts (with a clear reason).
                max_value_bytes: MAX_SIGNED_ADVERT_BYTES + 4096,
                max_providers_per_key: MAX_PROVIDERS_PER_KEY,
                max_provided_keys: 64,
            },
        );
        let mut kad = kad::Behaviour::with_config(peer_id, store, kad_config);
        match config.kad_mode {
            KadMode::Auto => kad.set_mode(None),
            KadMode::Server => kad.set_mode(Some(kad::Mode::Server)),
            KadMode::Client => kad.set_mode(Some(kad::Mode::Client)),
        }

        let mut gossipsub = crate::gossip::behaviour(&config.gossip)?;
        if let Some(registry) = &config.metrics {
            // Per-topic counts, duplicates included and not: what the
            // simulator and an operator's dashboards read gossip cost from.
            gossipsub = gossipsub.with_metrics(
                registry.lock().sub_registry_with_prefix("gossipsub"),
                gossipsub::MetricsConfig::default(),
            );
        }

        let request_config = request_response::Config::default()
            .with_request_timeout(config.request_timeout)
            .with_max_concurrent_streams(64);
        let sync = request_response::Behaviour::with_codec(
            FramedCodec::new(MAX_SYNC_MESSAGE_BYTES, MAX_SYNC_MESSAGE_BYTES),
            [(SYNC_PROTOCOL, ProtocolSupport::Full)],
            request_config.clone(),
        );
        let directory = request_response::Behaviour::with_codec(
            FramedCodec::new(MAX_DIRECTORY_REQUEST_BYTES, MAX_DIRECTORY_RESPONSE_BYTES),
            [(DIRECTORY_PROTOCOL, ProtocolSupport::Full)],
            request_config,
        );

        let autonat = config
            .autonat
            .then(|| autonat::Behaviour::new(peer_id, autonat::Config::default()));
        // Relays carry chat traffic for peers that cannot hole-punch, so a
        // circuit may live longer and carry more than libp2p's defaults
        // (2 minutes, 128 KiB), which only suit hole-punch signalling.
        let relay_server = config.relay_server.then(|| {
            relay::Behaviour::new(
                peer_id,
                relay::Config {
                    max_circuit_duration: Duration::from_secs(30 * 60),
                    max_circuit_bytes: 64 * 1024 * 1024,
                    ..relay::Config::default()
                },
            )
        });
        let dcutr = relay_client
            .is_some()
            .then(|| dcutr::Behaviour::new(peer_id));
        let mdns = if config.mdns {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                    .map_err(|err| OverlayError::Transport(format!("mDNS: {err}")))?,
            )
        } else {
            None
        };
        Ok(Self {
            blocked: allow_block_list::Behaviour::default(),
            limits,
            identify,
            ping,
            kad,
            gossipsub,
            sync,
            directory,
            autonat: autonat.into(),
            relay_server: relay_server.into(),
            relay_client: relay_client.into(),
            dcutr: dcutr.into(),
            mdns: mdns.into(),
        })
    }

    /// Number of peers in the Kademlia routing table.
    pub(crate) fn routing_table_size(&mut self) -> usize {
        self.kad.kbuckets().map(|bucket| bucket.num_entries()).sum()
    }
}
