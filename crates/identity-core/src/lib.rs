//! Palaver identities: Ed25519 keys, signatures, X25519 key agreement, sealed
//! boxes and the encrypted identity file.
//!
//! A user *is* an Ed25519 key pair. The public key is the [`UserId`], shown as
//! a libp2p peer id (`12D3KooW…`) because the same key is the node's transport
//! key. [`Identity`] holds the secret and
//!
//! * signs `context || message` with a fixed domain-separation `context`;
//!   [`UserId::verify`] checks with strict Ed25519 verification;
//! * derives X25519 keys by the standard Edwards→Montgomery map, for
//!   per-conversation [`DmKey`]s and for opening [`seal`]ed boxes;
//! * derives the [`StorageKey`] that encrypts local data at rest.
//!
//! [`Keyfile`] is the encrypted on-disk format of the secret (Argon2id
//! passphrase or an OS-keyring [`WrapKey`], XChaCha20-Poly1305, BLAKE3
//! checksum). Everything above is pure: no I/O, no runtime. Reading and
//! writing `identity.key` and talking to the OS keyring live in the
//! `keystore` module behind the `keystore` cargo feature (on by default; other
//! crates use `default-features = false`).
//!
//! Secrets ([`Identity`], [`StorageKey`], [`DmKey`], [`WrapKey`],
//! [`Passphrase`]) are zeroized on drop and redacted from `Debug` output.
//!
//! # Example
//!
//! ```
//! use identity_core::{Identity, SEALED_BOX_OVERHEAD, UserId, seal};
//!
//! # fn main() -> Result<(), identity_core::IdentityError> {
//! let mut rng = rand::rng();
//! let alice = Identity::generate(&mut rng);
//! let bob = Identity::generate_os();
//!
//! // Sign and verify, with a domain-separation context.
//! const CONTEXT: &[u8] = b"palaver/v1/example\0";
//! let signature = alice.sign(CONTEXT, b"hello");
//! alice.user_id().verify(CONTEXT, b"hello", &signature)?;
//! assert!(alice.user_id().verify(CONTEXT, b"hellO", &signature).is_err());
//!
//! // User ids travel as peer-id strings.
//! let text = alice.user_id().to_string();
//! assert!(text.starts_with("12D3KooW"));
//! assert_eq!(text.parse::<UserId>()?, alice.user_id());
//!
//! // Seal a message that only Bob can open.
//! let sealed = seal(&mut rng, &bob.user_id(), b"the new epoch key", b"aad");
//! assert_eq!(sealed.len(), 17 + SEALED_BOX_OVERHEAD);
//! assert_eq!(bob.open_sealed(&sealed, b"aad")?.as_slice(), b"the new epoch key");
//! assert!(alice.open_sealed(&sealed, b"aad").is_err());
//!
//! // Both sides of a DM derive the same key.
//! let key = alice.dm_key(&bob.user_id())?;
//! assert_eq!(key.as_bytes(), bob.dm_key(&alice.user_id())?.as_bytes());
//! # Ok(())
//! # }
//! ```
//!
//! # Security notes
//!
//! * One key signs and does Diffie-Hellman. This is the standard Ed25519 →
//!   X25519 conversion (as in libsodium); Thormarker, "On using the same key
//!   pair for Ed25519 and an X25519 based KEM" (ePrint 2021/509), gives a
//!   security proof for this combination. Signatures are always
//!   domain-separated.
//! * Sealed boxes and DM keys use the long-term keys: they give no forward
//!   secrecy. Whoever later steals a secret key can read every box sealed to
//!   it and every DM under keys derived from it.
//! * The identity file's checksum is unkeyed (see [`keyfile`]): it separates
//!   damage from a wrong passphrase; it is not what protects the secret.

pub mod derived_key;
pub mod error;
pub mod identity;
mod key_cache;
pub mod keyfile;
#[cfg(feature = "keystore")]
pub mod keystore;
pub mod passphrase;
pub mod sealed_box;
pub mod signature;
pub mod user_id;
mod xchacha;

pub use derived_key::{DmKey, StorageKey};
pub use error::{ErrorCategory, IdentityError};
pub use identity::Identity;
pub use keyfile::{Keyfile, Protection, WrapKey};
#[cfg(feature = "keystore")]
pub use keystore::{IDENTITY_FILE_NAME, KeyStore, OsKeyring, SecretVault, Unlock};
pub use passphrase::{KdfParams, Passphrase};
pub use sealed_box::{SEALED_BOX_OVERHEAD, seal};
pub use signature::Signature;
pub use user_id::UserId;
