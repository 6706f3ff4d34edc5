//! Secrets never appear in `Debug` output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use identity_core::{Identity, KdfParams, Keyfile, Passphrase, WrapKey};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Asserts that `debug` contains none of the usual renderings of `secret`.
fn assert_hidden(debug: &str, secret: &[u8]) {
    let lower: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let upper = lower.to_uppercase();
    let list = format!("{secret:?}");
    let list_tail = format!("{:?}", &secret[secret.len() / 2..]);
    let raw = String::from_utf8_lossy(secret);
    for rendering in [
        &lower[..],
        &upper,
        &lower[..16],
        &list,
        &list_tail[1..],
        &raw,
    ] {
        assert!(
            !debug.contains(rendering),
            "secret rendering {rendering:?} found in {debug:?}"
        );
    }
}

#[test]
fn secrets_are_redacted_from_debug_output() {
    let mut rng = StdRng::seed_from_u64(1);
    let identity = Identity::generate(&mut rng);
    let seed = identity.secret_bytes();
    let scalar = identity.x25519_secret().to_bytes();
    let user = identity.user_id().to_string();

    let debug = format!("{identity:?}");
    assert_eq!(debug, format!("Identity {{ user_id: {user}, .. }}"));
    assert_hidden(&debug, &seed[..]);
    assert_hidden(&debug, &scalar);
    assert_hidden(&format!("{identity:#?}"), &seed[..]);

    let storage = identity.storage_key();
    assert_eq!(format!("{storage:?}"), "StorageKey(<redacted>)");
    assert_hidden(&format!("{storage:?}"), storage.as_bytes());

    let peer = Identity::generate(&mut rng);
    let dm = identity.dm_key(&peer.user_id()).unwrap();
    assert_eq!(format!("{dm:?}"), "DmKey(<redacted>)");
    assert_hidden(&format!("{dm:?}"), dm.as_bytes());

    let wrap = WrapKey::generate(&mut rng);
    assert_eq!(format!("{wrap:?}"), "WrapKey(<redacted>)");
    assert_hidden(&format!("{wrap:?}"), wrap.as_bytes());

    let secret_text = "hunter2 is my passphrase";
    let passphrase = Passphrase::new(secret_text);
    let debug = format!("{passphrase:?}");
    assert_eq!(debug, "Passphrase(<redacted>)");
    assert!(!debug.contains("hunter2"));
    assert_hidden(&debug, secret_text.as_bytes());

    // A locked keyfile shows who and how, never the sealed seed.
    let bytes =
        Keyfile::seal_with_passphrase(&mut rng, &identity, &passphrase, KdfParams::for_tests())
            .unwrap();
    let keyfile = Keyfile::parse(&bytes).unwrap();
    let debug = format!("{keyfile:?}");
    assert!(debug.contains(&user), "{debug}");
    assert_hidden(&debug, &seed[..]);
    assert_hidden(&debug, &bytes[94..142]);

    // Nested in other structures, the redaction holds.
    let nested = format!(
        "{:?}",
        (Some(&identity), vec![storage.clone()], &passphrase)
    );
    assert_hidden(&nested, &seed[..]);
    assert_hidden(&nested, storage.as_bytes());
    assert!(!nested.contains("hunter2"));
}

#[cfg(feature = "keystore")]
#[test]
fn unlock_debug_is_redacted() {
    let passphrase = Passphrase::new("hunter2");
    let debug = format!("{:?}", identity_core::Unlock::Passphrase(&passphrase));
    assert_eq!(debug, "Unlock::Passphrase(<redacted>)");
}
