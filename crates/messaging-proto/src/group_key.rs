//! Group keys: one 32-byte XChaCha20-Poly1305 key per server epoch (and one
//! per DM conversation). A key rotation wraps the previous epoch's key under
//! the new one, so whoever holds a newer key can walk back and read history,
//! while a removed member, who only holds older keys, cannot go forward.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload as AeadPayload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::CryptoRng;
use zeroize::Zeroizing;

use crate::error::ProtoError;
use crate::ids::ServerId;

/// Length of an XChaCha20-Poly1305 nonce.
pub const NONCE_LEN: usize = 24;
/// Length of a Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// Length of a group key.
pub const KEY_LEN: usize = 32;

const EPOCH_KEY_AAD_CONTEXT: &[u8] = b"palaver/v1/epoch-key";

/// The symmetric key of one epoch of a server (or of a DM conversation,
/// which has only epoch 1). Zeroized on drop, never printed.
#[derive(Clone)]
pub struct EpochKey {
    epoch: u32,
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl EpochKey {
    /// A fresh random key for `epoch`.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R, epoch: u32) -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(key.as_mut());
        Self { epoch, key }
    }

    /// Wraps existing key bytes.
    pub fn from_bytes(epoch: u32, key: [u8; KEY_LEN]) -> Self {
        Self {
            epoch,
            key: Zeroizing::new(key),
        }
    }

    /// Parses a key field that must be 32 bytes.
    pub fn from_slice(epoch: u32, key: &[u8]) -> Result<Self, ProtoError> {
        let bytes = <[u8; KEY_LEN]>::try_from(key).map_err(|_| ProtoError::InvalidLength {
            what: "epoch key",
            expected: KEY_LEN,
            found: key.len(),
        })?;
        Ok(Self::from_bytes(epoch, bytes))
    }

    /// The epoch this key belongs to.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The raw key. Handle with care: it is a secret.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&(*self.key).into())
    }

    /// Encrypts `plaintext` with `nonce` and associated data `aad`.
    pub(crate) fn encrypt(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let payload = AeadPayload {
            msg: plaintext,
            aad,
        };
        // Encryption only fails for inputs longer than 2^38 bytes, far past
        // every limit of this protocol.
        self.cipher()
            .encrypt(&XNonce::from(*nonce), payload)
            .unwrap_or_default()
    }

    /// Decrypts and authenticates `ciphertext`.
    pub(crate) fn decrypt(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, ProtoError> {
        let payload = AeadPayload {
            msg: ciphertext,
            aad,
        };
        self.cipher()
            .decrypt(&XNonce::from(*nonce), payload)
            .map(Zeroizing::new)
            .map_err(|_| ProtoError::DecryptFailed)
    }

    /// Encrypts `previous` under this (newer) key for a `KeyRotation`:
    /// `nonce (24) || ciphertext`.
    pub fn wrap_previous<R: CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        server: &ServerId,
        previous: &EpochKey,
    ) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let aad = epoch_key_aad(server, previous.epoch);
        let mut out = nonce.to_vec();
        out.extend(self.encrypt(&nonce, &aad, previous.as_bytes()));
        out
    }

    /// Recovers the previous epoch's key from [`EpochKey::wrap_previous`] output.
    pub fn unwrap_previous(
        &self,
        server: &ServerId,
        wrapped: &[u8],
    ) -> Result<EpochKey, ProtoError> {
        let previous_epoch = self.epoch.checked_sub(1).ok_or(ProtoError::OutOfRange {
            what: "key epoch",
            value: 0,
            min: 1,
            max: u64::from(u32::MAX),
        })?;
        if wrapped.len() != NONCE_LEN + KEY_LEN + TAG_LEN {
            return Err(ProtoError::InvalidLength {
                what: "wrapped previous key",
                expected: NONCE_LEN + KEY_LEN + TAG_LEN,
                found: wrapped.len(),
            });
        }
        let (nonce, ciphertext) = wrapped.split_at(NONCE_LEN);
        let nonce = <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| ProtoError::DecryptFailed)?;
        let aad = epoch_key_aad(server, previous_epoch);
        let plain = self.decrypt(&nonce, &aad, ciphertext)?;
        EpochKey::from_slice(previous_epoch, &plain)
    }
}

/// Associated data for an epoch key sealed to a member or wrapped under the
/// next key: "palaver/v1/epoch-key" || server_id || epoch (u32 big-endian).
pub fn epoch_key_aad(server: &ServerId, epoch: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(EPOCH_KEY_AAD_CONTEXT.len() + 36);
    aad.extend_from_slice(EPOCH_KEY_AAD_CONTEXT);
    aad.extend_from_slice(server.as_bytes());
    aad.extend_from_slice(&epoch.to_be_bytes());
    aad
}

impl PartialEq for EpochKey {
    fn eq(&self, other: &Self) -> bool {
        self.epoch == other.epoch && *self.key == *other.key
    }
}

impl Eq for EpochKey {}

impl fmt::Debug for EpochKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EpochKey {{ epoch: {}, key: <redacted> }}", self.epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_and_unwrap_previous_key() {
        let mut rng = rand::rng();
        let server = ServerId::from_bytes([7; 32]);
        let old = EpochKey::generate(&mut rng, 3);
        let new = EpochKey::generate(&mut rng, 4);
        let wrapped = new.wrap_previous(&mut rng, &server, &old);
        assert_eq!(new.unwrap_previous(&server, &wrapped).unwrap(), old);
        // The old key cannot go forward, another server's context fails.
        assert!(old.unwrap_previous(&server, &wrapped).is_err());
        let other = ServerId::from_bytes([8; 32]);
        assert_eq!(
            new.unwrap_previous(&other, &wrapped),
            Err(ProtoError::DecryptFailed)
        );
        let mut tampered = wrapped.clone();
        tampered[30] ^= 1;
        assert_eq!(
            new.unwrap_previous(&server, &tampered),
            Err(ProtoError::DecryptFailed)
        );
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = EpochKey::from_bytes(1, [0x5a; 32]);
        let shown = format!("{key:?}");
        assert!(!shown.contains("5a"), "{shown}");
        assert!(!shown.contains("90"), "{shown}");
        assert!(shown.contains("redacted"));
    }
}
