//! Gossip messages: `GossipMessage::from_bytes` on any bytes, then
//! `VerifiedEntry::verify` on the entry it carries (as the node does).
//! Property: an accepted message encodes and decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use messaging_proto::{GossipMessage, VerifiedEntry};
use palaver_fuzz::{seeds, write_seeds};

fuzz_target!(init: write_seeds(seeds::gossip_messages), |data: &[u8]| {
    if let Ok(message) = GossipMessage::from_bytes(data) {
        let GossipMessage::Entry(entry) = &message;
        let _ = VerifiedEntry::verify(entry.clone());
        assert_eq!(GossipMessage::from_bytes(&message.to_bytes()), Ok(message));
    }
});
