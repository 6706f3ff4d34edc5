//! The one error type of this crate.

/// Why bytes or a value were refused. Each variant is one rule; [`code`]
/// gives a stable machine-readable string for it.
///
/// [`code`]: ProtoError::code
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// An encoded value is over its size limit (checked before decoding).
    #[error("{what} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The bytes are not a valid protobuf encoding of the expected message.
    #[error("could not decode {what}: {reason}")]
    Decode {
        /// The message that was expected.
        what: &'static str,
        /// The decoder's explanation.
        reason: String,
    },
    /// A required field is absent or empty.
    #[error("{what} is missing")]
    MissingField {
        /// The field.
        what: &'static str,
    },
    /// A fixed-size field has the wrong length.
    #[error("{what} must be {expected} bytes, found {found}")]
    InvalidLength {
        /// The field.
        what: &'static str,
        /// The required length.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// A repeated field has more items than allowed.
    #[error("{what} has {count} items, over the limit of {limit}")]
    TooMany {
        /// The field.
        what: &'static str,
        /// How many items it has.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A text field is longer than allowed.
    #[error("{what} is {count} characters, over the limit of {limit}")]
    TextTooLong {
        /// The field.
        what: &'static str,
        /// Its length in characters (Unicode scalar values).
        count: usize,
        /// The limit in characters.
        limit: usize,
    },
    /// A number is outside its allowed range.
    #[error("{what} is {value}, outside {min}..={max}")]
    OutOfRange {
        /// The field.
        what: &'static str,
        /// The value found.
        value: u64,
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// An enum field holds a value this version does not know.
    #[error("{what} has unknown value {value}")]
    UnknownEnumValue {
        /// The field.
        what: &'static str,
        /// The value found.
        value: i32,
    },
    /// The message carries a format version this build does not read.
    #[error("{what} has unsupported version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        /// The message.
        what: &'static str,
        /// The version found.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A public key is not a valid Ed25519 key.
    #[error("{what} is not a valid Ed25519 public key")]
    InvalidKey {
        /// The field.
        what: &'static str,
    },
    /// A multiaddr could not be parsed.
    #[error("{what} is not a valid multiaddr: {addr:?}")]
    InvalidAddress {
        /// The field.
        what: &'static str,
        /// The text found (already bounded in length).
        addr: String,
    },
    /// An entry's `seq` is 0.
    #[error("entry seq must be at least 1")]
    ZeroSeq,
    /// The first entry of a feed carries a backlink.
    #[error("entry seq 1 must not have a backlink")]
    UnexpectedBacklink,
    /// A later entry of a feed has no backlink.
    #[error("entry seq {seq} must have a backlink")]
    MissingBacklink {
        /// The entry's seq.
        seq: u64,
    },
    /// An entry without a space id (a server genesis) is not seq 1.
    #[error("an entry without a space id is a server genesis and must be seq 1")]
    GenesisNotFirst,
    /// The lamport clock is 0.
    #[error("entry lamport must be at least 1")]
    ZeroLamport,
    /// The nonce does not match the entry's encryption mode.
    #[error("an entry with key epoch {key_epoch} must have {expected}")]
    NonceMismatch {
        /// The entry's key epoch.
        key_epoch: u32,
        /// What the nonce should have been.
        expected: &'static str,
    },
    /// A signature does not verify under the claimed key.
    #[error("the {what} signature does not verify")]
    BadSignature {
        /// What was signed.
        what: &'static str,
    },
    /// The payload could not be decrypted (wrong key or tampered bytes).
    #[error("the payload could not be decrypted (wrong key or tampered entry)")]
    DecryptFailed,
    /// A payload was opened with the key of another epoch.
    #[error("the entry is encrypted under key epoch {entry_epoch}, not {key_epoch}")]
    WrongKeyEpoch {
        /// The entry's epoch.
        entry_epoch: u32,
        /// The epoch of the key offered.
        key_epoch: u32,
    },
    /// Something other than key distribution was to travel unencrypted.
    #[error("only key rotation and key grant events may be sent unencrypted")]
    PlaintextNotAllowed,
    /// An encrypted entry was read as if it were unencrypted.
    #[error("the entry is encrypted under key epoch {key_epoch}")]
    NotPlaintext {
        /// The entry's epoch.
        key_epoch: u32,
    },
    /// An advert's server id is not the hash of its genesis, or not the one asked for.
    #[error("the advert's server id does not match its genesis or the requested server")]
    AdvertServerMismatch,
    /// An advert is signed by someone other than the server's owner.
    #[error("the advert is not signed by the server's owner")]
    AdvertNotByOwner,
    /// An advert's genesis entry is not a server genesis.
    #[error("the advert's genesis is not a server genesis entry")]
    AdvertBadGenesis,
    /// An advert has expired.
    #[error("the advert expired at {expires_at_ms} (now {now_ms})")]
    AdvertExpired {
        /// When it expired, ms since the Unix epoch.
        expires_at_ms: u64,
        /// The verifier's clock.
        now_ms: u64,
    },
    /// An advert claims to stay valid for longer than allowed.
    #[error(
        "the advert's expiry is too far in the future (more than 7 days and the clock tolerance from now by this computer's clock: is it behind?)"
    )]
    AdvertExpiryTooFar,
}

impl ProtoError {
    /// A stable machine-readable code for this error, e.g. `proto.too_large`.
    /// Codes are only ever added, never renamed.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "proto.too_large",
            Self::Decode { .. } => "proto.decode",
            Self::MissingField { .. } => "proto.missing_field",
            Self::InvalidLength { .. } => "proto.invalid_length",
            Self::TooMany { .. } => "proto.too_many",
            Self::TextTooLong { .. } => "proto.text_too_long",
            Self::OutOfRange { .. } => "proto.out_of_range",
            Self::UnknownEnumValue { .. } => "proto.unknown_enum_value",
            Self::UnsupportedVersion { .. } => "proto.unsupported_version",
            Self::InvalidKey { .. } => "proto.invalid_key",
            Self::InvalidAddress { .. } => "proto.invalid_address",
            Self::ZeroSeq => "entry.zero_seq",
            Self::UnexpectedBacklink => "entry.unexpected_backlink",
            Self::MissingBacklink { .. } => "entry.missing_backlink",
            Self::GenesisNotFirst => "entry.genesis_not_first",
            Self::ZeroLamport => "entry.zero_lamport",
            Self::NonceMismatch { .. } => "entry.nonce_mismatch",
            Self::BadSignature { .. } => "crypto.bad_signature",
            Self::DecryptFailed => "crypto.decrypt_failed",
            Self::WrongKeyEpoch { .. } => "crypto.wrong_key_epoch",
            Self::PlaintextNotAllowed => "entry.plaintext_not_allowed",
            Self::NotPlaintext { .. } => "entry.not_plaintext",
            Self::AdvertServerMismatch => "advert.server_mismatch",
            Self::AdvertNotByOwner => "advert.not_by_owner",
            Self::AdvertBadGenesis => "advert.bad_genesis",
            Self::AdvertExpired { .. } => "advert.expired",
            Self::AdvertExpiryTooFar => "advert.expiry_too_far",
        }
    }

    /// True for failures of cryptography (signatures, decryption) rather than
    /// of shape or limits.
    pub fn is_crypto(&self) -> bool {
        matches!(
            self,
            Self::BadSignature { .. } | Self::DecryptFailed | Self::WrongKeyEpoch { .. }
        )
    }

    pub(crate) fn decode(what: &'static str, err: prost::DecodeError) -> Self {
        Self::Decode {
            what,
            reason: err.to_string(),
        }
    }
}
