//! A partition: five members split in two groups keep posting (and
//! changing the server) on both sides; after the network heals every member
//! converges to the same history and the same state hash.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{TestNode, WAIT, eventually, init_tracing, start_on, wait_members};
use net_overlay::partition::PartitionNet;
use node::ReplicaScope;
use node::api::{Request, Response};

async fn snapshot(node: &TestNode, server: &str) -> (String, BTreeSet<String>, Vec<String>) {
    let detail = node.detail(server).await;
    let channels: BTreeSet<String> = detail.channels.iter().map(|c| c.name.clone()).collect();
    let mut texts = node.texts(server, "general").await;
    texts.sort();
    (detail.state_hash, channels, texts)
}

/// `owner` makes `member` an admin and waits until the member sees it.
async fn make_admin(owner: &TestNode, member: &TestNode, server: &str) {
    owner
        .request(Request::GrantRole {
            server: server.to_owned(),
            user: member.identity.user_id().to_string(),
            role: "admin".into(),
        })
        .await;
    eventually(WAIT, || async move {
        member
            .detail(server)
            .await
            .members
            .iter()
            .any(|m| m.display_name == member.name && m.role == "admin")
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_converge_after_a_partition_heals() {
    init_tracing();
    let net = PartitionNet::new();
    let r1 = start_on("relay-1", ReplicaScope::All, &[], net.transport(0)).await;
    let r2 = start_on("relay-2", ReplicaScope::All, &[&r1], net.transport(1)).await;
    let a = start_on("alice", ReplicaScope::None, &[&r1], net.transport(0)).await;
    let server = a.create_server("split", false).await.server.server_id;
    a.set_bootstrap(&server, &[&r1, &r2]).await;
    let mut members = vec![a];
    for (name, group) in [("bob", 0), ("carol", 1), ("dave", 1), ("erin", 1)] {
        let node = start_on(name, ReplicaScope::None, &[], net.transport(group)).await;
        node.join(&members[0].invite(&server).await).await;
        members.push(node);
    }
    for node in &members {
        wait_members(node, &server, 5).await;
    }
    // Carol may change the server too.
    make_admin(&members[0], &members[2], &server).await;

    net.split();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (index, node) in members.iter().enumerate() {
        for round in 0..3 {
            node.send(
                &server,
                "general",
                &format!("{} during the split {round}", node.name),
            )
            .await;
        }
        if index == 0 {
            node.request(Request::CreateChannel {
                server: server.clone(),
                name: "left-side".into(),
                topic: String::new(),
            })
            .await;
        }
        if index == 2 {
            node.request(Request::CreateChannel {
                server: server.clone(),
                name: "right-side".into(),
                topic: String::new(),
            })
            .await;
        }
    }
    // While split, the two sides differ.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let left = snapshot(&members[0], &server).await;
    let right = snapshot(&members[2], &server).await;
    assert_ne!(
        left.0, right.0,
        "the state hashes should differ while split"
    );

    net.heal();
    let healed = Instant::now();
    let expected = eventually(WAIT, || {
        let (members, server) = (&members, server.clone());
        async move {
            let first = snapshot(&members[0], &server).await;
            for node in &members[1..] {
                if snapshot(node, &server).await != first {
                    return None;
                }
            }
            Some(first)
        }
    })
    .await;
    let converged_after = healed.elapsed();
    assert_eq!(expected.2.len(), 15, "all 15 messages everywhere");
    assert!(expected.1.contains("left-side") && expected.1.contains("right-side"));
    // Entries held are equal too (same digests of every log).
    let mut entries = BTreeSet::new();
    for node in &members {
        if let Response::Status(status) = node.request(Request::Status).await {
            let held = status
                .servers
                .iter()
                .find(|s| s.server_id == server)
                .unwrap()
                .entries;
            entries.insert(held);
        }
    }
    assert_eq!(
        entries.len(),
        1,
        "members hold different numbers of entries: {entries:?}"
    );
    eprintln!("converged {converged_after:?} after healing");
    assert!(converged_after < Duration::from_secs(30));
}

/// A member's (state hash, entries held, entries held back) of `server`.
async fn ledger_view(node: &TestNode, server: &str) -> (String, u64, usize) {
    match node.request(Request::Status).await {
        Response::Status(status) => {
            let view = status
                .servers
                .into_iter()
                .find(|s| s.server_id == server)
                .unwrap();
            (view.state_hash, view.entries, view.pending)
        }
        other => panic!("status: {other:?}"),
    }
}

/// Both sides of a split create a channel of the same name. The fold keeps
/// the first in display order and refuses the other; every member must
/// still hold both entries (the refused one too, as its author does), hold
/// nothing back, and show one channel of that name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_fold_refuses_is_kept_by_every_member() {
    init_tracing();
    let net = PartitionNet::new();
    let r1 = start_on("relay-1", ReplicaScope::All, &[], net.transport(0)).await;
    let r2 = start_on("relay-2", ReplicaScope::All, &[&r1], net.transport(1)).await;
    let alice = start_on("alice", ReplicaScope::None, &[&r1], net.transport(0)).await;
    let server = alice.create_server("clash", false).await.server.server_id;
    alice.set_bootstrap(&server, &[&r1, &r2]).await;
    let bob = start_on("bob", ReplicaScope::None, &[], net.transport(0)).await;
    bob.join(&alice.invite(&server).await).await;
    let carol = start_on("carol", ReplicaScope::None, &[], net.transport(1)).await;
    carol.join(&alice.invite(&server).await).await;
    let members = [alice, bob, carol];
    for node in &members {
        wait_members(node, &server, 3).await;
    }
    make_admin(&members[0], &members[2], &server).await;

    net.split();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for index in [0, 2] {
        let created = members[index]
            .request(Request::CreateChannel {
                server: server.clone(),
                name: "plans".into(),
                topic: String::new(),
            })
            .await;
        assert!(
            matches!(created, Response::Channel(_)),
            "{}: {created:?}",
            members[index].name
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    net.heal();

    let view = eventually(WAIT, || {
        let (members, server) = (&members, server.clone());
        async move {
            let first = ledger_view(&members[0], &server).await;
            for node in &members[1..] {
                if ledger_view(node, &server).await != first {
                    return None;
                }
            }
            (first.2 == 0).then_some(first)
        }
    })
    .await;
    eprintln!("converged with {} entries", view.1);
    for node in &members {
        let detail = node.detail(&server).await;
        let plans = detail.channels.iter().filter(|c| c.name == "plans").count();
        assert_eq!(plans, 1, "{} shows {plans} channels named plans", node.name);
    }
}
