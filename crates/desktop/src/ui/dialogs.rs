//! The modal dialogs: create server, create or rename channel, leave a
//! server, invite (with a QR code), join, discover, direct messages,
//! bootstrap peers, settings and diagnostics.

use egui::{Color32, RichText, vec2};

use super::{error_line, labelled_field};
use crate::actions::Action;
use crate::model::{Dialog, Model};

/// Draws the open dialog as a modal window.
pub fn dialog(ctx: &egui::Context, model: &mut Model, actions: &mut Vec<Action>) {
    let Some(mut dialog) = model.dialog.take() else {
        ctx.data_mut(|data| data.remove::<egui::Id>(autofocus_key()));
        return;
    };
    let mut close = false;
    let modal = egui::Modal::new(egui::Id::new("palaver-dialog")).show(ctx, |ui| {
        ui.set_width(420.0);
        match &mut dialog {
            Dialog::CreateServer {
                name,
                description,
                public,
                error,
            } => {
                ui.heading("Create a server");
                let first = labelled_field(ui, "Server name", name, false);
                autofocus(ui, &first);
                let second = labelled_field(ui, "Description", description, false);
                ui.checkbox(public, "Public: listed in the directory, anyone may join and read");
                error_line(ui, error.as_ref());
                let entered = submitted(ui, &first) || submitted(ui, &second);
                ui.horizontal(|ui| {
                    let valid = !name.trim().is_empty() && name.chars().count() <= 100;
                    if ui.add_enabled(valid, egui::Button::new("Create")).clicked() || valid && entered {
                        actions.push(Action::CreateServer {
                            name: name.trim().to_owned(),
                            description: description.trim().to_owned(),
                            public: *public,
                        });
                    }
                    if ui.button("Cancel").clicked() {
                        close = true;
                    }
                });
            }
            Dialog::CreateChannel { server, name, error } => {
                if channel_name_form(ui, "New channel", "Create channel", name, error.as_ref(), &mut close) {
                    actions.push(Action::CreateChannel {
                        server: server.clone(),
                        name: name.trim().trim_start_matches('#').to_owned(),
                    });
                }
            }
            Dialog::RenameChannel {
                server,
                channel,
                name,
                error,
            } => {
                if channel_name_form(ui, "Rename channel", "Rename", name, error.as_ref(), &mut close) {
                    actions.push(Action::RenameChannel {
                        server: server.clone(),
                        channel: channel.clone(),
                        name: name.trim().to_owned(),
                    });
                }
            }
            Dialog::LeaveServer { server, name } => {
                ui.heading(format!("Leave {name}?"));
                ui.label(
                    "You stop receiving its messages, and the other members see you go. \
                     What you have read stays on this device; a new invite brings you back.",
                );
                ui.horizontal(|ui| {
                    if ui.button("Leave").clicked() {
                        actions.push(Action::LeaveServer {
                            server: server.clone(),
                        });
                        close = true;
                    }
                    if ui.button("Cancel").clicked() {
                        close = true;
                    }
                });
            }
            Dialog::Invite { server, code, error } => {
                ui.heading("Invite people");
                ui.label("Anyone with this code can join and read the server: share it privately. It expires in 7 days.");
                error_line(ui, error.as_ref());
                match code {
                    Some(code) => {
                        let mut shown = code.clone();
                        let label = ui.label("Invite code");
                        ui.add(
                            egui::TextEdit::multiline(&mut shown)
                                .font(egui::TextStyle::Monospace)
                                .desired_rows(4)
                                .desired_width(f32::INFINITY),
                        )
                        .labelled_by(label.id);
                        ui.horizontal(|ui| {
                            if ui.button("Copy code").clicked() {
                                actions.push(Action::Copy(code.clone()));
                            }
                            if ui.button("New code").clicked() {
                                actions.push(Action::CreateInvite { server: server.clone() });
                            }
                        });
                        qr_code(ui, code);
                    }
                    None => {
                        ui.spinner();
                    }
                }
                if ui.button("Close").clicked() {
                    close = true;
                }
            }
            Dialog::Join { code, error, busy } => {
                ui.heading("Join a server");
                ui.label("Paste the invite code you were given (palaver://invite/…).");
                let label = ui.label("Invite code");
                let field = ui
                    .add(
                        egui::TextEdit::multiline(code)
                            .desired_rows(4)
                            .desired_width(f32::INFINITY),
                    )
                    .labelled_by(label.id);
                autofocus(ui, &field);
                error_line(ui, error.as_ref());
                ui.horizontal(|ui| {
                    if *busy {
                        ui.spinner();
                        ui.label("Connecting to the server's peers…");
                    } else if ui.add_enabled(!code.trim().is_empty(), egui::Button::new("Join")).clicked() {
                        actions.push(Action::Join {
                            code: code.trim().to_owned(),
                        });
                    }
                    if ui.button("Cancel").clicked() {
                        close = true;
                    }
                });
            }
            Dialog::Discover {
                filter,
                servers,
                loading,
                error,
            } => {
                ui.heading("Public servers");
                let field = labelled_field(ui, "Filter", filter, false);
                autofocus(ui, &field);
                error_line(ui, error.as_ref());
                if *loading {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label("Asking the directory…");
                    });
                }
                let needle = filter.to_lowercase();
                let shown: Vec<_> = servers
                    .iter()
                    .filter(|s| {
                        needle.is_empty()
                            || s.name.to_lowercase().contains(&needle)
                            || s.description.to_lowercase().contains(&needle)
                    })
                    .collect();
                if !*loading && shown.is_empty() {
                    ui.label(RichText::new("No public servers found.").weak());
                }
                egui::ScrollArea::vertical().max_height(300.0).show(ui, |ui| {
                    for server in shown {
                        ui.horizontal(|ui| {
                            ui.vertical(|ui| {
                                ui.label(RichText::new(&server.name).strong());
                                ui.label(RichText::new(&server.description).small());
                                ui.label(RichText::new(format!("{} members", server.members)).small().weak());
                            });
                            if server.joined {
                                ui.label("Joined");
                            } else if ui.button(format!("Join {}", server.name)).clicked() {
                                actions.push(Action::JoinPublic {
                                    server: server.server_id.clone(),
                                });
                            }
                        });
                        ui.separator();
                    }
                });
                ui.horizontal(|ui| {
                    if ui.button("Refresh").clicked() {
                        actions.push(Action::Discover);
                    }
                    if ui.button("Close").clicked() {
                        close = true;
                    }
                });
            }
            Dialog::NewDm { user, error } => {
                ui.heading("Direct message");
                let known = model.known_users();
                if known.is_empty() {
                    ui.label(RichText::new("Join a server first: you can message its members.").weak());
                }
                egui::ScrollArea::vertical().max_height(240.0).show(ui, |ui| {
                    for (id, name) in &known {
                        if ui.button(format!("Message {name}")).on_hover_text(id).clicked() {
                            actions.push(Action::OpenDm { user: id.clone() });
                        }
                    }
                });
                labelled_field(ui, "User id", user, false);
                error_line(ui, error.as_ref());
                ui.horizontal(|ui| {
                    if ui.add_enabled(!user.trim().is_empty(), egui::Button::new("Open")).clicked() {
                        actions.push(Action::OpenDm {
                            user: user.trim().to_owned(),
                        });
                    }
                    if ui.button("Cancel").clicked() {
                        close = true;
                    }
                });
            }
            Dialog::BootstrapPeers { server, peers, error } => {
                ui.heading("Bootstrap peers");
                ui.label("The always-on peers that relay this server and keep its history, one multiaddr per line (ending in /p2p/<peer id>).");
                let label = ui.label("Peers");
                ui.add(egui::TextEdit::multiline(peers).desired_rows(4).desired_width(f32::INFINITY))
                    .labelled_by(label.id);
                error_line(ui, error.as_ref());
                ui.horizontal(|ui| {
                    if ui.button("Save peers").clicked() {
                        actions.push(Action::SetBootstrapPeers {
                            server: server.clone(),
                            peers: peers.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect(),
                        });
                    }
                    if ui.button("Cancel").clicked() {
                        close = true;
                    }
                });
            }
            Dialog::Settings(draft) => {
                ui.heading("Settings");
                labelled_field(ui, "Display name", &mut draft.display_name, false);
                ui.horizontal(|ui| {
                    let label = ui.label("Listen port (0 = chosen once, then kept)");
                    ui.add(egui::DragValue::new(&mut draft.listen_port).range(0..=65535))
                        .labelled_by(label.id);
                });
                ui.checkbox(&mut draft.mdns, "Find peers on the local network (mDNS)");
                let label = ui.label("Extra bootstrap peers (one multiaddr per line)");
                ui.add(
                    egui::TextEdit::multiline(&mut draft.bootstrap_peers)
                        .desired_rows(3)
                        .desired_width(f32::INFINITY),
                )
                .labelled_by(label.id);
                ui.label(RichText::new(format!("Data directory: {}", model.data_dir)).small());
                ui.label(RichText::new("Network settings apply at the next start.").small().weak());
                ui.horizontal(|ui| {
                    if ui.button("Save settings").clicked() {
                        actions.push(Action::SaveSettings(draft.clone()));
                    }
                    if ui.button("Cancel").clicked() {
                        close = true;
                    }
                });
            }
            Dialog::Diagnostics => diagnostics(ui, model, actions, &mut close),
        }
    });
    if modal.should_close() {
        close = true;
    }
    let replaced = model.dialog.is_some();
    if !close && !replaced && !actions.iter().any(|a| matches!(a, Action::CloseDialog)) {
        model.dialog = Some(dialog);
    }
}

fn diagnostics(ui: &mut egui::Ui, model: &Model, actions: &mut Vec<Action>, close: &mut bool) {
    ui.heading("Diagnostics");
    let Some(status) = &model.status else {
        ui.spinner();
        if ui.button("Close").clicked() {
            *close = true;
        }
        return;
    };
    egui::Grid::new("diagnostics-grid")
        .num_columns(2)
        .striped(true)
        .show(ui, |ui| {
            ui.label("User id");
            ui.label(RichText::new(&status.user_id).monospace().small());
            ui.end_row();
            ui.label("Listening on");
            ui.label(status.listen_addrs.join("\n"));
            ui.end_row();
            ui.label("External addresses");
            ui.label(if status.external_addrs.is_empty() {
                "none confirmed".to_owned()
            } else {
                status.external_addrs.join("\n")
            });
            ui.end_row();
            ui.label("NAT status");
            ui.label(&status.nat);
            ui.end_row();
            ui.label("Connected peers");
            ui.label(status.connected_peers.to_string());
            ui.end_row();
            ui.label("DHT peers");
            ui.label(status.dht_peers.to_string());
            ui.end_row();
            ui.label("Relays");
            ui.label(if status.relays.is_empty() {
                "none".to_owned()
            } else {
                status.relays.join("\n")
            });
            ui.end_row();
            ui.label("Outbox");
            ui.label(format!("{} waiting", status.outbox_depth));
            ui.end_row();
            ui.label("Ledger");
            ui.label(format!(
                "{} entries, {:.1} KiB",
                status.ledger_entries,
                status.ledger_bytes as f64 / 1024.0
            ));
            ui.end_row();
        });
    ui.separator();
    ui.label(RichText::new("Servers").strong());
    for server in &status.servers {
        ui.label(format!(
            "{}: {} entries, {} pending, mesh {}, topic {}, replicas {} connected, last sync {}",
            if server.name.is_empty() {
                &server.server_id[..12]
            } else {
                &server.name
            },
            server.entries,
            server.pending,
            server.mesh_peers,
            server.topic_peers,
            server.replicas_connected,
            server
                .last_sync_ms
                .map(|at| model.clock.clock(at))
                .unwrap_or_else(|| "never".into()),
        ));
    }
    ui.horizontal(|ui| {
        if ui.button("Refresh").clicked() {
            actions.push(Action::RefreshStatus);
        }
        if ui.button("Close").clicked() {
            *close = true;
        }
    });
}

/// Draws a QR code of `text` (upper-cased: QR's compact alphanumeric mode).
fn qr_code(ui: &mut egui::Ui, text: &str) {
    let Ok(code) = qrcode::QrCode::new(text.to_uppercase().as_bytes()) else {
        ui.label(RichText::new("(too long for a QR code)").weak());
        return;
    };
    let width = code.width();
    let modules = code.to_colors();
    let quiet = 2usize;
    let side = (width + 2 * quiet) as f32;
    let cell = (260.0 / side).floor().max(1.0);
    let (rect, response) =
        ui.allocate_exact_size(vec2(cell * side, cell * side), egui::Sense::hover());
    response
        .widget_info(|| egui::WidgetInfo::labeled(egui::WidgetType::Image, true, "Invite QR code"));
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, Color32::WHITE);
    for (index, color) in modules.iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let x = (index % width + quiet) as f32;
            let y = (index / width + quiet) as f32;
            let min = rect.min + vec2(x * cell, y * cell);
            painter.rect_filled(
                egui::Rect::from_min_size(min, vec2(cell, cell)),
                0.0,
                Color32::BLACK,
            );
        }
    }
}

/// The form of the new-channel and rename dialogs: one name field, a
/// submit button and Cancel. True when the user submits a valid name
/// (button or Enter).
fn channel_name_form(
    ui: &mut egui::Ui,
    heading: &str,
    button: &str,
    name: &mut String,
    error: Option<&String>,
    close: &mut bool,
) -> bool {
    ui.heading(heading);
    let field = labelled_field(ui, "Channel name", name, false);
    autofocus(ui, &field);
    error_line(ui, error);
    let entered = submitted(ui, &field);
    let valid = !name.trim().is_empty() && name.chars().count() <= 64;
    let mut submit = false;
    ui.horizontal(|ui| {
        submit = ui.add_enabled(valid, egui::Button::new(button)).clicked() || valid && entered;
        if ui.button("Cancel").clicked() {
            *close = true;
        }
    });
    submit
}

/// Where the dialog remembers the field it gave the keyboard to.
fn autofocus_key() -> egui::Id {
    egui::Id::new("palaver-dialog-autofocus")
}

/// Gives `field` the keyboard when its dialog opens, once, so typing starts
/// at once (later clicks elsewhere are respected).
fn autofocus(ui: &egui::Ui, field: &egui::Response) {
    let key = autofocus_key();
    if ui.data(|data| data.get_temp::<egui::Id>(key)) != Some(field.id) {
        field.request_focus();
        ui.data_mut(|data| data.insert_temp(key, field.id));
    }
}

/// Enter pressed in a single-line `field`.
fn submitted(ui: &egui::Ui, field: &egui::Response) -> bool {
    field.lost_focus() && ui.input(|input| input.key_pressed(egui::Key::Enter))
}
