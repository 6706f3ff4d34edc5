//! Decrypted payloads: `Payload::from_bytes` on any bytes (messages,
//! edits, redactions, reactions and control events). Property: an accepted
//! payload encodes (`to_bytes` applies the receiver's rules again) and
//! decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use messaging_proto::Payload;
use palaver_fuzz::{check_payload, seeds, write_seeds};

fuzz_target!(init: write_seeds(seeds::payloads), |data: &[u8]| {
    if let Ok(payload) = Payload::from_bytes(data) {
        check_payload(&payload);
    }
});
