//! Signed invites as bytes: `SignedInvite::from_bytes` on any bytes (size,
//! decoding, version, key epoch, names, bootstrap peers, ids, then the
//! inviter's signature). Property: an accepted invite encodes and decodes
//! to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use messaging_proto::SignedInvite;
use palaver_fuzz::{seeds, write_seeds};

fuzz_target!(init: write_seeds(seeds::invites), |data: &[u8]| {
    if let Ok(invite) = SignedInvite::from_bytes(data) {
        assert_eq!(SignedInvite::from_bytes(&invite.to_bytes()), Ok(invite));
    }
});
