//! Small types shared by several messages: bootstrap peers, roles,
//! visibility.

use identity_core::UserId;
use multiaddr::Multiaddr;

use crate::check;
use crate::error::ProtoError;
use crate::limits::{MAX_ADDR_BYTES, MAX_ADDRS_PER_PEER};
use crate::pb;

/// A peer that serves a server's traffic and history, with where to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootstrapPeer {
    /// The peer's identity; its libp2p `PeerId` derives from it.
    pub peer: UserId,
    /// Where it listens (at most 8 addresses).
    pub addrs: Vec<Multiaddr>,
}

impl TryFrom<pb::BootstrapPeer> for BootstrapPeer {
    type Error = ProtoError;

    fn try_from(value: pb::BootstrapPeer) -> Result<Self, ProtoError> {
        let peer = check::user("bootstrap peer", &value.peer)?;
        let addrs = check::at_most("bootstrap peer addresses", value.addrs, MAX_ADDRS_PER_PEER)?
            .into_iter()
            .map(|addr| parse_addr(&addr))
            .collect::<Result<_, _>>()?;
        Ok(Self { peer, addrs })
    }
}

impl From<&BootstrapPeer> for pb::BootstrapPeer {
    fn from(value: &BootstrapPeer) -> Self {
        Self {
            peer: value.peer.as_bytes().to_vec().into(),
            addrs: value.addrs.iter().map(ToString::to_string).collect(),
        }
    }
}

fn parse_addr(text: &str) -> Result<Multiaddr, ProtoError> {
    if text.len() > MAX_ADDR_BYTES {
        return Err(ProtoError::TooLarge {
            what: "bootstrap address",
            size: text.len(),
            limit: MAX_ADDR_BYTES,
        });
    }
    text.parse().map_err(|_| ProtoError::InvalidAddress {
        what: "bootstrap address",
        addr: text.to_owned(),
    })
}

pub(crate) fn peers_from_pb(
    what: &'static str,
    peers: Vec<pb::BootstrapPeer>,
    max: usize,
) -> Result<Vec<BootstrapPeer>, ProtoError> {
    check::at_most(what, peers, max)?
        .into_iter()
        .map(BootstrapPeer::try_from)
        .collect()
}

pub(crate) fn peers_to_pb(peers: &[BootstrapPeer]) -> Vec<pb::BootstrapPeer> {
    peers.iter().map(pb::BootstrapPeer::from).collect()
}

/// Who may read a server without an invite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Joined only through an invite; not listed in the directory.
    Private,
    /// Listed in the directory; its advert carries the join key.
    Public,
}

impl Visibility {
    pub(crate) fn from_pb(value: i32) -> Result<Self, ProtoError> {
        match pb::Visibility::try_from(value) {
            Ok(pb::Visibility::Private) => Ok(Self::Private),
            Ok(pb::Visibility::Public) => Ok(Self::Public),
            _ => Err(ProtoError::UnknownEnumValue {
                what: "visibility",
                value,
            }),
        }
    }

    pub(crate) fn to_pb(self) -> i32 {
        match self {
            Self::Private => pb::Visibility::Private as i32,
            Self::Public => pb::Visibility::Public as i32,
        }
    }
}

/// A member's role. Each role includes the powers of the ones below it, so
/// roles are ordered: `Member < Moderator < Admin < Owner`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads and writes messages.
    Member,
    /// Also redacts others' messages and kicks members.
    Moderator,
    /// Also manages channels, invites, bans, roles below admin and keys.
    Admin,
    /// Everything, including granting admin.
    Owner,
}

impl Role {
    pub(crate) fn from_pb(value: i32) -> Result<Self, ProtoError> {
        match pb::Role::try_from(value) {
            Ok(pb::Role::Member) => Ok(Self::Member),
            Ok(pb::Role::Moderator) => Ok(Self::Moderator),
            Ok(pb::Role::Admin) => Ok(Self::Admin),
            Ok(pb::Role::Owner) => Ok(Self::Owner),
            _ => Err(ProtoError::UnknownEnumValue {
                what: "role",
                value,
            }),
        }
    }

    pub(crate) fn to_pb(self) -> i32 {
        match self {
            Self::Member => pb::Role::Member as i32,
            Self::Moderator => pb::Role::Moderator as i32,
            Self::Admin => pb::Role::Admin as i32,
            Self::Owner => pb::Role::Owner as i32,
        }
    }

    /// The role's name in lowercase (`member`, `moderator`, `admin`, `owner`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Moderator => "moderator",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = ProtoError;

    fn from_str(text: &str) -> Result<Self, ProtoError> {
        match text {
            "member" => Ok(Self::Member),
            "moderator" => Ok(Self::Moderator),
            "admin" => Ok(Self::Admin),
            "owner" => Ok(Self::Owner),
            _ => Err(ProtoError::UnknownEnumValue {
                what: "role",
                value: -1,
            }),
        }
    }
}
