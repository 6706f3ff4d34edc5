//! Bad input: broken invite codes, strangers' posts, broken chains and
//! equivocation. Each gets its typed error or is refused, and nothing
//! stored changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    TestNode, WAIT, ask, eventually, forge_post, owner_replica_and_joiner, push_raw, start,
    start_skewed,
};
use messaging_proto::{
    ChannelId, DmId, LogId, PushResult, ServerId, SpaceId, SyncErrorCode, SyncRequest, SyncResponse,
};
use node::ReplicaScope;
use node::api::{Request, Response};

async fn join_error(node: &TestNode, invite: &str) -> String {
    node.handle
        .request(Request::Join {
            invite: invite.to_owned(),
        })
        .await
        .unwrap_err()
        .code
}

async fn ledger_entries(node: &TestNode) -> u64 {
    node.status().await.ledger_entries
}

async fn server_count(node: &TestNode) -> usize {
    match node.request(Request::ListServers).await {
        Response::Servers { servers } => servers.len(),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_invites_are_refused_with_their_own_errors() {
    let (r, a, _b, server) = owner_replica_and_joiner().await;
    let c = start("carol", ReplicaScope::None, &[]).await;
    let good = a.invite(&server).await;

    let truncated = &good[..good.len() - 7];
    let code = join_error(&c, truncated).await;
    assert!(
        code == "invite.bad_checksum" || code == "invite.truncated",
        "{code}"
    );
    let mut typo: Vec<char> = good.chars().collect();
    let at = typo.len() / 2;
    typo[at] = if typo[at] == 'a' { 'b' } else { 'a' };
    assert_eq!(
        join_error(&c, &typo.into_iter().collect::<String>()).await,
        "invite.bad_checksum"
    );
    assert_eq!(join_error(&c, "hello").await, "invite.not_an_invite");
    assert_eq!(
        join_error(
            &c,
            "palaver://invite/!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        )
        .await,
        "invite.bad_encoding"
    );

    // A tampered invite whose checksum was recomputed: the signature fails.
    let raw = data_encoding::BASE32_NOPAD
        .decode(
            good.trim_start_matches("palaver://invite/")
                .to_ascii_uppercase()
                .as_bytes(),
        )
        .unwrap();
    let mut body = raw[1..raw.len() - 4].to_vec();
    let last = body.len() - 1;
    body[last] ^= 1;
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[1]);
    hasher.update(&body);
    let mut forged = vec![1u8];
    forged.extend_from_slice(&body);
    forged.extend_from_slice(&hasher.finalize().as_bytes()[..4]);
    let forged = format!(
        "palaver://invite/{}",
        data_encoding::BASE32_NOPAD.encode(&forged)
    );
    assert_eq!(join_error(&c, &forged).await, "invite.bad_signature");

    // Expired: an invite is refused once its expiry plus the clock
    // tolerance (10 minutes) has passed, so it is tried by a node whose
    // clock is 11 minutes ahead.
    let expired = match a
        .request(Request::CreateInvite {
            server: server.clone(),
            expires_in_ms: Some(1),
            max_uses: None,
        })
        .await
    {
        Response::Invite(invite) => invite.invite,
        other => panic!("unexpected {other:?}"),
    };
    let late = start_skewed(
        "late",
        ReplicaScope::None,
        &[],
        11 * 60_000,
        node::NodeTimers::fast(),
    )
    .await;
    assert_eq!(join_error(&late, &expired).await, "invite.expired");

    // Revoked (known only after fetching the control log from the replica).
    let (revoked, invite_id) = match a
        .request(Request::CreateInvite {
            server: server.clone(),
            expires_in_ms: None,
            max_uses: None,
        })
        .await
    {
        Response::Invite(invite) => (invite.invite, invite.invite_id),
        other => panic!("unexpected {other:?}"),
    };
    let held_by_replica = || async {
        match r.request(Request::Status).await {
            Response::Status(status) => status
                .servers
                .iter()
                .find(|s| s.server_id == server)
                .map_or(0, |s| s.entries),
            _ => 0,
        }
    };
    let before = held_by_replica().await;
    a.request(Request::RevokeInvite {
        server: server.clone(),
        invite_id,
    })
    .await;
    // The joiner learns of the revocation from the replica's control log.
    eventually(WAIT, || async {
        (held_by_replica().await > before).then_some(())
    })
    .await;
    let code = eventually(WAIT, || {
        let (c, revoked) = (&c, revoked.clone());
        async move {
            let code = join_error(c, &revoked).await;
            (code == "invite.revoked").then_some(code)
        }
    })
    .await;
    assert_eq!(code, "invite.revoked");

    // None of this left anything behind, and the good invite still works.
    assert_eq!(server_count(&c).await, 0);
    assert_eq!(ledger_entries(&c).await, 0);
    c.join(&good).await;
    assert_eq!(server_count(&c).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_broken_chains_and_equivocation_are_refused() {
    let (r, a, b, server) = owner_replica_and_joiner().await;
    let invite = a.invite(&server).await;
    let key = node::invite_code::parse(&invite, 0)
        .unwrap()
        .invite()
        .key
        .clone();
    let general = a.detail(&server).await.channels[0].channel_id.clone();
    let first = b.send(&server, "general", "b one").await;
    let second = b.send(&server, "general", "b two").await;
    eventually(WAIT, || {
        let (a, server) = (&a, server.clone());
        async move { (a.texts(&server, "general").await.len() == 2).then_some(()) }
    })
    .await;
    let stored_before = ledger_entries(&a).await;
    let space = SpaceId::from(server.parse::<messaging_proto::ServerId>().unwrap());

    // A stranger (never joined) posts.
    let stranger = identity_core::Identity::generate(&mut rand::rng());
    let post = forge_post(
        &stranger,
        &server,
        &general,
        1,
        None,
        50,
        &key,
        "spam from a stranger",
    );
    let results = push_raw(&a, space, vec![post]).await;
    assert_ne!(results, vec![PushResult::Stored]);
    // B's feed with a wrong backlink.
    let broken = forge_post(
        &b.identity,
        &server,
        &general,
        3,
        Some(&first),
        60,
        &key,
        "broken chain",
    );
    assert_eq!(
        push_raw(&a, space, vec![broken]).await,
        vec![PushResult::Rejected]
    );
    // B equivocates: another entry for seq 2.
    let fork = forge_post(
        &b.identity,
        &server,
        &general,
        2,
        Some(&first),
        61,
        &key,
        "the other seq 2",
    );
    // Every honest node refuses it the same way: the member and the
    // replica (which cannot decrypt and judges by the chain alone), once
    // the replica holds the first seq 2.
    eventually(WAIT, || {
        let r = &r;
        async move { (ledger_entries(r).await >= stored_before).then_some(()) }
    })
    .await;
    let replica_before = ledger_entries(&r).await;
    for node in [&a, &r] {
        assert_eq!(
            push_raw(node, space, vec![fork.clone()]).await,
            vec![PushResult::Rejected],
            "{}",
            node.name
        );
    }
    assert_eq!(ledger_entries(&r).await, replica_before);
    // An entry of another space pushed under this one.
    let other = forge_post(
        &b.identity,
        &"11".repeat(32),
        &general,
        1,
        None,
        1,
        &key,
        "elsewhere",
    );
    assert_eq!(
        push_raw(&a, space, vec![other]).await,
        vec![PushResult::Rejected]
    );

    // Nothing was stored; the first seq 2 stands.
    assert_eq!(ledger_entries(&a).await, stored_before);
    let texts = a.texts(&server, "general").await;
    assert_eq!(texts, vec!["b one".to_owned(), "b two".to_owned()]);
    let history = a.history(&server, "general", 10).await;
    assert_eq!(history[0].message_id, second);
}

/// Old entries sent again — long after gossip's duplicate cache forgot
/// them, here pushed straight to the node — are recognised as held and
/// change nothing: no new entry, no message shown twice, the same state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_entries_change_nothing() {
    let (_r, a, b, server) = owner_replica_and_joiner().await;
    for text in ["first words", "second words", "third words"] {
        b.send(&server, "general", text).await;
    }
    eventually(WAIT, || {
        let (a, server) = (&a, server.clone());
        async move { (a.texts(&server, "general").await.len() == 3).then_some(()) }
    })
    .await;
    let stored_before = ledger_entries(&a).await;
    let state_before = a.detail(&server).await.state_hash;

    // Fetch B's feed from A as raw bytes, as any peer could, and send it
    // back to A (and to B, its author).
    let overlay = bare_peer(&a).await;
    let entries = general_feed(&overlay, &a, &server, &b).await;
    overlay.shutdown().await.unwrap();
    assert_eq!(entries.len(), 3);
    let old: Vec<messaging_proto::VerifiedEntry> = entries
        .into_iter()
        .map(|bytes| messaging_proto::VerifiedEntry::verify(bytes).unwrap())
        .collect();
    let space = SpaceId::from(server.parse::<messaging_proto::ServerId>().unwrap());
    for target in [&a, &b] {
        assert_eq!(
            push_raw(target, space, old.clone()).await,
            vec![PushResult::Duplicate; 3],
            "{}",
            target.name
        );
    }
    assert_eq!(ledger_entries(&a).await, stored_before);
    assert_eq!(a.detail(&server).await.state_hash, state_before);
    let mut texts = a.texts(&server, "general").await;
    texts.sort();
    assert_eq!(texts, vec!["first words", "second words", "third words"]);
}

/// A bare overlay (no node behind it) connected to `target`, as any peer
/// on the network could run.
async fn bare_peer(target: &TestNode) -> net_overlay::OverlayHandle {
    let identity = identity_core::Identity::generate(&mut rand::rng());
    let mut config = net_overlay::OverlayConfig::memory();
    config.listen = vec!["/memory/0".parse().unwrap()];
    let (overlay, _events) = net_overlay::Overlay::start(&identity, config).unwrap();
    overlay.dial(target.addr.clone()).await.unwrap();
    overlay
}

/// `author`'s feed of the server's first channel, as raw entries fetched
/// from `from` over sync.
async fn general_feed(
    overlay: &net_overlay::OverlayHandle,
    from: &TestNode,
    server: &str,
    author: &TestNode,
) -> Vec<bytes::Bytes> {
    let server_id: messaging_proto::ServerId = server.parse().unwrap();
    let general: messaging_proto::ChannelId = from.detail(server).await.channels[0]
        .channel_id
        .parse()
        .unwrap();
    let response = overlay
        .sync(
            from.identity.user_id().to_peer_id(),
            messaging_proto::SyncRequest::Range(messaging_proto::RangeRequest {
                log: server_id.channel_log(&general),
                author: author.identity.user_id(),
                from_seq: 1,
                limit: 100,
                max_bytes: 1 << 20,
            }),
        )
        .await
        .unwrap();
    match response {
        messaging_proto::SyncResponse::Range(range) => range.entries,
        other => panic!("unexpected {other:?}"),
    }
}

/// A node whose gossip forgets message ids after a second instead of two
/// minutes.
fn short_duplicate_cache(config: &mut node::NodeConfig) {
    config.overlay.gossip.duplicate_cache_time = std::time::Duration::from_secs(1);
}

/// An old entry published again over gossip, after the receiver's
/// duplicate cache forgot it (so gossipsub delivers it to the node again),
/// is recognised as held: nothing stored, no message shown twice, the same
/// state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gossip_replay_after_the_duplicate_cache_expired_changes_nothing() {
    common::init_tracing();
    let tuned = |name| {
        common::start_tuned(
            name,
            ReplicaScope::None,
            &[],
            net_overlay::TransportConfig::Memory,
            node::NodeTimers::fast(),
            node::Clock::system(),
            short_duplicate_cache,
        )
    };
    let a = tuned("alice").await;
    let server = a.create_server("garden", false).await.server.server_id;
    let invite = a.invite(&server).await;
    let b = tuned("bob").await;
    b.join(&invite).await;
    common::wait_members(&a, &server, 2).await;
    b.send(&server, "general", "said once").await;
    eventually(WAIT, || {
        let (a, server) = (&a, server.clone());
        async move { (a.texts(&server, "general").await == ["said once"]).then_some(()) }
    })
    .await;

    // Bob's entry as raw bytes, fetched from A as any peer could.
    let server_id: messaging_proto::ServerId = server.parse().unwrap();
    let overlay = bare_peer(&a).await;
    let said_once = general_feed(&overlay, &a, &server, &b).await.pop().unwrap();
    let stored_before = ledger_entries(&a).await;
    let state_before = a.detail(&server).await.state_hash;
    let received_before = a.status().await.entries_received;

    // Past A's duplicate cache (1 s; expired ids are dropped when the next
    // message arrives), the same bytes published again reach A's node
    // instead of being dropped by gossipsub.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let replay = messaging_proto::GossipMessage::Entry(said_once).to_bytes();
    eventually(WAIT, || {
        let (overlay, replay) = (&overlay, replay.clone());
        async move {
            matches!(
                overlay.publish(server_id, replay.into()).await,
                Ok(net_overlay::PublishOutcome::Sent)
            )
            .then_some(())
        }
    })
    .await;
    eventually(WAIT, || {
        let a = &a;
        async move { (a.status().await.entries_received > received_before).then_some(()) }
    })
    .await;
    overlay.shutdown().await.unwrap();

    assert_eq!(ledger_entries(&a).await, stored_before);
    assert_eq!(a.detail(&server).await.state_hash, state_before);
    assert_eq!(a.texts(&server, "general").await, ["said once"]);
}

/// A member's client that sends one message twice under the same
/// transaction id (a buggy or malicious double send): both entries are
/// valid links of the chain and are stored, but the message is shown
/// once — the first, in history and in live events alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_send_under_one_transaction_id_is_shown_once() {
    use messaging_proto::{Body, Payload, Text, TxnId};
    let (_r, a, b, server) = owner_replica_and_joiner().await;
    let key = node::invite_code::parse(&a.invite(&server).await, 0)
        .unwrap()
        .invite()
        .key
        .clone();
    let server_id: messaging_proto::ServerId = server.parse().unwrap();
    let general: messaging_proto::ChannelId = a.detail(&server).await.channels[0]
        .channel_id
        .parse()
        .unwrap();
    let space = SpaceId::from(server_id);
    let mut feed = messaging_proto::test_utils::FeedWriter::new(
        b.identity.clone(),
        space,
        server_id.channel_log(&general),
        key,
    );
    let txn = TxnId::random(&mut rand::rng());
    let text = |body: &str| Payload {
        client_txn_id: txn.clone(),
        body: Body::Text(Text {
            body: body.to_owned(),
            reply_to: None,
        }),
    };
    let first = feed.payload(&mut rand::rng(), &text("said once"));
    let again = feed.payload(&mut rand::rng(), &text("said twice"));
    let stored_before = ledger_entries(&a).await;
    let mut events = a.handle.subscribe();

    assert_eq!(
        push_raw(&a, space, vec![first.clone(), again]).await,
        vec![PushResult::Stored; 2]
    );
    assert_eq!(ledger_entries(&a).await, stored_before + 2);
    let history = a.history(&server, "general", 10).await;
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].message_id, first.hash().to_hex());
    assert_eq!(history[0].text, "said once");
    // Live events: the first message only (a later message of the feed
    // shows that every event of the push was seen).
    let then = feed.text(&mut rand::rng(), "and then");
    assert_eq!(
        push_raw(&a, space, vec![then]).await,
        vec![PushResult::Stored]
    );
    let mut shown = Vec::new();
    while shown.last().map(String::as_str) != Some("and then") {
        match tokio::time::timeout(WAIT, events.recv()).await {
            Ok(Some(node::api::Event::Message { message, .. })) => shown.push(message.text),
            Ok(Some(_)) => {}
            other => panic!("no message event: {other:?} after {shown:?}"),
        }
    }
    assert_eq!(shown, vec!["said once", "and then"]);
}

/// `SyncRequest::Head` (how members confirm our gossiped entries) answers
/// one author's head of a log and nothing for a feed the node does not
/// hold; a stranger asking about a DM it is not part of is refused, as for
/// the other requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_request_answers_one_feed_and_keeps_dms_from_strangers() {
    common::init_tracing();
    let a = start("alice", ReplicaScope::None, &[]).await;
    let b = start("bob", ReplicaScope::None, &[&a]).await;
    let detail = a.create_server("garden", false).await;
    let server: ServerId = detail.server.server_id.parse().unwrap();
    let general: ChannelId = detail.channels[0].channel_id.parse().unwrap();
    // DMs are for users who share a server.
    b.join(&a.invite(&detail.server.server_id).await).await;
    common::wait_members(&a, &detail.server.server_id, 2).await;
    a.send(&detail.server.server_id, "general", "one").await;
    a.send(&detail.server.server_id, "general", "two").await;
    a.request(Request::DmSend {
        user: b.identity.user_id().to_string(),
        text: "psst".into(),
        client_txn_id: None,
    })
    .await;
    let me = a.identity.user_id();
    let log = server.channel_log(&general);
    match ask(&a, SyncRequest::Head { log, author: me }).await {
        SyncResponse::Heads(page) => {
            assert_eq!(page.log, log);
            assert_eq!(page.heads.len(), 1, "{page:?}");
            assert_eq!((page.heads[0].author, page.heads[0].seq), (me, 2));
            assert!(!page.more);
        }
        other => panic!("unexpected {other:?}"),
    }
    let nobody = identity_core::Identity::generate(&mut rand::rng()).user_id();
    match ask(
        &a,
        SyncRequest::Head {
            log,
            author: nobody,
        },
    )
    .await
    {
        SyncResponse::Heads(page) => assert!(page.heads.is_empty(), "{page:?}"),
        other => panic!("unexpected {other:?}"),
    }
    let dm = LogId::from_bytes(*DmId::between(&me, &b.identity.user_id()).as_bytes());
    match ask(
        &a,
        SyncRequest::Head {
            log: dm,
            author: me,
        },
    )
    .await
    {
        SyncResponse::Error(error) => assert_eq!(error.code, SyncErrorCode::NotFound),
        other => panic!("unexpected {other:?}"),
    }
    b.stop().await;
    a.stop().await;
}
