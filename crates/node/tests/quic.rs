//! The chat scenario over real QUIC sockets on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestNode, WAIT, eventually, init_tracing, start_on, wait_members, wait_texts};
use net_overlay::TransportConfig;
use node::ReplicaScope;

async fn quic_node(name: &str, replica: ReplicaScope, bootstrap: &[&TestNode]) -> TestNode {
    start_on(name, replica, bootstrap, TransportConfig::Network).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_join_and_chat_over_quic() {
    init_tracing();
    let r = quic_node("relay", ReplicaScope::All, &[]).await;
    assert!(r.addr.to_string().contains("/quic-v1/"), "{}", r.addr);
    let a = quic_node("alice", ReplicaScope::None, &[&r]).await;
    let server = a.create_server("over quic", false).await.server.server_id;
    a.set_bootstrap(&server, &[&r]).await;
    let b = quic_node("bob", ReplicaScope::None, &[]).await;
    b.join(&a.invite(&server).await).await;
    wait_members(&a, &server, 2).await;
    let mut expected = Vec::new();
    for index in 0..10 {
        let text = format!("quic {index}");
        let sender = if index % 2 == 0 { &a } else { &b };
        sender.send(&server, "general", &text).await;
        expected.push(text);
    }
    for node in [&a, &b] {
        eventually(WAIT, || {
            let (node, server, expected) = (node, server.clone(), expected.clone());
            async move {
                let mut texts = node.texts(&server, "general").await;
                texts.sort();
                let mut expected = expected;
                expected.sort();
                (texts == expected).then_some(())
            }
        })
        .await;
    }
    // B restarts on the same port and still has everything.
    let history = a.texts(&server, "general").await;
    let b = b.restart().await;
    wait_texts(&b, &server, "general", &history).await;
}
