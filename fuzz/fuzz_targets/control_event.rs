//! Control events: every input is an encoded `palaver.v1.ControlEvent`,
//! which the target wraps as the `control` field of an otherwise empty
//! payload before calling `Payload::from_bytes` (control events have no
//! public decoder of their own). So all of the fuzzer's effort goes into
//! the control event rules. Properties: an accepted payload carries a
//! control event, and encodes and decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use messaging_proto::Payload;
use palaver_fuzz::seeds::{self, PAYLOAD_CONTROL_FIELD};
use palaver_fuzz::{check_payload, protobuf_field, write_seeds};

fuzz_target!(init: write_seeds(seeds::control_events), |data: &[u8]| {
    let bytes = protobuf_field(PAYLOAD_CONTROL_FIELD, data);
    if let Ok(payload) = Payload::from_bytes(&bytes) {
        assert!(payload.control().is_some());
        check_payload(&payload);
    }
});
