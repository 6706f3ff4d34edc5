//! [`SledLedger`]: the [`LedgerStore`] and [`PrivateStore`] on one sled
//! database.
//!
//! An append takes the ledger's write lock, reads the feed's head, applies
//! [`check_append`], and writes the entry with its index records (see
//! [`crate::keys`] for the layout) as ordered single inserts behind a redo
//! journal record ([`crate::journal`]), so after a crash the ledger holds
//! the whole append or none of it. The write lock also covers prunes, so
//! the check-then-write of a feed is never interleaved. After the inserts
//! the append registers with the group committer ([`crate::group_commit`])
//! and its ticket resolves once a flush has made it durable. Reads take no
//! lock; the insert order keeps what they see consistent.
//!
//! Pruning walks the log's timeline below the requested lamport clock in
//! chunks of [`PRUNE_CHUNK`] records, each one atomic `apply_batch` (prunes
//! are rare, so the batch's global lock costs little) that removes
//! entries with their timeline and hash records and raises the feeds'
//! `first_seq`. Within a feed lamport clocks grow with seq, so a prune
//! removes a prefix of every feed, and heads are never removed.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::Path;

use bytes::Bytes;
use identity_core::{StorageKey, UserId};
use messaging_proto::{EntryHash, LogId, SpaceId, VerifiedEntry};
use parking_lot::Mutex;
use zeroize::Zeroizing;

use crate::append_rules::{AppendDecision, check_append};
use crate::digest::LogDigestBuilder;
use crate::error::LedgerError;
use crate::group_commit::{Durable, GroupCommit};
use crate::journal::{self, AppendState, JOURNAL_KEY};
use crate::keys::{self, Location, LogMeta};
use crate::private::{MAX_PRIVATE_SCAN, PrivateCipher, PrivatePair, PrivateStore};
use crate::store::{
    AppendOutcome, AuthorHead, Equivocation, FeedHead, HeadsPage, LedgerStats, LedgerStore,
    LogDigestInfo, LogStats, MAX_EQUIVOCATIONS_LISTED, MAX_EVIDENCE_PER_FEED, MAX_HEADS_PAGE,
    MAX_LOGS_PER_SPACE, PruneReport, RangeChunk, clamp_range_bytes, clamp_range_limit,
};
use crate::timeline::{MAX_TIMELINE_PAGE, TimelineItem, TimelinePage, TimelinePosition};

/// Timeline records a prune handles per atomic batch.
pub const PRUNE_CHUNK: usize = 4_096;

/// Default size of sled's page cache.
pub const DEFAULT_CACHE_BYTES: u64 = 128 * 1024 * 1024;

/// When a write counts as done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Tickets resolve after a group-commit flush (the only mode for real
    /// use).
    #[default]
    GroupCommit,
    /// Tickets resolve at once and nothing is flushed except by sled's own
    /// timer (every second) and explicit [`LedgerStore::flush`] calls.
    /// **Unsafe for real use**: acknowledged writes can be lost in a
    /// crash. Exists as the "no flush" baseline of the benchmarks.
    NoFlush,
}

/// How to open a [`SledLedger`].
#[derive(Clone, Debug)]
pub struct OpenOptions {
    durability: Durability,
    cache_bytes: u64,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            durability: Durability::GroupCommit,
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

impl OpenOptions {
    /// Group commit and a [`DEFAULT_CACHE_BYTES`] cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets when writes count as done.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets the size of sled's page cache.
    pub fn cache_bytes(mut self, bytes: u64) -> Self {
        self.cache_bytes = bytes;
        self
    }
}

/// How long opening waits for the directory's lock: sled's background
/// threads of a ledger just dropped in this process (a restart) may hold it
/// for a moment after the drop.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens sled, waiting up to [`LOCK_WAIT`] while the directory is locked.
fn open_when_unlocked(config: &sled::Config) -> Result<sled::Db, LedgerError> {
    let started = std::time::Instant::now();
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(err))
                if err.to_string().contains("could not acquire lock")
                    && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(err) => return Err(LedgerError::storage("open the database")(err)),
        }
    }
}

/// The sled-backed ledger. Dropping it flushes pending writes and stops
/// its committer thread.
pub struct SledLedger {
    db: sled::Db,
    /// Serializes the check-then-write of appends and prunes; holds whether
    /// a failed append left its records half written (then the journal is
    /// replayed before the next write).
    write_lock: Mutex<bool>,
    /// `None` in [`Durability::NoFlush`] mode.
    commit: Option<GroupCommit>,
    private: PrivateCipher,
    storage_key_matches: bool,
}

impl std::fmt::Debug for SledLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledLedger")
            .field("group_commit", &self.commit.is_some())
            .field("storage_key_matches", &self.storage_key_matches)
            .finish_non_exhaustive()
    }
}

impl SledLedger {
    /// Opens (or creates) the ledger in directory `path` with group commit.
    ///
    /// # Errors
    /// [`LedgerError::Storage`] if sled cannot open the directory (for
    /// example another process holds it), [`LedgerError::UnsupportedFormat`]
    /// for a database of another format version.
    pub fn open(path: impl AsRef<Path>, storage_key: &StorageKey) -> Result<Self, LedgerError> {
        Self::open_with(path, storage_key, OpenOptions::default())
    }

    /// Opens (or creates) the ledger with explicit options.
    ///
    /// # Errors
    /// As [`SledLedger::open`].
    pub fn open_with(
        path: impl AsRef<Path>,
        storage_key: &StorageKey,
        options: OpenOptions,
    ) -> Result<Self, LedgerError> {
        let path = path.as_ref();
        let flush_every = match options.durability {
            // The committer flushes; a timer would only add writes.
            Durability::GroupCommit => None,
            Durability::NoFlush => Some(1_000),
        };
        let config = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(options.cache_bytes)
            .flush_every_ms(flush_every);
        let db = open_when_unlocked(&config)?;
        check_format(&db)?;
        if journal::recover(&db)? {
            tracing::debug!("checked the last append after reopening");
        }
        let private = PrivateCipher::new(storage_key);
        let storage_key_matches = match db
            .get(keys::PRIVATE_CHECK_KEY)
            .map_err(LedgerError::storage("read"))?
        {
            Some(sealed) => private.verify_check(&sealed),
            None => {
                db.insert(keys::PRIVATE_CHECK_KEY, private.seal_check()?)
                    .map_err(LedgerError::storage("write"))?;
                true
            }
        };
        if !storage_key_matches {
            tracing::warn!("ledger opened with a storage key that does not match its private data");
        }
        db.flush().map_err(LedgerError::storage("flush"))?;
        let commit = match options.durability {
            Durability::GroupCommit => {
                let flush_db = db.clone();
                Some(GroupCommit::start(Box::new(move || {
                    flush_db
                        .flush()
                        .map(drop)
                        .map_err(LedgerError::storage("flush"))
                }))?)
            }
            Durability::NoFlush => None,
        };
        tracing::debug!(path = %path.display(), durability = ?options.durability, "ledger opened");
        Ok(Self {
            db,
            write_lock: Mutex::new(false),
            commit,
            private,
            storage_key_matches,
        })
    }

    /// Whether the ledger was opened with the storage key that wrote its
    /// private data. If not, every private operation fails.
    pub fn storage_key_matches(&self) -> bool {
        self.storage_key_matches
    }

    /// A ticket for everything written so far.
    fn ticket(&self) -> Durable {
        match &self.commit {
            Some(commit) => commit.register(),
            None => Durable::resolved(Ok(())),
        }
    }

    fn get_raw(&self, key: &[u8]) -> Result<Option<sled::IVec>, LedgerError> {
        self.db.get(key).map_err(LedgerError::storage("read"))
    }

    fn read_head(&self, log: &LogId, author: &UserId) -> Result<Option<FeedHead>, LedgerError> {
        self.get_raw(&keys::head_key(log, author))?
            .map(|bytes| keys::decode_head(&bytes))
            .transpose()
    }

    fn read_meta(&self, log: &LogId) -> Result<Option<LogMeta>, LedgerError> {
        self.get_raw(&keys::log_key(log))?
            .map(|bytes| LogMeta::decode(&bytes))
            .transpose()
    }

    /// The hash of the stored entry at `seq` (the entry is hashed again:
    /// this only runs for duplicates and equivocations below the head).
    fn stored_hash(
        &self,
        log: &LogId,
        author: &UserId,
        seq: u64,
    ) -> Result<Option<EntryHash>, LedgerError> {
        Ok(self
            .get_raw(&keys::entry_key(log, author, seq))?
            .map(|bytes| EntryHash::of(&bytes)))
    }

    /// Checks and writes one entry under the write lock.
    fn append_locked(&self, entry: &VerifiedEntry) -> Result<AppendOutcome, LedgerError> {
        let mut torn = self.write_lock.lock();
        self.repair(&mut torn)?;
        let log = entry.log_id();
        let author = entry.author();
        let head = self.read_head(&log, author)?;
        match check_append(head.as_ref(), entry, |seq| {
            self.stored_hash(&log, author, seq)
        })? {
            AppendDecision::Duplicate => Ok(AppendOutcome::Duplicate),
            AppendDecision::Equivocation { kept } => {
                self.record_equivocation(entry, kept)?;
                Err(LedgerError::Equivocation {
                    author: *author,
                    seq: entry.seq(),
                    kept,
                    conflicting: entry.hash(),
                })
            }
            AppendDecision::Append => {
                if let Err(err) = self.write_entry(entry, head) {
                    *torn = true;
                    return Err(err);
                }
                Ok(AppendOutcome::Appended)
            }
        }
    }

    /// Completes a half-written append (after a storage error) before the
    /// next write; `torn` is the write lock's flag.
    fn repair(&self, torn: &mut bool) -> Result<(), LedgerError> {
        if *torn {
            journal::recover(&self.db)?;
            *torn = false;
        }
        Ok(())
    }

    /// Writes an entry and its records in journal order (see
    /// [`crate::journal`]).
    fn write_entry(
        &self,
        entry: &VerifiedEntry,
        head: Option<FeedHead>,
    ) -> Result<(), LedgerError> {
        let log = entry.log_id();
        let state = AppendState::after(entry, head.as_ref(), self.read_meta(&log)?);
        let insert = |key: &[u8], value: &[u8]| {
            self.db
                .insert(key, value)
                .map(drop)
                .map_err(LedgerError::storage("append"))
        };
        insert(JOURNAL_KEY, &state.journal(entry))?;
        insert(
            &keys::entry_key(&log, entry.author(), entry.seq()),
            entry.encoded(),
        )?;
        for (key, value) in state.index_records(entry) {
            insert(&key, &value)?;
        }
        Ok(())
    }

    /// Stores the evidence of an equivocation (once per conflicting entry,
    /// at most [`MAX_EVIDENCE_PER_FEED`] per feed).
    fn record_equivocation(
        &self,
        entry: &VerifiedEntry,
        kept: EntryHash,
    ) -> Result<(), LedgerError> {
        let log = entry.log_id();
        let author = entry.author();
        tracing::warn!(
            log = ?log, author = %author, seq = entry.seq(), kept = ?kept, conflicting = ?entry.hash(),
            "author equivocated"
        );
        let key = keys::equivocation_key(&log, author, entry.seq(), &entry.hash());
        if self.get_raw(&key)?.is_some() {
            return Ok(());
        }
        let recorded = self
            .db
            .scan_prefix(keys::equivocation_feed_prefix(&log, author))
            .take(MAX_EVIDENCE_PER_FEED)
            .count();
        if recorded >= MAX_EVIDENCE_PER_FEED {
            return Ok(());
        }
        let mut value = Vec::with_capacity(32 + entry.len());
        value.extend_from_slice(kept.as_bytes());
        value.extend_from_slice(entry.encoded());
        self.db
            .insert(key, value)
            .map_err(LedgerError::storage("record equivocation"))?;
        // Evidence need not be acknowledged; it is flushed with the group.
        drop(self.ticket());
        Ok(())
    }

    /// Reads timeline records in the given key range and direction.
    fn timeline_page(
        &self,
        log: &LogId,
        range: (Bound<Vec<u8>>, Bound<Vec<u8>>),
        newest_first: bool,
        limit: usize,
    ) -> Result<TimelinePage, LedgerError> {
        let limit = limit.min(MAX_TIMELINE_PAGE);
        let iter = self.db.range(range);
        let mut iter: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> =
            if newest_first {
                Box::new(iter.rev())
            } else {
                Box::new(iter)
            };
        let mut authors = AuthorCache::default();
        let mut page = TimelinePage::default();
        for record in iter.by_ref() {
            if page.items.len() == limit {
                page.more = true;
                break;
            }
            let (key, value) = record.map_err(LedgerError::storage("read timeline"))?;
            let (lamport, author_bytes, seq) = keys::split_timeline_key(&key)?;
            let hash = EntryHash::from_slice(&value).map_err(|_| LedgerError::Corrupt {
                what: "timeline record",
            })?;
            let location = Location {
                log: *log,
                author: author_bytes,
                seq,
            };
            // A prune running concurrently may have just removed it.
            let Some(entry) = self.get_raw(&location.entry_key())? else {
                continue;
            };
            page.items.push(TimelineItem {
                position: TimelinePosition {
                    lamport,
                    author: authors.get(author_bytes)?,
                    seq,
                },
                hash,
                entry: Bytes::copy_from_slice(&entry),
            });
        }
        Ok(page)
    }

    /// Removes up to `chunk` timeline records below `before_lamport`
    /// after `cursor`; returns the next cursor, or `None` when done.
    fn prune_chunk(
        &self,
        log: &LogId,
        before_lamport: u64,
        cursor: Bound<Vec<u8>>,
        chunk: usize,
        report: &mut PruneReport,
    ) -> Result<Option<Vec<u8>>, LedgerError> {
        let mut torn = self.write_lock.lock();
        self.repair(&mut torn)?;
        let end = keys::timeline_lamport_bound(log, before_lamport).to_vec();
        let mut heads: HashMap<[u8; 32], FeedHead> = HashMap::new();
        let mut new_first: BTreeMap<[u8; 32], u64> = BTreeMap::new();
        let mut batch = sled::Batch::default();
        let mut removed_entries = 0u64;
        let mut removed_bytes = 0u64;
        let mut last_key = None;
        let mut scanned = 0;
        for record in self.db.range((cursor, Bound::Excluded(end))).take(chunk) {
            scanned += 1;
            let (key, value) = record.map_err(LedgerError::storage("read timeline"))?;
            let (_, author_bytes, seq) = keys::split_timeline_key(&key)?;
            last_key = Some(key.to_vec());
            let head = match heads.get(&author_bytes) {
                Some(head) => *head,
                None => {
                    let author = keys::stored_author(author_bytes)?;
                    let head = self.read_head(log, &author)?.ok_or(LedgerError::Corrupt {
                        what: "head record",
                    })?;
                    heads.insert(author_bytes, head);
                    head
                }
            };
            if seq >= head.seq {
                continue;
            }
            let location = Location {
                log: *log,
                author: author_bytes,
                seq,
            };
            let entry_key = location.entry_key();
            if let Some(entry) = self.get_raw(&entry_key)? {
                removed_bytes =
                    removed_bytes.saturating_add(u64::try_from(entry.len()).unwrap_or(u64::MAX));
            }
            removed_entries += 1;
            batch.remove(&entry_key[..]);
            batch.remove(key);
            let hash = EntryHash::from_slice(&value).map_err(|_| LedgerError::Corrupt {
                what: "timeline record",
            })?;
            batch.remove(&keys::hash_key(&hash)[..]);
            let first = new_first.entry(author_bytes).or_insert(0);
            *first = (*first).max(seq + 1);
        }
        if removed_entries > 0 {
            for (author_bytes, first_seq) in &new_first {
                let Some(head) = heads.get(author_bytes) else {
                    continue;
                };
                let updated = FeedHead {
                    first_seq: head.first_seq.max(*first_seq),
                    ..*head
                };
                let author = keys::stored_author(*author_bytes)?;
                batch.insert(
                    &keys::head_key(log, &author)[..],
                    &keys::encode_head(&updated)[..],
                );
            }
            let meta = self.read_meta(log)?.ok_or(LedgerError::Corrupt {
                what: "log summary",
            })?;
            let meta = LogMeta {
                entries: meta.entries.saturating_sub(removed_entries),
                bytes: meta.bytes.saturating_sub(removed_bytes),
                ..meta
            };
            batch.insert(&keys::log_key(log)[..], &meta.encode()[..]);
            // The journal's head and summary are outdated from now on.
            batch.remove(JOURNAL_KEY);
            self.db
                .apply_batch(batch)
                .map_err(LedgerError::storage("prune"))?;
            report.removed_entries += removed_entries;
            report.removed_bytes += removed_bytes;
        }
        Ok(if scanned == chunk { last_key } else { None })
    }

    /// [`LedgerStore::prune`] in atomic chunks of `chunk` timeline records.
    fn prune_in_chunks(
        &self,
        log: &LogId,
        before_lamport: u64,
        chunk: usize,
    ) -> Result<PruneReport, LedgerError> {
        let mut report = PruneReport::default();
        let mut cursor = Bound::Included(keys::timeline_prefix(log).to_vec());
        // Each chunk takes the write lock on its own, so appends go on
        // between chunks of a long prune.
        while let Some(last) =
            self.prune_chunk(log, before_lamport, cursor, chunk.max(1), &mut report)?
        {
            cursor = Bound::Excluded(last);
        }
        if report.removed_entries > 0 {
            self.ticket().wait()?;
            tracing::debug!(log = ?log, removed = report.removed_entries, "pruned log");
        }
        Ok(report)
    }

    fn check_private_key(&self) -> Result<(), LedgerError> {
        if self.storage_key_matches {
            Ok(())
        } else {
            Err(LedgerError::PrivateDecryptFailed {
                reason: "the ledger was opened with another storage key",
            })
        }
    }
}

/// Writes the format version of a new database, or checks an existing one.
fn check_format(db: &sled::Db) -> Result<(), LedgerError> {
    match db
        .get(keys::FORMAT_KEY)
        .map_err(LedgerError::storage("read"))?
    {
        Some(bytes) => {
            let found = <[u8; 4]>::try_from(bytes.as_ref())
                .map(u32::from_be_bytes)
                .map_err(|_| LedgerError::Corrupt {
                    what: "format record",
                })?;
            if found != keys::FORMAT_VERSION {
                return Err(LedgerError::UnsupportedFormat {
                    found,
                    supported: keys::FORMAT_VERSION,
                });
            }
        }
        None => {
            db.insert(keys::FORMAT_KEY, &keys::FORMAT_VERSION.to_be_bytes())
                .map_err(LedgerError::storage("write"))?;
        }
    }
    Ok(())
}

/// Checks each stored author once per call (decompressing a point costs
/// microseconds, and a page usually has few authors).
#[derive(Default)]
struct AuthorCache(HashMap<[u8; 32], UserId>);

impl AuthorCache {
    fn get(&mut self, bytes: [u8; 32]) -> Result<UserId, LedgerError> {
        if let Some(author) = self.0.get(&bytes) {
            return Ok(*author);
        }
        let author = keys::stored_author(bytes)?;
        self.0.insert(bytes, author);
        Ok(author)
    }
}

fn prefix_range(prefix: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let end = keys::prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded);
    (Bound::Included(prefix.to_vec()), end)
}

impl LedgerStore for SledLedger {
    fn append(&self, entry: &VerifiedEntry) -> Result<AppendOutcome, LedgerError> {
        let (outcome, ticket) = self.append_deferred(entry)?;
        ticket.wait()?;
        Ok(outcome)
    }

    fn append_deferred(
        &self,
        entry: &VerifiedEntry,
    ) -> Result<(AppendOutcome, Durable), LedgerError> {
        let outcome = self.append_locked(entry)?;
        let ticket = match outcome {
            AppendOutcome::Appended => self.ticket(),
            // A duplicate was stored by an earlier append with its own
            // ticket; nothing new needs flushing.
            AppendOutcome::Duplicate => Durable::resolved(Ok(())),
        };
        Ok((outcome, ticket))
    }

    fn get(&self, log: &LogId, author: &UserId, seq: u64) -> Result<Option<Bytes>, LedgerError> {
        Ok(self
            .get_raw(&keys::entry_key(log, author, seq))?
            .map(|bytes| Bytes::copy_from_slice(&bytes)))
    }

    fn get_by_hash(&self, hash: &EntryHash) -> Result<Option<Bytes>, LedgerError> {
        let Some(location) = self.get_raw(&keys::hash_key(hash))? else {
            return Ok(None);
        };
        let location = Location::decode(&location)?;
        Ok(self
            .get_raw(&location.entry_key())?
            .map(|bytes| Bytes::copy_from_slice(&bytes)))
    }

    fn head(&self, log: &LogId, author: &UserId) -> Result<Option<FeedHead>, LedgerError> {
        self.read_head(log, author)
    }

    fn heads(
        &self,
        log: &LogId,
        after_author: Option<&UserId>,
        limit: usize,
    ) -> Result<HeadsPage, LedgerError> {
        let limit = limit.min(MAX_HEADS_PAGE);
        let prefix = keys::head_prefix(log);
        let (start, end) = prefix_range(&prefix);
        let start = match after_author {
            Some(author) => Bound::Excluded(keys::head_key(log, author).to_vec()),
            None => start,
        };
        let mut page = HeadsPage::default();
        for record in self.db.range((start, end)) {
            if page.heads.len() == limit {
                page.more = true;
                break;
            }
            let (key, value) = record.map_err(LedgerError::storage("read heads"))?;
            page.heads.push(AuthorHead {
                author: keys::stored_author(keys::head_key_author(&key)?)?,
                head: keys::decode_head(&value)?,
            });
        }
        Ok(page)
    }

    fn digest(&self, log: &LogId) -> Result<LogDigestInfo, LedgerError> {
        let mut builder = LogDigestBuilder::new();
        for record in self.db.scan_prefix(keys::head_prefix(log)) {
            let (key, value) = record.map_err(LedgerError::storage("read heads"))?;
            builder.push_raw(&keys::head_key_author(&key)?, &keys::decode_head(&value)?);
        }
        Ok(builder.finish())
    }

    fn logs_in_space(&self, space: &SpaceId) -> Result<Vec<LogId>, LedgerError> {
        let mut logs = Vec::new();
        for record in self.db.scan_prefix(keys::space_prefix(space)) {
            if logs.len() == MAX_LOGS_PER_SPACE {
                return Err(LedgerError::ResultTooLarge {
                    what: "logs in the space",
                    limit: MAX_LOGS_PER_SPACE,
                });
            }
            let (key, _) = record.map_err(LedgerError::storage("read space index"))?;
            logs.push(keys::space_key_log(&key)?);
        }
        Ok(logs)
    }

    fn max_lamport(&self, log: &LogId) -> Result<u64, LedgerError> {
        Ok(self.read_meta(log)?.map_or(0, |meta| meta.max_lamport))
    }

    fn log_stats(&self, log: &LogId) -> Result<LogStats, LedgerError> {
        Ok(self
            .read_meta(log)?
            .map_or_else(LogStats::default, |meta| LogStats {
                entries: meta.entries,
                bytes: meta.bytes,
                authors: meta.authors,
                max_lamport: meta.max_lamport,
            }))
    }

    fn range(
        &self,
        log: &LogId,
        author: &UserId,
        from_seq: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<RangeChunk, LedgerError> {
        let limit = clamp_range_limit(limit);
        let max_bytes = clamp_range_bytes(max_bytes);
        let Some(head) = self.read_head(log, author)? else {
            return Ok(RangeChunk::default());
        };
        let start = from_seq.max(head.first_seq);
        if start > head.seq {
            return Ok(RangeChunk::default());
        }
        let from = keys::entry_key(log, author, start);
        let to = keys::entry_key(log, author, head.seq);
        let mut chunk = RangeChunk::default();
        let mut bytes = 0usize;
        for record in self.db.range(from..=to) {
            let (_, value) = record.map_err(LedgerError::storage("read range"))?;
            let full =
                chunk.entries.len() == limit || bytes.saturating_add(value.len()) > max_bytes;
            if full && !chunk.entries.is_empty() {
                chunk.more = true;
                break;
            }
            bytes = bytes.saturating_add(value.len());
            chunk.entries.push(Bytes::copy_from_slice(&value));
        }
        Ok(chunk)
    }

    fn timeline_before(
        &self,
        log: &LogId,
        before: Option<&TimelinePosition>,
        limit: usize,
    ) -> Result<TimelinePage, LedgerError> {
        let (start, end) = prefix_range(&keys::timeline_prefix(log));
        let end = match before {
            Some(position) => Bound::Excluded(keys::timeline_key(log, position).to_vec()),
            None => end,
        };
        self.timeline_page(log, (start, end), true, limit)
    }

    fn timeline_after(
        &self,
        log: &LogId,
        after: Option<&TimelinePosition>,
        limit: usize,
    ) -> Result<TimelinePage, LedgerError> {
        let (start, end) = prefix_range(&keys::timeline_prefix(log));
        let start = match after {
            Some(position) => Bound::Excluded(keys::timeline_key(log, position).to_vec()),
            None => start,
        };
        self.timeline_page(log, (start, end), false, limit)
    }

    fn equivocations(&self, log: &LogId) -> Result<Vec<Equivocation>, LedgerError> {
        let mut authors = AuthorCache::default();
        let mut found = Vec::new();
        for record in self
            .db
            .scan_prefix(keys::equivocation_prefix(log))
            .take(MAX_EQUIVOCATIONS_LISTED)
        {
            let (key, value) = record.map_err(LedgerError::storage("read equivocations"))?;
            let (author, seq, conflicting) = keys::split_equivocation_key(&key)?;
            if value.len() < 32 {
                return Err(LedgerError::Corrupt {
                    what: "equivocation record",
                });
            }
            let (kept, entry) = value.split_at(32);
            found.push(Equivocation {
                author: authors.get(author)?,
                seq,
                kept: EntryHash::from_slice(kept).map_err(|_| LedgerError::Corrupt {
                    what: "equivocation record",
                })?,
                conflicting,
                conflicting_entry: Bytes::copy_from_slice(entry),
            });
        }
        Ok(found)
    }

    fn prune(&self, log: &LogId, before_lamport: u64) -> Result<PruneReport, LedgerError> {
        self.prune_in_chunks(log, before_lamport, PRUNE_CHUNK)
    }

    fn stats(&self) -> Result<LedgerStats, LedgerError> {
        let mut stats = LedgerStats::default();
        for record in self.db.scan_prefix(keys::LOG_PREFIX) {
            let (_, value) = record.map_err(LedgerError::storage("read log summaries"))?;
            let meta = LogMeta::decode(&value)?;
            stats.entries += meta.entries;
            stats.entry_bytes += meta.bytes;
            stats.logs += 1;
        }
        Ok(stats)
    }

    fn flush(&self) -> Result<(), LedgerError> {
        self.db
            .flush()
            .map(drop)
            .map_err(LedgerError::storage("flush"))
    }
}

impl PrivateStore for SledLedger {
    fn put_private(
        &self,
        namespace: &str,
        key: &[u8],
        value: &[u8],
    ) -> Result<Durable, LedgerError> {
        self.check_private_key()?;
        let stored_key = self.private.stored_key(namespace, key)?;
        let sealed = self.private.seal(&stored_key, key, value)?;
        self.db
            .insert(stored_key, sealed)
            .map_err(LedgerError::storage("write private record"))?;
        Ok(self.ticket())
    }

    fn get_private(
        &self,
        namespace: &str,
        key: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, LedgerError> {
        self.check_private_key()?;
        let stored_key = self.private.stored_key(namespace, key)?;
        let Some(sealed) = self.get_raw(&stored_key)? else {
            return Ok(None);
        };
        let (stored, value) = self.private.open(&stored_key, &sealed)?;
        if stored.as_slice() != key {
            return Err(LedgerError::PrivateDecryptFailed {
                reason: "the record belongs to another key",
            });
        }
        Ok(Some(value))
    }

    fn delete_private(&self, namespace: &str, key: &[u8]) -> Result<Durable, LedgerError> {
        self.check_private_key()?;
        let stored_key = self.private.stored_key(namespace, key)?;
        self.db
            .remove(stored_key)
            .map_err(LedgerError::storage("delete private record"))?;
        Ok(self.ticket())
    }

    fn scan_private(&self, namespace: &str) -> Result<Vec<PrivatePair>, LedgerError> {
        self.check_private_key()?;
        let prefix = keys::private_prefix(&self.private.namespace_tag(namespace)?);
        let mut pairs = Vec::new();
        for record in self.db.scan_prefix(prefix) {
            if pairs.len() == MAX_PRIVATE_SCAN {
                return Err(LedgerError::ResultTooLarge {
                    what: "private records in the namespace",
                    limit: MAX_PRIVATE_SCAN,
                });
            }
            let (stored_key, sealed) =
                record.map_err(LedgerError::storage("read private records"))?;
            let (key, value) = self.private.open(&stored_key, &sealed)?;
            pairs.push((key.to_vec(), value));
        }
        Ok(pairs)
    }
}

#[cfg(test)]
mod tests {
    use crate::conformance::{LOG, all_range, all_timeline, feed, rng, writer};

    use super::*;

    fn open(dir: &Path) -> SledLedger {
        SledLedger::open(dir, &StorageKey::from_bytes([1; 32])).unwrap()
    }

    #[test]
    fn prune_in_small_chunks_matches_one_big_prune() {
        let mut rng = rng(1);
        let feeds: Vec<_> = (1..=3)
            .map(|seed| feed(&mut writer(seed, LOG), &mut rng, 9))
            .collect();
        let mut results = Vec::new();
        for chunk in [1, 2, 5, PRUNE_CHUNK] {
            let dir = tempfile::tempdir().unwrap();
            let ledger = open(dir.path());
            for entries in &feeds {
                crate::conformance::append_all(&ledger, entries);
            }
            let report = ledger.prune_in_chunks(&LOG, 7, chunk).unwrap();
            assert_eq!(report.removed_entries, 18, "chunk {chunk}");
            let heads = crate::conformance::all_heads(&ledger, &LOG);
            assert!(heads.iter().all(|head| head.head.first_seq == 7));
            for entries in &feeds {
                assert_eq!(all_range(&ledger, &LOG, entries[0].author()).len(), 3);
            }
            results.push((
                report,
                heads,
                all_timeline(&ledger, &LOG),
                ledger.stats().unwrap(),
            ));
        }
        assert!(results.windows(2).all(|pair| pair[0] == pair[1]));
    }

    #[test]
    fn an_interrupted_append_is_completed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let entries = feed(&mut writer(1, LOG), &mut rng(3), 3);
        let author = *entries[0].author();
        {
            let ledger = open(dir.path());
            crate::conformance::append_all(&ledger, &entries[..1]);
            // A crash after the journal and the entry of seq 2 were written.
            let head = ledger.head(&LOG, &author).unwrap();
            let state =
                AppendState::after(&entries[1], head.as_ref(), ledger.read_meta(&LOG).unwrap());
            ledger
                .db
                .insert(JOURNAL_KEY, state.journal(&entries[1]))
                .unwrap();
            let key = keys::entry_key(&LOG, &author, 2);
            ledger
                .db
                .insert(key, entries[1].encoded().as_ref())
                .unwrap();
            ledger.flush().unwrap();
        }
        {
            let ledger = open(dir.path());
            assert_eq!(
                ledger.head(&LOG, &author).unwrap().unwrap().hash,
                entries[1].hash()
            );
            assert_eq!(all_timeline(&ledger, &LOG).len(), 2);
            assert_eq!(ledger.stats().unwrap().entries, 2);
            assert!(ledger.get_by_hash(&entries[1].hash()).unwrap().is_some());
            assert_eq!(ledger.get_raw(JOURNAL_KEY).unwrap(), None);
            // A crash right after the journal record: nothing to redo.
            let head = ledger.head(&LOG, &author).unwrap();
            let state =
                AppendState::after(&entries[2], head.as_ref(), ledger.read_meta(&LOG).unwrap());
            ledger
                .db
                .insert(JOURNAL_KEY, state.journal(&entries[2]))
                .unwrap();
            ledger.flush().unwrap();
        }
        let ledger = open(dir.path());
        assert_eq!(ledger.head(&LOG, &author).unwrap().unwrap().seq, 2);
        assert_eq!(ledger.stats().unwrap().entries, 2);
        crate::conformance::append_all(&ledger, &entries[2..]);
    }

    #[test]
    fn a_torn_append_is_completed_before_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let entries = feed(&mut writer(1, LOG), &mut rng(5), 3);
        let author = *entries[0].author();
        let ledger = open(dir.path());
        crate::conformance::append_all(&ledger, &entries[..1]);
        // As if inserting seq 2 failed after its journal and entry.
        let head = ledger.head(&LOG, &author).unwrap();
        let state = AppendState::after(&entries[1], head.as_ref(), ledger.read_meta(&LOG).unwrap());
        ledger
            .db
            .insert(JOURNAL_KEY, state.journal(&entries[1]))
            .unwrap();
        let key = keys::entry_key(&LOG, &author, 2);
        ledger
            .db
            .insert(key, entries[1].encoded().as_ref())
            .unwrap();
        *ledger.write_lock.lock() = true;
        crate::conformance::append_all(&ledger, &entries[2..]);
        assert_eq!(ledger.stats().unwrap().entries, 3);
        assert_eq!(all_timeline(&ledger, &LOG).len(), 3);
    }

    #[test]
    fn a_prune_is_not_undone_by_the_journal_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let entries = feed(&mut writer(1, LOG), &mut rng(4), 5);
        {
            let ledger = open(dir.path());
            crate::conformance::append_all(&ledger, &entries);
            assert_eq!(ledger.prune(&LOG, 4).unwrap().removed_entries, 3);
        }
        let ledger = open(dir.path());
        assert_eq!(
            ledger
                .head(&LOG, entries[0].author())
                .unwrap()
                .unwrap()
                .first_seq,
            4
        );
        assert_eq!(ledger.stats().unwrap().entries, 2);
    }

    #[test]
    fn a_tampered_private_value_fails_to_decrypt() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = open(dir.path());
        ledger
            .put_private("ns", b"key", b"value")
            .unwrap()
            .wait()
            .unwrap();
        let stored_key = ledger.private.stored_key("ns", b"key").unwrap();
        let mut sealed = ledger.db.get(stored_key).unwrap().unwrap().to_vec();
        sealed[30] ^= 0x01;
        ledger.db.insert(stored_key, sealed).unwrap();
        let err = ledger.get_private("ns", b"key").unwrap_err();
        assert_eq!(err.code(), "ledger.private_decrypt_failed");
        assert_eq!(
            ledger.scan_private("ns").unwrap_err().code(),
            "ledger.private_decrypt_failed"
        );

        // A valid record copied under another key is refused too.
        ledger
            .put_private("ns", b"other", b"value 2")
            .unwrap()
            .wait()
            .unwrap();
        let other = ledger.private.stored_key("ns", b"other").unwrap();
        let moved = ledger.db.get(other).unwrap().unwrap();
        ledger.db.insert(stored_key, moved).unwrap();
        assert!(ledger.get_private("ns", b"key").is_err());
    }

    #[test]
    fn another_format_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let ledger = open(dir.path());
            ledger
                .db
                .insert(keys::FORMAT_KEY, &99u32.to_be_bytes())
                .unwrap();
            ledger.flush().unwrap();
        }
        let err = SledLedger::open(dir.path(), &StorageKey::from_bytes([1; 32])).unwrap_err();
        assert_eq!(
            err,
            LedgerError::UnsupportedFormat {
                found: 99,
                supported: keys::FORMAT_VERSION,
            }
        );
    }

    #[test]
    fn damaged_records_read_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = open(dir.path());
        let entry = feed(&mut writer(1, LOG), &mut rng(2), 1).remove(0);
        ledger.append(&entry).unwrap();
        ledger
            .db
            .insert(keys::head_key(&LOG, entry.author()), &[1u8, 2, 3])
            .unwrap();
        assert_eq!(
            ledger.head(&LOG, entry.author()).unwrap_err().code(),
            "ledger.corrupt"
        );
        assert_eq!(ledger.digest(&LOG).unwrap_err().code(), "ledger.corrupt");
    }
}
