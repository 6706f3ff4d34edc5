//! The composer: multi-line, Enter sends, Shift+Enter adds a line, a
//! character counter, Up in an empty composer edits our last message,
//! and a banner while editing or replying. A server we were removed from
//! gets a notice instead.

use egui::{Color32, Key, KeyboardShortcut, Modifiers, RichText};

use crate::actions::Action;
use crate::model::{Model, Selection};

/// Longest message, in characters.
pub const MAX_CHARS: usize = 5_000;

/// The role the node reports for a server we were kicked or banned from.
const REMOVED: &str = "removed";

/// Draws the composer.
pub fn composer(ui: &mut egui::Ui, model: &mut Model, actions: &mut Vec<Action>) {
    let Some(selection) = model.selected.as_ref() else {
        return;
    };
    ui.add_space(4.0);
    if let Selection::Channel { server, .. } = selection
        && model.my_role(server) == REMOVED
    {
        // Nothing we write here would be accepted: say why instead.
        ui.label(
            RichText::new(
                "You were removed from this server. Its history stays readable here; \
                 a new invite brings you back, or leave it with \"Leave server\".",
            )
            .italics(),
        );
        return;
    }
    let editing = model.composer.editing.clone();
    let replying = model.composer.reply_to.clone();
    if editing.is_some() || replying.is_some() {
        ui.horizontal(|ui| {
            let what = if editing.is_some() {
                "Editing a message".to_owned()
            } else {
                let author = replying
                    .as_ref()
                    .and_then(|id| {
                        model
                            .current_timeline()?
                            .messages
                            .iter()
                            .find(|m| &m.message_id == id)
                    })
                    .map(|m| m.author_name.clone())
                    .unwrap_or_default();
                format!("Replying to {author}")
            };
            ui.label(RichText::new(what).small().italics());
            if ui.small_button("Cancel").clicked() {
                actions.push(Action::CancelCompose);
            }
        });
    }
    let target = match &model.selected {
        Some(Selection::Channel { server, channel }) => model
            .details
            .get(server)
            .and_then(|d| d.channels.iter().find(|c| &c.channel_id == channel))
            .map(|c| format!("Message #{}", c.name))
            .unwrap_or_else(|| "Message".into()),
        Some(Selection::Dm { user }) => format!("Message @{}", model.name_of(user)),
        None => String::new(),
    };
    let count = model.composer.text.chars().count();
    let mut send = false;
    ui.horizontal(|ui| {
        let label = ui
            .label(RichText::new("Message").small())
            .on_hover_text(&target);
        let field = egui::TextEdit::multiline(&mut model.composer.text)
            .hint_text(&target)
            .desired_rows(2)
            .desired_width(ui.available_width() - 80.0)
            .return_key(KeyboardShortcut::new(Modifiers::SHIFT, Key::Enter));
        let response = ui.add(field).labelled_by(label.id);
        // Type at once: the composer takes the keyboard when a conversation
        // opens and when an edit or a reply starts (once each, so a click
        // elsewhere is respected; never from under a dialog).
        let occasion = egui::Id::new((&model.selected, &editing, &replying));
        let key = egui::Id::new("palaver-composer-focused-for");
        if model.dialog.is_none()
            && ui.data(|data| data.get_temp::<egui::Id>(key)) != Some(occasion)
        {
            response.request_focus();
            ui.data_mut(|data| data.insert_temp(key, occasion));
        }
        if response.has_focus() {
            let (enter, up) = ui.input(|i| {
                (
                    i.key_pressed(Key::Enter) && !i.modifiers.shift,
                    i.key_pressed(Key::ArrowUp),
                )
            });
            if enter {
                send = true;
            }
            if up
                && model.composer.text.is_empty()
                && let Some(last) = model.current_timeline().and_then(|t| t.last_mine())
            {
                actions.push(Action::StartEdit(last.message_id.clone()));
            }
        }
        let over = count > MAX_CHARS;
        let button = ui.add_enabled(
            !over && !model.composer.text.trim().is_empty(),
            egui::Button::new("Send"),
        );
        if button.clicked() {
            send = true;
        }
    });
    let color = if count > MAX_CHARS {
        Color32::from_rgb(220, 80, 80)
    } else {
        ui.visuals().weak_text_color()
    };
    ui.label(
        RichText::new(format!("{count} / {MAX_CHARS}"))
            .small()
            .color(color),
    );
    if send && count <= MAX_CHARS && !model.composer.text.trim().is_empty() {
        let text = model.composer.text.clone();
        match editing {
            Some(message_id) => actions.push(Action::Edit { message_id, text }),
            None => actions.push(Action::Send {
                text,
                reply_to: replying,
            }),
        }
        model.composer.text.clear();
    }
}
