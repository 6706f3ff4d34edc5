//! XChaCha20-Poly1305 with a caller-supplied 256-bit key and 192-bit nonce.
//!
//! XChaCha20-Poly1305 is ChaCha20-Poly1305 with an extended nonce: HChaCha20
//! turns the key and the first 128 bits of the nonce into a subkey, which then
//! encrypts with ChaCha20 under the remaining 64 bits, and Poly1305
//! authenticates ciphertext and associated data with a 16-byte tag. The long
//! nonce makes random nonces safe; this crate also derives single-use keys and
//! nonces with HKDF where a key is never reused.

use chacha20poly1305::{AeadInOut, KeyInit, XChaCha20Poly1305, XNonce, aead::Aead, aead::Payload};
use zeroize::Zeroizing;

/// Length of a key.
pub(crate) const KEY_LEN: usize = 32;
/// Length of a nonce.
pub(crate) const NONCE_LEN: usize = 24;
/// Length of the Poly1305 tag appended to every ciphertext.
pub(crate) const TAG_LEN: usize = 16;

/// Encrypts `plaintext` with associated data `aad`; returns ciphertext || tag.
///
/// # Panics
///
/// Only if `plaintext` is longer than XChaCha20's limit of 256 GiB.
pub(crate) fn encrypt(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    aad: &[u8],
) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let nonce: &XNonce = nonce.into();
    match cipher.encrypt(
        nonce,
        Payload {
            msg: plaintext,
            aad,
        },
    ) {
        Ok(ciphertext) => ciphertext,
        // The AEAD's only failure mode when encrypting is an input over its
        // 2^38-byte limit, which no caller of this crate comes near.
        Err(_) => panic!("XChaCha20-Poly1305 cannot encrypt more than 256 GiB at once"),
    }
}

/// Decrypts and authenticates ciphertext || tag; `None` if authentication
/// fails. The plaintext is only ever held in zeroizing memory.
pub(crate) fn decrypt(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    ciphertext: &[u8],
    aad: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let nonce: &XNonce = nonce.into();
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    cipher
        .decrypt_in_place(nonce, aad, &mut *buffer)
        .ok()
        .map(|()| buffer)
}
