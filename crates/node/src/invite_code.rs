//! Invite codes: `palaver://invite/<code>`, where `<code>` is base32
//! (RFC 4648, no padding, case-insensitive) of
//! `version (1 byte) ‖ SignedInvite bytes ‖ checksum (4 bytes)` and the
//! checksum is the first four bytes of BLAKE3 over the version and the
//! invite. The checksum catches typing and copy-paste damage before the
//! signature is even looked at, so each kind of damage gets its own error.
//! The text is accepted with or without the `palaver://invite/` prefix, in
//! any letter case (QR codes use upper case) and with whitespace inside.

use data_encoding::BASE32_NOPAD;
use messaging_proto::{ProtoError, SignedInvite};

/// The URI prefix of an invite.
pub const INVITE_PREFIX: &str = "palaver://invite/";
/// The code format version this build writes and reads.
pub const CODE_VERSION: u8 = 1;
/// Longest accepted invite text.
pub const MAX_INVITE_TEXT: usize = 8 * 1024;

const CHECKSUM_LEN: usize = 4;
/// Shorter codes are reported as "not an invite" rather than "truncated".
const MIN_CODE_CHARS: usize = 32;

/// Why an invite code was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InviteCodeError {
    /// Empty, or far too long to be an invite.
    #[error("this is not an invite code (expected palaver://invite/…)")]
    NotAnInvite,
    /// Characters outside the base32 alphabet.
    #[error(
        "the invite code contains characters that cannot be in an invite (was it copied completely?)"
    )]
    BadEncoding,
    /// Shorter than the smallest possible invite.
    #[error("the invite code is truncated")]
    Truncated,
    /// The checksum does not match: a typo or a damaged copy.
    #[error("the invite code is damaged (checksum mismatch): copy it again")]
    BadChecksum,
    /// A newer code format than this build reads.
    #[error(
        "the invite code has version {0}, which this version of Palaver does not read; please update"
    )]
    UnknownVersion(u8),
    /// Decodes, but the invite inside is invalid (e.g. its signature).
    #[error("the invite is invalid: {0}")]
    Invalid(ProtoError),
    /// The invite has expired.
    #[error("the invite expired")]
    Expired {
        /// When it expired (ms since the Unix epoch).
        expired_at_ms: u64,
    },
}

impl InviteCodeError {
    /// A stable machine-readable code, e.g. `invite.bad_checksum`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAnInvite => "invite.not_an_invite",
            Self::BadEncoding => "invite.bad_encoding",
            Self::Truncated => "invite.truncated",
            Self::BadChecksum => "invite.bad_checksum",
            Self::UnknownVersion(_) => "invite.unknown_version",
            Self::Invalid(err) if err.is_crypto() => "invite.bad_signature",
            Self::Invalid(_) => "invite.malformed",
            Self::Expired { .. } => "invite.expired",
        }
    }
}

impl From<InviteCodeError> for crate::api::NodeError {
    fn from(err: InviteCodeError) -> Self {
        crate::api::NodeError::new(
            crate::api::ErrorCategory::Protocol,
            err.code(),
            err.to_string(),
        )
    }
}

fn checksum(version: u8, body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[version]);
    hasher.update(body);
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&hasher.finalize().as_bytes()[..CHECKSUM_LEN]);
    out
}

/// Writes the `palaver://invite/…` text of an invite.
pub fn encode(invite: &SignedInvite) -> String {
    let body = invite.to_bytes();
    let mut raw = Vec::with_capacity(1 + body.len() + CHECKSUM_LEN);
    raw.push(CODE_VERSION);
    raw.extend_from_slice(&body);
    raw.extend_from_slice(&checksum(CODE_VERSION, &body));
    format!(
        "{INVITE_PREFIX}{}",
        BASE32_NOPAD.encode(&raw).to_ascii_lowercase()
    )
}

/// Parses an invite text and checks it at time `now_ms` (signature,
/// expiry, allowing the inviter's clock to be up to
/// [`messaging_proto::limits::MAX_CLOCK_SKEW_MS`] behind ours). Whether it
/// was revoked is known only after syncing the server's control log.
pub fn parse(text: &str, now_ms: u64) -> Result<SignedInvite, InviteCodeError> {
    if text.len() > MAX_INVITE_TEXT {
        return Err(InviteCodeError::NotAnInvite);
    }
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let lower = compact.to_ascii_lowercase();
    let code = lower.strip_prefix(INVITE_PREFIX).unwrap_or(&lower);
    // Far shorter than any invite (a signed invite is hundreds of bytes):
    // not a damaged invite but something else.
    if code.len() < MIN_CODE_CHARS || code.contains("://") {
        return Err(InviteCodeError::NotAnInvite);
    }
    let raw = BASE32_NOPAD
        .decode(code.to_ascii_uppercase().as_bytes())
        .map_err(|err| match err.kind {
            data_encoding::DecodeKind::Length | data_encoding::DecodeKind::Trailing => {
                InviteCodeError::Truncated
            }
            _ => InviteCodeError::BadEncoding,
        })?;
    if raw.len() < 1 + CHECKSUM_LEN + 1 {
        return Err(InviteCodeError::Truncated);
    }
    let version = raw[0];
    let (body, sum) = raw[1..].split_at(raw.len() - 1 - CHECKSUM_LEN);
    if version != CODE_VERSION {
        // Report the version only if the checksum says it is not damage.
        if checksum(version, body) == sum {
            return Err(InviteCodeError::UnknownVersion(version));
        }
        return Err(InviteCodeError::BadChecksum);
    }
    if checksum(version, body) != sum {
        return Err(InviteCodeError::BadChecksum);
    }
    let invite = SignedInvite::from_bytes(body).map_err(InviteCodeError::Invalid)?;
    if let Some(expires_at_ms) = invite.invite().expires_at_ms
        && invite.invite().is_expired(now_ms)
    {
        return Err(InviteCodeError::Expired {
            expired_at_ms: expires_at_ms,
        });
    }
    Ok(invite)
}

#[cfg(test)]
mod tests {
    use super::*;
    use identity_core::Identity;
    use messaging_proto::{EpochKey, Invite, InviteId, ServerId};

    const NOW: u64 = 1_800_000_000_000;

    fn invite(expires_at_ms: Option<u64>) -> SignedInvite {
        let mut rng = rand::rng();
        let inviter = Identity::generate(&mut rng);
        SignedInvite::sign(
            &inviter,
            Invite {
                server_id: ServerId::from_bytes([1; 32]),
                server_name: "garden".into(),
                bootstrap: vec![],
                key: EpochKey::generate(&mut rng, 1),
                inviter: inviter.user_id(),
                expires_at_ms,
                max_uses: None,
                invite_id: InviteId::from_bytes([2; 16]),
                issued_at_ms: NOW - 1,
            },
        )
        .unwrap()
    }

    #[test]
    fn round_trip_in_any_case_and_with_whitespace() {
        let signed = invite(None);
        let text = encode(&signed);
        assert!(text.starts_with(INVITE_PREFIX));
        assert_eq!(parse(&text, NOW).unwrap(), signed);
        assert_eq!(parse(&text.to_ascii_uppercase(), NOW).unwrap(), signed);
        let code = text.strip_prefix(INVITE_PREFIX).unwrap();
        assert_eq!(parse(code, NOW).unwrap(), signed);
        let spaced: String = text
            .chars()
            .enumerate()
            .flat_map(|(i, c)| if i % 20 == 19 { vec![c, '\n'] } else { vec![c] })
            .collect();
        assert_eq!(parse(&spaced, NOW).unwrap(), signed);
    }

    #[test]
    fn each_kind_of_damage_has_its_own_error() {
        let text = encode(&invite(None));
        assert_eq!(parse("", NOW), Err(InviteCodeError::NotAnInvite));
        assert_eq!(
            parse("https://example.com/x", NOW),
            Err(InviteCodeError::NotAnInvite)
        );
        assert_eq!(
            parse(&format!("{INVITE_PREFIX}{}", "!".repeat(40)), NOW),
            Err(InviteCodeError::BadEncoding)
        );
        // Far too short to be an invite at all.
        assert_eq!(
            parse(&format!("{INVITE_PREFIX}abcd"), NOW),
            Err(InviteCodeError::NotAnInvite)
        );
        // Truncated: the tail is missing.
        let cut = &text[..INVITE_PREFIX.len() + 48];
        assert_eq!(parse(cut, NOW).unwrap_err().code(), "invite.bad_checksum");
        assert_eq!(
            parse(&text[..INVITE_PREFIX.len() + 35], NOW),
            Err(InviteCodeError::Truncated)
        );
        // One changed character.
        let mut typo: Vec<char> = text.chars().collect();
        let at = INVITE_PREFIX.len() + 40;
        typo[at] = if typo[at] == 'a' { 'b' } else { 'a' };
        let typo: String = typo.into_iter().collect();
        assert_eq!(parse(&typo, NOW), Err(InviteCodeError::BadChecksum));
    }

    #[test]
    fn expired_unknown_version_and_forged_invites() {
        // Expired once its expiry plus the clock tolerance has passed (the
        // inviter's clock may be behind ours).
        let tolerance = messaging_proto::limits::MAX_CLOCK_SKEW_MS;
        let expired = encode(&invite(Some(NOW - tolerance)));
        assert_eq!(parse(&expired, NOW).unwrap_err().code(), "invite.expired");
        assert!(parse(&encode(&invite(Some(NOW - tolerance + 1))), NOW).is_ok());
        assert!(parse(&encode(&invite(Some(NOW - 1))), NOW).is_ok());

        // A future version with a valid checksum.
        let body = invite(None).to_bytes();
        let mut raw = vec![9u8];
        raw.extend_from_slice(&body);
        raw.extend_from_slice(&checksum(9, &body));
        let future = format!("{INVITE_PREFIX}{}", BASE32_NOPAD.encode(&raw));
        assert_eq!(parse(&future, NOW), Err(InviteCodeError::UnknownVersion(9)));

        // A tampered invite with a recomputed checksum: the signature fails.
        let mut tampered = body.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        let mut raw = vec![CODE_VERSION];
        raw.extend_from_slice(&tampered);
        raw.extend_from_slice(&checksum(CODE_VERSION, &tampered));
        let forged = format!("{INVITE_PREFIX}{}", BASE32_NOPAD.encode(&raw));
        assert_eq!(
            parse(&forged, NOW).unwrap_err().code(),
            "invite.bad_signature"
        );
    }
}
