//! Hostile repeated fields are refused before prost allocates their
//! elements: dhat's allocator counts the bytes a decode allocates. (One
//! test in this binary, so nothing else allocates meanwhile.)

#![allow(clippy::unwrap_used)]

use messaging_proto::limits::MAX_SYNC_MESSAGE_BYTES;
use messaging_proto::{Payload, ProtoError, SyncRequest, SyncResponse};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// Bytes allocated (in all) while `decode` ran.
fn allocated_by<T>(decode: impl FnOnce() -> T) -> (T, u64) {
    let before = dhat::HeapStats::get().total_bytes;
    let result = decode();
    (result, dhat::HeapStats::get().total_bytes - before)
}

fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// `inner` as length-delimited field `number`.
fn wrapped(number: u64, inner: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(number << 3 | 2, &mut out);
    varint(inner.len() as u64, &mut out);
    out.extend_from_slice(inner);
    out
}

/// Empty elements of field `number`, two bytes each, filling `bytes`.
fn empty_elements(number: u64, bytes: usize) -> Vec<u8> {
    [(number << 3 | 2) as u8, 0].repeat(bytes / 2)
}

#[test]
fn hostile_repeated_fields_are_refused_before_allocation() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let budget = MAX_SYNC_MESSAGE_BYTES - 16;
    // A sync response of ~550,000 empty heads (each a 72-byte struct once
    // decoded: ~40 MiB); empty range entries; a push of empty entries.
    let cases = [
        ("heads", wrapped(2, &empty_elements(2, budget))),
        ("range entries", wrapped(3, &empty_elements(3, budget))),
        ("pushed entries", wrapped(5, &empty_elements(2, budget))),
    ];
    for (what, bytes) in &cases {
        let (result, allocated) = if *what == "pushed entries" {
            allocated_by(|| SyncRequest::from_bytes(bytes).map(drop))
        } else {
            allocated_by(|| SyncResponse::from_bytes(bytes).map(drop))
        };
        assert!(
            allocated < 64 * 1024,
            "{what}: decoding {} bytes allocated {allocated} bytes",
            bytes.len()
        );
        assert!(
            matches!(result, Err(ProtoError::TooMany { what: found, .. }) if found == *what),
            "{what}: {result:?}"
        );
    }
    // A payload (≤ 64 KiB) of a leave event with ~32,000 empty feed cuts.
    let payload = wrapped(6, &wrapped(8, &empty_elements(1, 60 * 1024)));
    let (result, allocated) = allocated_by(|| Payload::from_bytes(&payload).map(drop));
    assert!(
        matches!(
            result,
            Err(ProtoError::TooMany {
                what: "feed cuts",
                ..
            })
        ),
        "{result:?}"
    );
    assert!(
        allocated < 16 * 1024,
        "payload: {allocated} bytes allocated"
    );
}
