//! Passphrases and the Argon2id key derivation that turns one into a key.
//!
//! Argon2id (RFC 9106) is a memory-hard password hash: it fills
//! `memory_kib` KiB with blocks that each depend on earlier ones (the first
//! half-pass in data-independent order, which resists side channels, then in
//! data-dependent order, which punishes time-memory trade-offs), makes
//! `iterations` passes over that memory across `parallelism` lanes, and
//! hashes the result into a 32-byte key. Guessing a passphrase therefore
//! costs an attacker the same memory and time per guess as it costs us per
//! unlock. Version 0x13 is used, with a random 16-byte salt per identity file.
//!
//! Parameters read from a file are bounded ([`KdfParams::validate`]) before
//! Argon2id runs, so a hostile file cannot make us allocate gigabytes.

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::error::IdentityError;

/// Length of the Argon2id salt stored in the identity file.
pub(crate) const SALT_LEN: usize = 16;

/// A passphrase that unlocks an identity file.
///
/// Its bytes are the UTF-8 encoding of the string as given (no Unicode
/// normalization, no trimming). Zeroized on drop; `Debug` is redacted.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

// The only field is a `Zeroizing<String>`.
impl ZeroizeOnDrop for Passphrase {}

impl Passphrase {
    /// Copies a passphrase from a string slice.
    pub fn new(passphrase: &str) -> Self {
        Passphrase(Zeroizing::new(passphrase.to_owned()))
    }

    /// Whether the passphrase is the empty string (which is never accepted
    /// for protecting an identity).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The passphrase bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl From<String> for Passphrase {
    /// Takes ownership of the string (no copy is left behind).
    fn from(passphrase: String) -> Self {
        Passphrase(Zeroizing::new(passphrase))
    }
}

impl From<Zeroizing<String>> for Passphrase {
    fn from(passphrase: Zeroizing<String>) -> Self {
        Passphrase(passphrase)
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KdfParams {
    /// Memory in KiB (at least 8 × `parallelism`, at most 1 GiB).
    pub memory_kib: u32,
    /// Number of passes over the memory (1 to 64).
    pub iterations: u32,
    /// Number of lanes (1 to 16); lanes are computed one after another.
    pub parallelism: u32,
}

impl KdfParams {
    /// The parameters for new identity files: Argon2id with 64 MiB,
    /// 3 iterations and 1 lane (the second recommendation of RFC 9106 §4).
    ///
    /// Measured on the 2-core reference machine (AMD EPYC), one derivation,
    /// i.e. one unlock, takes about 0.2 s in a release build, 0.3 s in the
    /// test profile (dependencies at `opt-level = 1`) and 3.3 s in a plain
    /// `dev` build where Argon2 is unoptimized.
    pub const DEFAULT: KdfParams = KdfParams {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };

    /// The largest accepted memory cost: 1 GiB, in KiB (a hostile keyfile
    /// must not make the process allocate more).
    pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
    /// The largest accepted number of iterations.
    pub const MAX_ITERATIONS: u32 = 64;
    /// The largest accepted number of lanes.
    pub const MAX_PARALLELISM: u32 = 16;

    /// Cheap but real Argon2id parameters (256 KiB, 1 iteration, 1 lane).
    ///
    /// **For tests only**: they make guessing a passphrase cheap.
    pub const fn for_tests() -> KdfParams {
        KdfParams {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        }
    }

    /// Checks that the parameters are within Argon2's minima and this crate's
    /// maxima.
    ///
    /// # Errors
    ///
    /// [`IdentityError::KdfParamsOutOfRange`] naming the first parameter out
    /// of range.
    pub fn validate(&self) -> Result<(), IdentityError> {
        let check = |param: &'static str, value: u32, min: u32, max: u32| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(IdentityError::KdfParamsOutOfRange {
                    param,
                    value,
                    min,
                    max,
                })
            }
        };
        check(
            "parallelism",
            self.parallelism,
            Params::MIN_P_COST,
            Self::MAX_PARALLELISM,
        )?;
        check(
            "iterations",
            self.iterations,
            Params::MIN_T_COST,
            Self::MAX_ITERATIONS,
        )?;
        // Argon2 needs 8 blocks (KiB) per lane.
        let min_memory = Params::MIN_M_COST.max(8 * self.parallelism);
        check(
            "memory_kib",
            self.memory_kib,
            min_memory,
            Self::MAX_MEMORY_KIB,
        )
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams::DEFAULT
    }
}

/// Argon2id(passphrase, salt, params) → 32-byte key.
pub(crate) fn derive_key(
    passphrase: &Passphrase,
    salt: &[u8; SALT_LEN],
    params: &KdfParams,
) -> Result<Zeroizing<[u8; 32]>, IdentityError> {
    params.validate()?;
    let failed = |e: argon2::Error| IdentityError::KeyDerivationFailed {
        reason: e.to_string(),
    };
    let argon_params = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(32),
    )
    .map_err(failed)?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut key[..])
        .map_err(failed)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn default_and_test_params_are_valid() {
        KdfParams::DEFAULT.validate().unwrap();
        KdfParams::for_tests().validate().unwrap();
        assert_eq!(KdfParams::default(), KdfParams::DEFAULT);
        assert_eq!(KdfParams::DEFAULT.memory_kib, 65_536);
        assert_eq!(KdfParams::DEFAULT.iterations, 3);
        assert_eq!(KdfParams::DEFAULT.parallelism, 1);
    }

    #[test]
    fn validate_checks_every_bound() {
        let ok = KdfParams::for_tests();
        let cases = [
            (
                KdfParams {
                    memory_kib: KdfParams::MAX_MEMORY_KIB + 1,
                    ..ok
                },
                "memory_kib",
            ),
            (
                KdfParams {
                    memory_kib: u32::MAX,
                    ..ok
                },
                "memory_kib",
            ),
            (
                KdfParams {
                    memory_kib: 7,
                    ..ok
                },
                "memory_kib",
            ),
            (
                KdfParams {
                    memory_kib: 8 * 4 - 1,
                    parallelism: 4,
                    ..ok
                },
                "memory_kib",
            ),
            (
                KdfParams {
                    iterations: 0,
                    ..ok
                },
                "iterations",
            ),
            (
                KdfParams {
                    iterations: 65,
                    ..ok
                },
                "iterations",
            ),
            (
                KdfParams {
                    parallelism: 0,
                    ..ok
                },
                "parallelism",
            ),
            (
                KdfParams {
                    parallelism: 17,
                    ..ok
                },
                "parallelism",
            ),
        ];
        for (params, expected) in cases {
            match params.validate() {
                Err(IdentityError::KdfParamsOutOfRange { param, .. }) => {
                    assert_eq!(param, expected, "{params:?}");
                }
                other => panic!("{params:?} gave {other:?}"),
            }
        }
        // The edges themselves are accepted.
        for params in [
            KdfParams {
                memory_kib: KdfParams::MAX_MEMORY_KIB,
                iterations: KdfParams::MAX_ITERATIONS,
                parallelism: KdfParams::MAX_PARALLELISM,
            },
            KdfParams {
                memory_kib: 8,
                iterations: 1,
                parallelism: 1,
            },
        ] {
            params.validate().unwrap();
        }
    }

    #[test]
    fn derive_key_rejects_hostile_params_without_running_argon2() {
        // 4 TiB would abort the process if Argon2 tried to allocate it.
        let hostile = KdfParams {
            memory_kib: u32::MAX,
            iterations: u32::MAX,
            parallelism: 1,
        };
        let err = derive_key(&Passphrase::new("pw"), &[0; SALT_LEN], &hostile).unwrap_err();
        assert_eq!(err.code(), "identity.kdf_params_out_of_range");
    }

    /// Pins the Argon2 wiring: the key is Argon2id v0x13 with a 32-byte
    /// output, not Argon2i/Argon2d or the older v0x10.
    #[test]
    fn derive_key_is_argon2id_v0x13() {
        let params = KdfParams {
            memory_kib: 32,
            iterations: 3,
            parallelism: 4,
        };
        let salt = [0x02; SALT_LEN];
        let key = derive_key(&Passphrase::new("password"), &salt, &params).unwrap();
        let reference = |algorithm, version| {
            let argon_params = Params::new(32, 3, 4, Some(32)).unwrap();
            let mut out = [0u8; 32];
            Argon2::new(algorithm, version, argon_params)
                .hash_password_into(b"password", &salt, &mut out)
                .unwrap();
            hex(&out)
        };
        assert_eq!(
            hex(&key[..]),
            reference(Algorithm::Argon2id, Version::V0x13)
        );
        for (algorithm, version) in [
            (Algorithm::Argon2i, Version::V0x13),
            (Algorithm::Argon2d, Version::V0x13),
            (Algorithm::Argon2id, Version::V0x10),
        ] {
            assert_ne!(hex(&key[..]), reference(algorithm, version));
        }
        let other = derive_key(&Passphrase::new("passwore"), &salt, &params).unwrap();
        assert_ne!(key, other);
        let other_salt =
            derive_key(&Passphrase::new("password"), &[0x03; SALT_LEN], &params).unwrap();
        assert_ne!(key, other_salt);
    }

    #[test]
    fn passphrase_constructors_agree() {
        let a = Passphrase::new("correct horse");
        let b = Passphrase::from("correct horse".to_owned());
        assert_eq!(a.as_bytes(), b.as_bytes());
        assert!(!a.is_empty());
        assert!(Passphrase::new("").is_empty());
    }
}
