//! The timeline: messages with author and time, day separators, edited and
//! deleted markers, reactions, replies, our messages' delivery state, a
//! context menu (reply, react, edit, delete), older pages loaded when
//! scrolled to the top, and a button back to the newest.

use std::collections::HashMap;

use egui::{Color32, RichText};
use node::api::{DeliveryState, MessageView};

use super::icons;
use super::time::{self, Clock};
use crate::actions::Action;
use crate::model::{Model, PendingSend, Selection, Timeline};

/// Reactions offered in the context menu.
pub use super::icons::QUICK_REACTIONS;

/// A short mark for a delivery state, with its explanation.
pub fn delivery_mark(state: Option<DeliveryState>) -> (&'static str, String) {
    match state {
        None | Some(DeliveryState::Pending) => (icons::SENDING, "Sending…".to_owned()),
        Some(DeliveryState::Stored) => (
            icons::STORED,
            "Saved on this device; no peer has it yet".to_owned(),
        ),
        Some(DeliveryState::Replicated) => (
            icons::DELIVERED,
            "Held by the server's bootstrap node".to_owned(),
        ),
        Some(DeliveryState::Seen { by, of }) => (
            icons::DELIVERED,
            format!("Received by {by} of {of} members"),
        ),
    }
}

/// Draws the timeline of the current selection.
pub fn timeline(ui: &mut egui::Ui, model: &mut Model, actions: &mut Vec<Action>) {
    let Some(selection) = model.selected.clone() else {
        ui.vertical_centered(|ui| {
            ui.add_space(ui.available_height() / 3.0);
            ui.heading("No server yet");
            ui.label(
                "Create a server with +, join one with an invite, or discover public servers.",
            );
        });
        return;
    };
    header(ui, model, &selection);
    let moderator = match &selection {
        Selection::Channel { server, .. } => model.is_moderator(server),
        Selection::Dm { .. } => false,
    };
    let in_channel = matches!(selection, Selection::Channel { .. });
    let scroll_to_bottom = std::mem::take(&mut model.scroll_to_bottom);
    let Some(timeline) = model.timelines.get(&selection) else {
        ui.spinner();
        return;
    };
    // Only the rows in view are laid out: a conversation of thousands of
    // messages costs what a screenful does. Heights of rows seen before are
    // remembered; others are estimated until they scroll into view.
    let items = items(timeline, &model.clock);
    let cache_id = egui::Id::new(("timeline-heights", &selection));
    let mut cache: HeightCache =
        ui.data_mut(|data| std::mem::take(data.get_temp_mut_or_default::<HeightCache>(cache_id)));
    let width = ui.available_width();
    if (cache.width - width).abs() > 0.5 {
        cache.heights.clear();
        cache.width = width;
    }
    let spacing = ui.spacing().item_spacing.y;
    let mut tops = Vec::with_capacity(items.len() + 1);
    let mut y = 0.0;
    for item in &items {
        tops.push(y);
        let height = cache
            .heights
            .get(&item.key(timeline))
            .copied()
            .unwrap_or_else(|| item.estimated_height());
        y += height + spacing;
    }
    tops.push(y);
    let total = (y - spacing).max(0.0);
    // Older messages were put in front of the ones we showed: keep the
    // same messages in view.
    let first_message = timeline
        .messages
        .first()
        .map(|m| egui::Id::new(&m.message_id));
    let mut area = egui::ScrollArea::vertical()
        .id_salt(("timeline", &selection))
        .auto_shrink([false, false])
        .stick_to_bottom(true);
    if scroll_to_bottom {
        area = area.vertical_scroll_offset(total);
    } else if cache.first_message.is_some() && cache.first_message != first_message {
        let old_first = items.iter().position(|item| {
            matches!(item, Item::Message { index, .. }
                if Some(egui::Id::new(&timeline.messages[*index].message_id)) == cache.first_message)
        });
        if let Some(position) = old_first {
            area = area.vertical_scroll_offset(cache.offset + tops[position]);
        }
    }
    cache.first_message = first_message;
    let row_flags = (moderator && in_channel, in_channel);
    let output = area.show_viewport(ui, |ui, viewport| {
        ui.set_height(total);
        let first = tops
            .partition_point(|top| *top <= viewport.min.y)
            .saturating_sub(1)
            .min(items.len());
        let last = tops
            .partition_point(|top| *top < viewport.max.y)
            .min(items.len());
        let top = ui.max_rect().top() + tops.get(first).copied().unwrap_or(0.0);
        let rect =
            egui::Rect::from_x_y_ranges(ui.max_rect().x_range(), top..=ui.max_rect().bottom());
        ui.scope_builder(egui::UiBuilder::new().max_rect(rect), |ui| {
            for item in &items[first..last] {
                let before = ui.cursor().top();
                draw_item(ui, item, timeline, &model.clock, row_flags, actions);
                let height = ui.cursor().top() - before - spacing;
                cache.heights.insert(item.key(timeline), height.max(0.0));
            }
        });
    });
    cache.offset = output.state.offset.y;
    ui.data_mut(|data| data.insert_temp(cache_id, cache));
    let at_top = output.state.offset.y <= 1.0 && output.content_size.y > output.inner_rect.height();
    if at_top && timeline.more_older && !timeline.loading {
        actions.push(Action::LoadOlder);
    }
    let max_offset = (output.content_size.y - output.inner_rect.height()).max(0.0);
    if scroll_to_bottom && max_offset - output.state.offset.y > 1.0 {
        // The offset was clamped to last frame's (smaller) content, or
        // estimated heights were measured: go on next frame.
        model.scroll_to_bottom = true;
        ui.ctx().request_repaint();
    }
    let far_from_bottom = max_offset - output.state.offset.y > 200.0;
    if far_from_bottom {
        let area = output.inner_rect;
        let position = egui::pos2(area.right() - 140.0, area.bottom() - 36.0);
        egui::Area::new(egui::Id::new("jump-to-newest"))
            .fixed_pos(position)
            .show(ui.ctx(), |ui| {
                if ui
                    .button(format!("Jump to newest {}", icons::NEWEST))
                    .clicked()
                {
                    model.scroll_to_bottom = true;
                }
            });
    }
}

/// One row of the timeline.
#[derive(Clone, Copy, Debug)]
enum Item {
    /// "Load older messages" or "the beginning of the conversation".
    Top,
    /// A day separator.
    Day(chrono::NaiveDate),
    /// A message; `continued` when the previous one has the same author.
    Message { index: usize, continued: bool },
    /// One of our sends not yet acknowledged, or refused.
    Pending(usize),
}

/// What a remembered height belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum ItemKey {
    Top,
    Day(chrono::NaiveDate),
    Message(egui::Id, bool),
    /// Index, and whether it was refused (a refused row is taller).
    Pending(usize, bool),
}

impl Item {
    /// A guess for rows not drawn yet (one line of text, plus the author
    /// line when there is one).
    fn estimated_height(&self) -> f32 {
        match self {
            Self::Top | Self::Day(_) => 18.0,
            Self::Message {
                continued: true, ..
            }
            | Self::Pending(_) => 20.0,
            Self::Message {
                continued: false, ..
            } => 42.0,
        }
    }

    fn key(&self, timeline: &Timeline) -> ItemKey {
        match *self {
            Self::Top => ItemKey::Top,
            Self::Day(date) => ItemKey::Day(date),
            Self::Message { index, continued } => ItemKey::Message(
                egui::Id::new(&timeline.messages[index].message_id),
                continued,
            ),
            Self::Pending(index) => ItemKey::Pending(
                index,
                timeline
                    .pending
                    .get(index)
                    .is_some_and(|pending| pending.failed.is_some()),
            ),
        }
    }
}

/// Row heights measured at one width, and where the view was (kept in
/// egui's memory per conversation; UI state, not view model).
#[derive(Clone, Debug, Default)]
struct HeightCache {
    /// The width the heights were measured at.
    width: f32,
    /// Measured heights (without item spacing).
    heights: HashMap<ItemKey, f32>,
    /// The first message last frame (to notice a page put in front).
    first_message: Option<egui::Id>,
    /// The scroll offset last frame.
    offset: f32,
}

/// The rows of a timeline, in order.
fn items(timeline: &Timeline, clock: &Clock) -> Vec<Item> {
    let mut items = Vec::with_capacity(timeline.messages.len() + timeline.pending.len() + 8);
    if timeline.more_older || timeline.loaded {
        items.push(Item::Top);
    }
    let mut day: Option<(chrono::NaiveDate, u64, u64)> = None;
    let mut last_author: Option<&str> = None;
    for (index, message) in timeline.messages.iter().enumerate() {
        let same_day =
            day.is_some_and(|(_, start, end)| (start..end).contains(&message.timestamp_ms));
        if !same_day {
            let span = clock.day_span(message.timestamp_ms);
            if let Some((date, _, _)) = span
                && day.map(|(d, _, _)| d) != Some(date)
            {
                items.push(Item::Day(date));
                last_author = None;
            }
            day = span;
        }
        let continued = last_author == Some(message.author.as_str());
        items.push(Item::Message { index, continued });
        last_author = Some(message.author.as_str());
    }
    items.extend((0..timeline.pending.len()).map(Item::Pending));
    items
}

fn draw_item(
    ui: &mut egui::Ui,
    item: &Item,
    timeline: &Timeline,
    clock: &Clock,
    (moderator, in_channel): (bool, bool),
    actions: &mut Vec<Action>,
) {
    match *item {
        Item::Top => {
            ui.vertical_centered(|ui| {
                if timeline.more_older {
                    if timeline.loading {
                        ui.spinner();
                    } else if ui.small_button("Load older messages").clicked() {
                        actions.push(Action::LoadOlder);
                    }
                } else {
                    ui.label(
                        RichText::new("This is the beginning of the conversation.")
                            .small()
                            .weak(),
                    );
                }
            });
        }
        Item::Day(date) => {
            ui.vertical_centered(|ui| {
                ui.label(
                    RichText::new(time::day_label(date, clock.today()))
                        .small()
                        .strong(),
                );
            });
        }
        Item::Message { index, continued } => {
            let row = Row {
                continued,
                moderator,
                in_channel,
                clock,
                all: &timeline.messages,
            };
            message_row(ui, &timeline.messages[index], &row, actions);
        }
        Item::Pending(index) => {
            if let Some(pending) = timeline.pending.get(index) {
                pending_row(ui, pending, actions);
            }
        }
    }
}

/// A send on its way (weak, with the sending mark), or refused: the text
/// stays, with the reason and the choice to retry or discard it.
fn pending_row(ui: &mut egui::Ui, pending: &PendingSend, actions: &mut Vec<Action>) {
    match &pending.failed {
        None => {
            ui.horizontal_wrapped(|ui| {
                ui.label(RichText::new(&pending.text).weak());
                ui.label(RichText::new(icons::SENDING).weak())
                    .on_hover_text("Sending…");
            });
        }
        Some(reason) => {
            ui.label(RichText::new(&pending.text).weak());
            ui.horizontal_wrapped(|ui| {
                ui.label(
                    RichText::new(format!("Not sent: {reason}"))
                        .small()
                        .color(ui.visuals().error_fg_color),
                );
                if ui.small_button("Retry").clicked() {
                    actions.push(Action::RetrySend(pending.txn.clone()));
                }
                if ui.small_button("Discard").clicked() {
                    actions.push(Action::DiscardSend(pending.txn.clone()));
                }
            });
        }
    }
}

fn header(ui: &mut egui::Ui, model: &Model, selection: &Selection) {
    ui.horizontal(|ui| match selection {
        Selection::Channel { server, channel } => {
            let channel = model
                .details
                .get(server)
                .and_then(|d| d.channels.iter().find(|c| &c.channel_id == channel));
            if let Some(channel) = channel {
                ui.heading(format!("# {}", channel.name));
                if !channel.topic.is_empty() {
                    ui.label(RichText::new(&channel.topic).weak());
                }
            }
        }
        Selection::Dm { user } => {
            ui.heading(format!("@ {}", model.name_of(user)));
        }
    });
    ui.separator();
}

/// How a message row is drawn.
struct Row<'a> {
    /// The previous row has the same author: no name line.
    continued: bool,
    /// We may delete others' messages.
    moderator: bool,
    /// A channel (reactions, replies), not a DM.
    in_channel: bool,
    /// The zone times are shown in.
    clock: &'a Clock,
    /// The conversation (to quote replied-to messages).
    all: &'a [MessageView],
}

fn message_row(ui: &mut egui::Ui, message: &MessageView, row: &Row<'_>, actions: &mut Vec<Action>) {
    let Row {
        continued,
        moderator,
        in_channel,
        clock,
        all,
    } = *row;
    let response = ui
        .vertical(|ui| {
            if !continued {
                ui.horizontal(|ui| {
                    ui.label(RichText::new(&message.author_name).strong());
                    ui.label(
                        RichText::new(clock.clock(message.timestamp_ms))
                            .small()
                            .weak(),
                    );
                });
            }
            if let Some(parent) = message
                .reply_to
                .as_ref()
                .and_then(|id| all.iter().find(|m| &m.message_id == id))
            {
                let quoted: String = parent.text.chars().take(80).collect();
                ui.label(
                    RichText::new(format!("{} {}: {quoted}", icons::REPLY, parent.author_name))
                        .small()
                        .weak(),
                );
            }
            ui.horizontal_wrapped(|ui| {
                if message.redacted {
                    ui.label(RichText::new("message deleted").italics().weak());
                } else {
                    ui.label(&message.text);
                }
                if message.edited && !message.redacted {
                    ui.label(RichText::new("(edited)").small().weak());
                }
                if message.mine {
                    let (mark, explanation) = delivery_mark(message.delivery);
                    let color = match message.delivery {
                        Some(DeliveryState::Seen { .. }) => Color32::from_rgb(80, 160, 220),
                        _ => ui.visuals().weak_text_color(),
                    };
                    ui.label(RichText::new(mark).small().color(color))
                        .on_hover_text(explanation);
                }
            });
            if !message.reactions.is_empty() {
                ui.horizontal(|ui| {
                    for reaction in &message.reactions {
                        ui.label(format!("{} {}", reaction.emoji, reaction.users.len()))
                            .on_hover_text(reaction.users.join("\n"));
                    }
                });
            }
        })
        .response;
    let response = ui.interact(
        response.rect,
        ui.id().with(&message.message_id),
        egui::Sense::click(),
    );
    if message.redacted || !in_channel {
        return;
    }
    response.context_menu(|ui| {
        if ui.button("Reply").clicked() {
            actions.push(Action::ReplyTo(message.message_id.clone()));
            ui.close();
        }
        ui.horizontal(|ui| {
            for emoji in QUICK_REACTIONS {
                if ui
                    .button(emoji)
                    .on_hover_text(format!("React with {emoji}"))
                    .clicked()
                {
                    actions.push(Action::React {
                        message_id: message.message_id.clone(),
                        emoji: emoji.to_owned(),
                        remove: false,
                    });
                    ui.close();
                }
            }
        });
        if message.mine && ui.button("Edit").clicked() {
            actions.push(Action::StartEdit(message.message_id.clone()));
            ui.close();
        }
        if (message.mine || moderator) && ui.button("Delete").clicked() {
            actions.push(Action::Delete(message.message_id.clone()));
            ui.close();
        }
        if ui.button("Copy text").clicked() {
            actions.push(Action::Copy(message.text.clone()));
            ui.close();
        }
    });
}
