//! Bootstrap peers: falling back to remembered peers when the configured
//! ones are down, redialling a bootstrap peer that comes back, and
//! remembering who serves a server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{WAIT, eventually, memory_config, spawn_identity, spawn_memory, spawn_with};
use identity_core::Identity;
use messaging_proto::ServerId;
use net_overlay::{AddressBookSnapshot, KnownPeer, Multiaddr, OverlayHandle, PeerId};

async fn wait_connected(handle: &OverlayHandle, peer: PeerId) {
    eventually(WAIT, || {
        let handle = handle.clone();
        async move {
            let status = handle.status().await.ok()?;
            status.connected_peers.contains(&peer).then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_to_remembered_peers_when_bootstrap_peers_are_down() {
    let remembered = spawn_memory(&[]).await;
    let dead: Multiaddr = format!("/memory/{}/p2p/{}", 987_654_321u64, PeerId::random())
        .parse()
        .unwrap();
    let mut config = memory_config(&[]);
    config.bootstrap = vec![dead];
    config.address_book = AddressBookSnapshot {
        peers: vec![KnownPeer {
            server: Some(ServerId::from_bytes([1; 32])),
            peer: remembered.peer,
            addrs: vec![remembered.addr.clone()],
            last_seen_ms: 1,
        }],
    };
    let node = spawn_with(config, None).await;
    wait_connected(&node.handle, remembered.peer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_peer_that_restarts_is_redialled() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let identity = Identity::generate(&mut rand::rng());
    let first = spawn_identity(identity.clone(), memory_config(&[]), None).await;
    let listen: Multiaddr = first
        .addr
        .iter()
        .filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
        .collect();
    let client = spawn_memory(&[&first]).await;
    wait_connected(&client.handle, first.peer).await;

    first.handle.shutdown().await.unwrap();
    eventually(WAIT, || {
        let handle = client.handle.clone();
        let peer = first.peer;
        async move {
            let status = handle.status().await.ok()?;
            (!status.connected_peers.contains(&peer)).then_some(())
        }
    })
    .await;

    // The same node comes back on the same address.
    let mut config = memory_config(&[]);
    config.listen = vec![listen];
    let second = spawn_identity(identity, config, None).await;
    assert_eq!(second.peer, first.peer);
    wait_connected(&client.handle, second.peer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_of_a_server_are_remembered_with_their_addresses() {
    let server = ServerId::from_bytes([8; 32]);
    let a = spawn_memory(&[]).await;
    let b = spawn_memory(&[&a]).await;
    a.handle.subscribe(server).await.unwrap();
    b.handle.subscribe(server).await.unwrap();
    let book = eventually(WAIT, || {
        let handle = b.handle.clone();
        async move {
            let book = handle.address_book().await.ok()?;
            book.peers
                .iter()
                .any(|known| {
                    known.server == Some(server) && known.peer == a.peer && !known.addrs.is_empty()
                })
                .then_some(book)
        }
    })
    .await;
    let known = book
        .peers
        .iter()
        .find(|known| known.server == Some(server))
        .unwrap();
    assert!(a.addr.to_string().starts_with(&known.addrs[0].to_string()));
    // dial_server_peers finds nothing new to dial while connected.
    assert_eq!(b.handle.dial_server_peers(server).await.unwrap(), 0);
}
