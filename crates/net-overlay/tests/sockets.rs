//! Real sockets on 127.0.0.1: QUIC, TCP, and two peers that cannot dial
//! each other talking through a relay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{WAIT, eventually, feed, gossip_entry, next_delivery, spawn_with};
use messaging_proto::{ServerId, SyncErrorCode, SyncRequest, SyncResponse};
use net_overlay::{Multiaddr, OverlayConfig, OverlayEvent, TransportConfig};

const SERVER: ServerId = ServerId::from_bytes([3; 32]);

fn socket_config(listen: &str) -> OverlayConfig {
    OverlayConfig {
        transport: TransportConfig::Network,
        listen: vec![listen.parse().unwrap()],
        kad_mode: net_overlay::KadMode::Server,
        relay_client: false,
        autonat: false,
        mdns: false,
        ..OverlayConfig::default()
    }
}

fn echo_responder() -> common::Responder {
    Arc::new(|_, request| match request {
        SyncRequest::Digest { space } => SyncResponse::Digest(messaging_proto::DigestResponse {
            space,
            logs: vec![],
            state_hash: Some([1; 32]),
        }),
        _ => SyncResponse::error(SyncErrorCode::NotFound, "no"),
    })
}

async fn exchange_over(listen: &str, expect_protocol: &str) {
    let a = spawn_with(socket_config(listen), Some(echo_responder())).await;
    assert!(a.addr.to_string().contains(expect_protocol), "{}", a.addr);
    let mut b_config = socket_config(listen);
    b_config.bootstrap = vec![a.addr.clone()];
    let mut b = spawn_with(b_config, None).await;

    // A sync round trip.
    let response = eventually(WAIT, || {
        let handle = b.handle.clone();
        let peer = a.peer;
        async move {
            handle
                .sync(
                    peer,
                    SyncRequest::Digest {
                        space: SERVER.into(),
                    },
                )
                .await
                .ok()
        }
    })
    .await;
    assert!(matches!(response, SyncResponse::Digest(d) if d.state_hash == Some([1; 32])));

    // Gossip both ways.
    a.handle.subscribe(SERVER).await.unwrap();
    b.handle.subscribe(SERVER).await.unwrap();
    eventually(WAIT, || {
        let handle = a.handle.clone();
        async move {
            let status = handle.status().await.ok()?;
            status.mesh_peers.iter().any(|(_, n)| *n > 0).then_some(())
        }
    })
    .await;
    let (entry, data) = gossip_entry(&mut feed(SERVER), "over real sockets");
    a.handle.publish(SERVER, data).await.unwrap();
    let (_, received) = next_delivery(&mut b, WAIT).await;
    assert_eq!(received.hash(), entry.hash());
    a.handle.shutdown().await.unwrap();
    b.handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_on_loopback() {
    exchange_over("/ip4/127.0.0.1/udp/0/quic-v1", "/quic-v1/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_on_loopback() {
    exchange_over("/ip4/127.0.0.1/tcp/0", "/tcp/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_without_direct_addresses_talk_through_a_relay() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let relay_config = OverlayConfig {
        relay_server: true,
        ..socket_config("/ip4/127.0.0.1/tcp/0")
    };
    let relay = spawn_with(relay_config, None).await;
    // A relay serves reservations only at a known external address.
    let relay_listen: Multiaddr = relay
        .addr
        .iter()
        .filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
        .collect();
    relay
        .handle
        .add_external_address(relay_listen)
        .await
        .unwrap();

    // A and B listen on no socket of their own: the only way to reach A is
    // a circuit through the relay.
    let client_config = |responder: bool| {
        let mut config = socket_config("/ip4/127.0.0.1/tcp/0");
        config.listen = vec![];
        config.relay_client = true;
        config.bootstrap = vec![relay.addr.clone()];
        (config, responder.then(echo_responder))
    };
    let (a_config, a_responder) = client_config(true);
    let (handle_a, mut events_a) = {
        let identity = identity_core::Identity::generate(&mut rand::rng());
        let (handle, events) = net_overlay::Overlay::start(&identity, a_config).unwrap();
        (handle, events)
    };
    let circuit: Multiaddr = format!("{}/p2p-circuit", relay.addr).parse().unwrap();
    handle_a.listen(circuit.clone()).await.unwrap();
    // Wait until A's reservation is in place.
    eventually(WAIT, || {
        let handle = handle_a.clone();
        async move {
            let status = handle.status().await.ok()?;
            (!status.relay_reservations.is_empty()).then_some(())
        }
    })
    .await;
    let a_peer = handle_a.peer_id();
    let responder = a_responder.unwrap();
    let driver = handle_a.clone();
    tokio::spawn(async move {
        while let Some(event) = events_a.recv().await {
            if let OverlayEvent::SyncRequest {
                peer,
                request,
                token,
            } = event
            {
                let _ = driver.respond_sync(token, responder(peer, request)).await;
            }
        }
    });

    let (b_config, _) = client_config(false);
    let b = spawn_with_no_listen(b_config).await;
    // B reaches the relay first (its bootstrap peer), then A through it.
    let relay_peer = relay.peer;
    eventually(WAIT, || {
        let handle = b.0.clone();
        async move {
            let status = handle.status().await.ok()?;
            status.connected_peers.contains(&relay_peer).then_some(())
        }
    })
    .await;
    let via_relay: Multiaddr = format!("{circuit}/p2p/{a_peer}").parse().unwrap();
    let dialled = eventually(WAIT, || {
        let handle = b.0.clone();
        let addr = via_relay.clone();
        async move { handle.dial(addr).await.ok() }
    })
    .await;
    assert_eq!(dialled, a_peer);
    let response =
        b.0.sync(
            a_peer,
            SyncRequest::Digest {
                space: SERVER.into(),
            },
        )
        .await
        .unwrap();
    assert!(matches!(response, SyncResponse::Digest(_)));
    // The connection B holds to A is a relayed one.
    let connected = eventually(WAIT, || {
        let mut events = b.1.clone();
        async move { events.pop_connected(a_peer).await }
    })
    .await;
    assert!(connected.to_string().contains("p2p-circuit"), "{connected}");
}

/// A node without listen addresses, with its events kept for inspection.
async fn spawn_with_no_listen(config: OverlayConfig) -> (net_overlay::OverlayHandle, Connected) {
    let identity = identity_core::Identity::generate(&mut rand::rng());
    let (handle, mut events) = net_overlay::Overlay::start(&identity, config).unwrap();
    let connected = Connected::default();
    let sink = connected.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let OverlayEvent::PeerConnected { peer, addr } = event {
                sink.0.lock().await.push((peer, addr));
            }
        }
    });
    (handle, connected)
}

#[derive(Clone, Default)]
struct Connected(Arc<tokio::sync::Mutex<Vec<(net_overlay::PeerId, Multiaddr)>>>);

impl Connected {
    async fn pop_connected(&mut self, peer: net_overlay::PeerId) -> Option<Multiaddr> {
        self.0
            .lock()
            .await
            .iter()
            .find(|(p, _)| *p == peer)
            .map(|(_, addr)| addr.clone())
    }
}
