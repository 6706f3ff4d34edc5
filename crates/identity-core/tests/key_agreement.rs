//! X25519 keys, DM keys, the storage key and sealed boxes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use identity_core::{Identity, IdentityError, SEALED_BOX_OVERHEAD, seal};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn identity(seed: u64) -> Identity {
    Identity::generate(&mut StdRng::seed_from_u64(seed))
}

#[test]
fn x25519_secret_matches_the_user_ids_x25519_public_key() {
    for seed in 0..16 {
        let id = identity(seed);
        let public = x25519_dalek::PublicKey::from(&id.x25519_secret());
        assert_eq!(public, id.user_id().x25519_public());
    }
}

#[test]
fn x25519_keys_agree_across_identities() {
    let (a, b) = (identity(1), identity(2));
    let ab = a
        .x25519_secret()
        .diffie_hellman(&b.user_id().x25519_public());
    let ba = b
        .x25519_secret()
        .diffie_hellman(&a.user_id().x25519_public());
    assert_eq!(ab.as_bytes(), ba.as_bytes());
    assert!(ab.was_contributory());
}

#[test]
fn dm_key_is_symmetric_and_unique_per_pair() {
    let ids: Vec<Identity> = (0..5).map(identity).collect();
    let mut keys = HashSet::new();
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            let ab = a.dm_key(&b.user_id()).unwrap();
            let ba = b.dm_key(&a.user_id()).unwrap();
            assert_eq!(ab.as_bytes(), ba.as_bytes());
            assert!(keys.insert(*ab.as_bytes()), "two pairs share a DM key");
        }
    }
    assert_eq!(keys.len(), 10);
    // The DM key is not the raw shared secret.
    let (a, b) = (&ids[0], &ids[1]);
    let raw = a
        .x25519_secret()
        .diffie_hellman(&b.user_id().x25519_public());
    assert_ne!(a.dm_key(&b.user_id()).unwrap().as_bytes(), raw.as_bytes());
}

#[test]
fn storage_key_is_deterministic_and_per_identity() {
    let a = identity(1);
    let restored = Identity::from_secret_bytes(&a.secret_bytes());
    assert_eq!(
        a.storage_key().as_bytes(),
        restored.storage_key().as_bytes()
    );
    assert_ne!(
        a.storage_key().as_bytes(),
        identity(2).storage_key().as_bytes()
    );
    assert_ne!(a.storage_key().as_bytes(), a.secret_bytes().as_ref());
}

/// Pins the derivation labels: HKDF-SHA256 of the RFC 8032 test seed.
#[test]
fn storage_key_known_answer() {
    let mut secret = [0u8; 32];
    for (i, byte) in secret.iter_mut().enumerate() {
        *byte = i as u8;
    }
    let id = Identity::from_secret_bytes(&secret);
    let hex: String = id
        .storage_key()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hex, STORAGE_KEY_OF_0_TO_31);
}

/// HKDF-SHA256(ikm = 00..1f, salt = none, info = "palaver/v1/local-storage-key"),
/// computed independently with Python's hmac/hashlib.
const STORAGE_KEY_OF_0_TO_31: &str =
    "6ba27279133136cef18f9b2ac622dc296299adca5e8364d530241b2d00618c6b";

proptest! {
    #[test]
    fn sealed_box_round_trip(
        seed in any::<u64>(),
        plaintext in proptest::collection::vec(any::<u8>(), 0..1024),
        aad in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let recipient = Identity::generate(&mut rng);
        let sealed = seal(&mut rng, &recipient.user_id(), &plaintext, &aad);
        prop_assert_eq!(sealed.len(), plaintext.len() + SEALED_BOX_OVERHEAD);
        let opened = recipient.open_sealed(&sealed, &aad).unwrap();
        prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
    }

    #[test]
    fn sealed_box_any_flipped_bit_fails(
        seed in any::<u64>(),
        plaintext in proptest::collection::vec(any::<u8>(), 0..128),
        position in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let recipient = Identity::generate(&mut rng);
        let mut sealed = seal(&mut rng, &recipient.user_id(), &plaintext, b"aad");
        let i = position.index(sealed.len());
        sealed[i] ^= 1 << bit;
        let err = recipient.open_sealed(&sealed, b"aad").unwrap_err();
        prop_assert!(matches!(err, IdentityError::SealedBoxOpenFailed), "{:?}", err);
    }
}

/// Every single-bit change anywhere in a box, exhaustively.
#[test]
fn sealed_box_every_bit_flip_fails() {
    let mut rng = StdRng::seed_from_u64(14);
    let bob = identity(1);
    let sealed = seal(&mut rng, &bob.user_id(), b"key", b"aad");
    for index in 0..sealed.len() {
        for bit in 0..8 {
            let mut tampered = sealed.clone();
            tampered[index] ^= 1 << bit;
            assert!(
                matches!(
                    bob.open_sealed(&tampered, b"aad"),
                    Err(IdentityError::SealedBoxOpenFailed)
                ),
                "byte {index} bit {bit}"
            );
        }
    }
}

#[test]
fn identities_can_cross_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Identity>();
    assert_send_sync::<identity_core::UserId>();
    assert_send_sync::<identity_core::StorageKey>();
}

#[test]
fn sealed_box_overhead_is_key_plus_tag() {
    assert_eq!(SEALED_BOX_OVERHEAD, 32 + 16);
}

#[test]
fn sealed_box_is_randomized() {
    let mut rng = StdRng::seed_from_u64(9);
    let recipient = identity(1).user_id();
    let a = seal(&mut rng, &recipient, b"same", b"");
    let b = seal(&mut rng, &recipient, b"same", b"");
    assert_ne!(a, b);
    assert_ne!(a[..32], b[..32], "a fresh ephemeral key per box");
}

#[test]
fn sealed_box_for_someone_else_fails() {
    let mut rng = StdRng::seed_from_u64(10);
    let (bob, eve) = (identity(1), identity(2));
    let sealed = seal(&mut rng, &bob.user_id(), b"secret", b"aad");
    assert!(matches!(
        eve.open_sealed(&sealed, b"aad"),
        Err(IdentityError::SealedBoxOpenFailed)
    ));
    bob.open_sealed(&sealed, b"aad").unwrap();
}

#[test]
fn sealed_box_with_wrong_aad_fails() {
    let mut rng = StdRng::seed_from_u64(11);
    let bob = identity(1);
    let sealed = seal(&mut rng, &bob.user_id(), b"secret", b"epoch 3");
    for aad in [&b"epoch 4"[..], b"", b"epoch 3\0"] {
        assert!(matches!(
            bob.open_sealed(&sealed, aad),
            Err(IdentityError::SealedBoxOpenFailed)
        ));
    }
}

#[test]
fn truncated_sealed_box_fails() {
    let mut rng = StdRng::seed_from_u64(12);
    let bob = identity(1);
    let sealed = seal(&mut rng, &bob.user_id(), b"secret", b"");
    for len in 0..sealed.len() {
        let err = bob.open_sealed(&sealed[..len], b"").unwrap_err();
        if len < SEALED_BOX_OVERHEAD {
            assert!(
                matches!(err, IdentityError::SealedBoxMalformed { len: l, min: SEALED_BOX_OVERHEAD } if l == len),
                "{len}: {err:?}"
            );
            assert_eq!(err.code(), "identity.sealed_box_malformed");
        } else {
            assert!(
                matches!(err, IdentityError::SealedBoxOpenFailed),
                "{len}: {err:?}"
            );
        }
    }
    // Appending bytes breaks the tag as well.
    let mut longer = sealed.clone();
    longer.push(0);
    assert!(bob.open_sealed(&longer, b"").is_err());
}

#[test]
fn empty_plaintext_seals_to_exactly_the_overhead() {
    let mut rng = StdRng::seed_from_u64(13);
    let bob = identity(1);
    let sealed = seal(&mut rng, &bob.user_id(), b"", b"");
    assert_eq!(sealed.len(), SEALED_BOX_OVERHEAD);
    assert!(bob.open_sealed(&sealed, b"").unwrap().is_empty());
}

/// A small-order ephemeral key makes the shared secret all-zero, so anyone
/// can compute the box key: such a box, correctly formed otherwise, would be a
/// forgery that anyone could make for any recipient. It must be refused.
#[test]
fn non_contributory_ephemeral_key_is_refused() {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};

    let bob = identity(1);
    let mut one = [0u8; 32];
    one[0] = 1;
    for low_order_u in [[0u8; 32], one] {
        // Build the box exactly as a sender would, with the all-zero secret.
        let mut salt = low_order_u.to_vec();
        salt.extend_from_slice(bob.user_id().x25519_public().as_bytes());
        let mut okm = [0u8; 56];
        hkdf::Hkdf::<sha2::Sha256>::new(Some(&salt), &[0u8; 32])
            .expand(b"palaver/v1/sealed-box", &mut okm)
            .unwrap();
        let cipher = chacha20poly1305::XChaCha20Poly1305::new_from_slice(&okm[..32]).unwrap();
        let nonce = chacha20poly1305::XNonce::try_from(&okm[32..]).unwrap();
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: b"forged",
                    aad: b"",
                },
            )
            .unwrap();
        let mut sealed = low_order_u.to_vec();
        sealed.extend_from_slice(&ciphertext);
        let shared = bob
            .x25519_secret()
            .diffie_hellman(&x25519_dalek::PublicKey::from(low_order_u));
        assert_eq!(shared.as_bytes(), &[0u8; 32], "really non-contributory");
        assert!(matches!(
            bob.open_sealed(&sealed, b""),
            Err(IdentityError::SealedBoxOpenFailed)
        ));
    }
}

/// Re-derives a DM key from the written spec with the primitives directly.
#[test]
fn dm_key_follows_the_spec() {
    let (a, b) = (identity(21), identity(22));
    let shared = a
        .x25519_secret()
        .diffie_hellman(&b.user_id().x25519_public());
    let (low, high) = if a.user_id() < b.user_id() {
        (a.user_id(), b.user_id())
    } else {
        (b.user_id(), a.user_id())
    };
    let mut info = low.as_bytes().to_vec();
    info.extend_from_slice(high.as_bytes());
    let mut expected = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(b"palaver/v1/dm"), shared.as_bytes())
        .expand(&info, &mut expected)
        .unwrap();
    assert_eq!(a.dm_key(&b.user_id()).unwrap().as_bytes(), &expected);
}

/// Opens a sealed box by following the written format with the primitives
/// directly: eph_pub || XChaCha20-Poly1305 under HKDF-SHA256(X25519(...),
/// salt = eph_pub || recipient_pub, info = "palaver/v1/sealed-box").
#[test]
fn sealed_box_follows_the_spec() {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};

    let mut rng = StdRng::seed_from_u64(23);
    let bob = identity(24);
    let sealed = seal(&mut rng, &bob.user_id(), b"epoch key", b"header");
    let eph: [u8; 32] = sealed[..32].try_into().unwrap();
    let recipient_pub = bob.user_id().x25519_public();
    let shared = bob
        .x25519_secret()
        .diffie_hellman(&x25519_dalek::PublicKey::from(eph));
    let mut salt = eph.to_vec();
    salt.extend_from_slice(recipient_pub.as_bytes());
    let mut okm = [0u8; 56];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(&salt), shared.as_bytes())
        .expand(b"palaver/v1/sealed-box", &mut okm)
        .unwrap();
    let cipher = chacha20poly1305::XChaCha20Poly1305::new_from_slice(&okm[..32]).unwrap();
    let nonce = chacha20poly1305::XNonce::try_from(&okm[32..]).unwrap();
    let plaintext = cipher
        .decrypt(
            &nonce,
            Payload {
                msg: &sealed[32..],
                aad: b"header",
            },
        )
        .unwrap();
    assert_eq!(plaintext, b"epoch key");
}
