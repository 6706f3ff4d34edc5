//! Frame times while another node floods an open channel: the real app
//! (its node on its own runtime thread, real identity file and sled ledger)
//! joins a host node's server by invite over the memory transport; the host
//! then sends 1,000 messages as fast as it can while the app keeps drawing
//! frames. Prints the frame-time distribution and how long until the last
//! message is on screen.
//!
//! `cargo bench -p desktop --bench flood`

#![allow(clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Host, app_harness, memory_config, pump};
use desktop::actions::Action;
use desktop::model::Settings;
use desktop::{AppConfig, PalaverApp};
use node::api::{Request, Response};

const MESSAGES: usize = 1_000;

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: keep it quick.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let host = Host::start();
    let server = match host.request(Request::CreateServer {
        name: "Flood".into(),
        description: String::new(),
        public: false,
    }) {
        Response::Server(detail) => detail.server.server_id,
        other => panic!("unexpected {other:?}"),
    };
    let invite = match host.request(Request::CreateInvite {
        server: server.clone(),
        expires_in_ms: None,
        max_uses: None,
    }) {
        Response::Invite(invite) => invite.invite,
        other => panic!("unexpected {other:?}"),
    };

    let dir = tempfile::tempdir().expect("temp dir");
    let config = AppConfig {
        node: memory_config(dir.path().to_path_buf(), vec![host.addr.clone()]),
        launched: Instant::now(),
    };
    let mut app = PalaverApp::new(config, Settings::default(), None, || {});
    app.model.keyring_available = false;
    app.model.identity_form.display_name = "ada".into();
    app.model.identity_form.passphrase = "correct horse battery staple".into();
    app.model.identity_form.confirm = "correct horse battery staple".into();
    let mut harness = app_harness(app);
    harness.step();
    let ctx = harness.ctx.clone();
    harness
        .state_mut()
        .dispatch(vec![Action::CreateIdentity], &ctx);
    pump(&mut harness, "the node to start", |app| {
        app.model.me.is_some()
    });
    harness
        .state_mut()
        .dispatch(vec![Action::Join { code: invite }], &ctx);
    pump(&mut harness, "the join", |app| {
        app.model.dialog.is_none() && app.model.selected.is_some()
    });

    // The flood: the host's requests run on its runtime, all in flight.
    let started = Instant::now();
    let handle = host.handle.clone();
    let flood_server = server.clone();
    let flood = host.runtime.spawn(async move {
        let sends = (0..MESSAGES).map(|index| {
            let handle = handle.clone();
            let server = flood_server.clone();
            async move {
                handle
                    .request(Request::Send {
                        server,
                        channel: "general".into(),
                        text: format!("flood message {index:04}"),
                        client_txn_id: None,
                        reply_to: None,
                    })
                    .await
            }
        });
        futures::future::join_all(sends).await
    });

    let mut frames: Vec<Duration> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    let shown = |app: &PalaverApp| {
        app.model.current_timeline().map_or(0, |t| {
            t.messages
                .iter()
                .filter(|m| m.text.starts_with("flood"))
                .count()
        })
    };
    while shown(harness.state()) < MESSAGES {
        assert!(Instant::now() < deadline, "the flood did not arrive");
        let frame = Instant::now();
        harness.step();
        frames.push(frame.elapsed());
        // A display's pace: about 60 frames a second.
        std::thread::sleep(Duration::from_millis(16).saturating_sub(frame.elapsed()));
    }
    let all_shown = started.elapsed();
    let sent = host.runtime.block_on(flood).expect("flood task");
    assert!(sent.iter().all(Result::is_ok), "a host send failed");

    frames.sort();
    let at = |q: f64| frames[((frames.len() - 1) as f64 * q).round() as usize];
    println!(
        "flood of {MESSAGES} messages into the open channel: all on screen after {:.2} s; \
         {} frames: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        all_shown.as_secs_f64(),
        frames.len(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.95).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        frames[frames.len() - 1].as_secs_f64() * 1e3,
    );
    harness.state_mut().shutdown();
}
