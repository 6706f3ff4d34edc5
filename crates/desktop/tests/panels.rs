//! kittest: every screen's behaviour, without a window or a node. Each test
//! draws the UI from a view model, drives it like a user, and checks what
//! it shows and which actions it asks for.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use desktop::actions::Action;
use desktop::model::{Dialog, Model, Phase, Settings};
use desktop::ui;
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

mod support;
use node::api::{PublicServerView, StatusView};
use support::{BOB, ME, SERVER, ready_model};

fn harness(model: Model) -> Harness<'static, (Model, Vec<Action>)> {
    Harness::builder()
        .with_size(egui::vec2(1000.0, 700.0))
        .build_ui_state(
            |ui, state: &mut (Model, Vec<Action>)| {
                let actions = ui::draw(ui, &mut state.0);
                state.1.extend(actions);
            },
            (model, Vec::new()),
        )
}

#[test]
fn onboarding_validates_then_creates_the_identity() {
    let model = Model::new(
        Phase::Onboarding,
        "/tmp/x".into(),
        Settings::default(),
        false,
    );
    let mut harness = harness(model);
    harness.get_by_label("Create identity").click();
    harness.run();
    harness.get_by_label_contains("display name of 1 to 64");
    assert!(harness.state().1.is_empty());

    harness.get_by_label("Display name").focus();
    harness.get_by_label("Display name").type_text("ada");
    harness.get_by_label("Passphrase").focus();
    harness
        .get_by_label("Passphrase")
        .type_text("correct horse battery staple");
    harness.run();
    harness.get_by_label_contains("Strength:");
    harness.get_by_label("Confirm passphrase").focus();
    harness
        .get_by_label("Confirm passphrase")
        .type_text("correct horse battery stapl");
    harness.get_by_label("Create identity").click();
    harness.run();
    harness.get_by_label("The passphrases do not match.");
    assert!(harness.state().1.is_empty());

    harness.get_by_label("Confirm passphrase").focus();
    harness.get_by_label("Confirm passphrase").type_text("e");
    harness.get_by_label("Create identity").click();
    harness.run();
    assert_eq!(harness.state().1, vec![Action::CreateIdentity]);
    assert_eq!(harness.state().0.identity_form.display_name, "ada");
}

#[test]
fn unlock_shows_a_wrong_passphrase_clearly() {
    let mut model = Model::new(Phase::Unlock, "/tmp/x".into(), Settings::default(), false);
    model.identity_form.error =
        Some("wrong passphrase: the identity file could not be unlocked".into());
    let mut harness = harness(model);
    harness.get_by_label_contains("wrong passphrase");
    harness.get_by_label("Passphrase").focus();
    harness
        .get_by_label("Passphrase")
        .type_text("secret passphrase");
    harness.get_by_label("Unlock").click();
    harness.run();
    assert_eq!(harness.state().1, vec![Action::Unlock]);
}

#[test]
fn the_timeline_shows_edits_deletions_reactions_and_delivery() {
    let mut harness = harness(ready_model());
    harness.run();
    harness.get_by_label("hello garden");
    harness.get_by_label("fixed typo");
    harness.get_by_label("(edited)");
    harness.get_by_label("message deleted");
    harness.get_by_label("👍 1");
    assert!(
        harness.query_all_by_label(ui::icons::DELIVERED).count() >= 2,
        "delivery marks of our messages"
    );
    // The channel list and the timeline header both name the channel.
    assert_eq!(harness.query_all_by_label("# general").count(), 2);
    // The member list shows bob (and so does his message in the timeline).
    assert!(harness.query_all_by_label("bob").count() >= 2);
}

#[test]
fn the_composer_has_the_keyboard_when_a_channel_opens() {
    let mut harness = harness(ready_model());
    harness.run();
    // No click: typing goes straight into the message field.
    harness
        .input_mut()
        .events
        .push(egui::Event::Text("straight in".into()));
    harness.run();
    harness.key_press(egui::Key::Enter);
    harness.run();
    assert_eq!(
        harness.state().1,
        vec![Action::Send {
            text: "straight in".into(),
            reply_to: None
        }]
    );
}

#[test]
fn enter_sends_and_shift_enter_adds_a_line() {
    let mut harness = harness(ready_model());
    harness.run();
    let composer = harness.get_by_role_and_label(Role::MultilineTextInput, "Message");
    composer.focus();
    composer.type_text("first line");
    harness.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::Enter);
    harness.run();
    harness
        .get_by_role_and_label(Role::MultilineTextInput, "Message")
        .type_text("second line");
    harness.run();
    assert!(harness.state().1.is_empty(), "Shift+Enter must not send");
    harness.key_press(egui::Key::Enter);
    harness.run();
    assert_eq!(
        harness.state().1,
        vec![Action::Send {
            text: "first line\nsecond line".into(),
            reply_to: None
        }]
    );
    harness.get_by_label("0 / 5000");
}

#[test]
fn the_counter_stops_messages_over_the_limit() {
    let mut model = ready_model();
    model.composer.text = "x".repeat(5_001);
    let mut harness = harness(model);
    harness.run();
    harness.get_by_label("5001 / 5000");
    harness.get_by_label("Send").click();
    harness.run();
    assert!(harness.state().1.is_empty());
}

#[test]
fn up_in_an_empty_composer_edits_the_last_message() {
    let mut harness = harness(ready_model());
    harness.run();
    harness
        .get_by_role_and_label(Role::MultilineTextInput, "Message")
        .focus();
    harness.run();
    harness.key_press(egui::Key::ArrowUp);
    harness.run();
    let last = "a4".repeat(32);
    assert_eq!(harness.state().1, vec![Action::StartEdit(last)]);
}

#[test]
fn the_context_menu_edits_and_deletes() {
    let mut harness = harness(ready_model());
    harness.run();
    harness.get_by_label("my last words").click_secondary();
    harness.run();
    harness.get_by_label("Edit").click();
    harness.run();
    harness.get_by_label("hello garden").click_secondary();
    harness.run();
    harness.get_by_label("Delete").click();
    harness.run();
    harness.get_by_label("fixed typo").click_secondary();
    harness.run();
    harness.get_by_label("🎉").click();
    harness.run();
    assert_eq!(
        harness.state().1,
        vec![
            Action::StartEdit("a4".repeat(32)),
            Action::Delete("a1".repeat(32)),
            Action::React {
                message_id: "b2".repeat(32),
                emoji: "🎉".into(),
                remove: false
            },
        ]
    );
}

#[test]
fn create_server_dialog() {
    let mut model = ready_model();
    model.dialog = Some(Dialog::CreateServer {
        name: String::new(),
        description: String::new(),
        public: false,
        error: None,
    });
    let mut harness = harness(model);
    harness.run();
    harness.get_by_label("Server name").focus();
    harness.get_by_label("Server name").type_text("Chess Club");
    harness.get_by_label_contains("Public:").click();
    harness.get_by_label("Create").click();
    harness.run();
    assert_eq!(
        harness.state().1,
        vec![Action::CreateServer {
            name: "Chess Club".into(),
            description: String::new(),
            public: true
        }]
    );
}

#[test]
fn a_dialog_takes_the_keyboard_at_once_and_enter_submits() {
    let mut model = ready_model();
    model.dialog = Some(Dialog::CreateServer {
        name: String::new(),
        description: String::new(),
        public: false,
        error: None,
    });
    let mut harness = harness(model);
    harness.run();
    // No click first: the name field has the keyboard when the dialog opens.
    harness
        .input_mut()
        .events
        .push(egui::Event::Text("Chess Club".into()));
    harness.run();
    harness.key_press(egui::Key::Enter);
    harness.run();
    assert_eq!(
        harness.state().1,
        vec![Action::CreateServer {
            name: "Chess Club".into(),
            description: String::new(),
            public: false
        }]
    );
}

#[test]
fn invite_dialog_copies_the_code_and_shows_a_qr_code() {
    let mut model = ready_model();
    let code = "palaver://invite/abcdefghijklmnopqrstuvwxyz234567abcdefgh".to_owned();
    model.dialog = Some(Dialog::Invite {
        server: SERVER.into(),
        code: Some(code.clone()),
        error: None,
    });
    let mut harness = harness(model);
    harness.run();
    harness.get_by_label("Invite QR code");
    harness.get_by_label("Copy code").click();
    harness.run();
    assert_eq!(harness.state().1, vec![Action::Copy(code)]);
}

#[test]
fn join_dialog_explains_a_bad_code_inline() {
    let mut model = ready_model();
    model.dialog = Some(Dialog::Join {
        code: String::new(),
        error: None,
        busy: false,
    });
    let mut harness = harness(model);
    harness.run();
    harness.get_by_label("Invite code").focus();
    harness
        .get_by_label("Invite code")
        .type_text("palaver://invite/nonsense");
    harness.get_by_label("Join").click();
    harness.run();
    assert_eq!(
        harness.state().1,
        vec![Action::Join {
            code: "palaver://invite/nonsense".into()
        }]
    );
    // The node's answer lands in the dialog.
    if let Some(Dialog::Join { error, .. }) = &mut harness.state_mut().0.dialog {
        *error = Some("the invite code is damaged (checksum mismatch): copy it again".into());
    }
    harness.run();
    harness.get_by_label_contains("checksum mismatch");
}

#[test]
fn discover_lists_filters_and_joins() {
    let mut model = ready_model();
    let server = |id: &str, name: &str, joined: bool| PublicServerView {
        server_id: id.repeat(32),
        name: name.into(),
        description: format!("{name} talk"),
        members: 3,
        joined,
    };
    model.dialog = Some(Dialog::Discover {
        filter: String::new(),
        servers: vec![
            server("aa", "Rust", false),
            server("bb", "Gardening", false),
            server("cc", "Chess", true),
        ],
        loading: false,
        error: None,
    });
    let mut harness = harness(model);
    harness.run();
    harness.get_by_label("Join Rust");
    harness.get_by_label("Join Gardening");
    harness.get_by_label("Joined");
    harness.get_by_label("Filter").focus();
    harness.get_by_label("Filter").type_text("garden");
    harness.run();
    assert!(harness.query_by_label("Join Rust").is_none());
    harness.get_by_label("Join Gardening").click();
    harness.run();
    assert_eq!(
        harness.state().1,
        vec![Action::JoinPublic {
            server: "bb".repeat(32)
        }]
    );
}

#[test]
fn settings_edit_and_save() {
    let mut model = ready_model();
    model.dialog = Some(Dialog::Settings(Settings {
        display_name: "ada".into(),
        ..Settings::default()
    }));
    let mut harness = harness(model);
    harness.run();
    harness.get_by_label_contains("Data directory: /tmp/palaver-test");
    harness.get_by_label("Display name").focus();
    harness.get_by_label("Display name").type_text(" lovelace");
    harness.get_by_label_contains("mDNS").click();
    harness.get_by_label("Save settings").click();
    harness.run();
    let [Action::SaveSettings(saved)] = harness.state().1.as_slice() else {
        panic!("{:?}", harness.state().1);
    };
    assert_eq!(saved.display_name, "ada lovelace");
    assert!(!saved.mdns);
}

#[test]
fn diagnostics_show_the_network() {
    let mut model = ready_model();
    model.status = Some(StatusView {
        user_id: ME.into(),
        listen_addrs: vec!["/ip4/127.0.0.1/udp/4001/quic-v1".into()],
        nat: "private".into(),
        connected_peers: 3,
        dht_peers: 7,
        outbox_depth: 2,
        ledger_entries: 42,
        ledger_bytes: 4096,
        ..StatusView::default()
    });
    model.dialog = Some(Dialog::Diagnostics);
    let mut harness = harness(model);
    harness.run();
    harness.get_by_label("/ip4/127.0.0.1/udp/4001/quic-v1");
    harness.get_by_label("private");
    harness.get_by_label("2 waiting");
    harness.get_by_label("42 entries, 4.0 KiB");
    harness.get_by_label("Refresh").click();
    harness.run();
    assert_eq!(harness.state().1, vec![Action::RefreshStatus]);
}

#[test]
fn moderation_from_the_member_list() {
    let mut harness = harness(ready_model());
    harness.run();
    // The member list comes before the timeline in the tree.
    harness
        .get_all_by_label("bob")
        .next()
        .unwrap()
        .click_secondary();
    harness.run();
    harness.get_by_label("Make moderator").click();
    harness.run();
    harness
        .get_all_by_label("bob")
        .next()
        .unwrap()
        .click_secondary();
    harness.run();
    harness.get_by_label("Ban").click();
    harness.run();
    assert_eq!(
        harness.state().1,
        vec![
            Action::GrantRole {
                server: SERVER.into(),
                user: BOB.into(),
                role: "moderator".into()
            },
            Action::Ban {
                server: SERVER.into(),
                user: BOB.into()
            },
        ]
    );
}

#[test]
fn a_long_timeline_lays_out_only_what_is_in_view() {
    let mut model = ready_model();
    let selection = model.selected.clone().unwrap();
    let timeline = model.timelines.get_mut(&selection).unwrap();
    for seq in 10..2_010 {
        timeline.upsert(support::message(
            &format!("{seq:04x}"),
            BOB,
            "bob",
            &format!("flood {seq}"),
            seq,
        ));
    }
    let mut harness = harness(model);
    harness.run();
    // Opened at the newest message …
    harness.get_by_label("flood 2009");
    // … with only a screenful of rows in the UI tree.
    let shown = (10..2_010)
        .filter(|seq| harness.query_by_label(&format!("flood {seq}")).is_some())
        .count();
    assert!((5..100).contains(&shown), "{shown} rows laid out");
    assert!(harness.query_by_label("flood 10").is_none());
}

/// The `flood N` rows the UI tree holds.
fn shown(
    harness: &Harness<'static, (Model, Vec<Action>)>,
    range: std::ops::Range<u64>,
) -> Vec<u64> {
    range
        .filter(|seq| harness.query_by_label(&format!("flood {seq}")).is_some())
        .collect()
}

#[test]
fn scrolling_to_the_top_loads_older_messages_and_keeps_the_view() {
    let mut model = ready_model();
    let selection = model.selected.clone().unwrap();
    let timeline = model.timelines.get_mut(&selection).unwrap();
    timeline.messages.clear();
    let page = |range: std::ops::Range<u64>| -> Vec<_> {
        range
            .rev()
            .map(|seq| {
                support::message(
                    &format!("{seq:04x}"),
                    BOB,
                    "bob",
                    &format!("flood {seq}"),
                    seq,
                )
            })
            .collect()
    };
    timeline.add_page(page(1_000..1_050), true);
    let mut harness = harness(model);
    harness.run();
    assert!(shown(&harness, 1_000..1_050).contains(&1_049));
    // Scroll up with the wheel over the timeline, to the very top.
    harness.hover_at(egui::pos2(500.0, 300.0));
    harness.event(egui::Event::MouseWheel {
        unit: egui::MouseWheelUnit::Point,
        delta: egui::vec2(0.0, 100_000.0),
        phase: egui::TouchPhase::Move,
        modifiers: egui::Modifiers::NONE,
    });
    // (Wheel scrolling is animated.)
    harness.run_steps(60);
    assert!(harness.state().1.contains(&Action::LoadOlder));
    let before = shown(&harness, 1_000..1_050);
    assert!(before.contains(&1_000), "{before:?}");
    // The older page arrives in front: the same messages stay in view.
    let timeline = harness.state_mut().0.timelines.get_mut(&selection).unwrap();
    timeline.loading = true;
    timeline.add_page(page(950..1_000), true);
    harness.run();
    let after = shown(&harness, 950..1_050);
    assert!(after.contains(&1_000), "{after:?}");
    assert!(!after.contains(&950), "{after:?}");
}

#[test]
fn a_member_leaves_a_server_after_confirming() {
    // We own the fixture's server: there is no way to leave it.
    let mut harness = harness(ready_model());
    harness.run();
    assert!(harness.query_by_label("Leave server").is_none());

    let mut model = ready_model();
    model.servers[0].role = "member".into();
    let mut harness = self::harness(model);
    harness.run();
    harness.get_by_label("Leave server").click();
    harness.run();
    let confirm = Dialog::LeaveServer {
        server: SERVER.into(),
        name: "Garden Club".into(),
    };
    assert_eq!(harness.state().1, vec![Action::OpenDialog(confirm.clone())]);

    // Cancel changes nothing; Leave asks the node and closes.
    for (button, expected) in [
        ("Cancel", vec![]),
        (
            "Leave",
            vec![Action::LeaveServer {
                server: SERVER.into(),
            }],
        ),
    ] {
        harness.state_mut().0.dialog = Some(confirm.clone());
        harness.state_mut().1.clear();
        harness.run();
        assert!(harness.query_by_label("Leave Garden Club?").is_some());
        harness.get_by_label(button).click();
        harness.run();
        assert_eq!(harness.state().1, expected, "{button}");
        assert!(harness.state().0.dialog.is_none(), "{button}");
    }
}

#[test]
fn a_timeline_off_screen_is_trimmed_to_its_newest_messages_and_pages_back() {
    use desktop::model::{MAX_LIVE_MESSAGES, Timeline};
    let message = |seq: u64| support::message(&format!("{seq:04}"), BOB, "bob", "flood", seq);
    let mut timeline = Timeline {
        loaded: true,
        ..Timeline::default()
    };
    let total = MAX_LIVE_MESSAGES as u64 + 25;
    for seq in 1..=total {
        timeline.upsert(message(seq));
    }
    assert_eq!(
        timeline.messages.len(),
        total as usize,
        "on screen: nothing dropped"
    );
    timeline.trim();
    // The newest are kept, the oldest dropped, and paging back brings
    // them again.
    assert_eq!(timeline.messages.len(), MAX_LIVE_MESSAGES);
    assert_eq!(
        timeline.messages.last().unwrap().cursor,
        format!("{total:096x}")
    );
    assert_eq!(
        timeline.messages.first().unwrap().cursor,
        format!("{:096x}", 26)
    );
    assert!(timeline.more_older);
    timeline.add_page((1..=25).rev().map(message).collect(), false);
    assert_eq!(timeline.messages.len(), total as usize);
    assert!(!timeline.more_older);
    // A short timeline keeps everything, and whether older ones exist.
    let mut short = Timeline::default();
    short.upsert(message(1));
    short.trim();
    assert_eq!((short.messages.len(), short.more_older), (1, false));
}

#[test]
fn a_refused_message_keeps_its_text_until_it_is_retried_or_discarded() {
    use desktop::model::PendingSend;
    let mut model = ready_model();
    let pending = |txn: &str, text: &str, failed: Option<&str>| PendingSend {
        txn: txn.into(),
        text: text.into(),
        reply_to: None,
        failed: failed.map(str::to_owned),
    };
    model.current_timeline_mut().unwrap().pending = vec![
        pending("t1", "words the node refused", Some("the disk is full")),
        pending("t2", "words on their way", None),
    ];
    let mut harness = harness(model);
    harness.run();
    harness.get_by_label("words the node refused");
    harness.get_by_label("Not sent: the disk is full");
    harness.get_by_label("words on their way");
    // One row failed: one choice of each.
    assert_eq!(harness.query_all_by_label("Retry").count(), 1);
    harness.get_by_label("Retry").click();
    harness.run();
    assert_eq!(harness.state().1, vec![Action::RetrySend("t1".into())]);
    harness.state_mut().1.clear();
    harness.get_by_label("Discard").click();
    harness.run();
    assert_eq!(harness.state().1, vec![Action::DiscardSend("t1".into())]);
}

#[test]
fn a_removed_member_gets_a_notice_instead_of_the_composer() {
    let mut model = ready_model();
    model.servers[0].role = "removed".into();
    let mut harness = harness(model);
    harness.run();
    assert!(
        harness
            .query_by_role_and_label(Role::MultilineTextInput, "Message")
            .is_none()
    );
    harness.get_by_label_contains("You were removed from this server");
    // The history stays readable.
    harness.get_by_label("hello garden");
}
