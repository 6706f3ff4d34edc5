//! Frame cost of the desktop UI: building and tessellating one frame of the
//! main window (what the UI thread does per frame, minus the GPU upload)
//! with long timelines, and absorbing a flood of 1000 incoming messages.
//!
//! `cargo bench -p desktop --bench frame`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use desktop::model::{Model, Timeline};
use desktop::ui;
use node::api::MessageView;

#[path = "../tests/support/mod.rs"]
mod support;

use support::{BOB, ME, NOW_MS};

/// Message `seq`: every third one ours, a line and a half of text, a
/// second apart.
fn message(seq: u64) -> MessageView {
    let (author, name) = if seq.is_multiple_of(3) {
        (ME, "ada")
    } else {
        (BOB, "bob")
    };
    let text = format!(
        "message {seq}: the quick brown fox jumps over the lazy dog, \
         and then it does it again for good measure"
    );
    let mut message = support::message(&format!("{seq:064x}"), author, name, &text, seq);
    message.timestamp_ms = NOW_MS - 10_000_000 + seq * 1_000;
    message
}

/// The test fixture's window with `messages` messages in its channel.
fn model(messages: u64) -> Model {
    let mut model = support::ready_model();
    let mut timeline = Timeline::default();
    timeline.add_page((0..messages).rev().map(message).collect(), false);
    let selection = model.selected.clone().unwrap();
    model.timelines.insert(selection, timeline);
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
