//! Shared parts of Palaver's fuzz targets (`fuzz/fuzz_targets/`).
//!
//! Every target feeds the fuzzer's bytes to one real decoder of outside
//! bytes and, when the decoder accepts them, checks a cheap property (the
//! value encodes again and decodes to itself). The decoders must never
//! panic, abort or run away with memory; libFuzzer reports any of that.
//!
//! A fuzzer cannot forge a signature, checksum or AEAD tag, so valid
//! inputs only come from seeds: [`seeds`] builds them with the real
//! encoders, and [`write_seeds`] (called from each target's `init`) writes
//! them into the directory named by [`SEED_DIR_ENV`], which
//! `scripts/fuzz.sh` sets to the target's corpus. Decoders that check the
//! structure before the signature (adverts, invites, entries read with
//! `decode_stored`) are then explored far past the signature's reach.

use std::path::PathBuf;

use identity_core::{Identity, WrapKey};
use messaging_proto::{EpochKey, Payload};

pub mod seeds;

/// The clock every time-dependent decoder is called with.
pub const NOW_MS: u64 = 1_800_000_000_000;

/// Environment variable naming the directory that [`write_seeds`] fills.
pub const SEED_DIR_ENV: &str = "PALAVER_FUZZ_SEED_DIR";

/// The epoch key the entry target opens entries with (epoch 1), the key
/// the seeds' encrypted entries are sealed with.
pub fn epoch_key() -> EpochKey {
    EpochKey::from_bytes(1, [0x4b; 32])
}

/// The identity that signs the seeds' entries, adverts and invites.
pub fn identity() -> Identity {
    Identity::from_secret_bytes(&[0x17; 32])
}

/// The wrap key the keyfile target unlocks keyring-protected files with.
pub fn wrap_key() -> WrapKey {
    WrapKey::from_bytes([0x5a; 32])
}

/// The round-trip property of a payload the decoder accepted: it encodes
/// (`to_bytes` applies the receiver's rules again, so a refusal means the
/// decoder let through what we would never send) and decodes to itself.
pub fn check_payload(payload: &Payload) {
    let encoded = payload.to_bytes();
    assert!(
        encoded.is_ok(),
        "accepted but cannot re-encode: {encoded:?}"
    );
    if let Ok(bytes) = encoded {
        assert_eq!(Payload::from_bytes(&bytes).as_ref(), Ok(payload));
    }
}

/// Writes `make()`'s seeds as `seed-NNN` files into the directory named by
/// [`SEED_DIR_ENV`], if it is set; does nothing otherwise (e.g. when a
/// crash is reproduced). A failure to write is reported, not fatal: the
/// fuzzer then starts from the corpus alone.
#[allow(clippy::print_stderr)] // a fuzz target has no other channel
pub fn write_seeds(make: impl FnOnce() -> Vec<Vec<u8>>) {
    let Some(dir) = std::env::var_os(SEED_DIR_ENV).map(PathBuf::from) else {
        return;
    };
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        make()
            .iter()
            .enumerate()
            .try_for_each(|(i, seed)| std::fs::write(dir.join(format!("seed-{i:03}")), seed))
    });
    if let Err(err) = written {
        eprintln!("cannot write seeds to {}: {err}", dir.display());
    }
}

/// Length-delimited protobuf field `field` holding `value`: lets a target
/// wrap its input into a message that the decoder under test expects.
pub fn protobuf_field(field: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 12);
    push_varint(&mut out, (u64::from(field) << 3) | 2);
    push_varint(&mut out, value.len() as u64);
    out.extend_from_slice(value);
    out
}

/// The value of a message that is exactly one length-delimited field
/// `field` (the inverse of [`protobuf_field`]); `None` otherwise.
pub fn protobuf_field_value(field: u32, message: &[u8]) -> Option<&[u8]> {
    let (key, rest) = read_varint(message)?;
    if key != ((u64::from(field) << 3) | 2) {
        return None;
    }
    let (len, rest) = read_varint(rest)?;
    (usize::try_from(len).ok()? == rest.len()).then_some(rest)
}

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}
