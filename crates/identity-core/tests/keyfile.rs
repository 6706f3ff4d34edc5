//! The encrypted identity file format: round trips and every failure rule.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use identity_core::{Identity, IdentityError, KdfParams, Keyfile, Passphrase, Protection, WrapKey};
use rand::SeedableRng;
use rand::rngs::StdRng;

const PASSPHRASE_LEN: usize = 174;
const KEYRING_LEN: usize = 146;
/// Offsets in a passphrase-protected file.
const M_COST: usize = 42;
const NONCE: usize = 70;
const CIPHERTEXT: usize = 94;
const CHECKSUM: usize = 142;

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn passphrase_file(seed: u64) -> (Identity, Vec<u8>) {
    let mut rng = rng(seed);
    let identity = Identity::generate(&mut rng);
    let bytes = Keyfile::seal_with_passphrase(
        &mut rng,
        &identity,
        &Passphrase::new("correct horse battery staple"),
        KdfParams::for_tests(),
    )
    .unwrap();
    (identity, bytes)
}

fn keyring_file(seed: u64) -> (Identity, WrapKey, Vec<u8>) {
    let mut rng = rng(seed);
    let identity = Identity::generate(&mut rng);
    let wrap = WrapKey::generate(&mut rng);
    let bytes = Keyfile::seal_with_wrap_key(&mut rng, &identity, &wrap);
    (identity, wrap, bytes)
}

/// Recomputes the trailing BLAKE3 checksum, as a deliberate attacker would.
fn fix_checksum(bytes: &mut [u8]) {
    let end = bytes.len() - 32;
    let checksum = *blake3::hash(&bytes[..end]).as_bytes();
    bytes[end..].copy_from_slice(&checksum);
}

fn good() -> Passphrase {
    Passphrase::new("correct horse battery staple")
}

#[test]
fn passphrase_round_trip() {
    let (identity, bytes) = passphrase_file(1);
    assert_eq!(bytes.len(), PASSPHRASE_LEN);
    let keyfile = Keyfile::parse(&bytes).unwrap();
    assert_eq!(keyfile.user_id(), identity.user_id());
    assert_eq!(
        keyfile.protection(),
        &Protection::Passphrase(KdfParams::for_tests())
    );
    let unlocked = keyfile.unlock_with_passphrase(&good()).unwrap();
    assert_eq!(unlocked.user_id(), identity.user_id());
    assert_eq!(*unlocked.secret_bytes(), *identity.secret_bytes());
}

#[test]
fn keyring_round_trip() {
    let (identity, wrap, bytes) = keyring_file(2);
    assert_eq!(bytes.len(), KEYRING_LEN);
    let keyfile = Keyfile::parse(&bytes).unwrap();
    assert_eq!(keyfile.user_id(), identity.user_id());
    assert_eq!(keyfile.protection(), &Protection::Keyring);
    let unlocked = keyfile.unlock_with_wrap_key(&wrap).unwrap();
    assert_eq!(*unlocked.secret_bytes(), *identity.secret_bytes());
    let restored = WrapKey::from_bytes(*wrap.as_bytes());
    keyfile.unlock_with_wrap_key(&restored).unwrap();
}

#[test]
fn the_seed_is_not_stored_in_clear() {
    let (identity, bytes) = passphrase_file(3);
    let (_, _, keyring_bytes) = keyring_file(3);
    for file in [&bytes, &keyring_bytes] {
        assert!(
            !file
                .windows(32)
                .any(|w| w == identity.secret_bytes().as_slice())
        );
    }
}

#[test]
fn sealing_twice_gives_different_files() {
    let mut rng = rng(4);
    let identity = Identity::generate(&mut rng);
    let params = KdfParams::for_tests();
    let a = Keyfile::seal_with_passphrase(&mut rng, &identity, &good(), params).unwrap();
    let b = Keyfile::seal_with_passphrase(&mut rng, &identity, &good(), params).unwrap();
    assert_ne!(a, b, "fresh salt and nonce each time");
}

#[test]
fn wrong_passphrase() {
    let (_, bytes) = passphrase_file(5);
    let keyfile = Keyfile::parse(&bytes).unwrap();
    for wrong in [
        "correct horse battery stapler",
        "",
        "Correct horse battery staple",
    ] {
        let err = keyfile
            .unlock_with_passphrase(&Passphrase::new(wrong))
            .unwrap_err();
        assert!(matches!(err, IdentityError::WrongPassphrase), "{err:?}");
        assert_eq!(err.code(), "identity.wrong_passphrase");
        assert_eq!(
            err.to_string(),
            "wrong passphrase: the identity file could not be unlocked"
        );
    }
}

#[test]
fn wrong_keyring_secret() {
    let (_, _, bytes) = keyring_file(6);
    let keyfile = Keyfile::parse(&bytes).unwrap();
    let other = WrapKey::generate(&mut rng(60));
    let err = keyfile.unlock_with_wrap_key(&other).unwrap_err();
    assert!(matches!(err, IdentityError::WrongKeyringSecret), "{err:?}");
    assert_eq!(err.code(), "identity.wrong_keyring_secret");
}

#[test]
fn protection_mismatch_both_ways() {
    let (_, bytes) = passphrase_file(7);
    let err = Keyfile::parse(&bytes)
        .unwrap()
        .unlock_with_wrap_key(&WrapKey::generate(&mut rng(70)))
        .unwrap_err();
    assert!(
        matches!(err, IdentityError::KeyfileProtectionMismatch { locked_with } if locked_with == "a passphrase"),
        "{err:?}"
    );

    let (_, _, bytes) = keyring_file(7);
    let err = Keyfile::parse(&bytes)
        .unwrap()
        .unlock_with_passphrase(&good())
        .unwrap_err();
    assert!(
        matches!(err, IdentityError::KeyfileProtectionMismatch { locked_with } if locked_with == "the OS keyring"),
        "{err:?}"
    );
    assert_eq!(err.code(), "identity.keyfile_protection_mismatch");
}

#[test]
fn bad_magic_is_not_a_keyfile() {
    let (_, mut bytes) = passphrase_file(8);
    bytes[0] = b'X';
    assert!(matches!(
        Keyfile::parse(&bytes),
        Err(IdentityError::NotAKeyfile)
    ));
    for other in [
        &b"-----BEGIN OPENSSH PRIVATE KEY-----"[..],
        b"{\"key\": 1}",
        b"PALAVERX",
        b"Q",
    ] {
        let err = Keyfile::parse(other).unwrap_err();
        assert!(
            matches!(err, IdentityError::NotAKeyfile),
            "{other:?}: {err:?}"
        );
        assert_eq!(err.code(), "identity.not_a_keyfile");
    }
}

#[test]
fn unsupported_version() {
    let (_, mut bytes) = passphrase_file(9);
    for version in [0u8, 2, 255] {
        bytes[8] = version;
        fix_checksum(&mut bytes);
        let err = Keyfile::parse(&bytes).unwrap_err();
        assert!(
            matches!(err, IdentityError::UnsupportedKeyfileVersion { found } if found == version),
            "{err:?}"
        );
        assert_eq!(err.code(), "identity.unsupported_keyfile_version");
    }
}

#[test]
fn unsupported_protection() {
    let (_, mut bytes) = passphrase_file(10);
    bytes[9] = 3;
    let err = Keyfile::parse(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            IdentityError::UnsupportedKeyfileProtection { found: 3 }
        ),
        "{err:?}"
    );
}

#[test]
fn every_truncation_is_reported_as_truncated() {
    let (_, bytes) = passphrase_file(11);
    for len in 0..bytes.len() {
        let err = Keyfile::parse(&bytes[..len]).unwrap_err();
        let expected = if len < 10 {
            KEYRING_LEN
        } else {
            PASSPHRASE_LEN
        };
        match err {
            IdentityError::KeyfileTruncated { expected: e, found } => {
                assert_eq!((e, found), (expected, len));
            }
            other => panic!("length {len}: {other:?}"),
        }
    }
    let (_, _, bytes) = keyring_file(11);
    let err = Keyfile::parse(&bytes[..KEYRING_LEN - 1]).unwrap_err();
    assert!(matches!(
        err,
        IdentityError::KeyfileTruncated {
            expected: KEYRING_LEN,
            found
        } if found == KEYRING_LEN - 1
    ));
    assert_eq!(
        err.to_string(),
        "the identity file is truncated (expected at least 146 bytes, found 145)"
    );
    assert_eq!(err.code(), "identity.keyfile_truncated");
}

#[test]
fn trailing_bytes_are_corruption() {
    let (_, mut bytes) = passphrase_file(12);
    bytes.push(0);
    let err = Keyfile::parse(&bytes).unwrap_err();
    assert!(
        matches!(err, IdentityError::KeyfileCorrupted { .. }),
        "{err:?}"
    );
}

/// Any single flipped bit after the magic/version/protection bytes is caught
/// by the checksum; in the header, the ciphertext or the checksum itself.
#[test]
fn every_flipped_bit_is_detected_as_corruption() {
    let (_, bytes) = passphrase_file(13);
    for index in 10..bytes.len() {
        for bit in [0, 3, 7] {
            let mut tampered = bytes.clone();
            tampered[index] ^= 1 << bit;
            let err = Keyfile::parse(&tampered).unwrap_err();
            assert!(
                matches!(err, IdentityError::KeyfileCorrupted { reason } if reason == "checksum mismatch"),
                "byte {index} bit {bit}: {err:?}"
            );
        }
    }
    let err = Keyfile::parse(&{
        let mut t = bytes.clone();
        t[CHECKSUM] ^= 1;
        t
    })
    .unwrap_err();
    assert_eq!(err.code(), "identity.keyfile_corrupted");
    assert_eq!(
        err.to_string(),
        "the identity file is damaged or was modified (checksum mismatch)"
    );
}

/// With a recomputed checksum, tampering reads as a wrong passphrase: the
/// header is AEAD associated data, so no edit unlocks to anything.
#[test]
fn deliberate_tampering_with_a_fixed_checksum_cannot_unlock() {
    let (identity, bytes) = passphrase_file(14);
    // Ciphertext, nonce, salt, KDF parameters.
    for index in [CIPHERTEXT, CIPHERTEXT + 47, NONCE, NONCE - 1, M_COST] {
        let mut tampered = bytes.clone();
        tampered[index] ^= 0x01;
        fix_checksum(&mut tampered);
        let keyfile = Keyfile::parse(&tampered).unwrap();
        let err = keyfile.unlock_with_passphrase(&good()).unwrap_err();
        assert!(
            matches!(err, IdentityError::WrongPassphrase),
            "byte {index}: {err:?}"
        );
    }
    // Swapping in someone else's public key.
    let mut tampered = bytes.clone();
    tampered[10..42].copy_from_slice(Identity::generate(&mut rng(140)).user_id().as_bytes());
    fix_checksum(&mut tampered);
    let keyfile = Keyfile::parse(&tampered).unwrap();
    assert_ne!(keyfile.user_id(), identity.user_id());
    assert!(matches!(
        keyfile.unlock_with_passphrase(&good()),
        Err(IdentityError::WrongPassphrase)
    ));

    let (_, wrap, bytes) = keyring_file(14);
    let mut tampered = bytes.clone();
    tampered[50] ^= 0x80;
    fix_checksum(&mut tampered);
    assert!(matches!(
        Keyfile::parse(&tampered)
            .unwrap()
            .unlock_with_wrap_key(&wrap),
        Err(IdentityError::WrongKeyringSecret)
    ));
}

#[test]
fn invalid_public_key_in_header_is_corruption() {
    let (_, mut bytes) = passphrase_file(15);
    bytes[10..42].copy_from_slice(&[0u8; 32]); // small-order point
    fix_checksum(&mut bytes);
    let err = Keyfile::parse(&bytes).unwrap_err();
    assert!(
        matches!(err, IdentityError::KeyfileCorrupted { .. }),
        "{err:?}"
    );
}

/// A hostile file asking for 4 TiB of memory or 2^32 iterations is refused
/// by `parse`, before Argon2id could run (it would abort or hang otherwise).
#[test]
fn hostile_kdf_params_are_rejected_on_parse() {
    let (_, bytes) = passphrase_file(16);
    let cases: [(usize, u32, &str); 6] = [
        (M_COST, u32::MAX, "memory_kib"),
        (M_COST, KdfParams::MAX_MEMORY_KIB + 1, "memory_kib"),
        (M_COST, 0, "memory_kib"),
        (M_COST + 4, u32::MAX, "iterations"),
        (M_COST + 4, 0, "iterations"),
        (M_COST + 8, 1_000, "parallelism"),
    ];
    for (offset, value, param_name) in cases {
        let mut hostile = bytes.clone();
        hostile[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
        fix_checksum(&mut hostile);
        let err = Keyfile::parse(&hostile).unwrap_err();
        assert!(
            matches!(err, IdentityError::KdfParamsOutOfRange { param, value: v, .. } if param == param_name && v == value),
            "{param_name}={value}: {err:?}"
        );
        assert_eq!(err.code(), "identity.kdf_params_out_of_range");
    }
}

#[test]
fn sealing_rejects_bad_params_and_empty_passphrases() {
    let mut rng = rng(17);
    let identity = Identity::generate(&mut rng);
    let huge = KdfParams {
        memory_kib: u32::MAX,
        ..KdfParams::for_tests()
    };
    assert!(matches!(
        Keyfile::seal_with_passphrase(&mut rng, &identity, &good(), huge),
        Err(IdentityError::KdfParamsOutOfRange { .. })
    ));
    assert!(matches!(
        Keyfile::seal_with_passphrase(
            &mut rng,
            &identity,
            &Passphrase::new(""),
            KdfParams::for_tests()
        ),
        Err(IdentityError::EmptyPassphrase)
    ));
}

#[test]
fn each_failure_has_its_own_code() {
    let (_, bytes) = passphrase_file(18);
    let keyfile = Keyfile::parse(&bytes).unwrap();
    let mut flipped = bytes.clone();
    flipped[CIPHERTEXT] ^= 1;
    let mut version = bytes.clone();
    version[8] = 2;
    let mut hostile = bytes.clone();
    hostile[M_COST..M_COST + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    fix_checksum(&mut hostile);
    let errors = [
        keyfile
            .unlock_with_passphrase(&Passphrase::new("nope"))
            .unwrap_err(),
        keyfile
            .unlock_with_wrap_key(&WrapKey::from_bytes([0; 32]))
            .unwrap_err(),
        Keyfile::parse(&bytes[..100]).unwrap_err(),
        Keyfile::parse(&flipped).unwrap_err(),
        Keyfile::parse(b"NOTAKEYFILE").unwrap_err(),
        Keyfile::parse(&version).unwrap_err(),
        Keyfile::parse(&hostile).unwrap_err(),
        Keyfile::parse(&keyring_file(18).2)
            .unwrap()
            .unlock_with_wrap_key(&WrapKey::from_bytes([0; 32]))
            .unwrap_err(),
    ];
    let codes: HashSet<&str> = errors.iter().map(IdentityError::code).collect();
    assert_eq!(codes.len(), errors.len(), "{codes:?}");
}

/// The one test that runs Argon2id with the production parameters.
#[test]
fn default_params_seal_and_are_recorded() {
    let mut rng = rng(19);
    let identity = Identity::generate(&mut rng);
    let bytes =
        Keyfile::seal_with_passphrase(&mut rng, &identity, &good(), KdfParams::DEFAULT).unwrap();
    let keyfile = Keyfile::parse(&bytes).unwrap();
    assert_eq!(
        keyfile.protection(),
        &Protection::Passphrase(KdfParams::DEFAULT)
    );
    assert_eq!(bytes[M_COST..M_COST + 4], (64u32 * 1024).to_le_bytes());
    assert_eq!(bytes[M_COST + 4..M_COST + 8], 3u32.to_le_bytes());
    assert_eq!(bytes[M_COST + 8..M_COST + 12], 1u32.to_le_bytes());
}
