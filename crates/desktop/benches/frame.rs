//! Frame cost of the desktop UI: building and tessellating one frame of the
//! main window (what the UI thread does per frame, minus the GPU upload)
//! with long timelines, and absorbing a flood of 1000 incoming messages.
//!
//! `cargo bench -p desktop --bench frame`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use desktop::model::{Model, Phase, Selection, Settings, Timeline};
use desktop::ui;
use desktop::ui::time::Clock;
use node::api::{ChannelView, IdentityView, MemberView, MessageView, ServerDetail, ServerView};

const NOW_MS: u64 = 1_800_014_400_000;
const SERVER: &str = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";
const CHANNEL: &str = "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0";

fn message(seq: u64) -> MessageView {
    let author = if seq.is_multiple_of(3) { "ada" } else { "bob" };
    MessageView {
        message_id: format!("{seq:064x}"),
        author: format!("12D3KooW{author}"),
        author_name: author.into(),
        text: format!(
            "message {seq}: the quick brown fox jumps over the lazy dog, \
             and then it does it again for good measure"
        ),
        timestamp_ms: NOW_MS - 10_000_000 + seq * 1_000,
        edited: false,
        redacted: false,
        reply_to: None,
        reactions: vec![],
        mine: author == "ada",
        delivery: None,
        cursor: format!("{seq:096x}"),
    }
}

fn model(messages: u64) -> Model {
    let mut model = Model::new(
        Phase::Ready,
        "/tmp/bench".into(),
        Settings::default(),
        false,
    );
    model.clock = Clock::utc_at(NOW_MS);
    model.me = Some(IdentityView {
        user_id: "12D3KooWada".into(),
        display_name: "ada".into(),
    });
    let server = ServerView {
        server_id: SERVER.into(),
        name: "Bench".into(),
        description: String::new(),
        public: false,
        role: "member".into(),
        unread: 0,
        members: 2,
    };
    model.servers = vec![server.clone()];
    model.details.insert(
        SERVER.into(),
        ServerDetail {
            server,
            channels: vec![ChannelView {
                channel_id: CHANNEL.into(),
                name: "general".into(),
                topic: String::new(),
                unread: 0,
            }],
            members: ["ada", "bob"]
                .iter()
                .map(|name| MemberView {
                    user_id: format!("12D3KooW{name}"),
                    display_name: (*name).into(),
                    role: "member".into(),
                    online: true,
                })
                .collect(),
            bootstrap_peers: vec![],
            key_epoch: 1,
            state_hash: String::new(),
        },
    );
    let selection = Selection::Channel {
        server: SERVER.into(),
        channel: CHANNEL.into(),
    };
    let mut timeline = Timeline::default();
    timeline.add_page((0..messages).rev().map(message).collect(), false);
    model.timelines.insert(selection.clone(), timeline);
    model.selected = Some(selection);
    model
}

fn input() -> egui::RawInput {
    egui::RawInput {
        screen_rect: Some(egui::Rect::from_min_size(
            egui::Pos2::ZERO,
            egui::vec2(1100.0, 720.0),
        )),
        ..Default::default()
    }
}

/// One frame: layout, then tessellation.
fn frame(ctx: &egui::Context, model: &mut Model) -> usize {
    let output = ctx.run_ui(input(), |ui| {
        black_box(ui::draw(ui, model));
    });
    ctx.tessellate(output.shapes, output.pixels_per_point).len()
}

fn bench_frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame");
    for messages in [50, 1_000, 5_000] {
        let ctx = egui::Context::default();
        let mut model = model(messages);
        // Warm up fonts and scroll to the bottom.
        for _ in 0..3 {
            frame(&ctx, &mut model);
        }
        group.bench_function(format!("timeline_{messages}"), |b| {
            b.iter(|| frame(&ctx, &mut model));
        });
    }
    group.finish();
}

fn bench_flood(c: &mut Criterion) {
    c.bench_function("flood_1000_messages_then_frame", |b| {
        let ctx = egui::Context::default();
        b.iter_batched(
            || model(200),
            |mut model| {
                let selection = model.selected.clone().unwrap();
                for seq in 200..1_200 {
                    model
                        .timelines
                        .get_mut(&selection)
                        .unwrap()
                        .upsert(message(seq));
                }
                frame(&ctx, &mut model)
            },
            BatchSize::LargeInput,
        );
    });
}

criterion_group!(benches, bench_frames, bench_flood);
criterion_main!(benches);
