//! The identity file read from disk: `Keyfile::parse`. The first byte
//! picks the mode: even, the rest is the file; odd, the rest is the file's
//! content and the target appends the correct BLAKE3 checksum, so that the
//! fields behind the checksum are explored. A parsed keyring-protected file
//! is unlocked with a fixed wrap key; a passphrase-protected one with a
//! fixed passphrase when its Argon2id parameters are cheap (at most 1 MiB
//! and 2 iterations; dearer ones are valid but would slow the fuzzer down).
//! Property: an unlocked identity is the one the file names.
#![no_main]

use identity_core::{Keyfile, Passphrase, Protection};
use libfuzzer_sys::fuzz_target;
use palaver_fuzz::{seeds, wrap_key, write_seeds};

fuzz_target!(init: write_seeds(seeds::keyfiles), |data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        [rest, blake3::hash(rest).as_bytes()].concat()
    };
    let Ok(keyfile) = Keyfile::parse(&file) else {
        return;
    };
    let unlocked = match keyfile.protection() {
        Protection::Keyring => keyfile.unlock_with_wrap_key(&wrap_key()),
        Protection::Passphrase(params) if params.memory_kib <= 1024 && params.iterations <= 2 => {
            keyfile.unlock_with_passphrase(&Passphrase::new("correct horse"))
        }
        Protection::Passphrase(_) => return,
    };
    if let Ok(identity) = unlocked {
        assert_eq!(identity.user_id(), keyfile.user_id());
    }
});
