//! Offline members: catching up from a replica alone, DMs to an offline
//! user, and restarts that fetch only what is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    WAIT, dir_contains, eventually, owner_replica_and_joiner, start, start_with, wait_members,
    wait_texts,
};
use node::ReplicaScope;
use node::api::{Event, Request, Response};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_joins_the_topic_of_a_server_it_learns_while_running() {
    let (r, _a, _b, server) = owner_replica_and_joiner().await;
    // Without the topic the replica neither hears gossip nor knows the
    // members it should sync with.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let view = r.server_sync(&server).await;
        if view
            .as_ref()
            .is_some_and(|view| view.topic_peers >= 2 && view.last_sync_ms.is_some())
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replica's view of the server: {view:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_member_catches_up_from_the_replica_alone() {
    let (r, a, b, server) = owner_replica_and_joiner().await;
    let c = start("carol", ReplicaScope::None, &[]).await;
    c.join(&a.invite(&server).await).await;
    wait_members(&a, &server, 3).await;
    wait_members(&b, &server, 3).await;
    c.stop().await;

    for index in 0..200 {
        let (author, text) = if index % 2 == 0 {
            (&a, format!("offline message {index:03} from alice"))
        } else {
            (&b, format!("offline message {index:03} from bob"))
        };
        author.send(&server, "general", &text).await;
    }
    // A and B agree on the 200 messages and their order.
    let expected = eventually(WAIT, || {
        let (a, b, server) = (&a, &b, server.clone());
        async move {
            let seen_by_a = a.texts(&server, "general").await;
            let seen_by_b = b.texts(&server, "general").await;
            (seen_by_a.len() == 200 && seen_by_a == seen_by_b).then_some(seen_by_a)
        }
    })
    .await;
    // The replica holds all that A holds (messages and control events)
    // before A and B leave.
    eventually(WAIT, || {
        let (a, r, server) = (&a, &r, server.clone());
        async move {
            let held_by_a = a.server_sync(&server).await?.entries;
            let held_by_r = r.server_sync(&server).await?.entries;
            (held_by_a > 200 && held_by_r == held_by_a).then_some(())
        }
    })
    .await;
    let one_message = a.history(&server, "general", 1).await.remove(0);
    a.stop().await;
    b.stop().await;

    let c = c.start_again().await;
    wait_texts(&c, &server, "general", &expected).await;

    // The replica stored ciphertext only: no message text in its files,
    // while the entries themselves are there (their hashes are indexed).
    r.request(Request::Status).await;
    let hash = data_encoding::HEXLOWER
        .decode(one_message.message_id.as_bytes())
        .unwrap();
    eventually(WAIT, || async { dir_contains(&r.dir, &hash).then_some(()) }).await;
    for needle in [
        "offline message 042 from alice",
        "offline message",
        "garden description",
    ] {
        assert!(
            !dir_contains(&r.dir, needle.as_bytes()),
            "the replica's files contain plaintext {needle:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_messages_reach_an_online_and_an_offline_user() {
    let (_r, a, b, server) = owner_replica_and_joiner().await;
    let _ = server;
    let b_id = b.identity.user_id().to_string();
    let a_id = a.identity.user_id().to_string();
    let dm = |text: &str, to: &str| Request::DmSend {
        user: to.to_owned(),
        text: text.to_owned(),
        client_txn_id: None,
    };
    a.request(dm("hello bob", &b_id)).await;
    let dm_texts = |node: &common::TestNode, other: String| {
        let request = Request::DmHistory {
            user: other,
            limit: 50,
            before: None,
        };
        let handle = node.handle.clone();
        async move {
            match handle.request(request).await.ok()? {
                Response::History(page) => {
                    let mut texts: Vec<String> =
                        page.messages.into_iter().map(|m| m.text).collect();
                    texts.reverse();
                    Some(texts)
                }
                _ => None,
            }
        }
    };
    eventually(WAIT, || {
        let fut = dm_texts(&b, a_id.clone());
        async move { (fut.await? == vec!["hello bob".to_owned()]).then_some(()) }
    })
    .await;
    b.request(dm("hi alice", &a_id)).await;
    eventually(WAIT, || {
        let fut = dm_texts(&a, b_id.clone());
        async move { (fut.await? == vec!["hello bob".to_owned(), "hi alice".to_owned()]).then_some(()) }
    })
    .await;

    // B goes offline; A writes; B comes back and finds it (via the replica
    // or from A directly).
    b.stop().await;
    a.request(dm("while you were away", &b_id)).await;
    let b = b.start_again().await;
    eventually(WAIT, || {
        let fut = dm_texts(&b, a_id.clone());
        async move {
            (fut.await?
                == vec![
                    "hello bob".to_owned(),
                    "hi alice".to_owned(),
                    "while you were away".to_owned(),
                ])
            .then_some(())
        }
    })
    .await;
    match b.request(Request::DmList).await {
        Response::Dms { conversations } => {
            assert_eq!(conversations.len(), 1);
            assert_eq!(conversations[0].user_id, a_id);
            assert_eq!(conversations[0].display_name, "alice");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_member_resumes_and_fetches_only_the_gap() {
    let (_r, a, b, server) = owner_replica_and_joiner().await;
    let mut expected = Vec::new();
    for index in 0..30 {
        let text = format!("before restart {index}");
        a.send(&server, "general", &text).await;
        expected.push(text);
    }
    wait_texts(&b, &server, "general", &expected).await;
    let before = match b
        .request(Request::ServerInfo {
            server: server.clone(),
        })
        .await
    {
        Response::Server(detail) => detail,
        other => panic!("unexpected {other:?}"),
    };
    b.stop().await;
    for index in 0..5 {
        let text = format!("during restart {index}");
        a.send(&server, "general", &text).await;
        expected.push(text);
    }
    let mut b = b.start_again().await;
    // Everything restored from disk at once: server, members, keys, history.
    let after = b.detail(&server).await;
    assert_eq!(after.server.name, before.server.name);
    assert_eq!(after.members.len(), before.members.len());
    assert_eq!(after.state_hash, before.state_hash);
    assert!(b.texts(&server, "general").await.len() >= 30);
    wait_texts(&b, &server, "general", &expected).await;
    // The catch-up fetched the gap, not the history.
    let mut fetched = 0;
    while let Some(event) = b.events.try_recv() {
        if let Event::SyncProgress { fetched: count, .. } = event {
            fetched += count;
        }
    }
    assert!(
        fetched <= 12,
        "fetched {fetched} entries to catch up on a 5-message gap"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_passes_pushed_entries_on_over_gossip() {
    // Periodic sync so slow that only gossip can deliver within the test.
    let timers = node::NodeTimers {
        sync_interval: std::time::Duration::from_secs(600),
        ..node::NodeTimers::fast()
    };
    let memory = net_overlay::TransportConfig::Memory;
    let r = start_with(
        "relay",
        ReplicaScope::All,
        &[],
        memory.clone(),
        timers.clone(),
    )
    .await;
    let a = start_with(
        "alice",
        ReplicaScope::None,
        &[&r],
        memory.clone(),
        timers.clone(),
    )
    .await;
    let server = a.create_server("garden", false).await.server.server_id;
    a.set_bootstrap(&server, &[&r]).await;
    let invite = a.invite(&server).await;
    let b = start_with("bob", ReplicaScope::None, &[], memory, timers).await;
    b.join(&invite).await;
    wait_members(&a, &server, 2).await;
    wait_members(&b, &server, 2).await;
    // Alice's next post reaches the replica by a push only — as when her
    // node has no gossip mesh yet — from a peer outside the topic.
    let key = node::invite_code::parse(&invite, 0)
        .unwrap()
        .invite()
        .key
        .clone();
    let general = a.detail(&server).await.channels[0].channel_id.clone();
    let post = common::forge_post(&a.identity, &server, &general, 1, None, 10, &key, "via R");
    let results = common::push_raw(&r, post.space(), vec![post]).await;
    assert_eq!(results, vec![messaging_proto::PushResult::Stored]);
    // Bob has it long before his next sync with anyone.
    wait_texts(&b, &server, "general", &["via R".to_owned()]).await;
}
