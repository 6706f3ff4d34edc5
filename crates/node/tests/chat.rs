//! Multi-node chat scenarios over the memory transport.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{WAIT, eventually, owner_replica_and_joiner, start_with, wait_members};
use net_overlay::TransportConfig;
use node::api::{DeliveryState, Request, Response};
use node::{NodeTimers, ReplicaScope};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_chat_in_two_channels_through_a_replica() {
    let (_r, a, b, server) = owner_replica_and_joiner().await;
    // Both see each other as members.
    eventually(WAIT, || {
        let a = &a;
        let server = server.clone();
        async move { (a.detail(&server).await.members.len() == 2).then_some(()) }
    })
    .await;
    a.create_channel(&server, "random", "").await;
    // B learns about the new channel.
    eventually(WAIT, || {
        let b = &b;
        let server = server.clone();
        async move {
            match b.request(Request::ListChannels { server }).await {
                Response::Channels { channels } => (channels.len() == 2).then_some(()),
                _ => None,
            }
        }
    })
    .await;
    let mut general = Vec::new();
    let mut random = Vec::new();
    for round in 0..5 {
        let text = format!("a general {round}");
        a.send(&server, "general", &text).await;
        general.push(text);
        let text = format!("b random {round}");
        b.send(&server, "random", &text).await;
        random.push(text);
        let text = format!("b general {round}");
        b.send(&server, "general", &text).await;
        general.push(text);
    }
    // Both see every message; concurrent sends sort by (lamport, author),
    // so compare as sets here and as sequences below.
    general.sort();
    random.sort();
    let server_ref = &server;
    for node in [&a, &b] {
        for (channel, expected) in [("general", &general), ("random", &random)] {
            eventually(WAIT, || async move {
                let mut texts = node.texts(server_ref, channel).await;
                texts.sort();
                (&texts == expected).then_some(())
            })
            .await;
        }
    }
    // A's messages end up seen by the one other member.
    eventually(WAIT, || {
        let (a, server) = (&a, server.clone());
        async move {
            let history = a.history(&server, "general", 50).await;
            history
                .iter()
                .filter(|m| m.mine)
                .all(|m| m.delivery == Some(node::api::DeliveryState::Seen { by: 1, of: 1 }))
                .then_some(())
        }
    })
    .await;
    // Identical timelines: the same ids in the same order.
    let ids = |messages: Vec<node::api::MessageView>| -> Vec<String> {
        messages
            .into_iter()
            .map(|message| message.message_id)
            .collect()
    };
    assert_eq!(
        ids(a.history(&server, "general", 100).await),
        ids(b.history(&server, "general", 100).await)
    );
}

/// Gossip carries no receipts: when a member retries an entry it published
/// it asks the others how far they hold its feed, so its messages show as
/// seen within seconds rather than at the next periodic sync (an hour
/// here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossiped_messages_are_seen_without_waiting_for_a_periodic_sync() {
    common::init_tracing();
    let timers = NodeTimers {
        sync_interval: Duration::from_secs(3_600),
        ..NodeTimers::fast()
    };
    let start = |name, bootstrap| {
        start_with(
            name,
            ReplicaScope::None,
            bootstrap,
            TransportConfig::Memory,
            timers.clone(),
        )
    };
    let a = start("alice", &[]).await;
    let server = a.create_server("garden", false).await.server.server_id;
    let invite = a.invite(&server).await;
    let b = start("bob", &[&a]).await;
    b.join(&invite).await;
    wait_members(&a, &server, 2).await;
    wait_members(&b, &server, 2).await;
    let mut sent = Vec::new();
    for round in 0..3 {
        let text = format!("hello {round}");
        a.send(&server, "general", &text).await;
        sent.push(text);
        let (b, server, sent) = (&b, &server, &sent);
        eventually(WAIT, || async move {
            (&b.texts(server, "general").await == sent).then_some(())
        })
        .await;
    }
    let (a_ref, server) = (&a, &server);
    eventually(Duration::from_secs(20), || async move {
        let history = a_ref.history(server, "general", 50).await;
        let mine: Vec<Option<DeliveryState>> = history
            .iter()
            .filter(|message| message.mine)
            .map(|message| message.delivery)
            .collect();
        (mine.len() == 3
            && mine
                .iter()
                .all(|state| *state == Some(DeliveryState::Seen { by: 1, of: 1 })))
        .then_some(())
    })
    .await;
    b.stop().await;
    a.stop().await;
}
