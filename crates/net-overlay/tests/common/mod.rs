//! Helpers for the overlay's integration tests: nodes that validate gossip
//! the way the node will (decode, verify the entry's signature) and answer
//! sync requests with a given function.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use identity_core::Identity;
use messaging_proto::test_utils::FeedWriter;
use messaging_proto::{
    Body, ChannelId, ControlEvent, CreateServer, EntryDraft, EpochKey, GossipMessage, LogId,
    Payload, Sealing, ServerAdvert, ServerId, SignedAdvert, SpaceId, SyncRequest, SyncResponse,
    TxnId, VerifiedEntry, Visibility,
};
use net_overlay::{
    GossipVerdict, Multiaddr, Overlay, OverlayConfig, OverlayEvent, OverlayHandle, PeerId,
};
use tokio::sync::mpsc;

pub(crate) const WAIT: Duration = Duration::from_secs(30);

pub(crate) type Responder = Arc<dyn Fn(PeerId, SyncRequest) -> SyncResponse + Send + Sync>;

pub(crate) struct TestNode {
    pub identity: Identity,
    pub handle: OverlayHandle,
    pub peer: PeerId,
    pub addr: Multiaddr,
    pub delivered: mpsc::UnboundedReceiver<(ServerId, VerifiedEntry)>,
    pub others: mpsc::UnboundedReceiver<OverlayEvent>,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Starts a node with `config` (its listen list is used as is) and waits
/// until it listens.
pub(crate) async fn spawn_with(config: OverlayConfig, responder: Option<Responder>) -> TestNode {
    spawn_identity(Identity::generate(&mut rand::rng()), config, responder).await
}

pub(crate) async fn spawn_identity(
    identity: Identity,
    config: OverlayConfig,
    responder: Option<Responder>,
) -> TestNode {
    let (handle, mut events) = Overlay::start(&identity, config).expect("overlay starts");
    let (delivered_tx, delivered) = mpsc::unbounded_channel();
    let (others_tx, others) = mpsc::unbounded_channel();
    let driver = handle.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                OverlayEvent::Gossip {
                    server,
                    source,
                    id,
                    data,
                } => {
                    let entry = match GossipMessage::from_bytes(&data) {
                        Ok(GossipMessage::Entry(bytes)) => VerifiedEntry::verify(bytes).ok(),
                        Err(_) => None,
                    };
                    let verdict = if entry.is_some() {
                        GossipVerdict::Accept
                    } else {
                        GossipVerdict::Reject
                    };
                    let _ = driver.report_gossip(id, source, verdict).await;
                    if let Some(entry) = entry {
                        let _ = delivered_tx.send((server, entry));
                    }
                }
                OverlayEvent::SyncRequest {
                    peer,
                    request,
                    token,
                } => {
                    if let Some(responder) = &responder {
                        let response = responder(peer, request);
                        let _ = driver.respond_sync(token, response).await;
                    }
                }
                other => {
                    let _ = others_tx.send(other);
                }
            }
        }
    });
    let peer = handle.peer_id();
    let listen = eventually(WAIT, || {
        let handle = handle.clone();
        async move {
            let status = handle.status().await.ok()?;
            status.listen_addrs.first().cloned()
        }
    })
    .await;
    let addr: Multiaddr = format!("{listen}/p2p/{peer}").parse().unwrap();
    TestNode {
        identity,
        handle,
        peer,
        addr,
        delivered,
        others,
    }
}

/// A memory-transport node that bootstraps from `bootstrap`.
pub(crate) async fn spawn_memory(bootstrap: &[&TestNode]) -> TestNode {
    spawn_with(memory_config(bootstrap), None).await
}

pub(crate) fn memory_config(bootstrap: &[&TestNode]) -> OverlayConfig {
    let mut config = OverlayConfig::memory();
    config.listen = vec!["/memory/0".parse().unwrap()];
    config.bootstrap = bootstrap.iter().map(|node| node.addr.clone()).collect();
    config
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
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Receives the next delivered entry, or panics after `timeout`.
pub(crate) async fn next_delivery(
    node: &mut TestNode,
    timeout: Duration,
) -> (ServerId, VerifiedEntry) {
    tokio::time::timeout(timeout, node.delivered.recv())
        .await
        .expect("delivery within the timeout")
        .expect("driver alive")
}

/// A text entry of a fresh feed, wrapped as a gossip message.
pub(crate) fn gossip_entry(feed: &mut FeedWriter, text: &str) -> (VerifiedEntry, Bytes) {
    let entry = feed.text(&mut rand::rng(), text);
    let data = Bytes::from(GossipMessage::Entry(entry.encoded().clone()).to_bytes());
    (entry, data)
}

pub(crate) fn feed(server: ServerId) -> FeedWriter {
    let mut rng = rand::rng();
    FeedWriter::new(
        Identity::generate(&mut rng),
        SpaceId::from(server),
        LogId::from_bytes([7; 32]),
        EpochKey::generate(&mut rng, 1),
    )
}

/// A server genesis by `owner` and a signed public advert for it.
pub(crate) fn public_advert(
    owner: &Identity,
    name: &str,
    seq: u64,
    expires_at_ms: u64,
    now: u64,
) -> SignedAdvert {
    let genesis = genesis(owner, name);
    let advert = ServerAdvert {
        server_id: genesis.genesis_of().unwrap(),
        genesis,
        name: name.to_owned(),
        description: format!("{name} description"),
        bootstrap: vec![],
        visibility: Visibility::Public,
        join_key: Some(EpochKey::generate(&mut rand::rng(), 1)),
        seq,
        expires_at_ms,
        member_count: 1,
    };
    SignedAdvert::sign(owner, advert, now).unwrap()
}

pub(crate) fn genesis(owner: &Identity, name: &str) -> VerifiedEntry {
    let mut rng = rand::rng();
    let payload = Payload {
        client_txn_id: TxnId::default(),
        body: Body::Control(ControlEvent::CreateServer(CreateServer {
            name: name.to_owned(),
            description: String::new(),
            visibility: Visibility::Public,
            general_channel_id: ChannelId::from_bytes([1; 16]),
            owner_name: String::new(),
        })),
    };
    let mut log = [0u8; 32];
    rand::Rng::fill_bytes(&mut rng, &mut log);
    let draft = EntryDraft {
        space: None,
        log_id: LogId::from_bytes(log),
        seq: 1,
        backlink: None,
        lamport: 1,
        timestamp_ms: now_ms(),
    };
    let key = EpochKey::generate(&mut rng, 1);
    VerifiedEntry::seal(&mut rng, owner, draft, &payload, Sealing::Encrypt(&key)).unwrap()
}
