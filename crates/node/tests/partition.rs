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

/// `owner` gives `member` a role ("moderator", "admin") and waits until
/// the member sees it.
async fn grant_role(owner: &TestNode, member: &TestNode, server: &str, role: &str) {
    owner
        .request(Request::GrantRole {
            server: server.to_owned(),
            user: member.identity.user_id().to_string(),
            role: role.into(),
        })
        .await;
    eventually(WAIT, || async move {
        member
            .detail(server)
            .await
            .members
            .iter()
            .any(|m| m.display_name == member.name && m.role == role)
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
    grant_role(&members[0], &members[2], &server, "admin").await;

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
    let view = node.server_sync(server).await.expect("the server is known");
    (view.state_hash, view.entries, view.pending)
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
    grant_role(&members[0], &members[2], &server, "admin").await;

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

/// The key rotations in `author`'s feed of `server`'s control log, as a
/// replica serves them to anyone: (new epoch, sealed keys).
async fn rotations_by(
    replica: &TestNode,
    server: &str,
    author: &TestNode,
) -> Vec<(u32, Vec<bytes::Bytes>)> {
    use messaging_proto::{ControlEvent, SyncRequest, SyncResponse, VerifiedEntry};
    let server_id: messaging_proto::ServerId = server.parse().unwrap();
    let SyncResponse::Genesis(genesis) =
        common::ask(replica, SyncRequest::Genesis { server: server_id }).await
    else {
        panic!("no genesis at {}", replica.name);
    };
    let control_log = VerifiedEntry::verify(genesis).unwrap().log_id();
    let request = SyncRequest::Range(messaging_proto::RangeRequest {
        log: control_log,
        author: author.identity.user_id(),
        from_seq: 1,
        limit: 4_096,
        max_bytes: 1 << 20,
    });
    let SyncResponse::Range(range) = common::ask(replica, request).await else {
        panic!("no range at {}", replica.name);
    };
    range
        .entries
        .into_iter()
        .filter_map(|bytes| {
            let entry = VerifiedEntry::verify(bytes).unwrap();
            match entry.open_plain().ok()?.control()? {
                ControlEvent::KeyRotation(rotation) => {
                    Some((rotation.new_epoch, rotation.sealed_keys.clone()))
                }
                _ => None,
            }
        })
        .collect()
}

/// A server made by alice (side 0) over a relay replica on each side,
/// joined by `others` (name, side); returns the relays, every member
/// (alice first) and the server id, once each member counts them all.
async fn server_across_sides(
    net: &PartitionNet,
    others: &[(&str, u32)],
) -> (TestNode, TestNode, Vec<TestNode>, String) {
    let r1 = start_on("relay-1", ReplicaScope::All, &[], net.transport(0)).await;
    let r2 = start_on("relay-2", ReplicaScope::All, &[&r1], net.transport(1)).await;
    let alice = start_on("alice", ReplicaScope::None, &[&r1], net.transport(0)).await;
    let server = alice
        .create_server("moderated", false)
        .await
        .server
        .server_id;
    alice.set_bootstrap(&server, &[&r1, &r2]).await;
    let mut members = vec![alice];
    for (name, side) in others {
        let node = start_on(name, ReplicaScope::None, &[], net.transport(*side)).await;
        node.join(&members[0].invite(&server).await).await;
        members.push(node);
    }
    for node in &members {
        wait_members(node, &server, members.len()).await;
    }
    (r1, r2, members, server)
}

/// `moderator` kicks `member`, which rotates the key.
async fn kick(moderator: &TestNode, member: &TestNode, server: &str) {
    let kicked = moderator
        .request(Request::Kick {
            server: server.to_owned(),
            user: member.identity.user_id().to_string(),
            reason: "spam".into(),
        })
        .await;
    assert!(
        matches!(kicked, Response::Ok),
        "{}: {kicked:?}",
        moderator.name
    );
}

/// Waits until every one of `remaining` is in the same epoch past `past`
/// and counts `remaining.len()` members; then checks that the key of that
/// epoch was sealed to as many members and that none of `removed` can
/// open it, and that a post under it reaches every remaining member.
/// `rotators` are the members whose rotations may have made the epoch.
async fn locked_out(
    replica: &TestNode,
    server: &str,
    remaining: &[&TestNode],
    rotators: &[&TestNode],
    removed: &[&TestNode],
    past: u32,
) {
    let epoch = eventually(WAIT, || async {
        let mut epochs = Vec::new();
        for node in remaining {
            epochs.push(node.detail(server).await.key_epoch);
        }
        (epochs[0] > past && epochs.iter().all(|epoch| *epoch == epochs[0])).then_some(epochs[0])
    })
    .await;
    for node in remaining {
        wait_members(node, server, remaining.len()).await;
    }
    let aad = messaging_proto::epoch_key_aad(&server.parse().unwrap(), epoch);
    // The replica may get the rotation a moment after the members.
    let sealed = eventually(WAIT, || async {
        let mut sealed = Vec::new();
        for author in rotators {
            for (new_epoch, keys) in rotations_by(replica, server, author).await {
                if new_epoch == epoch {
                    sealed.extend(keys);
                }
            }
        }
        (sealed.len() >= remaining.len()).then_some(sealed)
    })
    .await;
    assert_eq!(
        sealed.len(),
        remaining.len(),
        "epoch {epoch} is sealed to the members who stayed"
    );
    for node in removed {
        assert!(
            sealed
                .iter()
                .all(|key| node.identity.open_sealed(key, &aad).is_err()),
            "{} can open the key of epoch {epoch}",
            node.name
        );
    }
    let text = format!("{} in epoch {epoch}", remaining[0].name);
    remaining[0].send(server, "general", &text).await;
    for node in remaining {
        let text = &text;
        eventually(WAIT, || async move {
            node.texts(server, "general")
                .await
                .contains(text)
                .then_some(())
        })
        .await;
    }
}

/// Two moderators on the two sides of a split each remove a member; each
/// rotates the key to epoch 2 and posts under its new key. The fold keeps
/// one rotation and refuses the other (concurrent rotations). After the
/// network heals:
/// - every remaining member reads both posts: the refused rotation's key
///   still decrypts what its author sealed under it;
/// - the server moves on to a key that neither removed member can open:
///   the kept rotation was sealed to the member the other side removed,
///   so the moderator whose rotation was refused rotates again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_removals_on_both_sides_lock_both_out_and_lose_no_post() {
    init_tracing();
    let net = PartitionNet::new();
    // Alice's side: bob, and frank (whom carol removes); carol's side:
    // dave, and erin (whom alice removes).
    let (r1, _r2, members, server) = server_across_sides(
        &net,
        &[
            ("bob", 0),
            ("carol", 1),
            ("dave", 1),
            ("erin", 1),
            ("frank", 0),
        ],
    )
    .await;
    let server = server.as_str();
    let [alice, bob, carol, dave, erin, frank] = &members[..] else {
        unreachable!()
    };
    grant_role(alice, carol, server, "moderator").await;

    net.split();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (moderator, removed) in [(alice, erin), (carol, frank)] {
        kick(moderator, removed, server).await;
        assert_eq!(moderator.detail(server).await.key_epoch, 2);
        moderator
            .send(
                server,
                "general",
                &format!("{} after the kick", moderator.name),
            )
            .await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    net.heal();

    let remaining = [alice, bob, carol, dave];
    for node in remaining {
        eventually(WAIT, || async move {
            let texts = node.texts(server, "general").await;
            (texts.contains(&"alice after the kick".to_owned())
                && texts.contains(&"carol after the kick".to_owned()))
            .then_some(())
        })
        .await;
    }
    locked_out(&r1, server, &remaining, &[alice, carol], &[erin, frank], 2).await;
}

/// A member leaves on one side of a split while a moderator on the other
/// side kicks someone and rotates, sealing the new key to the member who
/// left (it does not know yet). After the network heals the owner must
/// rotate again although a rotation follows the `Leave` in the control
/// order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leave_unknown_to_a_concurrent_rotation_is_followed_by_the_owners() {
    init_tracing();
    let net = PartitionNet::new();
    let (r1, _r2, members, server) =
        server_across_sides(&net, &[("bob", 0), ("mona", 0), ("xavier", 0), ("gina", 1)]).await;
    let server = server.as_str();
    let [alice, bob, mona, xavier, gina] = &members[..] else {
        unreachable!()
    };
    grant_role(alice, mona, server, "moderator").await;

    net.split();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let left = gina
        .request(Request::LeaveServer {
            server: server.to_owned(),
        })
        .await;
    assert!(matches!(left, Response::Ok), "{left:?}");
    kick(mona, xavier, server).await;
    eventually(WAIT, || async {
        (alice.detail(server).await.key_epoch == 2).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    net.heal();

    locked_out(
        &r1,
        server,
        &[alice, bob, mona],
        &[alice, mona],
        &[gina, xavier],
        2,
    )
    .await;
}
