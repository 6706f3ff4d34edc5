//! Private records: small key/value data that reveals what the node knows
//! (group keys, transaction ids, edit and reaction indexes, unread counts),
//! encrypted at rest under the identity's [`StorageKey`].
//!
//! Two subkeys come from the storage key with BLAKE3 `derive_key`: a MAC
//! key (context `palaver/v1/ledger-private-mac`) and an encryption key
//! (`palaver/v1/ledger-private-enc`). A record is stored under
//! `0x08 ‖ tag(namespace) ‖ mac(namespace ‖ 0x00 ‖ key)`, where `tag` is
//! keyed BLAKE3 truncated to 16 bytes and `mac` is the full 32-byte keyed
//! BLAKE3, so neither namespace names nor keys appear on disk while a
//! namespace is still one contiguous prefix to scan. The value is a random
//! 24-byte nonce followed by XChaCha20-Poly1305 of
//! `key length (u32 BE) ‖ key ‖ value`, with the whole stored key as
//! associated data: a record cannot be moved to another key unnoticed, and
//! a scan gets the original keys back.
//!
//! On first open the ledger stores a check record encrypted the same way;
//! opening with another storage key fails that check, and every private
//! operation then fails with [`LedgerError::PrivateDecryptFailed`] rather
//! than quietly seeing an empty store.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{AeadInOut, KeyInit, XChaCha20Poly1305, XNonce};
use identity_core::StorageKey;
use rand::Rng;
use zeroize::Zeroizing;

use crate::error::LedgerError;
use crate::group_commit::Durable;
use crate::keys;

/// Longest namespace name, in bytes.
pub const MAX_NAMESPACE_BYTES: usize = 128;
/// Longest private key, in bytes.
pub const MAX_PRIVATE_KEY_BYTES: usize = 1_024;
/// Largest private value, in bytes.
pub const MAX_PRIVATE_VALUE_BYTES: usize = 1024 * 1024;
/// Most records [`PrivateStore::scan_private`] returns; a larger namespace
/// fails with [`LedgerError::ResultTooLarge`].
pub const MAX_PRIVATE_SCAN: usize = 16_384;

const MAC_CONTEXT: &str = "palaver/v1/ledger-private-mac";
const ENC_CONTEXT: &str = "palaver/v1/ledger-private-enc";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const CHECK_PLAINTEXT: &[u8] = b"palaver ledger private key check v1";

/// A private value, wiped from memory when dropped.
pub type PrivateValue = Zeroizing<Vec<u8>>;

/// A (key, value) pair returned by [`PrivateStore::scan_private`].
pub type PrivatePair = (Vec<u8>, PrivateValue);

/// Encrypted key/value storage for the node's private data.
pub trait PrivateStore: Send + Sync {
    /// Stores `value` under `key` in `namespace`, replacing any previous
    /// value; the ticket resolves when the write is durable.
    ///
    /// # Errors
    /// [`LedgerError::PrivateTooLarge`], [`LedgerError::PrivateDecryptFailed`]
    /// if the ledger was opened with the wrong storage key, storage errors.
    fn put_private(
        &self,
        namespace: &str,
        key: &[u8],
        value: &[u8],
    ) -> Result<Durable, LedgerError>;

    /// Stores `value` under `key` in `namespace` unless the key holds a
    /// value already: `Some(ticket)` if it was stored (the ticket resolves
    /// when the write is durable), `None` if the key was taken (nothing
    /// changes). One lookup instead of a read and a write.
    ///
    /// # Errors
    /// As [`PrivateStore::put_private`].
    fn put_private_if_absent(
        &self,
        namespace: &str,
        key: &[u8],
        value: &[u8],
    ) -> Result<Option<Durable>, LedgerError>;

    /// The value under `key` in `namespace`, if any.
    ///
    /// # Errors
    /// [`LedgerError::PrivateDecryptFailed`] for a wrong storage key or a
    /// damaged value, storage errors.
    fn get_private(
        &self,
        namespace: &str,
        key: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, LedgerError>;

    /// Removes `key` from `namespace` (nothing happens if it is absent).
    ///
    /// # Errors
    /// As [`PrivateStore::put_private`].
    fn delete_private(&self, namespace: &str, key: &[u8]) -> Result<Durable, LedgerError>;

    /// Every (key, value) pair of `namespace`, in no particular order.
    ///
    /// # Errors
    /// [`LedgerError::ResultTooLarge`] past [`MAX_PRIVATE_SCAN`] records,
    /// [`LedgerError::PrivateDecryptFailed`], storage errors.
    fn scan_private(&self, namespace: &str) -> Result<Vec<PrivatePair>, LedgerError>;
}

/// The keys that protect private records.
pub(crate) struct PrivateCipher {
    mac_key: Zeroizing<[u8; 32]>,
    cipher: XChaCha20Poly1305,
}

impl PrivateCipher {
    /// Derives the two subkeys.
    pub(crate) fn new(storage_key: &StorageKey) -> Self {
        let mac_key = Zeroizing::new(blake3::derive_key(MAC_CONTEXT, storage_key.as_bytes()));
        let enc_key = Zeroizing::new(blake3::derive_key(ENC_CONTEXT, storage_key.as_bytes()));
        Self {
            mac_key,
            cipher: XChaCha20Poly1305::new((&*enc_key).into()),
        }
    }

    /// The 16-byte tag that stands for a namespace on disk.
    pub(crate) fn namespace_tag(&self, namespace: &str) -> Result<[u8; 16], LedgerError> {
        check_len("namespace", namespace.len(), MAX_NAMESPACE_BYTES)?;
        let hash = blake3::keyed_hash(&self.mac_key, namespace.as_bytes());
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&hash.as_bytes()[..16]);
        Ok(tag)
    }

    /// The sled key of a record.
    pub(crate) fn stored_key(
        &self,
        namespace: &str,
        key: &[u8],
    ) -> Result<[u8; keys::PRIVATE_KEY_LEN], LedgerError> {
        let tag = self.namespace_tag(namespace)?;
        check_len("key", key.len(), MAX_PRIVATE_KEY_BYTES)?;
        let mut hasher = blake3::Hasher::new_keyed(&self.mac_key);
        hasher.update(namespace.as_bytes());
        hasher.update(&[0]);
        hasher.update(key);
        Ok(keys::private_key(&tag, hasher.finalize().as_bytes()))
    }

    /// Encrypts a record for `stored_key`.
    pub(crate) fn seal(
        &self,
        stored_key: &[u8],
        key: &[u8],
        value: &[u8],
    ) -> Result<Vec<u8>, LedgerError> {
        check_len("key", key.len(), MAX_PRIVATE_KEY_BYTES)?;
        check_len("value", value.len(), MAX_PRIVATE_VALUE_BYTES)?;
        let mut plain = Zeroizing::new(Vec::with_capacity(4 + key.len() + value.len()));
        // The key length is bounded by MAX_PRIVATE_KEY_BYTES above.
        plain.extend_from_slice(&u32::try_from(key.len()).unwrap_or(u32::MAX).to_be_bytes());
        plain.extend_from_slice(key);
        plain.extend_from_slice(value);
        self.encrypt(stored_key, &plain)
    }

    /// Decrypts a record stored under `stored_key` into (key, value).
    pub(crate) fn open(
        &self,
        stored_key: &[u8],
        sealed: &[u8],
    ) -> Result<(Zeroizing<Vec<u8>>, PrivateValue), LedgerError> {
        let plain = self.decrypt(stored_key, sealed)?;
        let damaged = LedgerError::PrivateDecryptFailed {
            reason: "the stored record is malformed",
        };
        let (len, rest) = plain.split_first_chunk::<4>().ok_or(damaged.clone())?;
        let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| damaged.clone())?;
        if len > rest.len() {
            return Err(damaged);
        }
        let (key, value) = rest.split_at(len);
        Ok((Zeroizing::new(key.to_vec()), Zeroizing::new(value.to_vec())))
    }

    /// The check record stored at first open.
    pub(crate) fn seal_check(&self) -> Result<Vec<u8>, LedgerError> {
        self.encrypt(keys::PRIVATE_CHECK_KEY, CHECK_PLAINTEXT)
    }

    /// Whether the check record was sealed with this storage key.
    pub(crate) fn verify_check(&self, sealed: &[u8]) -> bool {
        self.decrypt(keys::PRIVATE_CHECK_KEY, sealed)
            .is_ok_and(|plain| plain.as_slice() == CHECK_PLAINTEXT)
    }

    fn encrypt(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, LedgerError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: plain, aad })
            .map_err(|_| LedgerError::PrivateTooLarge {
                what: "value",
                len: plain.len(),
                max: MAX_PRIVATE_VALUE_BYTES,
            })?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    fn decrypt(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, LedgerError> {
        let failed = LedgerError::PrivateDecryptFailed {
            reason: "the value does not authenticate under this storage key",
        };
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(failed);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| failed.clone())?;
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        self.cipher
            .decrypt_in_place(&nonce, aad, &mut *buffer)
            .map_err(|_| failed)?;
        Ok(buffer)
    }
}

fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), LedgerError> {
    if len > max {
        return Err(LedgerError::PrivateTooLarge { what, len, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(seed: u8) -> PrivateCipher {
        PrivateCipher::new(&StorageKey::from_bytes([seed; 32]))
    }

    #[test]
    fn records_round_trip_and_bind_their_key() {
        let cipher = cipher(1);
        let stored = cipher.stored_key("group-keys", b"server-1").unwrap();
        let sealed = cipher.seal(&stored, b"server-1", b"secret value").unwrap();
        let (key, value) = cipher.open(&stored, &sealed).unwrap();
        assert_eq!(key.as_slice(), b"server-1");
        assert_eq!(value.as_slice(), b"secret value");

        // Moved to another key, or altered: refused.
        let other = cipher.stored_key("group-keys", b"server-2").unwrap();
        assert!(cipher.open(&other, &sealed).is_err());
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert_eq!(
            cipher.open(&stored, &altered).unwrap_err().code(),
            "ledger.private_decrypt_failed"
        );
        assert!(cipher.open(&stored, &sealed[..10]).is_err());
        // Another storage key cannot read it.
        assert!(self::cipher(2).open(&stored, &sealed).is_err());
    }

    #[test]
    fn stored_keys_hide_names_and_group_namespaces() {
        let cipher = cipher(1);
        let a = cipher.stored_key("txn", b"k1").unwrap();
        let b = cipher.stored_key("txn", b"k2").unwrap();
        let c = cipher.stored_key("unread", b"k1").unwrap();
        assert_eq!(a[..17], b[..17], "one namespace is one prefix");
        assert_ne!(a[..17], c[..17]);
        assert_ne!(a, b);
        assert_eq!(
            a[..17],
            keys::private_prefix(&cipher.namespace_tag("txn").unwrap())
        );
        // The same names under another storage key give other stored keys.
        assert_ne!(self::cipher(2).stored_key("txn", b"k1").unwrap(), a);
        // Namespace and key boundaries cannot be shifted.
        assert_ne!(
            cipher.stored_key("ab", b"c").unwrap(),
            cipher.stored_key("a", b"bc").unwrap()
        );
    }

    #[test]
    fn check_record_tells_storage_keys_apart() {
        let sealed = cipher(1).seal_check().unwrap();
        assert!(cipher(1).verify_check(&sealed));
        assert!(!cipher(2).verify_check(&sealed));
    }

    #[test]
    fn bounds_are_enforced() {
        let cipher = cipher(1);
        let long = "n".repeat(MAX_NAMESPACE_BYTES + 1);
        assert_eq!(
            cipher.stored_key(&long, b"k").unwrap_err().code(),
            "ledger.private_too_large"
        );
        let key = vec![0u8; MAX_PRIVATE_KEY_BYTES + 1];
        assert!(cipher.stored_key("ns", &key).is_err());
        let stored = cipher.stored_key("ns", b"k").unwrap();
        let value = vec![0u8; MAX_PRIVATE_VALUE_BYTES + 1];
        assert!(cipher.seal(&stored, b"k", &value).is_err());
    }
}
