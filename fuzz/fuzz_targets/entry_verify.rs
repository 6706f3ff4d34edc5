//! Entries from the network: `VerifiedEntry::verify` (size limit,
//! `SignedEntry` and `Entry` protobuf, header rules, nonce/epoch agreement,
//! the Ed25519 signature) on any bytes, then `open` with the fixed epoch key
//! and `open_plain` (the payload decoders) on what it accepts.
//!
//! The same bytes also go through `VerifiedEntry::decode_stored`, which
//! skips only the signature: mutated entries then reach every rule after
//! it, and `open_plain` decodes their plaintext payloads. Properties: an
//! accepted entry keeps the exact bytes it was given, `verify` accepts
//! nothing that `decode_stored` refuses, and an opened payload encodes and
//! decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use messaging_proto::VerifiedEntry;
use palaver_fuzz::{check_payload, epoch_key, seeds, write_seeds};

fuzz_target!(init: write_seeds(seeds::entries), |data: &[u8]| {
    let verified = VerifiedEntry::verify(data.to_vec());
    let stored = VerifiedEntry::decode_stored(data.to_vec());
    if let Ok(entry) = &verified {
        assert_eq!(stored.as_ref().ok(), Some(entry));
    }
    if let Ok(entry) = &stored {
        assert_eq!(&entry.encoded()[..], data);
        if let Ok(payload) = entry.open(&epoch_key()) {
            check_payload(&payload);
        }
        if let Ok(payload) = entry.open_plain() {
            check_payload(&payload);
        }
    }
});
