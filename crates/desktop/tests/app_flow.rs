//! The whole app against real nodes: the app's own node (on its runtime
//! thread, with a real identity file and sled database in a temp dir) and a
//! host node in this process, connected over libp2p's memory transport.
//! kittest drives the UI like a user: create an identity, join by invite,
//! send with Enter, see the host's reply, and get a clear error for a bad
//! code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use common::{Host, app_harness, memory_config, pump, wait_for};
use desktop::actions::Action;
use desktop::model::{Phase, Settings};
use desktop::{AppConfig, PalaverApp};
use egui::Key;
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use node::api::{Request, Response};

#[test]
fn create_join_chat_and_get_a_reply() {
    let host = Host::start();
    let server = host.create_server("Garden Club");
    let invite = host.invite(&server);
    let dir = tempfile::tempdir().unwrap();
    let app = new_app(dir.path(), &host);
    assert_eq!(app.model.phase, Phase::Onboarding);
    let mut harness = app_harness(app);
    harness.step();

    // Onboarding: a passphrase-protected identity; the node starts.
    onboard(&mut harness);
    assert_eq!(
        desktop::bridge::identity_state(dir.path()),
        desktop::bridge::IdentityState::Present { keyring: false }
    );

    // A bad code: the node's error shows inline and nothing is joined.
    harness.get_by_label("Join with an invite").click();
    harness.run_steps(2);
    harness.get_by_label("Invite code").focus();
    harness
        .get_by_label("Invite code")
        .type_text("palaver://invite/nonsense");
    harness.run_steps(2);
    harness.get_by_label("Join").click();
    pump(&mut harness, "the bad code's error", |app| {
        matches!(
            &app.model.dialog,
            Some(desktop::model::Dialog::Join {
                error: Some(_),
                busy: false,
                ..
            })
        )
    });
    let error = match &harness.state().model.dialog {
        Some(desktop::model::Dialog::Join {
            error: Some(error), ..
        }) => error.clone(),
        _ => unreachable!(),
    };
    harness.get_by_label(&error);
    assert!(harness.state().model.servers.is_empty());

    // The real code joins and opens #general.
    join(&mut harness, &invite, &server);

    // Enter sends; the host receives it.
    harness
        .get_by_role_and_label(Role::MultilineTextInput, "Message")
        .focus();
    harness
        .get_by_role_and_label(Role::MultilineTextInput, "Message")
        .type_text("hello from the app");
    harness.step();
    harness.key_press(Key::Enter);
    harness.step();
    wait_for("the host to receive the message", || {
        harness.step();
        host.texts(&server)
            .iter()
            .any(|text| text == "hello from the app")
            .then_some(())
    });

    // The host replies; the reply appears in the open channel.
    host.request(Request::Send {
        server: server.clone(),
        channel: "general".into(),
        text: "welcome, ada".into(),
        client_txn_id: None,
        reply_to: None,
    });
    pump(&mut harness, "the host's reply", |app| {
        app.model
            .current_timeline()
            .is_some_and(|t| t.messages.iter().any(|m| m.text == "welcome, ada"))
    });
    harness.get_by_label("welcome, ada");
    harness.get_by_label("hello from the app");

    harness.state_mut().shutdown();
    drop(harness);

    // Restart: the app asks for the passphrase, explains a wrong one, and
    // with the right one shows the server and the history from disk.
    let app = new_app(dir.path(), &host);
    assert_eq!(app.model.phase, Phase::Unlock);
    let mut harness = app_harness(app);
    harness.step();
    harness.get_by_label("Passphrase").focus();
    harness.get_by_label("Passphrase").type_text("wrong horse");
    harness.run_steps(2);
    harness.get_by_label("Unlock").click();
    pump(&mut harness, "the wrong passphrase's error", |app| {
        app.model.phase == Phase::Unlock && app.model.identity_form.error.is_some()
    });
    let error = harness.state().model.identity_form.error.clone().unwrap();
    assert!(error.contains("passphrase"), "{error}");
    harness.get_by_label(&error);
    harness.state_mut().model.identity_form.passphrase = "correct horse battery staple".into();
    harness.step();
    harness.get_by_label("Unlock").click();
    pump(&mut harness, "the history after a restart", |app| {
        app.model.current_timeline().is_some_and(|t| {
            let texts: Vec<&str> = t.messages.iter().map(|m| m.text.as_str()).collect();
            texts.contains(&"hello from the app") && texts.contains(&"welcome, ada")
        })
    });
    assert!(harness.query_all_by_label("Garden Club").count() >= 1);

    // Leaving: confirmed in a dialog; the server leaves the rail and the
    // view, and the host sees the member go.
    harness.get_by_label("Leave server").click();
    // The modal settles its size and place before its buttons are clicked.
    harness.run_steps(6);
    harness.get_by_label("Leave").click();
    pump(&mut harness, "the server to leave the rail", |app| {
        app.model.servers.is_empty()
    });
    pump(&mut harness, "the view to close", |app| {
        app.model.selected.is_none()
    });
    assert!(harness.state().model.details.is_empty());
    wait_for("the host to see the member leave", || {
        match host.request(Request::ServerInfo {
            server: server.clone(),
        }) {
            Response::Server(detail) => (detail.members.len() == 1).then_some(()),
            other => panic!("unexpected {other:?}"),
        }
    });
    harness.state_mut().shutdown();
}

/// A message the node refuses (we were kicked while it was on its way)
/// keeps its text in the timeline with the reason, and the composer gives
/// way to a notice. Once a new invite brings us back, Retry sends it,
/// under its transaction id, once. Discard drops a refused message.
#[test]
fn a_refused_message_is_kept_and_goes_out_on_retry() {
    let host = Host::start();
    let server = host.create_server("Garden Club");
    let invite = || host.invite(&server);
    let dir = tempfile::tempdir().unwrap();
    let app = new_app(dir.path(), &host);
    let mut harness = app_harness(app);
    harness.step();
    onboard(&mut harness);
    join(&mut harness, &invite(), &server);
    let me = harness.state().model.me.clone().unwrap().user_id;
    let kick = || {
        host.request(Request::Kick {
            server: server.clone(),
            user: me.clone(),
            reason: String::new(),
        })
    };
    let removed = |app: &PalaverApp| {
        app.model
            .servers
            .iter()
            .any(|s| s.server_id == server && s.role == "removed")
    };
    // A removed member has no composer: the send is the one that was on
    // its way when the kick arrived.
    let send = |harness: &mut Harness<'static, PalaverApp>, text: &str| {
        assert!(
            harness
                .query_by_role_and_label(Role::MultilineTextInput, "Message")
                .is_none()
        );
        harness.get_by_label_contains("You were removed from this server");
        let ctx = harness.ctx.clone();
        harness.state_mut().dispatch(
            vec![Action::Send {
                text: text.to_owned(),
                reply_to: None,
            }],
            &ctx,
        );
        harness.step();
    };
    let refused = |app: &PalaverApp| {
        app.model
            .current_timeline()
            .is_some_and(|t| t.pending.len() == 1 && t.pending[0].failed.is_some())
    };

    kick();
    pump(&mut harness, "the kick to arrive", removed);
    send(&mut harness, "still here?");
    pump(&mut harness, "the refusal", refused);
    harness.run_steps(2);
    harness.get_by_label("still here?");
    let reason = harness.state().model.current_timeline().unwrap().pending[0]
        .failed
        .clone()
        .unwrap();
    harness.get_by_label(&format!("Not sent: {reason}"));

    // Back with a new invite: Retry sends it, once.
    join(&mut harness, &invite(), &server);
    harness.run_steps(2);
    harness.get_by_label("Retry").click();
    pump(&mut harness, "the retried send", |app| {
        app.model
            .current_timeline()
            .is_some_and(|t| t.pending.is_empty())
    });
    wait_for("the host to receive the retried message", || {
        harness.step();
        host.texts(&server)
            .contains(&"still here?".to_owned())
            .then_some(())
    });
    harness.run_steps(4);
    let mine = harness
        .state()
        .model
        .current_timeline()
        .unwrap()
        .messages
        .iter()
        .filter(|m| m.text == "still here?")
        .count();
    assert_eq!(mine, 1);

    // Discard: a refused message goes, and nothing is sent.
    kick();
    pump(&mut harness, "the second kick", removed);
    send(&mut harness, "never mind");
    pump(&mut harness, "the second refusal", refused);
    harness.run_steps(2);
    harness.get_by_label("Discard").click();
    harness.run_steps(2);
    assert!(
        harness
            .state()
            .model
            .current_timeline()
            .unwrap()
            .pending
            .is_empty()
    );
    assert!(harness.query_by_label("never mind").is_none());
    assert_eq!(
        host.texts(&server)
            .iter()
            .filter(|text| *text == "still here?")
            .count(),
        1
    );
    harness.state_mut().shutdown();
}

/// The app on `dir`, with `host` as its bootstrap peer and no keyring.
fn new_app(dir: &std::path::Path, host: &Host) -> PalaverApp {
    let config = AppConfig {
        node: memory_config(dir.to_path_buf(), vec![host.addr.clone()]),
        launched: Instant::now(),
    };
    let mut app = PalaverApp::new(config, Settings::default(), None, || {});
    app.model.keyring_available = false;
    app
}

/// Creates a passphrase-protected identity through the onboarding screen
/// and waits for the node to start.
fn onboard(harness: &mut Harness<'static, PalaverApp>) {
    harness.get_by_label("Display name").focus();
    harness.get_by_label("Display name").type_text("ada");
    harness.get_by_label("Passphrase").focus();
    harness
        .get_by_label("Passphrase")
        .type_text("correct horse battery staple");
    harness.step();
    harness.get_by_label("Confirm passphrase").focus();
    harness
        .get_by_label("Confirm passphrase")
        .type_text("correct horse battery staple");
    harness.get_by_label("Create identity").click();
    pump(harness, "the node to start", |app| {
        app.model.phase == Phase::Ready && app.model.me.is_some()
    });
}

/// Joins with `invite` through the join dialog and waits for the server
/// to open.
fn join(harness: &mut Harness<'static, PalaverApp>, invite: &str, server: &str) {
    harness.state_mut().model.dialog = Some(desktop::model::Dialog::Join {
        code: String::new(),
        error: None,
        busy: false,
    });
    harness.run_steps(2);
    harness.get_by_label("Invite code").focus();
    harness.get_by_label("Invite code").type_text(invite);
    harness.run_steps(2);
    harness.get_by_label("Join").click();
    pump(harness, "the join", |app| {
        app.model.dialog.is_none() && app.model.selected.is_some()
    });
    pump(harness, "the server in the rail", |app| {
        app.model.servers.iter().any(|s| s.server_id == server)
    });
}
