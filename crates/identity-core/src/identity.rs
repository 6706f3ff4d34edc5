//! A user's own identity: the Ed25519 secret key and everything derived from it.
//!
//! The secret is the 32-byte Ed25519 *seed*. SHA-512 of the seed gives the
//! secret scalar `a` (after clamping) and a nonce prefix; the public key is
//! `A = a·B`. Signing is deterministic (RFC 8032): no randomness is needed
//! after the key exists. Every signature covers `context || message`, where
//! `context` is a fixed domain-separation tag, so a signature made for one
//! purpose can never be replayed as another.
//!
//! The same scalar serves X25519 key agreement: the X25519 secret is the first
//! half of SHA-512(seed) (X25519 clamps it the same way Ed25519 does), so its
//! public key is the Montgomery form of `A`. This is the standard birational
//! map between the two curve forms; see the note on reusing one key for
//! signing and key agreement in the crate docs.

use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey};
use rand::CryptoRng;
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::derived_key::{DM_KEY_SALT, DmKey, STORAGE_KEY_INFO, StorageKey, hkdf_sha256};
use crate::error::IdentityError;
use crate::sealed_box;
use crate::signature::Signature;
use crate::user_id::UserId;

/// A user's identity with its secret key.
///
/// The secret is zeroized on drop and never appears in `Debug` output, which
/// shows only the user id.
#[derive(Clone)]
pub struct Identity {
    signing_key: SigningKey,
}

// `SigningKey` zeroizes itself on drop; it is the only field.
impl ZeroizeOnDrop for Identity {}

impl Identity {
    /// Generates a new identity from the given cryptographically secure RNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Identity {
        Identity {
            signing_key: SigningKey::generate(rng),
        }
    }

    /// Generates a new identity from the operating system's random source.
    ///
    /// # Panics
    ///
    /// If the operating system cannot provide random bytes (which leaves no
    /// safe way to create a key).
    pub fn generate_os() -> Identity {
        Identity::generate(&mut rand::rand_core::UnwrapErr(rand::rngs::SysRng))
    }

    /// Rebuilds an identity from its 32-byte Ed25519 seed.
    pub fn from_secret_bytes(secret: &[u8; 32]) -> Identity {
        Identity {
            signing_key: SigningKey::from_bytes(secret),
        }
    }

    /// The 32-byte Ed25519 seed, for writing the encrypted identity file.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing_key.to_bytes())
    }

    /// The public user id of this identity.
    pub fn user_id(&self) -> UserId {
        UserId::from_verifying_key(&self.signing_key.verifying_key())
    }

    /// Signs `context || message`.
    ///
    /// `context` is a fixed domain-separation tag such as
    /// `b"palaver/v1/entry\0"`. Because the two parts are simply concatenated,
    /// every context must be a constant that no other context is a prefix of;
    /// ending each tag with `\0` guarantees that.
    pub fn sign(&self, context: &[u8], message: &[u8]) -> Signature {
        let signature = self.signing_key.sign(&[context, message].concat());
        Signature::from_bytes(signature.to_bytes())
    }

    /// The same key as a libp2p keypair, so the transport identity is the
    /// user identity: `to_libp2p_keypair().public().to_peer_id()` equals
    /// `user_id().to_peer_id()`.
    pub fn to_libp2p_keypair(&self) -> libp2p_identity::Keypair {
        let mut seed = self.secret_bytes();
        match libp2p_identity::Keypair::ed25519_from_bytes(&mut seed[..]) {
            Ok(keypair) => keypair,
            // libp2p only rejects seeds that are not 32 bytes long.
            Err(_) => unreachable!("a 32-byte seed is always a valid Ed25519 secret key"),
        }
    }

    /// The X25519 secret of this identity (the unclamped Ed25519 secret
    /// scalar; X25519 clamps it). Its public key equals
    /// [`UserId::x25519_public`] of [`Identity::user_id`].
    pub fn x25519_secret(&self) -> x25519_dalek::StaticSecret {
        let scalar = Zeroizing::new(self.signing_key.to_scalar_bytes());
        x25519_dalek::StaticSecret::from(*scalar)
    }

    /// The key that encrypts this identity's local data at rest:
    /// HKDF-SHA256(ikm = seed, no salt, info = `palaver/v1/local-storage-key`).
    pub fn storage_key(&self) -> StorageKey {
        let seed = self.secret_bytes();
        let mut okm = Zeroizing::new([0u8; 32]);
        hkdf_sha256(None, &seed[..], STORAGE_KEY_INFO, &mut okm[..]);
        StorageKey::from_bytes(*okm)
    }

    /// The symmetric key of the DM conversation with `peer`; `peer` derives
    /// the same key with `dm_key(&my_user_id)`.
    ///
    /// X25519(my secret, peer public) is fed to HKDF-SHA256 with salt
    /// `palaver/v1/dm` and info = the two user ids, smaller first.
    ///
    /// # Errors
    ///
    /// [`IdentityError::NonContributoryKeyExchange`] if the exchange yields the
    /// all-zero secret (impossible for a checked [`UserId`], rejected anyway).
    pub fn dm_key(&self, peer: &UserId) -> Result<DmKey, IdentityError> {
        let shared = self.x25519_secret().diffie_hellman(&peer.x25519_public());
        if !shared.was_contributory() {
            return Err(IdentityError::NonContributoryKeyExchange);
        }
        let me = self.user_id();
        let (low, high) = if me <= *peer {
            (me, *peer)
        } else {
            (*peer, me)
        };
        let info = [low.as_bytes().as_slice(), high.as_bytes().as_slice()].concat();
        let mut okm = Zeroizing::new([0u8; 32]);
        hkdf_sha256(Some(DM_KEY_SALT), shared.as_bytes(), &info, &mut okm[..]);
        Ok(DmKey::from_bytes(*okm))
    }

    /// Opens a sealed box addressed to this identity (see [`crate::seal`]).
    ///
    /// # Errors
    ///
    /// [`IdentityError::SealedBoxMalformed`] if `sealed` is shorter than
    /// [`crate::SEALED_BOX_OVERHEAD`]; [`IdentityError::SealedBoxOpenFailed`]
    /// if it was sealed to someone else, was modified, or `aad` differs.
    pub fn open_sealed(
        &self,
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, IdentityError> {
        sealed_box::open(self, sealed, aad)
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("user_id", &format_args!("{}", self.user_id()))
            .finish_non_exhaustive()
    }
}
