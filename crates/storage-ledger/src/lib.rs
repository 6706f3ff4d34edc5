//! Palaver's ledger: sled-backed, append-only, per-author hash-linked feeds
//! of signed entries, with the indexes that chat and sync need.
//!
//! A *log* (a server's control log, a channel, a DM) is the union of its
//! authors' *feeds*. [`LedgerStore::append`] accepts a verified entry
//! ([`messaging_proto::VerifiedEntry`]) only as the next link of its feed (the rules are in [`append_rules`]),
//! records equivocations as evidence, and returns once the entry is
//! durable; [`LedgerStore::append_deferred`] returns a [`Durable`] ticket
//! instead, so many writes share one flush ([`group_commit`]). Reads serve
//! the sync protocol (heads, digests, ranges in bounded chunks) and the UI
//! (a timeline in display order, paged by cursor). [`PrivateStore`] keeps
//! the node's private data encrypted under the identity's storage key.
//!
//! [`SledLedger`] implements both traits on one sled database; the
//! `conformance` module (feature `test-utils`) is the suite any other
//! implementation must pass.
//!
//! # Example
//!
//! ```
//! use identity_core::Identity;
//! use messaging_proto::test_utils::FeedWriter;
//! use messaging_proto::{EpochKey, LogId, SpaceId};
//! use storage_ledger::{AppendOutcome, LedgerStore, SledLedger};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let alice = Identity::from_secret_bytes(&[7; 32]);
//! let ledger = SledLedger::open(dir.path(), &alice.storage_key())?;
//!
//! let log = LogId::from_bytes([2; 32]);
//! let space = SpaceId::from_bytes([1; 32]);
//! let mut feed = FeedWriter::new(alice, space, log, EpochKey::from_bytes(1, [3; 32]));
//! let entry = feed.text(&mut rand::rng(), "hello");
//!
//! // Returns once the entry is durable; appending it again is a no-op.
//! assert_eq!(ledger.append(&entry)?, AppendOutcome::Appended);
//! assert_eq!(ledger.append(&entry)?, AppendOutcome::Duplicate);
//!
//! let head = ledger.head(&log, entry.author())?.expect("the feed has a head");
//! assert_eq!((head.seq, head.hash), (1, entry.hash()));
//! assert_eq!(ledger.get_by_hash(&entry.hash())?.as_ref(), Some(entry.encoded()));
//! # Ok(())
//! # }
//! ```

pub mod append_rules;
#[cfg(any(test, feature = "test-utils"))]
pub mod conformance;
pub mod digest;
mod error;
pub mod group_commit;
mod journal;
mod keys;
pub mod private;
mod sled_store;
mod store;
mod timeline;

pub use append_rules::AppendDecision;
pub use digest::LogDigestBuilder;
pub use error::{ErrorCategory, LedgerError};
pub use group_commit::{Durable, DurableResolver};
pub use private::PrivateStore;
pub use sled_store::{
    DEFAULT_CACHE_BYTES, Durability, OpenOptions, PRUNE_CHUNK, REOPEN_INTERVAL, SledLedger,
};
pub use store::{
    AppendOutcome, AuthorHead, Equivocation, FeedHead, HeadsPage, LedgerStats, LedgerStore,
    LogDigestInfo, LogStats, MAX_EQUIVOCATIONS_LISTED, MAX_EVIDENCE_PER_FEED, MAX_HEADS_PAGE,
    MAX_LOGS_PER_SPACE, MAX_RANGE_BYTES, MAX_RANGE_ENTRIES, PruneReport, RangeChunk,
    clamp_range_bytes, clamp_range_limit,
};
pub use timeline::{CURSOR_LEN, MAX_TIMELINE_PAGE, TimelineItem, TimelinePage, TimelinePosition};
