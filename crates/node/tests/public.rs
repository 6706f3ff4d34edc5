//! Public servers: found through the DHT directory by a node that knows
//! only a bootstrap address, and joined without an invite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{WAIT, eventually, init_tracing, start, wait_texts};
use node::ReplicaScope;
use node::api::{Request, Response};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_node_finds_a_public_server_and_joins_without_an_invite() {
    init_tracing();
    let r = start("relay", ReplicaScope::All, &[]).await;
    let a = start("alice", ReplicaScope::None, &[&r]).await;
    let server = a.create_server("town square", true).await.server.server_id;
    a.set_bootstrap(&server, &[&r]).await;
    let private = a.create_server("back room", false).await.server.server_id;
    let mut history = Vec::new();
    for index in 0..5 {
        let text = format!("public note {index}");
        a.send(&server, "general", &text).await;
        history.push(text);
    }

    let e = start("erin", ReplicaScope::None, &[&r]).await;
    let listed = eventually(WAIT, || {
        let e = &e;
        async move {
            match e.request(Request::Discover).await {
                Response::Discovered { servers } => (!servers.is_empty()).then_some(servers),
                _ => None,
            }
        }
    })
    .await;
    assert_eq!(
        listed.len(),
        1,
        "only the public server is listed: {listed:?}"
    );
    assert_eq!(listed[0].server_id, server);
    assert_eq!(listed[0].name, "town square");
    assert!(listed.iter().all(|listed| listed.server_id != private));

    match e
        .request(Request::JoinPublic {
            server: server.clone(),
        })
        .await
    {
        Response::Server(detail) => assert_eq!(detail.server.name, "town square"),
        other => panic!("unexpected {other:?}"),
    }
    wait_texts(&e, &server, "general", &history).await;
    // The owner sees the new member.
    eventually(WAIT, || {
        let (a, server) = (&a, server.clone());
        async move { (a.detail(&server).await.members.len() == 2).then_some(()) }
    })
    .await;
    // And E can talk.
    e.send(&server, "general", "hello square").await;
    history.push("hello square".into());
    wait_texts(&a, &server, "general", &history).await;
}
