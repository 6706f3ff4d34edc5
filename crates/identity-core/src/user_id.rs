//! User ids: Ed25519 public keys, shown as libp2p peer ids.
//!
//! A [`UserId`] is the 32-byte compressed Edwards-Y encoding of an Ed25519
//! public key `A = a·B`. Construction accepts only canonical encodings of
//! points that decompress and are not of small order, so every `UserId` names
//! exactly one usable key and has exactly one byte representation.
//! Verification uses `verify_strict`, which additionally rejects non-canonical
//! signature scalars (`S ≥ L`) and small-order `R` values, so a signature
//! cannot be altered into a second valid one.
//!
//! The same key is the node's libp2p transport key, so the textual form of a
//! user id is its [`PeerId`]: the identity multihash of the protobuf-encoded
//! Ed25519 public key, in base58 (`12D3KooW…`). For Diffie-Hellman the Edwards
//! point is mapped to Curve25519 with the birational map
//! `u = (1 + y) / (1 − y)` (see [`UserId::x25519_public`]).

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::VerifyingKey;
use libp2p_identity::PeerId;

use crate::error::IdentityError;
use crate::key_cache::KeyCache;
use crate::signature::Signature;

/// Keys that passed [`UserId::from_bytes`]'s checks, decompressed.
static CHECKED_KEYS: KeyCache<VerifyingKey> = KeyCache::new();
/// The peer id of each key.
static PEER_IDS: KeyCache<PeerId> = KeyCache::new();

/// The identity multihash code: the digest *is* the encoded public key.
const MULTIHASH_IDENTITY: u64 = 0x00;

/// A user's identity: an Ed25519 public key that has been checked to be a
/// canonical, non-weak point.
///
/// `Display` and [`FromStr`] use the libp2p peer-id string (`12D3KooW…`);
/// ordering is by the 32 key bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId([u8; 32]);

impl UserId {
    /// Checks and wraps a 32-byte Ed25519 public key.
    ///
    /// # Errors
    ///
    /// [`IdentityError::InvalidPublicKey`] if the bytes do not decompress to a
    /// curve point or are not its canonical encoding;
    /// [`IdentityError::WeakPublicKey`] if the point has small order.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<UserId, IdentityError> {
        checked_key(&bytes).map(|_| UserId(bytes))
    }

    /// Like [`UserId::from_bytes`], from a slice that must be 32 bytes long.
    ///
    /// # Errors
    ///
    /// [`IdentityError::InvalidUserIdLength`], or the errors of
    /// [`UserId::from_bytes`].
    pub fn from_slice(bytes: &[u8]) -> Result<UserId, IdentityError> {
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| IdentityError::InvalidUserIdLength { found: bytes.len() })?;
        UserId::from_bytes(array)
    }

    /// The 32 public-key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The libp2p peer id of the same Ed25519 key.
    pub fn to_peer_id(&self) -> PeerId {
        let peer = PEER_IDS.get_or_try(&self.0, || {
            libp2p_identity::ed25519::PublicKey::try_from_bytes(&self.0)
                .map(|key| libp2p_identity::PublicKey::from(key).to_peer_id())
        });
        match peer {
            Ok(peer) => peer,
            // libp2p runs the same decompression check as `from_bytes`.
            Err(_) => unreachable!("a UserId always holds a valid Ed25519 point"),
        }
    }

    /// The user id inside a peer id.
    ///
    /// # Errors
    ///
    /// [`IdentityError::NotEd25519PeerId`] unless the peer id is an identity
    /// multihash of an Ed25519 public key; [`IdentityError::InvalidPeerId`] if
    /// it is not the canonical encoding of that key; the errors of
    /// [`UserId::from_bytes`] for a weak key.
    pub fn from_peer_id(peer: &PeerId) -> Result<UserId, IdentityError> {
        let multihash = peer.as_ref();
        if multihash.code() != MULTIHASH_IDENTITY {
            return Err(IdentityError::NotEd25519PeerId);
        }
        let public = libp2p_identity::PublicKey::try_decode_protobuf(multihash.digest())
            .map_err(|_| IdentityError::NotEd25519PeerId)?;
        let ed25519 = public
            .try_into_ed25519()
            .map_err(|_| IdentityError::NotEd25519PeerId)?;
        let user = UserId::from_bytes(ed25519.to_bytes())?;
        // Protobuf admits several encodings of one key; accept only the one
        // libp2p produces, so a user has exactly one peer-id string.
        if user.to_peer_id() != *peer {
            return Err(IdentityError::InvalidPeerId {
                reason: "the public key is not canonically encoded".to_owned(),
            });
        }
        Ok(user)
    }

    /// Verifies, with `verify_strict`, a signature over `context || message`.
    ///
    /// `context` is the same fixed domain-separation tag the signer used
    /// (see [`Identity::sign`](crate::Identity::sign)).
    ///
    /// # Errors
    ///
    /// [`IdentityError::BadSignature`] if the signature is not a valid strict
    /// Ed25519 signature by this user over exactly these bytes.
    pub fn verify(
        &self,
        context: &[u8],
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), IdentityError> {
        let signature = ed25519_dalek::Signature::from_bytes(signature.as_bytes());
        self.verifying_key()
            .verify_strict(&[context, message].concat(), &signature)
            .map_err(|_| IdentityError::BadSignature)
    }

    /// The X25519 public key of this user: the Ed25519 point mapped to its
    /// Montgomery u-coordinate.
    pub fn x25519_public(&self) -> x25519_dalek::PublicKey {
        x25519_dalek::PublicKey::from(self.verifying_key().to_montgomery().to_bytes())
    }

    /// Wraps the verifying key of a signing key (always a valid, non-weak
    /// point: a clamped secret scalar is never a multiple of the group order).
    pub(crate) fn from_verifying_key(key: &VerifyingKey) -> UserId {
        UserId(key.to_bytes())
    }

    /// The decompressed key.
    pub(crate) fn verifying_key(&self) -> VerifyingKey {
        match checked_key(&self.0) {
            Ok(key) => key,
            // Every constructor checks (or derives) a valid point.
            Err(_) => unreachable!("a UserId always holds a valid Ed25519 point"),
        }
    }
}

/// Decompresses `bytes` and checks that they are the canonical encoding of
/// a point that is not of small order (cached: see `key_cache`).
fn checked_key(bytes: &[u8; 32]) -> Result<VerifyingKey, IdentityError> {
    CHECKED_KEYS.get_or_try(bytes, || {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| IdentityError::InvalidPublicKey)?;
        // Decompression tolerates y ≥ p; re-encoding catches that, so one key
        // cannot masquerade as two different user ids.
        if key.to_edwards().compress().to_bytes() != *bytes {
            return Err(IdentityError::InvalidPublicKey);
        }
        if key.is_weak() {
            return Err(IdentityError::WeakPublicKey);
        }
        Ok(key)
    })
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_peer_id(), f)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({self})")
    }
}

impl FromStr for UserId {
    type Err = IdentityError;

    /// Parses a peer-id string (`12D3KooW…`).
    fn from_str(s: &str) -> Result<UserId, IdentityError> {
        let peer = PeerId::from_str(s).map_err(|e| IdentityError::InvalidPeerId {
            reason: e.to_string(),
        })?;
        UserId::from_peer_id(&peer)
    }
}

impl TryFrom<&PeerId> for UserId {
    type Error = IdentityError;

    fn try_from(peer: &PeerId) -> Result<UserId, IdentityError> {
        UserId::from_peer_id(peer)
    }
}

impl From<UserId> for PeerId {
    fn from(user: UserId) -> PeerId {
        user.to_peer_id()
    }
}
