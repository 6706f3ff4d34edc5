//! Palaver's network overlay: the only crate that touches libp2p.
//!
//! One event loop owns the libp2p `Swarm` ([`Overlay::start`] spawns it on
//! the current tokio runtime); [`OverlayHandle`] is a cheap `Clone` that
//! sends bounded commands with reply channels, and the loop emits bounded
//! [`OverlayEvent`]s. The transport is a parameter
//! ([`TransportConfig`]): QUIC + TCP/Noise/Yamux + DNS for real use, the
//! memory transport for in-process tests and the simulator.
//!
//! Behaviours: identify, ping, connection limits, Kademlia on
//! `/palaver/kad/1.0.0` with validated records, gossipsub with anonymous
//! messages, content-hash ids, application validation and peer scoring,
//! request-response `/palaver/sync/1` and `/palaver/directory/1` with
//! size-limited codecs, AutoNAT, circuit relay v2 (server on bootstrap
//! nodes, client on desktop peers), DCUtR and mDNS (toggle). The exact
//! settings another implementation needs are in `docs/protocol.md`.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), net_overlay::OverlayError> {
//! use identity_core::Identity;
//! use net_overlay::{Overlay, OverlayConfig};
//!
//! let identity = Identity::generate(&mut rand::rng());
//! let mut config = OverlayConfig::memory();
//! config.listen = vec!["/memory/0".parse().expect("valid address")];
//! let (handle, _events) = Overlay::start(&identity, config)?;
//! let status = handle.status().await?;
//! assert_eq!(status.peer_id, Some(identity.user_id().to_peer_id()));
//! handle.shutdown().await?;
//! # Ok(())
//! # }
//! ```

mod address_book;
mod behaviour;
mod clock;
mod codec;
mod config;
mod error;
mod event_loop;
mod gossip;
mod handle;
pub mod partition;
mod records;
mod restarts;
mod status;
mod transport;

use identity_core::Identity;
use libp2p::swarm::Swarm;
use tokio::sync::mpsc;

pub use address_book::{AddressBookSnapshot, KnownPeer};
pub use behaviour::{IDENTIFY_PROTOCOL_VERSION, KAD_PROTOCOL};
pub use clock::Clock;
pub use codec::{DIRECTORY_PROTOCOL, FramedCodec, SYNC_PROTOCOL, WireRequest};
pub use config::{
    BoxedTransport, GossipConfig, KadMode, OverlayConfig, SharedRegistry, TransportConfig,
    TransportFactory,
};
pub use error::OverlayError;
pub use gossip::{
    GRAYLIST_THRESHOLD, MAX_TRANSMIT_SIZE, config_builder as gossipsub_config, message_id,
    topic_hash,
};
pub use handle::{
    AdvertLookup, GossipVerdict, InboundToken, OverlayEvent, OverlayHandle, PublishOutcome,
};
pub use libp2p::gossipsub::MessageId;
pub use libp2p::multiaddr::Protocol;
pub use libp2p::{Multiaddr, PeerId};
pub use records::{DIRECTORY_KEY, advert_key};
pub use status::{NatStatus, NetworkStatus};
pub use transport::upgrade;

/// Starts overlays.
pub struct Overlay;

impl Overlay {
    /// Builds the swarm for `identity` and spawns its event loop on the
    /// current tokio runtime. Returns the handle and the event stream.
    pub fn start(
        identity: &Identity,
        config: OverlayConfig,
    ) -> Result<(OverlayHandle, mpsc::Receiver<OverlayEvent>), OverlayError> {
        let keypair = identity.to_libp2p_keypair();
        let peer_id = keypair.public().to_peer_id();
        let base = transport::base(&keypair, &config.transport)?;
        let (transport, relay_client) = if config.relay_client {
            let (relay_transport, relay_behaviour) = libp2p::relay::client::new(peer_id);
            (
                transport::with_relay(base, relay_transport, &keypair)?,
                Some(relay_behaviour),
            )
        } else {
            (base, None)
        };
        let behaviour = behaviour::Behaviour::new(&keypair, &config, relay_client)?;
        let swarm_config = libp2p::swarm::Config::with_tokio_executor()
            .with_idle_connection_timeout(config.idle_connection_timeout);
        let swarm = Swarm::new(transport, behaviour, peer_id, swarm_config);
        let (command_tx, command_rx) = mpsc::channel(config.command_capacity);
        let (event_tx, event_rx) = mpsc::channel(config.event_capacity);
        let events = handle::EventSender::new(event_tx);
        let metrics = config.metrics.as_ref().map(|registry| {
            libp2p::metrics::Metrics::new(registry.lock().sub_registry_with_prefix("libp2p"))
        });
        let event_loop = event_loop::EventLoop::new(swarm, command_rx, events, config, metrics);
        tokio::spawn(event_loop.run());
        Ok((OverlayHandle::new(command_tx, peer_id), event_rx))
    }
}
