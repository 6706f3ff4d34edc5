//! The encrypted identity file format (pure: bytes in, bytes out).
//!
//! The file holds the 32-byte Ed25519 seed encrypted with XChaCha20-Poly1305
//! under a key that comes either from Argon2id(passphrase) or from a random
//! [`WrapKey`] kept in the OS keyring. The public key is stored in clear so
//! the user id can be shown without unlocking. All integers are little-endian.
//!
//! ```text
//! offset  size  field
//!      0     8  magic b"PALAVERK"
//!      8     1  format version = 1
//!      9     1  protection: 1 = Argon2id passphrase, 2 = OS-keyring wrap key
//!     10    32  Ed25519 public key (the user id)
//!             — only when protection = 1 —
//!     42     4  Argon2id m_cost, memory in KiB (u32 LE)
//!     46     4  Argon2id t_cost, iterations (u32 LE)
//!     50     4  Argon2id p_cost, lanes (u32 LE)
//!     54    16  Argon2id salt
//!             — always —
//!      H    24  XChaCha20-Poly1305 nonce (H = 70 for protection 1, 42 for 2)
//!   H+24    48  ciphertext of the 32-byte seed + 16-byte Poly1305 tag;
//!               associated data = bytes 0..H (every header byte before the nonce)
//!   H+72    32  BLAKE3 checksum of bytes 0..H+72
//! ```
//!
//! A passphrase-protected file is 174 bytes long, a keyring-protected file
//! 146 bytes. Parsing checks, in order: magic ([`NotAKeyfile`]), version
//! ([`UnsupportedKeyfileVersion`]), protection byte
//! ([`UnsupportedKeyfileProtection`]), length ([`KeyfileTruncated`], or
//! [`KeyfileCorrupted`] for trailing bytes), checksum and public key
//! ([`KeyfileCorrupted`]), and Argon2id parameters ([`KdfParamsOutOfRange`],
//! before Argon2id ever runs). Unlocking then fails with [`WrongPassphrase`]
//! or [`WrongKeyringSecret`] when the AEAD tag does not verify, and with
//! [`KeyfileCorrupted`] if the decrypted seed does not belong to the stored
//! public key.
//!
//! The checksum is unkeyed: it tells accidental damage apart from a wrong
//! passphrase. Someone who edits the file on purpose can recompute it, and
//! such a file then reads as "wrong passphrase" — but the header is the
//! AEAD's associated data, so no edit to it or to the ciphertext can make the
//! file unlock to a different key, and the secret stays safe.
//!
//! [`NotAKeyfile`]: IdentityError::NotAKeyfile
//! [`UnsupportedKeyfileVersion`]: IdentityError::UnsupportedKeyfileVersion
//! [`UnsupportedKeyfileProtection`]: IdentityError::UnsupportedKeyfileProtection
//! [`KeyfileTruncated`]: IdentityError::KeyfileTruncated
//! [`KeyfileCorrupted`]: IdentityError::KeyfileCorrupted
//! [`KdfParamsOutOfRange`]: IdentityError::KdfParamsOutOfRange
//! [`WrongPassphrase`]: IdentityError::WrongPassphrase
//! [`WrongKeyringSecret`]: IdentityError::WrongKeyringSecret

use std::fmt;

use rand::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::IdentityError;
use crate::identity::Identity;
use crate::passphrase::{KdfParams, Passphrase, SALT_LEN, derive_key};
use crate::user_id::UserId;
use crate::xchacha::{self, KEY_LEN, NONCE_LEN, TAG_LEN};

/// The first 8 bytes of every identity file.
pub const KEYFILE_MAGIC: &[u8; 8] = b"PALAVERK";
/// The format version this crate writes and reads.
pub const KEYFILE_VERSION: u8 = 1;

const PROTECTION_PASSPHRASE: u8 = 1;
const PROTECTION_KEYRING: u8 = 2;

const SEED_LEN: usize = 32;
const PUBLIC_KEY_OFFSET: usize = KEYFILE_MAGIC.len() + 2;
/// Magic, version, protection, public key.
const COMMON_HEADER_LEN: usize = PUBLIC_KEY_OFFSET + 32;
/// m_cost, t_cost, p_cost, salt.
const KDF_FIELDS_LEN: usize = 3 * 4 + SALT_LEN;
const SEALED_SEED_LEN: usize = SEED_LEN + TAG_LEN;
const CHECKSUM_LEN: usize = 32;
/// Everything after the header.
const BODY_LEN: usize = NONCE_LEN + SEALED_SEED_LEN + CHECKSUM_LEN;
const PASSPHRASE_FILE_LEN: usize = COMMON_HEADER_LEN + KDF_FIELDS_LEN + BODY_LEN;
const KEYRING_FILE_LEN: usize = COMMON_HEADER_LEN + BODY_LEN;

/// How an identity file is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// With a key derived from a passphrase by Argon2id with these parameters.
    Passphrase(KdfParams),
    /// With a random [`WrapKey`] kept in the OS keyring.
    Keyring,
}

impl Protection {
    /// How the user would describe this protection ("a passphrase", "the OS keyring").
    fn described(&self) -> &'static str {
        match self {
            Protection::Passphrase(_) => "a passphrase",
            Protection::Keyring => "the OS keyring",
        }
    }
}

/// A random 32-byte key that encrypts an identity file and is itself kept in
/// the OS keyring.
///
/// Zeroized on drop; `Debug` is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct WrapKey([u8; KEY_LEN]);

impl WrapKey {
    /// A new random wrap key.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut key = WrapKey([0u8; KEY_LEN]);
        rng.fill_bytes(&mut key.0);
        key
    }

    /// Wraps raw key bytes (for example as read back from the keyring).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        WrapKey(bytes)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for WrapKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WrapKey(<redacted>)")
    }
}

/// A parsed identity file that is still locked.
///
/// Parsing needs no secret; it checks the structure, version and checksum and
/// exposes the user id and the protection.
#[derive(Clone)]
pub struct Keyfile {
    user_id: UserId,
    protection: Protection,
    /// The Argon2id salt (passphrase protection only).
    salt: Option<[u8; SALT_LEN]>,
    /// Every header byte before the nonce: the AEAD's associated data.
    header: Vec<u8>,
    nonce: [u8; NONCE_LEN],
    sealed_seed: [u8; SEALED_SEED_LEN],
}

impl Keyfile {
    /// Encrypts `identity` under a key derived from `passphrase` with
    /// Argon2id(`params`) and returns the identity file bytes.
    ///
    /// # Errors
    ///
    /// [`IdentityError::EmptyPassphrase`], [`IdentityError::KdfParamsOutOfRange`],
    /// or [`IdentityError::KeyDerivationFailed`] if Argon2id cannot run.
    pub fn seal_with_passphrase<R: CryptoRng + ?Sized>(
        rng: &mut R,
        identity: &Identity,
        passphrase: &Passphrase,
        params: KdfParams,
    ) -> Result<Vec<u8>, IdentityError> {
        if passphrase.is_empty() {
            return Err(IdentityError::EmptyPassphrase);
        }
        params.validate()?;
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let key = derive_key(passphrase, &salt, &params)?;
        Ok(encode(
            &identity.user_id(),
            Some((&params, &salt)),
            &nonce,
            &key,
            &identity.secret_bytes(),
        ))
    }

    /// Encrypts `identity` under `wrap_key` and returns the identity file
    /// bytes.
    pub fn seal_with_wrap_key<R: CryptoRng + ?Sized>(
        rng: &mut R,
        identity: &Identity,
        wrap_key: &WrapKey,
    ) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        encode(
            &identity.user_id(),
            None,
            &nonce,
            wrap_key.as_bytes(),
            &identity.secret_bytes(),
        )
    }

    /// Parses and checks an identity file without unlocking it.
    ///
    /// # Errors
    ///
    /// [`IdentityError::NotAKeyfile`], [`IdentityError::UnsupportedKeyfileVersion`],
    /// [`IdentityError::UnsupportedKeyfileProtection`],
    /// [`IdentityError::KeyfileTruncated`], [`IdentityError::KeyfileCorrupted`]
    /// or [`IdentityError::KdfParamsOutOfRange`] (see the module docs).
    pub fn parse(bytes: &[u8]) -> Result<Keyfile, IdentityError> {
        let magic_len = bytes.len().min(KEYFILE_MAGIC.len());
        if bytes[..magic_len] != KEYFILE_MAGIC[..magic_len] {
            return Err(IdentityError::NotAKeyfile);
        }
        let (Some(&version), Some(&protection)) = (
            bytes.get(KEYFILE_MAGIC.len()),
            bytes.get(KEYFILE_MAGIC.len() + 1),
        ) else {
            return Err(IdentityError::KeyfileTruncated {
                expected: KEYRING_FILE_LEN.min(PASSPHRASE_FILE_LEN),
                found: bytes.len(),
            });
        };
        if version != KEYFILE_VERSION {
            return Err(IdentityError::UnsupportedKeyfileVersion { found: version });
        }
        let expected = match protection {
            PROTECTION_PASSPHRASE => PASSPHRASE_FILE_LEN,
            PROTECTION_KEYRING => KEYRING_FILE_LEN,
            found => return Err(IdentityError::UnsupportedKeyfileProtection { found }),
        };
        if bytes.len() < expected {
            return Err(IdentityError::KeyfileTruncated {
                expected,
                found: bytes.len(),
            });
        }
        if bytes.len() > expected {
            return Err(IdentityError::KeyfileCorrupted {
                reason: "unexpected data after the checksum",
            });
        }
        let (content, checksum) = bytes.split_at(expected - CHECKSUM_LEN);
        if blake3::hash(content).as_bytes() != checksum {
            return Err(IdentityError::KeyfileCorrupted {
                reason: "checksum mismatch",
            });
        }

        let mut reader = Reader::new(content);
        let _magic_version_protection = reader.take::<PUBLIC_KEY_OFFSET>()?;
        let user_id = UserId::from_bytes(*reader.take::<32>()?).map_err(|_| {
            IdentityError::KeyfileCorrupted {
                reason: "the stored public key is not a valid user id",
            }
        })?;
        let (protection, salt) = if protection == PROTECTION_PASSPHRASE {
            let params = KdfParams {
                memory_kib: u32::from_le_bytes(*reader.take::<4>()?),
                iterations: u32::from_le_bytes(*reader.take::<4>()?),
                parallelism: u32::from_le_bytes(*reader.take::<4>()?),
            };
            params.validate()?;
            (
                Protection::Passphrase(params),
                Some(*reader.take::<SALT_LEN>()?),
            )
        } else {
            (Protection::Keyring, None)
        };
        let header = content[..reader.position].to_vec();
        let nonce = *reader.take::<NONCE_LEN>()?;
        let sealed_seed = *reader.take::<SEALED_SEED_LEN>()?;
        Ok(Keyfile {
            user_id,
            protection,
            salt,
            header,
            nonce,
            sealed_seed,
        })
    }

    /// The user id stored in clear in the header.
    pub fn user_id(&self) -> UserId {
        self.user_id
    }

    /// How this file is locked.
    pub fn protection(&self) -> &Protection {
        &self.protection
    }

    /// Unlocks a passphrase-protected file.
    ///
    /// # Errors
    ///
    /// [`IdentityError::KeyfileProtectionMismatch`] for a keyring-protected
    /// file, [`IdentityError::WrongPassphrase`], [`IdentityError::KeyfileCorrupted`]
    /// if the seed does not match the stored public key, or
    /// [`IdentityError::KeyDerivationFailed`].
    pub fn unlock_with_passphrase(
        &self,
        passphrase: &Passphrase,
    ) -> Result<Identity, IdentityError> {
        let (Protection::Passphrase(params), Some(salt)) = (&self.protection, &self.salt) else {
            return Err(self.mismatch());
        };
        let key = derive_key(passphrase, salt, params)?;
        let seed = xchacha::decrypt(&key, &self.nonce, &self.sealed_seed, &self.header)
            .ok_or(IdentityError::WrongPassphrase)?;
        self.identity_from_seed(&seed)
    }

    /// Unlocks a keyring-protected file with the wrap key from the keyring.
    ///
    /// # Errors
    ///
    /// [`IdentityError::KeyfileProtectionMismatch`] for a passphrase-protected
    /// file, [`IdentityError::WrongKeyringSecret`], or
    /// [`IdentityError::KeyfileCorrupted`] if the seed does not match the
    /// stored public key.
    pub fn unlock_with_wrap_key(&self, wrap_key: &WrapKey) -> Result<Identity, IdentityError> {
        if self.protection != Protection::Keyring {
            return Err(self.mismatch());
        }
        let seed = xchacha::decrypt(
            wrap_key.as_bytes(),
            &self.nonce,
            &self.sealed_seed,
            &self.header,
        )
        .ok_or(IdentityError::WrongKeyringSecret)?;
        self.identity_from_seed(&seed)
    }

    /// The error for unlocking this file the wrong way.
    pub(crate) fn mismatch(&self) -> IdentityError {
        IdentityError::KeyfileProtectionMismatch {
            locked_with: self.protection.described(),
        }
    }

    fn identity_from_seed(&self, seed: &Zeroizing<Vec<u8>>) -> Result<Identity, IdentityError> {
        let seed: &[u8; SEED_LEN] =
            seed.as_slice()
                .try_into()
                .map_err(|_| IdentityError::KeyfileCorrupted {
                    reason: "the decrypted key has the wrong length",
                })?;
        let identity = Identity::from_secret_bytes(seed);
        if identity.user_id() != self.user_id {
            return Err(IdentityError::KeyfileCorrupted {
                reason: "the decrypted key does not match the stored public key",
            });
        }
        Ok(identity)
    }
}

impl fmt::Debug for Keyfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyfile")
            .field("user_id", &format_args!("{}", self.user_id))
            .field("protection", &self.protection)
            .finish_non_exhaustive()
    }
}

/// Builds the file bytes; `kdf` is `Some` for passphrase protection.
fn encode(
    user_id: &UserId,
    kdf: Option<(&KdfParams, &[u8; SALT_LEN])>,
    nonce: &[u8; NONCE_LEN],
    key: &[u8; KEY_LEN],
    seed: &[u8; SEED_LEN],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(PASSPHRASE_FILE_LEN);
    out.extend_from_slice(KEYFILE_MAGIC);
    out.push(KEYFILE_VERSION);
    out.push(match kdf {
        Some(_) => PROTECTION_PASSPHRASE,
        None => PROTECTION_KEYRING,
    });
    out.extend_from_slice(user_id.as_bytes());
    if let Some((params, salt)) = kdf {
        out.extend_from_slice(&params.memory_kib.to_le_bytes());
        out.extend_from_slice(&params.iterations.to_le_bytes());
        out.extend_from_slice(&params.parallelism.to_le_bytes());
        out.extend_from_slice(salt);
    }
    let sealed_seed = xchacha::encrypt(key, nonce, seed, &out);
    out.extend_from_slice(nonce);
    out.extend_from_slice(&sealed_seed);
    let checksum = blake3::hash(&out);
    out.extend_from_slice(checksum.as_bytes());
    out
}

/// Reads fixed-size fields from a buffer whose length was checked up front.
struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, position: 0 }
    }

    /// The next `N` bytes. Lengths are checked before any field is read, so
    /// running out means the layout constants are inconsistent.
    fn take<const N: usize>(&mut self) -> Result<&'a [u8; N], IdentityError> {
        let field = self
            .bytes
            .get(self.position..)
            .and_then(<[u8]>::first_chunk::<N>)
            .ok_or(IdentityError::KeyfileTruncated {
                expected: self.position + N,
                found: self.bytes.len(),
            })?;
        self.position += N;
        Ok(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn layout_lengths_match_the_documented_format() {
        assert_eq!(PASSPHRASE_FILE_LEN, 174);
        assert_eq!(KEYRING_FILE_LEN, 146);
        let mut rng = StdRng::seed_from_u64(1);
        let identity = Identity::generate(&mut rng);
        let params = KdfParams::for_tests();
        let file =
            Keyfile::seal_with_passphrase(&mut rng, &identity, &Passphrase::new("pw"), params)
                .unwrap();
        assert_eq!(file.len(), PASSPHRASE_FILE_LEN);
        assert_eq!(&file[..8], b"PALAVERK");
        assert_eq!(file[8], 1);
        assert_eq!(file[9], 1);
        assert_eq!(&file[10..42], identity.user_id().as_bytes());
        assert_eq!(file[42..46], params.memory_kib.to_le_bytes());
        assert_eq!(file[46..50], params.iterations.to_le_bytes());
        assert_eq!(file[50..54], params.parallelism.to_le_bytes());
        assert_eq!(
            &file[142..],
            blake3::hash(&file[..142]).as_bytes().as_slice()
        );

        let wrap = WrapKey::generate(&mut rng);
        let file = Keyfile::seal_with_wrap_key(&mut rng, &identity, &wrap);
        assert_eq!(file.len(), KEYRING_FILE_LEN);
        assert_eq!(file[9], 2);
        assert_eq!(&file[10..42], identity.user_id().as_bytes());
        // The seed is encrypted with the wrap key under the header as AAD.
        let seed = xchacha::decrypt(
            wrap.as_bytes(),
            file[42..66].try_into().unwrap(),
            &file[66..114],
            &file[..42],
        )
        .unwrap();
        assert_eq!(seed.as_slice(), identity.secret_bytes().as_slice());
    }

    /// A file whose ciphertext decrypts fine but holds another identity's
    /// seed must not unlock as the identity named in its header.
    #[test]
    fn seed_that_does_not_match_the_public_key_is_corruption() {
        let mut rng = StdRng::seed_from_u64(2);
        let named = Identity::generate(&mut rng);
        let actual = Identity::generate(&mut rng);
        let wrap = WrapKey::generate(&mut rng);
        let bytes = encode(
            &named.user_id(),
            None,
            &[7; NONCE_LEN],
            wrap.as_bytes(),
            &actual.secret_bytes(),
        );
        let keyfile = Keyfile::parse(&bytes).unwrap();
        assert_eq!(keyfile.user_id(), named.user_id());
        let err = keyfile.unlock_with_wrap_key(&wrap).unwrap_err();
        assert!(
            matches!(err, IdentityError::KeyfileCorrupted { reason } if reason.contains("public key")),
            "{err:?}"
        );
    }
}
