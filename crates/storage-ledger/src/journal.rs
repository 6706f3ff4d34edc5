//! How an append's records reach sled atomically without `apply_batch`.
//!
//! An append writes six or seven records: the entry, its hash index and
//! timeline records, the space index (for a log's first entry), the log
//! summary and the feed's head. Writing them with one `apply_batch` would
//! make them atomic, but in sled 0.34 a batch takes a process-wide write
//! lock that every flush holds the read side of for its whole duration
//! (including the `sync_file_range` wait), so under group commit each flush
//! stalls every appender; measured here that cut durable throughput to a
//! third of the unflushed rate (see `docs/benchmarks.md`). So appends use
//! single inserts in a fixed order, and a redo journal restores atomicity:
//!
//! 1. the entry;
//! 2. the journal record (`0x00 append-journal`): the entry's key, the
//!    feed's `first_seq`, the log summary after the append, and whether the
//!    space index is written;
//! 3. the hash index, the timeline record, the space index, the log
//!    summary, and last the head.
//!
//! sled recovers a prefix of its log after a crash (recovery stops at the
//! first torn or missing message), and appends are serialized by the
//! ledger's write lock, so at most the last append can be incomplete, and
//! if its journal record survived so did its entry. On open, [`recover`]
//! re-derives records 3 from the stored entry and the journal and writes
//! them again; every one is an absolute value, so redoing a complete
//! append changes nothing. If the journal record did not survive, the
//! previous one is still there and is redone instead; the entry, if it
//! survived, lies one past its feed's head, where nothing reads it (ranges
//! end at the head) and the next append at that seq overwrites it. A prune
//! rewrites heads and summaries, so its (batched) writes delete the
//! journal record.
//!
//! **Deferred head and summary.** Because the journal record alone
//! re-derives the last append's head and log summary, an append to a feed
//! whose head and log summary already exist need not write those two
//! records: the ledger keeps them in memory (readers see them there). They
//! are written only when the journal record is about to name another
//! append that does not supersede them — the head before an append to
//! another feed, the summary before an append to another log — and before
//! a prune. A run of appends to one feed (a backfill, one author's burst)
//! writes four records each instead of six and reads no head or summary
//! from sled. Until then a crash loses nothing: the surviving journal
//! record names either the deferred append or a later one whose head and
//! summary supersede it (the entry comes first, so a surviving journal
//! record always has its entry), and [`recover`] writes them on open.
//!
//! The order also keeps concurrent readers consistent: an entry is readable
//! before any index points at it, and the head moves last.

use messaging_proto::VerifiedEntry;

use crate::error::LedgerError;
use crate::keys::{self, Location, LogMeta};
use crate::store::FeedHead;
use crate::timeline::TimelinePosition;

/// Key of the journal record.
pub(crate) const JOURNAL_KEY: &[u8] = b"\x00append-journal";

const JOURNAL_LEN: usize = keys::ENTRY_KEY_LEN + 8 + 64 + 1;

/// One record to insert.
pub(crate) type Record = (Vec<u8>, Vec<u8>);

/// What an append needs to know besides the entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AppendState {
    /// The feed's lowest held seq after the append.
    pub(crate) first_seq: u64,
    /// The log summary after the append.
    pub(crate) meta: LogMeta,
    /// Whether the (log, space) index record is written.
    pub(crate) index_space: bool,
}

impl AppendState {
    /// The state after appending `entry` to a feed with `head` in a log
    /// with summary `meta`.
    pub(crate) fn after(
        entry: &VerifiedEntry,
        head: Option<&FeedHead>,
        meta: Option<LogMeta>,
    ) -> Self {
        let space = *entry.space().as_bytes();
        let len = u64::try_from(entry.len()).unwrap_or(u64::MAX);
        let (before, index_space) = match meta {
            // An entry naming another space than the log's first one is
            // indexed there too (rare; the record is idempotent).
            Some(meta) => (meta, meta.space != space),
            None => (
                LogMeta {
                    space,
                    ..LogMeta::default()
                },
                true,
            ),
        };
        Self {
            first_seq: head.map_or(1, |head| head.first_seq),
            meta: LogMeta {
                max_lamport: before.max_lamport.max(entry.lamport()),
                entries: before.entries + 1,
                bytes: before.bytes.saturating_add(len),
                authors: before.authors + u64::from(head.is_none()),
                space: before.space,
            },
            index_space,
        }
    }

    /// The journal record for `entry`.
    pub(crate) fn journal(&self, entry: &VerifiedEntry) -> Vec<u8> {
        let mut out = Vec::with_capacity(JOURNAL_LEN);
        out.extend_from_slice(&keys::entry_key(
            &entry.log_id(),
            entry.author(),
            entry.seq(),
        ));
        out.extend_from_slice(&self.first_seq.to_be_bytes());
        out.extend_from_slice(&self.meta.encode());
        out.push(u8::from(self.index_space));
        out
    }

    /// Decodes a journal record into the entry key and the state.
    pub(crate) fn from_journal(bytes: &[u8]) -> Result<(Vec<u8>, Self), LedgerError> {
        let corrupt = LedgerError::Corrupt {
            what: "append journal",
        };
        if bytes.len() != JOURNAL_LEN {
            return Err(corrupt);
        }
        let (entry_key, rest) = bytes.split_at(keys::ENTRY_KEY_LEN);
        let (first_seq, rest) = rest.split_at(8);
        let (meta, flag) = rest.split_at(64);
        let first_seq = u64::from_be_bytes(first_seq.try_into().map_err(|_| corrupt.clone())?);
        let index_space = match flag {
            [0] => false,
            [1] => true,
            _ => return Err(corrupt),
        };
        Ok((
            entry_key.to_vec(),
            Self {
                first_seq,
                meta: LogMeta::decode(meta)?,
                index_space,
            },
        ))
    }

    /// The feed's head after the append.
    pub(crate) fn head(&self, entry: &VerifiedEntry) -> FeedHead {
        FeedHead {
            seq: entry.seq(),
            hash: entry.hash(),
            lamport: entry.lamport(),
            first_seq: self.first_seq,
        }
    }

    /// The entry's own index records (hash, timeline and, when needed,
    /// space), in write order.
    pub(crate) fn entry_records(&self, entry: &VerifiedEntry) -> Vec<Record> {
        let log = entry.log_id();
        let author = entry.author();
        let hash = entry.hash();
        let location = Location {
            log,
            author: *author.as_bytes(),
            seq: entry.seq(),
        };
        let position = TimelinePosition {
            lamport: entry.lamport(),
            author: *author,
            seq: entry.seq(),
        };
        let mut records = Vec::with_capacity(5);
        records.push((keys::hash_key(&hash).to_vec(), location.encode().to_vec()));
        records.push((
            keys::timeline_key(&log, &position).to_vec(),
            hash.as_bytes().to_vec(),
        ));
        if self.index_space {
            records.push((keys::space_key(&entry.space(), &log).to_vec(), Vec::new()));
        }
        records
    }

    /// Every record written after the entry, in write order: the entry's
    /// indexes, the log summary, and last the head.
    pub(crate) fn index_records(&self, entry: &VerifiedEntry) -> Vec<Record> {
        let log = entry.log_id();
        let mut records = self.entry_records(entry);
        records.push((keys::log_key(&log).to_vec(), self.meta.encode().to_vec()));
        records.push((
            keys::head_key(&log, entry.author()).to_vec(),
            keys::encode_head(&self.head(entry)).to_vec(),
        ));
        records
    }
}

/// Completes the last append if a crash interrupted it; returns whether
/// a journal record was found.
pub(crate) fn recover(db: &sled::Db) -> Result<bool, LedgerError> {
    let Some(journal) = db
        .get(JOURNAL_KEY)
        .map_err(LedgerError::storage("read journal"))?
    else {
        return Ok(false);
    };
    let (entry_key, state) = AppendState::from_journal(&journal)?;
    if let Some(bytes) = db
        .get(&entry_key)
        .map_err(LedgerError::storage("read journal entry"))?
    {
        let entry = VerifiedEntry::decode_stored(bytes.to_vec())
            .map_err(|_| LedgerError::Corrupt { what: "entry" })?;
        for (key, value) in state.index_records(&entry) {
            db.insert(key, value)
                .map_err(LedgerError::storage("redo append"))?;
        }
    }
    db.remove(JOURNAL_KEY)
        .map_err(LedgerError::storage("clear journal"))?;
    db.flush().map_err(LedgerError::storage("flush"))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use crate::conformance::{LOG, feed, rng, writer};

    use super::*;

    #[test]
    fn journal_round_trips() {
        let entries = feed(&mut writer(1, LOG), &mut rng(1), 2);
        let head = FeedHead {
            seq: 1,
            hash: entries[0].hash(),
            lamport: 1,
            first_seq: 1,
        };
        let meta = LogMeta {
            max_lamport: 1,
            entries: 1,
            bytes: 100,
            authors: 1,
            space: *entries[0].space().as_bytes(),
        };
        let state = AppendState::after(&entries[1], Some(&head), Some(meta));
        assert!(!state.index_space);
        assert_eq!(state.meta.entries, 2);
        assert_eq!(state.meta.authors, 1);
        let (key, decoded) = AppendState::from_journal(&state.journal(&entries[1])).unwrap();
        assert_eq!(decoded, state);
        assert_eq!(key, keys::entry_key(&LOG, entries[1].author(), 2).to_vec());
        assert!(AppendState::from_journal(&[0; 10]).is_err());

        let first = AppendState::after(&entries[0], None, None);
        assert!(first.index_space);
        assert_eq!(
            (first.meta.entries, first.meta.authors, first.first_seq),
            (1, 1, 1)
        );
        // The head is written last.
        let records = first.index_records(&entries[0]);
        assert_eq!(
            records.last().unwrap().0,
            keys::head_key(&LOG, entries[0].author()).to_vec()
        );
    }
}
