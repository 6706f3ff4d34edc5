//! The [`LedgerStore`] trait: what the node and the sync protocol need from
//! a ledger, and the values it returns.
//!
//! A ledger holds, per log, the union of per-author feeds. Appends are
//! checked against the feed's head by the rules in
//! [`crate::append_rules`]; reads are bounded (ranges by
//! [`MAX_RANGE_ENTRIES`] and [`MAX_RANGE_BYTES`], heads pages by
//! [`MAX_HEADS_PAGE`], timeline pages by
//! [`MAX_TIMELINE_PAGE`](crate::MAX_TIMELINE_PAGE)). Every implementation
//! must pass the suite in `conformance` (feature `test-utils`).

use bytes::Bytes;
use identity_core::UserId;
use messaging_proto::{EntryHash, Head, LogId, SpaceId, VerifiedEntry};

use crate::error::LedgerError;
use crate::group_commit::Durable;
use crate::timeline::{TimelinePage, TimelinePosition};

/// Most entries in one range chunk; larger limits are capped to this.
pub const MAX_RANGE_ENTRIES: usize = 4_096;
/// Most bytes of entries in one range chunk (1 MiB, the sync chunk size);
/// larger `max_bytes` are capped to this. A single larger entry is still
/// returned on its own.
pub const MAX_RANGE_BYTES: usize = messaging_proto::limits::MAX_SYNC_CHUNK_BYTES;
/// Most heads in one heads page; larger limits are capped to this.
pub const MAX_HEADS_PAGE: usize = messaging_proto::limits::MAX_HEADS_PER_RESPONSE;
/// Most logs [`LedgerStore::logs_in_space`] lists before it fails with
/// [`LedgerError::ResultTooLarge`].
pub const MAX_LOGS_PER_SPACE: usize = 65_536;
/// Most equivocation records [`LedgerStore::equivocations`] returns (the
/// first ones by author and seq).
pub const MAX_EQUIVOCATIONS_LISTED: usize = 1_024;
/// Most conflicting entries recorded per feed; later ones are still refused
/// but not stored, so an equivocating author cannot fill the disk.
pub const MAX_EVIDENCE_PER_FEED: usize = 8;

/// What an accepted append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The entry is new and was stored.
    Appended,
    /// The same entry was already stored; nothing was written.
    Duplicate,
}

/// The head of one author's feed in a log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedHead {
    /// The latest seq.
    pub seq: u64,
    /// The hash of the latest entry.
    pub hash: EntryHash,
    /// The lamport clock of the latest entry.
    pub lamport: u64,
    /// The lowest seq still held (1 unless pruned).
    pub first_seq: u64,
}

/// A head together with its author, as listed by [`LedgerStore::heads`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthorHead {
    /// The author.
    pub author: UserId,
    /// The author's head.
    pub head: FeedHead,
}

impl AuthorHead {
    /// The head as the sync protocol sends it.
    pub fn to_sync(&self) -> Head {
        Head {
            author: self.author,
            seq: self.head.seq,
            hash: self.head.hash,
            first_seq: self.head.first_seq,
        }
    }
}

/// A page of a log's heads, sorted by author.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeadsPage {
    /// The heads.
    pub heads: Vec<AuthorHead>,
    /// More authors follow; ask again after the last one.
    pub more: bool,
}

/// The digest of a log (see [`crate::digest`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogDigestInfo {
    /// BLAKE3 over the sorted (author, seq, head hash) of every feed.
    pub digest: [u8; 32],
    /// The number of authors with a feed in the log.
    pub author_count: u32,
}

/// A chunk of one author's feed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeChunk {
    /// Encoded `SignedEntry` values in seq order.
    pub entries: Vec<Bytes>,
    /// More entries follow the last one returned.
    pub more: bool,
}

/// Evidence that an author signed two different entries with one seq.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Equivocation {
    /// The author.
    pub author: UserId,
    /// The seq.
    pub seq: u64,
    /// The entry the ledger kept (the first one stored).
    pub kept: EntryHash,
    /// The refused entry.
    pub conflicting: EntryHash,
    /// The refused entry's encoded bytes, signed by the author.
    pub conflicting_entry: Bytes,
}

/// What a prune removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Entries removed.
    pub removed_entries: u64,
    /// Bytes of entries removed.
    pub removed_bytes: u64,
}

/// Totals over the whole ledger.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerStats {
    /// Entries held.
    pub entries: u64,
    /// Bytes of encoded entries held.
    pub entry_bytes: u64,
    /// Logs with at least one feed.
    pub logs: u64,
}

/// A summary of one log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Entries held.
    pub entries: u64,
    /// Bytes of encoded entries held.
    pub bytes: u64,
    /// Authors with a feed in the log.
    pub authors: u64,
    /// The highest lamport clock ever stored in the log.
    pub max_lamport: u64,
}

/// Append-only storage of verified, hash-linked per-author feeds.
///
/// Implementations are shared between threads. Appends to one feed are
/// serialized; an append refused by a rule changes nothing stored, except
/// that an equivocation records its evidence. An append that fails with a
/// storage error is either completed or absent once the ledger next writes
/// or reopens, never half visible after that.
pub trait LedgerStore: Send + Sync {
    /// Appends a verified entry to its (log, author) feed and returns once
    /// the entry is durable.
    ///
    /// # Errors
    /// One variant per append rule (see [`crate::append_rules`]), or a
    /// storage error.
    fn append(&self, entry: &VerifiedEntry) -> Result<AppendOutcome, LedgerError>;

    /// Same checks and insert as [`LedgerStore::append`], but returns at
    /// once with a ticket that resolves when the entry is durable. A
    /// duplicate gets an already-resolved ticket.
    ///
    /// # Errors
    /// As [`LedgerStore::append`].
    fn append_deferred(
        &self,
        entry: &VerifiedEntry,
    ) -> Result<(AppendOutcome, Durable), LedgerError>;

    /// The encoded `SignedEntry` at `seq` of a feed, if held.
    ///
    /// # Errors
    /// Storage errors.
    fn get(&self, log: &LogId, author: &UserId, seq: u64) -> Result<Option<Bytes>, LedgerError>;

    /// The encoded `SignedEntry` with this hash, if held.
    ///
    /// # Errors
    /// Storage errors.
    fn get_by_hash(&self, hash: &EntryHash) -> Result<Option<Bytes>, LedgerError>;

    /// The head of a feed, if the author has written to the log.
    ///
    /// # Errors
    /// Storage errors.
    fn head(&self, log: &LogId, author: &UserId) -> Result<Option<FeedHead>, LedgerError>;

    /// Heads of a log sorted by author, strictly after `after_author`, at
    /// most `limit` (capped at [`MAX_HEADS_PAGE`]).
    ///
    /// # Errors
    /// Storage errors.
    fn heads(
        &self,
        log: &LogId,
        after_author: Option<&UserId>,
        limit: usize,
    ) -> Result<HeadsPage, LedgerError>;

    /// The log's digest: BLAKE3 over the sorted (author 32 B, seq u64 BE,
    /// head hash 32 B) of every feed; an empty log hashes nothing.
    ///
    /// # Errors
    /// Storage errors.
    fn digest(&self, log: &LogId) -> Result<LogDigestInfo, LedgerError>;

    /// The logs holding entries of a space, sorted.
    ///
    /// # Errors
    /// [`LedgerError::ResultTooLarge`] past [`MAX_LOGS_PER_SPACE`]; storage
    /// errors.
    fn logs_in_space(&self, space: &SpaceId) -> Result<Vec<LogId>, LedgerError>;

    /// The highest lamport clock stored in a log, 0 for an empty log. An
    /// author's next entry takes this plus one.
    ///
    /// # Errors
    /// Storage errors.
    fn max_lamport(&self, log: &LogId) -> Result<u64, LedgerError>;

    /// Entries, bytes, authors and the highest lamport clock of a log
    /// (all zero for an unknown log).
    fn log_stats(&self, log: &LogId) -> Result<LogStats, LedgerError>;

    /// Entries of a feed in seq order from `max(from_seq, first_seq)`: at
    /// most `limit` (clamped to 1..=[`MAX_RANGE_ENTRIES`]) and `max_bytes`
    /// (capped at [`MAX_RANGE_BYTES`]), but always at least one entry if
    /// any is held at or after `from_seq`.
    ///
    /// # Errors
    /// Storage errors.
    fn range(
        &self,
        log: &LogId,
        author: &UserId,
        from_seq: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<RangeChunk, LedgerError>;

    /// Up to `limit` timeline items strictly before `before` (newest first);
    /// `None` starts from the newest.
    ///
    /// # Errors
    /// Storage errors.
    fn timeline_before(
        &self,
        log: &LogId,
        before: Option<&TimelinePosition>,
        limit: usize,
    ) -> Result<TimelinePage, LedgerError>;

    /// Up to `limit` timeline items strictly after `after` (oldest first);
    /// `None` starts from the oldest.
    ///
    /// # Errors
    /// Storage errors.
    fn timeline_after(
        &self,
        log: &LogId,
        after: Option<&TimelinePosition>,
        limit: usize,
    ) -> Result<TimelinePage, LedgerError>;

    /// The recorded equivocations of a log, sorted by author and seq (at
    /// most [`MAX_EQUIVOCATIONS_LISTED`]).
    ///
    /// # Errors
    /// Storage errors.
    fn equivocations(&self, log: &LogId) -> Result<Vec<Equivocation>, LedgerError>;

    /// Removes every entry of the log with a lamport clock below
    /// `before_lamport`, except each author's head entry, and raises the
    /// feeds' `first_seq`. Heads and digests do not change.
    ///
    /// # Errors
    /// Storage errors.
    fn prune(&self, log: &LogId, before_lamport: u64) -> Result<PruneReport, LedgerError>;

    /// Totals over the whole ledger.
    ///
    /// # Errors
    /// Storage errors.
    fn stats(&self) -> Result<LedgerStats, LedgerError>;

    /// Makes everything written so far durable.
    ///
    /// # Errors
    /// Storage errors.
    fn flush(&self) -> Result<(), LedgerError>;
}

/// Clamps a range request's limit to 1..=[`MAX_RANGE_ENTRIES`].
pub fn clamp_range_limit(limit: usize) -> usize {
    limit.clamp(1, MAX_RANGE_ENTRIES)
}

/// Caps a range request's byte budget at [`MAX_RANGE_BYTES`].
pub fn clamp_range_bytes(max_bytes: usize) -> usize {
    max_bytes.min(MAX_RANGE_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_bounds_are_clamped() {
        assert_eq!(clamp_range_limit(0), 1);
        assert_eq!(clamp_range_limit(10), 10);
        assert_eq!(clamp_range_limit(usize::MAX), MAX_RANGE_ENTRIES);
        assert_eq!(clamp_range_bytes(usize::MAX), MAX_RANGE_BYTES);
        assert_eq!(clamp_range_bytes(100), 100);
    }
}
