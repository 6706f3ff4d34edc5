//! The crate's single error type.
//!
//! Every failure rule has its own [`IdentityError`] variant, a stable
//! machine-readable [`code`](IdentityError::code) (`identity.<rule>`, only ever
//! added, never renamed) and an [`ErrorCategory`]. Callers match on the variant
//! or the code, never on the `Display` text, which is written for end users.

use std::path::PathBuf;

/// The broad class of an [`IdentityError`], used by the node to group errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    /// A problem with an identity: an identity file that cannot be read or
    /// unlocked, or a malformed user id.
    Identity,
    /// A cryptographic check failed: a signature, a sealed box, a key exchange.
    Crypto,
    /// Reading or writing the identity file failed (an I/O error).
    Storage,
    /// The environment offers no usable way to protect the secret key.
    Config,
}

impl ErrorCategory {
    /// The stable lower-case name of the category (`identity`, `crypto`,
    /// `storage`, `config`).
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorCategory::Identity => "identity",
            ErrorCategory::Crypto => "crypto",
            ErrorCategory::Storage => "storage",
            ErrorCategory::Config => "config",
        }
    }
}

impl std::fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every way an operation of this crate can fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    // ---- user ids and peer ids -------------------------------------------
    /// A user id was not exactly 32 bytes long.
    #[error("a user id must be 32 bytes long, found {found}")]
    InvalidUserIdLength {
        /// The length that was given.
        found: usize,
    },
    /// The 32 bytes are not the canonical encoding of a point on Ed25519.
    #[error("the user id is not a valid Ed25519 public key")]
    InvalidPublicKey,
    /// The public key is a point of small order, which would let anyone forge
    /// signatures for it.
    #[error("the user id is a weak (small-order) Ed25519 key and cannot be used")]
    WeakPublicKey,
    /// A peer id string or byte encoding could not be parsed.
    #[error("not a valid peer id: {reason}")]
    InvalidPeerId {
        /// What was wrong with it.
        reason: String,
    },
    /// The peer id is valid but does not embed an Ed25519 public key.
    #[error("the peer id does not contain an Ed25519 public key, so it is not a Palaver user id")]
    NotEd25519PeerId,

    // ---- signatures, key exchange, sealed boxes --------------------------
    /// A signature was not exactly 64 bytes long.
    #[error("a signature must be 64 bytes long, found {found}")]
    InvalidSignatureLength {
        /// The length that was given.
        found: usize,
    },
    /// The signature does not match the message, context and signer.
    #[error("the signature is not valid for this message and signer")]
    BadSignature,
    /// The X25519 exchange produced the all-zero secret (a small-order key
    /// was involved), so it would not be secret.
    #[error("the key exchange was not contributory (a weak public key was involved)")]
    NonContributoryKeyExchange,
    /// A sealed box is shorter than its fixed overhead.
    #[error("the sealed box is malformed: {len} bytes is shorter than the minimum of {min} bytes")]
    SealedBoxMalformed {
        /// The length that was given.
        len: usize,
        /// The minimum length of a sealed box (its overhead).
        min: usize,
    },
    /// A sealed box could not be opened: it was sealed to someone else, was
    /// modified, or the associated data differs.
    #[error("the sealed box could not be opened (it is addressed to someone else or was modified)")]
    SealedBoxOpenFailed,

    // ---- passphrases and key derivation ----------------------------------
    /// An empty passphrase was given where one is required.
    #[error("the passphrase is empty; choose a non-empty passphrase")]
    EmptyPassphrase,
    /// Argon2id parameters outside the accepted range (from a caller or read
    /// from an identity file).
    #[error(
        "the key-derivation setting `{param}` = {value} is outside the allowed range {min}..={max}"
    )]
    KdfParamsOutOfRange {
        /// Which parameter (`memory_kib`, `iterations` or `parallelism`).
        param: &'static str,
        /// The rejected value.
        value: u32,
        /// The smallest accepted value.
        min: u32,
        /// The largest accepted value.
        max: u32,
    },
    /// Argon2id itself failed (for example it could not allocate its memory).
    #[error("deriving the key from the passphrase failed: {reason}")]
    KeyDerivationFailed {
        /// The reason given by Argon2.
        reason: String,
    },

    // ---- identity file ---------------------------------------------------
    /// The file does not start with the identity-file magic bytes.
    #[error("this is not a Palaver identity file")]
    NotAKeyfile,
    /// The identity file was written by a newer (or unknown) format version.
    #[error(
        "the identity file has format version {found}, which this version of Palaver cannot read"
    )]
    UnsupportedKeyfileVersion {
        /// The version byte found in the file.
        found: u8,
    },
    /// The identity file names a protection method this version does not know.
    #[error("the identity file uses an unknown protection method ({found})")]
    UnsupportedKeyfileProtection {
        /// The protection byte found in the file.
        found: u8,
    },
    /// The identity file is shorter than its layout requires.
    #[error("the identity file is truncated (expected at least {expected} bytes, found {found})")]
    KeyfileTruncated {
        /// The number of bytes the layout requires.
        expected: usize,
        /// The number of bytes present.
        found: usize,
    },
    /// The identity file fails its integrity checks.
    #[error("the identity file is damaged or was modified ({reason})")]
    KeyfileCorrupted {
        /// Which check failed.
        reason: &'static str,
    },
    /// The passphrase does not unlock the identity file.
    #[error("wrong passphrase: the identity file could not be unlocked")]
    WrongPassphrase,
    /// The secret from the OS keyring does not unlock the identity file.
    #[error("the secret stored in the OS keyring does not unlock the identity file")]
    WrongKeyringSecret,
    /// The identity file is protected differently from the way it was being
    /// unlocked.
    #[error("the identity file is locked with {locked_with}; unlock it that way instead")]
    KeyfileProtectionMismatch {
        /// How the file is actually protected ("a passphrase" or "the OS keyring").
        locked_with: &'static str,
    },

    // ---- key store (file and OS keyring) ---------------------------------
    /// There is no identity file yet.
    #[error("no identity found at {}; create one first", path.display())]
    IdentityNotFound {
        /// Where the identity file was expected.
        path: PathBuf,
    },
    /// An identity file already exists and will not be overwritten.
    #[error("an identity already exists at {}; refusing to overwrite it", path.display())]
    IdentityExists {
        /// The existing identity file.
        path: PathBuf,
    },
    /// Reading or writing a file failed.
    #[error("could not read or write {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The OS keyring cannot be used.
    #[error("the OS keyring is not available: {reason}")]
    KeyringUnavailable {
        /// The underlying reason reported by the keyring.
        reason: String,
    },
    /// The identity file is protected by the OS keyring, but the keyring holds
    /// no secret for it.
    #[error(
        "the OS keyring holds no secret for this identity; the identity file cannot be unlocked on this account"
    )]
    KeyringSecretMissing,
    /// Neither a passphrase nor a working OS keyring is available, and the
    /// secret key is never stored unencrypted.
    #[error(
        "no OS keyring is available and no passphrase was given; set PALAVER_PASSPHRASE or use --passphrase-file"
    )]
    NoKeyProtection,
}

impl IdentityError {
    /// The stable machine-readable code of this error, e.g.
    /// `identity.wrong_passphrase`. Codes are only ever added, never renamed.
    pub fn code(&self) -> &'static str {
        match self {
            IdentityError::InvalidUserIdLength { .. } => "identity.invalid_user_id_length",
            IdentityError::InvalidPublicKey => "identity.invalid_public_key",
            IdentityError::WeakPublicKey => "identity.weak_public_key",
            IdentityError::InvalidPeerId { .. } => "identity.invalid_peer_id",
            IdentityError::NotEd25519PeerId => "identity.not_ed25519_peer_id",
            IdentityError::InvalidSignatureLength { .. } => "identity.invalid_signature_length",
            IdentityError::BadSignature => "identity.bad_signature",
            IdentityError::NonContributoryKeyExchange => "identity.non_contributory_key_exchange",
            IdentityError::SealedBoxMalformed { .. } => "identity.sealed_box_malformed",
            IdentityError::SealedBoxOpenFailed => "identity.sealed_box_open_failed",
            IdentityError::EmptyPassphrase => "identity.empty_passphrase",
            IdentityError::KdfParamsOutOfRange { .. } => "identity.kdf_params_out_of_range",
            IdentityError::KeyDerivationFailed { .. } => "identity.key_derivation_failed",
            IdentityError::NotAKeyfile => "identity.not_a_keyfile",
            IdentityError::UnsupportedKeyfileVersion { .. } => {
                "identity.unsupported_keyfile_version"
            }
            IdentityError::UnsupportedKeyfileProtection { .. } => {
                "identity.unsupported_keyfile_protection"
            }
            IdentityError::KeyfileTruncated { .. } => "identity.keyfile_truncated",
            IdentityError::KeyfileCorrupted { .. } => "identity.keyfile_corrupted",
            IdentityError::WrongPassphrase => "identity.wrong_passphrase",
            IdentityError::WrongKeyringSecret => "identity.wrong_keyring_secret",
            IdentityError::KeyfileProtectionMismatch { .. } => {
                "identity.keyfile_protection_mismatch"
            }
            IdentityError::IdentityNotFound { .. } => "identity.not_found",
            IdentityError::IdentityExists { .. } => "identity.already_exists",
            IdentityError::Io { .. } => "identity.io",
            IdentityError::KeyringUnavailable { .. } => "identity.keyring_unavailable",
            IdentityError::KeyringSecretMissing => "identity.keyring_secret_missing",
            IdentityError::NoKeyProtection => "identity.no_key_protection",
        }
    }

    /// The category of this error.
    pub fn category(&self) -> ErrorCategory {
        match self {
            IdentityError::InvalidUserIdLength { .. }
            | IdentityError::InvalidPublicKey
            | IdentityError::WeakPublicKey
            | IdentityError::InvalidPeerId { .. }
            | IdentityError::NotEd25519PeerId
            | IdentityError::KdfParamsOutOfRange { .. }
            | IdentityError::NotAKeyfile
            | IdentityError::UnsupportedKeyfileVersion { .. }
            | IdentityError::UnsupportedKeyfileProtection { .. }
            | IdentityError::KeyfileTruncated { .. }
            | IdentityError::KeyfileCorrupted { .. }
            | IdentityError::WrongPassphrase
            | IdentityError::WrongKeyringSecret
            | IdentityError::KeyfileProtectionMismatch { .. }
            | IdentityError::IdentityNotFound { .. }
            | IdentityError::IdentityExists { .. }
            | IdentityError::KeyringSecretMissing => ErrorCategory::Identity,
            IdentityError::InvalidSignatureLength { .. }
            | IdentityError::BadSignature
            | IdentityError::NonContributoryKeyExchange
            | IdentityError::SealedBoxMalformed { .. }
            | IdentityError::SealedBoxOpenFailed
            | IdentityError::KeyDerivationFailed { .. } => ErrorCategory::Crypto,
            IdentityError::Io { .. } => ErrorCategory::Storage,
            IdentityError::EmptyPassphrase
            | IdentityError::KeyringUnavailable { .. }
            | IdentityError::NoKeyProtection => ErrorCategory::Config,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// One value of every variant; the exhaustive `match` makes adding a
    /// variant without listing it here a compile error.
    fn all_variants() -> Vec<IdentityError> {
        let all = vec![
            IdentityError::InvalidUserIdLength { found: 3 },
            IdentityError::InvalidPublicKey,
            IdentityError::WeakPublicKey,
            IdentityError::InvalidPeerId { reason: "x".into() },
            IdentityError::NotEd25519PeerId,
            IdentityError::InvalidSignatureLength { found: 3 },
            IdentityError::BadSignature,
            IdentityError::NonContributoryKeyExchange,
            IdentityError::SealedBoxMalformed { len: 3, min: 48 },
            IdentityError::SealedBoxOpenFailed,
            IdentityError::EmptyPassphrase,
            IdentityError::KdfParamsOutOfRange {
                param: "iterations",
                value: 0,
                min: 1,
                max: 64,
            },
            IdentityError::KeyDerivationFailed { reason: "x".into() },
            IdentityError::NotAKeyfile,
            IdentityError::UnsupportedKeyfileVersion { found: 9 },
            IdentityError::UnsupportedKeyfileProtection { found: 9 },
            IdentityError::KeyfileTruncated {
                expected: 146,
                found: 3,
            },
            IdentityError::KeyfileCorrupted {
                reason: "checksum mismatch",
            },
            IdentityError::WrongPassphrase,
            IdentityError::WrongKeyringSecret,
            IdentityError::KeyfileProtectionMismatch {
                locked_with: "a passphrase",
            },
            IdentityError::IdentityNotFound { path: "p".into() },
            IdentityError::IdentityExists { path: "p".into() },
            IdentityError::Io {
                path: "p".into(),
                source: std::io::Error::other("boom"),
            },
            IdentityError::KeyringUnavailable { reason: "x".into() },
            IdentityError::KeyringSecretMissing,
            IdentityError::NoKeyProtection,
        ];
        for e in &all {
            // Compile-time reminder: keep `all` in sync with the enum.
            match e {
                IdentityError::InvalidUserIdLength { .. }
                | IdentityError::InvalidPublicKey
                | IdentityError::WeakPublicKey
                | IdentityError::InvalidPeerId { .. }
                | IdentityError::NotEd25519PeerId
                | IdentityError::InvalidSignatureLength { .. }
                | IdentityError::BadSignature
                | IdentityError::NonContributoryKeyExchange
                | IdentityError::SealedBoxMalformed { .. }
                | IdentityError::SealedBoxOpenFailed
                | IdentityError::EmptyPassphrase
                | IdentityError::KdfParamsOutOfRange { .. }
                | IdentityError::KeyDerivationFailed { .. }
                | IdentityError::NotAKeyfile
                | IdentityError::UnsupportedKeyfileVersion { .. }
                | IdentityError::UnsupportedKeyfileProtection { .. }
                | IdentityError::KeyfileTruncated { .. }
                | IdentityError::KeyfileCorrupted { .. }
                | IdentityError::WrongPassphrase
                | IdentityError::WrongKeyringSecret
                | IdentityError::KeyfileProtectionMismatch { .. }
                | IdentityError::IdentityNotFound { .. }
                | IdentityError::IdentityExists { .. }
                | IdentityError::Io { .. }
                | IdentityError::KeyringUnavailable { .. }
                | IdentityError::KeyringSecretMissing
                | IdentityError::NoKeyProtection => {}
            }
        }
        all
    }

    #[test]
    fn error_can_cross_threads() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<IdentityError>();
    }

    #[test]
    fn codes_are_unique_and_namespaced() {
        let all = all_variants();
        let codes: HashSet<&str> = all.iter().map(IdentityError::code).collect();
        assert_eq!(codes.len(), all.len(), "two variants share a code");
        for code in codes {
            let rule = code.strip_prefix("identity.").unwrap();
            assert!(
                !rule.is_empty()
                    && rule
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()),
                "bad code {code}"
            );
        }
    }

    #[test]
    fn messages_are_not_empty_and_categories_are_stable() {
        let names = ["identity", "crypto", "storage", "config"];
        for e in all_variants() {
            assert!(!e.to_string().is_empty());
            assert!(names.contains(&e.category().as_str()), "{e:?}");
        }
        assert_eq!(
            IdentityError::WrongPassphrase.to_string(),
            "wrong passphrase: the identity file could not be unlocked"
        );
        assert_eq!(
            IdentityError::KeyfileTruncated {
                expected: 146,
                found: 10
            }
            .to_string(),
            "the identity file is truncated (expected at least 146 bytes, found 10)"
        );
        assert_eq!(
            IdentityError::NoKeyProtection.category(),
            ErrorCategory::Config
        );
        assert_eq!(
            IdentityError::Io {
                path: "p".into(),
                source: std::io::Error::other("boom")
            }
            .category(),
            ErrorCategory::Storage
        );
        assert_eq!(
            IdentityError::BadSignature.category(),
            ErrorCategory::Crypto
        );
        assert_eq!(
            IdentityError::WrongPassphrase.category(),
            ErrorCategory::Identity
        );
        assert_eq!(ErrorCategory::Config.to_string(), "config");
    }
}
