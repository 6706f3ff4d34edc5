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
//! lock beyond the moment it takes to clone the open database's handle;
//! the insert order keeps what they see consistent.
//!
//! A storage failure (a full disk, a read-only directory) poisons a sled
//! database: it refuses every write from then on. The ledger keeps the
//! failed database for reads and replaces it, before the next write, with
//! a freshly opened one, which holds exactly what was durable (see
//! [`SledLedger`]). Each opened database has its own committer, and a
//! write's ticket belongs to the database it wrote to, so a flush of the
//! replacement never acknowledges a write the failed one lost.
//!
//! Pruning walks the log's timeline below the requested lamport clock in
//! chunks of [`PRUNE_CHUNK`] records, each one atomic `apply_batch` (prunes
//! are rare, so the batch's global lock costs little) that removes
//! entries with their timeline and hash records and raises the feeds'
//! `first_seq`. Within a feed lamport clocks grow with seq, so a prune
//! removes a prefix of every feed, and heads are never removed.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use identity_core::{StorageKey, UserId};
use messaging_proto::{EntryHash, LogId, SpaceId, VerifiedEntry};
use parking_lot::{Mutex, RwLock};
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
///
/// **Storage failures.** After any failed write or flush (a full disk, a
/// read-only directory, an I/O error) sled refuses every later write until
/// the database is opened again. The ledger keeps the failed database for
/// reads (they may show writes that never became durable), fails writes
/// with [`LedgerError::Storage`], and before the next write (at most once
/// per [`REOPEN_INTERVAL`], and only once a probe write in the directory
/// succeeds) replaces it with a freshly opened one: that holds exactly
/// what was durable, so writes whose tickets failed may be gone.
/// [`SledLedger::recover`] does the same on request.
pub struct SledLedger {
    path: PathBuf,
    options: OpenOptions,
    /// The open database; `None` after a reopen that failed.
    open: RwLock<Option<Arc<Open>>>,
    /// Serializes the check-then-write of appends and prunes; holds whether
    /// a failed append left its records half written (then the journal is
    /// replayed before the next write). A reopen holds it too.
    write_lock: Mutex<bool>,
    /// When the last reopen was tried; held through a reopen.
    recovery: Mutex<Option<Instant>>,
    /// Why the database is closed: a reopen failed after the failed
    /// database was let go. (A leaf lock: nothing is taken while holding
    /// it.)
    closed_by: Mutex<Option<LedgerError>>,
    /// Successful reopens so far (see [`SledLedger::reopens`]).
    reopens: AtomicU64,
    private: PrivateCipher,
    storage_key_matches: bool,
}

/// How often a failed database may be reopened.
pub const REOPEN_INTERVAL: Duration = Duration::from_secs(1);

/// Bytes a probe file must take in the ledger directory before a failed
/// database is reopened: sled writes while it opens (it zeroes the tail of
/// its log, and the journal replays the last append), and a reopen that
/// fails leaves nothing to read from until the next one succeeds.
const REOPEN_PROBE_BYTES: usize = 1 << 20;

/// The probe file's name in the ledger directory.
const REOPEN_PROBE_FILE: &str = "reopen.probe";

/// One opened sled database and the committer that flushes it. Writes
/// register their tickets with the committer of the database they wrote
/// to, so a write to a database that failed can never be acknowledged by a
/// flush of its replacement.
struct Open {
    db: sled::Db,
    /// `None` in [`Durability::NoFlush`] mode.
    commit: Option<GroupCommit>,
    /// The first write or flush failure (shared with the committer).
    failure: Arc<Mutex<Option<LedgerError>>>,
    /// The last append's head and log summary when they are not written
    /// yet (see [`crate::journal`]): the journal record holds them until an
    /// append elsewhere or a prune writes them. Changed only under the
    /// ledger's write lock; reads look here before sled. (A leaf lock.)
    deferred: Mutex<Option<Deferred>>,
}

/// A head and log summary held back from sled (see [`Open::deferred`]).
#[derive(Clone, Copy, Debug)]
struct Deferred {
    log: LogId,
    author: UserId,
    head: FeedHead,
    meta: LogMeta,
}

/// The newer of two values of one feed's head: heads only move forward
/// (seq grows with appends, `first_seq` with prunes), so this is right
/// even when a scan raced with a write-back.
fn newer_head(a: FeedHead, b: FeedHead) -> FeedHead {
    if (b.seq, b.first_seq) > (a.seq, a.first_seq) {
        b
    } else {
        a
    }
}

impl Open {
    /// Opens sled, checks the format, completes an interrupted append and
    /// starts the committer; returns whether `private` matches the stored
    /// private data.
    fn start(
        path: &Path,
        options: &OpenOptions,
        private: &PrivateCipher,
    ) -> Result<(Self, bool), LedgerError> {
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
        db.flush().map_err(LedgerError::storage("flush"))?;
        let failure = Arc::new(Mutex::new(None));
        let commit = match options.durability {
            Durability::GroupCommit => {
                let flush_db = db.clone();
                let flush_failure = Arc::clone(&failure);
                Some(GroupCommit::start(Box::new(move || {
                    let flushed = flush_db
                        .flush()
                        .map(drop)
                        .map_err(LedgerError::storage("flush"));
                    if let Err(err) = &flushed {
                        note_failure(&flush_failure, err);
                    }
                    flushed
                }))?)
            }
            Durability::NoFlush => None,
        };
        Ok((
            Self {
                db,
                commit,
                failure,
                deferred: Mutex::new(None),
            },
            storage_key_matches,
        ))
    }

    /// A ticket for everything written to this database so far.
    fn ticket(&self) -> Durable {
        match &self.commit {
            Some(commit) => commit.register(),
            None => Durable::resolved(Ok(())),
        }
    }

    fn failure(&self) -> Option<LedgerError> {
        self.failure.lock().clone()
    }

    /// Passes `result` on, remembering a storage failure.
    fn checked<T>(&self, result: Result<T, LedgerError>) -> Result<T, LedgerError> {
        if let Err(err) = &result {
            note_failure(&self.failure, err);
        }
        result
    }

    fn get_raw(&self, key: &[u8]) -> Result<Option<sled::IVec>, LedgerError> {
        self.db.get(key).map_err(LedgerError::storage("read"))
    }

    /// A feed's head: the deferred one, else sled's. (The deferred value is
    /// looked at first: it is replaced only after it was written back, so
    /// a miss there means sled holds the newest value.)
    fn read_head(&self, log: &LogId, author: &UserId) -> Result<Option<FeedHead>, LedgerError> {
        if let Some(deferred) = *self.deferred.lock()
            && deferred.log == *log
            && deferred.author == *author
        {
            return Ok(Some(deferred.head));
        }
        self.get_raw(&keys::head_key(log, author))?
            .map(|bytes| keys::decode_head(&bytes))
            .transpose()
    }

    /// A log's summary: the deferred one, else sled's.
    fn read_meta(&self, log: &LogId) -> Result<Option<LogMeta>, LedgerError> {
        if let Some(deferred) = *self.deferred.lock()
            && deferred.log == *log
        {
            return Ok(Some(deferred.meta));
        }
        self.get_raw(&keys::log_key(log))?
            .map(|bytes| LogMeta::decode(&bytes))
            .transpose()
    }

    /// The deferred head of `log`, for scans of its heads.
    fn deferred_head(&self, log: &LogId) -> Option<([u8; 32], FeedHead)> {
        let deferred = (*self.deferred.lock())?;
        (deferred.log == *log).then_some((*deferred.author.as_bytes(), deferred.head))
    }

    /// A head scanned from sled, with the deferred value applied.
    fn scanned_head(
        deferred: Option<([u8; 32], FeedHead)>,
        author: &[u8; 32],
        stored: FeedHead,
    ) -> FeedHead {
        match deferred {
            Some((deferred_author, head)) if deferred_author == *author => newer_head(stored, head),
            _ => stored,
        }
    }

    /// Writes to sled what of the deferred head and summary the next
    /// write does not supersede: an append to `next` (log, author)
    /// supersedes the head of its own feed and the summary of its own log;
    /// a prune (`None`) supersedes nothing. Forgets them once both are
    /// written. Callers hold the ledger's write lock.
    fn write_back(&self, next: Option<(&LogId, &UserId)>) -> Result<(), LedgerError> {
        let Some(deferred) = *self.deferred.lock() else {
            return Ok(());
        };
        let same_log = next.is_some_and(|(log, _)| *log == deferred.log);
        let same_feed = same_log && next.is_some_and(|(_, author)| *author == deferred.author);
        if !same_feed {
            self.insert(
                &keys::head_key(&deferred.log, &deferred.author),
                &keys::encode_head(&deferred.head),
            )?;
        }
        if !same_log {
            self.insert(&keys::log_key(&deferred.log), &deferred.meta.encode())?;
            *self.deferred.lock() = None;
        }
        Ok(())
    }

    fn insert(&self, key: &[u8], value: &[u8]) -> Result<(), LedgerError> {
        self.db
            .insert(key, value)
            .map(drop)
            .map_err(LedgerError::storage("append"))
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
}

/// Records the first storage failure of a database.
fn note_failure(failure: &Mutex<Option<LedgerError>>, err: &LedgerError) {
    if matches!(err, LedgerError::Storage { .. }) {
        let mut failure = failure.lock();
        if failure.is_none() {
            tracing::error!(code = err.code(), error = %err, "the ledger's database failed; it is reopened before the next write");
            *failure = Some(err.clone());
        }
    }
}

/// Whether a reopen can work: the database file opens for writing and a
/// probe of [`REOPEN_PROBE_BYTES`] fits in the directory.
fn probe_writable(path: &Path) -> Result<(), LedgerError> {
    let failed = |err: std::io::Error| LedgerError::Storage {
        operation: "check the ledger directory before reopening",
        message: err.to_string(),
    };
    std::fs::OpenOptions::new()
        .write(true)
        .open(path.join("db"))
        .map_err(failed)?;
    let probe = path.join(REOPEN_PROBE_FILE);
    let written = std::fs::write(&probe, vec![0u8; REOPEN_PROBE_BYTES]);
    let _ = std::fs::remove_file(&probe);
    written.map_err(failed)
}

impl std::fmt::Debug for SledLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledLedger")
            .field("durability", &self.options.durability)
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
        let private = PrivateCipher::new(storage_key);
        let (open, storage_key_matches) = Open::start(path, &options, &private)?;
        if !storage_key_matches {
            tracing::warn!("ledger opened with a storage key that does not match its private data");
        }
        tracing::debug!(path = %path.display(), durability = ?options.durability, "ledger opened");
        Ok(Self {
            path: path.to_path_buf(),
            options,
            open: RwLock::new(Some(Arc::new(open))),
            write_lock: Mutex::new(false),
            recovery: Mutex::new(None),
            closed_by: Mutex::new(None),
            reopens: AtomicU64::new(0),
            private,
            storage_key_matches,
        })
    }

    /// How many times the database was reopened after a storage failure.
    /// Each reopen may drop writes whose tickets failed: whoever keeps
    /// state derived from the ledger in memory rebuilds it when this
    /// changes.
    pub fn reopens(&self) -> u64 {
        self.reopens.load(Ordering::SeqCst)
    }

    /// Whether the ledger was opened with the storage key that wrote its
    /// private data. If not, every private operation fails.
    pub fn storage_key_matches(&self) -> bool {
        self.storage_key_matches
    }

    /// The storage failure that stops writes until the database is
    /// reopened, if any.
    pub fn failure(&self) -> Option<LedgerError> {
        match &*self.open.read() {
            Some(open) => open.failure(),
            None => Some(self.closed_error()),
        }
    }

    /// After a storage failure, replaces the failed database with a freshly
    /// opened one (see the type's docs); nothing to do for a healthy one.
    /// Callers that read before they write (the next link of a feed) call
    /// it first, so that they read what the write will be checked against.
    ///
    /// # Errors
    /// [`LedgerError::Storage`] while the directory is not writable, the
    /// last attempt was less than [`REOPEN_INTERVAL`] ago, or the reopen
    /// failed.
    pub fn recover(&self) -> Result<(), LedgerError> {
        if self.healthy().is_some() {
            return Ok(());
        }
        let mut last_attempt = self.recovery.lock();
        let current = self.open.read().clone();
        let failure = match &current {
            Some(open) => match open.failure() {
                None => return Ok(()),
                Some(failure) => failure,
            },
            None => self.closed_error(),
        };
        if last_attempt.is_some_and(|at| at.elapsed() < REOPEN_INTERVAL) {
            return Err(failure);
        }
        *last_attempt = Some(Instant::now());
        // While the failed database can still be read, keep it until a
        // reopen can work.
        if current.is_some() {
            probe_writable(&self.path)?;
        }
        // No append or prune runs while the database is replaced; other
        // operations still holding the failed one finish on it (its writes
        // fail), and opening waits until they let go of its lock.
        let mut torn = self.write_lock.lock();
        *self.open.write() = None;
        drop(current);
        match Open::start(&self.path, &self.options, &self.private) {
            Ok((open, _)) => {
                *self.open.write() = Some(Arc::new(open));
                *torn = false;
                *self.closed_by.lock() = None;
                self.reopens.fetch_add(1, Ordering::SeqCst);
                tracing::warn!(path = %self.path.display(), "ledger reopened after a storage failure");
                Ok(())
            }
            Err(err) => {
                tracing::warn!(code = err.code(), error = %err, "reopening the ledger failed; it is closed until a reopen succeeds");
                *self.closed_by.lock() = Some(err.clone());
                Err(err)
            }
        }
    }

    fn closed_error(&self) -> LedgerError {
        self.closed_by
            .lock()
            .clone()
            .unwrap_or_else(|| LedgerError::Storage {
                operation: "reopen the database",
                message: "the database is closed after a storage failure".into(),
            })
    }

    /// The open database, for reads (a failed one too).
    fn current(&self) -> Result<Arc<Open>, LedgerError> {
        let open = self.open.read().clone();
        open.ok_or_else(|| self.closed_error())
    }

    /// The open database if it has not failed.
    fn healthy(&self) -> Option<Arc<Open>> {
        let open = self.open.read().clone()?;
        open.failure().is_none().then_some(open)
    }

    /// The open database, for writes: a failed one is reopened first.
    fn writable(&self) -> Result<Arc<Open>, LedgerError> {
        if let Some(open) = self.healthy() {
            return Ok(open);
        }
        self.recover()?;
        self.current()
    }

    fn get_raw(&self, key: &[u8]) -> Result<Option<sled::IVec>, LedgerError> {
        self.current()?.get_raw(key)
    }

    fn read_head(&self, log: &LogId, author: &UserId) -> Result<Option<FeedHead>, LedgerError> {
        self.current()?.read_head(log, author)
    }

    fn read_meta(&self, log: &LogId) -> Result<Option<LogMeta>, LedgerError> {
        self.current()?.read_meta(log)
    }

    /// Checks and writes one entry under the write lock, on the database
    /// current then; returns the ticket of the write.
    fn append_locked(
        &self,
        entry: &VerifiedEntry,
    ) -> Result<(AppendOutcome, Durable), LedgerError> {
        let mut torn = self.write_lock.lock();
        // A reopen holds the write lock, so this is the newest database.
        let open = self.current()?;
        let result = self.append_to(&open, &mut torn, entry);
        open.checked(result)
    }

    fn append_to(
        &self,
        open: &Open,
        torn: &mut bool,
        entry: &VerifiedEntry,
    ) -> Result<(AppendOutcome, Durable), LedgerError> {
        repair(open, torn)?;
        let log = entry.log_id();
        let author = entry.author();
        let head = open.read_head(&log, author)?;
        match check_append(head.as_ref(), entry, |seq| {
            open.stored_hash(&log, author, seq)
        })? {
            // A duplicate was stored by an earlier append with its own
            // ticket; nothing new needs flushing.
            AppendDecision::Duplicate => Ok((AppendOutcome::Duplicate, Durable::resolved(Ok(())))),
            AppendDecision::Equivocation { kept } => {
                record_equivocation(open, entry, kept)?;
                Err(LedgerError::Equivocation {
                    author: *author,
                    seq: entry.seq(),
                    kept,
                    conflicting: entry.hash(),
                })
            }
            AppendDecision::Append => {
                if let Err(err) = write_entry(open, entry, head) {
                    *torn = true;
                    return Err(err);
                }
                Ok((AppendOutcome::Appended, open.ticket()))
            }
        }
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
        let open = self.current()?;
        let iter = open.db.range(range);
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
            let Some(entry) = open.get_raw(&location.entry_key())? else {
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
        open: &Open,
        log: &LogId,
        before_lamport: u64,
        cursor: Bound<Vec<u8>>,
        chunk: usize,
        report: &mut PruneReport,
    ) -> Result<Option<Vec<u8>>, LedgerError> {
        let mut torn = self.write_lock.lock();
        repair(open, &mut torn)?;
        // The batch below deletes the journal record that covers them.
        open.checked(open.write_back(None))?;
        let end = keys::timeline_lamport_bound(log, before_lamport).to_vec();
        let mut heads: HashMap<[u8; 32], FeedHead> = HashMap::new();
        let mut new_first: BTreeMap<[u8; 32], u64> = BTreeMap::new();
        let mut batch = sled::Batch::default();
        let mut removed_entries = 0u64;
        let mut removed_bytes = 0u64;
        let mut last_key = None;
        let mut scanned = 0;
        for record in open.db.range((cursor, Bound::Excluded(end))).take(chunk) {
            scanned += 1;
            let (key, value) = record.map_err(LedgerError::storage("read timeline"))?;
            let (_, author_bytes, seq) = keys::split_timeline_key(&key)?;
            last_key = Some(key.to_vec());
            let head = match heads.get(&author_bytes) {
                Some(head) => *head,
                None => {
                    let author = keys::stored_author(author_bytes)?;
                    let head = open.read_head(log, &author)?.ok_or(LedgerError::Corrupt {
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
            if let Some(entry) = open.get_raw(&entry_key)? {
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
            let meta = open.read_meta(log)?.ok_or(LedgerError::Corrupt {
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
            open.checked(
                open.db
                    .apply_batch(batch)
                    .map_err(LedgerError::storage("prune")),
            )?;
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
        // The whole prune works on one database: a chunk written to one
        // that failed fails, and its ticket is that database's.
        let open = self.writable()?;
        // Each chunk takes the write lock on its own, so appends go on
        // between chunks of a long prune.
        while let Some(last) = self.prune_chunk(
            &open,
            log,
            before_lamport,
            cursor,
            chunk.max(1),
            &mut report,
        )? {
            cursor = Bound::Excluded(last);
        }
        if report.removed_entries > 0 {
            open.ticket().wait()?;
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

/// Completes a half-written append (after a storage error) before the next
/// write; `torn` is the write lock's flag.
fn repair(open: &Open, torn: &mut bool) -> Result<(), LedgerError> {
    if *torn {
        // The journal names the last append tried; a deferred head is
        // either its own, or was written back before that append's
        // journal record (or the journal still names it).
        journal::recover(&open.db)?;
        *open.deferred.lock() = None;
        *torn = false;
    }
    Ok(())
}

/// Writes an entry and its records in journal order (see
/// [`crate::journal`]); the head and log summary are deferred when both
/// exist already. Callers hold the ledger's write lock.
fn write_entry(
    open: &Open,
    entry: &VerifiedEntry,
    head: Option<FeedHead>,
) -> Result<(), LedgerError> {
    let log = entry.log_id();
    let author = entry.author();
    let meta = open.read_meta(&log)?;
    let state = AppendState::after(entry, head.as_ref(), meta);
    // Before the journal record stops naming the deferred append, write
    // back what this append does not supersede.
    open.write_back(Some((&log, author)))?;
    open.insert(&keys::entry_key(&log, author, entry.seq()), entry.encoded())?;
    open.insert(JOURNAL_KEY, &state.journal(entry))?;
    if head.is_some() && meta.is_some() {
        for (key, value) in state.entry_records(entry) {
            open.insert(&key, &value)?;
        }
        *open.deferred.lock() = Some(Deferred {
            log,
            author: *author,
            head: state.head(entry),
            meta: state.meta,
        });
    } else {
        // A feed's or log's first entry: its head and summary keys are
        // created at once, so scans of heads and summaries find them.
        for (key, value) in state.index_records(entry) {
            open.insert(&key, &value)?;
        }
        *open.deferred.lock() = None;
    }
    Ok(())
}

/// Stores the evidence of an equivocation (once per conflicting entry,
/// at most [`MAX_EVIDENCE_PER_FEED`] per feed).
fn record_equivocation(
    open: &Open,
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
    if open.get_raw(&key)?.is_some() {
        return Ok(());
    }
    let recorded = open
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
    open.db
        .insert(key, value)
        .map_err(LedgerError::storage("record equivocation"))?;
    // Evidence need not be acknowledged; it is flushed with the group.
    drop(open.ticket());
    Ok(())
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
        self.recover()?;
        self.append_locked(entry)
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
        let open = self.current()?;
        // Taken before the scan (see `newer_head`).
        let deferred = open.deferred_head(log);
        for record in open.db.range((start, end)) {
            if page.heads.len() == limit {
                page.more = true;
                break;
            }
            let (key, value) = record.map_err(LedgerError::storage("read heads"))?;
            let author = keys::head_key_author(&key)?;
            page.heads.push(AuthorHead {
                author: keys::stored_author(author)?,
                head: Open::scanned_head(deferred, &author, keys::decode_head(&value)?),
            });
        }
        Ok(page)
    }

    fn digest(&self, log: &LogId) -> Result<LogDigestInfo, LedgerError> {
        let mut builder = LogDigestBuilder::new();
        let open = self.current()?;
        let deferred = open.deferred_head(log);
        for record in open.db.scan_prefix(keys::head_prefix(log)) {
            let (key, value) = record.map_err(LedgerError::storage("read heads"))?;
            let author = keys::head_key_author(&key)?;
            let head = Open::scanned_head(deferred, &author, keys::decode_head(&value)?);
            builder.push_raw(&author, &head);
        }
        Ok(builder.finish())
    }

    fn logs_in_space(&self, space: &SpaceId) -> Result<Vec<LogId>, LedgerError> {
        let mut logs = Vec::new();
        for record in self.current()?.db.scan_prefix(keys::space_prefix(space)) {
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
        let open = self.current()?;
        let Some(head) = open.read_head(log, author)? else {
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
        for record in open.db.range(from..=to) {
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
            .current()?
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
        let open = self.current()?;
        let deferred = *open.deferred.lock();
        for record in open.db.scan_prefix(keys::LOG_PREFIX) {
            let (key, value) = record.map_err(LedgerError::storage("read log summaries"))?;
            let mut meta = LogMeta::decode(&value)?;
            // The deferred summary, unless a write-back and later appends
            // (or a prune running meanwhile) got ahead of it.
            if let Some(deferred) = deferred
                && key.as_ref() == keys::log_key(&deferred.log).as_slice()
                && deferred.meta.entries > meta.entries
            {
                meta = deferred.meta;
            }
            stats.entries += meta.entries;
            stats.entry_bytes += meta.bytes;
            stats.logs += 1;
        }
        Ok(stats)
    }

    fn flush(&self) -> Result<(), LedgerError> {
        // Not reopened: what a failed database holds beyond its last flush
        // cannot be made durable any more.
        let open = self.current()?;
        if let Some(failure) = open.failure() {
            return Err(failure);
        }
        open.checked(
            open.db
                .flush()
                .map(drop)
                .map_err(LedgerError::storage("flush")),
        )
    }
}

impl SledLedger {
    /// A private record as stored: its keyed key and its sealed value.
    fn sealed_private(
        &self,
        namespace: &str,
        key: &[u8],
        value: &[u8],
    ) -> Result<([u8; keys::PRIVATE_KEY_LEN], Vec<u8>), LedgerError> {
        self.check_private_key()?;
        let stored_key = self.private.stored_key(namespace, key)?;
        let sealed = self.private.seal(&stored_key, key, value)?;
        Ok((stored_key, sealed))
    }
}

impl PrivateStore for SledLedger {
    fn put_private(
        &self,
        namespace: &str,
        key: &[u8],
        value: &[u8],
    ) -> Result<Durable, LedgerError> {
        let (stored_key, sealed) = self.sealed_private(namespace, key, value)?;
        let open = self.writable()?;
        open.checked(
            open.db
                .insert(stored_key, sealed)
                .map_err(LedgerError::storage("write private record")),
        )?;
        Ok(open.ticket())
    }

    fn put_private_if_absent(
        &self,
        namespace: &str,
        key: &[u8],
        value: &[u8],
    ) -> Result<Option<Durable>, LedgerError> {
        let (stored_key, sealed) = self.sealed_private(namespace, key, value)?;
        let open = self.writable()?;
        let swapped = open.checked(
            open.db
                .compare_and_swap(stored_key, None::<&[u8]>, Some(sealed))
                .map_err(LedgerError::storage("write private record")),
        )?;
        Ok(swapped.is_ok().then(|| open.ticket()))
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
        let open = self.writable()?;
        open.checked(
            open.db
                .remove(stored_key)
                .map_err(LedgerError::storage("delete private record")),
        )?;
        Ok(open.ticket())
    }

    fn scan_private(&self, namespace: &str) -> Result<Vec<PrivatePair>, LedgerError> {
        self.check_private_key()?;
        let prefix = keys::private_prefix(&self.private.namespace_tag(namespace)?);
        let mut pairs = Vec::new();
        for record in self.current()?.db.scan_prefix(prefix) {
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
    use std::collections::VecDeque;

    use crate::conformance::{LOG, all_range, all_timeline, feed, rng, writer};

    use super::*;

    fn open(dir: &Path) -> SledLedger {
        SledLedger::open(dir, &StorageKey::from_bytes([1; 32])).unwrap()
    }

    impl SledLedger {
        /// The current database.
        fn db(&self) -> sled::Db {
            self.current().unwrap().db.clone()
        }
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
            // A crash after the entry of seq 2 and its journal record were
            // written.
            let head = ledger.head(&LOG, &author).unwrap();
            let state =
                AppendState::after(&entries[1], head.as_ref(), ledger.read_meta(&LOG).unwrap());
            ledger
                .db()
                .insert(JOURNAL_KEY, state.journal(&entries[1]))
                .unwrap();
            let key = keys::entry_key(&LOG, &author, 2);
            ledger
                .db()
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
            // A crash right after the entry of seq 3, before its journal
            // record: the entry lies one past the head, unread.
            let key = keys::entry_key(&LOG, &author, 3);
            ledger
                .db()
                .insert(key, entries[2].encoded().as_ref())
                .unwrap();
            ledger.flush().unwrap();
        }
        let ledger = open(dir.path());
        assert_eq!(ledger.head(&LOG, &author).unwrap().unwrap().seq, 2);
        assert_eq!(ledger.stats().unwrap().entries, 2);
        assert_eq!(all_timeline(&ledger, &LOG).len(), 2);
        assert_eq!(ledger.get_by_hash(&entries[2].hash()).unwrap(), None);
        assert_eq!(all_range(&ledger, &LOG, &author).len(), 2);
        crate::conformance::append_all(&ledger, &entries[2..]);
        assert_eq!(ledger.head(&LOG, &author).unwrap().unwrap().seq, 3);
    }

    /// The head record as sled holds it (without the deferred value).
    fn stored_head(ledger: &SledLedger, author: &UserId) -> Option<u64> {
        ledger
            .db()
            .get(keys::head_key(&LOG, author))
            .unwrap()
            .map(|bytes| keys::decode_head(&bytes).unwrap().seq)
    }

    fn expected_head(entry: &VerifiedEntry) -> FeedHead {
        FeedHead {
            seq: entry.seq(),
            hash: entry.hash(),
            lamport: entry.lamport(),
            first_seq: 1,
        }
    }

    #[test]
    fn a_deferred_head_is_read_written_back_and_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = rng(8);
        let a = feed(&mut writer(1, LOG), &mut rng, 3);
        let b = feed(&mut writer(2, LOG), &mut rng, 3);
        let (author_a, author_b) = (*a[0].author(), *b[0].author());
        {
            let ledger = open(dir.path());
            crate::conformance::append_all(&ledger, &a);
            // sled still holds the head of seq 1; every reader sees seq 3.
            assert_eq!(stored_head(&ledger, &author_a), Some(1));
            assert_eq!(
                ledger.head(&LOG, &author_a).unwrap(),
                Some(expected_head(&a[2]))
            );
            let heads = crate::conformance::all_heads(&ledger, &LOG);
            assert_eq!(heads.len(), 1);
            assert_eq!(heads[0].head, expected_head(&a[2]));
            let mut digest = LogDigestBuilder::new();
            digest.push(&author_a, &expected_head(&a[2]));
            assert_eq!(ledger.digest(&LOG).unwrap(), digest.finish());
            assert_eq!(ledger.stats().unwrap().entries, 3);
            assert_eq!(ledger.log_stats(&LOG).unwrap().entries, 3);
            assert_eq!(all_range(&ledger, &LOG, &author_a).len(), 3);

            // An append to another feed writes the deferred head first.
            crate::conformance::append_all(&ledger, &b);
            assert_eq!(stored_head(&ledger, &author_a), Some(3));
            assert_eq!(stored_head(&ledger, &author_b), Some(1));
            assert_eq!(
                ledger.head(&LOG, &author_b).unwrap(),
                Some(expected_head(&b[2]))
            );
            assert_eq!(ledger.stats().unwrap().entries, 6);
            // Dropped with b's head still deferred (as in a crash: only the
            // journal record holds it).
        }
        let ledger = open(dir.path());
        assert_eq!(stored_head(&ledger, &author_b), Some(3));
        assert_eq!(
            ledger.head(&LOG, &author_b).unwrap(),
            Some(expected_head(&b[2]))
        );
        assert_eq!(
            ledger.head(&LOG, &author_a).unwrap(),
            Some(expected_head(&a[2]))
        );
        assert_eq!(ledger.stats().unwrap().entries, 6);
        assert_eq!(all_timeline(&ledger, &LOG).len(), 6);
    }

    /// Random interleavings of appends to three feeds in two logs, with
    /// reopens (as after a crash: the deferred head lives only in the
    /// journal) at random points: every reader agrees with a model after
    /// every append.
    #[test]
    fn deferred_heads_agree_with_a_model_under_random_interleavings() {
        use rand::RngExt;
        const OTHER: LogId = LogId::from_bytes([0x53; 32]);
        for seed in 0..8u64 {
            let dir = tempfile::tempdir().unwrap();
            let mut rng = rng(100 + seed);
            let mut feeds: Vec<(LogId, VecDeque<VerifiedEntry>)> = Vec::new();
            for (index, log) in [LOG, LOG, OTHER].into_iter().enumerate() {
                let mut writer = writer(u8::try_from(index).unwrap() + 1, log);
                feeds.push((log, feed(&mut writer, &mut rng, 12).into()));
            }
            let mut expected: HashMap<(LogId, UserId), FeedHead> = HashMap::new();
            let mut entries: HashMap<LogId, u64> = HashMap::new();
            let mut ledger = open(dir.path());
            while feeds.iter().any(|(_, queue)| !queue.is_empty()) {
                let pick = rng.random_range(0..feeds.len());
                let (log, queue) = &mut feeds[pick];
                let Some(entry) = queue.pop_front() else {
                    continue;
                };
                crate::conformance::append_all(&ledger, std::slice::from_ref(&entry));
                expected.insert((*log, *entry.author()), expected_head(&entry));
                *entries.entry(*log).or_default() += 1;
                if rng.random_range(0..6) == 0 {
                    drop(ledger);
                    ledger = open(dir.path());
                }
                for log in [LOG, OTHER] {
                    let mut digest = LogDigestBuilder::new();
                    let mut heads: Vec<AuthorHead> = expected
                        .iter()
                        .filter(|((in_log, _), _)| *in_log == log)
                        .map(|((_, author), head)| AuthorHead {
                            author: *author,
                            head: *head,
                        })
                        .collect();
                    heads.sort_by_key(|head| *head.author.as_bytes());
                    for head in &heads {
                        digest.push(&head.author, &head.head);
                        assert_eq!(ledger.head(&log, &head.author).unwrap(), Some(head.head));
                    }
                    assert_eq!(crate::conformance::all_heads(&ledger, &log), heads);
                    assert_eq!(ledger.digest(&log).unwrap(), digest.finish());
                    let held = entries.get(&log).copied().unwrap_or(0);
                    assert_eq!(ledger.log_stats(&log).unwrap().entries, held);
                }
                assert_eq!(
                    ledger.stats().unwrap().entries,
                    entries.values().sum::<u64>()
                );
            }
        }
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
            .db()
            .insert(JOURNAL_KEY, state.journal(&entries[1]))
            .unwrap();
        let key = keys::entry_key(&LOG, &author, 2);
        ledger
            .db()
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
        let mut sealed = ledger.db().get(stored_key).unwrap().unwrap().to_vec();
        sealed[30] ^= 0x01;
        ledger.db().insert(stored_key, sealed).unwrap();
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
        let moved = ledger.db().get(other).unwrap().unwrap();
        ledger.db().insert(stored_key, moved).unwrap();
        assert!(ledger.get_private("ns", b"key").is_err());
    }

    #[test]
    fn a_failed_database_is_reopened_before_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let entries = feed(&mut writer(1, LOG), &mut rng(6), 3);
        let author = *entries[0].author();
        let ledger = open(dir.path());
        crate::conformance::append_all(&ledger, &entries[..1]);
        let injected = LedgerError::Storage {
            operation: "flush",
            message: "injected failure".into(),
        };
        // As if a flush had failed (sled then refuses every write).
        note_failure(&ledger.current().unwrap().failure, &injected);
        assert_eq!(ledger.failure(), Some(injected.clone()));
        assert_eq!(ledger.reopens(), 0);
        // The failed database still serves reads.
        assert_eq!(ledger.head(&LOG, &author).unwrap().unwrap().seq, 1);
        // The next write replaces it first.
        crate::conformance::append_all(&ledger, &entries[1..2]);
        assert_eq!(ledger.failure(), None);
        assert_eq!(ledger.reopens(), 1);
        assert_eq!(ledger.head(&LOG, &author).unwrap().unwrap().seq, 2);

        // Another failure within the interval: writes fail until it ends.
        note_failure(&ledger.current().unwrap().failure, &injected);
        assert_eq!(ledger.append(&entries[2]), Err(injected.clone()));
        assert_eq!(ledger.flush(), Err(injected));
        assert_eq!(ledger.reopens(), 1, "no reopen within the interval");
        std::thread::sleep(REOPEN_INTERVAL);
        crate::conformance::append_all(&ledger, &entries[2..]);
        assert_eq!(ledger.reopens(), 2);
        assert_eq!(ledger.stats().unwrap().entries, 3);
        assert_eq!(all_timeline(&ledger, &LOG).len(), 3);
    }

    #[test]
    fn another_format_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let ledger = open(dir.path());
            ledger
                .db()
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
            .db()
            .insert(keys::head_key(&LOG, entry.author()), &[1u8, 2, 3])
            .unwrap();
        assert_eq!(
            ledger.head(&LOG, entry.author()).unwrap_err().code(),
            "ledger.corrupt"
        );
        assert_eq!(ledger.digest(&LOG).unwrap_err().code(), "ledger.corrupt");
    }
}
