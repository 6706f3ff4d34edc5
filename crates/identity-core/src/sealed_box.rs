//! Sealed boxes: anonymous public-key encryption to one recipient.
//!
//! The sender makes a fresh X25519 key pair `(e, E)` for every box and
//! computes the shared secret `X25519(e, R)` with the recipient's X25519 key
//! `R` (the Montgomery form of their user id). HKDF-SHA256 with
//! salt = `E || R` and info = `palaver/v1/sealed-box` expands it into a
//! 32-byte key and a 24-byte nonce for XChaCha20-Poly1305; because the key
//! is used for exactly one message, a derived nonce is safe. The box is
//!
//! ```text
//! E (32 bytes) || XChaCha20-Poly1305(plaintext, aad) (plaintext length + 16-byte tag)
//! ```
//!
//! The box carries no sender identity (sign the plaintext if the recipient
//! must know who sent it). Binding `E` and `R` into the salt means a box can
//! only be opened with exactly the ephemeral key bytes it was made with. An
//! all-zero shared secret (a small-order `E`) is rejected.

use rand::CryptoRng;
use x25519_dalek::{EphemeralSecret, PublicKey, SharedSecret};
use zeroize::Zeroizing;

use crate::derived_key::hkdf_sha256;
use crate::error::IdentityError;
use crate::identity::Identity;
use crate::user_id::UserId;
use crate::xchacha::{self, KEY_LEN, NONCE_LEN, TAG_LEN};

/// Length of the ephemeral X25519 public key at the start of a sealed box.
const EPHEMERAL_KEY_LEN: usize = 32;

/// Bytes a sealed box adds to its plaintext: the 32-byte ephemeral X25519
/// public key and the 16-byte Poly1305 tag.
pub const SEALED_BOX_OVERHEAD: usize = EPHEMERAL_KEY_LEN + TAG_LEN;

/// HKDF `info` label of sealed-box keys.
const SEALED_BOX_INFO: &[u8] = b"palaver/v1/sealed-box";

/// Encrypts `plaintext` so that only `recipient` can read it; `aad` is
/// authenticated but not encrypted, and must be given again to open the box.
///
/// The result is `plaintext.len() + SEALED_BOX_OVERHEAD` bytes long.
///
/// # Panics
///
/// Only if `plaintext` exceeds XChaCha20-Poly1305's limit of 256 GiB.
pub fn seal<R: CryptoRng + ?Sized>(
    rng: &mut R,
    recipient: &UserId,
    plaintext: &[u8],
    aad: &[u8],
) -> Vec<u8> {
    let ephemeral = EphemeralSecret::random_from_rng(rng);
    let ephemeral_public = PublicKey::from(&ephemeral);
    let recipient_public = recipient.x25519_public();
    // A `UserId` is never of small order, so this exchange is contributory.
    let shared = ephemeral.diffie_hellman(&recipient_public);
    let (key, nonce) = derive_key_and_nonce(&shared, &ephemeral_public, &recipient_public);
    let ciphertext = xchacha::encrypt(&key, &nonce, plaintext, aad);
    let mut sealed = Vec::with_capacity(EPHEMERAL_KEY_LEN + ciphertext.len());
    sealed.extend_from_slice(ephemeral_public.as_bytes());
    sealed.extend_from_slice(&ciphertext);
    sealed
}

/// Opens a box sealed to `identity`.
pub(crate) fn open(
    identity: &Identity,
    sealed: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, IdentityError> {
    let Some((ephemeral, ciphertext)) = sealed.split_first_chunk::<EPHEMERAL_KEY_LEN>() else {
        return Err(IdentityError::SealedBoxMalformed {
            len: sealed.len(),
            min: SEALED_BOX_OVERHEAD,
        });
    };
    if ciphertext.len() < TAG_LEN {
        return Err(IdentityError::SealedBoxMalformed {
            len: sealed.len(),
            min: SEALED_BOX_OVERHEAD,
        });
    }
    let ephemeral_public = PublicKey::from(*ephemeral);
    let shared = identity.x25519_secret().diffie_hellman(&ephemeral_public);
    if !shared.was_contributory() {
        return Err(IdentityError::SealedBoxOpenFailed);
    }
    let recipient_public = identity.user_id().x25519_public();
    let (key, nonce) = derive_key_and_nonce(&shared, &ephemeral_public, &recipient_public);
    xchacha::decrypt(&key, &nonce, ciphertext, aad).ok_or(IdentityError::SealedBoxOpenFailed)
}

/// HKDF-SHA256(ikm = shared, salt = E || R, info = label) → (key, nonce).
fn derive_key_and_nonce(
    shared: &SharedSecret,
    ephemeral: &PublicKey,
    recipient: &PublicKey,
) -> (Zeroizing<[u8; KEY_LEN]>, [u8; NONCE_LEN]) {
    let mut salt = [0u8; 2 * EPHEMERAL_KEY_LEN];
    salt[..EPHEMERAL_KEY_LEN].copy_from_slice(ephemeral.as_bytes());
    salt[EPHEMERAL_KEY_LEN..].copy_from_slice(recipient.as_bytes());
    let mut okm = Zeroizing::new([0u8; KEY_LEN + NONCE_LEN]);
    hkdf_sha256(
        Some(&salt),
        shared.as_bytes(),
        SEALED_BOX_INFO,
        &mut okm[..],
    );
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    let mut nonce = [0u8; NONCE_LEN];
    key.copy_from_slice(&okm[..KEY_LEN]);
    nonce.copy_from_slice(&okm[KEY_LEN..]);
    (key, nonce)
}
