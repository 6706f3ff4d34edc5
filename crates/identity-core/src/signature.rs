//! Ed25519 signatures.
//!
//! A signature is `R || S`: the encoding of the commitment point
//! `R = r·B` (with `r` derived from the secret key and the message, so signing
//! needs no randomness) and the scalar `S = r + H(R || A || M)·a mod L`.
//! Verification checks `S·B = R + H(R || A || M)·A`; this crate always uses
//! the strict variant (see [`UserId::verify`](crate::UserId::verify)).

use std::fmt;

use crate::error::IdentityError;

/// An Ed25519 signature (64 bytes). Not validated until it is verified.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature([u8; 64]);

impl Signature {
    /// Wraps 64 signature bytes.
    pub fn from_bytes(bytes: [u8; 64]) -> Self {
        Signature(bytes)
    }

    /// Wraps a slice that must be exactly 64 bytes long.
    ///
    /// # Errors
    ///
    /// [`IdentityError::InvalidSignatureLength`] for any other length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, IdentityError> {
        let array: [u8; 64] = bytes
            .try_into()
            .map_err(|_| IdentityError::InvalidSignatureLength { found: bytes.len() })?;
        Ok(Signature(array))
    }

    /// The signature bytes, copied.
    pub fn to_bytes(&self) -> [u8; 64] {
        self.0
    }

    /// The signature bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signature(")?;
        for byte in &self.0 {
            write!(f, "{byte:02x}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_slice_checks_length() {
        assert_eq!(
            Signature::from_slice(&[7u8; 64]).unwrap(),
            Signature::from_bytes([7u8; 64])
        );
        for len in [0, 63, 65] {
            let err = Signature::from_slice(&vec![0u8; len]).unwrap_err();
            assert!(matches!(err, IdentityError::InvalidSignatureLength { found } if found == len));
        }
    }

    #[test]
    fn debug_is_hex() {
        let sig = Signature::from_bytes([0xab; 64]);
        assert_eq!(
            format!("{sig:?}"),
            format!("Signature({})", "ab".repeat(64))
        );
    }
}
