//! Building the transport: QUIC + TCP/Noise/Yamux + DNS for real use, the
//! memory transport for tests, or a caller's custom transport; optionally
//! with the circuit-relay client transport beside it.

use std::time::Duration;

use futures::future::Either;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::{MemoryTransport, OrTransport};
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::{Transport as _, dns, noise, quic, relay, tcp, yamux};

use crate::config::{BoxedTransport, TransportConfig};
use crate::error::OverlayError;

const UPGRADE_TIMEOUT: Duration = Duration::from_secs(20);

fn noise(keypair: &Keypair) -> Result<noise::Config, OverlayError> {
    noise::Config::new(keypair).map_err(|err| OverlayError::Transport(format!("noise: {err}")))
}

/// Upgrades a raw byte-stream transport with Noise and Yamux, the way the
/// memory transport and TCP are upgraded. The simulator uses this to wrap
/// its link model.
pub fn upgrade<T>(raw: T, keypair: &Keypair) -> Result<BoxedTransport, OverlayError>
where
    T: libp2p::Transport + Send + Unpin + 'static,
    T::Output: futures::AsyncRead + futures::AsyncWrite + Unpin + Send + 'static,
    T::Error: Send + Sync + 'static,
    T::Dial: Send + 'static,
    T::ListenerUpgrade: Send + 'static,
{
    Ok(raw
        .upgrade(Version::V1Lazy)
        .authenticate(noise(keypair)?)
        .multiplex(yamux::Config::default())
        .timeout(UPGRADE_TIMEOUT)
        .boxed())
}

/// Builds the base transport.
pub(crate) fn base(
    keypair: &Keypair,
    config: &TransportConfig,
) -> Result<BoxedTransport, OverlayError> {
    match config {
        TransportConfig::Network => {
            let tcp = upgrade(
                tcp::tokio::Transport::new(tcp::Config::new().nodelay(true)),
                keypair,
            )?;
            let quic = quic::tokio::Transport::new(quic::Config::new(keypair))
                .map(|(peer, connection), _| (peer, StreamMuxerBox::new(connection)));
            let sockets = OrTransport::new(quic, tcp).map(|either, _| match either {
                Either::Left(out) | Either::Right(out) => out,
            });
            let resolved = match dns::tokio::Transport::system(sockets) {
                Ok(transport) => transport.boxed(),
                Err(err) => {
                    tracing::warn!(%err, "no system DNS configuration; /dns addresses will not resolve");
                    let tcp = upgrade(
                        tcp::tokio::Transport::new(tcp::Config::new().nodelay(true)),
                        keypair,
                    )?;
                    let quic = quic::tokio::Transport::new(quic::Config::new(keypair))
                        .map(|(peer, connection), _| (peer, StreamMuxerBox::new(connection)));
                    OrTransport::new(quic, tcp)
                        .map(|either, _| match either {
                            Either::Left(out) | Either::Right(out) => out,
                        })
                        .boxed()
                }
            };
            Ok(resolved)
        }
        TransportConfig::Memory => upgrade(MemoryTransport::default(), keypair),
        TransportConfig::Custom(factory) => {
            factory(keypair).map_err(|err| OverlayError::Transport(err.to_string()))
        }
    }
}

/// Adds the relay client transport beside the base transport.
pub(crate) fn with_relay(
    base: BoxedTransport,
    relay: relay::client::Transport,
    keypair: &Keypair,
) -> Result<BoxedTransport, OverlayError> {
    let relayed = upgrade(relay, keypair)?;
    Ok(OrTransport::new(relayed, base)
        .map(|either, _| match either {
            Either::Left(out) | Either::Right(out) => out,
        })
        .boxed())
}
