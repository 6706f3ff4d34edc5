//! DHT records: the namespaced keys Palaver uses and the validation every
//! record passes before it is stored or returned.
//!
//! Kademlia runs with record filtering on (`StoreInserts::FilterBoth`): an
//! inbound `PUT_VALUE` or `ADD_PROVIDER` is stored only after
//! [`validate_advert_record`] / [`validate_provider`] accept it, and every
//! record a lookup returns is validated again before it reaches the caller,
//! so a forged, expired or oversized advert is never stored or returned.

use libp2p::kad::{ProviderRecord, Record, RecordKey};
use messaging_proto::{
    ADVERT_KEY_PREFIX, ProtoError, ServerId, SignedAdvert, advert_record_key,
    limits::MAX_SIGNED_ADVERT_BYTES,
};

/// The provider key hosts of public servers announce.
pub const DIRECTORY_KEY: &[u8] = b"/palaver/directory/v1";

/// The DHT key of a server's advert.
pub fn advert_key(server: &ServerId) -> RecordKey {
    RecordKey::new(&advert_record_key(server))
}

/// The provider key of the public directory.
pub(crate) fn directory_key() -> RecordKey {
    RecordKey::new(&DIRECTORY_KEY)
}

/// The server an advert key names, if it is one.
pub(crate) fn server_of_key(key: &RecordKey) -> Option<ServerId> {
    let text = std::str::from_utf8(key.as_ref()).ok()?;
    let hex = text.strip_prefix(ADVERT_KEY_PREFIX)?;
    hex.parse().ok()
}

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RecordRejection {
    /// The key is not in a namespace Palaver stores.
    #[error("unknown record key namespace")]
    UnknownKey,
    /// The value is over the advert size limit.
    #[error("record of {0} bytes is over the limit")]
    TooLarge(usize),
    /// The advert does not verify (signature, server id, expiry …).
    #[error("invalid advert: {0}")]
    InvalidAdvert(ProtoError),
    /// A provider record for another key than the directory's.
    #[error("provider record refused")]
    BadProvider,
}

/// Checks a record found in or offered to the DHT at time `now_ms`.
pub(crate) fn validate_advert_record(
    record: &Record,
    now_ms: u64,
) -> Result<SignedAdvert, RecordRejection> {
    let server = server_of_key(&record.key).ok_or(RecordRejection::UnknownKey)?;
    if record.value.len() > MAX_SIGNED_ADVERT_BYTES {
        return Err(RecordRejection::TooLarge(record.value.len()));
    }
    SignedAdvert::from_bytes_for(&record.value, &server, now_ms)
        .map_err(RecordRejection::InvalidAdvert)
}

/// Checks a provider record (Kademlia itself checks that the provider is
/// the peer that sent it).
pub(crate) fn validate_provider(record: &ProviderRecord) -> Result<(), RecordRejection> {
    if record.key.as_ref() != DIRECTORY_KEY {
        return Err(RecordRejection::BadProvider);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advert_keys_name_their_server() {
        let server = ServerId::from_bytes([0xab; 32]);
        assert_eq!(server_of_key(&advert_key(&server)), Some(server));
        assert_eq!(server_of_key(&RecordKey::new(&"/palaver/advert/zz")), None);
        assert_eq!(server_of_key(&directory_key()), None);
        let bogus = Record::new(RecordKey::new(&"/other/key"), vec![1, 2, 3]);
        assert_eq!(
            validate_advert_record(&bogus, 0),
            Err(RecordRejection::UnknownKey)
        );
        let huge = Record::new(advert_key(&server), vec![0; MAX_SIGNED_ADVERT_BYTES + 1]);
        assert_eq!(
            validate_advert_record(&huge, 0),
            Err(RecordRejection::TooLarge(MAX_SIGNED_ADVERT_BYTES + 1))
        );
    }
}
