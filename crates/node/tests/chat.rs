//! Multi-node chat scenarios over the memory transport.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestNode, WAIT, eventually, start, wait_texts};
use node::ReplicaScope;
use node::api::{Request, Response};

/// A owns a private server whose bootstrap node is R; B joins with only
/// the invite code.
async fn owner_replica_and_joiner() -> (TestNode, TestNode, TestNode, String) {
    common::init_tracing();
    let r = start("relay", ReplicaScope::All, &[]).await;
    let a = start("alice", ReplicaScope::None, &[&r]).await;
    let server = a.create_server("garden", false).await.server.server_id;
    a.set_bootstrap(&server, &[&r]).await;
    let invite = a.invite(&server).await;
    let b = start("bob", ReplicaScope::None, &[]).await;
    let joined = b.join(&invite).await;
    assert_eq!(joined.server.server_id, server);
    (r, a, b, server)
}

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
    a.request(Request::CreateChannel {
        server: server.clone(),
        name: "random".into(),
        topic: String::new(),
    })
    .await;
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
    for node in [&a, &b] {
        wait_texts(node, &server, "general", &general).await;
        wait_texts(node, &server, "random", &random).await;
    }
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
