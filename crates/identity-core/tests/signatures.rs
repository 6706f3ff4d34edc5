//! Signing, strict verification, user-id validation and the PeerId mapping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use identity_core::{Identity, IdentityError, Signature, UserId};
use libp2p_identity::PeerId;
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

const CONTEXT: &[u8] = b"palaver/v1/test\0";

fn identity(seed: u64) -> Identity {
    Identity::generate(&mut StdRng::seed_from_u64(seed))
}

fn hex(h: &str) -> [u8; 32] {
    let bytes: Vec<u8> = (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

proptest! {
    #[test]
    fn sign_verify_round_trip(
        seed in any::<u64>(),
        context in proptest::collection::vec(any::<u8>(), 0..32),
        message in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let id = identity(seed);
        let signature = id.sign(&context, &message);
        prop_assert!(id.user_id().verify(&context, &message, &signature).is_ok());
        // Signatures round-trip through bytes.
        let copy = Signature::from_slice(signature.as_bytes()).unwrap();
        prop_assert_eq!(copy, signature);
        prop_assert!(id.user_id().verify(&context, &message, &copy).is_ok());
    }

    #[test]
    fn any_flipped_bit_fails(
        seed in any::<u64>(),
        context in proptest::collection::vec(any::<u8>(), 1..32),
        message in proptest::collection::vec(any::<u8>(), 1..512),
        target in 0usize..3,
        position in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let id = identity(seed);
        let signature = id.sign(&context, &message);
        let (mut context, mut message, mut sig_bytes) = (context, message, signature.to_bytes());
        match target {
            0 => { let i = position.index(context.len()); context[i] ^= 1 << bit; }
            1 => { let i = position.index(message.len()); message[i] ^= 1 << bit; }
            _ => { let i = position.index(sig_bytes.len()); sig_bytes[i] ^= 1 << bit; }
        }
        let err = id
            .user_id()
            .verify(&context, &message, &Signature::from_bytes(sig_bytes))
            .unwrap_err();
        prop_assert!(matches!(err, IdentityError::BadSignature));
        prop_assert_eq!(err.code(), "identity.bad_signature");
    }

    #[test]
    fn another_users_id_fails(
        seed in any::<u64>(),
        message in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let signer = identity(seed);
        let other = identity(seed.wrapping_add(1));
        let signature = signer.sign(CONTEXT, &message);
        prop_assert!(other.user_id().verify(CONTEXT, &message, &signature).is_err());
    }

    #[test]
    fn signature_covers_exactly_context_then_message(
        seed in any::<u64>(),
        message in proptest::collection::vec(any::<u8>(), 1..64),
    ) {
        // Only the concatenation is signed, so this documents why contexts
        // must be fixed tags: a different split of the same bytes verifies.
        let id = identity(seed);
        let signature = id.sign(CONTEXT, &message);
        let mut joined = CONTEXT.to_vec();
        joined.extend_from_slice(&message);
        prop_assert!(id.user_id().verify(&joined[..1], &joined[1..], &signature).is_ok());
        // A different context on the same message never verifies.
        prop_assert!(id.user_id().verify(b"palaver/v1/other\0", &message, &signature).is_err());
    }
}

#[test]
fn signing_is_deterministic_and_context_separated() {
    let id = identity(1);
    assert_eq!(id.sign(CONTEXT, b"m"), id.sign(CONTEXT, b"m"));
    assert_ne!(id.sign(CONTEXT, b"m"), id.sign(b"palaver/v1/other\0", b"m"));
}

/// RFC 8032 §7.1 test 1: empty message, so `context || message` = the context.
#[test]
fn matches_rfc8032_test_vector() {
    let secret = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    let public = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    let expected_sig = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
    let id = Identity::from_secret_bytes(&secret);
    assert_eq!(id.user_id().as_bytes(), &public);
    let signature = id.sign(b"", b"");
    let sig_hex: String = signature
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sig_hex, expected_sig);
    id.user_id().verify(b"", b"", &signature).unwrap();
}

/// S + L encodes the same scalar mod L: lax verifiers accept it, which makes
/// signatures malleable. `verify_strict` must reject it.
#[test]
fn non_canonical_s_is_rejected() {
    // L = 2^252 + 27742317777372353535851937790883648493, little-endian.
    let l = hex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
    let id = identity(7);
    let signature = id.sign(CONTEXT, b"message");
    id.user_id()
        .verify(CONTEXT, b"message", &signature)
        .unwrap();

    let mut bytes = signature.to_bytes();
    let mut carry = 0u16;
    for (s, l) in bytes[32..].iter_mut().zip(l) {
        let sum = u16::from(*s) + u16::from(l) + carry;
        *s = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "S + L fits in 32 bytes since S < L < 2^253");
    assert_ne!(bytes, signature.to_bytes());
    let err = id
        .user_id()
        .verify(CONTEXT, b"message", &Signature::from_bytes(bytes))
        .unwrap_err();
    assert!(matches!(err, IdentityError::BadSignature), "{err:?}");
}

/// A signature whose R is the identity point (small order) and
/// S = H(R || A || M)·a: the cofactorless "lax" check S·B = R + H·A accepts
/// it, `verify_strict` must not. (Computed from the RFC 8032 test-1 key.)
#[test]
fn small_order_r_is_rejected() {
    use ed25519_dalek::Verifier as _;

    let secret = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    let id = Identity::from_secret_bytes(&secret);
    let sig_hex = "0100000000000000000000000000000000000000000000000000000000000000\
                   0c46ac9b0072d68a0c208c9b4abb6aa7d517f1bbac626df8f5fd4eeb2bf02601";
    let mut bytes = [0u8; 64];
    bytes[..32].copy_from_slice(&hex(&sig_hex[..64]));
    bytes[32..].copy_from_slice(&hex(&sig_hex[64..]));

    // The lax check accepts it, so this vector really tells the two apart.
    let lax = ed25519_dalek::VerifyingKey::from_bytes(id.user_id().as_bytes()).unwrap();
    let mut signed = CONTEXT.to_vec();
    signed.extend_from_slice(b"small-order R");
    lax.verify(&signed, &ed25519_dalek::Signature::from_bytes(&bytes))
        .unwrap();

    let err = id
        .user_id()
        .verify(CONTEXT, b"small-order R", &Signature::from_bytes(bytes))
        .unwrap_err();
    assert!(matches!(err, IdentityError::BadSignature), "{err:?}");
}

/// The eight small-order points ("Taming the many EdDSAs", Chalkias et al.).
#[test]
fn small_order_public_keys_are_rejected() {
    let small_order = [
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    ];
    for point in small_order {
        let err = UserId::from_bytes(hex(point)).unwrap_err();
        assert!(
            matches!(err, IdentityError::WeakPublicKey),
            "{point}: {err:?}"
        );
        assert_eq!(err.code(), "identity.weak_public_key");
    }
}

#[test]
fn invalid_and_non_canonical_points_are_rejected() {
    // y = 2 gives a non-square x², so it is not on the curve.
    let mut not_on_curve = [0u8; 32];
    not_on_curve[0] = 2;
    assert!(matches!(
        UserId::from_bytes(not_on_curve),
        Err(IdentityError::InvalidPublicKey)
    ));

    // y = 3 is on the curve; y = 3 + p encodes the same point non-canonically.
    let mut canonical = [0u8; 32];
    canonical[0] = 3;
    UserId::from_bytes(canonical).unwrap();
    let mut non_canonical = [0xffu8; 32];
    non_canonical[0] = 0xed + 3;
    non_canonical[31] = 0x7f;
    assert!(matches!(
        UserId::from_bytes(non_canonical),
        Err(IdentityError::InvalidPublicKey)
    ));

    // The identity point with the sign bit set (x = -0) is non-canonical too.
    let mut negative_zero = [0u8; 32];
    negative_zero[0] = 1;
    negative_zero[31] = 0x80;
    assert!(UserId::from_bytes(negative_zero).is_err());
}

#[test]
fn from_slice_checks_length_then_point() {
    let id = identity(3).user_id();
    assert_eq!(UserId::from_slice(id.as_bytes()).unwrap(), id);
    for len in [0, 31, 33] {
        let err = UserId::from_slice(&vec![9u8; len]).unwrap_err();
        assert!(matches!(err, IdentityError::InvalidUserIdLength { found } if found == len));
    }
    let mut bad = [0u8; 32];
    bad[0] = 2;
    assert!(matches!(
        UserId::from_slice(&bad),
        Err(IdentityError::InvalidPublicKey)
    ));
}

#[test]
fn user_id_round_trips_through_bytes() {
    let id = identity(4);
    let user = id.user_id();
    assert_eq!(UserId::from_bytes(*user.as_bytes()).unwrap(), user);
    let again = Identity::from_secret_bytes(&id.secret_bytes());
    assert_eq!(again.user_id(), user);
}

#[test]
fn libp2p_keypair_is_the_same_key() {
    let id = identity(5);
    let keypair = id.to_libp2p_keypair();
    assert_eq!(keypair.public().to_peer_id(), id.user_id().to_peer_id());
    // A libp2p signature (empty context) verifies as ours.
    let raw = keypair.sign(b"transport").unwrap();
    let signature = Signature::from_slice(&raw).unwrap();
    id.user_id().verify(b"", b"transport", &signature).unwrap();
    assert!(
        identity(6)
            .user_id()
            .verify(b"", b"transport", &signature)
            .is_err()
    );
}

#[test]
fn peer_id_string_round_trip() {
    for seed in 0..8 {
        let user = identity(seed).user_id();
        let peer = user.to_peer_id();
        let text = user.to_string();
        assert_eq!(text, peer.to_string());
        assert!(text.starts_with("12D3KooW"), "{text}");
        assert_eq!(text.parse::<UserId>().unwrap(), user);
        assert_eq!(UserId::from_peer_id(&peer).unwrap(), user);
        assert_eq!(UserId::try_from(&peer).unwrap(), user);
        assert_eq!(PeerId::from(user), peer);
        assert_eq!(format!("{user:?}"), format!("UserId({text})"));
    }
}

#[test]
fn non_ed25519_peer_ids_are_rejected() {
    // A SHA-256 multihash peer id (as used for RSA keys).
    let mut sha256 = vec![0x12, 0x20];
    sha256.extend_from_slice(&[0xab; 32]);
    let hashed = PeerId::from_bytes(&sha256).unwrap();
    let err = UserId::from_peer_id(&hashed).unwrap_err();
    assert!(matches!(err, IdentityError::NotEd25519PeerId), "{err:?}");
    assert!(matches!(
        hashed.to_string().parse::<UserId>(),
        Err(IdentityError::NotEd25519PeerId)
    ));

    // An identity multihash of a secp256k1 public key (protobuf type 2).
    let mut protobuf = vec![0x08, 0x02, 0x12, 0x21, 0x02];
    protobuf.extend_from_slice(&[0x79; 32]);
    let mut identity_multihash = vec![0x00, protobuf.len() as u8];
    identity_multihash.extend_from_slice(&protobuf);
    let secp = PeerId::from_bytes(&identity_multihash).unwrap();
    assert!(matches!(
        UserId::from_peer_id(&secp),
        Err(IdentityError::NotEd25519PeerId)
    ));
}

#[test]
fn non_canonical_peer_id_encoding_is_rejected() {
    // The same Ed25519 key with the protobuf fields in reverse order.
    let user = identity(8).user_id();
    let mut protobuf = vec![0x12, 0x20];
    protobuf.extend_from_slice(user.as_bytes());
    protobuf.extend_from_slice(&[0x08, 0x01]);
    let mut multihash = vec![0x00, protobuf.len() as u8];
    multihash.extend_from_slice(&protobuf);
    let peer = PeerId::from_bytes(&multihash).unwrap();
    assert_ne!(peer, user.to_peer_id());
    let err = UserId::from_peer_id(&peer).unwrap_err();
    assert!(
        matches!(err, IdentityError::InvalidPeerId { .. }),
        "{err:?}"
    );
}

#[test]
fn garbage_peer_id_strings_are_rejected() {
    for text in ["", "hello", "12D3KooW", "QmNotReallyAPeerId0000"] {
        let err = text.parse::<UserId>().unwrap_err();
        assert!(
            matches!(err, IdentityError::InvalidPeerId { .. }),
            "{text:?}: {err:?}"
        );
        assert_eq!(err.code(), "identity.invalid_peer_id");
    }
}
