//! Errors of the node API: a stable category, a stable machine-readable
//! code, a message for people and, where waiting helps, `retry_after_ms`.

use serde::{Deserialize, Serialize};

/// The broad kind of an error. Stable: these names are part of the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCategory {
    /// Bad configuration or arguments.
    Config,
    /// Identity missing, locked or unusable.
    Identity,
    /// Peers unreachable, timeouts.
    Network,
    /// Too many requests; see `retry_after_ms`.
    RateLimited,
    /// Signatures, decryption, keys.
    Crypto,
    /// The local database.
    Storage,
    /// Malformed or invalid protocol data (including invalid invite codes).
    Protocol,
    /// Not allowed by the server's roles.
    Permission,
    /// No such server, channel, message or user.
    NotFound,
    /// A bug or an unexpected state.
    Internal,
}

/// An error returned by the node API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} [{code}]")]
pub struct NodeError {
    /// The broad kind.
    pub category: ErrorCategory,
    /// A stable code such as `ledger.backlink_mismatch` or
    /// `invite.bad_checksum`. Codes are only ever added, never renamed.
    pub code: String,
    /// A message for people; never contains secrets or message text.
    pub message: String,
    /// When to try again, for transient errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl NodeError {
    /// A new error.
    pub fn new(category: ErrorCategory, code: &str, message: impl Into<String>) -> Self {
        Self {
            category,
            code: code.to_owned(),
            message: message.into(),
            retry_after_ms: None,
        }
    }

    /// The same error with a retry hint.
    pub fn retry_after(mut self, ms: u64) -> Self {
        self.retry_after_ms = Some(ms);
        self
    }

    /// A `not_found` error.
    pub fn not_found(code: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorCategory::NotFound, code, message)
    }

    /// A `config` error (bad arguments).
    pub fn invalid(code: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorCategory::Config, code, message)
    }

    /// A `permission` error.
    pub fn permission(code: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorCategory::Permission, code, message)
    }

    /// An `internal` error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCategory::Internal, "internal", message)
    }

    /// The node has stopped.
    pub fn stopped() -> Self {
        Self::new(
            ErrorCategory::Internal,
            "node.stopped",
            "the node has stopped",
        )
    }
}

impl From<messaging_proto::ProtoError> for NodeError {
    fn from(err: messaging_proto::ProtoError) -> Self {
        let category = if err.is_crypto() {
            ErrorCategory::Crypto
        } else {
            ErrorCategory::Protocol
        };
        Self::new(category, err.code(), err.to_string())
    }
}

impl From<storage_ledger::LedgerError> for NodeError {
    fn from(err: storage_ledger::LedgerError) -> Self {
        let category = match err.category() {
            storage_ledger::ErrorCategory::Storage => ErrorCategory::Storage,
            storage_ledger::ErrorCategory::Crypto => ErrorCategory::Crypto,
            storage_ledger::ErrorCategory::Protocol => ErrorCategory::Protocol,
            storage_ledger::ErrorCategory::Internal => ErrorCategory::Internal,
        };
        Self::new(category, err.code(), err.to_string())
    }
}

impl From<net_overlay::OverlayError> for NodeError {
    fn from(err: net_overlay::OverlayError) -> Self {
        let category = match &err {
            net_overlay::OverlayError::Busy => ErrorCategory::RateLimited,
            net_overlay::OverlayError::Config(_) => ErrorCategory::Config,
            net_overlay::OverlayError::InvalidAdvert(_)
            | net_overlay::OverlayError::AdvertRejected { .. }
            | net_overlay::OverlayError::InvalidResponse { .. } => ErrorCategory::Protocol,
            net_overlay::OverlayError::Stopped => ErrorCategory::Internal,
            _ => ErrorCategory::Network,
        };
        let mut error = Self::new(category, err.code(), err.to_string());
        if err.is_transient() {
            error.retry_after_ms = Some(2_000);
        }
        error
    }
}

impl From<identity_core::IdentityError> for NodeError {
    fn from(err: identity_core::IdentityError) -> Self {
        let category = match err.category() {
            identity_core::ErrorCategory::Identity => ErrorCategory::Identity,
            identity_core::ErrorCategory::Crypto => ErrorCategory::Crypto,
            identity_core::ErrorCategory::Storage => ErrorCategory::Storage,
            identity_core::ErrorCategory::Config => ErrorCategory::Config,
        };
        Self::new(category, err.code(), err.to_string())
    }
}

impl From<crate::control::Denied> for NodeError {
    fn from(err: crate::control::Denied) -> Self {
        Self::new(ErrorCategory::Permission, err.code(), err.to_string())
    }
}

impl From<crate::control::FoldError> for NodeError {
    fn from(err: crate::control::FoldError) -> Self {
        Self::new(ErrorCategory::Protocol, err.code(), err.to_string())
    }
}
