//! Identifiers: 32-byte ids for spaces, logs and entries, 16-byte ids for
//! channels and invites, and the derivations between them (BLAKE3
//! `derive_key` with a fixed context per use, so ids never collide across
//! kinds).

use std::fmt;

use identity_core::UserId;

use crate::error::ProtoError;

macro_rules! byte_id {
    ($(#[$meta:meta])* $name:ident, $len:expr, $what:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// Parses a field that must be exactly the right length.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, ProtoError> {
                <[u8; $len]>::try_from(bytes).map(Self).map_err(|_| ProtoError::InvalidLength {
                    what: $what,
                    expected: $len,
                    found: bytes.len(),
                })
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Lowercase hex of the bytes.
            pub fn to_hex(&self) -> String {
                hex(&self.0)
            }

            /// Parses lowercase or uppercase hex.
            pub fn from_hex(text: &str) -> Result<Self, ProtoError> {
                let bytes = unhex(text).ok_or(ProtoError::InvalidLength {
                    what: $what,
                    expected: $len,
                    found: text.len() / 2,
                })?;
                Self::from_slice(&bytes)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Short form: enough to tell ids apart in logs.
                write!(f, "{}({}…)", stringify!($name), &self.to_hex()[..12])
            }
        }

        impl std::str::FromStr for $name {
            type Err = ProtoError;
            fn from_str(text: &str) -> Result<Self, ProtoError> {
                Self::from_hex(text)
            }
        }
    };
}

byte_id!(
    /// A server: the BLAKE3 hash of its genesis entry.
    ServerId, 32, "server id"
);
byte_id!(
    /// A direct-message conversation between two users.
    DmId, 32, "dm id"
);
byte_id!(
    /// The space an entry belongs to: a [`ServerId`] or a [`DmId`].
    SpaceId, 32, "space id"
);
byte_id!(
    /// One log inside a space (the control log, a channel, a DM).
    LogId, 32, "log id"
);
byte_id!(
    /// BLAKE3 hash of an encoded `SignedEntry`; also the id of a message.
    EntryHash, 32, "entry hash"
);
byte_id!(
    /// The tag under which replicas file DMs for a recipient:
    /// derive_key("palaver/v1/inbox", recipient UserId).
    InboxTag, 32, "inbox tag"
);
byte_id!(
    /// A channel of a server (random).
    ChannelId, 16, "channel id"
);
byte_id!(
    /// An invite (random).
    InviteId, 16, "invite id"
);

const CHANNEL_LOG_CONTEXT: &str = "palaver/v1/channel-log";
const DM_CONTEXT: &str = "palaver/v1/dm";
const TOPIC_CONTEXT: &[u8] = b"palaver/v1/topic";
const INBOX_CONTEXT: &str = "palaver/v1/inbox";

impl InboxTag {
    /// The inbox tag of a user.
    pub fn of(user: &UserId) -> Self {
        Self(blake3::derive_key(INBOX_CONTEXT, user.as_bytes()))
    }
}

impl EntryHash {
    /// Hashes encoded `SignedEntry` bytes.
    pub fn of(signed_entry: &[u8]) -> Self {
        Self(*blake3::hash(signed_entry).as_bytes())
    }
}

impl ServerId {
    /// The log id of one of this server's channels.
    pub fn channel_log(&self, channel: &ChannelId) -> LogId {
        let mut hasher = blake3::Hasher::new_derive_key(CHANNEL_LOG_CONTEXT);
        hasher.update(&self.0);
        hasher.update(&channel.0);
        LogId(*hasher.finalize().as_bytes())
    }

    /// The gossipsub topic name of this server: lowercase hex of
    /// BLAKE3("palaver/v1/topic" || server_id), so the name leaks nothing.
    pub fn topic(&self) -> String {
        let mut hasher = blake3::Hasher::new();
        hasher.update(TOPIC_CONTEXT);
        hasher.update(&self.0);
        hex(hasher.finalize().as_bytes())
    }
}

impl DmId {
    /// The conversation between two users (the same whichever side asks).
    pub fn between(a: &UserId, b: &UserId) -> Self {
        let (low, high) = if a.as_bytes() <= b.as_bytes() {
            (a, b)
        } else {
            (b, a)
        };
        let mut hasher = blake3::Hasher::new_derive_key(DM_CONTEXT);
        hasher.update(low.as_bytes());
        hasher.update(high.as_bytes());
        Self(*hasher.finalize().as_bytes())
    }

    /// A DM conversation is a single log whose id equals the conversation id.
    pub fn log_id(&self) -> LogId {
        LogId(self.0)
    }
}

impl From<ServerId> for SpaceId {
    fn from(id: ServerId) -> Self {
        Self(id.0)
    }
}

impl From<DmId> for SpaceId {
    fn from(id: DmId) -> Self {
        Self(id.0)
    }
}

impl From<EntryHash> for ServerId {
    /// A server id is the hash of its genesis entry.
    fn from(hash: EntryHash) -> Self {
        Self(hash.0)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 128 {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let high = char::from(pair[0]).to_digit(16)?;
            let low = char::from(pair[1]).to_digit(16)?;
            u8::try_from(high * 16 + low).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let id = ServerId::from_bytes([0xab; 32]);
        assert_eq!(id.to_hex().len(), 64);
        assert_eq!(id.to_hex().parse::<ServerId>().unwrap(), id);
        assert!("zz".parse::<ServerId>().is_err());
        assert!("abcd".parse::<ServerId>().is_err());
        assert!(ChannelId::from_slice(&[1; 15]).is_err());
    }

    #[test]
    fn dm_id_is_the_same_from_both_sides() {
        let mut rng = rand::rng();
        let a = identity_core::Identity::generate(&mut rng).user_id();
        let b = identity_core::Identity::generate(&mut rng).user_id();
        let c = identity_core::Identity::generate(&mut rng).user_id();
        assert_eq!(DmId::between(&a, &b), DmId::between(&b, &a));
        assert_ne!(DmId::between(&a, &b), DmId::between(&a, &c));
        assert_eq!(
            DmId::between(&a, &b).log_id().as_bytes(),
            DmId::between(&a, &b).as_bytes()
        );
    }

    #[test]
    fn derivations_differ_by_input() {
        let server = ServerId::from_bytes([1; 32]);
        let other = ServerId::from_bytes([2; 32]);
        let channel = ChannelId::from_bytes([3; 16]);
        assert_ne!(server.channel_log(&channel), other.channel_log(&channel));
        assert_ne!(
            server.channel_log(&channel),
            server.channel_log(&ChannelId::from_bytes([4; 16]))
        );
        assert_ne!(server.topic(), other.topic());
        assert_eq!(server.topic().len(), 64);
    }
}
