//! Gossip over the memory transport: a 20-node network around one bootstrap
//! node, a late joiner, and a spammer that gets graylisted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use common::{
    TestNode, WAIT, eventually, feed, gossip_entry, memory_config, next_delivery, spawn_identity,
    spawn_memory, spawn_with,
};
use identity_core::Identity;
use messaging_proto::{EntryHash, GossipMessage, ServerId, VerifiedEntry};
use net_overlay::{GRAYLIST_THRESHOLD, Overlay, OverlayEvent, OverlayHandle, PublishOutcome};

const SERVER: ServerId = ServerId::from_bytes([42; 32]);

async fn wait_for_topic_peers(handle: &OverlayHandle, at_least: usize) {
    eventually(WAIT, || {
        let handle = handle.clone();
        async move {
            let status = handle.status().await.ok()?;
            let peers = status
                .topic_peers
                .iter()
                .find(|(server, _)| *server == SERVER)
                .map_or(0, |(_, peers)| *peers);
            (peers >= at_least).then_some(())
        }
    })
    .await;
}

async fn wait_for_mesh(handle: &OverlayHandle) {
    eventually(WAIT, || {
        let handle = handle.clone();
        async move {
            let status = handle.status().await.ok()?;
            status
                .mesh_peers
                .iter()
                .any(|(server, peers)| *server == SERVER && *peers > 0)
                .then_some(())
        }
    })
    .await;
}

/// Every node in `nodes` except `except` receives `expected` (within the
/// timeout). Deliveries are recorded per node; no node may deliver the same
/// entry twice. (A node that joined recently may also receive earlier
/// messages still in gossipsub's message cache: that is allowed.)
async fn all_receive(
    nodes: &mut [TestNode],
    seen: &mut Vec<HashSet<EntryHash>>,
    except: usize,
    expected: &VerifiedEntry,
) {
    seen.resize_with(nodes.len(), HashSet::new);
    for (index, node) in nodes.iter_mut().enumerate() {
        if index == except || seen[index].contains(&expected.hash()) {
            continue;
        }
        loop {
            let (server, entry) = next_delivery(node, WAIT).await;
            assert_eq!(server, SERVER, "node {index}");
            assert!(
                seen[index].insert(entry.hash()),
                "node {index} delivered an entry twice"
            );
            if entry.hash() == expected.hash() {
                break;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_reaches_all_twenty_nodes_and_a_late_joiner() {
    let bootstrap = spawn_memory(&[]).await;
    let mut nodes = vec![bootstrap];
    for _ in 0..19 {
        let node = spawn_memory(&[&nodes[0]]).await;
        nodes.push(node);
    }
    for node in &nodes {
        node.handle.subscribe(SERVER).await.unwrap();
    }
    wait_for_topic_peers(&nodes[0].handle, 19).await;
    for node in &nodes {
        wait_for_mesh(&node.handle).await;
    }

    let mut author = feed(SERVER);
    let (first, data) = gossip_entry(&mut author, "hello, nineteen peers");
    assert_eq!(
        nodes[5].handle.publish(SERVER, data).await.unwrap(),
        PublishOutcome::Sent
    );
    let mut seen = Vec::new();
    all_receive(&mut nodes, &mut seen, 5, &first).await;

    // A node that joins later gets what is sent after it joined.
    let late = spawn_memory(&[&nodes[0]]).await;
    late.handle.subscribe(SERVER).await.unwrap();
    nodes.push(late);
    wait_for_mesh(&nodes[20].handle).await;
    wait_for_topic_peers(&nodes[0].handle, 20).await;
    let (second, data) = gossip_entry(&mut author, "welcome, latecomer");
    assert_eq!(
        nodes[7].handle.publish(SERVER, data).await.unwrap(),
        PublishOutcome::Sent
    );
    all_receive(&mut nodes, &mut seen, 7, &second).await;

    // Nobody delivers anything twice, nor anything that was not sent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (index, node) in nodes.iter_mut().enumerate() {
        while let Ok((_, entry)) = node.delivered.try_recv() {
            assert!(
                entry.hash() == first.hash() || entry.hash() == second.hash(),
                "node {index} delivered an entry nobody sent"
            );
            assert!(
                seen[index].insert(entry.hash()),
                "node {index} delivered an entry twice"
            );
        }
    }
    for node in &nodes {
        node.handle.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_with_no_peers_is_not_an_error() {
    let lonely = spawn_with(memory_config(&[]), None).await;
    lonely.handle.subscribe(SERVER).await.unwrap();
    let (_, data) = gossip_entry(&mut feed(SERVER), "anyone?");
    assert_eq!(
        lonely.handle.publish(SERVER, data).await.unwrap(),
        PublishOutcome::NoPeers
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spammer_is_graylisted_and_honest_traffic_flows() {
    let bootstrap = spawn_memory(&[]).await;
    let mut honest = vec![bootstrap];
    for _ in 0..3 {
        let node = spawn_memory(&[&honest[0]]).await;
        honest.push(node);
    }
    let spammer = spawn_memory(&[&honest[0]]).await;
    for node in honest.iter().chain(std::iter::once(&spammer)) {
        node.handle.subscribe(SERVER).await.unwrap();
    }
    wait_for_topic_peers(&honest[0].handle, 4).await;
    for node in &honest {
        wait_for_mesh(&node.handle).await;
    }
    wait_for_mesh(&spammer.handle).await;

    // Structurally valid gossip carrying entries whose signature is wrong:
    // only application validation can tell.
    let mut forger = feed(SERVER);
    for index in 0..30u32 {
        let (entry, _) = gossip_entry(&mut forger, &format!("spam {index}"));
        let mut bytes = entry.encoded().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        let data = Bytes::from(GossipMessage::Entry(Bytes::from(bytes)).to_bytes());
        let _ = spammer.handle.publish(SERVER, data).await;
    }

    // The bootstrap node (the spammer's only connection) scores it down
    // below the graylist threshold.
    let spammer_id = spammer.peer;
    let score = eventually(WAIT, || {
        let handle = honest[0].handle.clone();
        async move {
            let score = handle.peer_score(spammer_id).await.ok()??;
            (score < GRAYLIST_THRESHOLD).then_some(score)
        }
    })
    .await;
    assert!(score < GRAYLIST_THRESHOLD, "score {score}");

    // Honest traffic still flows to every honest node, and no spam was
    // delivered anywhere.
    let mut author = feed(SERVER);
    let (good, data) = gossip_entry(&mut author, "still here");
    honest[2].handle.publish(SERVER, data).await.unwrap();
    let mut seen = HashSet::new();
    for (index, node) in honest.iter_mut().enumerate() {
        if index == 2 {
            continue;
        }
        let (_, entry) = next_delivery(node, WAIT).await;
        assert_eq!(entry.hash(), good.hash(), "node {index} got something else");
        seen.insert(index);
    }
    assert_eq!(seen.len(), 3);
}

/// A peer that restarts with the same identity and reconnects while we still
/// hold its old connection (a crash, a quick app restart) must learn our
/// subscriptions: gossipsub sends them only on a peer's first connection, so
/// without the reset in `restarts.rs` the new instance never sees us in the
/// topic and can neither publish to us nor sync with us.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_back_from_a_restart_learns_our_subscriptions() {
    let mut hub = spawn_memory(&[]).await;
    hub.handle.subscribe(SERVER).await.unwrap();
    let identity = Identity::generate(&mut rand::rng());

    // The first instance: connected, and it sees the hub in the topic. It
    // does not listen: like a dead process, it cannot take the hub's
    // redial after the reset.
    let mut config = memory_config(&[]);
    config.listen.clear();
    let (old, mut old_events) = Overlay::start(&identity, config).unwrap();
    tokio::spawn(async move { while old_events.recv().await.is_some() {} });
    old.subscribe(SERVER).await.unwrap();
    old.dial(hub.addr.clone()).await.unwrap();
    wait_for_topic_peers(&old, 1).await;

    // The second instance dials in while the first one's connection is
    // still open; then the first one goes away.
    let new = spawn_identity(identity, memory_config(&[&hub]), None).await;
    new.handle.subscribe(SERVER).await.unwrap();
    eventually(WAIT, || {
        let handle = new.handle.clone();
        async move { (!handle.status().await.ok()?.connected_peers.is_empty()).then_some(()) }
    })
    .await;
    old.shutdown().await.unwrap();

    wait_for_topic_peers(&new.handle, 1).await;
    wait_for_topic_peers(&hub.handle, 1).await;
    // And gossip flows from the new instance to the hub.
    wait_for_mesh(&new.handle).await;
    let (entry, data) = gossip_entry(&mut feed(SERVER), "after the restart");
    assert_eq!(
        new.handle.publish(SERVER, data).await.unwrap(),
        PublishOutcome::Sent
    );
    let (server, delivered) = next_delivery(&mut hub, WAIT).await;
    assert_eq!((server, delivered.hash()), (SERVER, entry.hash()));
}

/// Two peers that dial each other at the same moment (as after an mDNS
/// discovery) may look like a restart to one of them; whatever happens,
/// they end up connected, each in the other's topic, with gossip flowing
/// both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_that_dial_each_other_at_once_stay_connected() {
    for round in 0..5 {
        let mut a = spawn_memory(&[]).await;
        let mut b = spawn_memory(&[]).await;
        a.handle.subscribe(SERVER).await.unwrap();
        b.handle.subscribe(SERVER).await.unwrap();
        let _ = tokio::join!(a.handle.dial(b.addr.clone()), b.handle.dial(a.addr.clone()));
        wait_for_topic_peers(&a.handle, 1).await;
        wait_for_topic_peers(&b.handle, 1).await;
        wait_for_mesh(&a.handle).await;
        wait_for_mesh(&b.handle).await;
        let mut feed = feed(SERVER);
        gossip_flows(&a, &mut b, &mut feed, &format!("a to b, round {round}")).await;
        gossip_flows(&b, &mut a, &mut feed, &format!("b to a, round {round}")).await;
        a.handle.shutdown().await.unwrap();
        b.handle.shutdown().await.unwrap();
    }
}

/// `from` publishes an entry (once it has a peer to send it to) and `to`
/// delivers it.
async fn gossip_flows(
    from: &TestNode,
    to: &mut TestNode,
    feed: &mut messaging_proto::test_utils::FeedWriter,
    text: &str,
) {
    let (entry, data) = gossip_entry(feed, text);
    eventually(WAIT, || {
        let (handle, data) = (from.handle.clone(), data.clone());
        async move {
            matches!(handle.publish(SERVER, data).await, Ok(PublishOutcome::Sent)).then_some(())
        }
    })
    .await;
    let (_, delivered) = next_delivery(to, WAIT).await;
    assert_eq!(delivered.hash(), entry.hash(), "{text}");
}

/// Two dials of the same peer at once open one connection and both succeed:
/// a second connection from a live peer looks like a restart to the other
/// side (`restarts.rs`) and would cost a reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dials_at_once_open_one_connection() {
    let mut hub = spawn_memory(&[]).await;
    for round in 0..4 {
        let node = spawn_memory(&[]).await;
        let (first, second) = tokio::join!(
            node.handle.dial(hub.addr.clone()),
            node.handle.dial(hub.addr.clone())
        );
        assert_eq!(first.unwrap(), hub.peer);
        assert_eq!(second.unwrap(), hub.peer);
        // A reset would follow the second connection within milliseconds.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (mut connected, mut disconnected) = (0, 0);
        while let Ok(event) = hub.others.try_recv() {
            match event {
                OverlayEvent::PeerConnected { peer, .. } if peer == node.peer => connected += 1,
                OverlayEvent::PeerDisconnected { peer } if peer == node.peer => disconnected += 1,
                _ => {}
            }
        }
        assert_eq!((connected, disconnected), (1, 0), "round {round}");
        node.handle.shutdown().await.unwrap();
    }
}
