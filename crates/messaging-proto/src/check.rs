//! Field checks shared by every `TryFrom<pb::…>` conversion: one place for
//! each rule, so every decoder applies it the same way.

use bytes::Bytes;
use identity_core::UserId;

use crate::error::ProtoError;
use crate::ids::EntryHash;

/// A text field of at most `max_chars` characters; `min_chars` is 0 or 1.
pub(crate) fn text(
    what: &'static str,
    value: String,
    min_chars: usize,
    max_chars: usize,
) -> Result<String, ProtoError> {
    // Inputs are already bounded by the size of the message they came in.
    let count = value.chars().count();
    if count > max_chars {
        return Err(ProtoError::TextTooLong {
            what,
            count,
            limit: max_chars,
        });
    }
    if count < min_chars {
        return Err(ProtoError::MissingField { what });
    }
    Ok(value)
}

/// A field of exactly `N` bytes.
pub(crate) fn fixed<const N: usize>(
    what: &'static str,
    value: &[u8],
) -> Result<[u8; N], ProtoError> {
    <[u8; N]>::try_from(value).map_err(|_| {
        if value.is_empty() {
            ProtoError::MissingField { what }
        } else {
            ProtoError::InvalidLength {
                what,
                expected: N,
                found: value.len(),
            }
        }
    })
}

/// A required entry hash.
pub(crate) fn hash(what: &'static str, value: &[u8]) -> Result<EntryHash, ProtoError> {
    fixed::<32>(what, value).map(EntryHash::from_bytes)
}

/// An optional entry hash: empty means none.
pub(crate) fn optional_hash(
    what: &'static str,
    value: &[u8],
) -> Result<Option<EntryHash>, ProtoError> {
    if value.is_empty() {
        Ok(None)
    } else {
        hash(what, value).map(Some)
    }
}

/// A required user id (a valid Ed25519 public key).
pub(crate) fn user(what: &'static str, value: &[u8]) -> Result<UserId, ProtoError> {
    let bytes = fixed::<32>(what, value)?;
    UserId::from_bytes(bytes).map_err(|_| ProtoError::InvalidKey { what })
}

/// A repeated field of at most `max` items.
pub(crate) fn at_most<T>(
    what: &'static str,
    items: Vec<T>,
    max: usize,
) -> Result<Vec<T>, ProtoError> {
    if items.len() > max {
        return Err(ProtoError::TooMany {
            what,
            count: items.len(),
            limit: max,
        });
    }
    Ok(items)
}

/// A bytes field of at most `max` bytes.
pub(crate) fn max_bytes(what: &'static str, value: Bytes, max: usize) -> Result<Bytes, ProtoError> {
    if value.len() > max {
        return Err(ProtoError::TooLarge {
            what,
            size: value.len(),
            limit: max,
        });
    }
    Ok(value)
}

/// Checks the encoded size of a message before it is decoded.
pub(crate) fn encoded_size(what: &'static str, size: usize, max: usize) -> Result<(), ProtoError> {
    if size > max {
        return Err(ProtoError::TooLarge {
            what,
            size,
            limit: max,
        });
    }
    Ok(())
}

/// A value that must be present (a sub-message or oneof).
pub(crate) fn required<T>(what: &'static str, value: Option<T>) -> Result<T, ProtoError> {
    value.ok_or(ProtoError::MissingField { what })
}
