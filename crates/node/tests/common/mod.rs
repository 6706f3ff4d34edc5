//! Helpers for multi-node tests in one process on the memory transport.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use identity_core::Identity;
use net_overlay::{Multiaddr, OverlayConfig, TransportConfig};
use node::api::{Event, HistoryPage, MessageView, Request, Response, ServerDetail};
use node::{Clock, EventStream, Node, NodeConfig, NodeHandle, NodeTimers, ReplicaScope};

pub(crate) const WAIT: Duration = Duration::from_secs(60);

pub(crate) struct TestNode {
    pub name: String,
    pub identity: Identity,
    pub dir: PathBuf,
    pub handle: NodeHandle,
    pub events: EventStream,
    pub addr: Multiaddr,
    pub listen: Multiaddr,
    pub replica: ReplicaScope,
    pub transport: TransportConfig,
    pub timers: NodeTimers,
    pub clock: Clock,
    /// Changes made to the node's configuration (see `start_tuned`).
    pub tune: fn(&mut NodeConfig),
    _tmp: Option<tempfile::TempDir>,
}

pub(crate) fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

#[allow(clippy::too_many_arguments)]
fn config(
    dir: PathBuf,
    name: &str,
    listen: Multiaddr,
    bootstrap: Vec<Multiaddr>,
    replica: ReplicaScope,
    transport: TransportConfig,
    timers: NodeTimers,
    clock: Clock,
) -> NodeConfig {
    let mut overlay = OverlayConfig::memory();
    overlay.transport = transport;
    overlay.relay_client = false;
    overlay.autonat = false;
    overlay.mdns = false;
    overlay.listen = vec![listen];
    overlay.bootstrap = bootstrap;
    let mut config = NodeConfig::new(dir, overlay);
    config.display_name = Some(name.to_owned());
    config.timers = timers;
    config.replica = replica;
    config.clock = clock;
    config
}

/// Starts a node in a fresh temporary directory.
pub(crate) async fn start(name: &str, replica: ReplicaScope, bootstrap: &[&TestNode]) -> TestNode {
    start_on(name, replica, bootstrap, TransportConfig::Memory).await
}

/// Starts a node with a given transport (e.g. a partitionable one).
pub(crate) async fn start_on(
    name: &str,
    replica: ReplicaScope,
    bootstrap: &[&TestNode],
    transport: TransportConfig,
) -> TestNode {
    start_with(name, replica, bootstrap, transport, NodeTimers::fast()).await
}

/// Starts a node with a given transport and timers.
pub(crate) async fn start_with(
    name: &str,
    replica: ReplicaScope,
    bootstrap: &[&TestNode],
    transport: TransportConfig,
    timers: NodeTimers,
) -> TestNode {
    start_tuned(
        name,
        replica,
        bootstrap,
        transport,
        timers,
        Clock::system(),
        |_| {},
    )
    .await
}

/// Starts a node (memory transport) whose clock is `offset_ms` off the
/// system clock, with the given timers.
pub(crate) async fn start_skewed(
    name: &str,
    replica: ReplicaScope,
    bootstrap: &[&TestNode],
    offset_ms: i64,
    timers: NodeTimers,
) -> TestNode {
    let clock = Clock::skewed(offset_ms);
    start_tuned(
        name,
        replica,
        bootstrap,
        TransportConfig::Memory,
        timers,
        clock,
        |_| {},
    )
    .await
}

/// Starts a node in a fresh temporary directory after `tune` changed its
/// configuration (kept across restarts).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn start_tuned(
    name: &str,
    replica: ReplicaScope,
    bootstrap: &[&TestNode],
    transport: TransportConfig,
    timers: NodeTimers,
    clock: Clock,
    tune: fn(&mut NodeConfig),
) -> TestNode {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let identity = Identity::generate(&mut rand::rng());
    let bootstrap = bootstrap.iter().map(|node| node.addr.clone()).collect();
    let listen = match transport {
        TransportConfig::Network => "/ip4/127.0.0.1/udp/0/quic-v1",
        _ => "/memory/0",
    };
    let mut node = start_in(
        name,
        identity,
        dir,
        listen.parse().unwrap(),
        bootstrap,
        replica,
        transport,
        timers,
        clock,
        tune,
    )
    .await;
    node._tmp = Some(tmp);
    node
}

#[allow(clippy::too_many_arguments)]
async fn start_in(
    name: &str,
    identity: Identity,
    dir: PathBuf,
    listen: Multiaddr,
    bootstrap: Vec<Multiaddr>,
    replica: ReplicaScope,
    transport: TransportConfig,
    timers: NodeTimers,
    clock: Clock,
    tune: fn(&mut NodeConfig),
) -> TestNode {
    let mut config = config(
        dir.clone(),
        name,
        listen,
        bootstrap,
        replica.clone(),
        transport.clone(),
        timers.clone(),
        clock,
    );
    tune(&mut config);
    let (handle, events) = Node::start(identity.clone(), config)
        .await
        .expect("node starts");
    let listen = eventually(WAIT, || {
        let handle = handle.clone();
        async move {
            match handle.request(Request::Status).await.ok()? {
                Response::Status(status) => status.listen_addrs.first()?.parse::<Multiaddr>().ok(),
                _ => None,
            }
        }
    })
    .await;
    let addr: Multiaddr = format!("{listen}/p2p/{}", identity.user_id())
        .parse()
        .unwrap();
    TestNode {
        name: name.to_owned(),
        identity,
        dir,
        handle,
        events,
        addr,
        listen,
        replica,
        transport,
        timers,
        clock,
        tune,
        _tmp: None,
    }
}

impl TestNode {
    /// Stops the node gracefully.
    pub(crate) async fn stop(&self) {
        self.handle.shutdown().await.unwrap();
    }

    /// Stops and starts the node again from its data directory, on the same
    /// address.
    pub(crate) async fn restart(self) -> TestNode {
        self.stop().await;
        self.start_again().await
    }

    /// Starts a stopped node again from its data directory.
    pub(crate) async fn start_again(mut self) -> TestNode {
        let tmp = self._tmp.take();
        let mut node = start_in(
            &self.name,
            self.identity.clone(),
            self.dir.clone(),
            self.listen.clone(),
            vec![],
            self.replica.clone(),
            self.transport.clone(),
            self.timers.clone(),
            self.clock,
            self.tune,
        )
        .await;
        node._tmp = tmp;
        node
    }

    pub(crate) async fn request(&self, request: Request) -> Response {
        self.handle
            .request(request)
            .await
            .expect("request succeeds")
    }

    /// The node's `status` view.
    pub(crate) async fn status(&self) -> node::api::StatusView {
        match self.request(Request::Status).await {
            Response::Status(status) => status,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// The sync view of `server` in the node's status (`None` once the
    /// node does not know the server).
    pub(crate) async fn server_sync(&self, server: &str) -> Option<node::api::ServerSyncView> {
        let status = self.status().await;
        status
            .servers
            .into_iter()
            .find(|view| view.server_id == server)
    }

    pub(crate) async fn create_server(&self, name: &str, public: bool) -> ServerDetail {
        match self
            .request(Request::CreateServer {
                name: name.to_owned(),
                description: format!("{name} description"),
                public,
            })
            .await
        {
            Response::Server(detail) => detail,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Creates a channel; returns what the node answered.
    pub(crate) async fn create_channel(&self, server: &str, name: &str, topic: &str) -> Response {
        self.request(Request::CreateChannel {
            server: server.to_owned(),
            name: name.to_owned(),
            topic: topic.to_owned(),
        })
        .await
    }

    pub(crate) async fn invite(&self, server: &str) -> String {
        match self
            .request(Request::CreateInvite {
                server: server.to_owned(),
                expires_in_ms: None,
                max_uses: None,
            })
            .await
        {
            Response::Invite(invite) => invite.invite,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub(crate) async fn join(&self, invite: &str) -> ServerDetail {
        match self
            .request(Request::Join {
                invite: invite.to_owned(),
            })
            .await
        {
            Response::Server(detail) => detail,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub(crate) async fn send(&self, server: &str, channel: &str, text: &str) -> String {
        match self
            .request(Request::Send {
                server: server.to_owned(),
                channel: channel.to_owned(),
                text: text.to_owned(),
                client_txn_id: None,
                reply_to: None,
            })
            .await
        {
            Response::Sent(ack) => ack.message_id,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub(crate) async fn history(
        &self,
        server: &str,
        channel: &str,
        limit: u32,
    ) -> Vec<MessageView> {
        match self
            .request(Request::History {
                server: server.to_owned(),
                channel: channel.to_owned(),
                limit,
                before: None,
            })
            .await
        {
            Response::History(HistoryPage { messages, .. }) => messages,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Texts of a channel's history, oldest first.
    pub(crate) async fn texts(&self, server: &str, channel: &str) -> Vec<String> {
        let mut texts: Vec<String> = self
            .history(server, channel, 500)
            .await
            .into_iter()
            .map(|message| message.text)
            .collect();
        texts.reverse();
        texts
    }

    /// The servers this node lists.
    pub(crate) async fn servers(&self) -> Vec<node::api::ServerView> {
        match self.request(Request::ListServers).await {
            Response::Servers { servers } => servers,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// A server's live channels.
    pub(crate) async fn channels(&self, server: &str) -> Vec<node::api::ChannelView> {
        match self
            .request(Request::ListChannels {
                server: server.to_owned(),
            })
            .await
        {
            Response::Channels { channels } => channels,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub(crate) async fn detail(&self, server: &str) -> ServerDetail {
        match self
            .request(Request::ServerInfo {
                server: server.to_owned(),
            })
            .await
        {
            Response::Server(detail) => detail,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub(crate) async fn set_bootstrap(&self, server: &str, peers: &[&TestNode]) {
        self.request(Request::SetBootstrapPeers {
            server: server.to_owned(),
            peers: peers.iter().map(|peer| peer.addr.to_string()).collect(),
        })
        .await;
    }

    /// Waits for an event matching `check`.
    pub(crate) async fn wait_event<T>(&mut self, mut check: impl FnMut(&Event) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .expect("event within the timeout")
                .expect("node running");
            if let Some(value) = check(&event) {
                return value;
            }
        }
    }
}

/// Polls `check` until it returns `Some`, or panics after `timeout`.
pub(crate) async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every node in `nodes` has seen the others subscribe to
/// `server`, then until none of them served a sync request for a second:
/// the syncs that connections and subscriptions start are over.
pub(crate) async fn settle_syncs(nodes: &[&TestNode], server: &str) {
    let others = nodes.len() - 1;
    eventually(WAIT, || async {
        for node in nodes {
            if node.server_sync(server).await?.topic_peers != others {
                return None;
            }
        }
        Some(())
    })
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut served = None;
    let mut quiet = 0;
    while quiet < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "syncs still running after {WAIT:?}"
        );
        let mut now = 0;
        for node in nodes {
            now += node.status().await.sync_requests_served;
        }
        if served == Some(now) {
            quiet += 1;
        } else {
            quiet = 0;
            served = Some(now);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until `node` shows exactly `expected` (oldest first) in a channel.
pub(crate) async fn wait_texts(node: &TestNode, server: &str, channel: &str, expected: &[String]) {
    let result = tokio::time::timeout(WAIT, async {
        loop {
            let texts = node.texts(server, channel).await;
            if texts == expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    if result.is_err() {
        let texts = node.texts(server, channel).await;
        panic!(
            "{} shows {} messages in {channel}, expected {}: {:?}",
            node.name,
            texts.len(),
            expected.len(),
            texts.iter().take(5).collect::<Vec<_>>()
        );
    }
}

/// A owns a private server whose bootstrap node is R; B joins with only
/// the invite code.
pub async fn owner_replica_and_joiner() -> (TestNode, TestNode, TestNode, String) {
    init_tracing();
    let r = start("relay", ReplicaScope::All, &[]).await;
    let a = start("alice", ReplicaScope::None, &[&r]).await;
    let server = a.create_server("garden", false).await.server.server_id;
    a.set_bootstrap(&server, &[&r]).await;
    let invite = a.invite(&server).await;
    let b = start("bob", ReplicaScope::None, &[]).await;
    let joined = b.join(&invite).await;
    assert_eq!(joined.server.server_id, server);
    wait_members(&a, &server, 2).await;
    (r, a, b, server)
}

/// Waits until `node` sees `count` members in `server`.
pub async fn wait_members(node: &TestNode, server: &str, count: usize) {
    eventually(WAIT, || async move {
        (node.detail(server).await.members.len() == count).then_some(())
    })
    .await;
}

/// Every file under `dir` (recursively) as bytes.
pub fn read_all_files(dir: &std::path::Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
    out
}

/// Whether `needle` occurs in any file under `dir`.
pub fn dir_contains(dir: &std::path::Path, needle: &[u8]) -> bool {
    read_all_files(dir)
        .iter()
        .any(|(_, bytes)| bytes.windows(needle.len()).any(|window| window == needle))
}

/// Seals a channel post as `author` would, with any seq, backlink and key:
/// what a removed or misbehaving member's node could send.
#[allow(clippy::too_many_arguments)]
pub fn forge_post(
    author: &Identity,
    server: &str,
    channel_id: &str,
    seq: u64,
    backlink: Option<&str>,
    lamport: u64,
    key: &messaging_proto::EpochKey,
    text: &str,
) -> messaging_proto::VerifiedEntry {
    use messaging_proto::{Body, EntryDraft, Payload, Sealing, ServerId, SpaceId, Text, TxnId};
    let server: ServerId = server.parse().unwrap();
    let channel: messaging_proto::ChannelId = channel_id.parse().unwrap();
    let payload = Payload {
        client_txn_id: TxnId::random(&mut rand::rng()),
        body: Body::Text(Text {
            body: text.to_owned(),
            reply_to: None,
        }),
    };
    let draft = EntryDraft {
        space: Some(SpaceId::from(server)),
        log_id: server.channel_log(&channel),
        seq,
        backlink: backlink.map(|hash| hash.parse().unwrap()),
        lamport,
        timestamp_ms: 1_800_000_000_000,
    };
    messaging_proto::VerifiedEntry::seal(
        &mut rand::rng(),
        author,
        draft,
        &payload,
        Sealing::Encrypt(key),
    )
    .unwrap()
}

/// Sends one sync request to `target` from a throw-away peer, as any peer
/// on the network could.
pub async fn ask(
    target: &TestNode,
    request: messaging_proto::SyncRequest,
) -> messaging_proto::SyncResponse {
    let identity = Identity::generate(&mut rand::rng());
    let mut config = OverlayConfig::memory();
    config.listen = vec!["/memory/0".parse().unwrap()];
    let (overlay, _events) = net_overlay::Overlay::start(&identity, config).unwrap();
    overlay.dial(target.addr.clone()).await.unwrap();
    let peer = target.identity.user_id().to_peer_id();
    let response = overlay.sync(peer, request).await.unwrap();
    overlay.shutdown().await.unwrap();
    response
}

/// Pushes raw entries to `target` from a throw-away peer; returns the
/// per-entry results.
pub async fn push_raw(
    target: &TestNode,
    space: messaging_proto::SpaceId,
    entries: Vec<messaging_proto::VerifiedEntry>,
) -> Vec<messaging_proto::PushResult> {
    let request = messaging_proto::SyncRequest::Push {
        space,
        entries: entries
            .iter()
            .map(|entry| entry.encoded().clone())
            .collect(),
        inbox: None,
    };
    match ask(target, request).await {
        messaging_proto::SyncResponse::Push(results) => results,
        other => panic!("unexpected {other:?}"),
    }
}
