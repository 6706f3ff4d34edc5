//! The node's hot paths with 1 KiB messages, measured through the real node
//! (sled ledger, real crypto, libp2p memory transport):
//!
//! - `primitives_1k`: the costs the receive path cannot avoid, measured in
//!   the same run: strict Ed25519 verification of an encoded entry
//!   (`verify`), XChaCha20-Poly1305 decryption (`decrypt`) and one sled
//!   insert of the entry's bytes (`sled_insert`).
//! - `receive_1k`: another member's entries pushed to a node over the sync
//!   protocol, 64 per push (the protocol's most), eight pushes in flight.
//!   The node decodes, verifies, checks membership and permission,
//!   decrypts, appends with group commit and updates its views. The node
//!   runs on a runtime with one worker thread.
//! - `author_1k`: `Request::Send` through the node's handle, 256 in flight
//!   (encrypt, sign, durable append, gossip publish to one subscribed
//!   peer). Each send is answered once its entry is durable.
//!
//! Each path is reported twice: `wall` is elapsed time; `node_cpu` is the
//! CPU time the node's own threads used meanwhile (its runtime worker, the
//! group committer and sled's threads; read from `/proc/self/task/*/schedstat`),
//! so its throughput is messages per second of one core whatever else the
//! machine runs. The primitives are timed in CPU time of their thread too.
//! The sending side (a bare overlay, and the bench's own thread) is never
//! counted. Sealing the entries a push carries happens outside the timed
//! part.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub,
    dead_code
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::stream::{self, StreamExt};
use identity_core::Identity;
use messaging_proto::test_utils::FeedWriter;
use messaging_proto::{
    ChannelId, EpochKey, PushResult, ServerId, SpaceId, SyncErrorCode, SyncRequest, SyncResponse,
    VerifiedEntry,
};
use net_overlay::{OverlayConfig, OverlayHandle, PeerId};
use node::api::{Request, Response};
use node::{NodeTimers, ReplicaScope};
use parking_lot::Mutex;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::runtime::Runtime;

/// The allocator of the shipped binaries (`palaver-node`, `palaver`,
/// `palaver-sim`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Characters of text per message.
const TEXT_LEN: usize = 1_024;
/// Entries per push request (`limits::MAX_PUSH_ENTRIES`).
const PUSH_ENTRIES: usize = 64;
/// Push requests in flight.
const PUSHES_IN_FLIGHT: usize = 8;
/// Sends in flight on the author path.
const SENDS_IN_FLIGHT: usize = 256;

fn runtime(name: &str, workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        .enable_all()
        .build()
        .unwrap()
}

/// One member's feed in the general channel of a server, sealed with the
/// server's current key.
fn sample_feed(
    identity: Identity,
    server: ServerId,
    channel: ChannelId,
    key: EpochKey,
) -> FeedWriter {
    FeedWriter::new(
        identity,
        SpaceId::from(server),
        server.channel_log(&channel),
        key,
    )
}

/// CPU time of this process's threads whose name `counts`, from
/// `/proc/self/task/*/schedstat` (nanoseconds).
fn threads_cpu(counts: impl Fn(&str) -> bool) -> Duration {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let path = task.path();
        let (Ok(name), Ok(stat)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("schedstat")),
        ) else {
            continue; // the thread ended
        };
        if counts(name.trim()) {
            total += stat
                .split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(total)
}

/// The measured node's threads: its runtime (worker and blocking threads
/// are all named `node`), the group committer and sled's threads. Nothing
/// else in this process opens a sled database while a path is timed.
fn is_node_thread(name: &str) -> bool {
    name == "node" || name.starts_with("ledger") || name.starts_with("sled")
}

/// CPU time of the calling thread, from its CPU clock: exact, where
/// `/proc/thread-self/schedstat` lags by up to a scheduler tick while the
/// thread runs (a primitive timed over a few iterations read as zero).
fn this_thread_cpu() -> Duration {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap();
    Duration::new(
        u64::try_from(now.tv_sec()).unwrap(),
        u32::try_from(now.tv_nsec()).unwrap(),
    )
}

/// What a path run measured.
#[derive(Clone, Copy)]
enum Clock {
    Wall,
    NodeCpu,
}

impl Clock {
    fn measure(self, run: impl FnOnce() -> Duration) -> Duration {
        match self {
            Clock::Wall => run(),
            Clock::NodeCpu => {
                let before = threads_cpu(is_node_thread);
                run();
                threads_cpu(is_node_thread).saturating_sub(before)
            }
        }
    }
}

/// A server whose owner is the measured node (one worker thread), with a
/// member whose entries are pushed (its node stopped after joining) and,
/// for publishing, a bare overlay subscribed to the server's topic.
struct Setup {
    node_rt: Runtime,
    client_rt: Runtime,
    owner: common::TestNode,
    server: String,
    general: String,
    pusher_feed: Mutex<FeedWriter>,
    /// Bare overlays that push (the node allows each peer 50 sync requests
    /// a second; one per push in flight keeps that limit out of the way).
    overlays: Vec<OverlayHandle>,
}

fn start_setup() -> Setup {
    let node_rt = runtime("node", 1);
    let client_rt = runtime("client", 1);
    let owner = node_rt.block_on(common::start_with(
        "owner",
        ReplicaScope::None,
        &[],
        net_overlay::TransportConfig::Memory,
        NodeTimers::default(),
    ));
    let (server, general, invite) = node_rt.block_on(async {
        let detail = owner.create_server("bench", false).await;
        let general = detail.channels[0].channel_id.clone();
        let server = detail.server.server_id.clone();
        let invite = owner.invite(&server).await;
        (server, general, invite)
    });
    let key = node::invite_code::parse(&invite, 0)
        .unwrap()
        .invite()
        .key
        .clone();
    let pusher_identity = client_rt.block_on(async {
        let pusher = common::start_with(
            "pusher",
            ReplicaScope::None,
            &[&owner],
            net_overlay::TransportConfig::Memory,
            NodeTimers::default(),
        )
        .await;
        pusher.join(&invite).await;
        common::wait_members(&owner, &server, 2).await;
        let identity = pusher.identity.clone();
        pusher.stop().await;
        identity
    });
    let server_id: ServerId = server.parse().unwrap();
    let channel: ChannelId = general.parse().unwrap();
    let pusher_feed = Mutex::new(sample_feed(pusher_identity, server_id, channel, key));
    let overlays = client_rt.block_on(async {
        let mut overlays = Vec::new();
        for _ in 0..PUSHES_IN_FLIGHT {
            let mut config = OverlayConfig::memory();
            config.listen = vec!["/memory/0".parse().unwrap()];
            config.mdns = false;
            config.autonat = false;
            config.relay_client = false;
            let (overlay, mut events) =
                net_overlay::Overlay::start(&Identity::generate(&mut rand::rng()), config).unwrap();
            tokio::spawn(async move { while events.recv().await.is_some() {} });
            overlay.dial(owner.addr.clone()).await.unwrap();
            overlays.push(overlay);
        }
        // One of them is the gossip peer the author path publishes to.
        overlays[0].subscribe(server_id).await.unwrap();
        overlays
    });
    Setup {
        node_rt,
        client_rt,
        owner,
        server,
        general,
        pusher_feed,
        overlays,
    }
}

impl Setup {
    /// The next `count` entries of the pushing member's feed.
    fn seal(&self, count: u64) -> Vec<Bytes> {
        let mut rng = StdRng::from_rng(&mut rand::rng());
        let text = "x".repeat(TEXT_LEN);
        let mut feed = self.pusher_feed.lock();
        (0..count)
            .map(|_| feed.text(&mut rng, &text).encoded().clone())
            .collect()
    }
    /// Pushes `entries` (in feed order) to the owner; every one must be
    /// stored.
    fn push(&self, entries: Vec<Bytes>) -> Duration {
        let space = SpaceId::from(self.server.parse::<ServerId>().unwrap());
        let peer: PeerId = self.owner.identity.user_id().to_peer_id();
        let overlays = self.overlays.clone();
        let chunks: Vec<Vec<Bytes>> = entries
            .chunks(PUSH_ENTRIES)
            .map(<[Bytes]>::to_vec)
            .collect();
        self.client_rt.block_on(async move {
            let start = Instant::now();
            let results: Vec<Vec<PushResult>> = stream::iter(chunks.into_iter().enumerate())
                .map(|(index, chunk)| {
                    let overlay = overlays[index % overlays.len()].clone();
                    async move {
                        loop {
                            let request = SyncRequest::Push {
                                space,
                                entries: chunk.clone(),
                                inbox: None,
                            };
                            match overlay.sync(peer, request).await.unwrap() {
                                SyncResponse::Push(results) => return results,
                                SyncResponse::Error(error)
                                    if error.code == SyncErrorCode::RateLimited =>
                                {
                                    let wait = error.retry_after_ms.unwrap_or(20);
                                    tokio::time::sleep(Duration::from_millis(wait)).await;
                                }
                                other => panic!("unexpected {other:?}"),
                            }
                        }
                    }
                })
                .buffered(PUSHES_IN_FLIGHT)
                .collect()
                .await;
            let elapsed = start.elapsed();
            for result in results.iter().flatten() {
                // A push that overtakes the previous one in flight is held
                // as a gap and stored when its predecessor arrives.
                assert!(
                    matches!(result, PushResult::Stored | PushResult::Gap),
                    "push refused: {result:?}"
                );
            }
            elapsed
        })
    }

    /// `count` sends through the owner's handle, `SENDS_IN_FLIGHT` at a time.
    fn send(&self, count: u64) -> Duration {
        let handle = self.owner.handle.clone();
        let (server, general) = (self.server.clone(), self.general.clone());
        let text = Arc::new("y".repeat(TEXT_LEN));
        self.client_rt.block_on(async move {
            let start = Instant::now();
            let sent: Vec<()> = stream::iter(0..count)
                .map(|_| {
                    let (handle, server, channel, text) = (
                        handle.clone(),
                        server.clone(),
                        general.clone(),
                        text.clone(),
                    );
                    async move {
                        match handle
                            .request(Request::Send {
                                server,
                                channel,
                                text: text.as_str().to_owned(),
                                client_txn_id: None,
                                reply_to: None,
                            })
                            .await
                            .unwrap()
                        {
                            Response::Sent(_) => {}
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                })
                .buffer_unordered(SENDS_IN_FLIGHT)
                .collect()
                .await;
            black_box(sent);
            start.elapsed()
        })
    }
}

fn primitives(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(7);
    let server = ServerId::from_bytes([1; 32]);
    let channel = ChannelId::from_bytes([2; 16]);
    let key = EpochKey::from_bytes(1, [3; 32]);
    let mut feed = sample_feed(Identity::generate(&mut rng), server, channel, key.clone());
    let entry = feed.text(&mut rng, &"x".repeat(TEXT_LEN));
    let encoded = entry.encoded().clone();

    let mut group = c.benchmark_group("primitives_1k");
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify", |b| {
        b.iter_custom(|iters| {
            let start = this_thread_cpu();
            for _ in 0..iters {
                VerifiedEntry::verify(black_box(encoded.clone())).unwrap();
            }
            this_thread_cpu() - start
        });
    });
    group.bench_function("decrypt", |b| {
        b.iter_custom(|iters| {
            let start = this_thread_cpu();
            for _ in 0..iters {
                black_box(&entry).open(&key).unwrap();
            }
            this_thread_cpu() - start
        });
    });
    let dir = tempfile::tempdir().unwrap();
    let db = sled::Config::new().path(dir.path()).open().unwrap();
    let tree = db.open_tree("entries").unwrap();
    let mut n: u64 = 0;
    group.bench_function("sled_insert", |b| {
        b.iter_custom(|iters| {
            // sled's own threads (flusher) work for the inserts too.
            let start = this_thread_cpu() + threads_cpu(|name| name.starts_with("sled"));
            for _ in 0..iters {
                n += 1;
                let mut key = [0u8; 40];
                key[..32].copy_from_slice(entry.hash().as_bytes());
                key[32..].copy_from_slice(&n.to_be_bytes());
                tree.insert(key, encoded.as_ref()).unwrap();
            }
            this_thread_cpu() + threads_cpu(|name| name.starts_with("sled")) - start
        });
    });
    group.finish();
    drop(tree);
    drop(db);
}

/// One path as a criterion group timed in both clocks; `run(setup, n,
/// clock)` sends `n` messages through it.
fn bench_path(
    c: &mut Criterion,
    group_name: &str,
    setup: &Setup,
    run: impl Fn(&Setup, u64, Clock) -> Duration,
) {
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    for (name, clock) in [("wall", Clock::Wall), ("node_cpu", Clock::NodeCpu)] {
        group.bench_function(name, |b| b.iter_custom(|iters| run(setup, iters, clock)));
    }
    group.finish();
}

/// Each path gets a fresh node, so that one path's leftovers (an outbox
/// of unconfirmed entries, a larger ledger) do not weigh on the other.
fn paths(c: &mut Criterion) {
    let setup = start_setup();
    bench_path(c, "author_1k", &setup, |setup, iters, clock| {
        clock.measure(|| setup.send(iters))
    });
    setup.stop();

    let setup = start_setup();
    bench_path(c, "receive_1k", &setup, |setup, iters, clock| {
        let entries = setup.seal(iters);
        clock.measure(|| setup.push(entries))
    });
    setup.stop();
}

impl Setup {
    fn stop(self) {
        let Setup {
            node_rt,
            client_rt,
            owner,
            overlays,
            ..
        } = self;
        client_rt.block_on(async {
            for overlay in overlays {
                overlay.shutdown().await.unwrap();
            }
        });
        node_rt.block_on(owner.stop());
    }
}

criterion_group!(benches, primitives, paths);
criterion_main!(benches);
