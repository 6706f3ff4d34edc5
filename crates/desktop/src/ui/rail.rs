//! The server rail: one round button per server (with unread badge), and
//! buttons to create, discover, message, configure and inspect.

use egui::{Color32, RichText, Sense, Stroke, vec2};

use super::icons;
use crate::actions::Action;
use crate::model::{Dialog, Model, Selection};

/// Initials of a server name ("Town Square" → "TS").
pub fn initials(name: &str) -> String {
    let letters: String = name
        .split_whitespace()
        .filter_map(|word| word.chars().next())
        .take(2)
        .collect::<String>()
        .to_uppercase();
    if letters.is_empty() {
        "?".into()
    } else {
        letters
    }
}

/// Draws the rail.
pub fn server_rail(ui: &mut egui::Ui, model: &Model, actions: &mut Vec<Action>) {
    ui.vertical_centered(|ui| {
        ui.add_space(8.0);
        for server in &model.servers {
            let selected = model.selected_server() == Some(server.server_id.as_str());
            let unread = model.server_unread(&server.server_id);
            let (rect, response) = ui.allocate_exact_size(vec2(44.0, 44.0), Sense::click());
            let fill = if selected {
                ui.visuals().selection.bg_fill
            } else {
                ui.visuals().widgets.inactive.bg_fill
            };
            ui.painter().circle_filled(rect.center(), 22.0, fill);
            if response.hovered() {
                ui.painter().circle_stroke(
                    rect.center(),
                    22.0,
                    Stroke::new(1.5, ui.visuals().text_color()),
                );
            }
            ui.painter().text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                initials(&server.name),
                egui::FontId::proportional(16.0),
                ui.visuals().strong_text_color(),
            );
            if unread > 0 {
                let badge = rect.right_top() + vec2(-6.0, 6.0);
                ui.painter()
                    .circle_filled(badge, 9.0, Color32::from_rgb(220, 60, 60));
                ui.painter().text(
                    badge,
                    egui::Align2::CENTER_CENTER,
                    if unread > 99 {
                        "99+".to_owned()
                    } else {
                        unread.to_string()
                    },
                    egui::FontId::proportional(10.0),
                    Color32::WHITE,
                );
            }
            let label = if unread > 0 {
                format!("{} ({unread} unread)", server.name)
            } else {
                server.name.clone()
            };
            response
                .widget_info(|| egui::WidgetInfo::labeled(egui::WidgetType::Button, true, &label));
            if response.clone().on_hover_text(&label).clicked() {
                actions.push(Action::SelectServer(server.server_id.clone()));
            }
            ui.add_space(6.0);
        }
        ui.separator();
        let dm_selected = matches!(model.selected, Some(Selection::Dm { .. }));
        let button = |ui: &mut egui::Ui, text: &str, tip: &str| {
            let response = ui.add_sized(
                [44.0, 32.0],
                egui::Button::new(RichText::new(text).size(16.0)),
            );
            response.widget_info(|| egui::WidgetInfo::labeled(egui::WidgetType::Button, true, tip));
            response.on_hover_text(tip)
        };
        if button(ui, icons::CREATE, "Create a server").clicked() {
            actions.push(Action::OpenDialog(Dialog::CreateServer {
                name: String::new(),
                description: String::new(),
                public: false,
                error: None,
            }));
        }
        if button(ui, icons::JOIN, "Join with an invite").clicked() {
            actions.push(Action::OpenDialog(Dialog::Join {
                code: String::new(),
                error: None,
                busy: false,
            }));
        }
        if button(ui, icons::DISCOVER, "Discover public servers").clicked() {
            actions.push(Action::OpenDialog(Dialog::Discover {
                filter: String::new(),
                servers: Vec::new(),
                loading: true,
                error: None,
            }));
        }
        let dm = ui
            .add_sized(
                [44.0, 32.0],
                egui::Button::new(RichText::new(icons::DMS).size(16.0)).selected(dm_selected),
            )
            .on_hover_text("Direct messages");
        dm.widget_info(|| {
            egui::WidgetInfo::labeled(egui::WidgetType::Button, true, "Direct messages")
        });
        if dm.clicked() {
            actions.push(Action::OpenDialog(Dialog::NewDm {
                user: String::new(),
                error: None,
            }));
        }
        if button(ui, icons::SETTINGS, "Settings").clicked() {
            actions.push(Action::OpenDialog(Dialog::Settings(model.settings.clone())));
        }
        if button(ui, icons::DIAGNOSTICS, "Diagnostics").clicked() {
            actions.push(Action::OpenDialog(Dialog::Diagnostics));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initials_of_names() {
        assert_eq!(initials("Town Square"), "TS");
        assert_eq!(initials("garden"), "G");
        assert_eq!(initials("  "), "?");
        assert_eq!(initials("élan vital extra"), "ÉV");
    }
}
