//! The conformance suite: behaviour every [`LedgerStore`] must show,
//! written against the trait only (feature `test-utils`).
//!
//! Each case is a public function taking a [`Factory`] that makes a new,
//! empty store per call; [`reopen_restores_everything`] instead takes an
//! [`OpenAt`] that opens the store kept in a directory. [`CASES`] lists the
//! factory cases so a test harness can run each as its own test. Entries
//! come from [`FeedWriter`]s with fixed identities, so failures reproduce;
//! the digest case is a property test over random interleavings.
//!
//! A case panics (through `assert!`) when the store misbehaves.

// This module is test code: a failed expectation is a panic by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use identity_core::{Identity, UserId};
use messaging_proto::test_utils::FeedWriter;
use messaging_proto::{
    Body, EntryDraft, EntryHash, EpochKey, LogId, Payload, Sealing, SpaceId, Text, TxnId,
    VerifiedEntry,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::error::LedgerError;
use crate::store::{
    AppendOutcome, AuthorHead, Equivocation, LedgerStats, LedgerStore, LogDigestInfo,
    MAX_RANGE_BYTES,
};
use crate::timeline::{TimelineItem, TimelinePosition};

/// Makes a new, empty store on each call.
pub type Factory<'a> = dyn Fn() -> Box<dyn LedgerStore> + 'a;

/// Opens the store kept in a directory; the same directory gives the same
/// data back.
pub type OpenAt<'a> = dyn Fn(&Path) -> Box<dyn LedgerStore> + 'a;

/// A case of the suite that takes a [`Factory`].
pub type Case = fn(&Factory<'_>);

/// Every case that takes a [`Factory`], by name.
pub const CASES: &[(&str, Case)] = &[
    ("append_and_read_back", append_and_read_back),
    ("seq_gap_is_refused", seq_gap_is_refused),
    ("wrong_backlink_is_refused", wrong_backlink_is_refused),
    (
        "lamport_regression_is_refused",
        lamport_regression_is_refused,
    ),
    (
        "equivocation_is_recorded_once_first_kept",
        equivocation_is_recorded_once_first_kept,
    ),
    ("reappend_is_idempotent", reappend_is_idempotent),
    (
        "digests_match_for_equal_content",
        digests_match_for_equal_content,
    ),
    ("empty_log_and_digest_formula", empty_log_and_digest_formula),
    ("heads_are_paged_by_author", heads_are_paged_by_author),
    (
        "timeline_pages_in_display_order",
        timeline_pages_in_display_order,
    ),
    ("range_is_chunked", range_is_chunked),
    ("prune_keeps_heads_and_chains", prune_keeps_heads_and_chains),
    ("logs_in_space_lists_logs", logs_in_space_lists_logs),
    ("max_lamport_tracks_the_log", max_lamport_tracks_the_log),
    ("durability_tickets_resolve", durability_tickets_resolve),
    (
        "concurrent_appends_are_serialized",
        concurrent_appends_are_serialized,
    ),
];

/// The space of the suite's channel logs.
pub const SPACE: SpaceId = SpaceId::from_bytes([0x51; 32]);
/// The suite's main log.
pub const LOG: LogId = LogId::from_bytes([0x52; 32]);
/// A second log of the same space.
pub const OTHER_LOG: LogId = LogId::from_bytes([0x53; 32]);

/// The identity with a fixed seed.
pub fn identity(seed: u8) -> Identity {
    Identity::from_secret_bytes(&[seed; 32])
}

/// A feed writer for the identity with `seed`, in `log` of [`SPACE`].
pub fn writer(seed: u8, log: LogId) -> FeedWriter {
    FeedWriter::new(
        identity(seed),
        SPACE,
        log,
        EpochKey::from_bytes(1, [0x54; 32]),
    )
}

/// A deterministic RNG for sealing.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// `count` entries of one feed.
pub fn feed(writer: &mut FeedWriter, rng: &mut StdRng, count: usize) -> Vec<VerifiedEntry> {
    (0..count)
        .map(|i| writer.text(rng, &format!("message {i}")))
        .collect()
}

/// Appends entries that must all be new.
pub fn append_all(store: &dyn LedgerStore, entries: &[VerifiedEntry]) {
    for entry in entries {
        assert_eq!(
            store.append(entry).unwrap(),
            AppendOutcome::Appended,
            "seq {}",
            entry.seq()
        );
    }
}

/// Every head of a log, paging through [`LedgerStore::heads`].
pub fn all_heads(store: &dyn LedgerStore, log: &LogId) -> Vec<AuthorHead> {
    let mut heads: Vec<AuthorHead> = Vec::new();
    loop {
        let after = heads.last().map(|head| head.author);
        let page = store.heads(log, after.as_ref(), 64).unwrap();
        heads.extend(page.heads);
        if !page.more {
            return heads;
        }
    }
}

/// The whole timeline of a log, oldest first, paging forwards.
pub fn all_timeline(store: &dyn LedgerStore, log: &LogId) -> Vec<TimelineItem> {
    let mut items: Vec<TimelineItem> = Vec::new();
    loop {
        let after = items.last().map(|item| item.position);
        let page = store.timeline_after(log, after.as_ref(), 256).unwrap();
        items.extend(page.items);
        if !page.more {
            return items;
        }
    }
}

/// Every stored entry of one feed, paging through [`LedgerStore::range`].
pub fn all_range(store: &dyn LedgerStore, log: &LogId, author: &UserId) -> Vec<VerifiedEntry> {
    let mut entries: Vec<VerifiedEntry> = Vec::new();
    loop {
        let from = entries.last().map_or(1, |entry| entry.seq() + 1);
        let chunk = store
            .range(log, author, from, 512, MAX_RANGE_BYTES)
            .unwrap();
        entries.extend(
            chunk
                .entries
                .into_iter()
                .map(|bytes| VerifiedEntry::verify(bytes).unwrap()),
        );
        if !chunk.more {
            return entries;
        }
    }
}

/// Everything observable about one log, to compare stores or moments.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Every head.
    pub heads: Vec<AuthorHead>,
    /// The digest.
    pub digest: LogDigestInfo,
    /// The timeline.
    pub timeline: Vec<TimelineItem>,
    /// The equivocation evidence.
    pub equivocations: Vec<Equivocation>,
    /// The highest lamport clock.
    pub max_lamport: u64,
    /// Ledger totals.
    pub stats: LedgerStats,
}

/// Takes a [`Snapshot`] of a log.
pub fn snapshot(store: &dyn LedgerStore, log: &LogId) -> Snapshot {
    Snapshot {
        heads: all_heads(store, log),
        digest: store.digest(log).unwrap(),
        timeline: all_timeline(store, log),
        equivocations: store.equivocations(log).unwrap(),
        max_lamport: store.max_lamport(log).unwrap(),
        stats: store.stats().unwrap(),
    }
}

fn total_len(entries: &[VerifiedEntry]) -> u64 {
    entries.iter().map(|entry| entry.len() as u64).sum()
}

/// Appended entries read back by feed position and by hash.
pub fn append_and_read_back(factory: &Factory<'_>) {
    let store = factory();
    let mut rng = rng(1);
    let mut alice = writer(1, LOG);
    let entries = feed(&mut alice, &mut rng, 3);
    append_all(&*store, &entries);
    let author = alice.identity().user_id();

    let head = store.head(&LOG, &author).unwrap().unwrap();
    assert_eq!(
        (head.seq, head.hash, head.lamport, head.first_seq),
        (3, entries[2].hash(), 3, 1)
    );
    for entry in &entries {
        assert_eq!(
            store.get(&LOG, &author, entry.seq()).unwrap().as_ref(),
            Some(entry.encoded())
        );
        assert_eq!(
            store.get_by_hash(&entry.hash()).unwrap().as_ref(),
            Some(entry.encoded())
        );
    }
    assert_eq!(store.get(&LOG, &author, 4).unwrap(), None);
    assert_eq!(store.get(&OTHER_LOG, &author, 1).unwrap(), None);
    assert_eq!(
        store.get_by_hash(&EntryHash::from_bytes([9; 32])).unwrap(),
        None
    );
    assert_eq!(store.head(&OTHER_LOG, &author).unwrap(), None);
    assert_eq!(store.head(&LOG, &identity(2).user_id()).unwrap(), None);
    assert_eq!(
        store.stats().unwrap(),
        LedgerStats {
            entries: 3,
            entry_bytes: total_len(&entries),
            logs: 1,
        }
    );
}

/// An entry that skips seqs is refused and changes nothing.
pub fn seq_gap_is_refused(factory: &Factory<'_>) {
    let store = factory();
    let mut rng = rng(2);
    let entries = feed(&mut writer(1, LOG), &mut rng, 3);
    let empty = snapshot(&*store, &LOG);
    assert_eq!(
        store.append(&entries[1]),
        Err(LedgerError::SeqGap {
            expected: 1,
            found: 2
        })
    );
    assert_eq!(snapshot(&*store, &LOG), empty);
    append_all(&*store, &entries[..1]);
    let one = snapshot(&*store, &LOG);
    assert_eq!(
        store.append(&entries[2]),
        Err(LedgerError::SeqGap {
            expected: 2,
            found: 3
        })
    );
    assert_eq!(
        store
            .append_deferred(&entries[2])
            .map(|(outcome, _)| outcome),
        Err(LedgerError::SeqGap {
            expected: 2,
            found: 3
        })
    );
    assert_eq!(snapshot(&*store, &LOG), one);
    append_all(&*store, &entries[1..]);
}

/// An entry whose backlink is not the head is refused and changes nothing.
pub fn wrong_backlink_is_refused(factory: &Factory<'_>) {
    let store = factory();
    let mut rng = rng(3);
    let entries = feed(&mut writer(1, LOG), &mut rng, 2);
    let fork = feed(&mut writer(1, LOG), &mut rng, 2);
    append_all(&*store, &entries[..1]);
    let before = snapshot(&*store, &LOG);
    assert_eq!(
        store.append(&fork[1]),
        Err(LedgerError::BacklinkMismatch {
            seq: 2,
            expected: entries[0].hash(),
            found: Some(fork[0].hash()),
        })
    );
    assert_eq!(snapshot(&*store, &LOG), before);
    append_all(&*store, &entries[1..]);
}

/// An entry whose lamport clock does not exceed the author's previous one
/// is refused and changes nothing.
pub fn lamport_regression_is_refused(factory: &Factory<'_>) {
    let store = factory();
    let mut rng = rng(4);
    let mut alice = writer(1, LOG);
    alice.observe_lamport(9);
    let first = alice.text(&mut rng, "first");
    assert_eq!(first.lamport(), 10);
    append_all(&*store, std::slice::from_ref(&first));
    let before = snapshot(&*store, &LOG);
    for previous in [9, 5] {
        let mut late = writer(1, LOG);
        late.resume(1, Some(first.hash()), previous);
        let entry = late.text(&mut rng, "late");
        assert_eq!(
            store.append(&entry),
            Err(LedgerError::LamportRegression {
                seq: 2,
                previous: 10,
                found: previous + 1,
            })
        );
        assert_eq!(snapshot(&*store, &LOG), before);
    }
    append_all(&*store, &[alice.text(&mut rng, "next")]);
}

/// A second entry for a taken seq is refused, the first is kept, and the
/// evidence is recorded once and readable.
pub fn equivocation_is_recorded_once_first_kept(factory: &Factory<'_>) {
    let store = factory();
    let mut rng = rng(5);
    let entries = feed(&mut writer(1, LOG), &mut rng, 3);
    let fork = feed(&mut writer(1, LOG), &mut rng, 3);
    let author = identity(1).user_id();
    append_all(&*store, &entries);
    let before = snapshot(&*store, &LOG);

    let expected = |seq: usize| LedgerError::Equivocation {
        author,
        seq: seq as u64,
        kept: entries[seq - 1].hash(),
        conflicting: fork[seq - 1].hash(),
    };
    // Below the head, twice (recorded once), then at the head and seq 1.
    assert_eq!(store.append(&fork[1]), Err(expected(2)));
    assert_eq!(store.append(&fork[1]), Err(expected(2)));
    assert_eq!(store.append(&fork[2]), Err(expected(3)));
    assert_eq!(
        store.append_deferred(&fork[0]).map(|(outcome, _)| outcome),
        Err(expected(1))
    );
    assert_eq!(store.equivocations(&OTHER_LOG).unwrap(), Vec::new());

    let evidence = store.equivocations(&LOG).unwrap();
    assert_eq!(evidence.len(), 3, "{evidence:?}");
    for (record, seq) in evidence.iter().zip(1..) {
        let index = seq as usize - 1;
        assert_eq!(record.author, author);
        assert_eq!(record.seq, seq);
        assert_eq!(record.kept, entries[index].hash());
        assert_eq!(record.conflicting, fork[index].hash());
        assert_eq!(&record.conflicting_entry, fork[index].encoded());
        // The evidence is signed by the author: anyone can check it.
        assert_eq!(
            VerifiedEntry::verify(record.conflicting_entry.clone())
                .unwrap()
                .hash(),
            fork[index].hash()
        );
    }
    for entry in &entries {
        assert_eq!(
            store.get(&LOG, &author, entry.seq()).unwrap().as_ref(),
            Some(entry.encoded())
        );
    }
    for entry in &fork {
        assert_eq!(store.get_by_hash(&entry.hash()).unwrap(), None);
    }
    let after = snapshot(&*store, &LOG);
    assert_eq!(
        Snapshot {
            equivocations: Vec::new(),
            ..after
        },
        before
    );
}

/// Appending a stored entry again is accepted and writes nothing.
pub fn reappend_is_idempotent(factory: &Factory<'_>) {
    let store = factory();
    let mut rng = rng(6);
    let entries = feed(&mut writer(1, LOG), &mut rng, 2);
    append_all(&*store, &entries);
    let before = snapshot(&*store, &LOG);
    for entry in &entries {
        assert_eq!(store.append(entry).unwrap(), AppendOutcome::Duplicate);
        let (outcome, ticket) = store.append_deferred(entry).unwrap();
        assert_eq!(outcome, AppendOutcome::Duplicate);
        ticket.wait().unwrap();
    }
    assert_eq!(snapshot(&*store, &LOG), before);
}

/// Merges feeds in an order driven by `choices`, keeping each feed's order.
fn interleave(feeds: &[Vec<VerifiedEntry>], choices: &[usize]) -> Vec<VerifiedEntry> {
    let mut next = vec![0; feeds.len()];
    let mut merged = Vec::new();
    for choice in choices {
        for step in 0..feeds.len() {
            let index = (choice + step) % feeds.len();
            if let Some(entry) = feeds[index].get(next[index]) {
                merged.push(entry.clone());
                next[index] += 1;
                break;
            }
        }
    }
    for (feed, start) in feeds.iter().zip(next) {
        merged.extend(feed[start..].iter().cloned());
    }
    merged
}

/// Equal content gives equal digests and heads whatever the insertion
/// order; different content gives different digests (property test).
pub fn digests_match_for_equal_content(factory: &Factory<'_>) {
    let mut rng = rng(7);
    // Three authors in two logs, four entries per feed.
    let feeds: Vec<Vec<VerifiedEntry>> = [LOG, OTHER_LOG]
        .into_iter()
        .flat_map(|log| (1..=3).map(move |seed| (seed, log)))
        .map(|(seed, log)| feed(&mut writer(seed, log), &mut rng, 4))
        .collect();
    let forked = feed(&mut writer(1, LOG), &mut rng, 4);
    let total: usize = feeds.iter().map(Vec::len).sum();
    let strategy = (
        proptest::collection::vec(0..feeds.len(), total),
        proptest::collection::vec(0..feeds.len(), total),
        0..feeds.len(),
        0usize..3,
    );
    let config = Config {
        cases: 12,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let result = runner.run(&strategy, |(order_a, order_b, truncated, dropped)| {
        let a = factory();
        let b = factory();
        for entry in interleave(&feeds, &order_a) {
            a.append(&entry).unwrap();
        }
        for entry in interleave(&feeds, &order_b) {
            b.append(&entry).unwrap();
        }
        for log in [LOG, OTHER_LOG] {
            prop_assert_eq!(a.digest(&log).unwrap(), b.digest(&log).unwrap());
            prop_assert_eq!(all_heads(&*a, &log), all_heads(&*b, &log));
            prop_assert_eq!(a.digest(&log).unwrap().author_count, 3);
        }

        // The same order without the last `dropped` entries of one feed.
        let removed: HashSet<EntryHash> = feeds[truncated]
            .iter()
            .rev()
            .take(dropped)
            .map(VerifiedEntry::hash)
            .collect();
        let c = factory();
        for entry in interleave(&feeds, &order_b) {
            if !removed.contains(&entry.hash()) {
                c.append(&entry).unwrap();
            }
        }
        let changed_log = feeds[truncated][0].log_id();
        for log in [LOG, OTHER_LOG] {
            let same = dropped == 0 || log != changed_log;
            prop_assert_eq!(a.digest(&log).unwrap() == c.digest(&log).unwrap(), same);
        }

        // Same shape, one author's feed forked: different digest.
        let mut alternative = feeds.clone();
        alternative[0] = forked.clone();
        let d = factory();
        for entry in interleave(&alternative, &order_a) {
            d.append(&entry).unwrap();
        }
        prop_assert_ne!(a.digest(&LOG).unwrap(), d.digest(&LOG).unwrap());
        prop_assert_eq!(a.digest(&OTHER_LOG).unwrap(), d.digest(&OTHER_LOG).unwrap());
        Ok(())
    });
    if let Err(failure) = result {
        panic!("digest property failed: {failure}");
    }
}

/// An empty log reads as empty everywhere; the digest follows its formula.
pub fn empty_log_and_digest_formula(factory: &Factory<'_>) {
    let store = factory();
    let empty = store.digest(&LOG).unwrap();
    assert_eq!(empty.digest, *blake3::hash(b"").as_bytes());
    assert_eq!(empty.author_count, 0);
    let heads = store.heads(&LOG, None, 10).unwrap();
    assert!(heads.heads.is_empty() && !heads.more);
    assert_eq!(store.max_lamport(&LOG).unwrap(), 0);
    assert_eq!(
        store
            .range(&LOG, &identity(1).user_id(), 1, 10, 1024)
            .unwrap()
            .entries
            .len(),
        0
    );
    assert_eq!(store.equivocations(&LOG).unwrap(), Vec::new());
    assert_eq!(store.logs_in_space(&SPACE).unwrap(), Vec::new());
    assert_eq!(store.stats().unwrap(), LedgerStats::default());
    assert_eq!(store.prune(&LOG, u64::MAX).unwrap().removed_entries, 0);

    let mut rng = rng(8);
    let mut entries = feed(&mut writer(1, LOG), &mut rng, 2);
    entries.extend(feed(&mut writer(2, LOG), &mut rng, 3));
    append_all(&*store, &entries);
    let mut expected: BTreeMap<[u8; 32], Vec<u8>> = BTreeMap::new();
    for entry in &entries {
        let mut record = entry.author().as_bytes().to_vec();
        record.extend_from_slice(&entry.seq().to_be_bytes());
        record.extend_from_slice(entry.hash().as_bytes());
        // The last entry of each feed is its head.
        expected.insert(*entry.author().as_bytes(), record);
    }
    let info = store.digest(&LOG).unwrap();
    assert_eq!(
        info.digest,
        *blake3::hash(&expected.into_values().flatten().collect::<Vec<u8>>()).as_bytes()
    );
    assert_eq!(info.author_count, 2);
    assert_eq!(store.digest(&OTHER_LOG).unwrap(), empty);
}

/// Heads come sorted by author, in pages with a correct `more` flag.
pub fn heads_are_paged_by_author(factory: &Factory<'_>) {
    let store = factory();
    let mut rng = rng(9);
    let mut authors = Vec::new();
    for seed in 1..=5u8 {
        let mut author = writer(seed, LOG);
        append_all(
            &*store,
            &feed(&mut author, &mut rng, usize::from(seed % 2) + 1),
        );
        authors.push(author.identity().user_id());
    }
    authors.sort();

    let mut seen = Vec::new();
    let mut after: Option<UserId> = None;
    for expected_len in [2, 2, 1] {
        let page = store.heads(&LOG, after.as_ref(), 2).unwrap();
        assert_eq!(page.heads.len(), expected_len);
        assert_eq!(page.more, expected_len == 2, "page after {after:?}");
        after = page.heads.last().map(|head| head.author);
        seen.extend(page.heads);
    }
    assert_eq!(
        seen.iter().map(|head| head.author).collect::<Vec<_>>(),
        authors
    );
    for head in &seen {
        assert_eq!(Some(head.head), store.head(&LOG, &head.author).unwrap());
        assert_eq!(head.to_sync().seq, head.head.seq);
    }
    // Exactly one page's worth, and after the last author.
    let full = store.heads(&LOG, None, 5).unwrap();
    assert_eq!((full.heads.len(), full.more), (5, false));
    let past = store.heads(&LOG, authors.last(), 10).unwrap();
    assert!(past.heads.is_empty() && !past.more);
    assert!(store.heads(&OTHER_LOG, None, 10).unwrap().heads.is_empty());
}

/// The timeline pages in display order both ways, strictly around cursors,
/// with exact `more` flags.
pub fn timeline_pages_in_display_order(factory: &Factory<'_>) {
    let store = factory();
    for page in [
        store.timeline_after(&LOG, None, 10).unwrap(),
        store.timeline_before(&LOG, None, 10).unwrap(),
    ] {
        assert!(page.items.is_empty() && !page.more);
    }

    // Three authors, four rounds; equal lamports across authors, and one
    // author jumping ahead, so that order depends on all three fields.
    let mut rng = rng(10);
    let mut writers: Vec<FeedWriter> = (1..=3).map(|seed| writer(seed, LOG)).collect();
    let mut entries = Vec::new();
    for round in 0..4 {
        for (index, author) in writers.iter_mut().enumerate() {
            if round == 2 && index == 0 {
                author.observe_lamport(store.max_lamport(&LOG).unwrap());
            }
            let entry = author.text(&mut rng, &format!("round {round}"));
            append_all(&*store, std::slice::from_ref(&entry));
            entries.push(entry);
        }
    }
    let position = |entry: &VerifiedEntry| TimelinePosition {
        lamport: entry.lamport(),
        author: *entry.author(),
        seq: entry.seq(),
    };
    entries.sort_by_key(|entry| position(entry));
    let expected: Vec<TimelinePosition> = entries.iter().map(position).collect();

    // Forwards in pages of 4 (exactly three full pages) and of 5.
    for (limit, sizes) in [(4, vec![4, 4, 4]), (5, vec![5, 5, 2])] {
        let mut cursor: Option<TimelinePosition> = None;
        let mut seen = Vec::new();
        for (index, size) in sizes.iter().enumerate() {
            let page = store.timeline_after(&LOG, cursor.as_ref(), limit).unwrap();
            assert_eq!(page.items.len(), *size);
            assert_eq!(page.more, index + 1 < sizes.len());
            // The cursor survives the trip through its string form.
            let last = page.items.last().unwrap().position;
            cursor = Some(TimelinePosition::from_cursor(&last.to_cursor()).unwrap());
            seen.extend(page.items);
        }
        assert_eq!(
            seen.iter().map(|item| item.position).collect::<Vec<_>>(),
            expected
        );
        for (item, entry) in seen.iter().zip(&entries) {
            assert_eq!(item.hash, entry.hash());
            assert_eq!(&item.entry, entry.encoded());
        }
    }

    // Backwards: newest first.
    let mut cursor: Option<TimelinePosition> = None;
    let mut seen = Vec::new();
    loop {
        let page = store.timeline_before(&LOG, cursor.as_ref(), 5).unwrap();
        cursor = page.items.last().map(|item| item.position);
        seen.extend(page.items.into_iter().map(|item| item.position));
        if !page.more {
            break;
        }
    }
    assert_eq!(seen, expected.iter().rev().copied().collect::<Vec<_>>());

    // Strictly before the first and after the last: nothing.
    let first = store.timeline_before(&LOG, expected.first(), 10).unwrap();
    assert!(first.items.is_empty() && !first.more);
    let last = store.timeline_after(&LOG, expected.last(), 10).unwrap();
    assert!(last.items.is_empty() && !last.more);

    // A cursor between items: seq 0 sorts before every entry of its lamport.
    let between = TimelinePosition {
        lamport: 2,
        author: expected[0].author,
        seq: 0,
    };
    let after = store.timeline_after(&LOG, Some(&between), 100).unwrap();
    let want: Vec<_> = expected.iter().filter(|p| **p > between).copied().collect();
    assert_eq!(
        after
            .items
            .iter()
            .map(|item| item.position)
            .collect::<Vec<_>>(),
        want
    );
    let before = store.timeline_before(&LOG, Some(&between), 100).unwrap();
    let want: Vec<_> = expected
        .iter()
        .rev()
        .filter(|p| **p < between)
        .copied()
        .collect();
    assert_eq!(
        before
            .items
            .iter()
            .map(|item| item.position)
            .collect::<Vec<_>>(),
        want
    );

    // A huge limit is capped, not an error; the other log is empty.
    assert_eq!(
        store
            .timeline_after(&LOG, None, usize::MAX)
            .unwrap()
            .items
            .len(),
        12
    );
    assert!(
        store
            .timeline_after(&OTHER_LOG, None, 10)
            .unwrap()
            .items
            .is_empty()
    );
}

/// Ranges respect `limit` and `max_bytes`, always carry one entry if any is
/// held, and say whether more follow.
pub fn range_is_chunked(factory: &Factory<'_>) {
    let store = factory();
    let mut rng = rng(11);
    let mut alice = writer(1, LOG);
    let entries: Vec<_> = (1..=10)
        .map(|i| alice.text(&mut rng, &"x".repeat(i * 100)))
        .collect();
    append_all(&*store, &entries);
    let author = alice.identity().user_id();
    let seqs = |chunk: &crate::RangeChunk| -> Vec<u64> {
        chunk
            .entries
            .iter()
            .map(|bytes| VerifiedEntry::verify(bytes.clone()).unwrap().seq())
            .collect()
    };
    let size = |seq: usize| entries[seq - 1].len();

    let chunk = store.range(&LOG, &author, 1, 3, MAX_RANGE_BYTES).unwrap();
    assert_eq!((seqs(&chunk), chunk.more), (vec![1, 2, 3], true));
    let chunk = store.range(&LOG, &author, 1, 100, MAX_RANGE_BYTES).unwrap();
    assert_eq!((seqs(&chunk), chunk.more), ((1..=10).collect(), false));
    // One entry even when it alone exceeds max_bytes.
    let chunk = store.range(&LOG, &author, 1, 100, 1).unwrap();
    assert_eq!((seqs(&chunk), chunk.more), (vec![1], true));
    let chunk = store
        .range(&LOG, &author, 4, 100, size(4) + size(5))
        .unwrap();
    assert_eq!((seqs(&chunk), chunk.more), (vec![4, 5], true));
    let chunk = store
        .range(&LOG, &author, 4, 100, size(4) + size(5) - 1)
        .unwrap();
    assert_eq!((seqs(&chunk), chunk.more), (vec![4], true));
    // The last entry, then beyond the head.
    let chunk = store.range(&LOG, &author, 10, 5, MAX_RANGE_BYTES).unwrap();
    assert_eq!((seqs(&chunk), chunk.more), (vec![10], false));
    let chunk = store.range(&LOG, &author, 11, 5, MAX_RANGE_BYTES).unwrap();
    assert_eq!((seqs(&chunk), chunk.more), (vec![], false));
    // Seq 0 starts at the first entry; limit 0 counts as 1.
    let chunk = store.range(&LOG, &author, 0, 2, MAX_RANGE_BYTES).unwrap();
    assert_eq!(seqs(&chunk), vec![1, 2]);
    let chunk = store.range(&LOG, &author, 1, 0, MAX_RANGE_BYTES).unwrap();
    assert_eq!((seqs(&chunk), chunk.more), (vec![1], true));
    // Unknown feeds are empty.
    assert!(
        store
            .range(&LOG, &identity(2).user_id(), 1, 10, 1024)
            .unwrap()
            .entries
            .is_empty()
    );
    assert!(
        store
            .range(&OTHER_LOG, &author, 1, 10, 1024)
            .unwrap()
            .entries
            .is_empty()
    );
    assert_eq!(all_range(&*store, &LOG, &author).len(), 10);
}

/// Pruning removes old entries but never heads, raises `first_seq`, leaves
/// digests alone, and appends still chain.
pub fn prune_keeps_heads_and_chains(factory: &Factory<'_>) {
    let store = factory();
    let mut rng = rng(12);
    let mut alice = writer(1, LOG);
    let a = feed(&mut alice, &mut rng, 6); // lamports 1..=6
    let b = feed(&mut writer(2, LOG), &mut rng, 2); // lamports 1, 2
    let c = feed(&mut writer(3, LOG), &mut rng, 1); // lamport 1
    let other = feed(&mut writer(1, OTHER_LOG), &mut rng, 3);
    for entries in [&a, &b, &c, &other] {
        append_all(&*store, entries);
    }
    let (alice_id, bob, carol) = (a[0].author(), b[0].author(), c[0].author());
    let digest = store.digest(&LOG).unwrap();
    let other_before = snapshot(&*store, &OTHER_LOG);
    let stats = store.stats().unwrap();

    let report = store.prune(&LOG, 4).unwrap();
    let removed = [&a[0], &a[1], &a[2], &b[0]];
    assert_eq!(report.removed_entries, 4);
    assert_eq!(
        report.removed_bytes,
        removed.iter().map(|e| e.len() as u64).sum::<u64>()
    );
    for entry in removed {
        assert_eq!(store.get(&LOG, entry.author(), entry.seq()).unwrap(), None);
        assert_eq!(store.get_by_hash(&entry.hash()).unwrap(), None);
    }
    for entry in [&a[3], &a[5], &b[1], &c[0]] {
        assert_eq!(
            store.get_by_hash(&entry.hash()).unwrap().as_ref(),
            Some(entry.encoded())
        );
    }
    let head = |author: &UserId| store.head(&LOG, author).unwrap().unwrap();
    assert_eq!((head(alice_id).seq, head(alice_id).first_seq), (6, 4));
    assert_eq!((head(bob).seq, head(bob).first_seq), (2, 2));
    assert_eq!((head(carol).seq, head(carol).first_seq), (1, 1));
    assert_eq!(store.digest(&LOG).unwrap(), digest);
    assert_eq!(store.max_lamport(&LOG).unwrap(), 6);
    assert_eq!(all_timeline(&*store, &LOG).len(), 5);
    assert_eq!(
        Snapshot {
            stats,
            ..snapshot(&*store, &OTHER_LOG)
        },
        other_before,
        "another log is untouched"
    );
    assert_eq!(
        store.stats().unwrap(),
        LedgerStats {
            entries: stats.entries - 4,
            entry_bytes: stats.entry_bytes - report.removed_bytes,
            logs: 2,
        }
    );
    let range = store
        .range(&LOG, alice_id, 1, 100, MAX_RANGE_BYTES)
        .unwrap();
    assert_eq!(range.entries.first(), Some(a[3].encoded()));
    assert_eq!(range.entries.len(), 3);

    // Pruned seqs are refused, held ones are duplicates, the feed goes on.
    assert_eq!(
        store.append(&a[0]),
        Err(LedgerError::BelowPrunePoint {
            seq: 1,
            first_seq: 4
        })
    );
    assert_eq!(store.append(&a[3]).unwrap(), AppendOutcome::Duplicate);
    let next = alice.text(&mut rng, "after prune");
    append_all(&*store, std::slice::from_ref(&next));
    assert_eq!(all_range(&*store, &LOG, alice_id).len(), 4);

    // Pruning again at the same point removes nothing; pruning everything
    // leaves exactly the heads.
    assert_eq!(store.prune(&LOG, 4).unwrap().removed_entries, 0);
    assert_eq!(store.prune(&LOG, u64::MAX).unwrap().removed_entries, 3);
    for author in [alice_id, bob, carol] {
        let head = head(author);
        assert_eq!(head.first_seq, head.seq);
        let range = store.range(&LOG, author, 1, 100, MAX_RANGE_BYTES).unwrap();
        assert_eq!((range.entries.len(), range.more), (1, false));
    }
    assert_eq!(all_timeline(&*store, &LOG).len(), 3);
    assert_eq!(store.digest(&OTHER_LOG).unwrap(), other_before.digest);
}

/// Logs are listed under their space; a genesis is its own space.
pub fn logs_in_space_lists_logs(factory: &Factory<'_>) {
    let store = factory();
    let mut rng = rng(13);
    let owner = identity(1);
    let key = EpochKey::from_bytes(1, [0x54; 32]);
    let control = LogId::from_bytes([0x60; 32]);
    let payload = Payload {
        client_txn_id: TxnId::random(&mut rng),
        body: Body::Text(Text {
            body: "genesis".into(),
            reply_to: None,
        }),
    };
    let draft = EntryDraft {
        space: None,
        log_id: control,
        seq: 1,
        backlink: None,
        lamport: 1,
        timestamp_ms: 1_700_000_000_000,
    };
    let genesis =
        VerifiedEntry::seal(&mut rng, &owner, draft, &payload, Sealing::Encrypt(&key)).unwrap();
    append_all(&*store, std::slice::from_ref(&genesis));
    let server = genesis.space();
    assert_eq!(server, SpaceId::from_bytes(*genesis.hash().as_bytes()));
    assert_eq!(store.logs_in_space(&server).unwrap(), vec![control]);

    // The control log goes on inside the server's space.
    let mut control_feed = FeedWriter::new(owner, server, control, key);
    control_feed.resume(1, Some(genesis.hash()), 1);
    append_all(&*store, &feed(&mut control_feed, &mut rng, 2));
    assert_eq!(store.logs_in_space(&server).unwrap(), vec![control]);

    append_all(&*store, &feed(&mut writer(2, OTHER_LOG), &mut rng, 1));
    append_all(&*store, &feed(&mut writer(2, LOG), &mut rng, 2));
    append_all(&*store, &feed(&mut writer(3, LOG), &mut rng, 1));
    assert_eq!(store.logs_in_space(&SPACE).unwrap(), vec![LOG, OTHER_LOG]);
    assert_eq!(
        store.logs_in_space(&SpaceId::from_bytes([0; 32])).unwrap(),
        Vec::new()
    );
}

/// `max_lamport` is 0 for an empty log and the largest clock otherwise.
pub fn max_lamport_tracks_the_log(factory: &Factory<'_>) {
    let store = factory();
    let mut rng = rng(14);
    assert_eq!(store.max_lamport(&LOG).unwrap(), 0);
    let mut alice = writer(1, LOG);
    append_all(&*store, &feed(&mut alice, &mut rng, 2));
    assert_eq!(store.max_lamport(&LOG).unwrap(), 2);
    let mut bob = writer(2, LOG);
    bob.observe_lamport(10);
    append_all(&*store, &feed(&mut bob, &mut rng, 1));
    assert_eq!(store.max_lamport(&LOG).unwrap(), 11);
    // An author catching up takes max + 1.
    alice.observe_lamport(store.max_lamport(&LOG).unwrap());
    let next = alice.text(&mut rng, "caught up");
    assert_eq!(next.lamport(), 12);
    append_all(&*store, &[next]);
    assert_eq!(store.max_lamport(&LOG).unwrap(), 12);
    assert_eq!(store.max_lamport(&OTHER_LOG).unwrap(), 0);
    // The log summary counts entries, bytes and authors.
    let stats = store.log_stats(&LOG).unwrap();
    assert_eq!(stats.max_lamport, store.max_lamport(&LOG).unwrap());
    assert_eq!(stats.authors, 2);
    assert_eq!(stats.entries, 4);
    assert!(stats.bytes > 0);
    assert_eq!(
        store.log_stats(&LogId::from_bytes([0xee; 32])).unwrap(),
        crate::store::LogStats::default()
    );
}

/// Deferred appends hand out tickets that resolve, blocking or awaited.
pub fn durability_tickets_resolve(factory: &Factory<'_>) {
    let store = factory();
    let mut rng = rng(15);
    let entries = feed(&mut writer(1, LOG), &mut rng, 50);
    let mut tickets = Vec::new();
    for entry in &entries {
        let (outcome, ticket) = store.append_deferred(entry).unwrap();
        assert_eq!(outcome, AppendOutcome::Appended);
        tickets.push(ticket);
    }
    let last = tickets.pop().unwrap();
    for ticket in tickets {
        ticket.wait().unwrap();
    }
    futures::executor::block_on(last).unwrap();
    store.flush().unwrap();
    assert_eq!(
        store.head(&LOG, entries[0].author()).unwrap().unwrap().seq,
        50
    );
}

/// Appends from many threads, including two racing forks of one feed, keep
/// every feed a clean chain.
pub fn concurrent_appends_are_serialized(factory: &Factory<'_>) {
    let store = factory();
    let mut rng = rng(16);
    let own: Vec<Vec<VerifiedEntry>> = (1..=4)
        .map(|seed| feed(&mut writer(seed, LOG), &mut rng, 40))
        .collect();
    let contested = [
        feed(&mut writer(9, LOG), &mut rng, 40),
        feed(&mut writer(9, LOG), &mut rng, 40),
    ];
    let appended = std::thread::scope(|scope| {
        let store = &*store;
        for entries in &own {
            scope.spawn(move || append_all(store, entries));
        }
        let racers: Vec<_> = contested
            .iter()
            .map(|entries| {
                scope.spawn(move || {
                    let mut appended = 0;
                    for entry in entries {
                        match store.append(entry) {
                            Ok(AppendOutcome::Appended) => appended += 1,
                            Ok(AppendOutcome::Duplicate) => panic!("forks share no entry"),
                            // The other fork got there first (and may be
                            // behind this one's position by now).
                            Err(
                                LedgerError::Equivocation { .. }
                                | LedgerError::BacklinkMismatch { .. }
                                | LedgerError::SeqGap { .. },
                            ) => {}
                            Err(err) => panic!("unexpected {err}"),
                        }
                    }
                    appended
                })
            })
            .collect();
        racers
            .into_iter()
            .map(|racer| racer.join().unwrap())
            .sum::<usize>()
    });
    assert_eq!(
        appended, 40,
        "every seq of the contested feed was taken once"
    );
    for entries in own.iter().chain(&contested[..1]) {
        let author = entries[0].author();
        let stored = all_range(&*store, &LOG, author);
        assert_eq!(stored.len(), 40);
        for (seq, pair) in stored.windows(2).enumerate() {
            assert_eq!(
                pair[1].header().backlink,
                Some(pair[0].hash()),
                "seq {}",
                seq + 2
            );
        }
        assert_eq!(
            store.head(&LOG, author).unwrap().unwrap().hash,
            stored[39].hash()
        );
    }
    assert_eq!(all_timeline(&*store, &LOG).len(), 200);
    assert_eq!(store.stats().unwrap().entries, 200);
}

/// Everything written survives closing and reopening the store.
pub fn reopen_restores_everything(open: &OpenAt<'_>, dir: &Path) {
    let mut rng = rng(17);
    let mut alice = writer(1, LOG);
    let entries = feed(&mut alice, &mut rng, 5);
    let fork = feed(&mut writer(1, LOG), &mut rng, 2);
    let others = feed(&mut writer(2, OTHER_LOG), &mut rng, 3);
    let alice_id = alice.identity().user_id();
    let before = {
        let store = open(dir);
        append_all(&*store, &entries);
        append_all(&*store, &others);
        assert!(store.append(&fork[1]).is_err());
        store.prune(&LOG, 3).unwrap();
        let (_, ticket) = store
            .append_deferred(&alice.text(&mut rng, "last"))
            .unwrap();
        ticket.wait().unwrap();
        (
            snapshot(&*store, &LOG),
            snapshot(&*store, &OTHER_LOG),
            store.logs_in_space(&SPACE).unwrap(),
            all_range(&*store, &LOG, &alice_id),
        )
    };
    assert_eq!(before.0.equivocations.len(), 1);
    assert_eq!(before.3.len(), 4);
    let store = open(dir);
    let after = (
        snapshot(&*store, &LOG),
        snapshot(&*store, &OTHER_LOG),
        store.logs_in_space(&SPACE).unwrap(),
        all_range(&*store, &LOG, &alice_id),
    );
    assert_eq!(after, before);
    assert_eq!(store.append(&entries[4]).unwrap(), AppendOutcome::Duplicate);
    append_all(&*store, &[alice.text(&mut rng, "after reopen")]);
}
