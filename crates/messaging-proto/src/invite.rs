//! Invites: a signed, self-authenticating ticket into a private server. An
//! invite carries the server's current epoch key, so it is a secret: share
//! it only with the person invited. (The `palaver://invite/…` text form is
//! built by the node on top of [`SignedInvite::to_bytes`].)

use bytes::Bytes;
use identity_core::{Identity, Signature, UserId};
use prost::Message;

use crate::check;
use crate::common::{BootstrapPeer, peers_from_pb, peers_to_pb};
use crate::error::ProtoError;
use crate::group_key::EpochKey;
use crate::ids::{InviteId, ServerId};
use crate::limits::{
    MAX_CLOCK_SKEW_MS, MAX_INVITE_BOOTSTRAP_PEERS, MAX_SERVER_NAME_CHARS, MAX_SIGNED_INVITE_BYTES,
};
use crate::pb;
use crate::wire_counts;

/// Domain-separation tag of invite signatures.
pub const INVITE_SIGNATURE_CONTEXT: &[u8] = b"palaver/v1/invite\0";
/// The invite format version this build writes and reads.
pub const INVITE_VERSION: u32 = 1;

/// The content of an invite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    /// The server.
    pub server_id: ServerId,
    /// The server's name as the inviter saw it.
    pub server_name: String,
    /// Where to connect first (at most 4 peers).
    pub bootstrap: Vec<BootstrapPeer>,
    /// The server's epoch key at the time of the invite.
    pub key: EpochKey,
    /// Who issued it (and signs it).
    pub inviter: UserId,
    /// When it expires (ms since the Unix epoch), if ever.
    pub expires_at_ms: Option<u64>,
    /// How many joins it admits, if limited.
    pub max_uses: Option<u32>,
    /// Its id, named by `InviteIssued`, `InviteRevoked` and `Join`.
    pub invite_id: InviteId,
    /// When it was issued (ms since the Unix epoch).
    pub issued_at_ms: u64,
}

impl Invite {
    /// True when the invite has expired by a clock reading `now_ms`: see
    /// [`expiry_has_passed`].
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms
            .is_some_and(|expiry| expiry_has_passed(expiry, now_ms))
    }
}

/// True when an expiry written by one peer's clock (the inviter's) has
/// passed by another's reading `now_ms` (the joiner's): at or after
/// `expires_at_ms + MAX_CLOCK_SKEW_MS`, since the two clocks may be that
/// far apart. An invite thus lives up to that much longer than its
/// inviter asked, and never less.
pub fn expiry_has_passed(expires_at_ms: u64, now_ms: u64) -> bool {
    now_ms >= expires_at_ms.saturating_add(MAX_CLOCK_SKEW_MS)
}

/// An invite with its inviter's signature, checked when decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedInvite {
    encoded_invite: Bytes,
    signature: Signature,
    invite: Invite,
}

impl SignedInvite {
    /// Signs `invite` as `inviter` (which becomes `invite.inviter`).
    pub fn sign(inviter: &Identity, mut invite: Invite) -> Result<Self, ProtoError> {
        invite.inviter = inviter.user_id();
        let encoded_invite = Bytes::from(invite_to_pb(&invite).encode_to_vec());
        // Check against the same rules a receiver applies.
        invite_from_pb(decode_invite(&encoded_invite)?)?;
        let signature = inviter.sign(INVITE_SIGNATURE_CONTEXT, &encoded_invite);
        let signed = Self {
            encoded_invite,
            signature,
            invite,
        };
        let size = signed.to_bytes().len();
        check::encoded_size("signed invite", size, MAX_SIGNED_INVITE_BYTES)?;
        Ok(signed)
    }

    /// Decodes and verifies an encoded `SignedInvite`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtoError> {
        check::encoded_size("signed invite", bytes.len(), MAX_SIGNED_INVITE_BYTES)?;
        let message = pb::SignedInvite::decode(bytes)
            .map_err(|err| ProtoError::decode("signed invite", err))?;
        Self::try_from(message)
    }

    /// The encoded `SignedInvite`.
    pub fn to_bytes(&self) -> Vec<u8> {
        pb::SignedInvite::from(self).encode_to_vec()
    }

    /// The invite.
    pub fn invite(&self) -> &Invite {
        &self.invite
    }
}

fn decode_invite(bytes: &Bytes) -> Result<pb::Invite, ProtoError> {
    wire_counts::check(bytes, &wire_counts::INVITE)?;
    pb::Invite::decode(bytes.clone()).map_err(|err| ProtoError::decode("invite", err))
}

fn invite_from_pb(value: pb::Invite) -> Result<Invite, ProtoError> {
    if value.version != INVITE_VERSION {
        return Err(ProtoError::UnsupportedVersion {
            what: "invite",
            found: value.version,
            supported: INVITE_VERSION,
        });
    }
    if value.key_epoch == 0 {
        return Err(ProtoError::OutOfRange {
            what: "invite key epoch",
            value: 0,
            min: 1,
            max: u64::from(u32::MAX),
        });
    }
    Ok(Invite {
        server_id: ServerId::from_bytes(check::fixed("server id", &value.server_id)?),
        server_name: check::text("server name", value.server_name, 1, MAX_SERVER_NAME_CHARS)?,
        bootstrap: peers_from_pb(
            "invite bootstrap peers",
            value.bootstrap,
            MAX_INVITE_BOOTSTRAP_PEERS,
        )?,
        key: EpochKey::from_slice(value.key_epoch, &value.epoch_key)?,
        inviter: check::user("inviter", &value.inviter)?,
        expires_at_ms: (value.expires_at_ms != 0).then_some(value.expires_at_ms),
        max_uses: (value.max_uses != 0).then_some(value.max_uses),
        invite_id: InviteId::from_bytes(check::fixed("invite id", &value.invite_id)?),
        issued_at_ms: value.issued_at_ms,
    })
}

fn invite_to_pb(invite: &Invite) -> pb::Invite {
    pb::Invite {
        version: INVITE_VERSION,
        server_id: Bytes::copy_from_slice(invite.server_id.as_bytes()),
        server_name: invite.server_name.clone(),
        bootstrap: peers_to_pb(&invite.bootstrap),
        key_epoch: invite.key.epoch(),
        epoch_key: Bytes::copy_from_slice(invite.key.as_bytes()),
        inviter: Bytes::copy_from_slice(invite.inviter.as_bytes()),
        expires_at_ms: invite.expires_at_ms.unwrap_or(0),
        max_uses: invite.max_uses.unwrap_or(0),
        invite_id: Bytes::copy_from_slice(invite.invite_id.as_bytes()),
        issued_at_ms: invite.issued_at_ms,
    }
}

impl TryFrom<pb::SignedInvite> for SignedInvite {
    type Error = ProtoError;

    fn try_from(value: pb::SignedInvite) -> Result<Self, ProtoError> {
        if value.invite.is_empty() {
            return Err(ProtoError::MissingField { what: "invite" });
        }
        let signature = Signature::from_bytes(check::fixed("invite signature", &value.signature)?);
        let invite = invite_from_pb(decode_invite(&value.invite)?)?;
        invite
            .inviter
            .verify(INVITE_SIGNATURE_CONTEXT, &value.invite, &signature)
            .map_err(|_| ProtoError::BadSignature { what: "invite" })?;
        Ok(Self {
            encoded_invite: value.invite,
            signature,
            invite,
        })
    }
}

impl From<&SignedInvite> for pb::SignedInvite {
    fn from(value: &SignedInvite) -> Self {
        Self {
            invite: value.encoded_invite.clone(),
            signature: Bytes::copy_from_slice(value.signature.as_bytes()),
        }
    }
}
