//! Wire compatibility: a plain rust-libp2p swarm, configured only as
//! docs/protocol.md says (Kademlia on /palaver/kad/1.0.0, gossipsub with
//! anonymous messages and BLAKE3 message ids), joins the DHT of an overlay
//! node and exchanges gossip with it. Nothing of this crate runs on the
//! plain side.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{
    WAIT, eventually, feed, gossip_entry, next_delivery, now_ms, public_advert, spawn_with,
};
use futures::StreamExt;
use identity_core::Identity;
use libp2p::kad::{self, GetRecordOk, QueryResult, store::MemoryStore};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{StreamProtocol, gossipsub, identify, noise, tcp, yamux};
use messaging_proto::{GossipMessage, ServerId, VerifiedEntry};
use net_overlay::{KadMode, OverlayConfig, TransportConfig, advert_key};

const SERVER: ServerId = ServerId::from_bytes([11; 32]);

#[derive(NetworkBehaviour)]
struct Plain {
    kad: kad::Behaviour<MemoryStore>,
    gossipsub: gossipsub::Behaviour,
    identify: identify::Behaviour,
}

fn plain_swarm() -> libp2p::Swarm<Plain> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|key| {
            let peer = key.public().to_peer_id();
            let mut kad = kad::Behaviour::with_config(
                peer,
                MemoryStore::new(peer),
                kad::Config::new(StreamProtocol::new("/palaver/kad/1.0.0")),
            );
            kad.set_mode(Some(kad::Mode::Server));
            let config = gossipsub::ConfigBuilder::default()
                .validation_mode(gossipsub::ValidationMode::Anonymous)
                .message_id_fn(|message| {
                    gossipsub::MessageId::new(blake3::hash(&message.data).as_bytes())
                })
                .max_transmit_size(66 * 1024)
                .heartbeat_initial_delay(Duration::from_millis(100))
                .build()
                .unwrap();
            let gossipsub =
                gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config)
                    .unwrap();
            let identify =
                identify::Behaviour::new(identify::Config::new("/plain/1".into(), key.public()));
            Plain {
                kad,
                gossipsub,
                identify,
            }
        })
        .unwrap()
        .with_swarm_config(|config| config.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_libp2p_peer_joins_the_dht_and_exchanges_gossip() {
    let config = OverlayConfig {
        transport: TransportConfig::Network,
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        kad_mode: KadMode::Server,
        relay_client: false,
        autonat: false,
        ..OverlayConfig::default()
    };
    let mut ours = spawn_with(config, None).await;
    ours.handle.subscribe(SERVER).await.unwrap();
    let owner = Identity::generate(&mut rand::rng());
    let advert = public_advert(&owner, "interop", 1, now_ms() + 3_600_000, now_ms());
    let server_with_advert = advert.advert().server_id;
    ours.handle.put_advert(advert.clone()).await.unwrap();

    let mut plain = plain_swarm();
    let topic = gossipsub::IdentTopic::new(SERVER.topic());
    plain.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
    plain
        .behaviour_mut()
        .kad
        .add_address(&ours.peer, ours.addr.clone());
    plain.dial(ours.addr.clone()).unwrap();

    // Drive the plain swarm until it is in our mesh, fetched the advert
    // over Kademlia and received our gossip; then it publishes to us.
    let (entry, data) = gossip_entry(&mut feed(SERVER), "from palaver");
    let ours_handle = ours.handle.clone();
    let publish_task = tokio::spawn(async move {
        eventually(WAIT, || {
            let handle = ours_handle.clone();
            let data = data.clone();
            async move {
                let status = handle.status().await.ok()?;
                let meshed = status.mesh_peers.iter().any(|(_, n)| *n > 0);
                if !meshed {
                    return None;
                }
                handle.publish(SERVER, data).await.ok()
            }
        })
        .await
    });

    let mut query = None;
    let mut got_advert = false;
    let mut got_gossip = false;
    let (plain_entry, plain_data) = gossip_entry(&mut feed(SERVER), "from plain libp2p");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !(got_advert && got_gossip) {
        let event = tokio::time::timeout_at(deadline, plain.select_next_some())
            .await
            .expect("plain peer finished within the timeout");
        match event {
            SwarmEvent::ConnectionEstablished { .. } if query.is_none() => {
                query = Some(
                    plain
                        .behaviour_mut()
                        .kad
                        .get_record(advert_key(&server_with_advert)),
                );
            }
            SwarmEvent::Behaviour(PlainEvent::Kad(kad::Event::OutboundQueryProgressed {
                result: QueryResult::GetRecord(Ok(GetRecordOk::FoundRecord(found))),
                ..
            })) => {
                assert_eq!(found.record.value, advert.to_bytes());
                got_advert = true;
            }
            SwarmEvent::Behaviour(PlainEvent::Gossipsub(gossipsub::Event::Message {
                message,
                ..
            })) => {
                let GossipMessage::Entry(bytes) = GossipMessage::from_bytes(&message.data).unwrap();
                assert_eq!(VerifiedEntry::verify(bytes).unwrap().hash(), entry.hash());
                got_gossip = true;
            }
            _ => {}
        }
    }
    publish_task.await.unwrap();

    // The plain peer publishes; our node validates and delivers it.
    plain
        .behaviour_mut()
        .gossipsub
        .publish(topic, plain_data.to_vec())
        .unwrap();
    let driver = tokio::spawn(async move {
        loop {
            plain.select_next_some().await;
        }
    });
    let (server, received) = next_delivery(&mut ours, WAIT).await;
    assert_eq!(server, SERVER);
    assert_eq!(received.hash(), plain_entry.hash());
    driver.abort();
}
