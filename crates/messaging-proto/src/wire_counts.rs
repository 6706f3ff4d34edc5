//! Counting a message's repeated fields on the wire, before prost decodes
//! (and allocates) anything.
//!
//! prost allocates every element of a repeated field as it decodes, and it
//! merges repeated occurrences of a singular sub-message, so their repeated
//! fields add up. A count checked after decoding therefore comes after the
//! allocation: a 1 MiB sync response made of empty `heads` elements (two
//! bytes each on the wire) decodes into about half a million `Head`
//! structs, some 40 MiB. [`check`] walks the encoded message first,
//! following the sub-messages that hold repeated fields, and refuses it
//! with [`ProtoError::TooMany`] as soon as a field occurs more often than
//! its limit, counted over the whole message (so merged occurrences count
//! together). The walk allocates nothing and reads each byte once.
//!
//! The shapes below name only what leads to a repeated field; every other
//! field is skipped. The exact per-message limits are checked again after
//! decoding (`check::at_most`); the limits here are the largest any
//! message may reach, so a valid message always passes.
//!
//! Malformed wire data ends the walk without an error: prost refuses the
//! same bytes with its own decode error, after allocating at most the
//! elements before the fault, which were counted.

use crate::error::ProtoError;
use crate::limits::{
    MAX_ADDRS_PER_PEER, MAX_ADVERT_BOOTSTRAP_PEERS, MAX_BOOTSTRAP_PEERS, MAX_DIGEST_LOGS,
    MAX_DIRECTORY_ADVERTS, MAX_FEED_CUTS, MAX_HEADS_PER_RESPONSE, MAX_INBOX_SPACES,
    MAX_INVITE_BOOTSTRAP_PEERS, MAX_PUSH_ENTRIES, MAX_RANGE_LIMIT, MAX_SEALED_KEYS_PER_PART,
};

/// The fields of a message that lead to repeated fields.
pub(crate) struct Shape(&'static [Field]);

/// One field of a [`Shape`].
pub(crate) struct Field {
    number: u32,
    kind: Kind,
}

enum Kind {
    /// A singular sub-message (a oneof variant): followed, not counted.
    Message(&'static Shape),
    /// A repeated field of messages, bytes or strings: each occurrence is
    /// one element; `inner` is followed into each element.
    Repeated {
        what: &'static str,
        max: usize,
        inner: Option<&'static Shape>,
    },
    /// A repeated enum: packed (one length-delimited field of varints) or
    /// one varint per occurrence.
    RepeatedVarint { what: &'static str, max: usize },
}

const fn message(number: u32, shape: &'static Shape) -> Field {
    Field {
        number,
        kind: Kind::Message(shape),
    }
}

const fn repeated(number: u32, what: &'static str, max: usize) -> Field {
    Field {
        number,
        kind: Kind::Repeated {
            what,
            max,
            inner: None,
        },
    }
}

const fn repeated_of(number: u32, what: &'static str, max: usize, inner: &'static Shape) -> Field {
    Field {
        number,
        kind: Kind::Repeated {
            what,
            max,
            inner: Some(inner),
        },
    }
}

/// `BootstrapPeer`: `repeated string addrs = 2`. The total over every peer
/// of a message (the most peers any message carries).
static BOOTSTRAP_PEER: Shape = Shape(&[repeated(
    2,
    "bootstrap peer addresses",
    MAX_BOOTSTRAP_PEERS * MAX_ADDRS_PER_PEER,
)]);

/// `SyncRequest`: `push = 5` → `PushRequest.entries = 2`.
pub(crate) static SYNC_REQUEST: Shape = Shape(&[message(
    5,
    &Shape(&[repeated(2, "pushed entries", MAX_PUSH_ENTRIES)]),
)]);

/// `SyncResponse`: digest logs, heads, range entries, push results, inbox
/// spaces.
pub(crate) static SYNC_RESPONSE: Shape = Shape(&[
    message(1, &Shape(&[repeated(2, "log digests", MAX_DIGEST_LOGS)])),
    message(2, &Shape(&[repeated(2, "heads", MAX_HEADS_PER_RESPONSE)])),
    message(
        3,
        &Shape(&[repeated(3, "range entries", MAX_RANGE_LIMIT as usize)]),
    ),
    message(
        5,
        &Shape(&[Field {
            number: 1,
            kind: Kind::RepeatedVarint {
                what: "push results",
                max: MAX_PUSH_ENTRIES,
            },
        }]),
    ),
    message(6, &Shape(&[repeated(1, "inbox spaces", MAX_INBOX_SPACES)])),
]);

/// `ControlEvent`: feed cuts of leave (8), kick (9) and ban (10), sealed
/// keys of a key rotation (14), bootstrap peers (16).
static CONTROL_EVENT: Shape = Shape(&[
    message(8, &Shape(&[repeated(1, "feed cuts", MAX_FEED_CUTS)])),
    message(9, &Shape(&[repeated(3, "feed cuts", MAX_FEED_CUTS)])),
    message(10, &Shape(&[repeated(3, "feed cuts", MAX_FEED_CUTS)])),
    message(
        14,
        &Shape(&[repeated(2, "sealed keys", MAX_SEALED_KEYS_PER_PART)]),
    ),
    message(
        16,
        &Shape(&[repeated_of(
            1,
            "bootstrap peers",
            MAX_BOOTSTRAP_PEERS,
            &BOOTSTRAP_PEER,
        )]),
    ),
]);

/// `Payload`: `control = 6`.
pub(crate) static PAYLOAD: Shape = Shape(&[message(6, &CONTROL_EVENT)]);

/// `Invite`: `repeated BootstrapPeer bootstrap = 4`.
pub(crate) static INVITE: Shape = Shape(&[repeated_of(
    4,
    "invite bootstrap peers",
    MAX_INVITE_BOOTSTRAP_PEERS,
    &BOOTSTRAP_PEER,
)]);

/// `ServerAdvert`: `repeated BootstrapPeer bootstrap = 5`.
pub(crate) static SERVER_ADVERT: Shape = Shape(&[repeated_of(
    5,
    "advert bootstrap peers",
    MAX_ADVERT_BOOTSTRAP_PEERS,
    &BOOTSTRAP_PEER,
)]);

/// `DirectoryResponse`: `repeated bytes adverts = 1`.
pub(crate) static DIRECTORY_RESPONSE: Shape =
    Shape(&[repeated(1, "directory adverts", MAX_DIRECTORY_ADVERTS)]);

/// Refuses `bytes` if a repeated field of `shape` occurs more often than
/// its limit (see the module docs). The count in the error is the limit
/// plus one: the walk stops there.
pub(crate) fn check(bytes: &[u8], shape: &'static Shape) -> Result<(), ProtoError> {
    let mut counts = Counts::default();
    walk(bytes, shape, &mut counts).map(drop)
}

/// Elements counted per field, over the whole message.
#[derive(Default)]
struct Counts(Vec<(*const Field, usize)>);

impl Counts {
    fn add(
        &mut self,
        field: &'static Field,
        what: &'static str,
        max: usize,
        n: usize,
    ) -> Result<(), ProtoError> {
        let key: *const Field = field;
        let index = match self.0.iter().position(|(seen, _)| *seen == key) {
            Some(index) => index,
            None => {
                self.0.push((key, 0));
                self.0.len() - 1
            }
        };
        let count = &mut self.0[index].1;
        *count = count.saturating_add(n);
        if *count > max {
            return Err(ProtoError::TooMany {
                what,
                count: *count,
                limit: max,
            });
        }
        Ok(())
    }
}

/// The wire was malformed: stop walking (prost reports it).
struct Malformed;

/// Walks one message; `Ok(Err(Malformed))` ends the whole walk quietly.
fn walk(
    mut buf: &[u8],
    shape: &'static Shape,
    counts: &mut Counts,
) -> Result<Result<(), Malformed>, ProtoError> {
    while !buf.is_empty() {
        let Some(key) = varint(&mut buf) else {
            return Ok(Err(Malformed));
        };
        let number = u32::try_from(key >> 3).unwrap_or(u32::MAX);
        let field = shape.0.iter().find(|field| field.number == number);
        match key & 7 {
            // Varint.
            0 => {
                if varint(&mut buf).is_none() {
                    return Ok(Err(Malformed));
                }
                if let Some(
                    field @ Field {
                        kind: Kind::RepeatedVarint { what, max },
                        ..
                    },
                ) = field
                {
                    counts.add(field, what, *max, 1)?;
                }
            }
            // Fixed 64 and fixed 32 bits.
            1 | 5 => {
                let width = if key & 7 == 1 { 8 } else { 4 };
                let Some(rest) = buf.get(width..) else {
                    return Ok(Err(Malformed));
                };
                buf = rest;
            }
            // Length-delimited.
            2 => {
                let Some(len) = varint(&mut buf).and_then(|len| usize::try_from(len).ok()) else {
                    return Ok(Err(Malformed));
                };
                if len > buf.len() {
                    return Ok(Err(Malformed));
                }
                let (body, rest) = buf.split_at(len);
                buf = rest;
                let Some(field) = field else { continue };
                let inner = match &field.kind {
                    Kind::Message(inner) => Some(*inner),
                    Kind::Repeated { what, max, inner } => {
                        counts.add(field, what, *max, 1)?;
                        *inner
                    }
                    Kind::RepeatedVarint { what, max } => {
                        // Packed: one element per byte without the
                        // continuation bit.
                        let elements = body.iter().filter(|byte| **byte & 0x80 == 0).count();
                        counts.add(field, what, *max, elements)?;
                        None
                    }
                };
                if let Some(inner) = inner
                    && walk(body, inner, counts)?.is_err()
                {
                    return Ok(Err(Malformed));
                }
            }
            // Groups (unused by proto3) and invalid wire types.
            _ => return Ok(Err(Malformed)),
        }
    }
    Ok(Ok(()))
}

/// Reads a base-128 varint of at most ten bytes.
fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (index, byte) in buf.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            *buf = &buf[index + 1..];
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::pb;

    /// `count` empty elements of field `number` (two bytes each).
    fn empty_elements(number: u8, count: usize) -> Vec<u8> {
        [number << 3 | 2, 0].repeat(count)
    }

    /// `inner` wrapped as field `number` of an outer message.
    fn wrapped(number: u8, inner: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        prost::encoding::encode_varint(u64::from(number) << 3 | 2, &mut out);
        prost::encoding::encode_varint(inner.len() as u64, &mut out);
        out.extend_from_slice(inner);
        out
    }

    #[test]
    fn a_field_at_its_limit_passes_and_one_more_is_refused() {
        let heads = wrapped(2, &empty_elements(2, MAX_HEADS_PER_RESPONSE));
        check(&heads, &SYNC_RESPONSE).unwrap();
        let heads = wrapped(2, &empty_elements(2, MAX_HEADS_PER_RESPONSE + 1));
        assert!(matches!(
            check(&heads, &SYNC_RESPONSE),
            Err(ProtoError::TooMany {
                what: "heads",
                limit: MAX_HEADS_PER_RESPONSE,
                ..
            })
        ));
    }

    #[test]
    fn merged_occurrences_of_a_sub_message_count_together() {
        // Each `heads` variant alone is within the limit; prost would merge
        // them into one response holding all the elements.
        let half = wrapped(2, &empty_elements(2, MAX_HEADS_PER_RESPONSE / 2 + 1));
        let twice = [half.clone(), half].concat();
        assert!(matches!(
            check(&twice, &SYNC_RESPONSE),
            Err(ProtoError::TooMany { what: "heads", .. })
        ));
    }

    #[test]
    fn nested_repeated_fields_are_counted_across_parents() {
        // A SetBootstrapPeers event whose peers each hold addresses: the
        // addresses of all peers add up.
        let peer = wrapped(1, &wrapped(2, &[]).repeat(MAX_ADDRS_PER_PEER * 2));
        let event = wrapped(16, &peer.repeat(MAX_BOOTSTRAP_PEERS / 2 + 1));
        let payload = wrapped(6, &event);
        assert!(matches!(
            check(&payload, &PAYLOAD),
            Err(ProtoError::TooMany {
                what: "bootstrap peer addresses",
                ..
            })
        ));
    }

    #[test]
    fn packed_and_unpacked_enums_are_counted() {
        let packed = wrapped(5, &wrapped(1, &[1u8; MAX_PUSH_ENTRIES + 1]));
        assert!(matches!(
            check(&packed, &SYNC_RESPONSE),
            Err(ProtoError::TooMany {
                what: "push results",
                ..
            })
        ));
        let unpacked = wrapped(5, &[8u8, 1].repeat(MAX_PUSH_ENTRIES + 1));
        assert!(check(&unpacked, &SYNC_RESPONSE).is_err());
        let fine = wrapped(5, &wrapped(1, &[1u8; MAX_PUSH_ENTRIES]));
        check(&fine, &SYNC_RESPONSE).unwrap();
    }

    #[test]
    fn valid_messages_at_every_limit_pass() {
        let response = pb::SyncResponse {
            kind: Some(pb::sync_response::Kind::Range(pb::RangeResponse {
                entries: vec![vec![1u8; 3].into(); MAX_RANGE_LIMIT as usize],
                ..Default::default()
            })),
        };
        check(&response.encode_to_vec(), &SYNC_RESPONSE).unwrap();
        let invite = pb::Invite {
            bootstrap: vec![
                pb::BootstrapPeer {
                    addrs: vec!["/ip4/127.0.0.1/udp/1/quic-v1".into(); MAX_ADDRS_PER_PEER],
                    ..Default::default()
                };
                MAX_INVITE_BOOTSTRAP_PEERS
            ],
            ..Default::default()
        };
        check(&invite.encode_to_vec(), &INVITE).unwrap();
    }

    #[test]
    fn malformed_wire_is_left_to_prost() {
        // A truncated length, an invalid wire type, an unterminated varint.
        for bytes in [&[0x12u8, 0x05, 0x00][..], &[0x0f], &[0x08, 0xff]] {
            check(bytes, &SYNC_RESPONSE).unwrap();
            assert!(pb::SyncResponse::decode(bytes).is_err());
        }
    }

    #[test]
    fn unknown_and_scalar_fields_are_skipped() {
        // An unknown fixed64, fixed32 and varint field around the heads.
        let mut bytes = vec![0xf9, 0x01, 0, 0, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&[0xfd, 0x01, 0, 0, 0, 0]);
        bytes.extend_from_slice(&[0xf8, 0x01, 0x80, 0x01]);
        bytes.extend(wrapped(2, &empty_elements(2, 3)));
        check(&bytes, &SYNC_RESPONSE).unwrap();
    }
}
