//! Server adverts: the owner's signed description of a server, stored in the
//! DHT under [`advert_record_key`] and served by the directory protocol.
//!
//! A verifier checks, in order: size, decoding, the embedded genesis entry
//! (a valid signed server genesis), that the server id is the genesis hash,
//! that the advert is signed by the genesis author (the owner), that it has
//! not expired and does not claim to live longer than seven days (plus
//! [`MAX_CLOCK_SKEW_MS`]: the owner's clock may be ahead of ours), and that
//! only a public advert carries a join key.

use bytes::Bytes;
use identity_core::{Identity, Signature};
use prost::Message;

use crate::check;
use crate::common::{BootstrapPeer, Visibility, peers_from_pb, peers_to_pb};
use crate::entry::VerifiedEntry;
use crate::error::ProtoError;
use crate::group_key::EpochKey;
use crate::ids::{ServerId, hex};
use crate::limits::{
    MAX_ADVERT_BOOTSTRAP_PEERS, MAX_ADVERT_LIFETIME_MS, MAX_CLOCK_SKEW_MS, MAX_DESCRIPTION_CHARS,
    MAX_SERVER_NAME_CHARS, MAX_SIGNED_ADVERT_BYTES, MAX_SIGNED_ENTRY_BYTES,
};
use crate::pb;
use crate::wire_counts;

/// Domain-separation tag of advert signatures.
pub const ADVERT_SIGNATURE_CONTEXT: &[u8] = b"palaver/v1/advert\0";
/// Clock skew tolerated when checking an advert's expiry bound: the
/// protocol's one tolerance, [`MAX_CLOCK_SKEW_MS`].
pub const ADVERT_CLOCK_SKEW_MS: u64 = MAX_CLOCK_SKEW_MS;
/// Prefix of advert record keys in the DHT.
pub const ADVERT_KEY_PREFIX: &str = "/palaver/advert/";

/// The DHT record key of a server's advert: `/palaver/advert/<hex id>`.
pub fn advert_record_key(server: &ServerId) -> Vec<u8> {
    format!("{ADVERT_KEY_PREFIX}{}", hex(server.as_bytes())).into_bytes()
}

/// What an advert says about a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerAdvert {
    /// The server (hash of `genesis`).
    pub server_id: ServerId,
    /// The server's genesis entry, whose author is the owner.
    pub genesis: VerifiedEntry,
    /// 1..=100 characters.
    pub name: String,
    /// At most 1,000 characters.
    pub description: String,
    /// Where to connect (at most 8 peers).
    pub bootstrap: Vec<BootstrapPeer>,
    /// Public or private.
    pub visibility: Visibility,
    /// The key a public server gives to anyone who joins.
    pub join_key: Option<EpochKey>,
    /// Version of the advert; the highest wins.
    pub seq: u64,
    /// When it expires (ms since the Unix epoch).
    pub expires_at_ms: u64,
    /// Approximate member count, for display.
    pub member_count: u32,
}

/// An advert with the owner's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedAdvert {
    encoded_advert: Bytes,
    signature: Signature,
    advert: ServerAdvert,
}

impl SignedAdvert {
    /// Signs `advert` as the server's owner.
    pub fn sign(owner: &Identity, advert: ServerAdvert, now_ms: u64) -> Result<Self, ProtoError> {
        if advert.genesis.author() != &owner.user_id() {
            return Err(ProtoError::AdvertNotByOwner);
        }
        let encoded_advert = Bytes::from(advert_to_pb(&advert).encode_to_vec());
        let signature = owner.sign(ADVERT_SIGNATURE_CONTEXT, &encoded_advert);
        let bytes = pb::SignedAdvert {
            advert: encoded_advert,
            signature: Bytes::copy_from_slice(signature.as_bytes()),
        }
        .encode_to_vec();
        // Check against the same rules a receiver applies.
        Self::from_bytes(&bytes, now_ms)
    }

    /// Decodes and fully verifies an encoded `SignedAdvert` at time `now_ms`.
    pub fn from_bytes(bytes: &[u8], now_ms: u64) -> Result<Self, ProtoError> {
        check::encoded_size("signed advert", bytes.len(), MAX_SIGNED_ADVERT_BYTES)?;
        let signed = pb::SignedAdvert::decode(bytes)
            .map_err(|err| ProtoError::decode("signed advert", err))?;
        if signed.advert.is_empty() {
            return Err(ProtoError::MissingField { what: "advert" });
        }
        let signature = Signature::from_bytes(check::fixed("advert signature", &signed.signature)?);
        wire_counts::check(&signed.advert, &wire_counts::SERVER_ADVERT)?;
        let message = pb::ServerAdvert::decode(signed.advert.clone())
            .map_err(|err| ProtoError::decode("advert", err))?;
        let advert = advert_from_pb(message)?;
        advert
            .genesis
            .author()
            .verify(ADVERT_SIGNATURE_CONTEXT, &signed.advert, &signature)
            .map_err(|_| ProtoError::BadSignature { what: "advert" })?;
        check_expiry(advert.expires_at_ms, now_ms)?;
        Ok(Self {
            encoded_advert: signed.advert,
            signature,
            advert,
        })
    }

    /// Like [`SignedAdvert::from_bytes`], and also checks that the advert is
    /// for `server` (e.g. the server named by the DHT record key).
    pub fn from_bytes_for(
        bytes: &[u8],
        server: &ServerId,
        now_ms: u64,
    ) -> Result<Self, ProtoError> {
        let signed = Self::from_bytes(bytes, now_ms)?;
        if &signed.advert.server_id != server {
            return Err(ProtoError::AdvertServerMismatch);
        }
        Ok(signed)
    }

    /// The encoded `SignedAdvert`.
    pub fn to_bytes(&self) -> Vec<u8> {
        pb::SignedAdvert {
            advert: self.encoded_advert.clone(),
            signature: Bytes::copy_from_slice(self.signature.as_bytes()),
        }
        .encode_to_vec()
    }

    /// The advert.
    pub fn advert(&self) -> &ServerAdvert {
        &self.advert
    }
}

fn check_expiry(expires_at_ms: u64, now_ms: u64) -> Result<(), ProtoError> {
    if expires_at_ms <= now_ms {
        return Err(ProtoError::AdvertExpired {
            expires_at_ms,
            now_ms,
        });
    }
    if expires_at_ms > now_ms.saturating_add(MAX_ADVERT_LIFETIME_MS + ADVERT_CLOCK_SKEW_MS) {
        return Err(ProtoError::AdvertExpiryTooFar);
    }
    Ok(())
}

fn advert_from_pb(value: pb::ServerAdvert) -> Result<ServerAdvert, ProtoError> {
    let server_id = ServerId::from_bytes(check::fixed("server id", &value.server_id)?);
    check::encoded_size(
        "advert genesis",
        value.genesis.len(),
        MAX_SIGNED_ENTRY_BYTES,
    )?;
    if value.genesis.is_empty() {
        return Err(ProtoError::MissingField {
            what: "advert genesis",
        });
    }
    let genesis = VerifiedEntry::verify(value.genesis)?;
    if genesis.genesis_of().is_none() {
        return Err(ProtoError::AdvertBadGenesis);
    }
    if genesis.genesis_of() != Some(server_id) {
        return Err(ProtoError::AdvertServerMismatch);
    }
    let visibility = Visibility::from_pb(value.visibility)?;
    let join_key = match (visibility, value.join_key.is_empty()) {
        (Visibility::Public, _) => Some(EpochKey::from_slice(value.key_epoch, &value.join_key)?),
        (Visibility::Private, true) => None,
        (Visibility::Private, false) => {
            return Err(ProtoError::InvalidLength {
                what: "join key of a private server",
                expected: 0,
                found: value.join_key.len(),
            });
        }
    };
    if join_key.as_ref().is_some_and(|key| key.epoch() == 0) {
        return Err(ProtoError::OutOfRange {
            what: "join key epoch",
            value: 0,
            min: 1,
            max: u64::from(u32::MAX),
        });
    }
    Ok(ServerAdvert {
        server_id,
        genesis,
        name: check::text("server name", value.name, 1, MAX_SERVER_NAME_CHARS)?,
        description: check::text(
            "server description",
            value.description,
            0,
            MAX_DESCRIPTION_CHARS,
        )?,
        bootstrap: peers_from_pb(
            "advert bootstrap peers",
            value.bootstrap,
            MAX_ADVERT_BOOTSTRAP_PEERS,
        )?,
        visibility,
        join_key,
        seq: value.seq,
        expires_at_ms: value.expires_at_ms,
        member_count: value.member_count,
    })
}

fn advert_to_pb(advert: &ServerAdvert) -> pb::ServerAdvert {
    pb::ServerAdvert {
        server_id: Bytes::copy_from_slice(advert.server_id.as_bytes()),
        genesis: advert.genesis.encoded().clone(),
        name: advert.name.clone(),
        description: advert.description.clone(),
        bootstrap: peers_to_pb(&advert.bootstrap),
        visibility: advert.visibility.to_pb(),
        key_epoch: advert.join_key.as_ref().map_or(0, EpochKey::epoch),
        join_key: advert
            .join_key
            .as_ref()
            .map(|key| Bytes::copy_from_slice(key.as_bytes()))
            .unwrap_or_default(),
        seq: advert.seq,
        expires_at_ms: advert.expires_at_ms,
        member_count: advert.member_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;
    const MINUTE: u64 = 60_000;

    #[test]
    fn the_expiry_bound_allows_the_clock_tolerance_and_no_more() {
        // An owner ten minutes ahead of us publishing for the longest
        // lifetime: accepted; a millisecond more is not.
        let furthest = NOW + MAX_CLOCK_SKEW_MS + MAX_ADVERT_LIFETIME_MS;
        assert_eq!(MAX_CLOCK_SKEW_MS, 10 * MINUTE);
        assert_eq!(check_expiry(furthest, NOW), Ok(()));
        assert_eq!(
            check_expiry(furthest + 1, NOW),
            Err(ProtoError::AdvertExpiryTooFar)
        );
        // Expired at its expiry instant.
        assert_eq!(check_expiry(NOW + 1, NOW), Ok(()));
        assert_eq!(
            check_expiry(NOW, NOW),
            Err(ProtoError::AdvertExpired {
                expires_at_ms: NOW,
                now_ms: NOW
            })
        );
    }
}
