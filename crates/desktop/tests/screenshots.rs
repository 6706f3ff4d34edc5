//! Snapshot tests: the main screens rendered with wgpu (lavapipe on CI)
//! and compared with the PNGs in `docs/screenshots/`, which are the
//! README's screenshots. After a deliberate UI change, refresh them with
//! `UPDATE_SNAPSHOTS=1 cargo test -p desktop --test screenshots`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use desktop::actions::Action;
use desktop::model::{Dialog, Model, Phase, Settings};
use desktop::ui;
use desktop::ui::time::Clock;
use egui_kittest::{Harness, SnapshotOptions};
use node::api::{ChannelView, ServerSyncView, ServerView, StatusView};

mod support;
use support::{ME, NOW_MS, SERVER, ready_model};

/// Renders the current frame and compares it with `docs/screenshots/NAME.png`.
fn snapshot(harness: &mut Harness<'_, Model>, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    harness.snapshot_options(name, &SnapshotOptions::new().output_path(dir));
}

fn harness(model: Model) -> Harness<'static, Model> {
    Harness::builder()
        .with_size(egui::vec2(1100.0, 720.0))
        .wgpu()
        .build_ui_state(
            |ui, model: &mut Model| {
                let _: Vec<Action> = ui::draw(ui, model);
            },
            model,
        )
}

/// The fixture, fuller: two servers, three channels, unread counts.
fn main_model() -> Model {
    let mut model = ready_model();
    let detail = model.details.get_mut(SERVER).unwrap();
    for (id, name, unread) in [("c1c1", "seeds", 3), ("c2c2", "events", 0)] {
        detail.channels.push(ChannelView {
            channel_id: id.repeat(8),
            name: name.into(),
            topic: String::new(),
            unread,
        });
        model.unread.insert(id.repeat(8), unread);
    }
    model.servers.push(ServerView {
        server_id: "7a".repeat(32),
        name: "Rust Meetup".into(),
        description: String::new(),
        public: true,
        role: "member".into(),
        unread: 12,
        members: 40,
    });
    model.unread.insert("7a".repeat(16), 12);
    model
}

#[test]
fn main_window() {
    let mut harness = harness(main_model());
    harness.run();
    snapshot(&mut harness, "main_window");
}

#[test]
fn onboarding() {
    let mut model = Model::new(
        Phase::Onboarding,
        "/home/ada/.local/share/palaver/desktop".into(),
        Settings::default(),
        false,
    );
    model.clock = Clock::utc_at(NOW_MS);
    model.identity_form.display_name = "ada".into();
    let mut harness = harness(model);
    harness.run();
    snapshot(&mut harness, "onboarding");
}

#[test]
fn join_with_a_damaged_code() {
    let mut model = main_model();
    model.dialog = Some(Dialog::Join {
        code: "palaver://invite/AEBAGBAFAYDQQCIKBMGA2DQPCAIREEYUCULBOGAZDINRYHI6D".into(),
        error: Some("the invite code is damaged (checksum mismatch): copy it again".into()),
        busy: false,
    });
    let mut harness = harness(model);
    harness.run();
    snapshot(&mut harness, "join_error");
}

#[test]
fn invite_with_qr_code() {
    let mut model = main_model();
    model.dialog = Some(Dialog::Invite {
        server: SERVER.into(),
        code: Some("palaver://invite/AEBAGBAFAYDQQCIKBMGA2DQPCAIREEYUCULBOGAZDINRYHI6DAEBAGBAFAYDQQCIKBMGA".into()),
        error: None,
    });
    let mut harness = harness(model);
    harness.run();
    snapshot(&mut harness, "invite");
}

#[test]
fn diagnostics() {
    let mut model = main_model();
    model.status = Some(StatusView {
        user_id: ME.into(),
        listen_addrs: vec![
            "/ip4/192.168.1.20/udp/4001/quic-v1".into(),
            "/ip4/192.168.1.20/tcp/4001".into(),
        ],
        nat: "private".into(),
        connected_peers: 5,
        dht_peers: 18,
        outbox_depth: 0,
        ledger_entries: 1532,
        ledger_bytes: 412_000,
        servers: vec![ServerSyncView {
            server_id: SERVER.into(),
            name: "Garden Club".into(),
            mesh_peers: 3,
            topic_peers: 4,
            replicas_connected: 1,
            entries: 1211,
            pending: 0,
            last_sync_ms: Some(NOW_MS - 20_000),
            state_hash: "9f3c".repeat(16),
        }],
        ..StatusView::default()
    });
    model.dialog = Some(Dialog::Diagnostics);
    let mut harness = harness(model);
    harness.run();
    snapshot(&mut harness, "diagnostics");
}

#[test]
fn refused_send() {
    use desktop::model::PendingSend;
    let mut model = main_model();
    model.current_timeline_mut().unwrap().pending = vec![
        PendingSend {
            txn: "t1".into(),
            text: "Can someone water the tomatoes on Sunday?".into(),
            reply_to: None,
            failed: Some("the ledger cannot be written: no space left on device".into()),
        },
        PendingSend {
            txn: "t2".into(),
            text: "And the basil too".into(),
            reply_to: None,
            failed: None,
        },
    ];
    let mut harness = harness(model);
    harness.run();
    snapshot(&mut harness, "refused_send");
}
