//! Server adverts from the DHT and the directory: `SignedAdvert::from_bytes`
//! at a fixed clock on any bytes (size, decoding, the embedded genesis entry
//! and its signature, server id, visibility and join key, names, bootstrap
//! peers, the advert signature, expiry). The seeds carry a valid genesis,
//! so the advert's own fields are explored even though a mutated advert's
//! signature never verifies. Property: an accepted advert encodes and
//! decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use messaging_proto::SignedAdvert;
use palaver_fuzz::{NOW_MS, seeds, write_seeds};

fuzz_target!(init: write_seeds(seeds::adverts), |data: &[u8]| {
    if let Ok(advert) = SignedAdvert::from_bytes(data, NOW_MS) {
        assert_eq!(SignedAdvert::from_bytes(&advert.to_bytes(), NOW_MS), Ok(advert));
    }
});
