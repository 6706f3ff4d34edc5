//! The key layout of the ledger's single sled tree.
//!
//! Every record lives in sled's default tree, told apart by a one-byte
//! prefix, so the records of one append sit in one keyspace that one redo
//! journal covers ([`crate::journal`]) and a prune can remove its records
//! in one `apply_batch`. Integers
//! in keys are big-endian, so sled's byte order is numeric order and a range
//! scan walks seqs, lamports and authors in the order the API promises.
//!
//! | prefix | key (after the prefix byte)                         | value |
//! |--------|------------------------------------------------------|-------|
//! | `0x00` | ASCII name (`format`, `private-key-check`, `append-journal`) | ledger metadata |
//! | `0x01` | log 32 ‖ author 32 ‖ seq u64                         | the encoded `SignedEntry` |
//! | `0x02` | log 32 ‖ author 32                                   | head: seq u64 ‖ hash 32 ‖ lamport u64 ‖ first_seq u64 |
//! | `0x03` | log 32 ‖ lamport u64 ‖ author 32 ‖ seq u64           | entry hash 32 (the timeline, in display order) |
//! | `0x04` | entry hash 32                                        | log 32 ‖ author 32 ‖ seq u64 |
//! | `0x05` | space 32 ‖ log 32                                    | empty (the logs of a space) |
//! | `0x06` | log 32                                               | log meta: max lamport u64 ‖ entries u64 ‖ bytes u64 ‖ authors u64 ‖ space 32 |
//! | `0x07` | log 32 ‖ author 32 ‖ seq u64 ‖ conflicting hash 32   | kept hash 32 ‖ the conflicting encoded entry |
//! | `0x08` | namespace tag 16 ‖ key MAC 32                        | nonce 24 ‖ XChaCha20-Poly1305 ciphertext |
//!
//! A log's heads (`0x02`) are sorted by author, so the log digest and the
//! heads pages are prefix scans. Prefix `0x08` is documented in
//! [`crate::private`].

use identity_core::UserId;
use messaging_proto::{EntryHash, LogId, SpaceId};

use crate::error::LedgerError;
use crate::store::FeedHead;
use crate::timeline::TimelinePosition;

/// The on-disk format this build reads and writes.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Ledger metadata.
pub(crate) const META: u8 = 0x00;
/// Encoded entries by feed and seq.
pub(crate) const ENTRY: u8 = 0x01;
/// The head of each feed.
pub(crate) const HEAD: u8 = 0x02;
/// The timeline index.
pub(crate) const TIMELINE: u8 = 0x03;
/// Entry hash → position.
pub(crate) const HASH: u8 = 0x04;
/// Space → logs.
pub(crate) const SPACE: u8 = 0x05;
/// Per-log summary.
pub(crate) const LOG: u8 = 0x06;
/// Equivocation evidence.
pub(crate) const EQUIVOCATION: u8 = 0x07;
/// Encrypted private records.
pub(crate) const PRIVATE: u8 = 0x08;

/// Key of the format version record.
pub(crate) const FORMAT_KEY: &[u8] = b"\x00format";
/// Key of the record that tells whether the storage key is the right one.
pub(crate) const PRIVATE_CHECK_KEY: &[u8] = b"\x00private-key-check";
const _: () = assert!(
    FORMAT_KEY[0] == META && PRIVATE_CHECK_KEY[0] == META && crate::journal::JOURNAL_KEY[0] == META
);

/// Length of an entry key.
pub(crate) const ENTRY_KEY_LEN: usize = 1 + 32 + 32 + 8;
/// Length of a timeline key.
pub(crate) const TIMELINE_KEY_LEN: usize = 1 + 32 + 8 + 32 + 8;
/// Length of a private record key.
pub(crate) const PRIVATE_KEY_LEN: usize = 1 + 16 + 32;

fn concat<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    for part in parts {
        out[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    debug_assert_eq!(at, N, "key parts must fill the key exactly");
    out
}

/// `0x01 ‖ log ‖ author ‖ seq`.
pub(crate) fn entry_key(log: &LogId, author: &UserId, seq: u64) -> [u8; ENTRY_KEY_LEN] {
    concat(&[
        &[ENTRY],
        log.as_bytes(),
        author.as_bytes(),
        &seq.to_be_bytes(),
    ])
}

/// `0x02 ‖ log ‖ author`.
pub(crate) fn head_key(log: &LogId, author: &UserId) -> [u8; 65] {
    concat(&[&[HEAD], log.as_bytes(), author.as_bytes()])
}

/// `0x02 ‖ log`: the heads of one log, sorted by author.
pub(crate) fn head_prefix(log: &LogId) -> [u8; 33] {
    concat(&[&[HEAD], log.as_bytes()])
}

/// The author bytes at the end of a head key.
pub(crate) fn head_key_author(key: &[u8]) -> Result<[u8; 32], LedgerError> {
    if key.len() != 65 {
        return Err(LedgerError::Corrupt { what: "head key" });
    }
    Ok(array_at(key, 33))
}

/// `0x03 ‖ log ‖ lamport ‖ author ‖ seq`.
pub(crate) fn timeline_key(log: &LogId, position: &TimelinePosition) -> [u8; TIMELINE_KEY_LEN] {
    concat(&[
        &[TIMELINE],
        log.as_bytes(),
        &position.lamport.to_be_bytes(),
        position.author.as_bytes(),
        &position.seq.to_be_bytes(),
    ])
}

/// `0x03 ‖ log`: the timeline of one log.
pub(crate) fn timeline_prefix(log: &LogId) -> [u8; 33] {
    concat(&[&[TIMELINE], log.as_bytes()])
}

/// `0x03 ‖ log ‖ lamport`: where entries with this lamport start.
pub(crate) fn timeline_lamport_bound(log: &LogId, lamport: u64) -> [u8; 41] {
    concat(&[&[TIMELINE], log.as_bytes(), &lamport.to_be_bytes()])
}

/// The raw parts of a timeline key: lamport, author bytes, seq.
pub(crate) fn split_timeline_key(key: &[u8]) -> Result<(u64, [u8; 32], u64), LedgerError> {
    if key.len() != TIMELINE_KEY_LEN {
        return Err(LedgerError::Corrupt {
            what: "timeline key",
        });
    }
    Ok((u64_at(key, 33), array_at(key, 41), u64_at(key, 73)))
}

/// `0x04 ‖ hash`.
pub(crate) fn hash_key(hash: &EntryHash) -> [u8; 33] {
    concat(&[&[HASH], hash.as_bytes()])
}

/// `0x05 ‖ space ‖ log`.
pub(crate) fn space_key(space: &SpaceId, log: &LogId) -> [u8; 65] {
    concat(&[&[SPACE], space.as_bytes(), log.as_bytes()])
}

/// `0x05 ‖ space`: the logs of one space.
pub(crate) fn space_prefix(space: &SpaceId) -> [u8; 33] {
    concat(&[&[SPACE], space.as_bytes()])
}

/// The log at the end of a space key.
pub(crate) fn space_key_log(key: &[u8]) -> Result<LogId, LedgerError> {
    if key.len() != 65 {
        return Err(LedgerError::Corrupt { what: "space key" });
    }
    Ok(LogId::from_bytes(array_at(key, 33)))
}

/// `0x06 ‖ log`.
pub(crate) fn log_key(log: &LogId) -> [u8; 33] {
    concat(&[&[LOG], log.as_bytes()])
}

/// `0x06`: every log summary.
pub(crate) const LOG_PREFIX: [u8; 1] = [LOG];

/// `0x07 ‖ log ‖ author ‖ seq ‖ conflicting`.
pub(crate) fn equivocation_key(
    log: &LogId,
    author: &UserId,
    seq: u64,
    conflicting: &EntryHash,
) -> [u8; 105] {
    concat(&[
        &[EQUIVOCATION],
        log.as_bytes(),
        author.as_bytes(),
        &seq.to_be_bytes(),
        conflicting.as_bytes(),
    ])
}

/// `0x07 ‖ log ‖ author`: the evidence against one author in one log.
pub(crate) fn equivocation_feed_prefix(log: &LogId, author: &UserId) -> [u8; 65] {
    concat(&[&[EQUIVOCATION], log.as_bytes(), author.as_bytes()])
}

/// `0x07 ‖ log`: the evidence of one log.
pub(crate) fn equivocation_prefix(log: &LogId) -> [u8; 33] {
    concat(&[&[EQUIVOCATION], log.as_bytes()])
}

/// The author bytes, seq and conflicting hash of an equivocation key.
pub(crate) fn split_equivocation_key(
    key: &[u8],
) -> Result<([u8; 32], u64, EntryHash), LedgerError> {
    if key.len() != 105 {
        return Err(LedgerError::Corrupt {
            what: "equivocation key",
        });
    }
    Ok((
        array_at(key, 33),
        u64_at(key, 65),
        EntryHash::from_bytes(array_at(key, 73)),
    ))
}

/// `0x08 ‖ namespace tag ‖ key MAC`.
pub(crate) fn private_key(namespace_tag: &[u8; 16], key_mac: &[u8; 32]) -> [u8; PRIVATE_KEY_LEN] {
    concat(&[&[PRIVATE], namespace_tag, key_mac])
}

/// `0x08 ‖ namespace tag`: every private record of a namespace.
pub(crate) fn private_prefix(namespace_tag: &[u8; 16]) -> [u8; 17] {
    concat(&[&[PRIVATE], namespace_tag])
}

/// The smallest key greater than every key that starts with `prefix`, or
/// `None` if there is none (the prefix is all `0xff`).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Reads a big-endian u64 at `at`; the caller has checked the length.
fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(array_at(bytes, at))
}

/// Copies `N` bytes at `at`; the caller has checked the length.
fn array_at<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

/// Checks a stored author's bytes.
pub(crate) fn stored_author(bytes: [u8; 32]) -> Result<UserId, LedgerError> {
    UserId::from_bytes(bytes).map_err(|_| LedgerError::Corrupt { what: "author" })
}

/// Length of an encoded head record.
const HEAD_LEN: usize = 8 + 32 + 8 + 8;

/// Encodes the head record of a feed.
pub(crate) fn encode_head(head: &FeedHead) -> [u8; HEAD_LEN] {
    concat(&[
        &head.seq.to_be_bytes(),
        head.hash.as_bytes(),
        &head.lamport.to_be_bytes(),
        &head.first_seq.to_be_bytes(),
    ])
}

/// Decodes a head record.
pub(crate) fn decode_head(bytes: &[u8]) -> Result<FeedHead, LedgerError> {
    if bytes.len() != HEAD_LEN {
        return Err(LedgerError::Corrupt {
            what: "head record",
        });
    }
    let head = FeedHead {
        seq: u64_at(bytes, 0),
        hash: EntryHash::from_bytes(array_at(bytes, 8)),
        lamport: u64_at(bytes, 40),
        first_seq: u64_at(bytes, 48),
    };
    if head.seq == 0 || head.first_seq == 0 || head.first_seq > head.seq {
        return Err(LedgerError::Corrupt {
            what: "head record",
        });
    }
    Ok(head)
}

/// Where an entry lives: the value of a hash index record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Location {
    /// The log.
    pub(crate) log: LogId,
    /// The author's bytes (checked when the entry was stored).
    pub(crate) author: [u8; 32],
    /// The seq.
    pub(crate) seq: u64,
}

impl Location {
    /// Encodes the location.
    pub(crate) fn encode(&self) -> [u8; 72] {
        concat(&[self.log.as_bytes(), &self.author, &self.seq.to_be_bytes()])
    }

    /// Decodes a location.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, LedgerError> {
        if bytes.len() != 72 {
            return Err(LedgerError::Corrupt {
                what: "hash index record",
            });
        }
        Ok(Self {
            log: LogId::from_bytes(array_at(bytes, 0)),
            author: array_at(bytes, 32),
            seq: u64_at(bytes, 64),
        })
    }

    /// The entry key of this location.
    pub(crate) fn entry_key(&self) -> [u8; ENTRY_KEY_LEN] {
        concat(&[
            &[ENTRY],
            self.log.as_bytes(),
            &self.author,
            &self.seq.to_be_bytes(),
        ])
    }
}

/// The summary of one log, updated by every append and prune.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LogMeta {
    /// The highest lamport clock ever stored in the log (pruning keeps it).
    pub(crate) max_lamport: u64,
    /// Entries held.
    pub(crate) entries: u64,
    /// Bytes of entries held.
    pub(crate) bytes: u64,
    /// Authors with a feed in the log.
    pub(crate) authors: u64,
    /// The space of the log's first entry; entries of another space add a
    /// space index record of their own.
    pub(crate) space: [u8; 32],
}

impl LogMeta {
    /// Encodes the summary.
    pub(crate) fn encode(&self) -> [u8; 64] {
        concat(&[
            &self.max_lamport.to_be_bytes(),
            &self.entries.to_be_bytes(),
            &self.bytes.to_be_bytes(),
            &self.authors.to_be_bytes(),
            &self.space,
        ])
    }

    /// Decodes a summary.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, LedgerError> {
        if bytes.len() != 64 {
            return Err(LedgerError::Corrupt {
                what: "log summary",
            });
        }
        Ok(Self {
            max_lamport: u64_at(bytes, 0),
            entries: u64_at(bytes, 8),
            bytes: u64_at(bytes, 16),
            authors: u64_at(bytes, 24),
            space: array_at(bytes, 32),
        })
    }
}

#[cfg(test)]
mod tests {
    use identity_core::Identity;
    use proptest::prelude::*;

    use super::*;

    fn author(seed: u8) -> UserId {
        Identity::from_secret_bytes(&[seed; 32]).user_id()
    }

    proptest! {
        /// Byte order of entry keys is numeric order of seqs.
        #[test]
        fn entry_keys_sort_by_seq(a in any::<u64>(), b in any::<u64>()) {
            let log = LogId::from_bytes([7; 32]);
            let user = author(1);
            let (ka, kb) = (entry_key(&log, &user, a), entry_key(&log, &user, b));
            prop_assert_eq!(a.cmp(&b), ka.cmp(&kb));
            prop_assert_eq!(&ka[65..], &a.to_be_bytes()[..]);
        }

        /// Byte order of timeline keys is display order.
        #[test]
        fn timeline_keys_sort_in_display_order(
            la in any::<u64>(), lb in any::<u64>(),
            sa in any::<u64>(), sb in any::<u64>(),
            ua in 1u8..4, ub in 1u8..4,
        ) {
            let log = LogId::from_bytes([7; 32]);
            let a = TimelinePosition { lamport: la, author: author(ua), seq: sa };
            let b = TimelinePosition { lamport: lb, author: author(ub), seq: sb };
            let (ka, kb) = (timeline_key(&log, &a), timeline_key(&log, &b));
            prop_assert_eq!(a.cmp(&b), ka.cmp(&kb));
            let (lamport, user, seq) = split_timeline_key(&ka).unwrap();
            prop_assert_eq!((lamport, user, seq), (la, *a.author.as_bytes(), sa));
        }

        /// The lamport bound sits before every key with that lamport and
        /// after every key with a smaller one.
        #[test]
        fn lamport_bound_separates(l in 1u64.., s in any::<u64>()) {
            let log = LogId::from_bytes([7; 32]);
            let at = TimelinePosition { lamport: l, author: author(1), seq: s };
            let below = TimelinePosition { lamport: l - 1, author: author(3), seq: u64::MAX };
            let bound = timeline_lamport_bound(&log, l);
            prop_assert!(bound.as_slice() <= timeline_key(&log, &at).as_slice());
            prop_assert!(bound.as_slice() > timeline_key(&log, &below).as_slice());
        }
    }

    #[test]
    fn heads_sort_by_author_and_stay_inside_their_log() {
        let log = LogId::from_bytes([7; 32]);
        let next = LogId::from_bytes([8; 32]);
        let mut users: Vec<UserId> = (1..6).map(author).collect();
        let mut keys: Vec<_> = users.iter().map(|user| head_key(&log, user)).collect();
        keys.sort();
        users.sort();
        let authors: Vec<_> = keys
            .iter()
            .map(|key| head_key_author(key).unwrap())
            .collect();
        let expected: Vec<_> = users.iter().map(|user| *user.as_bytes()).collect();
        assert_eq!(authors, expected);
        let end = prefix_end(&head_prefix(&log)).unwrap();
        for key in &keys {
            assert!(key.as_slice() < end.as_slice());
        }
        assert!(head_key(&next, &users[0]).as_slice() >= end.as_slice());
    }

    #[test]
    fn prefix_end_carries() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }

    #[test]
    fn records_round_trip_and_reject_bad_lengths() {
        let head = FeedHead {
            seq: 9,
            hash: EntryHash::from_bytes([3; 32]),
            lamport: 40,
            first_seq: 4,
        };
        assert_eq!(decode_head(&encode_head(&head)).unwrap(), head);
        assert!(decode_head(&[0; 10]).is_err());
        let bad = FeedHead {
            first_seq: 10,
            ..head
        };
        assert!(decode_head(&encode_head(&bad)).is_err());

        let meta = LogMeta {
            max_lamport: 5,
            entries: 6,
            bytes: 7,
            authors: 2,
            space: [9; 32],
        };
        assert_eq!(LogMeta::decode(&meta.encode()).unwrap(), meta);
        assert!(LogMeta::decode(&[0; 63]).is_err());

        let location = Location {
            log: LogId::from_bytes([1; 32]),
            author: *author(2).as_bytes(),
            seq: 77,
        };
        assert_eq!(Location::decode(&location.encode()).unwrap(), location);
        assert_eq!(
            location.entry_key(),
            entry_key(&location.log, &author(2), 77)
        );
        assert!(Location::decode(&[0; 71]).is_err());
    }
}
