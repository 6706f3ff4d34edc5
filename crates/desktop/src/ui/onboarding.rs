//! First launch (create an identity) and later launches (unlock it).

use egui::RichText;

use super::{error_line, labelled_field};
use crate::actions::Action;
use crate::model::{Model, Phase};

/// Shortest passphrase accepted.
pub const MIN_PASSPHRASE_CHARS: usize = 8;

/// A strength hint for a passphrase: (score 0..=4, words).
pub fn strength(passphrase: &str, name: &str) -> (u8, String) {
    if passphrase.is_empty() {
        return (0, String::new());
    }
    let estimate = zxcvbn::zxcvbn(passphrase, &[name]);
    let score = u8::from(estimate.score());
    let words = match score {
        0 => "very weak",
        1 => "weak",
        2 => "fair",
        3 => "good",
        _ => "strong",
    };
    let advice = estimate
        .feedback()
        .and_then(|feedback| feedback.warning().map(|warning| warning.to_string()))
        .map(|warning| format!(" — {warning}"))
        .unwrap_or_default();
    (score, format!("Strength: {words}{advice}"))
}

/// What is wrong with the create form, if anything.
pub fn validate_create(model: &Model) -> Option<String> {
    let form = &model.identity_form;
    let name = form.display_name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Some("Choose a display name of 1 to 64 characters.".into());
    }
    if form.use_keyring {
        return None;
    }
    if form.passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Some(format!(
            "A passphrase has at least {MIN_PASSPHRASE_CHARS} characters."
        ));
    }
    if form.passphrase != form.confirm {
        return Some("The passphrases do not match.".into());
    }
    None
}

/// Draws the create or unlock form.
pub fn onboarding(ui: &mut egui::Ui, model: &mut Model, actions: &mut Vec<Action>) {
    let create = model.phase == Phase::Onboarding;
    ui.vertical_centered(|ui| {
        ui.add_space(48.0);
        ui.heading(if create { "Welcome to Palaver" } else { "Unlock Palaver" });
        ui.label(if create {
            "Chat without servers in the middle. First, create your identity: a key that stays on this computer."
        } else {
            "Enter your passphrase to unlock your identity."
        });
        ui.add_space(16.0);
    });
    ui.vertical_centered(|ui| {
        ui.set_max_width(360.0);
        let form_name = model.identity_form.display_name.clone();
        let form = &mut model.identity_form;
        let mut submit = false;
        // Type at once: the first field has the keyboard when the screen opens.
        let nothing_focused = ui.memory(|memory| memory.focused().is_none());
        if create {
            let response = labelled_field(ui, "Display name", &mut form.display_name, false);
            if nothing_focused && form.display_name.is_empty() {
                response.request_focus();
            }
            if model.keyring_available {
                ui.checkbox(
                    &mut form.use_keyring,
                    "Keep my key in the system keyring (no passphrase)",
                );
            }
        }
        if !(create && form.use_keyring) {
            let response = labelled_field(ui, "Passphrase", &mut form.passphrase, true);
            if !create && response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                submit = true;
            }
            if !create && nothing_focused && form.passphrase.is_empty() {
                response.request_focus();
            }
            if create {
                let (score, hint) = strength(&form.passphrase, &form_name);
                if !hint.is_empty() {
                    let color = if score >= 3 {
                        egui::Color32::from_rgb(80, 170, 90)
                    } else {
                        egui::Color32::from_rgb(200, 150, 60)
                    };
                    ui.label(RichText::new(hint).color(color).small());
                }
                labelled_field(ui, "Confirm passphrase", &mut form.confirm, true);
                ui.label(
                    RichText::new("There is no way to recover a forgotten passphrase.")
                        .small()
                        .weak(),
                );
            }
        }
        error_line(ui, model.identity_form.error.as_ref());
        ui.add_space(8.0);
        let label = if create { "Create identity" } else { "Unlock" };
        if ui.button(label).clicked() {
            submit = true;
        }
        if submit {
            if create {
                match validate_create(model) {
                    Some(problem) => model.identity_form.error = Some(problem),
                    None => actions.push(Action::CreateIdentity),
                }
            } else if model.identity_form.passphrase.is_empty() {
                model.identity_form.error = Some("Enter your passphrase.".into());
            } else {
                actions.push(Action::Unlock);
            }
        }
        ui.add_space(12.0);
        ui.label(
            RichText::new(format!("Data: {}", model.data_dir))
                .small()
                .weak(),
        );
    });
}
