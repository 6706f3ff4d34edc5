//! Invite codes as users paste them: `node::invite_code::parse` at a fixed
//! clock. The first byte picks the mode: even, the rest is the text (as
//! UTF-8, invalid sequences replaced), which exercises the prefix,
//! whitespace, case, base32, length and checksum rules; odd, the rest is
//! the `SignedInvite` bytes, which the target wraps into a code with a
//! correct checksum so that what lies behind the checksum is reached too.
//! Property: an accepted invite's own code parses to the same invite.
#![no_main]

use data_encoding::BASE32_NOPAD;
use libfuzzer_sys::fuzz_target;
use node::invite_code::{CODE_VERSION, INVITE_PREFIX, encode, parse};
use palaver_fuzz::{NOW_MS, seeds, write_seeds};

fuzz_target!(init: write_seeds(seeds::invite_codes), |data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = if mode % 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        code_with_checksum(rest)
    };
    if let Ok(invite) = parse(&text, NOW_MS) {
        assert_eq!(parse(&encode(&invite), NOW_MS), Ok(invite));
    }
});

/// The code of `body` as `encode` writes it (crates/node/src/invite_code.rs):
/// base32 of version, body, and the first four bytes of BLAKE3 over both.
fn code_with_checksum(body: &[u8]) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[CODE_VERSION]);
    hasher.update(body);
    let mut raw = vec![CODE_VERSION];
    raw.extend_from_slice(body);
    raw.extend_from_slice(&hasher.finalize().as_bytes()[..4]);
    format!("{INVITE_PREFIX}{}", BASE32_NOPAD.encode(&raw))
}
