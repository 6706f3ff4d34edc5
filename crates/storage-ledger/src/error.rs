//! The crate's single error type.
//!
//! Every rule a ledger enforces has its own [`LedgerError`] variant with a
//! stable machine-readable [`code`](LedgerError::code) (`ledger.<rule>`,
//! only ever added, never renamed) and an [`ErrorCategory`]. Callers match
//! on the variant or the code, never on the `Display` text. The error is
//! `Clone` because one flush failure resolves many durability tickets.

use identity_core::UserId;
use messaging_proto::EntryHash;

/// The broad class of a [`LedgerError`], used by the node to group errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    /// The entry breaks a rule of the feed (seq, backlink, lamport,
    /// equivocation, prune point) or a request is malformed.
    Protocol,
    /// The disk or the database failed, or stored bytes are damaged.
    Storage,
    /// Private data could not be authenticated or decrypted.
    Crypto,
    /// The ledger is shutting down.
    Internal,
}

impl ErrorCategory {
    /// The stable lower-case name (`protocol`, `storage`, `crypto`,
    /// `internal`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Protocol => "protocol",
            Self::Storage => "storage",
            Self::Crypto => "crypto",
            Self::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every way a ledger operation can fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    // ---- append rules ----------------------------------------------------
    /// The entry skips seqs: earlier entries of the feed are missing.
    #[error("seq gap in the author's feed: expected seq {expected}, found {found}")]
    SeqGap {
        /// The seq the feed accepts next.
        expected: u64,
        /// The entry's seq.
        found: u64,
    },
    /// The entry follows the head by seq but names another previous entry.
    #[error("backlink of seq {seq} does not name the feed's head {expected}")]
    BacklinkMismatch {
        /// The entry's seq.
        seq: u64,
        /// The hash of the stored head.
        expected: EntryHash,
        /// The entry's backlink.
        found: Option<EntryHash>,
    },
    /// The author wrote two different entries with the same seq. The first
    /// one stored is kept; the other is recorded as evidence.
    #[error("author {author} equivocated at seq {seq}: kept {kept}, refused {conflicting}")]
    Equivocation {
        /// The author.
        author: UserId,
        /// The seq both entries claim.
        seq: u64,
        /// The entry the ledger holds.
        kept: EntryHash,
        /// The refused entry.
        conflicting: EntryHash,
    },
    /// The entry's lamport clock does not exceed the author's previous one.
    #[error("lamport clock of seq {seq} is {found}, not above the previous entry's {previous}")]
    LamportRegression {
        /// The entry's seq.
        seq: u64,
        /// The lamport clock of the author's previous entry in the log.
        previous: u64,
        /// The entry's lamport clock.
        found: u64,
    },
    /// The entry lies below the point where the feed was pruned.
    #[error("seq {seq} was pruned: the feed holds entries from seq {first_seq} on")]
    BelowPrunePoint {
        /// The entry's seq.
        seq: u64,
        /// The lowest seq still held.
        first_seq: u64,
    },

    // ---- requests --------------------------------------------------------
    /// A timeline cursor string could not be parsed.
    #[error("invalid timeline cursor: {reason}")]
    InvalidCursor {
        /// What was wrong with it.
        reason: &'static str,
    },
    /// A result would exceed a documented bound.
    #[error("too many {what}: the limit is {limit}")]
    ResultTooLarge {
        /// What was being listed.
        what: &'static str,
        /// The bound.
        limit: usize,
    },
    /// A private namespace, key or value exceeds its bound.
    #[error("private {what} is {len} bytes, over the limit of {max}")]
    PrivateTooLarge {
        /// `namespace`, `key` or `value`.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },

    // ---- storage ---------------------------------------------------------
    /// The database or the disk failed.
    #[error("storage failure during {operation}: {message}")]
    Storage {
        /// What the ledger was doing.
        operation: &'static str,
        /// The underlying error's message.
        message: String,
    },
    /// Stored bytes do not decode: the database is damaged.
    #[error("stored {what} is corrupt")]
    Corrupt {
        /// Which record.
        what: &'static str,
    },
    /// The database was written by an incompatible version of this crate.
    #[error("ledger format version {found} is not supported (this build reads {supported})")]
    UnsupportedFormat {
        /// The version on disk.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// Private data failed authentication: the ledger was opened with
    /// another storage key, or the stored value was altered.
    #[error("private data could not be decrypted: {reason}")]
    PrivateDecryptFailed {
        /// Which of the two it is.
        reason: &'static str,
    },
    /// The ledger shut down before the operation completed.
    #[error("the ledger is closed")]
    Closed,
}

impl LedgerError {
    /// The stable machine-readable code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::SeqGap { .. } => "ledger.seq_gap",
            Self::BacklinkMismatch { .. } => "ledger.backlink_mismatch",
            Self::Equivocation { .. } => "ledger.equivocation",
            Self::LamportRegression { .. } => "ledger.lamport_regression",
            Self::BelowPrunePoint { .. } => "ledger.below_prune_point",
            Self::InvalidCursor { .. } => "ledger.invalid_cursor",
            Self::ResultTooLarge { .. } => "ledger.result_too_large",
            Self::PrivateTooLarge { .. } => "ledger.private_too_large",
            Self::Storage { .. } => "ledger.storage",
            Self::Corrupt { .. } => "ledger.corrupt",
            Self::UnsupportedFormat { .. } => "ledger.unsupported_format",
            Self::PrivateDecryptFailed { .. } => "ledger.private_decrypt_failed",
            Self::Closed => "ledger.closed",
        }
    }

    /// The broad class of the error.
    pub fn category(&self) -> ErrorCategory {
        match self {
            Self::SeqGap { .. }
            | Self::BacklinkMismatch { .. }
            | Self::Equivocation { .. }
            | Self::LamportRegression { .. }
            | Self::BelowPrunePoint { .. }
            | Self::InvalidCursor { .. }
            | Self::ResultTooLarge { .. }
            | Self::PrivateTooLarge { .. } => ErrorCategory::Protocol,
            Self::Storage { .. } | Self::Corrupt { .. } | Self::UnsupportedFormat { .. } => {
                ErrorCategory::Storage
            }
            Self::PrivateDecryptFailed { .. } => ErrorCategory::Crypto,
            Self::Closed => ErrorCategory::Internal,
        }
    }

    /// Wraps a database error met while doing `operation`.
    pub(crate) fn storage(operation: &'static str) -> impl FnOnce(sled::Error) -> Self {
        move |err| Self::Storage {
            operation,
            message: err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_namespaced() {
        let hash = EntryHash::from_bytes([1; 32]);
        let cases = [
            (
                LedgerError::SeqGap {
                    expected: 1,
                    found: 3,
                },
                "ledger.seq_gap",
            ),
            (
                LedgerError::BacklinkMismatch {
                    seq: 2,
                    expected: hash,
                    found: None,
                },
                "ledger.backlink_mismatch",
            ),
            (
                LedgerError::LamportRegression {
                    seq: 2,
                    previous: 5,
                    found: 5,
                },
                "ledger.lamport_regression",
            ),
            (
                LedgerError::BelowPrunePoint {
                    seq: 1,
                    first_seq: 4,
                },
                "ledger.below_prune_point",
            ),
            (
                LedgerError::Storage {
                    operation: "flush",
                    message: "disk full".into(),
                },
                "ledger.storage",
            ),
            (LedgerError::Corrupt { what: "head" }, "ledger.corrupt"),
            (
                LedgerError::PrivateDecryptFailed { reason: "x" },
                "ledger.private_decrypt_failed",
            ),
            (LedgerError::Closed, "ledger.closed"),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code);
            assert!(!error.to_string().is_empty());
        }
        let storage = LedgerError::Storage {
            operation: "flush",
            message: "disk full".into(),
        };
        assert!(storage.to_string().contains("disk full"));
        assert_eq!(storage.category(), ErrorCategory::Storage);
        assert_eq!(LedgerError::Closed.category().as_str(), "internal");
    }
}
