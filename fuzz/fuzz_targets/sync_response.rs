//! Sync responses from peers: `SyncResponse::from_bytes` on any bytes.
//! Property: an accepted response encodes and decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use messaging_proto::SyncResponse;
use palaver_fuzz::{seeds, write_seeds};

fuzz_target!(init: write_seeds(seeds::sync_responses), |data: &[u8]| {
    if let Ok(response) = SyncResponse::from_bytes(data) {
        assert_eq!(SyncResponse::from_bytes(&response.to_bytes()), Ok(response));
    }
});
