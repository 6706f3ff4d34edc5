//! Clock skew (issue 8): nodes whose clocks are five minutes fast, right
//! and five minutes slow — ten minutes apart at most — join each other's
//! invites, chat, agree on the order of what was said, exchange DMs,
//! rotate keys after a kick and find a public server. Every time check
//! between two peers' clocks allows `MAX_CLOCK_SKEW_MS` (10 minutes);
//! beyond it, the refusal is a typed error.
//!
//! Each node reads wall time through its own `Clock` (the system clock
//! plus an offset), the overlay's advert checks included, so the skew is
//! real for every check even though all nodes share one process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{
    TestNode, WAIT, eventually, init_tracing, start, start_skewed, wait_members, wait_texts,
};
use messaging_proto::limits::{MAX_ADVERT_LIFETIME_MS, MAX_CLOCK_SKEW_MS};
use node::api::{InviteView, MessageView, Request, Response};
use node::{Clock, NodeTimers, ReplicaScope};

const MINUTE: i64 = 60_000;
/// A clock five minutes fast.
const FAST: i64 = 5 * MINUTE;
/// A clock five minutes slow.
const SLOW: i64 = -5 * MINUTE;

fn system_now() -> u64 {
    Clock::system().now_ms()
}

fn minutes(ms: u64) -> f64 {
    ms as f64 / 60_000.0
}

async fn invite(node: &TestNode, server: &str, expires_in_ms: Option<i64>) -> InviteView {
    match node
        .request(Request::CreateInvite {
            server: server.to_owned(),
            expires_in_ms: expires_in_ms.map(|ms| u64::try_from(ms).unwrap()),
            max_uses: None,
        })
        .await
    {
        Response::Invite(invite) => invite,
        other => panic!("unexpected {other:?}"),
    }
}

/// A channel's messages, oldest first.
async fn messages(node: &TestNode, server: &str, channel: &str) -> Vec<MessageView> {
    let mut messages = node.history(server, channel, 500).await;
    messages.reverse();
    messages
}

/// Waits until every node shows `count` messages in a channel, in the same
/// order, and returns them (oldest first).
async fn same_history(
    nodes: &[&TestNode],
    server: &str,
    channel: &str,
    count: usize,
) -> Vec<MessageView> {
    let ids = |messages: &[MessageView]| -> Vec<String> {
        messages.iter().map(|m| m.message_id.clone()).collect()
    };
    eventually(WAIT, || async {
        let first = messages(nodes[0], server, channel).await;
        if first.len() != count {
            return None;
        }
        for node in &nodes[1..] {
            let other = messages(node, server, channel).await;
            if other.len() != count {
                return None;
            }
            // Same set of messages: the order must be the same too.
            assert_eq!(
                ids(&other),
                ids(&first),
                "{} orders the history differently from {}",
                node.name,
                nodes[0].name
            );
        }
        Some(first)
    })
    .await
}

/// A DM conversation as `node` shows it, oldest first.
async fn dm_messages(node: &TestNode, other: &TestNode) -> Vec<MessageView> {
    match node
        .request(Request::DmHistory {
            user: other.identity.user_id().to_string(),
            limit: 50,
            before: None,
        })
        .await
    {
        Response::History(page) => {
            let mut messages = page.messages;
            messages.reverse();
            messages
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn texts(messages: &[MessageView]) -> Vec<&str> {
    messages.iter().map(|m| m.text.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_ten_minutes_apart_join_chat_and_rotate_keys() {
    init_tracing();
    let started = system_now();
    let r = start("relay", ReplicaScope::All, &[]).await;
    let a = start_skewed("alice", ReplicaScope::None, &[&r], FAST, NodeTimers::fast()).await;
    let b = start_skewed("bob", ReplicaScope::None, &[], SLOW, NodeTimers::fast()).await;
    let c = start("carol", ReplicaScope::None, &[]).await;
    let offset: HashMap<String, i64> = [(&a, FAST), (&b, SLOW), (&c, 0)]
        .into_iter()
        .map(|(node, offset)| (node.identity.user_id().to_string(), offset))
        .collect();

    // A, five minutes fast, owns the server; its invite for an hour is
    // written by its clock (an hour after A's now, 65 minutes after the
    // system's) and joined by B, five minutes slow.
    let server = a.create_server("garden", false).await.server.server_id;
    a.set_bootstrap(&server, &[&r]).await;
    let hour = invite(&a, &server, Some(60 * MINUTE)).await;
    let expiry = hour.expires_at_ms.unwrap();
    let expected = system_now() + 65 * 60_000;
    assert!(
        expiry.abs_diff(expected) < 60_000,
        "the invite's expiry is {:.1} minutes from the system's now, not 65",
        minutes(expiry.saturating_sub(system_now()))
    );
    b.join(&hour.invite).await;

    // B, five minutes slow, issues an invite that expires in five minutes;
    // C, on the system clock, uses it at once: by C's clock it expires
    // right now (within the tolerance, so C gets in).
    let short = invite(&b, &server, Some(5 * MINUTE)).await;
    assert!(short.expires_at_ms.unwrap() <= system_now() + 1_000);
    c.join(&short.invite).await;
    for node in [&a, &b, &c] {
        wait_members(node, &server, 3).await;
    }

    // A conversation where each message answers the one before: B's clock
    // is ten minutes behind A's, so B's answer carries an earlier
    // timestamp than A's question. The order is still the order of the
    // conversation, on every node.
    let conversation = [
        (&a, "alice: hello"),
        (&b, "bob: hi alice"),
        (&c, "carol: hi both"),
        (&a, "alice: welcome carol"),
        (&b, "bob: see you"),
    ];
    let mut said = Vec::new();
    for (node, text) in conversation {
        node.send(&server, "general", text).await;
        said.push(text.to_owned());
        for node in [&a, &b, &c] {
            wait_texts(node, &server, "general", &said).await;
        }
    }
    let shown = messages(&a, &server, "general").await;
    let (hello, answer) = (&shown[0], &shown[1]);
    assert!(
        answer.timestamp_ms + 9 * 60_000 < hello.timestamp_ms,
        "B's answer is stamped {:.1} minutes after A's question, expected about 10 before",
        (answer.timestamp_ms as f64 - hello.timestamp_ms as f64) / 60_000.0
    );

    // Everyone at once: the nodes agree on one order.
    let burst = |node: &TestNode| {
        let (handle, server, name) = (node.handle.clone(), server.clone(), node.name.clone());
        async move {
            for index in 0..5 {
                handle
                    .request(Request::Send {
                        server: server.clone(),
                        channel: "general".into(),
                        text: format!("{name}: burst {index}"),
                        client_txn_id: None,
                        reply_to: None,
                    })
                    .await
                    .unwrap();
            }
        }
    };
    tokio::join!(burst(&a), burst(&b), burst(&c));
    let history = same_history(&[&a, &b, &c], &server, "general", 20).await;
    assert_eq!(texts(&history[..5]), texts(&shown[..5]));
    for node in [&a, &b, &c] {
        let own: Vec<&str> = texts(&history)
            .into_iter()
            .filter(|text| text.starts_with(&format!("{}: burst", node.name)))
            .collect();
        let sent: Vec<String> = (0..5)
            .map(|index| format!("{}: burst {index}", node.name))
            .collect();
        assert_eq!(own, sent, "{}'s messages are out of order", node.name);
    }
    // Every timestamp is its author's clock: the system time of the send
    // plus the author's offset.
    for message in &history {
        let offset = offset[&message.author];
        let system = message.timestamp_ms.checked_add_signed(-offset).unwrap();
        assert!(
            (started..=system_now()).contains(&system),
            "{:?} is stamped {:.1} minutes off its author's clock",
            message.text,
            (system as f64 - system_now() as f64) / 60_000.0
        );
    }

    // A DM from the fast clock to the slow one, and the answer.
    let dm = |to: &TestNode, text: &str| Request::DmSend {
        user: to.identity.user_id().to_string(),
        text: text.to_owned(),
        client_txn_id: None,
    };
    a.request(dm(&b, "dm: alice to bob")).await;
    eventually(WAIT, || async {
        (dm_messages(&b, &a).await.len() == 1).then_some(())
    })
    .await;
    b.request(dm(&a, "dm: bob to alice")).await;
    let conversation = ["dm: alice to bob", "dm: bob to alice"];
    for (node, other) in [(&a, &b), (&b, &a)] {
        let shown = eventually(WAIT, || async {
            let shown = dm_messages(node, other).await;
            (shown.len() == 2).then_some(shown)
        })
        .await;
        assert_eq!(texts(&shown), conversation, "{}'s DMs", node.name);
        assert!(shown[1].timestamp_ms + 9 * 60_000 < shown[0].timestamp_ms);
    }

    // A kicks C: the key rotates across the skew; A and B go on, C cannot
    // read what follows.
    let kicked = a
        .request(Request::Kick {
            server: server.clone(),
            user: c.identity.user_id().to_string(),
            reason: String::new(),
        })
        .await;
    assert!(matches!(kicked, Response::Ok), "{kicked:?}");
    assert_eq!(a.detail(&server).await.key_epoch, 2);
    eventually(WAIT, || async {
        (b.detail(&server).await.key_epoch == 2).then_some(())
    })
    .await;
    wait_members(&b, &server, 2).await;
    b.send(&server, "general", "bob: after the kick").await;
    same_history(&[&a, &b], &server, "general", 21).await;
    a.send(&server, "general", "alice: after the kick").await;
    let history = same_history(&[&a, &b], &server, "general", 22).await;
    assert_eq!(
        texts(&history[20..]),
        ["bob: after the kick", "alice: after the kick"]
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen_by_c = c.texts(&server, "general").await;
    assert!(
        !seen_by_c.iter().any(|text| text.contains("after the kick")),
        "C read a message sent after the rotation: {seen_by_c:?}"
    );

    // The other way round: B, five minutes slow, owns a server and issues
    // an invite for five minutes; A is ten minutes ahead of B, so by A's
    // clock the invite expired five minutes ago — within the tolerance.
    let orchard = b.create_server("orchard", false).await.server.server_id;
    b.set_bootstrap(&orchard, &[&r]).await;
    let short = invite(&b, &orchard, Some(5 * MINUTE)).await;
    let expiry = short.expires_at_ms.unwrap();
    let a_now = Clock::skewed(FAST).now_ms();
    assert!(
        expiry + 4 * 60_000 < a_now && a_now < expiry + MAX_CLOCK_SKEW_MS,
        "by A's clock the invite expired {:.1} minutes ago",
        minutes(a_now - expiry)
    );
    a.join(&short.invite).await;
    wait_members(&b, &orchard, 2).await;
    b.send(&orchard, "general", "bob: welcome to the orchard")
        .await;
    wait_texts(
        &a,
        &orchard,
        "general",
        &["bob: welcome to the orchard".into()],
    )
    .await;
    a.send(&orchard, "general", "alice: thanks").await;
    let orchard_history = same_history(&[&a, &b], &orchard, "general", 2).await;
    assert_eq!(
        texts(&orchard_history),
        ["bob: welcome to the orchard", "alice: thanks"]
    );

    // Beyond the tolerance: a node eleven minutes fast is sixteen ahead of
    // B; by its clock the invite expired eleven minutes ago. It gets the
    // typed error, and nothing is stored.
    let z = start_skewed(
        "zed",
        ReplicaScope::None,
        &[],
        11 * MINUTE,
        NodeTimers::fast(),
    )
    .await;
    let refused = z
        .handle
        .request(Request::Join {
            invite: short.invite.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code, "invite.expired", "{refused:?}");
    match z.request(Request::ListServers).await {
        Response::Servers { servers } => assert!(servers.is_empty(), "{servers:?}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_server_of_a_fast_owner_is_found_and_joined_by_a_slow_node() {
    init_tracing();
    let r = start("relay", ReplicaScope::All, &[]).await;
    // The owner, five minutes fast, publishes its advert for the longest
    // lifetime allowed: by a clock ten minutes slower, it expires seven
    // days and ten minutes from now — the edge of what readers accept.
    let mut timers = NodeTimers::fast();
    timers.advert_lifetime = Duration::from_millis(MAX_ADVERT_LIFETIME_MS);
    let a = start_skewed("alice", ReplicaScope::None, &[&r], FAST, timers).await;
    let server = a.create_server("town square", true).await.server.server_id;
    a.set_bootstrap(&server, &[&r]).await;
    a.send(&server, "general", "alice: the square is open")
        .await;

    // E, five minutes slow, lists it in the directory and joins it (the
    // advert is fetched from the DHT and checked by E's overlay).
    let e = start_skewed("erin", ReplicaScope::None, &[&r], SLOW, NodeTimers::fast()).await;
    let listed = eventually(WAIT, || async {
        match e.request(Request::Discover).await {
            Response::Discovered { servers } => (!servers.is_empty()).then_some(servers),
            _ => None,
        }
    })
    .await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].server_id, server);
    match e
        .request(Request::JoinPublic {
            server: server.clone(),
        })
        .await
    {
        Response::Server(detail) => assert_eq!(detail.server.name, "town square"),
        other => panic!("unexpected {other:?}"),
    }
    let mut said = vec!["alice: the square is open".to_owned()];
    wait_texts(&e, &server, "general", &said).await;
    e.send(&server, "general", "erin: hello square").await;
    said.push("erin: hello square".to_owned());
    for node in [&a, &e] {
        wait_texts(node, &server, "general", &said).await;
    }
    wait_members(&a, &server, 2).await;

    // Beyond the tolerance: F is six minutes slow, eleven behind the
    // owner. The advert claims to live longer than seven days plus the
    // tolerance by F's clock: F is told why it cannot join.
    let f = start_skewed(
        "frank",
        ReplicaScope::None,
        &[&r],
        -6 * MINUTE,
        NodeTimers::fast(),
    )
    .await;
    let refused = eventually(WAIT, || async {
        let result = f
            .handle
            .request(Request::JoinPublic {
                server: server.clone(),
            })
            .await;
        match result {
            Err(err) if err.code == "overlay.advert_rejected" => Some(err),
            // Not connected to the DHT yet.
            Err(err)
                if err.code == "overlay.advert_not_found" || err.code == "node.join_timeout" =>
            {
                None
            }
            other => panic!("unexpected {other:?}"),
        }
    })
    .await;
    assert!(
        refused.message.contains("advert.expiry_too_far"),
        "{refused:?}"
    );
    match f.request(Request::ListServers).await {
        Response::Servers { servers } => assert!(servers.is_empty(), "{servers:?}"),
        other => panic!("unexpected {other:?}"),
    }
}

/// A wall clock set back by an hour (by hand, or NTP correcting a clock
/// that ran fast) holds up nothing the node schedules for itself: a retry
/// scheduled before the jump still runs seconds later, and so does the
/// next round of delivery questions about a log asked just before it, so
/// both messages show as seen. (Periodic syncs are an hour apart here:
/// only the outbox's questions confirm delivery.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_set_back_an_hour_holds_up_no_retry() {
    use node::api::DeliveryState;
    use std::sync::atomic::{AtomicI64, Ordering};
    static OFFSET: AtomicI64 = AtomicI64::new(0);
    init_tracing();
    let timers = NodeTimers {
        sync_interval: Duration::from_secs(3_600),
        outbox_first_retry: Duration::from_secs(2),
        outbox_max_retry: Duration::from_secs(3),
        ..NodeTimers::fast()
    };
    let start = async |name: &str, bootstrap: &[&TestNode], clock: Clock| {
        common::start_tuned(
            name,
            ReplicaScope::None,
            bootstrap,
            net_overlay::TransportConfig::Memory,
            timers.clone(),
            clock,
            |_| {},
        )
        .await
    };
    let a = start("alice", &[], Clock::shared(&OFFSET)).await;
    let server = a.create_server("garden", false).await.server.server_id;
    let server = server.as_str();
    a.create_channel(server, "random", "").await;
    let b = start("bob", &[&a], Clock::system()).await;
    b.join(&a.invite(server).await).await;
    wait_members(&a, server, 2).await;
    wait_members(&b, server, 2).await;
    let seen = async |channel: &str, id: &str| {
        a.history(server, channel, 50)
            .await
            .iter()
            .any(|m| m.message_id == id && m.delivery == Some(DeliveryState::Seen { by: 1, of: 1 }))
    };

    // #general: seen, so its members were just asked about it. (The first
    // message of a feed may be confirmed by the sync its arrival starts;
    // the next one only by asking.)
    for text in ["a first message", "before the jump"] {
        let id = a.send(server, "general", text).await;
        eventually(Duration::from_secs(20), || async {
            seen("general", &id).await.then_some(())
        })
        .await;
    }
    // #random: a retry is due in about two seconds, by either clock.
    let r1 = a.send(server, "random", "just before the jump").await;
    OFFSET.store(-3_600_000, Ordering::Relaxed);
    let g1 = a.send(server, "general", "after the jump").await;
    eventually(Duration::from_secs(20), || async {
        (seen("random", &r1).await && seen("general", &g1).await).then_some(())
    })
    .await;
    b.stop().await;
    a.stop().await;
}
