//! Directory requests from peers: `DirectoryRequest::from_bytes` on any
//! bytes. Property: an accepted request encodes and decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use messaging_proto::DirectoryRequest;
use palaver_fuzz::{seeds, write_seeds};

fuzz_target!(init: write_seeds(seeds::directory_requests), |data: &[u8]| {
    if let Ok(request) = DirectoryRequest::from_bytes(data) {
        assert_eq!(DirectoryRequest::from_bytes(&request.to_bytes()), Ok(request));
    }
});
