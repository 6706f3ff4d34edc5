//! Drawing. Every function here reads the view model (and edits only form
//! drafts in it) and returns the user's [`Action`]s; none talks to the node.

pub mod channels;
pub mod composer;
pub mod dialogs;
pub mod icons;
pub mod members;
pub mod onboarding;
pub mod rail;
pub mod time;
pub mod timeline;

use egui::{Color32, RichText};

use crate::actions::Action;
use crate::model::{Model, Phase, Selection};

pub use channels::channel_list;
pub use composer::composer;
pub use dialogs::dialog;
pub use members::member_list;
pub use onboarding::onboarding;
pub use rail::server_rail;
pub use timeline::timeline;

/// Width of the server rail.
pub const RAIL_WIDTH: f32 = 64.0;

/// Draws the whole window.
pub fn draw(ui: &mut egui::Ui, model: &mut Model) -> Vec<Action> {
    let mut actions = Vec::new();
    match model.phase {
        Phase::Onboarding | Phase::Unlock => {
            egui::CentralPanel::default().show(ui, |ui| onboarding(ui, model, &mut actions));
        }
        Phase::Starting => {
            egui::CentralPanel::default().show(ui, |ui| {
                ui.vertical_centered(|ui| {
                    ui.add_space(ui.available_height() / 3.0);
                    ui.spinner();
                    ui.label("Starting Palaver…");
                });
            });
        }
        Phase::Ready => main_window(ui, model, &mut actions),
    }
    actions
}

fn main_window(ui: &mut egui::Ui, model: &mut Model, actions: &mut Vec<Action>) {
    toasts(ui, model);
    egui::Panel::left("server-rail")
        .exact_size(RAIL_WIDTH)
        .resizable(false)
        .show(ui, |ui| server_rail(ui, model, actions));
    egui::Panel::left("channel-list")
        .default_size(210.0)
        .size_range(160.0..=320.0)
        .show(ui, |ui| channel_list(ui, model, actions));
    if matches!(model.selected, Some(Selection::Channel { .. })) {
        egui::Panel::right("member-list")
            .default_size(200.0)
            .size_range(150.0..=300.0)
            .show(ui, |ui| member_list(ui, model, actions));
    }
    egui::Panel::bottom("composer")
        .resizable(false)
        .show(ui, |ui| composer(ui, model, actions));
    egui::CentralPanel::default().show(ui, |ui| timeline(ui, model, actions));
    if model.dialog.is_some() {
        dialog(ui.ctx(), model, actions);
    }
}

fn toasts(ui: &mut egui::Ui, model: &mut Model) {
    if model.toasts.is_empty() {
        return;
    }
    egui::Panel::top("toasts").show(ui, |ui| {
        let mut dismiss = None;
        for (index, toast) in model.toasts.iter().enumerate() {
            ui.horizontal(|ui| {
                let color = if toast.error {
                    Color32::from_rgb(220, 80, 80)
                } else {
                    ui.visuals().text_color()
                };
                ui.label(RichText::new(&toast.text).color(color));
                if ui.small_button("Dismiss").clicked() {
                    dismiss = Some(index);
                }
            });
        }
        if let Some(index) = dismiss {
            model.toasts.remove(index);
        }
    });
}

/// A labelled single-line text field (kittest and screen readers need the
/// label).
pub(crate) fn labelled_field(
    ui: &mut egui::Ui,
    label: &str,
    value: &mut String,
    password: bool,
) -> egui::Response {
    let label = ui.label(label);
    let field = egui::TextEdit::singleline(value)
        .password(password)
        .desired_width(f32::INFINITY);
    ui.add(field).labelled_by(label.id)
}

/// An error line under a form.
pub(crate) fn error_line(ui: &mut egui::Ui, error: Option<&String>) {
    if let Some(error) = error {
        ui.label(RichText::new(error).color(Color32::from_rgb(220, 80, 80)));
    }
}
