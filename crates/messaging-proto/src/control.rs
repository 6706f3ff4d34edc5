//! Control events: changes to a server's channels, membership, roles, keys
//! and profile. They live in the server's control log; the node folds them
//! in display order into the server state.

use bytes::Bytes;
use identity_core::UserId;

use crate::check;
use crate::common::{BootstrapPeer, Role, Visibility, peers_from_pb, peers_to_pb};
use crate::error::ProtoError;
use crate::group_key::{KEY_LEN, NONCE_LEN, TAG_LEN};
use crate::ids::{ChannelId, EntryHash, InviteId, LogId};
use crate::invite::SignedInvite;
use crate::limits::{
    MAX_BOOTSTRAP_PEERS, MAX_CHANNEL_NAME_CHARS, MAX_DESCRIPTION_CHARS, MAX_DISPLAY_NAME_CHARS,
    MAX_FEED_CUTS, MAX_REASON_CHARS, MAX_ROTATION_PARTS, MAX_SEALED_KEY_BYTES,
    MAX_SEALED_KEYS_PER_PART, MAX_SERVER_NAME_CHARS, MAX_TOPIC_CHARS,
};
use crate::pb;
use crate::pb::control_event::Event;

/// Length of `KeyRotation::previous_key`: nonce, wrapped key, tag.
pub const WRAPPED_KEY_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;

/// One change to a server's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlEvent {
    /// The genesis: creates the server; its author is the owner.
    CreateServer(CreateServer),
    /// Adds a channel.
    CreateChannel(ChannelSpec),
    /// Renames a channel or changes its topic.
    RenameChannel(ChannelSpec),
    /// Deletes a channel.
    DeleteChannel {
        /// The channel.
        channel_id: ChannelId,
    },
    /// Announces an invite.
    InviteIssued(InviteIssued),
    /// Revokes an invite: later joins that redeem it are refused.
    InviteRevoked {
        /// The invite.
        invite_id: InviteId,
    },
    /// The author becomes a member.
    Join(Box<Join>),
    /// The author leaves; `cut` holds the heads of the author's feeds.
    Leave {
        /// Where the author's feeds end.
        cut: Vec<FeedCut>,
    },
    /// Removes a member (they may come back with an invite).
    Kick {
        /// Who is removed.
        member: UserId,
        /// Why (at most 500 characters).
        reason: String,
        /// The member's heads as the remover saw them.
        cut: Vec<FeedCut>,
    },
    /// Removes a member and refuses their return.
    Ban {
        /// Who is banned.
        member: UserId,
        /// Why (at most 500 characters).
        reason: String,
        /// The member's heads as the remover saw them.
        cut: Vec<FeedCut>,
    },
    /// Lifts a ban.
    Unban {
        /// Who is no longer banned.
        member: UserId,
    },
    /// Gives a member a role.
    GrantRole {
        /// The member.
        member: UserId,
        /// The role.
        role: Role,
    },
    /// Takes a role back (the member keeps `Member`).
    RevokeRole {
        /// The member.
        member: UserId,
        /// The role.
        role: Role,
    },
    /// Starts a new key epoch (sent unencrypted).
    KeyRotation(KeyRotation),
    /// Gives the key of an epoch to one member (sent unencrypted).
    KeyGrant(KeyGrant),
    /// Replaces the server's bootstrap peers (at most 16).
    SetBootstrapPeers(Vec<BootstrapPeer>),
    /// A moderator withdraws someone else's message.
    ModeratorRedact {
        /// The channel of the message.
        channel_id: ChannelId,
        /// The message.
        target: EntryHash,
        /// Why (at most 500 characters).
        reason: String,
    },
    /// Changes the server's name, description or visibility.
    UpdateServerProfile(ServerProfile),
}

impl ControlEvent {
    /// Key distribution events travel unencrypted (key epoch 0), so that a
    /// member can read them whichever key it holds.
    pub fn is_key_distribution(&self) -> bool {
        matches!(self, Self::KeyRotation(_) | Self::KeyGrant(_))
    }

    /// A short stable name of the event kind, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CreateServer(_) => "create_server",
            Self::CreateChannel(_) => "create_channel",
            Self::RenameChannel(_) => "rename_channel",
            Self::DeleteChannel { .. } => "delete_channel",
            Self::InviteIssued(_) => "invite_issued",
            Self::InviteRevoked { .. } => "invite_revoked",
            Self::Join(_) => "join",
            Self::Leave { .. } => "leave",
            Self::Kick { .. } => "kick",
            Self::Ban { .. } => "ban",
            Self::Unban { .. } => "unban",
            Self::GrantRole { .. } => "grant_role",
            Self::RevokeRole { .. } => "revoke_role",
            Self::KeyRotation(_) => "key_rotation",
            Self::KeyGrant(_) => "key_grant",
            Self::SetBootstrapPeers(_) => "set_bootstrap_peers",
            Self::ModeratorRedact { .. } => "moderator_redact",
            Self::UpdateServerProfile(_) => "update_server_profile",
        }
    }
}

/// Where a departing member's feed in one log ends: later entries of theirs
/// in that log are refused (unless they join again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedCut {
    /// The log.
    pub log: LogId,
    /// The last accepted seq.
    pub seq: u64,
}

/// The genesis event of a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateServer {
    /// 1..=100 characters.
    pub name: String,
    /// At most 1,000 characters.
    pub description: String,
    /// Public or private.
    pub visibility: Visibility,
    /// The id of the first channel, "general".
    pub general_channel_id: ChannelId,
    /// The owner's display name (at most 64 characters; empty = "owner").
    pub owner_name: String,
}

/// A channel's id, name and topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSpec {
    /// The channel.
    pub channel_id: ChannelId,
    /// 1..=64 characters.
    pub name: String,
    /// At most 500 characters.
    pub topic: String,
}

/// The announcement of an invite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteIssued {
    /// The invite.
    pub invite_id: InviteId,
    /// When it expires (ms since the Unix epoch), if ever.
    pub expires_at_ms: Option<u64>,
    /// How many joins it admits, if limited.
    pub max_uses: Option<u32>,
}

/// A join, with the invite it redeems (none for a public server).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Join {
    /// The invite, required for private servers.
    pub invite: Option<SignedInvite>,
    /// 1..=64 characters.
    pub display_name: String,
}

/// One part of a key rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRotation {
    /// The new epoch (≥ 2).
    pub new_epoch: u32,
    /// The new key sealed to each remaining member (at most 512 per part).
    pub sealed_keys: Vec<Bytes>,
    /// The previous key wrapped under the new one ([`WRAPPED_KEY_LEN`] bytes).
    pub previous_key: Bytes,
    /// This part's index.
    pub part: u32,
    /// How many parts the rotation has (1..=64).
    pub part_count: u32,
}

/// The key of one epoch sealed to one member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyGrant {
    /// The epoch (≥ 1).
    pub epoch: u32,
    /// The recipient.
    pub member: UserId,
    /// The sealed key.
    pub sealed_key: Bytes,
}

/// A server's public face.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerProfile {
    /// 1..=100 characters.
    pub name: String,
    /// At most 1,000 characters.
    pub description: String,
    /// Public or private.
    pub visibility: Visibility,
}

fn channel(what: &'static str, bytes: &[u8]) -> Result<ChannelId, ProtoError> {
    check::fixed::<16>(what, bytes).map(ChannelId::from_bytes)
}

fn reason(value: String) -> Result<String, ProtoError> {
    check::text("reason", value, 0, MAX_REASON_CHARS)
}

fn sealed_key(value: Bytes) -> Result<Bytes, ProtoError> {
    if value.is_empty() {
        return Err(ProtoError::MissingField { what: "sealed key" });
    }
    check::max_bytes("sealed key", value, MAX_SEALED_KEY_BYTES)
}

fn channel_spec(channel_id: &[u8], name: String, topic: String) -> Result<ChannelSpec, ProtoError> {
    Ok(ChannelSpec {
        channel_id: channel("channel id", channel_id)?,
        name: check::text("channel name", name, 1, MAX_CHANNEL_NAME_CHARS)?,
        topic: check::text("channel topic", topic, 0, MAX_TOPIC_CHARS)?,
    })
}

fn profile(
    name: String,
    description: String,
    visibility: i32,
) -> Result<ServerProfile, ProtoError> {
    Ok(ServerProfile {
        name: check::text("server name", name, 1, MAX_SERVER_NAME_CHARS)?,
        description: check::text("server description", description, 0, MAX_DESCRIPTION_CHARS)?,
        visibility: Visibility::from_pb(visibility)?,
    })
}

impl TryFrom<pb::ControlEvent> for ControlEvent {
    type Error = ProtoError;

    fn try_from(value: pb::ControlEvent) -> Result<Self, ProtoError> {
        let event = check::required("control event", value.event)?;
        Ok(match event {
            Event::CreateServer(e) => {
                let ServerProfile {
                    name,
                    description,
                    visibility,
                } = profile(e.name, e.description, e.visibility)?;
                Self::CreateServer(CreateServer {
                    name,
                    description,
                    visibility,
                    general_channel_id: channel("general channel id", &e.general_channel_id)?,
                    owner_name: check::text("owner name", e.owner_name, 0, MAX_DISPLAY_NAME_CHARS)?,
                })
            }
            Event::CreateChannel(e) => {
                Self::CreateChannel(channel_spec(&e.channel_id, e.name, e.topic)?)
            }
            Event::RenameChannel(e) => {
                Self::RenameChannel(channel_spec(&e.channel_id, e.name, e.topic)?)
            }
            Event::DeleteChannel(e) => Self::DeleteChannel {
                channel_id: channel("channel id", &e.channel_id)?,
            },
            Event::InviteIssued(e) => Self::InviteIssued(InviteIssued {
                invite_id: InviteId::from_bytes(check::fixed("invite id", &e.invite_id)?),
                expires_at_ms: (e.expires_at_ms != 0).then_some(e.expires_at_ms),
                max_uses: (e.max_uses != 0).then_some(e.max_uses),
            }),
            Event::InviteRevoked(e) => Self::InviteRevoked {
                invite_id: InviteId::from_bytes(check::fixed("invite id", &e.invite_id)?),
            },
            Event::Join(e) => Self::Join(Box::new(Join {
                invite: e.invite.map(SignedInvite::try_from).transpose()?,
                display_name: check::text(
                    "display name",
                    e.display_name,
                    1,
                    MAX_DISPLAY_NAME_CHARS,
                )?,
            })),
            Event::Leave(e) => Self::Leave { cut: cuts(e.cut)? },
            Event::Kick(e) => Self::Kick {
                member: check::user("member", &e.member)?,
                reason: reason(e.reason)?,
                cut: cuts(e.cut)?,
            },
            Event::Ban(e) => Self::Ban {
                member: check::user("member", &e.member)?,
                reason: reason(e.reason)?,
                cut: cuts(e.cut)?,
            },
            Event::Unban(e) => Self::Unban {
                member: check::user("member", &e.member)?,
            },
            Event::GrantRole(e) => Self::GrantRole {
                member: check::user("member", &e.member)?,
                role: Role::from_pb(e.role)?,
            },
            Event::RevokeRole(e) => Self::RevokeRole {
                member: check::user("member", &e.member)?,
                role: Role::from_pb(e.role)?,
            },
            Event::KeyRotation(e) => Self::KeyRotation(key_rotation(e)?),
            Event::KeyGrant(e) => Self::KeyGrant(KeyGrant {
                epoch: epoch("key grant epoch", e.epoch, 1)?,
                member: check::user("member", &e.member)?,
                sealed_key: sealed_key(e.sealed_key)?,
            }),
            Event::SetBootstrapPeers(e) => Self::SetBootstrapPeers(peers_from_pb(
                "bootstrap peers",
                e.peers,
                MAX_BOOTSTRAP_PEERS,
            )?),
            Event::ModeratorRedact(e) => Self::ModeratorRedact {
                channel_id: channel("channel id", &e.channel_id)?,
                target: check::hash("redaction target", &e.target)?,
                reason: reason(e.reason)?,
            },
            Event::UpdateServerProfile(e) => {
                Self::UpdateServerProfile(profile(e.name, e.description, e.visibility)?)
            }
        })
    }
}

fn cuts(values: Vec<pb::FeedCut>) -> Result<Vec<FeedCut>, ProtoError> {
    check::at_most("feed cuts", values, MAX_FEED_CUTS)?
        .into_iter()
        .map(|cut| {
            Ok(FeedCut {
                log: LogId::from_bytes(check::fixed("feed cut log id", &cut.log_id)?),
                seq: cut.seq,
            })
        })
        .collect()
}

fn cuts_to_pb(cuts: &[FeedCut]) -> Vec<pb::FeedCut> {
    cuts.iter()
        .map(|cut| pb::FeedCut {
            log_id: Bytes::copy_from_slice(cut.log.as_bytes()),
            seq: cut.seq,
        })
        .collect()
}

fn epoch(what: &'static str, value: u32, min: u32) -> Result<u32, ProtoError> {
    if value < min {
        return Err(ProtoError::OutOfRange {
            what,
            value: u64::from(value),
            min: u64::from(min),
            max: u64::from(u32::MAX),
        });
    }
    Ok(value)
}

fn key_rotation(e: pb::KeyRotation) -> Result<KeyRotation, ProtoError> {
    let new_epoch = epoch("new key epoch", e.new_epoch, 2)?;
    if e.part_count == 0 || e.part_count > MAX_ROTATION_PARTS {
        return Err(ProtoError::OutOfRange {
            what: "key rotation part count",
            value: u64::from(e.part_count),
            min: 1,
            max: u64::from(MAX_ROTATION_PARTS),
        });
    }
    if e.part >= e.part_count {
        return Err(ProtoError::OutOfRange {
            what: "key rotation part",
            value: u64::from(e.part),
            min: 0,
            max: u64::from(e.part_count - 1),
        });
    }
    let sealed_keys = check::at_most("sealed keys", e.sealed_keys, MAX_SEALED_KEYS_PER_PART)?
        .into_iter()
        .map(sealed_key)
        .collect::<Result<_, _>>()?;
    if e.previous_key.len() != WRAPPED_KEY_LEN {
        return Err(ProtoError::InvalidLength {
            what: "wrapped previous key",
            expected: WRAPPED_KEY_LEN,
            found: e.previous_key.len(),
        });
    }
    Ok(KeyRotation {
        new_epoch,
        sealed_keys,
        previous_key: e.previous_key,
        part: e.part,
        part_count: e.part_count,
    })
}

fn user_bytes(user: &UserId) -> Bytes {
    Bytes::copy_from_slice(user.as_bytes())
}

fn id_bytes(bytes: &[u8]) -> Bytes {
    Bytes::copy_from_slice(bytes)
}

impl From<&ControlEvent> for pb::ControlEvent {
    fn from(value: &ControlEvent) -> Self {
        let event = match value {
            ControlEvent::CreateServer(e) => Event::CreateServer(pb::CreateServer {
                name: e.name.clone(),
                description: e.description.clone(),
                visibility: e.visibility.to_pb(),
                general_channel_id: id_bytes(e.general_channel_id.as_bytes()),
                owner_name: e.owner_name.clone(),
            }),
            ControlEvent::CreateChannel(e) => Event::CreateChannel(pb::CreateChannel {
                channel_id: id_bytes(e.channel_id.as_bytes()),
                name: e.name.clone(),
                topic: e.topic.clone(),
            }),
            ControlEvent::RenameChannel(e) => Event::RenameChannel(pb::RenameChannel {
                channel_id: id_bytes(e.channel_id.as_bytes()),
                name: e.name.clone(),
                topic: e.topic.clone(),
            }),
            ControlEvent::DeleteChannel { channel_id } => Event::DeleteChannel(pb::DeleteChannel {
                channel_id: id_bytes(channel_id.as_bytes()),
            }),
            ControlEvent::InviteIssued(e) => Event::InviteIssued(pb::InviteIssued {
                invite_id: id_bytes(e.invite_id.as_bytes()),
                expires_at_ms: e.expires_at_ms.unwrap_or(0),
                max_uses: e.max_uses.unwrap_or(0),
            }),
            ControlEvent::InviteRevoked { invite_id } => Event::InviteRevoked(pb::InviteRevoked {
                invite_id: id_bytes(invite_id.as_bytes()),
            }),
            ControlEvent::Join(e) => Event::Join(pb::Join {
                invite: e.invite.as_ref().map(pb::SignedInvite::from),
                display_name: e.display_name.clone(),
            }),
            ControlEvent::Leave { cut } => Event::Leave(pb::Leave {
                cut: cuts_to_pb(cut),
            }),
            ControlEvent::Kick {
                member,
                reason,
                cut,
            } => Event::Kick(pb::Kick {
                member: user_bytes(member),
                reason: reason.clone(),
                cut: cuts_to_pb(cut),
            }),
            ControlEvent::Ban {
                member,
                reason,
                cut,
            } => Event::Ban(pb::Ban {
                member: user_bytes(member),
                reason: reason.clone(),
                cut: cuts_to_pb(cut),
            }),
            ControlEvent::Unban { member } => Event::Unban(pb::Unban {
                member: user_bytes(member),
            }),
            ControlEvent::GrantRole { member, role } => Event::GrantRole(pb::GrantRole {
                member: user_bytes(member),
                role: role.to_pb(),
            }),
            ControlEvent::RevokeRole { member, role } => Event::RevokeRole(pb::RevokeRole {
                member: user_bytes(member),
                role: role.to_pb(),
            }),
            ControlEvent::KeyRotation(e) => Event::KeyRotation(pb::KeyRotation {
                new_epoch: e.new_epoch,
                sealed_keys: e.sealed_keys.clone(),
                previous_key: e.previous_key.clone(),
                part: e.part,
                part_count: e.part_count,
            }),
            ControlEvent::KeyGrant(e) => Event::KeyGrant(pb::KeyGrant {
                epoch: e.epoch,
                member: user_bytes(&e.member),
                sealed_key: e.sealed_key.clone(),
            }),
            ControlEvent::SetBootstrapPeers(peers) => {
                Event::SetBootstrapPeers(pb::SetBootstrapPeers {
                    peers: peers_to_pb(peers),
                })
            }
            ControlEvent::ModeratorRedact {
                channel_id,
                target,
                reason,
            } => Event::ModeratorRedact(pb::ModeratorRedact {
                channel_id: id_bytes(channel_id.as_bytes()),
                target: id_bytes(target.as_bytes()),
                reason: reason.clone(),
            }),
            ControlEvent::UpdateServerProfile(e) => {
                Event::UpdateServerProfile(pb::UpdateServerProfile {
                    name: e.name.clone(),
                    description: e.description.clone(),
                    visibility: e.visibility.to_pb(),
                })
            }
        };
        Self { event: Some(event) }
    }
}
