//! Ledger benchmarks: append throughput without flushing, with group
//! commit, and with a flush per append; range reads in 1 MiB chunks; and
//! entry verification. Entries are sealed before any timing starts, and
//! every append iteration writes fresh feeds into a new temporary ledger.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use identity_core::{Identity, StorageKey};
use messaging_proto::test_utils::FeedWriter;
use messaging_proto::{EpochKey, LogId, SpaceId, VerifiedEntry};
use rand::SeedableRng;
use rand::rngs::StdRng;
use storage_ledger::{Durability, LedgerStore, MAX_RANGE_BYTES, OpenOptions, SledLedger};

/// Authors writing concurrently into one log.
const AUTHORS: u8 = 4;
/// Entries per author per iteration.
const PER_AUTHOR: usize = 1_000;
/// Characters of text per message (about 1 KiB per entry).
const TEXT_LEN: usize = 1_024;

/// `authors` feeds of one log with `per_author` entries each, interleaved.
fn feeds(authors: u8, per_author: usize) -> Vec<VerifiedEntry> {
    let mut rng = StdRng::seed_from_u64(1);
    let text = "x".repeat(TEXT_LEN);
    let mut writers: Vec<FeedWriter> = (1..=authors)
        .map(|seed| {
            FeedWriter::new(
                Identity::from_secret_bytes(&[seed; 32]),
                SpaceId::from_bytes([1; 32]),
                LogId::from_bytes([2; 32]),
                EpochKey::from_bytes(1, [3; 32]),
            )
        })
        .collect();
    // Interleaved, as several authors writing at once.
    let mut entries = Vec::with_capacity(per_author * writers.len());
    for _ in 0..per_author {
        for writer in &mut writers {
            entries.push(writer.text(&mut rng, &text));
        }
    }
    entries
}

fn open(dir: &tempfile::TempDir, durability: Durability) -> SledLedger {
    SledLedger::open_with(
        dir.path(),
        &StorageKey::from_bytes([9; 32]),
        OpenOptions::new().durability(durability),
    )
    .unwrap()
}

/// Times `append` over all entries, each iteration in a new ledger.
fn time_appends(
    iters: u64,
    entries: &[VerifiedEntry],
    durability: Durability,
    append: impl Fn(&SledLedger, &[VerifiedEntry]),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let dir = tempfile::tempdir().unwrap();
        let ledger = open(&dir, durability);
        let start = Instant::now();
        append(&ledger, entries);
        total += start.elapsed();
        drop(ledger);
    }
    total
}

fn append(c: &mut Criterion) {
    let entries = feeds(AUTHORS, PER_AUTHOR);
    let mut group = c.benchmark_group("append_1k");
    group.throughput(Throughput::Elements(entries.len() as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));

    group.bench_function("no_flush", |b| {
        b.iter_custom(|iters| {
            time_appends(iters, &entries, Durability::NoFlush, |ledger, entries| {
                for entry in entries {
                    // The ticket is already resolved and never awaited.
                    drop(ledger.append_deferred(entry).unwrap());
                }
            })
        });
    });
    group.bench_function("group_commit", |b| {
        b.iter_custom(|iters| {
            time_appends(
                iters,
                &entries,
                Durability::GroupCommit,
                |ledger, entries| {
                    let tickets: Vec<_> = entries
                        .iter()
                        .map(|entry| ledger.append_deferred(entry).unwrap().1)
                        .collect();
                    for ticket in tickets {
                        ticket.wait().unwrap();
                    }
                },
            )
        });
    });
    group.bench_function("flush_each", |b| {
        b.iter_custom(|iters| {
            time_appends(
                iters,
                &entries,
                Durability::GroupCommit,
                |ledger, entries| {
                    for entry in entries {
                        ledger.append(entry).unwrap();
                    }
                },
            )
        });
    });
    group.finish();
}

fn range_read(c: &mut Criterion) {
    // One feed of 1,000 entries.
    let entries = feeds(1, 1_000);
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir, Durability::GroupCommit);
    let log = entries[0].log_id();
    let author = *entries[0].author();
    for entry in &entries {
        drop(ledger.append_deferred(entry).unwrap());
    }
    ledger.flush().unwrap();
    assert_eq!(ledger.head(&log, &author).unwrap().unwrap().seq, 1_000);

    let mut group = c.benchmark_group("range_read");
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("1000_entries_1mib_chunks", |b| {
        b.iter(|| {
            let mut from = 1;
            let mut read = 0;
            loop {
                let chunk = ledger
                    .range(&log, &author, from, 4_096, MAX_RANGE_BYTES)
                    .unwrap();
                read += chunk.entries.len();
                from += chunk.entries.len() as u64;
                if !chunk.more {
                    break;
                }
            }
            assert_eq!(read, 1_000);
            black_box(read)
        });
    });
    group.finish();
}

fn verify(c: &mut Criterion) {
    let bytes = feeds(1, 1)[0].encoded().clone();
    let mut group = c.benchmark_group("verify_1k");
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify", |b| {
        b.iter(|| VerifiedEntry::verify(black_box(bytes.clone())).unwrap());
    });
    group.finish();
}

criterion_group!(benches, append, range_read, verify);
criterion_main!(benches);
