//! Fault tests with the real binary (issue 8): nodes killed with SIGKILL
//! at random points, a data directory that becomes read-only, a full disk,
//! a node paused with SIGSTOP, a member killed and started again at once.
//! What every test checks is the promise of `send`: a message
//! acknowledged is durable, survives any crash, and reaches the other
//! members.
//!
//! Randomness comes from one seed per test, printed at the start; set
//! `FAULT_SEED` to repeat a run. The read-only and full-disk tests need
//! root (`chattr`, `mount`) and fail with a clear message without it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod cli_support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cli_support::{DataDir, NodeProcess, QUIC, eventually, fast_timers_config};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

/// SIGKILL rounds of the sender.
const KILL_ROUNDS: usize = 100;
/// Every this many rounds, everything acknowledged is checked at both nodes.
const FULL_CHECK_EVERY: usize = 25;
/// How long delivery to the other node may take after a check starts.
const DELIVERY_WAIT: Duration = Duration::from_secs(120);
const SERVER: &str = "garden";
const CHANNEL: &str = "general";

/// The test's seed: `FAULT_SEED` or a fresh one, printed either way.
fn seeded_rng(test: &str) -> StdRng {
    let seed = std::env::var("FAULT_SEED")
        .ok()
        .map(|seed| seed.parse::<u64>().expect("FAULT_SEED is a u64"))
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("{test}: seed {seed} (set FAULT_SEED={seed} to repeat)");
    StdRng::seed_from_u64(seed)
}

/// One connection to a node's control socket. `None` from a call means
/// the node is gone (killed, or not yet listening).
struct Control {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Control {
    fn connect(dir: &DataDir) -> Option<Self> {
        let stream = UnixStream::connect(dir.path.join("palaver.sock")).ok()?;
        stream.set_read_timeout(Some(cli_support::WAIT)).unwrap();
        Some(Self {
            reader: BufReader::new(stream.try_clone().ok()?),
            writer: stream,
        })
    }

    /// Sends a request; `Some(Ok(response))`, `Some(Err(error))`, or `None`
    /// when the connection broke before the answer.
    fn request(&mut self, request: &Value) -> Option<Result<Value, Value>> {
        let line = json!({"op": "request", "request": request}).to_string();
        self.writer.write_all(format!("{line}\n").as_bytes()).ok()?;
        let mut answer = String::new();
        match self.reader.read_line(&mut answer) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                let answer: Value = serde_json::from_str(&answer).ok()?;
                match (answer.get("ok"), answer.get("error")) {
                    (Some(ok), _) => Some(Ok(ok.clone())),
                    (None, Some(error)) => Some(Err(error.clone())),
                    _ => panic!("unexpected answer: {answer}"),
                }
            }
        }
    }

    /// Sends `text` to the test channel.
    fn send(&mut self, text: &str) -> Option<Result<Value, Value>> {
        self.request(&json!({
            "type": "send", "server": SERVER, "channel": CHANNEL, "text": text,
        }))
    }

    /// The whole channel, paged back from the newest: message id → text.
    fn all_messages(&mut self) -> HashMap<String, String> {
        self.try_all_messages()
            .unwrap_or_else(|err| panic!("history failed: {err}"))
    }

    /// The whole channel, or the node's error if a page failed.
    fn try_all_messages(&mut self) -> Result<HashMap<String, String>, Value> {
        let mut messages = HashMap::new();
        let mut before: Option<String> = None;
        loop {
            let page = self
                .request(&json!({
                    "type": "history", "server": SERVER, "channel": CHANNEL,
                    "limit": 500, "before": before,
                }))
                .expect("the node answers")?;
            let items = page["messages"].as_array().unwrap();
            for message in items {
                messages.insert(
                    message["message_id"].as_str().unwrap().to_owned(),
                    message["text"].as_str().unwrap().to_owned(),
                );
            }
            match page["before"].as_str() {
                Some(cursor) if !items.is_empty() => before = Some(cursor.to_owned()),
                _ => return Ok(messages),
            }
        }
    }

    /// The newest page (at most 500 messages): message id → text.
    fn newest_messages(&mut self) -> HashMap<String, String> {
        let page = self
            .request(&json!({
                "type": "history", "server": SERVER, "channel": CHANNEL, "limit": 500,
            }))
            .expect("the node answers")
            .unwrap_or_else(|err| panic!("history failed: {err}"));
        page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|message| {
                (
                    message["message_id"].as_str().unwrap().to_owned(),
                    message["text"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

/// Acknowledged messages: id → text.
type Acked = HashMap<String, String>;

/// Which acknowledged messages `held` lacks (or holds with another text).
fn missing_from(acked: &Acked, held: &HashMap<String, String>) -> Vec<String> {
    let mut missing: Vec<String> = acked
        .iter()
        .filter(|(id, text)| held.get(*id) != Some(*text))
        .map(|(id, text)| format!("{text} ({id})"))
        .collect();
    missing.sort();
    missing
}

/// Senders that keep sending over their own socket connections until told
/// to stop or until the node dies; each message counts as acknowledged
/// only once its success answer has been read.
struct SendBurst {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<SenderReport>>,
}

#[derive(Default)]
struct SenderReport {
    acked: Vec<(String, String)>,
    /// A request written whose answer never came (the node died).
    in_flight_at_end: bool,
    /// Error answers (none are expected here).
    errors: Vec<Value>,
}

impl SendBurst {
    fn start(dir: &DataDir, senders: usize, label: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..senders)
            .map(|sender| {
                let (dir, stop, label) = (dir.clone(), stop.clone(), label.to_owned());
                std::thread::spawn(move || {
                    let mut report = SenderReport::default();
                    let Some(mut control) = Control::connect(&dir) else {
                        return report;
                    };
                    for index in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let text = format!("{label} s{sender} m{index}");
                        match control.send(&text) {
                            Some(Ok(ack)) => report
                                .acked
                                .push((ack["message_id"].as_str().unwrap().to_owned(), text)),
                            Some(Err(error)) => {
                                report.errors.push(error);
                                break;
                            }
                            None => {
                                report.in_flight_at_end = true;
                                break;
                            }
                        }
                    }
                    report
                })
            })
            .collect();
        Self { stop, threads }
    }

    /// Stops the senders (if the node still runs) and collects them.
    fn finish(self) -> Vec<SenderReport> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .collect()
    }
}

/// The QUIC address a running node listens on.
fn quic_listen_addr(dir: &DataDir) -> String {
    dir.status()["listen_addrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|addr| addr.as_str().unwrap().to_owned())
        .find(|addr| addr.contains("/quic-v1"))
        .unwrap()
}

/// A server `garden` created by `owner`, with `owner` as its bootstrap
/// peer, joined by every one of `members`; returns when the owner counts
/// them all.
fn form_server(owner: &DataDir, members: &[&DataDir]) {
    let owner_addr = owner.address();
    owner.json(&["server", "create", SERVER]);
    owner.json(&["server", "bootstrap", "set", SERVER, &owner_addr]);
    let invite = owner.json(&["invite", "create", SERVER]);
    let code = invite["invite"].as_str().unwrap();
    for member in members {
        member.json(&["join", code]);
    }
    eventually("every member counted by the owner", || {
        (owner.json(&["server", "info", SERVER])["members"] == members.len() + 1).then_some(())
    });
}

/// Checks that `a` holds every acknowledged message and that `b` receives
/// them all.
fn check_everything(a: &DataDir, b: &DataDir, acked: &Acked, when: &str) {
    let at_a = Control::connect(a).unwrap().all_messages();
    let missing = missing_from(acked, &at_a);
    assert!(
        missing.is_empty(),
        "{when}: {} of {} acknowledged messages missing at the sender: {missing:?}",
        missing.len(),
        acked.len()
    );
    let started = Instant::now();
    loop {
        let at_b = Control::connect(b).unwrap().all_messages();
        let missing = missing_from(acked, &at_b);
        if missing.is_empty() {
            let mut extra: Vec<&String> = at_b
                .iter()
                .filter(|(id, _)| !acked.contains_key(*id) && !at_a.contains_key(*id))
                .map(|(_, text)| text)
                .collect();
            extra.sort();
            eprintln!(
                "{when}: {} acknowledged messages held by both ({} at the receiver after {:.1} s; \
                 held by the receiver only: {extra:?})",
                acked.len(),
                at_b.len(),
                started.elapsed().as_secs_f64()
            );
            return;
        }
        assert!(
            started.elapsed() < DELIVERY_WAIT,
            "{when}: {} of {} acknowledged messages never reached the receiver: {:?}",
            missing.len(),
            acked.len(),
            &missing[..missing.len().min(20)]
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// What one pair of the SIGKILL test did.
#[derive(Debug, Default)]
struct KillStats {
    rounds: usize,
    startup_kills: usize,
    receiver_kills: usize,
    acked: usize,
    cut_off: usize,
}

/// SIGKILL at random points: two pairs of a long-lived receiver B and a
/// sender A, each pair in its own server and running its rounds beside
/// the other (the machine waits on start-ups more than it computes). Each
/// round starts A, sends from two connections at once, and kills A at a
/// random moment (mostly in the middle of the sends, some rounds during
/// A's start-up); some rounds kill B as well. Every message acknowledged
/// must be in A's history after each restart and reach B.
#[test]
fn sigkill_at_random_points_loses_no_acknowledged_message() {
    let started = Instant::now();
    let mut rng = seeded_rng("sigkill");
    let pairs: Vec<_> = (0..2)
        .map(|pair| {
            let seed = rng.random::<u64>();
            std::thread::spawn(move || kill_rounds(pair, KILL_ROUNDS / 2, seed))
        })
        .collect();
    let stats: Vec<KillStats> = pairs
        .into_iter()
        .map(|pair| pair.join().expect("a pair failed (its panic is above)"))
        .collect();
    let rounds: usize = stats.iter().map(|stats| stats.rounds).sum();
    eprintln!(
        "sigkill: {rounds} rounds in {:.1} s: {stats:?}",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(rounds, KILL_ROUNDS);
}

fn kill_rounds(pair: usize, rounds: usize, seed: u64) -> KillStats {
    let mut rng = StdRng::seed_from_u64(seed);
    let tmp = tempfile::tempdir().unwrap();
    let config = fast_timers_config(tmp.path());
    let a = DataDir::new(tmp.path(), &format!("alice{pair}"));
    let b = DataDir::new(tmp.path(), &format!("bob{pair}"));
    a.init();
    b.init();
    let mut b_node = b.start(&["--config", &config, "--listen", QUIC]);
    // B comes back on the same port, so that A always finds it at the
    // address the server names.
    let b_listen = quic_listen_addr(&b);
    let a_args = ["--config", config.as_str(), "--listen", QUIC];
    let b_args = ["--config", config.as_str(), "--listen", b_listen.as_str()];
    let mut a_node = a.start(&a_args);
    form_server(&b, &[&a]);

    let mut stats = KillStats::default();
    let mut acked = Acked::new();
    // Acknowledged since the last check.
    let mut unchecked = Acked::new();
    for round in 0..rounds {
        let when = format!("pair {pair} round {round}");
        if rng.random_bool(0.12) {
            // Killed during start-up (≈ 0.75 s here: the Argon2 unlock,
            // then opening and repairing the ledger, restoring, starting
            // the overlay) or just after it.
            a_node.kill();
            let mut starting = a.spawn(&a_args);
            std::thread::sleep(Duration::from_millis(rng.random_range(200..1_000)));
            starting.kill();
            stats.startup_kills += 1;
            a_node = a.start(&a_args);
        }
        // What the last round acknowledged is there after the restart.
        let mut control = Control::connect(&a).unwrap();
        let newest = if unchecked.len() > 400 {
            control.all_messages()
        } else {
            control.newest_messages()
        };
        let missing = missing_from(&unchecked, &newest);
        assert!(
            missing.is_empty(),
            "{when}: acknowledged messages lost by the restart: {missing:?}"
        );
        unchecked.clear();

        let burst = SendBurst::start(&a, 2, &format!("p{pair} r{round}"));
        let kill_after = Duration::from_millis(rng.random_range(0..300));
        let kill_b = rng.random_bool(0.1);
        if kill_b {
            std::thread::sleep(kill_after.mul_f64(rng.random_range(0.0..1.0)));
            b_node.kill();
            stats.receiver_kills += 1;
        }
        std::thread::sleep(kill_after);
        a_node.kill();
        for report in burst.finish() {
            assert!(
                report.errors.is_empty(),
                "{when}: sends failed: {:?}",
                report.errors
            );
            stats.cut_off += usize::from(report.in_flight_at_end);
            for (id, text) in report.acked {
                unchecked.insert(id.clone(), text.clone());
                acked.insert(id, text);
            }
        }
        if kill_b {
            b_node = b.start(&b_args);
        }
        a_node = a.start(&a_args);
        stats.rounds += 1;
        // (The last round is checked after a restart of both below.)
        if (round + 1) % FULL_CHECK_EVERY == 0 && round + 1 < rounds {
            check_everything(&a, &b, &acked, &format!("{when} (full check)"));
        }
    }
    // A last restart of both, then everything once more.
    a_node.kill();
    b_node.kill();
    let _b_node = b.start(&b_args);
    let _a_node = a.start(&a_args);
    check_everything(&a, &b, &acked, &format!("pair {pair} at the end"));
    stats.acked = acked.len();
    assert!(stats.acked >= rounds, "too few messages were acknowledged");
    stats
}

/// Runs a system command that must succeed; the tests that change file
/// attributes and mounts need root.
fn system(program: &str, args: &[&str]) {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {program}: {err}"));
    assert!(
        output.status.success(),
        "`{program} {}` failed ({}): {} — this test needs root (mount, chattr)",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// `chattr -R +i` on a directory: nothing in it can be written, created
/// or removed, not even by root or through files already open. Undone on
/// drop (also when the test fails, or the temporary directory could not
/// be removed).
struct Immutable(PathBuf);

impl Immutable {
    fn set(path: &Path) -> Self {
        let guard = Self(path.to_path_buf());
        system("chattr", &["-R", "+i", path.to_str().unwrap()]);
        guard
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .args(["-R", "-i"])
            .arg(&self.0)
            .status();
    }
}

/// Whether the file system under `dir` refuses writes through a file
/// opened before `chattr +i` (ext4 and xfs do; tmpfs does not).
fn check_immutable_is_enforced(dir: &Path) {
    let path = dir.join("immutable.probe");
    std::fs::write(&path, b"probe").unwrap();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let written = {
        let _immutable = Immutable::set(&path);
        file.write_all(b"more").and_then(|()| file.sync_all())
    };
    std::fs::remove_file(&path).unwrap();
    assert!(
        written.is_err(),
        "the file system of {} accepts writes to an immutable file through an open descriptor; \
         the read-only test needs one that refuses them (ext4, xfs)",
        dir.display()
    );
}

/// A tmpfs of `size` mounted on `path`; unmounted on drop (lazily if a
/// process still holds it), after the nodes using it are gone.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Self {
        std::fs::create_dir_all(path).unwrap();
        system(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
                path.to_str().unwrap(),
            ],
        );
        Self(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = std::process::Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|status| status.success());
        if !unmounted {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
}

/// Messages the sender holds that it never acknowledged: sends that
/// reported a storage error although their entry reached the disk.
fn stored_unacknowledged(dir: &DataDir, acked: &Acked) -> Vec<String> {
    let me = dir.json(&["id"])["user_id"].as_str().unwrap().to_owned();
    let mut texts: Vec<String> = dir
        .history(SERVER, CHANNEL)
        .iter()
        .filter(|message| message["author"] == me.as_str())
        .filter(|message| !acked.contains_key(message["message_id"].as_str().unwrap()))
        .map(|message| message["text"].as_str().unwrap().to_owned())
        .collect();
    texts.sort();
    texts
}

/// Fills the file system of `path` with a file there until it is full;
/// returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0xa5u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(err) if err.kind() == std::io::ErrorKind::StorageFull => break,
            Err(err) => panic!("filling {} failed: {err}", path.display()),
        }
    }
    // Whatever the page cache holds is on the tmpfs already.
    let _ = file.sync_all();
    written
}

/// A send that must fail with a `storage` error while the ledger cannot
/// be written; returns the error code.
fn send_fails_with_storage_error(dir: &DataDir, text: &str) -> String {
    let ran = dir.run(&["send", SERVER, CHANNEL, text, "--json"]);
    assert_eq!(
        ran.code,
        cli_support::EXIT_NODE_ERROR,
        "a send succeeded although the ledger cannot be written: {ran:?}"
    );
    let error = &ran.json()["error"];
    assert_eq!(error["category"], "storage", "{ran:?}");
    error["code"].as_str().unwrap().to_owned()
}

/// The names of the server's channels, sorted.
fn channel_names(dir: &DataDir) -> Vec<String> {
    let ran = dir.run(&["channel", "list", SERVER, "--json"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let mut names: Vec<String> = ran
        .json_lines()
        .iter()
        .map(|channel| channel["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// Sends until one succeeds (the ledger may take a moment to come back);
/// every failure before must be a `storage` error.
fn send_once_writable(dir: &DataDir, text: &str) -> String {
    let mut failures = 0;
    let id = eventually("a send to succeed once the ledger can be written", || {
        let ran = dir.run(&["send", SERVER, CHANNEL, text, "--json"]);
        if ran.code == 0 {
            return Some(ran.json()["message_id"].as_str().unwrap().to_owned());
        }
        assert_eq!(ran.json()["error"]["category"], "storage", "{ran:?}");
        failures += 1;
        None
    });
    eprintln!("{failures} sends failed before the ledger came back");
    id
}

/// Sends through the CLI and records the acknowledgement.
fn send_acked(dir: &DataDir, acked: &mut Acked, text: &str) {
    let id = dir.send(SERVER, CHANNEL, text);
    acked.insert(id, text.to_owned());
}

/// The sender's view while its ledger cannot be written: the process runs,
/// status answers, and history lists every message acknowledged before, or
/// fails with a clear `storage` error — never a partial list. (sled
/// finishes a node split it finds half done while reading, and that needs
/// a write: when the failed write left one, reads that cross it fail until
/// the database is opened again, which on a full disk waits for space. It
/// happened in 2 of 6 runs of this file on 2026-11-24.)
fn still_serving(dir: &DataDir, node: &mut NodeProcess, acked: &Acked) {
    assert!(node.running(), "the node died:\n{}", node.log_text());
    let status = dir.status();
    assert!(!status["listen_addrs"].as_array().unwrap().is_empty());
    match Control::connect(dir).unwrap().try_all_messages() {
        Ok(held) => {
            let missing = missing_from(acked, &held);
            assert!(missing.is_empty(), "history lost {missing:?}");
        }
        Err(error) => {
            assert_eq!(error["category"], "storage", "{error}");
            eprintln!("{}: history failed while unwritable: {error}", dir.name);
        }
    }
}

/// Sync requests the node has answered since it started.
fn syncs_served(dir: &DataDir) -> u64 {
    dir.status()["sync_requests_served"].as_u64().unwrap()
}

/// Waits until the node has answered `more` sync requests after it had
/// answered `before`.
fn wait_for_syncs_served(dir: &DataDir, before: u64, more: u64) {
    eventually("peers' syncs", || {
        (syncs_served(dir) >= before + more).then_some(())
    });
}

/// Waits until the node's outbox is empty (its peers confirmed all it
/// wrote), so that nothing but the next send writes to its ledger.
fn wait_for_empty_outbox(dir: &DataDir) {
    eventually("the outbox to drain", || {
        (dir.status()["outbox_depth"] == 0).then_some(())
    });
}

/// A data directory whose ledger becomes read-only while the node runs
/// (`chattr -R +i`: as root, permission bits are not enforced, and a
/// read-only remount is refused while sled holds its files open for
/// writing). Sends fail with a `storage` error and nothing is
/// acknowledged; the node keeps running and answering; once the directory
/// is writable again sends succeed, messages B sent meanwhile arrive, and
/// everything acknowledged survives a SIGKILL.
#[test]
fn read_only_ledger_reports_storage_errors_and_recovers() {
    let started = Instant::now();
    // Not /tmp: it may be a tmpfs, which ignores the attribute for open
    // files.
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    check_immutable_is_enforced(tmp.path());
    let config = fast_timers_config(tmp.path());
    let a = DataDir::new(tmp.path(), "alice");
    let b = DataDir::new(tmp.path(), "bob");
    a.init();
    b.init();
    let args = ["--config", config.as_str(), "--listen", QUIC];
    let _b_node = b.start(&args);
    let mut a_node = a.start(&args);
    form_server(&b, &[&a]);
    let mut acked = Acked::new();
    for index in 0..5 {
        send_acked(&a, &mut acked, &format!("before {index}"));
    }

    wait_for_empty_outbox(&a);
    let synced = syncs_served(&a);
    let read_only = Immutable::set(&a.path.join("ledger"));
    let mut codes = Vec::new();
    for index in 0..5 {
        codes.push(send_fails_with_storage_error(
            &a,
            &format!("refused {index}"),
        ));
    }
    eprintln!("read-only: send errors {codes:?}");
    let mut from_b = Acked::new();
    for index in 0..3 {
        send_acked(
            &b,
            &mut from_b,
            &format!("from bob while alice is read-only {index}"),
        );
    }
    // B's periodic syncs (every 2 s) ask A for its feed while A is
    // read-only, and outbox retries run: without the node's flush before
    // it serves its own feed, B got the entry that the reopen then lost
    // (10 of 10 runs after 10 s, about five syncs; 4 of 5 after 5 s).
    wait_for_syncs_served(&a, synced, 5);
    still_serving(&a, &mut a_node, &acked);
    codes.push(send_fails_with_storage_error(&a, "refused late"));

    drop(read_only);
    let id = send_once_writable(&a, "after");
    acked.insert(id, "after".to_owned());
    for index in 0..5 {
        send_acked(&a, &mut acked, &format!("after {index}"));
    }
    check_everything(&a, &b, &acked, "read-only: after recovery");
    eprintln!(
        "read-only: stored although the send failed: {:?}",
        stored_unacknowledged(&a, &acked)
    );
    check_everything(&b, &a, &from_b, "read-only: bob's messages at alice");
    a_node.kill();
    let _a_node = a.start(&args);
    check_everything(&a, &b, &acked, "read-only: after a SIGKILL");
    eprintln!(
        "read-only test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A full disk: A's data directory is a 16 MiB tmpfs; a file fills it
/// while A runs. Sends fail with a `storage` error and nothing is
/// acknowledged; the node keeps running and answering; once the file is
/// gone sends succeed, and everything acknowledged is at B and survives a
/// SIGKILL.
#[test]
fn full_disk_reports_storage_errors_and_recovers() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let config = fast_timers_config(tmp.path());
    let a = DataDir::new(tmp.path(), "alice");
    let b = DataDir::new(tmp.path(), "bob");
    // Declared before the nodes: unmounted after they are killed.
    let _disk = Tmpfs::mount(&a.path, "16m");
    a.init();
    b.init();
    let args = ["--config", config.as_str(), "--listen", QUIC];
    let _b_node = b.start(&args);
    let mut a_node = a.start(&args);
    form_server(&b, &[&a]);
    // A admin, to author control events.
    let a_id = a.json(&["id"])["user_id"].as_str().unwrap().to_owned();
    b.json(&["role", "grant", SERVER, &a_id, "admin"]);
    eventually("A to be an admin", || {
        (a.json(&["server", "info", SERVER])["role"] == "admin").then_some(())
    });
    let mut acked = Acked::new();
    for index in 0..5 {
        send_acked(&a, &mut acked, &format!("before {index}"));
    }

    wait_for_empty_outbox(&a);
    let synced = syncs_served(&a);
    let filler = a.path.join("filler");
    let filled = fill(&filler);
    // The ledger's last page may still have room: control events and sends
    // succeed (and are durable) until it is used up. The first write that
    // fails is a control event: its flush fails after it was applied.
    for index in 0.. {
        let name = format!("while-filling-{index}");
        let created = a.run(&["channel", "create", SERVER, &name, "--json"]);
        if created.code == 0 {
            assert!(index < 100, "channels are always created on a full disk");
            continue;
        }
        assert_eq!(
            created.json()["error"]["category"],
            "storage",
            "{created:?}"
        );
        eprintln!("full disk: {index} channels created after filling");
        break;
    }
    let mut codes = Vec::new();
    for index in 0.. {
        let text = format!("while filling {index}");
        let ran = a.run(&["send", SERVER, CHANNEL, &text, "--json"]);
        if ran.code == 0 {
            acked.insert(ran.json()["message_id"].as_str().unwrap().to_owned(), text);
            assert!(index < 100, "sends never fail on a full disk");
            continue;
        }
        assert_eq!(ran.json()["error"]["category"], "storage", "{ran:?}");
        codes.push(ran.json()["error"]["code"].as_str().unwrap().to_owned());
        break;
    }
    eprintln!(
        "full disk: {} sends succeeded after filling",
        acked.len() - 5
    );
    for index in 0..5 {
        codes.push(send_fails_with_storage_error(
            &a,
            &format!("refused {index}"),
        ));
    }
    let mut from_b = Acked::new();
    for index in 0..3 {
        send_acked(
            &b,
            &mut from_b,
            &format!("from bob while alice is full {index}"),
        );
    }
    wait_for_syncs_served(&a, synced, 2);
    still_serving(&a, &mut a_node, &acked);
    codes.push(send_fails_with_storage_error(&a, "refused late"));
    eprintln!("full disk ({filled} bytes of filler): send errors {codes:?}");

    std::fs::remove_file(&filler).unwrap();
    let id = send_once_writable(&a, "after");
    acked.insert(id, "after".to_owned());
    for index in 0..5 {
        send_acked(&a, &mut acked, &format!("after {index}"));
    }
    check_everything(&a, &b, &acked, "full disk: after recovery");
    eprintln!(
        "full disk: stored although the send failed: {:?}",
        stored_unacknowledged(&a, &acked)
    );
    check_everything(&b, &a, &from_b, "full disk: bob's messages at alice");
    // The node's state is what its ledger holds: the same channels now as
    // after a restart (a failed control event is not in force in memory
    // alone).
    let live = channel_names(&a);
    eprintln!("full disk: channels after recovery {live:?}");
    a_node.kill();
    let _a_node = a.start(&args);
    check_everything(&a, &b, &acked, "full disk: after a SIGKILL");
    assert_eq!(channel_names(&a), live, "channels differ after a restart");
    eprintln!(
        "full-disk test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// How long the paused node stays stopped.
const PAUSE: Duration = Duration::from_secs(30);
/// How long it may take to catch up after SIGCONT.
const CATCH_UP_WAIT: Duration = Duration::from_secs(60);

/// Waits until `dir` holds every message of `expected`; returns how long
/// that took, or panics after `deadline`.
fn wait_until_held(dir: &DataDir, expected: &Acked, deadline: Duration, what: &str) -> Duration {
    let started = Instant::now();
    loop {
        let held = Control::connect(dir).unwrap().all_messages();
        let missing = missing_from(expected, &held);
        if missing.is_empty() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < deadline,
            "{what}: {} of {} messages missing at {} after {deadline:?}: {:?}",
            missing.len(),
            expected.len(),
            dir.name,
            &missing[..missing.len().min(20)]
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A node paused with SIGSTOP for 30 s: three members with the shipped
/// protocol timers; C is stopped while A and B keep talking (through the
/// pause and after it); after SIGCONT, C holds every message sent
/// meanwhile within a minute, its own sends work at once, and they reach
/// A and B.
#[test]
fn a_node_paused_for_30_s_catches_up() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let a = DataDir::new(tmp.path(), "alice");
    let b = DataDir::new(tmp.path(), "bob");
    let c = DataDir::new(tmp.path(), "carol");
    for dir in [&a, &b, &c] {
        dir.init();
    }
    let args = ["--listen", QUIC];
    let _a_node = a.start(&args);
    let _b_node = b.start(&args);
    let c_node = c.start(&args);
    form_server(&a, &[&b, &c]);
    let mut greetings = Acked::new();
    for dir in [&a, &b, &c] {
        send_acked(dir, &mut greetings, &format!("hello from {}", dir.name));
    }
    for dir in [&a, &b, &c] {
        wait_until_held(dir, &greetings, cli_support::WAIT, "the greetings");
    }

    // A and B talk, about three messages a second each, from before the
    // pause until C has caught up.
    let talking = Arc::new(AtomicBool::new(true));
    let said = Arc::new(std::sync::Mutex::new(Acked::new()));
    let talkers: Vec<_> = [&a, &b]
        .into_iter()
        .map(|dir| {
            let (dir, talking, said) = (dir.clone(), talking.clone(), said.clone());
            std::thread::spawn(move || {
                let mut control = Control::connect(&dir).unwrap();
                for index in 0.. {
                    if !talking.load(Ordering::Relaxed) {
                        break;
                    }
                    let text = format!("{} {index}", dir.name);
                    let ack = control
                        .send(&text)
                        .expect("the talker's node answers")
                        .unwrap_or_else(|err| panic!("{} could not send: {err}", dir.name));
                    let id = ack["message_id"].as_str().unwrap().to_owned();
                    said.lock().unwrap().insert(id, text);
                    std::thread::sleep(Duration::from_millis(300));
                }
            })
        })
        .collect();

    std::thread::sleep(Duration::from_secs(2));
    c_node.signal("STOP");
    let said_before_stop = said.lock().unwrap().len();
    std::thread::sleep(PAUSE);
    let said_while_paused = said.lock().unwrap().clone();
    c_node.signal("CONT");
    let caught_up = wait_until_held(&c, &said_while_paused, CATCH_UP_WAIT, "after SIGCONT");

    // C talks again: its send is acknowledged and reaches both.
    let send_started = Instant::now();
    let mut from_c = Acked::new();
    send_acked(&c, &mut from_c, "carol is back");
    let send_took = send_started.elapsed();
    for dir in [&a, &b] {
        wait_until_held(
            dir,
            &from_c,
            cli_support::WAIT,
            "C's message after the pause",
        );
    }

    // And what A and B said after SIGCONT arrives as well.
    talking.store(false, Ordering::Relaxed);
    for talker in talkers {
        talker.join().unwrap();
    }
    let said = said.lock().unwrap().clone();
    wait_until_held(&c, &said, cli_support::WAIT, "after the talk");
    eprintln!(
        "sigstop: {} messages sent while C was stopped ({} before), caught up {:.1} s after \
         SIGCONT; C's send took {:.2} s; {} messages in all; {:.1} s",
        said_while_paused.len() - said_before_stop,
        said_before_stop,
        caught_up.as_secs_f64(),
        send_took.as_secs_f64(),
        said.len(),
        started.elapsed().as_secs_f64()
    );
}

/// How long live delivery may take in the quick-restart test: far less
/// than its periodic sync interval, so only gossip and the syncs that a
/// (re)connection starts can pass it.
const LIVE_WAIT: Duration = Duration::from_secs(15);

/// A member killed with SIGKILL and started again at once (before the
/// other side could notice that its connection died: QUIC waits for its
/// idle timeout) is a full member again within seconds: it catches up on
/// what was said while it was gone, its sends reach the owner, and the
/// owner's reach it. Periodic sync is set to 10 minutes, so only the
/// sync and gossip of a working connection can pass. Before the overlay
/// reset a restarted peer's stale connection (`restarts.rs`), the new
/// instance never learnt the owner's topics (libp2p gossipsub announces
/// subscriptions on a first connection only) and stayed cut off.
#[test]
fn a_member_restarted_at_once_after_sigkill_is_back_in_the_conversation() {
    const ROUNDS: usize = 3;
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("slow-sync.toml");
    std::fs::write(&config, "[timers]\nsync_interval = \"10m\"\n").unwrap();
    let config = config.display().to_string();
    let owner = DataDir::new(tmp.path(), "olga");
    let member = DataDir::new(tmp.path(), "mia");
    owner.init();
    member.init();
    let args = ["--config", config.as_str(), "--listen", QUIC];
    let _owner_node = owner.start(&args);
    let mut member_node = member.start(&args);
    form_server(&owner, &[&member]);
    let mut from_member = Acked::new();
    send_acked(&member, &mut from_member, "mia says hello");
    wait_until_held(&owner, &from_member, LIVE_WAIT, "before any restart");

    let mut from_owner = Acked::new();
    let mut took = Vec::new();
    for round in 0..ROUNDS {
        member_node.kill();
        send_acked(
            &owner,
            &mut from_owner,
            &format!("while mia was away {round}"),
        );
        let restarted = Instant::now();
        member_node = member.start(&args);
        let caught_up = wait_until_held(
            &member,
            &from_owner,
            LIVE_WAIT,
            &format!("round {round}: what was said while the member was away"),
        );
        send_acked(&member, &mut from_member, &format!("mia is back {round}"));
        wait_until_held(
            &owner,
            &from_member,
            LIVE_WAIT,
            &format!("round {round}: the restarted member's message"),
        );
        send_acked(&owner, &mut from_owner, &format!("welcome back {round}"));
        wait_until_held(
            &member,
            &from_owner,
            LIVE_WAIT,
            &format!("round {round}: the owner's message after the restart"),
        );
        took.push((caught_up, restarted.elapsed()));
    }
    eprintln!(
        "quick restart: {ROUNDS} rounds (caught up, whole round since the restart): {took:?}; \
         {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
