//! The one error type of this crate.

use libp2p::PeerId;
use messaging_proto::{ProtoError, ServerId};

/// Why an overlay operation failed. [`OverlayError::code`] gives a stable
/// machine-readable string for each variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OverlayError {
    /// The overlay's event loop has stopped (shut down or crashed).
    #[error("the network overlay has stopped")]
    Stopped,
    /// The transport could not be built.
    #[error("could not set up the network transport: {0}")]
    Transport(String),
    /// A listen address was refused.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A dial failed.
    #[error("cannot reach {target}: {reason}")]
    Dial {
        /// The peer or address.
        target: String,
        /// Why.
        reason: String,
    },
    /// A request to a peer failed (timeout, connection lost, protocol refused).
    #[error("request to {peer} failed: {reason}")]
    Request {
        /// The peer.
        peer: Box<PeerId>,
        /// Why.
        reason: String,
    },
    /// A peer answered with bytes that do not decode or break a limit.
    #[error("peer {peer} sent an invalid response: {error}")]
    InvalidResponse {
        /// The peer.
        peer: Box<PeerId>,
        /// What was wrong.
        error: Box<ProtoError>,
    },
    /// No valid advert for the server was found in the DHT.
    #[error("no valid advert found for server {0}")]
    AdvertNotFound(ServerId),
    /// Adverts for the server were found in the DHT but none verifies here,
    /// e.g. because our clock is further from the owner's than the protocol
    /// tolerates (`advert.expired`, `advert.expiry_too_far`).
    #[error("the adverts found for server {server} are refused: [{}] {error}", error.code())]
    AdvertRejected {
        /// The server.
        server: ServerId,
        /// Why the last advert found was refused.
        error: Box<ProtoError>,
    },
    /// A DHT operation failed.
    #[error("DHT operation failed: {0}")]
    Dht(String),
    /// An advert given to publish does not verify.
    #[error("invalid advert: {0}")]
    InvalidAdvert(Box<ProtoError>),
    /// The server's topic is not subscribed.
    #[error("not subscribed to server {0}")]
    NotSubscribed(ServerId),
    /// Gossipsub refused a publish for another reason than "no peers yet".
    #[error("gossip publish failed: {0}")]
    Publish(String),
    /// Too many requests are waiting; try again shortly.
    #[error("the overlay is busy; try again shortly")]
    Busy,
    /// The inbound request was already answered, timed out or is unknown.
    #[error("unknown or expired inbound request")]
    UnknownRequest,
    /// The configuration is invalid.
    #[error("invalid network configuration: {0}")]
    Config(String),
}

impl OverlayError {
    /// A stable machine-readable code, e.g. `overlay.dial_failed`. Codes are
    /// only ever added, never renamed.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Stopped => "overlay.stopped",
            Self::Transport(_) => "overlay.transport",
            Self::Listen { .. } => "overlay.listen_failed",
            Self::Dial { .. } => "overlay.dial_failed",
            Self::Request { .. } => "overlay.request_failed",
            Self::InvalidResponse { .. } => "overlay.invalid_response",
            Self::AdvertNotFound(_) => "overlay.advert_not_found",
            Self::AdvertRejected { .. } => "overlay.advert_rejected",
            Self::Dht(_) => "overlay.dht",
            Self::InvalidAdvert(_) => "overlay.invalid_advert",
            Self::NotSubscribed(_) => "overlay.not_subscribed",
            Self::Publish(_) => "overlay.publish_failed",
            Self::Busy => "overlay.busy",
            Self::UnknownRequest => "overlay.unknown_request",
            Self::Config(_) => "overlay.config",
        }
    }

    /// True when trying again later may succeed (network conditions).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Dial { .. }
                | Self::Request { .. }
                | Self::AdvertNotFound(_)
                | Self::Dht(_)
                | Self::Busy
                | Self::Publish(_)
        )
    }
}
