//! The on-disk key store and the vault abstraction (feature `keystore`).
#![cfg(feature = "keystore")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::fs;
use std::sync::Mutex;

use identity_core::keystore::{IDENTITY_FILE_NAME, KeyStore, OsKeyring, SecretVault, Unlock};
use identity_core::{Identity, IdentityError, KdfParams, Passphrase, Protection, WrapKey};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// An in-memory vault: a test double for the OS keyring.
#[derive(Default)]
struct MemoryVault {
    secrets: Mutex<HashMap<String, [u8; 32]>>,
}

impl MemoryVault {
    fn len(&self) -> usize {
        self.secrets.lock().unwrap().len()
    }
}

impl SecretVault for MemoryVault {
    fn put(&self, account: &str, secret: &WrapKey) -> Result<(), IdentityError> {
        self.secrets
            .lock()
            .unwrap()
            .insert(account.to_owned(), *secret.as_bytes());
        Ok(())
    }

    fn get(&self, account: &str) -> Result<Option<WrapKey>, IdentityError> {
        Ok(self
            .secrets
            .lock()
            .unwrap()
            .get(account)
            .map(|bytes| WrapKey::from_bytes(*bytes)))
    }

    fn delete(&self, account: &str) -> Result<(), IdentityError> {
        self.secrets.lock().unwrap().remove(account);
        Ok(())
    }
}

/// A vault that always fails, like a keyring with no secret service.
struct BrokenVault;

impl SecretVault for BrokenVault {
    fn put(&self, _: &str, _: &WrapKey) -> Result<(), IdentityError> {
        Err(IdentityError::KeyringUnavailable {
            reason: "no secret service".into(),
        })
    }

    fn get(&self, _: &str) -> Result<Option<WrapKey>, IdentityError> {
        Err(IdentityError::KeyringUnavailable {
            reason: "no secret service".into(),
        })
    }

    fn delete(&self, _: &str) -> Result<(), IdentityError> {
        Err(IdentityError::KeyringUnavailable {
            reason: "no secret service".into(),
        })
    }
}

/// A vault that accepts writes but loses them.
struct ForgetfulVault;

impl SecretVault for ForgetfulVault {
    fn put(&self, _: &str, _: &WrapKey) -> Result<(), IdentityError> {
        Ok(())
    }

    fn get(&self, _: &str) -> Result<Option<WrapKey>, IdentityError> {
        Ok(None)
    }

    fn delete(&self, _: &str) -> Result<(), IdentityError> {
        Ok(())
    }
}

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn pass(text: &str) -> Passphrase {
    Passphrase::new(text)
}

const PARAMS: KdfParams = KdfParams::for_tests();

#[test]
fn create_with_passphrase_then_unlock() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::new(dir.path().join("data"));
    assert!(!store.exists());
    let mut rng = rng(1);
    let identity = Identity::generate(&mut rng);
    let protection = store
        .create(&mut rng, &identity, Some(&pass("pw")), None, PARAMS)
        .unwrap();
    assert_eq!(protection, Protection::Passphrase(PARAMS));
    assert!(store.exists());
    assert_eq!(
        store.path(),
        dir.path().join("data").join(IDENTITY_FILE_NAME)
    );
    assert_eq!(store.read_user_id().unwrap(), identity.user_id());
    let unlocked = store.unlock(Unlock::Passphrase(&pass("pw"))).unwrap();
    assert_eq!(*unlocked.secret_bytes(), *identity.secret_bytes());
    assert!(!dir.path().join("data").join("identity.key.tmp").exists());
}

#[test]
fn passphrase_wins_over_the_vault() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::new(dir.path());
    let vault = MemoryVault::default();
    let mut rng = rng(2);
    let identity = Identity::generate(&mut rng);
    let protection = store
        .create(&mut rng, &identity, Some(&pass("pw")), Some(&vault), PARAMS)
        .unwrap();
    assert_eq!(protection, Protection::Passphrase(PARAMS));
    assert_eq!(vault.len(), 0);
}

#[test]
fn create_with_vault_then_unlock() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::new(dir.path());
    let vault = MemoryVault::default();
    let mut rng = rng(3);
    let identity = Identity::generate(&mut rng);
    // An empty passphrase counts as none.
    let protection = store
        .create(&mut rng, &identity, Some(&pass("")), Some(&vault), PARAMS)
        .unwrap();
    assert_eq!(protection, Protection::Keyring);
    assert_eq!(vault.len(), 1);
    assert!(
        vault
            .get(&identity.user_id().to_string())
            .unwrap()
            .is_some()
    );
    let unlocked = store.unlock(Unlock::Vault(&vault)).unwrap();
    assert_eq!(unlocked.user_id(), identity.user_id());

    // Wrong way round, missing secret, wrong secret.
    assert!(matches!(
        store.unlock(Unlock::Passphrase(&pass("pw"))),
        Err(IdentityError::KeyfileProtectionMismatch { .. })
    ));
    assert!(matches!(
        store.unlock(Unlock::Vault(&MemoryVault::default())),
        Err(IdentityError::KeyringSecretMissing)
    ));
    let wrong = MemoryVault::default();
    wrong
        .put(
            &identity.user_id().to_string(),
            &WrapKey::generate(&mut rng),
        )
        .unwrap();
    assert!(matches!(
        store.unlock(Unlock::Vault(&wrong)),
        Err(IdentityError::WrongKeyringSecret)
    ));
    let err = store.unlock(Unlock::Vault(&BrokenVault)).unwrap_err();
    assert!(
        matches!(err, IdentityError::KeyringUnavailable { .. }),
        "{err:?}"
    );
}

#[test]
fn vault_protected_file_rejects_vault_unlock_of_passphrase_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::new(dir.path());
    let mut rng = rng(4);
    let identity = Identity::generate(&mut rng);
    store
        .create(&mut rng, &identity, Some(&pass("pw")), None, PARAMS)
        .unwrap();
    let vault = MemoryVault::default();
    assert!(matches!(
        store.unlock(Unlock::Vault(&vault)),
        Err(IdentityError::KeyfileProtectionMismatch { locked_with }) if locked_with == "a passphrase"
    ));
}

#[test]
fn no_passphrase_and_a_failing_vault_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = KeyStore::new(&data);
    let mut rng = rng(5);
    let identity = Identity::generate(&mut rng);
    let cases: [(Option<&Passphrase>, Option<&dyn SecretVault>); 5] = [
        (None, Some(&BrokenVault)),
        (None, Some(&ForgetfulVault)),
        (None, None),
        (Some(&pass("")), None),
        (Some(&pass("")), Some(&BrokenVault)),
    ];
    for (passphrase, vault) in cases {
        let err = store
            .create(&mut rng, &identity, passphrase, vault, PARAMS)
            .unwrap_err();
        assert!(matches!(err, IdentityError::NoKeyProtection), "{err:?}");
        assert_eq!(err.code(), "identity.no_key_protection");
        assert_eq!(
            err.to_string(),
            "no OS keyring is available and no passphrase was given; \
             set PALAVER_PASSPHRASE or use --passphrase-file"
        );
        assert!(!store.exists());
        assert!(
            !data.exists() || fs::read_dir(&data).unwrap().next().is_none(),
            "nothing may be written"
        );
    }
}

#[test]
fn create_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::new(dir.path());
    let mut rng = rng(6);
    let first = Identity::generate(&mut rng);
    store
        .create(&mut rng, &first, Some(&pass("pw")), None, PARAMS)
        .unwrap();
    let before = fs::read(store.path()).unwrap();
    let second = Identity::generate(&mut rng);
    let vault = MemoryVault::default();
    let err = store
        .create(&mut rng, &second, Some(&pass("pw")), Some(&vault), PARAMS)
        .unwrap_err();
    assert!(
        matches!(&err, IdentityError::IdentityExists { path } if *path == store.path()),
        "{err:?}"
    );
    assert_eq!(err.code(), "identity.already_exists");
    assert_eq!(fs::read(store.path()).unwrap(), before);
    assert_eq!(store.read_user_id().unwrap(), first.user_id());
    // The vault route is refused as well, and leaves no secret behind.
    assert!(matches!(
        store.create(&mut rng, &second, None, Some(&vault), PARAMS),
        Err(IdentityError::IdentityExists { .. })
    ));
    assert_eq!(vault.len(), 0);
}

#[test]
fn missing_identity() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::new(dir.path());
    for err in [
        store.read_user_id().unwrap_err(),
        store.unlock(Unlock::Passphrase(&pass("pw"))).unwrap_err(),
    ] {
        assert!(
            matches!(&err, IdentityError::IdentityNotFound { path } if *path == store.path()),
            "{err:?}"
        );
        assert_eq!(err.code(), "identity.not_found");
    }
}

#[test]
fn unlock_with_a_wrong_passphrase_leaves_the_file_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::new(dir.path());
    let mut rng = rng(7);
    let identity = Identity::generate(&mut rng);
    store
        .create(&mut rng, &identity, Some(&pass("right")), None, PARAMS)
        .unwrap();
    let before = fs::read(store.path()).unwrap();
    let modified_before = fs::metadata(store.path()).unwrap().modified().unwrap();
    for attempt in ["wrong", "Right", "right "] {
        let err = store
            .unlock(Unlock::Passphrase(&pass(attempt)))
            .unwrap_err();
        assert!(matches!(err, IdentityError::WrongPassphrase), "{err:?}");
    }
    store.unlock(Unlock::Passphrase(&pass("right"))).unwrap();
    assert_eq!(fs::read(store.path()).unwrap(), before);
    assert_eq!(
        fs::metadata(store.path()).unwrap().modified().unwrap(),
        modified_before
    );
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [IDENTITY_FILE_NAME]);
}

#[test]
fn corrupted_file_on_disk_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::new(dir.path());
    let mut rng = rng(8);
    let identity = Identity::generate(&mut rng);
    store
        .create(&mut rng, &identity, Some(&pass("pw")), None, PARAMS)
        .unwrap();
    let mut bytes = fs::read(store.path()).unwrap();
    bytes[100] ^= 0x10;
    fs::write(store.path(), &bytes).unwrap();
    assert!(matches!(
        store.unlock(Unlock::Passphrase(&pass("pw"))),
        Err(IdentityError::KeyfileCorrupted { .. })
    ));
    fs::write(store.path(), &bytes[..50]).unwrap();
    assert!(matches!(
        store.read_user_id(),
        Err(IdentityError::KeyfileTruncated { .. })
    ));
    fs::write(store.path(), vec![b'x'; 1 << 20]).unwrap();
    assert!(matches!(
        store.read_user_id(),
        Err(IdentityError::NotAKeyfile)
    ));
}

#[test]
fn change_passphrase_replaces_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::new(dir.path());
    let mut rng = rng(9);
    let identity = Identity::generate(&mut rng);
    store
        .create(&mut rng, &identity, Some(&pass("old")), None, PARAMS)
        .unwrap();

    let err = store
        .change_passphrase(
            &mut rng,
            Unlock::Passphrase(&pass("nope")),
            &pass("new"),
            PARAMS,
        )
        .unwrap_err();
    assert!(matches!(err, IdentityError::WrongPassphrase));
    assert!(matches!(
        store.change_passphrase(
            &mut rng,
            Unlock::Passphrase(&pass("old")),
            &pass(""),
            PARAMS
        ),
        Err(IdentityError::EmptyPassphrase)
    ));
    store.unlock(Unlock::Passphrase(&pass("old"))).unwrap();

    store
        .change_passphrase(
            &mut rng,
            Unlock::Passphrase(&pass("old")),
            &pass("new"),
            PARAMS,
        )
        .unwrap();
    assert!(matches!(
        store.unlock(Unlock::Passphrase(&pass("old"))),
        Err(IdentityError::WrongPassphrase)
    ));
    let unlocked = store.unlock(Unlock::Passphrase(&pass("new"))).unwrap();
    assert_eq!(*unlocked.secret_bytes(), *identity.secret_bytes());
    assert!(!dir.path().join("identity.key.tmp").exists());
}

#[test]
fn change_from_keyring_to_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::new(dir.path());
    let vault = MemoryVault::default();
    let mut rng = rng(10);
    let identity = Identity::generate(&mut rng);
    store
        .create(&mut rng, &identity, None, Some(&vault), PARAMS)
        .unwrap();
    store
        .change_passphrase(&mut rng, Unlock::Vault(&vault), &pass("new"), PARAMS)
        .unwrap();
    let unlocked = store.unlock(Unlock::Passphrase(&pass("new"))).unwrap();
    assert_eq!(unlocked.user_id(), identity.user_id());
    assert!(matches!(
        store.unlock(Unlock::Vault(&vault)),
        Err(IdentityError::KeyfileProtectionMismatch { .. })
    ));
}

/// A second copy of the same identity reuses the keyring secret instead of
/// replacing it, so the first copy still unlocks.
#[test]
fn same_identity_in_two_data_dirs_shares_the_vault_secret() {
    let dir = tempfile::tempdir().unwrap();
    let vault = MemoryVault::default();
    let mut rng = rng(11);
    let identity = Identity::generate(&mut rng);
    let first = KeyStore::new(dir.path().join("a"));
    let second = KeyStore::new(dir.path().join("b"));
    first
        .create(&mut rng, &identity, None, Some(&vault), PARAMS)
        .unwrap();
    second
        .create(&mut rng, &identity, None, Some(&vault), PARAMS)
        .unwrap();
    assert_eq!(vault.len(), 1);
    first.unlock(Unlock::Vault(&vault)).unwrap();
    second.unlock(Unlock::Vault(&vault)).unwrap();
}

#[cfg(unix)]
#[test]
fn files_and_directory_are_private() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested").join("data");
    let store = KeyStore::new(&data);
    let mut rng = rng(12);
    let identity = Identity::generate(&mut rng);
    store
        .create(&mut rng, &identity, Some(&pass("pw")), None, PARAMS)
        .unwrap();
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&store.path()), 0o600);
    assert_eq!(mode(&data), 0o700);
    store
        .change_passphrase(
            &mut rng,
            Unlock::Passphrase(&pass("pw")),
            &pass("pw2"),
            PARAMS,
        )
        .unwrap();
    assert_eq!(mode(&store.path()), 0o600);
}

#[cfg(unix)]
#[test]
fn stale_temp_file_is_replaced() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join("identity.key.tmp");
    fs::write(&temp, b"left over from a crash").unwrap();
    fs::set_permissions(&temp, fs::Permissions::from_mode(0o644)).unwrap();
    let store = KeyStore::new(dir.path());
    let mut rng = rng(13);
    let identity = Identity::generate(&mut rng);
    store
        .create(&mut rng, &identity, Some(&pass("pw")), None, PARAMS)
        .unwrap();
    assert!(!temp.exists());
    let mode = fs::metadata(store.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    store.unlock(Unlock::Passphrase(&pass("pw"))).unwrap();
}

#[cfg(unix)]
#[test]
fn unwritable_directory_is_an_io_error() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    // A regular file where the data directory should be.
    let blocker = dir.path().join("data");
    fs::write(&blocker, b"").unwrap();
    fs::set_permissions(&blocker, fs::Permissions::from_mode(0o600)).unwrap();
    let store = KeyStore::new(&blocker);
    let mut rng = rng(14);
    let identity = Identity::generate(&mut rng);
    let err = store
        .create(&mut rng, &identity, Some(&pass("pw")), None, PARAMS)
        .unwrap_err();
    assert!(matches!(err, IdentityError::Io { .. }), "{err:?}");
    assert_eq!(err.category(), identity_core::ErrorCategory::Storage);
}

/// There is no D-Bus session on the test machine: the real keyring must fail
/// cleanly (an error, not a panic or a hang). Where a session bus exists the
/// probe may succeed, but any failure must still be `KeyringUnavailable`.
#[test]
fn os_keyring_probe_fails_cleanly_without_a_secret_service() {
    let keyring = OsKeyring::new("palaver-identity-core-test");
    assert_eq!(keyring.service(), "palaver-identity-core-test");
    let result = keyring.probe();
    let session_bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
        || std::env::var_os("XDG_RUNTIME_DIR")
            .is_some_and(|dir| std::path::Path::new(&dir).join("bus").exists());
    if cfg!(target_os = "linux") && !session_bus {
        assert!(result.is_err(), "no session bus, yet the keyring worked");
    }
    if let Err(err) = result {
        eprintln!("OS keyring unavailable here (expected): {err}");
        assert!(
            matches!(err, IdentityError::KeyringUnavailable { ref reason } if !reason.is_empty()),
            "{err:?}"
        );
        assert_eq!(err.code(), "identity.keyring_unavailable");
        assert_eq!(err.category(), identity_core::ErrorCategory::Config);
        // Every vault operation fails the same clean way.
        let wrap = WrapKey::from_bytes([1; 32]);
        assert!(matches!(
            keyring.put("account", &wrap),
            Err(IdentityError::KeyringUnavailable { .. })
        ));
        assert!(matches!(
            keyring.get("account"),
            Err(IdentityError::KeyringUnavailable { .. })
        ));
        // A create that can only use this keyring is refused and writes nothing.
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path());
        let mut rng = rng(15);
        let identity = Identity::generate(&mut rng);
        assert!(matches!(
            store.create(&mut rng, &identity, None, Some(&keyring), PARAMS),
            Err(IdentityError::NoKeyProtection)
        ));
        assert!(!store.exists());
    }
}
