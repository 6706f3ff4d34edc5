//! The member list with roles and online state, and (for moderators and
//! admins) moderation from each member's context menu.

use egui::{Color32, RichText};

use super::icons;
use crate::actions::Action;
use crate::model::Model;

fn role_rank(role: &str) -> u8 {
    match role {
        "owner" => 0,
        "admin" => 1,
        "moderator" => 2,
        _ => 3,
    }
}

/// Draws the member list of the selected server.
pub fn member_list(ui: &mut egui::Ui, model: &Model, actions: &mut Vec<Action>) {
    let Some(server) = model.selected_server() else {
        return;
    };
    let Some(detail) = model.details.get(server) else {
        return;
    };
    let me = model
        .me
        .as_ref()
        .map(|me| me.user_id.as_str())
        .unwrap_or_default();
    let my_role = model.my_role(server);
    let mut members: Vec<_> = detail.members.iter().collect();
    members.sort_by(|a, b| {
        role_rank(&a.role).cmp(&role_rank(&b.role)).then(
            a.display_name
                .to_lowercase()
                .cmp(&b.display_name.to_lowercase()),
        )
    });
    ui.add_space(6.0);
    ui.label(RichText::new(format!("Members — {}", members.len())).strong());
    ui.separator();
    egui::ScrollArea::vertical().show(ui, |ui| {
        for member in members {
            let online = if member.online {
                Color32::from_rgb(80, 180, 90)
            } else {
                Color32::GRAY
            };
            let response = ui
                .horizontal(|ui| {
                    ui.label(RichText::new(icons::PRESENCE).color(online));
                    let name = ui.label(&member.display_name);
                    if member.role != "member" {
                        ui.label(RichText::new(&member.role).small().weak());
                    }
                    name
                })
                .inner;
            let response = response.on_hover_text(format!(
                "{}\n{}\n{}",
                member.user_id,
                member.role,
                if member.online { "online" } else { "offline" }
            ));
            let outranks = role_rank(my_role) < role_rank(&member.role);
            if member.user_id != me && (outranks || my_role == "owner") {
                response.context_menu(|ui| {
                    let user = member.user_id.clone();
                    let server = server.to_owned();
                    if ui.button("Message").clicked() {
                        actions.push(Action::OpenDm { user: user.clone() });
                        ui.close();
                    }
                    if role_rank(my_role) <= 2 && ui.button("Kick").clicked() {
                        actions.push(Action::Kick {
                            server: server.clone(),
                            user: user.clone(),
                        });
                        ui.close();
                    }
                    if role_rank(my_role) <= 1 {
                        if ui.button("Ban").clicked() {
                            actions.push(Action::Ban {
                                server: server.clone(),
                                user: user.clone(),
                            });
                            ui.close();
                        }
                        for role in ["moderator", "admin"] {
                            if member.role != role
                                && (my_role == "owner" || role == "moderator")
                                && ui.button(format!("Make {role}")).clicked()
                            {
                                actions.push(Action::GrantRole {
                                    server: server.clone(),
                                    user: user.clone(),
                                    role: role.to_owned(),
                                });
                                ui.close();
                            }
                        }
                        if member.role != "member"
                            && member.role != "owner"
                            && ui.button("Remove role").clicked()
                        {
                            actions.push(Action::RevokeRole {
                                server: server.clone(),
                                user: user.clone(),
                                role: member.role.clone(),
                            });
                            ui.close();
                        }
                    }
                });
            } else if member.user_id != me {
                response.context_menu(|ui| {
                    if ui.button("Message").clicked() {
                        actions.push(Action::OpenDm {
                            user: member.user_id.clone(),
                        });
                        ui.close();
                    }
                });
            }
        }
    });
}
