//! Crash test: a child process appends as fast as it can and acknowledges
//! each entry on stdout only once its durability ticket resolved; the
//! parent kills it with SIGKILL at a random moment, reopens the ledger and
//! checks that every acknowledged entry survived and every feed is a clean,
//! verifiable prefix. Many rounds run on the same directory, each resuming
//! where the last one stopped.
//!
//! The binary is its own child: with `PALAVER_LEDGER_CRASH_CHILD=<dir>` set
//! it runs the writer instead of the test harness (libtest-mimic), so the
//! test works under both `cargo test` and `cargo nextest`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use data_encoding::HEXLOWER;
use identity_core::{Identity, StorageKey, UserId};
use libtest_mimic::{Arguments, Trial};
use messaging_proto::test_utils::FeedWriter;
use messaging_proto::{EntryHash, EpochKey, LogId, SpaceId, VerifiedEntry};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use storage_ledger::conformance::all_timeline;
use storage_ledger::{Durable, LedgerStore, MAX_RANGE_BYTES, SledLedger};

const CHILD_ENV: &str = "PALAVER_LEDGER_CRASH_CHILD";
const ROUNDS: usize = 40;
const AUTHORS: [u8; 3] = [11, 12, 13];
const LOGS: [LogId; 2] = [LogId::from_bytes([0xa1; 32]), LogId::from_bytes([0xa2; 32])];
const SPACE: SpaceId = SpaceId::from_bytes([0xa0; 32]);
/// Tickets the child keeps in flight before it waits for the oldest.
const IN_FLIGHT: usize = 256;

fn storage_key() -> StorageKey {
    StorageKey::from_bytes([0x33; 32])
}

fn main() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
    }
    let args = Arguments::from_args();
    let trials = vec![Trial::test(
        "sigkill_keeps_every_acknowledged_entry",
        || {
            parent();
            Ok(())
        },
    )];
    libtest_mimic::run(&args, trials).exit();
}

/// One acknowledged entry.
#[derive(Debug)]
struct Ack {
    log: LogId,
    author: [u8; 32],
    seq: u64,
    hash: EntryHash,
}

impl Ack {
    fn line(entry: &VerifiedEntry) -> String {
        format!(
            "ACK {} {} {} {}",
            entry.log_id().to_hex(),
            HEXLOWER.encode(entry.author().as_bytes()),
            entry.seq(),
            entry.hash().to_hex()
        )
    }

    fn parse(line: &str) -> Option<Self> {
        let mut parts = line.split(' ');
        if parts.next()? != "ACK" {
            return None;
        }
        let log = LogId::from_hex(parts.next()?).ok()?;
        let author = HEXLOWER
            .decode(parts.next()?.as_bytes())
            .ok()?
            .try_into()
            .ok()?;
        let seq = parts.next()?.parse().ok()?;
        let hash = EntryHash::from_hex(parts.next()?).ok()?;
        parts.next().is_none().then_some(Self {
            log,
            author,
            seq,
            hash,
        })
    }
}

/// The writer: resumes every feed from the stored heads and appends until
/// it is killed.
fn child(dir: &Path) -> ! {
    let ledger = SledLedger::open(dir, &storage_key()).unwrap();
    let mut writers = Vec::new();
    for log in LOGS {
        for seed in AUTHORS {
            let identity = Identity::from_secret_bytes(&[seed; 32]);
            let author = identity.user_id();
            let mut writer =
                FeedWriter::new(identity, SPACE, log, EpochKey::from_bytes(1, [0x44; 32]));
            if let Some(head) = ledger.head(&log, &author).unwrap() {
                writer.resume(head.seq, Some(head.hash), head.lamport);
            }
            writers.push(writer);
        }
    }
    let mut rng = rand::rng();
    let mut stdout = std::io::stdout().lock();
    let mut in_flight: VecDeque<(Durable, String)> = VecDeque::new();
    for i in 0usize.. {
        let writer = &mut writers[i % 6];
        writer.observe_lamport(ledger.max_lamport(&writer.log()).unwrap());
        let entry = writer.text(&mut rng, &format!("crash test message {i}"));
        if i % 16 == 0 {
            // Some plain appends: they return only once durable.
            ledger.append(&entry).unwrap();
            writeln!(stdout, "{}", Ack::line(&entry)).unwrap();
            stdout.flush().unwrap();
        } else {
            let (_, ticket) = ledger.append_deferred(&entry).unwrap();
            in_flight.push_back((ticket, Ack::line(&entry)));
        }
        // Acknowledge what has resolved; wait when too much is in flight.
        while let Some((ticket, _)) = in_flight.front_mut() {
            let resolved = ticket.try_outcome();
            if resolved.is_none() && in_flight.len() < IN_FLIGHT {
                break;
            }
            let (ticket, line) = in_flight.pop_front().unwrap();
            ticket.wait().unwrap();
            writeln!(stdout, "{line}").unwrap();
            stdout.flush().unwrap();
        }
    }
    unreachable!("the writer loops until it is killed")
}

/// What the parent has verified of one feed so far: the hash of every seq.
type Verified = BTreeMap<(LogId, [u8; 32]), Vec<EntryHash>>;

fn parent() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(0x00c0_ffee);
    let mut verified: Verified = BTreeMap::new();
    let mut total_acks = 0usize;
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let lines: Vec<String> = BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect();
            let count = lines.len();
            let mut acks = Vec::with_capacity(count);
            for (index, line) in lines.iter().enumerate() {
                match Ack::parse(line) {
                    Some(ack) => acks.push(ack),
                    // Only the very last line can be cut off by the kill.
                    None => assert_eq!(index + 1, count, "unexpected child output: {line}"),
                }
            }
            acks
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(20..=300)));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "the child must die by the signal, not exit: {status}"
        );
        let acks = reader.join().unwrap();
        total_acks += acks.len();
        check(dir.path(), &acks, &mut verified, round);
    }
    let entries: usize = verified.values().map(Vec::len).sum();
    eprintln!(
        "crash test: {ROUNDS} rounds, {total_acks} acknowledged entries checked, {entries} entries verified, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(total_acks > 0, "the child never acknowledged anything");
}

fn check(dir: &Path, acks: &[Ack], verified: &mut Verified, round: usize) {
    let ledger = SledLedger::open(dir, &storage_key()).unwrap();
    for ack in acks {
        let author = UserId::from_bytes(ack.author).unwrap();
        let stored = ledger.get(&ack.log, &author, ack.seq).unwrap();
        let stored =
            stored.unwrap_or_else(|| panic!("round {round}: acknowledged {ack:?} is missing"));
        assert_eq!(
            EntryHash::of(&stored),
            ack.hash,
            "round {round}: {ack:?} changed"
        );
    }
    let mut total = 0u64;
    for log in LOGS {
        let mut in_log = 0usize;
        for seed in AUTHORS {
            let author = Identity::from_secret_bytes(&[seed; 32]).user_id();
            let hashes = verified.entry((log, *author.as_bytes())).or_default();
            let count = check_feed(&ledger, &log, &author, hashes, round);
            in_log += count;
        }
        // The timeline index holds exactly the entries.
        assert_eq!(
            all_timeline(&ledger, &log).len(),
            in_log,
            "round {round}: timeline of {log:?}"
        );
        total += in_log as u64;
    }
    assert_eq!(
        ledger.stats().unwrap().entries,
        total,
        "round {round}: log summaries"
    );
}

/// Checks one feed: seqs 1..=head without holes, old entries unchanged,
/// new entries verified and chained, head record = last entry.
fn check_feed(
    ledger: &SledLedger,
    log: &LogId,
    author: &UserId,
    hashes: &mut Vec<EntryHash>,
    round: usize,
) -> usize {
    let Some(head) = ledger.head(log, author).unwrap() else {
        assert!(hashes.is_empty(), "round {round}: a feed lost its head");
        return 0;
    };
    let mut seq = 1u64;
    let mut last: Option<VerifiedEntry> = None;
    loop {
        let chunk = ledger
            .range(log, author, seq, 4096, MAX_RANGE_BYTES)
            .unwrap();
        for bytes in chunk.entries {
            let index = usize::try_from(seq - 1).unwrap();
            let entry = if let Some(known) = hashes.get(index) {
                assert_eq!(
                    EntryHash::of(&bytes),
                    *known,
                    "round {round}: seq {seq} changed"
                );
                VerifiedEntry::decode_stored(bytes).unwrap()
            } else {
                let entry = VerifiedEntry::verify(bytes).unwrap();
                hashes.push(entry.hash());
                entry
            };
            assert_eq!(entry.seq(), seq, "round {round}: hole before seq {seq}");
            assert_eq!(
                entry.header().backlink,
                last.as_ref().map(VerifiedEntry::hash),
                "round {round}: seq {seq}"
            );
            assert!(
                ledger.get_by_hash(&entry.hash()).unwrap().is_some(),
                "round {round}: hash index"
            );
            seq += 1;
            last = Some(entry);
        }
        if !chunk.more {
            break;
        }
    }
    let last = last.unwrap();
    assert_eq!(
        hashes.len() as u64,
        last.seq(),
        "round {round}: a durable entry disappeared"
    );
    assert_eq!(
        (head.seq, head.hash, head.lamport, head.first_seq),
        (last.seq(), last.hash(), last.lamport(), 1),
        "round {round}: head record"
    );
    hashes.len()
}
