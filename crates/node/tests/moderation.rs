//! Moderation: bans with key rotation, edits, redactions, reactions and
//! idempotent sends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{WAIT, eventually, owner_replica_and_joiner, start, wait_members};
use node::ReplicaScope;
use node::api::{Request, Response};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_banned_member_is_locked_out_of_what_follows() {
    let (_r, a, b, server) = owner_replica_and_joiner().await;
    let server = server.as_str();
    let d = start("dave", ReplicaScope::None, &[]).await;
    let d_invite = a.invite(server).await;
    let invite_epoch1 = node::invite_code::parse(&d_invite, 0)
        .unwrap()
        .invite()
        .key
        .clone();
    d.join(&d_invite).await;
    wait_members(&a, server, 3).await;
    wait_members(&b, server, 3).await;
    let before = d.send(server, "general", "dave before the ban").await;
    let old = a.send(server, "general", "old history").await;
    for node in [&a, &b, &d] {
        eventually(WAIT, || async move {
            let texts = node.texts(server, "general").await;
            (texts.len() == 2).then_some(())
        })
        .await;
    }

    let d_id = d.identity.user_id().to_string();
    a.request(Request::Ban {
        server: server.to_owned(),
        user: d_id,
        reason: "spam".into(),
    })
    .await;
    // Every member moves to the new epoch; D does not.
    let epoch = a.detail(server).await.key_epoch;
    assert_eq!(epoch, 2);
    eventually(WAIT, || async {
        (b.detail(server).await.key_epoch == 2).then_some(())
    })
    .await;
    wait_members(&b, server, 2).await;

    // D's own node knows it was banned and refuses to post …
    let refused = d
        .handle
        .request(Request::Send {
            server: server.to_owned(),
            channel: "general".into(),
            text: "dave after the ban".into(),
            client_txn_id: None,
            reply_to: None,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code, "permission.not_a_member");
    // … and a post D's key signs anyway (seq 2, under the old key, which D
    // has) is refused by every member.
    let old_key = node::invite_code::parse(&a.invite(server).await, 0)
        .unwrap()
        .invite()
        .key
        .clone();
    assert_eq!(old_key.epoch(), 2);
    let epoch1 = invite_epoch1.clone();
    let general = a.detail(server).await.channels[0].channel_id.clone();
    let forged = common::forge_post(
        &d.identity,
        server,
        &general,
        2,
        Some(&before),
        1_000,
        &epoch1,
        "dave after the ban",
    );
    let after = forged.hash().to_hex();
    for node in [&a, &b] {
        let results = common::push_raw(node, forged.space(), vec![forged.clone()]).await;
        assert_eq!(
            results,
            vec![messaging_proto::PushResult::Rejected],
            "{}",
            node.name
        );
    }
    // Messages after the rotation: D cannot read them.
    a.send(server, "general", "secret after the ban").await;
    b.send(server, "general", "bob after the ban too").await;
    for node in [&a, &b] {
        eventually(WAIT, || async move {
            let texts = node.texts(server, "general").await;
            (texts.len() == 4).then_some(())
        })
        .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for node in [&a, &b] {
        let history = node.history(server, "general", 50).await;
        let ids: Vec<&str> = history.iter().map(|m| m.message_id.as_str()).collect();
        assert!(
            !ids.contains(&after.as_str()),
            "{} accepted D's post after the ban",
            node.name
        );
        // Old history stays readable, D's earlier post included.
        assert!(ids.contains(&old.as_str()) && ids.contains(&before.as_str()));
    }
    let d_texts = d.texts(server, "general").await;
    assert!(
        !d_texts
            .iter()
            .any(|text| text.contains("after the ban") && !text.starts_with("dave")),
        "D read a message sent after the rotation: {d_texts:?}"
    );
    assert!(d_texts.contains(&"old history".to_owned()));
    // D's list still shows the server, as removed; leaving takes it off.
    let d_servers = || async {
        let servers = d.servers().await;
        servers
            .into_iter()
            .map(|server| server.role)
            .collect::<Vec<_>>()
    };
    assert_eq!(d_servers().await, ["removed"]);
    d.request(Request::LeaveServer {
        server: server.to_owned(),
    })
    .await;
    assert!(d_servers().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_redactions_reactions_and_retries() {
    let (_r, a, b, server) = owner_replica_and_joiner().await;
    let server = server.as_str();
    let send = |text: &str, txn: &str| Request::Send {
        server: server.to_owned(),
        channel: "general".into(),
        text: text.into(),
        client_txn_id: Some(txn.into()),
        reply_to: None,
    };
    let first = match b.request(send("first try", "txn-1")).await {
        Response::Sent(ack) => ack,
        other => panic!("unexpected {other:?}"),
    };
    // The same transaction id again: the same message, not a new one.
    let retry = match b.request(send("first try", "txn-1")).await {
        Response::Sent(ack) => ack,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(retry.message_id, first.message_id);
    assert!(retry.duplicate);
    let second = b.send(server, "general", "second").await;
    let third = b.send(server, "general", "third").await;
    let from_a = a.send(server, "general", "alice speaks").await;
    for node in [&a, &b] {
        eventually(WAIT, || async move {
            (node.texts(server, "general").await.len() == 4).then_some(())
        })
        .await;
    }

    b.request(Request::Edit {
        server: server.to_owned(),
        channel: "general".into(),
        message_id: first.message_id.clone(),
        text: "first, edited".into(),
        client_txn_id: None,
    })
    .await;
    b.request(Request::Redact {
        server: server.to_owned(),
        channel: "general".into(),
        message_id: second.clone(),
        client_txn_id: None,
    })
    .await;
    a.request(Request::React {
        server: server.to_owned(),
        channel: "general".into(),
        message_id: first.message_id.clone(),
        emoji: "👍".into(),
        remove: false,
        client_txn_id: None,
    })
    .await;
    // A member may not edit someone else's message.
    let denied = a
        .handle
        .request(Request::Edit {
            server: server.to_owned(),
            channel: "general".into(),
            message_id: third.clone(),
            text: "hijacked".into(),
            client_txn_id: None,
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code, "permission.not_your_message");
    // B may not delete A's message (not a moderator) …
    let denied = b
        .handle
        .request(Request::Redact {
            server: server.to_owned(),
            channel: "general".into(),
            message_id: from_a.clone(),
            client_txn_id: None,
        })
        .await
        .unwrap_err();
    assert_eq!(denied.category, node::api::ErrorCategory::Permission);
    // … but the owner, a moderator and more, may delete B's.
    a.request(Request::Redact {
        server: server.to_owned(),
        channel: "general".into(),
        message_id: third.clone(),
        client_txn_id: None,
    })
    .await;

    let (first_id, second_id, third_id) =
        (first.message_id.as_str(), second.as_str(), third.as_str());
    for node in [&a, &b] {
        eventually(WAIT, || async move {
            let history = node.history(server, "general", 50).await;
            let find = |id: &str| history.iter().find(|m| m.message_id == id).cloned();
            let first = find(first_id)?;
            let second = find(second_id)?;
            let third = find(third_id)?;
            let ok = first.text == "first, edited"
                && first.edited
                && first.reactions.len() == 1
                && first.reactions[0].emoji == "👍"
                && second.redacted
                && second.text.is_empty()
                && third.redacted
                && history.len() == 4;
            ok.then_some(())
        })
        .await;
    }
}

/// An admin renames a channel (its topic stays unless a new one is given)
/// and deletes it; the other members see both; a plain member may do
/// neither, and its refused attempt changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_are_renamed_and_deleted_by_admins_only() {
    let (_r, a, b, server) = owner_replica_and_joiner().await;
    let server = server.as_str();
    a.create_channel(server, "random", "dice").await;
    let channels = async |node: &common::TestNode| {
        let mut channels: Vec<(String, String)> = node
            .channels(server)
            .await
            .into_iter()
            .map(|channel| (channel.name, channel.topic))
            .collect();
        channels.sort();
        channels
    };
    let general = ("general".to_owned(), String::new());
    let named = |name: &str, topic: &str| {
        let mut channels = vec![general.clone(), (name.to_owned(), topic.to_owned())];
        channels.sort();
        channels
    };
    eventually(WAIT, || async {
        (channels(&b).await == named("random", "dice")).then_some(())
    })
    .await;

    let rename = |name: &str, topic: Option<&str>| Request::RenameChannel {
        server: server.to_owned(),
        channel: "random".into(),
        name: name.to_owned(),
        topic: topic.map(str::to_owned),
    };
    let refused = b.handle.request(rename("mine", None)).await.unwrap_err();
    assert_eq!(
        refused.category,
        node::api::ErrorCategory::Permission,
        "{refused:?}"
    );
    a.request(rename("casino", None)).await;
    assert_eq!(channels(&a).await, named("casino", "dice"));
    a.request(Request::RenameChannel {
        server: server.to_owned(),
        channel: "casino".into(),
        name: "casino".into(),
        topic: Some("cards".into()),
    })
    .await;
    for node in [&a, &b] {
        eventually(WAIT, || async {
            (channels(node).await == named("casino", "cards")).then_some(())
        })
        .await;
    }

    let delete = Request::DeleteChannel {
        server: server.to_owned(),
        channel: "casino".into(),
    };
    let refused = b.handle.request(delete.clone()).await.unwrap_err();
    assert_eq!(
        refused.category,
        node::api::ErrorCategory::Permission,
        "{refused:?}"
    );
    assert_eq!(channels(&b).await, named("casino", "cards"));
    a.request(delete).await;
    for node in [&a, &b] {
        eventually(WAIT, || async {
            (channels(node).await == vec![general.clone()]).then_some(())
        })
        .await;
    }
}

/// A member leaves: the others see it go and keep its messages; the owner
/// rotates the key; the server disappears from its lists and requests,
/// also after a restart; the owner cannot leave; a new invite brings the
/// member back, with the history before and after it left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_leaves_and_comes_back_with_a_new_invite() {
    let (_r, a, b, server) = owner_replica_and_joiner().await;
    let server = server.as_str();
    a.create_channel(server, "random", "").await;
    b.send(server, "general", "before leaving").await;
    eventually(WAIT, || async {
        (a.texts(server, "general").await == ["before leaving"]).then_some(())
    })
    .await;
    let leave = || Request::LeaveServer {
        server: server.to_owned(),
    };
    let refused = a.handle.request(leave()).await.unwrap_err();
    assert_eq!(refused.code, "permission.owner_cannot_leave");
    assert_eq!(a.detail(server).await.members.len(), 2);

    let topic_peers =
        async |node: &common::TestNode| node.server_sync(server).await.map(|view| view.topic_peers);
    let subscribed = topic_peers(&a).await.expect("a serves the server");
    b.request(leave()).await;
    let servers = async |node: &common::TestNode| node.servers().await.len();
    assert_eq!(servers(&b).await, 0);
    let gone = b
        .handle
        .request(Request::Send {
            server: server.to_owned(),
            channel: "general".into(),
            text: "after leaving".into(),
            client_txn_id: None,
            reply_to: None,
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code, "node.unknown_server");
    let again = b.handle.request(leave()).await.unwrap_err();
    assert_eq!(again.code, "node.unknown_server");
    wait_members(&a, server, 1).await;
    assert_eq!(a.texts(server, "general").await, ["before leaving"]);
    // Once a peer holds its `Leave`, B forgets the server: it has no sync
    // state for it any more, and it left the server's gossip topic.
    eventually(WAIT, || async {
        let forgotten = topic_peers(&b).await.is_none();
        let unsubscribed = topic_peers(&a).await < Some(subscribed);
        (forgotten && unsubscribed).then_some(())
    })
    .await;
    // The owner rotates the key B left with: what follows is sealed under
    // a key B never had.
    eventually(WAIT, || async {
        (a.detail(server).await.key_epoch == 2).then_some(())
    })
    .await;
    a.send(server, "general", "after bob left").await;

    let b = b.restart().await;
    assert_eq!(servers(&b).await, 0);
    assert_eq!(topic_peers(&b).await, None, "a forgotten server came back");

    // The state comes back whole (folded from what the ledger kept): the
    // channel created before B left is there at once.
    let joined = b.join(&a.invite(server).await).await;
    let mut channels: Vec<String> = joined.channels.into_iter().map(|c| c.name).collect();
    channels.sort();
    assert_eq!(channels, ["general", "random"]);
    assert_eq!(joined.members.len(), 2);
    assert_eq!(joined.key_epoch, 2);
    wait_members(&a, server, 2).await;
    // The new invite's key opens what followed; the rotation's wrapped key
    // opens what came before.
    eventually(WAIT, || async {
        (b.texts(server, "general").await == ["before leaving", "after bob left"]).then_some(())
    })
    .await;
    b.send(server, "general", "back again").await;
    eventually(WAIT, || async {
        (a.texts(server, "general").await == ["before leaving", "after bob left", "back again"])
            .then_some(())
    })
    .await;
    // One rotation for one departure.
    assert_eq!(a.detail(server).await.key_epoch, 2);
}

/// Until our `Leave` reached a peer, a server we left still delivers its
/// gossip to us (it is stored), but it shows nothing: no events, as in
/// every list. (No retry confirms the `Leave` here: retries and syncs wait
/// an hour. The owner is offline, so no key rotation hides what follows.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_we_left_sends_no_events_before_it_is_forgotten() {
    common::init_tracing();
    let timers = node::NodeTimers {
        sync_interval: Duration::from_secs(3_600),
        outbox_first_retry: Duration::from_secs(3_600),
        outbox_max_retry: Duration::from_secs(3_600),
        ..node::NodeTimers::fast()
    };
    let start = async |name: &str, bootstrap: &[&common::TestNode]| {
        common::start_with(
            name,
            ReplicaScope::None,
            bootstrap,
            net_overlay::TransportConfig::Memory,
            timers.clone(),
        )
        .await
    };
    let a = start("alice", &[]).await;
    let server = a.create_server("garden", false).await.server.server_id;
    let server = server.as_str();
    let mut b = start("bob", &[&a]).await;
    b.join(&a.invite(server).await).await;
    let c = start("carol", &[&a, &b]).await;
    c.join(&a.invite(server).await).await;
    for node in [&a, &b, &c] {
        wait_members(node, server, 3).await;
    }
    // A sync between B and C after the `Leave` would show B that C holds
    // it, and B would forget the server at once. Syncs start when a peer's
    // subscription is seen: wait until every node has seen both others',
    // then until the syncs they started are over.
    common::settle_syncs(&[&a, &b, &c], server).await;
    a.stop().await;
    b.request(Request::LeaveServer {
        server: server.to_owned(),
    })
    .await;
    wait_members(&c, server, 2).await;
    while b.events.try_recv().is_some() {}
    let stored = || async { b.status().await.ledger_entries };
    let before = stored().await;
    c.send(server, "general", "after bob left").await;
    eventually(WAIT, || async { (stored().await > before).then_some(()) }).await;
    while let Some(event) = b.events.try_recv() {
        assert!(
            !matches!(event, node::api::Event::Message { .. }),
            "a left server's message was shown: {event:?}"
        );
    }
}
