//! What an allowed control event does to the state. Only
//! [`ServerState::apply`] calls this, after
//! [`ServerState::authorize`] said yes, so the checks are not repeated
//! here; lookups that the authorization guarantees are still written
//! without panics.

use identity_core::UserId;
use messaging_proto::{ControlEvent, FeedCut, Join, KeyRotation, Role};

use super::record::ControlRecord;
use super::state::{
    Channel, Departure, DepartureKind, InviteState, Member, Rotation, ServerState, cut_map,
    name_key,
};

impl ServerState {
    /// Applies an authorized record.
    pub(super) fn transition(&mut self, record: &ControlRecord) {
        let author = record.author;
        match &record.event {
            // Never authorized after the genesis.
            ControlEvent::CreateServer(_) => {}
            ControlEvent::CreateChannel(spec) => {
                let channel = Channel {
                    id: spec.channel_id,
                    name: spec.name.clone(),
                    topic: spec.topic.clone(),
                    log: self.server.channel_log(&spec.channel_id),
                    created_by: author,
                    deleted: false,
                };
                self.live_names.insert(name_key(&channel.name), channel.id);
                self.channel_logs.insert(channel.log, channel.id);
                self.channels.insert(channel.id, channel);
            }
            ControlEvent::RenameChannel(spec) => {
                if let Some(channel) = self.channels.get_mut(&spec.channel_id) {
                    self.live_names.remove(&name_key(&channel.name));
                    self.live_names.insert(name_key(&spec.name), channel.id);
                    channel.name.clone_from(&spec.name);
                    channel.topic.clone_from(&spec.topic);
                }
            }
            ControlEvent::DeleteChannel { channel_id } => {
                if let Some(channel) = self.channels.get_mut(channel_id) {
                    channel.deleted = true;
                    self.live_names.remove(&name_key(&channel.name));
                }
            }
            ControlEvent::InviteIssued(issued) => {
                self.invites.insert(
                    issued.invite_id,
                    InviteState {
                        id: issued.invite_id,
                        issuer: Some(author),
                        expires_at_ms: issued.expires_at_ms,
                        max_uses: issued.max_uses,
                        uses: 0,
                        revoked: false,
                    },
                );
            }
            ControlEvent::InviteRevoked { invite_id } => {
                // An unknown invite is remembered as revoked, without an
                // issuer, so that it can never be announced or redeemed.
                self.invites
                    .entry(*invite_id)
                    .or_insert_with(|| InviteState {
                        id: *invite_id,
                        issuer: None,
                        expires_at_ms: None,
                        max_uses: None,
                        uses: 0,
                        revoked: false,
                    })
                    .revoked = true;
            }
            ControlEvent::Join(join) => self.join(record, join),
            ControlEvent::Leave { cut } => self.depart(author, DepartureKind::Left, author, cut),
            ControlEvent::Kick { member, cut, .. } => {
                self.depart(*member, DepartureKind::Kicked, author, cut);
            }
            ControlEvent::Ban { member, cut, .. } => {
                self.bans.insert(*member);
                if self.is_member(member) {
                    self.depart(*member, DepartureKind::Banned, author, cut);
                }
            }
            ControlEvent::Unban { member } => {
                self.bans.remove(member);
            }
            ControlEvent::GrantRole { member, role } => self.set_role(member, *role),
            ControlEvent::RevokeRole { member, .. } => self.set_role(member, Role::Member),
            ControlEvent::KeyRotation(rotation) => self.rotate(author, rotation),
            ControlEvent::KeyGrant(grant) => self.key_grants.push(grant.clone()),
            ControlEvent::SetBootstrapPeers(peers) => self.bootstrap_peers.clone_from(peers),
            ControlEvent::ModeratorRedact {
                channel_id, target, ..
            } => {
                self.redactions.insert((*channel_id, *target));
            }
            ControlEvent::UpdateServerProfile(profile) => self.profile.clone_from(profile),
        }
    }

    /// The author becomes a member; the invite they redeem is registered
    /// (if unknown) and used once; an earlier departure no longer matters.
    fn join(&mut self, record: &ControlRecord, join: &Join) {
        let invite = join.invite.as_ref().map(|signed| {
            let invite = signed.invite();
            let state = self
                .invites
                .entry(invite.invite_id)
                .or_insert_with(|| InviteState {
                    id: invite.invite_id,
                    issuer: Some(invite.inviter),
                    expires_at_ms: invite.expires_at_ms,
                    max_uses: invite.max_uses,
                    uses: 0,
                    revoked: false,
                });
            state.uses = state.uses.saturating_add(1);
            invite.invite_id
        });
        self.members.insert(
            record.author,
            Member {
                user: record.author,
                display_name: join.display_name.clone(),
                role: Role::Member,
                joined_at_ms: record.timestamp_ms,
                invite,
            },
        );
        self.departures.remove(&record.author);
    }

    /// `user` stops being a member; their feeds end at `cut`.
    fn depart(&mut self, user: UserId, kind: DepartureKind, by: UserId, cut: &[FeedCut]) {
        self.members.remove(&user);
        self.departures.insert(
            user,
            Departure {
                kind,
                by,
                cuts: cut_map(cut),
            },
        );
    }

    fn set_role(&mut self, member: &UserId, role: Role) {
        if let Some(member) = self.members.get_mut(member) {
            member.role = role;
        }
    }

    /// Starts the next epoch, or adds a part to the current rotation.
    fn rotate(&mut self, author: UserId, rotation: &KeyRotation) {
        if self.current_epoch.checked_add(1) == Some(rotation.new_epoch) {
            self.current_epoch = rotation.new_epoch;
            self.rotations.insert(
                rotation.new_epoch,
                Rotation {
                    epoch: rotation.new_epoch,
                    by: author,
                    sealed_keys: rotation.sealed_keys.clone(),
                    previous_key: rotation.previous_key.clone(),
                    parts: [rotation.part].into(),
                    part_count: rotation.part_count,
                },
            );
        } else if let Some(started) = self.rotations.get_mut(&rotation.new_epoch) {
            started
                .sealed_keys
                .extend(rotation.sealed_keys.iter().cloned());
            started.parts.insert(rotation.part);
        }
    }
}
