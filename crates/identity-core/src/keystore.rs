//! Keeping the identity on disk and its wrap key in the OS keyring — the only
//! I/O in this crate (cargo feature `keystore`).
//!
//! [`KeyStore`] owns `<data_dir>/identity.key` (format: [`crate::keyfile`]).
//! Creating an identity picks its protection: a passphrase if one is given,
//! otherwise a random [`WrapKey`] stored in a [`SecretVault`] (normally the
//! OS keyring, [`OsKeyring`]) under the account name = the user id string.
//! If neither works it fails with [`IdentityError::NoKeyProtection`]; the
//! secret key is never written unencrypted.
//!
//! Writes are atomic and durable: the new content goes to
//! `identity.key.tmp` (mode 0600 on Unix), is `fsync`ed, then replaces or
//! becomes `identity.key` by rename (or by hard link when creating, so an
//! existing identity is never clobbered), and the directory is `fsync`ed. A
//! crash leaves either the old file or the new one, never a mix. The data
//! directory is created with mode 0700 on Unix. Unlocking only reads.
//!
//! One process should own a data directory at a time; this module does not
//! lock it.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use rand::CryptoRng;
use zeroize::Zeroizing;

use crate::error::IdentityError;
use crate::identity::Identity;
use crate::keyfile::{Keyfile, Protection, WrapKey};
use crate::passphrase::{KdfParams, Passphrase};
use crate::user_id::UserId;

/// The name of the identity file inside the data directory.
pub const IDENTITY_FILE_NAME: &str = "identity.key";
/// The temporary file a new identity file is written to before it is renamed.
const TEMP_FILE_NAME: &str = "identity.key.tmp";
/// Identity files are at most a few hundred bytes; reading stops after this
/// many so a wrong path cannot make us read a huge file.
const MAX_KEYFILE_READ: u64 = 4096;
/// The keyring account [`OsKeyring::probe`] writes to and deletes again.
const PROBE_ACCOUNT: &str = "palaver-keyring-probe";
/// The harmless, non-secret value [`OsKeyring::probe`] round-trips.
const PROBE_VALUE: &[u8] = b"palaver keyring probe";

/// A place where a 32-byte secret can be kept by name (the OS keyring, or a
/// test double).
pub trait SecretVault: Send + Sync {
    /// Stores `secret` under `account`, replacing any previous secret.
    ///
    /// # Errors
    ///
    /// [`IdentityError::KeyringUnavailable`] (or another error) if it cannot.
    fn put(&self, account: &str, secret: &WrapKey) -> Result<(), IdentityError>;

    /// The secret stored under `account`, or `None` if there is none.
    ///
    /// # Errors
    ///
    /// [`IdentityError::KeyringUnavailable`] (or another error) if the vault
    /// cannot be read.
    fn get(&self, account: &str) -> Result<Option<WrapKey>, IdentityError>;

    /// Deletes the secret stored under `account`; deleting a missing secret
    /// succeeds.
    ///
    /// # Errors
    ///
    /// [`IdentityError::KeyringUnavailable`] (or another error) if it cannot.
    fn delete(&self, account: &str) -> Result<(), IdentityError>;
}

/// The operating system's credential store (Secret Service on Linux and the
/// BSDs, Keychain on macOS, Credential Manager on Windows), via the `keyring`
/// crate. Secrets are stored under (`service`, account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsKeyring {
    service: String,
}

impl OsKeyring {
    /// A keyring handle for the given service name (e.g. `"palaver"`).
    pub fn new(service: &str) -> Self {
        OsKeyring {
            service: service.to_owned(),
        }
    }

    /// The service name secrets are stored under.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Checks that the keyring works by storing, reading back and deleting a
    /// harmless value under a probe account.
    ///
    /// # Errors
    ///
    /// [`IdentityError::KeyringUnavailable`] with the underlying reason, e.g.
    /// when there is no Secret Service on the session bus.
    pub fn probe(&self) -> Result<(), IdentityError> {
        let entry = self.entry(PROBE_ACCOUNT)?;
        entry.set_secret(PROBE_VALUE).map_err(unavailable)?;
        let read_back = entry.get_secret().map(Zeroizing::new);
        let deleted = entry.delete_credential();
        let read_back = read_back.map_err(unavailable)?;
        deleted.map_err(unavailable)?;
        if read_back.as_slice() != PROBE_VALUE {
            return Err(IdentityError::KeyringUnavailable {
                reason: "the keyring returned a different value than was stored".to_owned(),
            });
        }
        Ok(())
    }

    fn entry(&self, account: &str) -> Result<keyring::Entry, IdentityError> {
        // `Entry::new` reports a failed store initialisation only as
        // "no default store"; the stored status has the real reason.
        if let Err(error) = keyring::Entry::store_status() {
            return Err(unavailable(error));
        }
        keyring::Entry::new(&self.service, account).map_err(unavailable)
    }
}

impl SecretVault for OsKeyring {
    fn put(&self, account: &str, secret: &WrapKey) -> Result<(), IdentityError> {
        self.entry(account)?
            .set_secret(secret.as_bytes())
            .map_err(unavailable)
    }

    fn get(&self, account: &str) -> Result<Option<WrapKey>, IdentityError> {
        match self.entry(account)?.get_secret() {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                let key: &[u8; 32] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| IdentityError::WrongKeyringSecret)?;
                Ok(Some(WrapKey::from_bytes(*key)))
            }
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(error) => Err(unavailable(error)),
        }
    }

    fn delete(&self, account: &str) -> Result<(), IdentityError> {
        match self.entry(account)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }
}

fn unavailable(error: impl fmt::Display) -> IdentityError {
    IdentityError::KeyringUnavailable {
        reason: error.to_string(),
    }
}

/// How to unlock an identity file.
#[derive(Clone, Copy)]
pub enum Unlock<'a> {
    /// With a passphrase (for a passphrase-protected file).
    Passphrase(&'a Passphrase),
    /// With the wrap key kept in this vault (for a keyring-protected file).
    Vault(&'a dyn SecretVault),
}

impl fmt::Debug for Unlock<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unlock::Passphrase(_) => f.write_str("Unlock::Passphrase(<redacted>)"),
            Unlock::Vault(_) => f.write_str("Unlock::Vault"),
        }
    }
}

/// The identity file of one data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStore {
    dir: PathBuf,
}

impl KeyStore {
    /// A key store for `data_dir` (nothing is touched until it is used).
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        KeyStore {
            dir: data_dir.into(),
        }
    }

    /// The identity file: `<data_dir>/identity.key`.
    pub fn path(&self) -> PathBuf {
        self.dir.join(IDENTITY_FILE_NAME)
    }

    /// Whether an identity file exists.
    pub fn exists(&self) -> bool {
        self.path().exists()
    }

    /// The user id of the stored identity, read without unlocking it.
    ///
    /// # Errors
    ///
    /// [`IdentityError::IdentityNotFound`], [`IdentityError::Io`], or the
    /// errors of [`Keyfile::parse`].
    pub fn read_user_id(&self) -> Result<UserId, IdentityError> {
        Ok(self.read_keyfile()?.user_id())
    }

    /// Creates and writes a new identity file for `identity`.
    ///
    /// Protection: `passphrase` if it is given and not empty; otherwise a
    /// random wrap key kept in `vault` under the account = the user id string
    /// (an existing secret for that account is reused, so other copies of the
    /// same identity keep working); otherwise the call fails. Never writes
    /// the key unencrypted. Returns the protection used.
    ///
    /// # Errors
    ///
    /// [`IdentityError::IdentityExists`] (an existing file is never
    /// overwritten), [`IdentityError::NoKeyProtection`] if there is neither a
    /// passphrase nor a working vault, [`IdentityError::KdfParamsOutOfRange`],
    /// [`IdentityError::Io`].
    pub fn create<R: CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        identity: &Identity,
        passphrase: Option<&Passphrase>,
        vault: Option<&dyn SecretVault>,
        params: KdfParams,
    ) -> Result<Protection, IdentityError> {
        let path = self.path();
        if path.exists() {
            return Err(IdentityError::IdentityExists { path });
        }
        if let Some(passphrase) = passphrase.filter(|p| !p.is_empty()) {
            let bytes = Keyfile::seal_with_passphrase(rng, identity, passphrase, params)?;
            self.write_new(&bytes)?;
            return Ok(Protection::Passphrase(params));
        }
        let Some(vault) = vault else {
            return Err(IdentityError::NoKeyProtection);
        };
        let account = identity.user_id().to_string();
        let (wrap_key, created) = wrap_key_in_vault(rng, vault, &account)?;
        let bytes = Keyfile::seal_with_wrap_key(rng, identity, &wrap_key);
        if let Err(error) = self.write_new(&bytes) {
            if created {
                // Best effort: the secret is useless without the file.
                let _ = vault.delete(&account);
            }
            return Err(error);
        }
        Ok(Protection::Keyring)
    }

    /// Reads and unlocks the identity. Never modifies the file.
    ///
    /// # Errors
    ///
    /// [`IdentityError::IdentityNotFound`], [`IdentityError::Io`], the errors
    /// of [`Keyfile::parse`], [`IdentityError::KeyfileProtectionMismatch`],
    /// [`IdentityError::WrongPassphrase`], [`IdentityError::WrongKeyringSecret`],
    /// [`IdentityError::KeyringSecretMissing`], or the vault's own error.
    pub fn unlock(&self, unlock: Unlock<'_>) -> Result<Identity, IdentityError> {
        let keyfile = self.read_keyfile()?;
        unlock_keyfile(&keyfile, unlock)
    }

    /// Re-encrypts the identity under a new passphrase, replacing the file
    /// atomically. `old` must unlock the current file (which may be
    /// keyring-protected; its keyring secret is left in place).
    ///
    /// # Errors
    ///
    /// [`IdentityError::EmptyPassphrase`], the errors of [`KeyStore::unlock`],
    /// [`IdentityError::KdfParamsOutOfRange`], [`IdentityError::Io`].
    pub fn change_passphrase<R: CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        old: Unlock<'_>,
        new: &Passphrase,
        params: KdfParams,
    ) -> Result<(), IdentityError> {
        if new.is_empty() {
            return Err(IdentityError::EmptyPassphrase);
        }
        params.validate()?;
        let identity = self.unlock(old)?;
        let bytes = Keyfile::seal_with_passphrase(rng, &identity, new, params)?;
        self.replace(&bytes)
    }

    fn read_keyfile(&self) -> Result<Keyfile, IdentityError> {
        let path = self.path();
        let file = File::open(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => IdentityError::IdentityNotFound { path: path.clone() },
            _ => io_error(&path, source),
        })?;
        let mut bytes = Vec::new();
        file.take(MAX_KEYFILE_READ)
            .read_to_end(&mut bytes)
            .map_err(|source| io_error(&path, source))?;
        Keyfile::parse(&bytes)
    }

    /// Writes a new identity file, failing if one exists.
    fn write_new(&self, bytes: &[u8]) -> Result<(), IdentityError> {
        self.ensure_dir()?;
        let temp = self.write_temp(bytes)?;
        let path = self.path();
        // A hard link fails if the target exists, so a concurrent creator
        // can never be overwritten.
        let linked = match fs::hard_link(&temp, &path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                Err(IdentityError::IdentityExists { path: path.clone() })
            }
            // Filesystems without hard links: check, then rename.
            Err(_) if path.exists() => Err(IdentityError::IdentityExists { path: path.clone() }),
            Err(_) => fs::rename(&temp, &path).map_err(|source| io_error(&path, source)),
        };
        remove_if_present(&temp);
        linked?;
        sync_dir(&self.dir)
    }

    /// Atomically replaces the identity file.
    fn replace(&self, bytes: &[u8]) -> Result<(), IdentityError> {
        let temp = self.write_temp(bytes)?;
        let path = self.path();
        if let Err(source) = fs::rename(&temp, &path) {
            remove_if_present(&temp);
            return Err(io_error(&path, source));
        }
        sync_dir(&self.dir)
    }

    fn ensure_dir(&self) -> Result<(), IdentityError> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&self.dir)
            .map_err(|source| io_error(&self.dir, source))
    }

    /// Writes `bytes` to a fresh temporary file (mode 0600) and fsyncs it.
    fn write_temp(&self, bytes: &[u8]) -> Result<PathBuf, IdentityError> {
        let temp = self.dir.join(TEMP_FILE_NAME);
        // A leftover from a crash may have other permissions: start afresh.
        match fs::remove_file(&temp) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(io_error(&temp, source)),
        }
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(&temp).and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        });
        if let Err(source) = written {
            remove_if_present(&temp);
            return Err(io_error(&temp, source));
        }
        Ok(temp)
    }
}

/// Unlocks a parsed file the way `unlock` says.
fn unlock_keyfile(keyfile: &Keyfile, unlock: Unlock<'_>) -> Result<Identity, IdentityError> {
    match unlock {
        Unlock::Passphrase(passphrase) => keyfile.unlock_with_passphrase(passphrase),
        Unlock::Vault(vault) => {
            if *keyfile.protection() != Protection::Keyring {
                return Err(keyfile.mismatch());
            }
            let account = keyfile.user_id().to_string();
            let wrap_key = vault
                .get(&account)?
                .ok_or(IdentityError::KeyringSecretMissing)?;
            keyfile.unlock_with_wrap_key(&wrap_key)
        }
    }
}

/// The wrap key for `account`: the one already in the vault, or a new one
/// that is stored and read back. `true` if it was created here. Any vault
/// failure means there is no keyring protection.
fn wrap_key_in_vault<R: CryptoRng + ?Sized>(
    rng: &mut R,
    vault: &dyn SecretVault,
    account: &str,
) -> Result<(WrapKey, bool), IdentityError> {
    match vault.get(account) {
        Ok(Some(existing)) => return Ok((existing, false)),
        Ok(None) => {}
        Err(_) => return Err(IdentityError::NoKeyProtection),
    }
    let wrap_key = WrapKey::generate(rng);
    let stored = vault
        .put(account, &wrap_key)
        .and_then(|()| vault.get(account));
    match stored {
        Ok(Some(read_back)) if read_back.as_bytes() == wrap_key.as_bytes() => Ok((wrap_key, true)),
        _ => {
            let _ = vault.delete(account);
            Err(IdentityError::NoKeyProtection)
        }
    }
}

fn io_error(path: &Path, source: io::Error) -> IdentityError {
    IdentityError::Io {
        path: path.to_owned(),
        source,
    }
}

fn remove_if_present(path: &Path) {
    // Best effort cleanup of a temporary file; the next write starts afresh.
    let _ = fs::remove_file(path);
}

/// Makes a rename or link in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), IdentityError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| io_error(dir, source))
    }
    #[cfg(not(unix))]
    {
        // Windows offers no directory fsync; the rename itself is atomic.
        let _ = dir;
        Ok(())
    }
}
