//! The channel list of the selected server (with unread counts), its
//! header menu (invite, leave, channels, bootstrap peers), and DM
//! conversations.

use egui::RichText;

use crate::actions::Action;
use crate::model::{Dialog, Model, Selection};

/// Draws the channel list.
pub fn channel_list(ui: &mut egui::Ui, model: &Model, actions: &mut Vec<Action>) {
    if let Some(Selection::Channel { server, channel }) = &model.selected {
        server_channels(ui, model, server, channel, actions)
    }
    ui.add_space(12.0);
    dm_list(ui, model, actions);
}

fn server_channels(
    ui: &mut egui::Ui,
    model: &Model,
    server: &str,
    selected: &str,
    actions: &mut Vec<Action>,
) {
    let Some(detail) = model.details.get(server) else {
        ui.spinner();
        return;
    };
    ui.add_space(6.0);
    ui.horizontal(|ui| {
        ui.heading(&detail.server.name);
    });
    if !detail.server.description.is_empty() {
        ui.label(RichText::new(&detail.server.description).small().weak());
    }
    let admin = model.is_admin(server);
    ui.horizontal_wrapped(|ui| {
        if ui
            .button("Invite")
            .on_hover_text("Create an invite code to share")
            .clicked()
        {
            actions.push(Action::OpenDialog(Dialog::Invite {
                server: server.to_owned(),
                code: None,
                error: None,
            }));
        }
        if admin && ui.button("New channel").clicked() {
            actions.push(Action::OpenDialog(Dialog::CreateChannel {
                server: server.to_owned(),
                name: String::new(),
                error: None,
            }));
        }
        if model.my_role(server) != "owner"
            && ui
                .button("Leave server")
                .on_hover_text("Stop being a member of this server")
                .clicked()
        {
            actions.push(Action::OpenDialog(Dialog::LeaveServer {
                server: server.to_owned(),
                name: detail.server.name.clone(),
            }));
        }
        if admin && ui.button("Bootstrap peers").clicked() {
            actions.push(Action::OpenDialog(Dialog::BootstrapPeers {
                server: server.to_owned(),
                peers: detail.bootstrap_peers.join("\n"),
                error: None,
            }));
        }
    });
    ui.separator();
    for channel in &detail.channels {
        let unread = model
            .unread
            .get(&channel.channel_id)
            .copied()
            .unwrap_or(channel.unread);
        let is_selected = channel.channel_id == selected;
        let text = if unread > 0 && !is_selected {
            RichText::new(format!("# {}  ({unread})", channel.name)).strong()
        } else {
            RichText::new(format!("# {}", channel.name))
        };
        let response = ui.selectable_label(is_selected, text);
        if response.clicked() {
            actions.push(Action::Select(Selection::Channel {
                server: server.to_owned(),
                channel: channel.channel_id.clone(),
            }));
        }
        if admin {
            response.context_menu(|ui| {
                if ui.button("Rename channel").clicked() {
                    actions.push(Action::OpenDialog(Dialog::RenameChannel {
                        server: server.to_owned(),
                        channel: channel.channel_id.clone(),
                        name: channel.name.clone(),
                        error: None,
                    }));
                    ui.close();
                }
                if ui.button("Delete channel").clicked() {
                    actions.push(Action::DeleteChannel {
                        server: server.to_owned(),
                        channel: channel.channel_id.clone(),
                    });
                    ui.close();
                }
            });
        }
    }
}

fn dm_list(ui: &mut egui::Ui, model: &Model, actions: &mut Vec<Action>) {
    if model.dms.is_empty() {
        return;
    }
    ui.label(RichText::new("Direct messages").small().strong());
    for dm in &model.dms {
        let selected = model.selected
            == Some(Selection::Dm {
                user: dm.user_id.clone(),
            });
        let text = if dm.unread > 0 && !selected {
            RichText::new(format!("@ {}  ({})", dm.display_name, dm.unread)).strong()
        } else {
            RichText::new(format!("@ {}", dm.display_name))
        };
        if ui.selectable_label(selected, text).clicked() {
            actions.push(Action::Select(Selection::Dm {
                user: dm.user_id.clone(),
            }));
        }
    }
}
