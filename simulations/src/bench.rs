//! `palaver-sim bench`: the speed goals that need a network, measured with
//! real nodes on real QUIC sockets on 127.0.0.1 (`docs/benchmarks.md`).
//!
//! - `backfill`: a member that was offline while 10,000 messages were
//!   written starts with only a replica online (the author is gone) and
//!   fetches them all; timed from `Node::start` until every message is
//!   stored and shown.
//! - `cold-start`: a member starts while one message waits for it at a
//!   known bootstrap peer; timed from `Node::start` to the message event.
//!   The keyfile unlock (Argon2id with the default parameters) is timed
//!   apart and added.
//! - `bootstrap`: a real `palaver-node run` process as a bootstrap node;
//!   500 peers (bare overlays in this process) connect to it; its resident
//!   memory before and after, and its CPU time while the peers idle.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use identity_core::{Identity, KdfParams, Keyfile, Passphrase};
use net_overlay::{Multiaddr, OverlayConfig, OverlayHandle, TransportConfig};
use node::api::{Event, HistoryPage, Request, Response};
use node::{EventStream, Node, NodeConfig, NodeHandle, ReplicaScope};
use tokio::runtime::Runtime;

use crate::cluster::peer_runtime;

/// A benchmark failed to run (not: missed its goal).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BenchError(String);

fn fail(message: impl std::fmt::Display) -> BenchError {
    BenchError(message.to_string())
}

/// How long any set-up step may take.
const SETUP_WAIT: Duration = Duration::from_secs(120);
/// Sends in flight while writing the backlog.
const SENDS_IN_FLIGHT: usize = 256;
/// The passphrase of the benchmark's keyfiles.
const PASSPHRASE: &str = "palaver bench passphrase, not secret";

/// The QUIC listen address on loopback with a free port.
fn quic_any() -> Multiaddr {
    "/ip4/127.0.0.1/udp/0/quic-v1"
        .parse()
        .unwrap_or_else(|_| Multiaddr::empty())
}

fn overlay_config(bootstrap: Vec<Multiaddr>) -> OverlayConfig {
    let mut config = OverlayConfig::memory();
    config.transport = TransportConfig::Network;
    config.listen = vec![quic_any()];
    config.bootstrap = bootstrap;
    config.relay_client = false;
    config.autonat = false;
    config.mdns = false;
    config
}

/// A node on its own one-worker runtime.
struct BenchNode {
    name: String,
    identity: Identity,
    dir: PathBuf,
    runtime: Runtime,
    handle: NodeHandle,
    events: EventStream,
    addr: Multiaddr,
}

impl BenchNode {
    fn start(
        name: &str,
        identity: Identity,
        dir: &Path,
        replica: ReplicaScope,
        bootstrap: Vec<Multiaddr>,
    ) -> Result<Self, BenchError> {
        let runtime = peer_runtime(name).map_err(fail)?;
        let mut config = NodeConfig::new(dir.to_path_buf(), overlay_config(bootstrap));
        config.display_name = Some(name.to_owned());
        config.replica = replica;
        config.event_capacity = 65_536;
        let (handle, events) = runtime
            .block_on(Node::start(identity.clone(), config))
            .map_err(|err| fail(format!("{name} does not start: {err}")))?;
        let deadline = Instant::now() + SETUP_WAIT;
        let listen = loop {
            if let Ok(Response::Status(status)) = runtime.block_on(handle.request(Request::Status))
                && let Some(addr) = status.listen_addrs.first()
                && let Ok(addr) = addr.parse::<Multiaddr>()
            {
                break addr;
            }
            if Instant::now() > deadline {
                return Err(fail(format!("{name} has no listen address")));
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let addr = format!("{listen}/p2p/{}", identity.user_id())
            .parse()
            .map_err(fail)?;
        Ok(Self {
            name: name.to_owned(),
            identity,
            dir: dir.to_path_buf(),
            runtime,
            handle,
            events,
            addr,
        })
    }

    fn request(&self, request: Request) -> Result<Response, BenchError> {
        self.runtime
            .block_on(self.handle.request(request))
            .map_err(|err| fail(format!("{}: {err}", self.name)))
    }

    fn stop(self) -> Result<(), BenchError> {
        self.runtime
            .block_on(self.handle.shutdown())
            .map_err(|err| fail(format!("{} does not stop: {err}", self.name)))
    }

    fn ledger_entries(&self) -> Result<u64, BenchError> {
        match self.request(Request::Status)? {
            Response::Status(status) => Ok(status.ledger_entries),
            other => Err(fail(format!("unexpected {other:?}"))),
        }
    }

    fn newest_text(&self, server: &str) -> Result<Option<String>, BenchError> {
        match self.request(Request::History {
            server: server.to_owned(),
            channel: "general".to_owned(),
            limit: 1,
            before: None,
        })? {
            Response::History(HistoryPage { messages, .. }) => {
                Ok(messages.into_iter().next().map(|message| message.text))
            }
            other => Err(fail(format!("unexpected {other:?}"))),
        }
    }

    fn create_server(&self) -> Result<String, BenchError> {
        match self.request(Request::CreateServer {
            name: "bench".into(),
            description: String::new(),
            public: false,
        })? {
            Response::Server(detail) => Ok(detail.server.server_id),
            other => Err(fail(format!("unexpected {other:?}"))),
        }
    }

    fn invite(&self, server: &str) -> Result<String, BenchError> {
        match self.request(Request::CreateInvite {
            server: server.to_owned(),
            expires_in_ms: None,
            max_uses: None,
        })? {
            Response::Invite(invite) => Ok(invite.invite),
            other => Err(fail(format!("unexpected {other:?}"))),
        }
    }

    fn join(&self, invite: &str) -> Result<(), BenchError> {
        self.request(Request::Join {
            invite: invite.to_owned(),
        })
        .map(drop)
    }

    fn members(&self, server: &str) -> Result<usize, BenchError> {
        match self.request(Request::ServerInfo {
            server: server.to_owned(),
        })? {
            Response::Server(detail) => Ok(detail.members.len()),
            other => Err(fail(format!("unexpected {other:?}"))),
        }
    }

    /// Sends `texts` to `general`, `SENDS_IN_FLIGHT` at a time; returns
    /// the time until the last was acknowledged.
    fn send_all(&self, server: &str, texts: Vec<String>) -> Result<Duration, BenchError> {
        let handle = self.handle.clone();
        let server = server.to_owned();
        self.runtime.block_on(async move {
            let start = Instant::now();
            let results: Vec<Result<(), String>> = stream::iter(texts)
                .map(|text| {
                    let (handle, server) = (handle.clone(), server.clone());
                    async move {
                        match handle
                            .request(Request::Send {
                                server,
                                channel: "general".into(),
                                text,
                                client_txn_id: None,
                                reply_to: None,
                            })
                            .await
                        {
                            Ok(Response::Sent(_)) => Ok(()),
                            Ok(other) => Err(format!("unexpected {other:?}")),
                            Err(err) => Err(err.to_string()),
                        }
                    }
                })
                .buffer_unordered(SENDS_IN_FLIGHT)
                .collect()
                .await;
            results
                .into_iter()
                .collect::<Result<Vec<()>, _>>()
                .map_err(fail)?;
            Ok(start.elapsed())
        })
    }
}

/// Polls `check` every 5 ms until it holds or `timeout` passes.
fn wait_for(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<bool, BenchError>,
) -> Result<(), BenchError> {
    let deadline = Instant::now() + timeout;
    while !check()? {
        if Instant::now() > deadline {
            return Err(fail(format!("{what}: not within {timeout:?}")));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

fn text_of(i: u64) -> String {
    // About 1 KiB per message.
    format!("{i:08} {}", "m".repeat(1_015))
}

/// Results of `backfill`.
#[derive(Debug)]
pub struct BackfillResult {
    /// Messages written while the member was away.
    pub messages: u64,
    /// How long writing them took at the author (acknowledged = durable).
    pub author_time: Duration,
    /// From `Node::start` of the returning member to every message stored
    /// and the newest shown.
    pub backfill_time: Duration,
    /// CPU time per thread name of this process during the backfill,
    /// largest first.
    pub backfill_cpu: Vec<(String, Duration)>,
}

/// CPU time (user + system) of each thread of this process, by name.
fn thread_cpu() -> std::collections::BTreeMap<String, Duration> {
    let mut by_name = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_name;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let (Ok(name), Ok(stat)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("stat")),
        ) else {
            continue;
        };
        if let Some(cpu) = stat_cpu(&stat) {
            *by_name
                .entry(name.trim().to_owned())
                .or_insert(Duration::ZERO) += cpu;
        }
    }
    by_name
}

/// Threads' CPU time between two readings (threads that ended in between
/// are missed), largest first.
fn cpu_delta(
    before: &std::collections::BTreeMap<String, Duration>,
    after: &std::collections::BTreeMap<String, Duration>,
) -> Vec<(String, Duration)> {
    let mut delta: Vec<(String, Duration)> = after
        .iter()
        .map(|(name, cpu)| {
            let earlier = before.get(name).copied().unwrap_or(Duration::ZERO);
            (name.clone(), cpu.saturating_sub(earlier))
        })
        .filter(|(_, cpu)| !cpu.is_zero())
        .collect();
    delta.sort_by_key(|(_, cpu)| std::cmp::Reverse(*cpu));
    delta
}

/// User + system CPU time from a `/proc/…/stat` line.
fn stat_cpu(stat: &str) -> Option<Duration> {
    // Fields after the command name (which may hold spaces) in parentheses;
    // utime and stime are fields 14 and 15 of the line (11 and 12 here).
    let rest = stat.rsplit_once(") ")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // Linux reports in USER_HZ, 100 per second on every common build.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// A member offline while `messages` are written; the author leaves; the
/// member returns with only the replica online.
///
/// # Errors
/// When a step of the set-up fails or times out.
pub fn backfill(root: &Path, messages: u64) -> Result<BackfillResult, BenchError> {
    let replica = BenchNode::start(
        "replica",
        Identity::generate(&mut rand::rng()),
        &root.join("replica"),
        ReplicaScope::All,
        vec![],
    )?;
    let author = BenchNode::start(
        "author",
        Identity::generate(&mut rand::rng()),
        &root.join("author"),
        ReplicaScope::None,
        vec![replica.addr.clone()],
    )?;
    let server = author.create_server()?;
    author.request(Request::SetBootstrapPeers {
        server: server.clone(),
        peers: vec![replica.addr.to_string()],
    })?;
    let member = BenchNode::start(
        "member",
        Identity::generate(&mut rand::rng()),
        &root.join("member"),
        ReplicaScope::None,
        vec![replica.addr.clone()],
    )?;
    member.join(&author.invite(&server)?)?;
    wait_for("the join reaches the author", SETUP_WAIT, || {
        Ok(author.members(&server)? == 2)
    })?;
    let replica_before = replica.ledger_entries()?;
    let member_before = member.ledger_entries()?;
    wait_for("the replica holds the member's join", SETUP_WAIT, || {
        Ok(replica.ledger_entries()? >= member_before)
    })?;
    let member_identity = member.identity.clone();
    member.stop()?;

    let texts: Vec<String> = (1..=messages).map(text_of).collect();
    let last = texts.last().cloned();
    let author_time = author.send_all(&server, texts)?;
    wait_for("the replica holds the backlog", SETUP_WAIT, || {
        Ok(replica.ledger_entries()? >= replica_before + messages)
    })?;
    author.stop()?;

    let cpu_before = thread_cpu();
    let start = Instant::now();
    let member = BenchNode::start(
        "member",
        member_identity,
        &root.join("member"),
        ReplicaScope::None,
        vec![replica.addr.clone()],
    )?;
    wait_for("the member backfills", SETUP_WAIT, || {
        Ok(member.ledger_entries()? >= member_before + messages
            && member.newest_text(&server)? == last)
    })?;
    let backfill_time = start.elapsed();
    let backfill_cpu = cpu_delta(&cpu_before, &thread_cpu());
    member.stop()?;
    replica.stop()?;
    Ok(BackfillResult {
        messages,
        author_time,
        backfill_time,
        backfill_cpu,
    })
}

/// Results of `cold_start`.
#[derive(Debug)]
pub struct ColdStartResult {
    /// `Node::start` to the waiting message's event, per round.
    pub start_to_message: Vec<Duration>,
    /// One keyfile unlock with the default Argon2id parameters.
    pub unlock: Duration,
}

/// `rounds` times: the member stops, the peer posts one message, the
/// member starts knowing the peer's address; timed until the message event.
///
/// # Errors
/// When a step of the set-up fails or times out.
pub fn cold_start(root: &Path, rounds: u32) -> Result<ColdStartResult, BenchError> {
    let identity = Identity::generate(&mut rand::rng());
    let passphrase = Passphrase::new(PASSPHRASE);
    let sealed = Keyfile::seal_with_passphrase(
        &mut rand::rng(),
        &identity,
        &passphrase,
        KdfParams::default(),
    )
    .map_err(fail)?;
    let started = Instant::now();
    let unlocked = Keyfile::parse(&sealed)
        .and_then(|file| file.unlock_with_passphrase(&passphrase))
        .map_err(fail)?;
    let unlock = started.elapsed();

    let peer = BenchNode::start(
        "peer",
        Identity::generate(&mut rand::rng()),
        &root.join("peer"),
        ReplicaScope::None,
        vec![],
    )?;
    let server = peer.create_server()?;
    let mut member = BenchNode::start(
        "member",
        unlocked,
        &root.join("member"),
        ReplicaScope::None,
        vec![peer.addr.clone()],
    )?;
    member.join(&peer.invite(&server)?)?;
    wait_for("the join reaches the peer", SETUP_WAIT, || {
        Ok(peer.members(&server)? == 2)
    })?;
    let mut start_to_message = Vec::new();
    for round in 0..rounds {
        let (identity, dir) = (member.identity.clone(), member.dir.clone());
        member.stop()?;
        let text = format!("cold start {round}");
        peer.send_all(&server, vec![text.clone()])?;
        let started = Instant::now();
        member = BenchNode::start(
            "member",
            identity,
            &dir,
            ReplicaScope::None,
            vec![peer.addr.clone()],
        )?;
        let seen = member.runtime.block_on(async {
            tokio::time::timeout(SETUP_WAIT, async {
                while let Some(event) = member.events.recv().await {
                    if let Event::Message { message, .. } = event
                        && message.text == text
                    {
                        return true;
                    }
                }
                false
            })
            .await
        });
        if seen != Ok(true) {
            return Err(fail(format!("round {round}: the message never arrived")));
        }
        start_to_message.push(started.elapsed());
    }
    member.stop()?;
    peer.stop()?;
    Ok(ColdStartResult {
        start_to_message,
        unlock,
    })
}

/// Results of `bootstrap`.
#[derive(Debug)]
pub struct BootstrapResult {
    /// Most peers the node reported connected at once.
    pub connected: usize,
    /// Peers still connected at the end of the idle window.
    pub connected_after_idle: usize,
    /// Resident memory of the node before any peer (bytes).
    pub rss_before: u64,
    /// Resident memory when the most peers were connected (bytes).
    pub rss_after: u64,
    /// The idle window.
    pub idle: Duration,
    /// CPU time the node used during the idle window.
    pub idle_cpu: Duration,
}

/// A `palaver-node run` child process, killed when dropped.
struct NodeProcess(Child);

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn palaver_node(bin: &Path, dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(bin);
    command
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("PALAVER_PASSPHRASE", PASSPHRASE)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    command
}

fn node_status(bin: &Path, dir: &Path) -> Option<serde_json::Value> {
    let output = palaver_node(bin, dir, &["status", "--json"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| serde_json::from_slice(&output.stdout).ok())
        .flatten()
}

/// `VmRSS` of a process, in bytes.
fn rss_bytes(pid: u32) -> Result<u64, BenchError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(fail)?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
        .ok_or_else(|| fail("no VmRSS"))
}

/// User + system CPU time of a process.
fn cpu_time(pid: u32) -> Result<Duration, BenchError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(fail)?;
    stat_cpu(&stat).ok_or_else(|| fail("unreadable /proc stat"))
}

fn connected_peers(bin: &Path, dir: &Path) -> usize {
    node_status(bin, dir)
        .and_then(|status| status["connected_peers"].as_u64())
        .and_then(|count| usize::try_from(count).ok())
        .unwrap_or(0)
}

/// A bootstrap node (`bin`, a `palaver-node`) with `peers` connected.
///
/// # Errors
/// When a step of the set-up fails or times out.
pub fn bootstrap(
    root: &Path,
    bin: &Path,
    peers: usize,
    idle: Duration,
) -> Result<BootstrapResult, BenchError> {
    let dir = root.join("bootstrap");
    let init = palaver_node(bin, &dir, &["init", "--name", "bootstrap", "--json"])
        .output()
        .map_err(|err| fail(format!("cannot run {}: {err}", bin.display())))?;
    if !init.status.success() {
        return Err(fail(format!(
            "palaver-node init failed: {}",
            String::from_utf8_lossy(&init.stderr)
        )));
    }
    let log = std::fs::File::create(root.join("bootstrap.log")).map_err(fail)?;
    let child = palaver_node(
        bin,
        &dir,
        &["run", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1"],
    )
    .stdout(Stdio::null())
    .stderr(log)
    .spawn()
    .map_err(fail)?;
    let process = NodeProcess(child);
    let pid = process.0.id();
    let mut address = None;
    wait_for("the bootstrap node answers", SETUP_WAIT, || {
        address = node_status(bin, &dir).and_then(|status| {
            let addr = status["listen_addrs"]
                .as_array()?
                .first()?
                .as_str()?
                .to_owned();
            let id = status["user_id"].as_str()?.to_owned();
            format!("{addr}/p2p/{id}").parse::<Multiaddr>().ok()
        });
        Ok(address.is_some())
    })?;
    let address = address.ok_or_else(|| fail("no address"))?;
    // Let start-up allocations settle before the baseline.
    std::thread::sleep(Duration::from_secs(5));
    let rss_before = rss_bytes(pid)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-peers")
        .enable_all()
        .build()
        .map_err(fail)?;
    let overlays: Vec<OverlayHandle> = runtime.block_on(async {
        let mut overlays = Vec::with_capacity(peers);
        for _ in 0..peers {
            let mut config = overlay_config(vec![address.clone()]);
            // Bare peers: no DHT server role, long idle timeout.
            config.idle_connection_timeout = Duration::from_secs(3_600);
            let (overlay, mut events) =
                net_overlay::Overlay::start(&Identity::generate(&mut rand::rng()), config)
                    .map_err(fail)?;
            tokio::spawn(async move { while events.recv().await.is_some() {} });
            overlays.push(overlay);
        }
        Ok::<_, BenchError>(overlays)
    })?;
    // Wait until every peer is connected, or until the count has stopped
    // growing for 30 s (the node closes connections that stay idle for its
    // idle timeout, so a peer that connected early may be gone again);
    // memory is read when the most peers were connected.
    let deadline = Instant::now() + SETUP_WAIT * 2;
    let (mut connected, mut rss_after, mut last_growth) = (0, rss_bytes(pid)?, Instant::now());
    while Instant::now() < deadline && last_growth.elapsed() < Duration::from_secs(30) {
        let now = connected_peers(bin, &dir);
        if now > connected {
            connected = now;
            rss_after = rss_bytes(pid)?;
            last_growth = Instant::now();
        }
        if connected >= peers {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let cpu_start = cpu_time(pid)?;
    std::thread::sleep(idle);
    let idle_cpu = cpu_time(pid)?.saturating_sub(cpu_start);
    let connected_after_idle = connected_peers(bin, &dir);
    runtime.block_on(async {
        for overlay in &overlays {
            let _ = overlay.shutdown().await;
        }
    });
    drop(process);
    Ok(BootstrapResult {
        connected,
        connected_after_idle,
        rss_before,
        rss_after,
        idle,
        idle_cpu,
    })
}
