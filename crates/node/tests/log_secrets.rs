//! No secret reaches the logs. A full multi-node run — a keyfile sealed and
//! unlocked with a passphrase, a private server, an invite, joins, channel
//! posts, a DM, a kick and the key rotation it causes — runs with every
//! target (libp2p's included) at `trace`; the captured output is then
//! searched for the passphrase, every secret key (hex and base64), every
//! group key, the invite code and every message's plaintext.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use common::{TestNode, WAIT, eventually, start, wait_members};
use identity_core::{Identity, KdfParams, Keyfile, Passphrase};
use node::ReplicaScope;
use node::api::{Request, Response};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Everything every thread logs, in memory: each event and each span's
/// fields as text. (A layer of its own, not `fmt`: `fmt` formats through a
/// thread-local buffer and aborts the process when a thread-local
/// destructor logs at `trace` as a runtime shuts down.)
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<String>>);

impl Capture {
    fn push(&self, line: &str) {
        let mut log = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        log.push_str(line);
        log.push('\n');
    }

    fn text(&self) -> String {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Writes every field as ` name=value`.
struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut line = format!(
            "SPAN {} {}",
            attrs.metadata().target(),
            attrs.metadata().name()
        );
        attrs.record(&mut Fields(&mut line));
        self.push(&line);
    }

    fn on_record(
        &self,
        _id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut line = String::from("RECORD");
        values.record(&mut Fields(&mut line));
        self.push(&line);
    }

    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let metadata = event.metadata();
        let mut line = format!("{} {}", metadata.level(), metadata.target());
        event.record(&mut Fields(&mut line));
        self.push(&line);
    }
}

/// The forms a secret could take in a log line.
fn forms(bytes: &[u8]) -> Vec<String> {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        hex.clone(),
        hex.to_uppercase(),
        base64::engine::general_purpose::STANDARD.encode(bytes),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        // Debug output of a byte array: "[12, 34, …]".
        format!("{bytes:?}"),
    ]
}

async fn group_keys_of(node: &TestNode, server: &str) -> Vec<Vec<u8>> {
    // The invite carries the current group key: every rotation shows in a
    // fresh invite.
    let code = node.invite(server).await;
    let signed = node::invite_code::parse(&code, 0).unwrap();
    vec![signed.invite().key.as_bytes().to_vec()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs_at_trace_level() {
    let capture = Capture::default();
    tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::TRACE)
        .with(capture.clone())
        .init();

    // A keyfile sealed and unlocked with a passphrase.
    let passphrase = "violet-otter-climbs-9931-quietly";
    let sealed_identity = Identity::generate(&mut rand::rng());
    let file = Keyfile::seal_with_passphrase(
        &mut rand::rng(),
        &sealed_identity,
        &Passphrase::new(passphrase),
        KdfParams::for_tests(),
    )
    .unwrap();
    let unlocked = Keyfile::parse(&file)
        .unwrap()
        .unlock_with_passphrase(&Passphrase::new(passphrase))
        .unwrap();
    assert_eq!(unlocked.user_id(), sealed_identity.user_id());
    assert!(
        Keyfile::parse(&file)
            .unwrap()
            .unlock_with_passphrase(&Passphrase::new("wrong guess"))
            .is_err()
    );

    // A server with three members, posts, a DM, a kick and a rotation.
    let relay = start("relay", ReplicaScope::All, &[]).await;
    let alice = start("alice", ReplicaScope::None, &[&relay]).await;
    let server = alice.create_server("hush", false).await.server.server_id;
    alice.set_bootstrap(&server, &[&relay]).await;
    let invite = alice.invite(&server).await;
    let mut group_keys = group_keys_of(&alice, &server).await;
    let bob = start("bob", ReplicaScope::None, &[]).await;
    bob.join(&invite).await;
    let carol = start("carol", ReplicaScope::None, &[]).await;
    carol.join(&alice.invite(&server).await).await;
    wait_members(&alice, &server, 3).await;

    let mut plaintexts = Vec::new();
    for (index, node) in [&alice, &bob, &carol].into_iter().enumerate() {
        let text = format!("plaintext-{index}-lantern-under-the-stairs");
        node.send(&server, "general", &text).await;
        plaintexts.push(text);
    }
    eventually(WAIT, || {
        let (bob, server, expected) = (&bob, server.clone(), &plaintexts);
        async move {
            let shown = bob.texts(&server, "general").await;
            expected
                .iter()
                .all(|text| shown.contains(text))
                .then_some(())
        }
    })
    .await;
    let dm = "plaintext-dm-meet-at-the-old-mill";
    let sent = alice
        .request(Request::DmSend {
            user: bob.identity.user_id().to_string(),
            text: dm.to_owned(),
            client_txn_id: None,
        })
        .await;
    assert!(matches!(sent, Response::Sent(_)), "{sent:?}");
    plaintexts.push(dm.to_owned());
    eventually(WAIT, || {
        let (bob, alice) = (&bob, alice.identity.user_id().to_string());
        async move {
            match bob
                .request(Request::DmHistory {
                    user: alice,
                    limit: 10,
                    before: None,
                })
                .await
            {
                Response::History(page) => page.messages.iter().any(|m| m.text == dm).then_some(()),
                _ => None,
            }
        }
    })
    .await;
    let kicked = alice
        .request(Request::Kick {
            server: server.clone(),
            user: carol.identity.user_id().to_string(),
            reason: String::new(),
        })
        .await;
    assert!(matches!(kicked, Response::Ok), "{kicked:?}");
    let after = "plaintext-after-rotation-blue-heron";
    alice.send(&server, "general", after).await;
    plaintexts.push(after.to_owned());
    eventually(WAIT, || {
        let (bob, server) = (&bob, server.clone());
        async move {
            bob.texts(&server, "general")
                .await
                .iter()
                .any(|text| text == after)
                .then_some(())
        }
    })
    .await;
    group_keys.extend(group_keys_of(&alice, &server).await);
    assert_ne!(group_keys[0], group_keys[1], "the kick rotated the key");

    let log = capture.text();
    assert!(
        log.len() > 100_000 && log.contains("TRACE"),
        "trace logging was captured ({} bytes)",
        log.len()
    );
    let mut secrets: Vec<(String, String)> = vec![
        ("the passphrase".into(), passphrase.into()),
        ("the invite code".into(), invite.clone()),
    ];
    for text in &plaintexts {
        secrets.push(("a message's plaintext".into(), text.clone()));
    }
    for identity in [
        &sealed_identity,
        &relay.identity,
        &alice.identity,
        &bob.identity,
        &carol.identity,
    ] {
        for form in forms(identity.secret_bytes().as_slice()) {
            secrets.push(("a secret key".into(), form));
        }
    }
    for key in &group_keys {
        for form in forms(key) {
            secrets.push(("a group key".into(), form));
        }
    }
    for (what, secret) in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "{what} appears in the trace log"
        );
    }
}
