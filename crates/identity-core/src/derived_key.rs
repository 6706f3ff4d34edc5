//! Symmetric keys derived from an identity: the local storage key and the
//! per-conversation DM key.
//!
//! Both come out of HKDF-SHA256 (RFC 5869): *extract* runs HMAC-SHA256 over
//! the input key material with a salt to get a uniformly random pseudo-random
//! key, and *expand* runs HMAC-SHA256 over an `info` label to stretch it into
//! as many output bytes as needed. Different `info` labels give independent
//! keys from the same input, which is how one identity seed yields a storage
//! key that is unrelated to its signing key.
//!
//! * [`StorageKey`] = HKDF-SHA256(ikm = Ed25519 seed, no salt,
//!   info = `palaver/v1/local-storage-key`). It encrypts local data at rest.
//! * [`DmKey`] = HKDF-SHA256(ikm = X25519(my secret, peer public),
//!   salt = `palaver/v1/dm`, info = min(a, b) || max(a, b) of the two user
//!   ids). Sorting the ids makes the key the same on both sides.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// HKDF `info` label of the local storage key.
pub(crate) const STORAGE_KEY_INFO: &[u8] = b"palaver/v1/local-storage-key";
/// HKDF salt of the DM key.
pub(crate) const DM_KEY_SALT: &[u8] = b"palaver/v1/dm";

/// HKDF-SHA256 extract-and-expand into `out`.
///
/// Every caller asks for a fixed output of at most 56 bytes, far below
/// HKDF-SHA256's limit of 255 × 32 bytes, so expansion cannot fail.
pub(crate) fn hkdf_sha256(salt: Option<&[u8]>, ikm: &[u8], info: &[u8], out: &mut [u8]) {
    let hkdf = Hkdf::<Sha256>::new(salt, ikm);
    if hkdf.expand(info, out).is_err() {
        unreachable!(
            "HKDF-SHA256 output of {} bytes is within its limit",
            out.len()
        );
    }
}

/// The key that encrypts this identity's local data at rest (ledger indexes,
/// group keys), derived from the identity seed.
///
/// Zeroized on drop; its `Debug` output is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct StorageKey([u8; 32]);

impl StorageKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        StorageKey(bytes)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StorageKey(<redacted>)")
    }
}

/// The symmetric key of the direct-message conversation between two users;
/// both sides derive the same key.
///
/// Zeroized on drop; its `Debug` output is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DmKey([u8; 32]);

impl DmKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        DmKey(bytes)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for DmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DmKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5869 test case 1 pins the HKDF-SHA256 wiring.
    #[test]
    fn hkdf_matches_rfc5869_case_1() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0x00u8..=0x0c).collect();
        let info: Vec<u8> = (0xf0u8..=0xf9).collect();
        let mut okm = [0u8; 42];
        hkdf_sha256(Some(&salt), &ikm, &info, &mut okm);
        let expected =
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865";
        let hex: String = okm.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
    }
}
