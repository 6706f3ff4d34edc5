//! Why a control event is refused ([`Denied`], one variant per rule of
//! [`ServerState::authorize`](super::ServerState::authorize)) and why a fold
//! cannot start ([`FoldError`]). Codes are stable: only ever added.

use identity_core::UserId;
use messaging_proto::Role;

/// A rule of the permission function refused a control event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    /// The author (or the member an event targets) is not a member now.
    #[error("{user} is not a member of the server")]
    NotAMember {
        /// Who is not a member.
        user: UserId,
    },
    /// The author's role is below the one the event needs.
    #[error("needs role {} or higher, the author is {}", .needed.as_str(), .has.as_str())]
    RoleTooLow {
        /// The lowest role allowed to write the event.
        needed: Role,
        /// The author's role.
        has: Role,
    },
    /// The author's role is not above the target's.
    #[error("the author's role does not outrank {target}'s")]
    DoesNotOutrank {
        /// The member the event targets.
        target: UserId,
    },
    /// `CreateServer` is only valid as the genesis.
    #[error("a server is created only by its genesis")]
    GenesisOnly,
    /// The channel id was used before (even by a deleted channel).
    #[error("the channel id is already used")]
    ChannelExists,
    /// Another live channel has this name (case-insensitive).
    #[error("another channel is named {name:?}")]
    ChannelNameTaken {
        /// The requested name.
        name: String,
    },
    /// No such channel (or, for rename and delete, it is deleted).
    #[error("no such channel")]
    UnknownChannel,
    /// The invite id is already known.
    #[error("the invite id is already known")]
    InviteExists,
    /// Only the invite's issuer or an admin may revoke it.
    #[error("only the invite's issuer or an admin may revoke it")]
    NotInviteIssuer,
    /// The joining user is already a member.
    #[error("already a member")]
    AlreadyMember,
    /// The joining user is banned.
    #[error("the user is banned")]
    Banned,
    /// The invite names another server.
    #[error("the invite is for another server")]
    InviteWrongServer,
    /// The inviter is not a member at this point of the fold.
    #[error("the inviter is not a member")]
    InviterNotMember,
    /// The invite id was announced by someone other than the invite's signer.
    #[error("the invite id was issued by someone else")]
    InviteIssuerMismatch,
    /// The join is later than the invite's expiry.
    #[error("the invite has expired")]
    InviteExpired,
    /// The invite was revoked.
    #[error("the invite was revoked")]
    InviteRevoked,
    /// The invite has no uses left.
    #[error("the invite has no uses left")]
    InviteExhausted,
    /// The invite carries a key of an epoch the server has not reached.
    #[error("the invite's key epoch {invite_epoch} is after the current epoch {current}")]
    InviteFromTheFuture {
        /// The invite's key epoch.
        invite_epoch: u32,
        /// The server's current epoch.
        current: u32,
    },
    /// A join without an invite, to a private server.
    #[error("the server is private: joining needs an invite")]
    InviteRequired,
    /// The user is already banned.
    #[error("the user is already banned")]
    AlreadyBanned,
    /// The user is not banned.
    #[error("the user is not banned")]
    NotBanned,
    /// The member already has the granted role.
    #[error("the member already has that role")]
    AlreadyHasRole,
    /// The member does not have the revoked role.
    #[error("the member does not have that role")]
    RoleNotHeld,
    /// Every member has the member role; it cannot be revoked.
    #[error("the member role cannot be revoked")]
    CannotRevokeMember,
    /// The genesis owner stays owner.
    #[error("the genesis owner's role cannot be changed")]
    CannotRevokeGenesisOwner,
    /// The event names an epoch that does not fit the current one.
    #[error("epoch {found} does not fit the current epoch {current}")]
    EpochMismatch {
        /// The server's current epoch.
        current: u32,
        /// The epoch the event names.
        found: u32,
    },
    /// Someone else already rotated to this epoch (the first in display
    /// order wins).
    #[error("another member already rotated to this epoch")]
    ConcurrentRotation,
    /// A part of the current rotation with another part count.
    #[error("the rotation has {expected} parts, this part says {found}")]
    PartCountMismatch {
        /// The rotation's part count.
        expected: u32,
        /// The part count of this part.
        found: u32,
    },
    /// This part of the rotation was seen already.
    #[error("part {part} of the rotation was already seen")]
    DuplicatePart {
        /// The part.
        part: u32,
    },
    /// [`ServerState::apply`](super::ServerState::apply) was given a record
    /// that sorts before the last folded one: refold instead. Not a rule of
    /// the fold; never listed in `rejected()`.
    #[error("the record sorts before the last folded record; refold")]
    OutOfOrder,
}

impl Denied {
    /// A stable code, e.g. `permission.not_a_member`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAMember { .. } => "permission.not_a_member",
            Self::RoleTooLow { .. } => "permission.role_too_low",
            Self::DoesNotOutrank { .. } => "permission.does_not_outrank",
            Self::GenesisOnly => "permission.genesis_only",
            Self::ChannelExists => "permission.channel_exists",
            Self::ChannelNameTaken { .. } => "permission.channel_name_taken",
            Self::UnknownChannel => "permission.unknown_channel",
            Self::InviteExists => "permission.invite_exists",
            Self::NotInviteIssuer => "permission.not_invite_issuer",
            Self::AlreadyMember => "permission.already_member",
            Self::Banned => "permission.banned",
            Self::InviteWrongServer => "permission.invite_wrong_server",
            Self::InviterNotMember => "permission.inviter_not_member",
            Self::InviteIssuerMismatch => "permission.invite_issuer_mismatch",
            Self::InviteExpired => "permission.invite_expired",
            Self::InviteRevoked => "permission.invite_revoked",
            Self::InviteExhausted => "permission.invite_exhausted",
            Self::InviteFromTheFuture { .. } => "permission.invite_from_the_future",
            Self::InviteRequired => "permission.invite_required",
            Self::AlreadyBanned => "permission.already_banned",
            Self::NotBanned => "permission.not_banned",
            Self::AlreadyHasRole => "permission.already_has_role",
            Self::RoleNotHeld => "permission.role_not_held",
            Self::CannotRevokeMember => "permission.cannot_revoke_member",
            Self::CannotRevokeGenesisOwner => "permission.cannot_revoke_genesis_owner",
            Self::EpochMismatch { .. } => "permission.epoch_mismatch",
            Self::ConcurrentRotation => "permission.concurrent_rotation",
            Self::PartCountMismatch { .. } => "permission.part_count_mismatch",
            Self::DuplicatePart { .. } => "permission.duplicate_part",
            Self::OutOfOrder => "control.out_of_order",
        }
    }
}

/// The genesis handed to [`ServerState::fold`](super::ServerState::fold) or
/// [`ServerState::genesis`](super::ServerState::genesis) cannot start the
/// server.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FoldError {
    /// The genesis record is not a `CreateServer`.
    #[error("the genesis record is a {kind} event, not create_server")]
    NotAGenesis {
        /// The kind of the event found.
        kind: &'static str,
    },
    /// The genesis record's hash is not the server id.
    #[error("the genesis record's hash is not the server id")]
    GenesisMismatch,
}

impl FoldError {
    /// A stable code, e.g. `control.genesis_mismatch`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAGenesis { .. } => "control.not_a_genesis",
            Self::GenesisMismatch => "control.genesis_mismatch",
        }
    }
}
