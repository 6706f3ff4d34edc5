//! The timeline: messages with author and time, day separators, edited and
//! deleted markers, reactions, replies, our messages' delivery state, a
//! context menu (reply, react, edit, delete), older pages loaded when
//! scrolled to the top, and a button back to the newest.

use egui::{Align, Color32, RichText};
use node::api::{DeliveryState, MessageView};

use super::icons;
use super::time::{self, Clock};
use crate::actions::Action;
use crate::model::{Model, Selection};

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
    let mut at_top = false;
    let output = egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .stick_to_bottom(true)
        .show(ui, |ui| {
            if timeline.more_older {
                ui.vertical_centered(|ui| {
                    if timeline.loading {
                        ui.spinner();
                    } else if ui.small_button("Load older messages").clicked() {
                        actions.push(Action::LoadOlder);
                    }
                });
            } else if timeline.loaded {
                ui.vertical_centered(|ui| {
                    ui.label(
                        RichText::new("This is the beginning of the conversation.")
                            .small()
                            .weak(),
                    );
                });
            }
            let today = model.clock.today();
            let mut last_day = None;
            let mut last_author: Option<&str> = None;
            for message in &timeline.messages {
                let day = model.clock.day(message.timestamp_ms);
                if day != last_day {
                    if let Some(day) = day {
                        ui.vertical_centered(|ui| {
                            ui.label(RichText::new(time::day_label(day, today)).small().strong());
                        });
                    }
                    last_day = day;
                    last_author = None;
                }
                let continued = last_author == Some(message.author.as_str());
                let row = Row {
                    continued,
                    moderator: moderator && in_channel,
                    in_channel,
                    clock: &model.clock,
                    all: &timeline.messages,
                };
                message_row(ui, message, &row, actions);
                last_author = Some(message.author.as_str());
            }
            for (_, text) in &timeline.pending {
                ui.horizontal_wrapped(|ui| {
                    ui.label(RichText::new(text).weak());
                    ui.label(RichText::new(icons::SENDING).weak())
                        .on_hover_text("Sending…");
                });
            }
            if scroll_to_bottom {
                ui.scroll_to_cursor(Some(Align::BOTTOM));
            }
        });
    if output.state.offset.y <= 1.0 && output.content_size.y > output.inner_rect.height() {
        at_top = true;
    }
    if at_top && timeline.more_older && !timeline.loading {
        actions.push(Action::LoadOlder);
    }
    let max_offset = (output.content_size.y - output.inner_rect.height()).max(0.0);
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
