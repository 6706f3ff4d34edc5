//! Directory responses from peers: `DirectoryResponse::from_bytes` on any
//! bytes, then `SignedAdvert::from_bytes` on each advert it carries (as the
//! node does). Property: an accepted response encodes and decodes to
//! itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use messaging_proto::{DirectoryResponse, SignedAdvert};
use palaver_fuzz::{NOW_MS, seeds, write_seeds};

fuzz_target!(init: write_seeds(seeds::directory_responses), |data: &[u8]| {
    if let Ok(response) = DirectoryResponse::from_bytes(data) {
        for advert in &response.adverts {
            let _ = SignedAdvert::from_bytes(advert, NOW_MS);
        }
        assert_eq!(DirectoryResponse::from_bytes(&response.to_bytes()), Ok(response));
    }
});
