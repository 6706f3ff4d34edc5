//! The identity of a data directory: created by `init`, unlocked by `run`.
//!
//! The passphrase comes from, in this order: `--passphrase-file FILE` (its
//! first line, without the line ending), the `PALAVER_PASSPHRASE`
//! environment variable, or — when neither is given — the OS keyring
//! (service `palaver`). It is never taken from the command line. With
//! neither a passphrase nor a working keyring, `init` refuses with
//! `identity.no_key_protection`: the key is never stored unencrypted.

use std::io::Read;
use std::path::{Path, PathBuf};

use identity_core::{
    Identity, IdentityError, KdfParams, KeyStore, OsKeyring, Passphrase, Protection, Unlock,
};
use zeroize::Zeroizing;

use super::error::CliError;
use crate::api::ErrorCategory;

/// The environment variable holding the passphrase.
pub const PASSPHRASE_ENV: &str = "PALAVER_PASSPHRASE";
/// The OS keyring service name.
pub const KEYRING_SERVICE: &str = "palaver";
/// The file `init --name` writes the display name to.
pub const DISPLAY_NAME_FILE: &str = "display_name";
/// Passphrase files are read up to this many bytes.
const MAX_PASSPHRASE_FILE: u64 = 64 * 1024;
/// Longest display name (as the node accepts).
const MAX_DISPLAY_NAME_CHARS: usize = 64;

/// Reads the passphrase: `--passphrase-file`, else `PALAVER_PASSPHRASE`,
/// else none (the OS keyring is used).
pub fn passphrase(file: Option<&Path>) -> Result<Option<Passphrase>, CliError> {
    if let Some(path) = file {
        let mut text = Zeroizing::new(String::new());
        std::fs::File::open(path)
            .and_then(|file| file.take(MAX_PASSPHRASE_FILE).read_to_string(&mut text))
            .map_err(|err| {
                CliError::io(
                    "cli.passphrase_file_unreadable",
                    "cannot read the passphrase file",
                    path,
                    &err,
                )
            })?;
        let line = text.split('\n').next().unwrap_or_default();
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            return Err(IdentityError::EmptyPassphrase.into());
        }
        return Ok(Some(Passphrase::new(line)));
    }
    match std::env::var(PASSPHRASE_ENV) {
        Ok(value) => {
            let value = Zeroizing::new(value);
            if value.is_empty() {
                return Err(CliError::setup(
                    ErrorCategory::Identity,
                    "identity.empty_passphrase",
                    format!("{PASSPHRASE_ENV} is set but empty"),
                ));
            }
            Ok(Some(Passphrase::from(value)))
        }
        Err(_) => Ok(None),
    }
}

/// What `init` created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    /// The new user id.
    pub user_id: String,
    /// `passphrase` or `keyring`.
    pub protection: &'static str,
    /// The identity file.
    pub path: PathBuf,
}

/// Creates the identity of `data_dir` (never overwriting one) and records
/// the display name, if given.
pub fn init(
    data_dir: &Path,
    passphrase: Option<&Passphrase>,
    name: Option<&str>,
) -> Result<Created, CliError> {
    let store = KeyStore::new(data_dir);
    if store.exists() {
        return Err(IdentityError::IdentityExists { path: store.path() }.into());
    }
    if let Some(name) = name {
        check_display_name(name)?;
    }
    let keyring = OsKeyring::new(KEYRING_SERVICE);
    let vault: Option<&dyn identity_core::SecretVault> = match passphrase {
        Some(_) => None,
        None => match keyring.probe() {
            Ok(()) => Some(&keyring),
            Err(err) => {
                tracing::debug!(%err, "the OS keyring is not usable");
                return Err(CliError {
                    error: crate::api::NodeError::new(
                        ErrorCategory::Identity,
                        IdentityError::NoKeyProtection.code(),
                        format!(
                            "no passphrase was given ({PASSPHRASE_ENV} or --passphrase-file) and the OS keyring is not usable ({err}); the key is never stored unencrypted"
                        ),
                    ),
                    status: super::error::ExitStatus::Setup,
                });
            }
        },
    };
    let identity = Identity::generate(&mut rand::rng());
    let protection = store.create(
        &mut rand::rng(),
        &identity,
        passphrase,
        vault,
        KdfParams::DEFAULT,
    )?;
    if let Some(name) = name {
        let path = data_dir.join(DISPLAY_NAME_FILE);
        std::fs::write(&path, format!("{name}\n"))
            .map_err(|err| CliError::io("cli.display_name", "cannot write", &path, &err))?;
    }
    Ok(Created {
        user_id: identity.user_id().to_string(),
        protection: match protection {
            Protection::Passphrase(_) => "passphrase",
            Protection::Keyring => "keyring",
        },
        path: store.path(),
    })
}

fn check_display_name(name: &str) -> Result<(), CliError> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_DISPLAY_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(CliError::usage(
            "cli.invalid_display_name",
            format!(
                "a display name has 1 to {MAX_DISPLAY_NAME_CHARS} characters and no control characters"
            ),
        ));
    }
    Ok(())
}

/// The display name `init --name` recorded, if any.
pub fn recorded_display_name(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join(DISPLAY_NAME_FILE)).ok()?;
    let name = text.trim_end_matches(['\n', '\r']);
    (!name.is_empty()).then(|| name.to_owned())
}

/// Unlocks the identity of `data_dir` with the passphrase, or with the OS
/// keyring when there is none.
pub fn unlock(data_dir: &Path, passphrase: Option<&Passphrase>) -> Result<Identity, CliError> {
    let store = KeyStore::new(data_dir);
    if !store.exists() {
        return Err(CliError::setup(
            ErrorCategory::Identity,
            "identity.not_found",
            format!(
                "no identity in {} (create one with `palaver-node init`)",
                data_dir.display()
            ),
        ));
    }
    let keyring;
    let unlock = match passphrase {
        Some(passphrase) => Unlock::Passphrase(passphrase),
        None => {
            keyring = OsKeyring::new(KEYRING_SERVICE);
            Unlock::Vault(&keyring)
        }
    };
    store.unlock(unlock).map_err(|err| match err {
        IdentityError::KeyfileProtectionMismatch { .. } if passphrase.is_none() => {
            CliError::setup(
                ErrorCategory::Identity,
                err.code(),
                format!(
                    "the identity in {} is protected by a passphrase: set {PASSPHRASE_ENV} or use --passphrase-file",
                    data_dir.display()
                ),
            )
        }
        other => other.into(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_passphrase_file_gives_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        std::fs::write(&path, "correct horse\r\nsecond line\n").unwrap();
        let from_file = passphrase(Some(&path)).unwrap().unwrap();
        let data = dir.path().join("data");
        init(&data, Some(&from_file), None).unwrap();
        unlock(&data, Some(&Passphrase::new("correct horse"))).unwrap();
        std::fs::write(&path, "\n").unwrap();
        assert_eq!(
            super::passphrase(Some(&path)).unwrap_err().error.code,
            "identity.empty_passphrase"
        );
        let missing = dir.path().join("missing");
        assert_eq!(
            super::passphrase(Some(&missing)).unwrap_err().error.code,
            "cli.passphrase_file_unreadable"
        );
    }

    #[test]
    fn init_then_unlock_with_a_passphrase_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        std::fs::write(&path, "correct horse\n").unwrap();
        let data = dir.path().join("data");
        let passphrase = passphrase(Some(&path)).unwrap();
        let created = init(&data, passphrase.as_ref(), Some("alice")).unwrap();
        assert_eq!(created.protection, "passphrase");
        assert_eq!(recorded_display_name(&data).as_deref(), Some("alice"));
        let identity = unlock(&data, passphrase.as_ref()).unwrap();
        assert_eq!(identity.user_id().to_string(), created.user_id);
        // Never overwritten.
        assert_eq!(
            init(&data, passphrase.as_ref(), None)
                .unwrap_err()
                .error
                .code,
            "identity.already_exists"
        );
        let wrong = Passphrase::new("wrong");
        assert_eq!(
            unlock(&data, Some(&wrong)).unwrap_err().error.code,
            "identity.wrong_passphrase"
        );
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            unlock(empty.path(), passphrase.as_ref())
                .unwrap_err()
                .error
                .code,
            "identity.not_found"
        );
        assert_eq!(
            init(empty.path(), passphrase.as_ref(), Some(""))
                .unwrap_err()
                .error
                .code,
            "cli.invalid_display_name"
        );
    }
}
