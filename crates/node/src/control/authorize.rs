//! The one permission function, [`ServerState::authorize`]: may a record's
//! author perform its event in this state?
//!
//! A `Join` is judged by its own rules (not a member, not banned, and a
//! valid invite or a public server). Every other event first requires the
//! author to be a member; the author's role then decides, compared with
//! the role an event needs (`Member < Moderator < Admin < Owner`) and, for
//! events aimed at another member, with the target's role. Last come the
//! rules on the event's own content (unknown channel, taken name, epoch…).
//! Each rule that fails has its own [`Denied`] variant. The function only
//! reads the state; [`ServerState::apply`] changes it.

use identity_core::UserId;
use messaging_proto::{
    ChannelId, ChannelSpec, ControlEvent, Invite, InviteId, Join, KeyGrant, KeyRotation, Role,
    Visibility, expiry_has_passed,
};

use super::denied::Denied;
use super::record::ControlRecord;
use super::state::{ServerState, name_key};

/// `has` must be at least `needed`.
fn at_least(has: Role, needed: Role) -> Result<(), Denied> {
    if has >= needed {
        Ok(())
    } else {
        Err(Denied::RoleTooLow { needed, has })
    }
}

/// The smaller of two optional limits (`None` = unlimited).
fn stricter<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl ServerState {
    /// THE one permission function: may `record.author` perform
    /// `record.event` in this state?
    ///
    /// - `Join`: the author is not a member and not banned; with an invite,
    ///   the invite names this server, its inviter is a member, the join's
    ///   timestamp is at most its expiry, it is not revoked, has uses left,
    ///   and its key epoch is not after the current one; without an invite,
    ///   the server is public.
    /// - Every other event: the author is a member, and then:
    ///   - `CreateServer`: never (genesis only);
    ///   - `CreateChannel`, `RenameChannel`, `DeleteChannel`: admin; a new
    ///     id, a live channel to change, a name free among live channels;
    ///   - `InviteIssued`: a new invite id; `InviteRevoked`: the issuer or
    ///     an admin (an unknown invite: an admin);
    ///   - `Leave`: always;
    ///   - `Kick`: moderator, over a member of a lower role;
    ///   - `Ban`: admin, not banned yet, over a lower role if a member;
    ///     `Unban`: admin, of a banned user;
    ///   - `GrantRole`, `RevokeRole`: see the checks below;
    ///   - `KeyRotation`: moderator; the next epoch, or a new part of the
    ///     current epoch's rotation by its author;
    ///   - `KeyGrant`: an epoch in `1..=current`, to a member;
    ///   - `SetBootstrapPeers`, `UpdateServerProfile`: admin;
    ///   - `ModeratorRedact`: moderator, in a known channel.
    ///
    /// Each failing rule has its own [`Denied`] variant.
    pub fn authorize(&self, record: &ControlRecord) -> Result<(), Denied> {
        let author = &record.author;
        let role = match &record.event {
            ControlEvent::Join(join) => return self.authorize_join(record, join),
            // Every other event needs a current member.
            _ => self
                .role_of(author)
                .ok_or(Denied::NotAMember { user: *author })?,
        };
        match &record.event {
            // Only reached by a member: a member cannot join again.
            ControlEvent::Join(_) => Err(Denied::AlreadyMember),
            ControlEvent::CreateServer(_) => Err(Denied::GenesisOnly),
            ControlEvent::CreateChannel(spec) => {
                at_least(role, Role::Admin)?;
                self.check_new_channel(spec)
            }
            ControlEvent::RenameChannel(spec) => {
                at_least(role, Role::Admin)?;
                self.check_rename(spec)
            }
            ControlEvent::DeleteChannel { channel_id } => {
                at_least(role, Role::Admin)?;
                self.live_channel(channel_id)
            }
            ControlEvent::InviteIssued(issued) => {
                if self.invites.contains_key(&issued.invite_id) {
                    return Err(Denied::InviteExists);
                }
                Ok(())
            }
            ControlEvent::InviteRevoked { invite_id } => {
                self.check_revoke_invite(author, role, invite_id)
            }
            ControlEvent::Leave { .. } => Ok(()),
            ControlEvent::Kick { member, .. } => {
                at_least(role, Role::Moderator)?;
                let target = self.target_role(member)?;
                outranks(role, target, member)
            }
            ControlEvent::Ban { member, .. } => {
                at_least(role, Role::Admin)?;
                if self.bans.contains(member) {
                    return Err(Denied::AlreadyBanned);
                }
                // A non-member may be banned pre-emptively.
                match self.role_of(member) {
                    Some(target) => outranks(role, target, member),
                    None => Ok(()),
                }
            }
            ControlEvent::Unban { member } => {
                at_least(role, Role::Admin)?;
                if !self.bans.contains(member) {
                    return Err(Denied::NotBanned);
                }
                Ok(())
            }
            ControlEvent::GrantRole {
                member,
                role: granted,
            } => self.check_grant(role, member, *granted),
            ControlEvent::RevokeRole {
                member,
                role: revoked,
            } => self.check_revoke_role(role, member, *revoked),
            ControlEvent::KeyRotation(rotation) => {
                // Moderators kick, so they must be able to rotate the key.
                at_least(role, Role::Moderator)?;
                self.check_rotation(author, rotation)
            }
            ControlEvent::KeyGrant(grant) => self.check_grant_key(grant),
            ControlEvent::SetBootstrapPeers(_) | ControlEvent::UpdateServerProfile(_) => {
                at_least(role, Role::Admin)
            }
            ControlEvent::ModeratorRedact { channel_id, .. } => {
                at_least(role, Role::Moderator)?;
                // Deleted channels included: their messages may still be
                // held and shown as history.
                if !self.channels.contains_key(channel_id) {
                    return Err(Denied::UnknownChannel);
                }
                Ok(())
            }
        }
    }

    /// The role of the member an event targets.
    fn target_role(&self, member: &UserId) -> Result<Role, Denied> {
        self.role_of(member)
            .ok_or(Denied::NotAMember { user: *member })
    }

    /// The channel, if it exists and is not deleted.
    fn live_channel(&self, id: &ChannelId) -> Result<(), Denied> {
        match self.channels.get(id) {
            Some(channel) if !channel.deleted => Ok(()),
            _ => Err(Denied::UnknownChannel),
        }
    }

    /// A new channel: its id was never used (not even by a deleted
    /// channel), its name is free among the live channels (ignoring case).
    fn check_new_channel(&self, spec: &ChannelSpec) -> Result<(), Denied> {
        if self.channels.contains_key(&spec.channel_id) {
            return Err(Denied::ChannelExists);
        }
        if self.live_names.contains_key(&name_key(&spec.name)) {
            return Err(Denied::ChannelNameTaken {
                name: spec.name.clone(),
            });
        }
        Ok(())
    }

    /// A rename: the channel is live and no other live channel has the new
    /// name (ignoring case; the channel's own name in another case is fine).
    fn check_rename(&self, spec: &ChannelSpec) -> Result<(), Denied> {
        self.live_channel(&spec.channel_id)?;
        match self.live_names.get(&name_key(&spec.name)) {
            Some(other) if *other != spec.channel_id => Err(Denied::ChannelNameTaken {
                name: spec.name.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// A known invite may be revoked by its issuer or an admin; an unknown
    /// one only by an admin. Revoking twice is allowed (idempotent).
    fn check_revoke_invite(
        &self,
        author: &UserId,
        role: Role,
        invite_id: &InviteId,
    ) -> Result<(), Denied> {
        match self.invites.get(invite_id) {
            Some(invite) if invite.issuer == Some(*author) || role >= Role::Admin => Ok(()),
            Some(_) => Err(Denied::NotInviteIssuer),
            None => at_least(role, Role::Admin),
        }
    }

    /// A join: not a member, not banned, and either a valid invite or a
    /// public server.
    fn authorize_join(&self, record: &ControlRecord, join: &Join) -> Result<(), Denied> {
        if self.is_member(&record.author) {
            return Err(Denied::AlreadyMember);
        }
        if self.is_banned(&record.author) {
            return Err(Denied::Banned);
        }
        match &join.invite {
            Some(signed) => self.check_invite(record, signed.invite()),
            None if self.profile.visibility == Visibility::Public => Ok(()),
            None => Err(Denied::InviteRequired),
        }
    }

    /// The invite a join redeems (its signature was verified when it was
    /// decoded). Limits come from both the signed invite and, if the id is
    /// known, the state's record of it; the stricter wins.
    fn check_invite(&self, record: &ControlRecord, invite: &Invite) -> Result<(), Denied> {
        if invite.server_id != self.server {
            return Err(Denied::InviteWrongServer);
        }
        if !self.is_member(&invite.inviter) {
            return Err(Denied::InviterNotMember);
        }
        let known = self.invites.get(&invite.invite_id);
        // An `InviteIssued` by someone else must not take over (and so
        // extend or block the revocation of) another member's invite.
        if let Some(issuer) = known.and_then(|state| state.issuer)
            && issuer != invite.inviter
        {
            return Err(Denied::InviteIssuerMismatch);
        }
        let expiry = stricter(
            invite.expires_at_ms,
            known.and_then(|state| state.expires_at_ms),
        );
        // Judged by the joiner's clock (the join's timestamp) against the
        // inviter's, with the protocol's clock tolerance, as
        // `Invite::is_expired` says.
        if expiry.is_some_and(|expiry| expiry_has_passed(expiry, record.timestamp_ms)) {
            return Err(Denied::InviteExpired);
        }
        if known.is_some_and(|state| state.revoked) {
            return Err(Denied::InviteRevoked);
        }
        let max_uses = stricter(invite.max_uses, known.and_then(|state| state.max_uses));
        let uses = known.map_or(0, |state| state.uses);
        if max_uses.is_some_and(|max| uses >= max) {
            return Err(Denied::InviteExhausted);
        }
        if invite.key.epoch() > self.current_epoch {
            return Err(Denied::InviteFromTheFuture {
                invite_epoch: invite.key.epoch(),
                current: self.current_epoch,
            });
        }
        Ok(())
    }

    /// True if `member` is the genesis owner still holding `Owner`.
    fn is_genesis_owner_role(&self, member: &UserId, target: Role) -> bool {
        *member == self.owner && target == Role::Owner
    }

    /// `GrantRole`: an admin or owner gives a member a new role. Admin and
    /// Owner are granted only by an owner; lower roles by someone who
    /// outranks the member (and, being at least admin, the granted role).
    /// The genesis owner's role cannot be replaced.
    fn check_grant(&self, author: Role, member: &UserId, granted: Role) -> Result<(), Denied> {
        at_least(author, Role::Admin)?;
        let target = self.target_role(member)?;
        if target == granted {
            return Err(Denied::AlreadyHasRole);
        }
        if self.is_genesis_owner_role(member, target) {
            return Err(Denied::CannotRevokeGenesisOwner);
        }
        if granted >= Role::Admin {
            at_least(author, Role::Owner)
        } else {
            outranks(author, target, member)
        }
    }

    /// `RevokeRole`: the member holds the role (not `Member`, which
    /// everyone keeps); the author is an owner, or an admin who outranks
    /// the member; the genesis owner stays owner. The member falls back to
    /// `Member`.
    fn check_revoke_role(
        &self,
        author: Role,
        member: &UserId,
        revoked: Role,
    ) -> Result<(), Denied> {
        at_least(author, Role::Admin)?;
        if revoked == Role::Member {
            return Err(Denied::CannotRevokeMember);
        }
        let target = self.target_role(member)?;
        if target != revoked {
            return Err(Denied::RoleNotHeld);
        }
        if self.is_genesis_owner_role(member, target) {
            return Err(Denied::CannotRevokeGenesisOwner);
        }
        if author == Role::Owner {
            Ok(())
        } else {
            outranks(author, target, member)
        }
    }

    /// `KeyRotation`: either starts epoch `current + 1`, or adds a new part
    /// (same author, same part count) to the rotation that started the
    /// current epoch. A second author rotating to the current epoch lost
    /// the race: the first in display order wins.
    fn check_rotation(&self, author: &UserId, rotation: &KeyRotation) -> Result<(), Denied> {
        let current = self.current_epoch;
        if current.checked_add(1) == Some(rotation.new_epoch) {
            return Ok(());
        }
        let Some(started) = self
            .rotations
            .get(&current)
            .filter(|_| rotation.new_epoch == current)
        else {
            return Err(Denied::EpochMismatch {
                current,
                found: rotation.new_epoch,
            });
        };
        if started.by != *author {
            return Err(Denied::ConcurrentRotation);
        }
        if started.part_count != rotation.part_count {
            return Err(Denied::PartCountMismatch {
                expected: started.part_count,
                found: rotation.part_count,
            });
        }
        if started.parts.contains(&rotation.part) {
            return Err(Denied::DuplicatePart {
                part: rotation.part,
            });
        }
        Ok(())
    }

    /// `KeyGrant`: an epoch the server has reached (1..=current), to a
    /// member.
    fn check_grant_key(&self, grant: &KeyGrant) -> Result<(), Denied> {
        if grant.epoch == 0 || grant.epoch > self.current_epoch {
            return Err(Denied::EpochMismatch {
                current: self.current_epoch,
                found: grant.epoch,
            });
        }
        self.target_role(&grant.member).map(|_| ())
    }
}

/// The author's role must be above the target's.
fn outranks(author: Role, target: Role, member: &UserId) -> Result<(), Denied> {
    if author > target {
        Ok(())
    } else {
        Err(Denied::DoesNotOutrank { target: *member })
    }
}
