//! The directory protocol (`/palaver/directory/1`): a host of public servers
//! lists its signed adverts, paged by server id. Each advert is verified by
//! the client with [`crate::SignedAdvert::from_bytes`] (it needs the clock).

use bytes::Bytes;
use prost::Message;

use crate::check;
use crate::error::ProtoError;
use crate::ids::ServerId;
use crate::limits::{
    MAX_DIRECTORY_ADVERTS, MAX_DIRECTORY_REQUEST_BYTES, MAX_DIRECTORY_RESPONSE_BYTES,
    MAX_SIGNED_ADVERT_BYTES,
};
use crate::pb;
use crate::wire_counts;

/// "Which public servers do you host?"
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryRequest {
    /// At most this many adverts (1..=64).
    pub limit: u32,
    /// Only servers after this one.
    pub after_server: Option<ServerId>,
}

/// A page of adverts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryResponse {
    /// Encoded `SignedAdvert` values sorted by server id (at most 64).
    pub adverts: Vec<Bytes>,
    /// More follow.
    pub more: bool,
}

impl DirectoryRequest {
    /// Encodes the request.
    pub fn to_bytes(&self) -> Vec<u8> {
        pb::DirectoryRequest {
            limit: self.limit,
            after_server: self
                .after_server
                .map(|id| Bytes::copy_from_slice(id.as_bytes()))
                .unwrap_or_default(),
        }
        .encode_to_vec()
    }

    /// Decodes and checks a request.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtoError> {
        check::encoded_size(
            "directory request",
            bytes.len(),
            MAX_DIRECTORY_REQUEST_BYTES,
        )?;
        let message = pb::DirectoryRequest::decode(bytes)
            .map_err(|err| ProtoError::decode("directory request", err))?;
        let max = MAX_DIRECTORY_ADVERTS as u64;
        if message.limit == 0 || u64::from(message.limit) > max {
            return Err(ProtoError::OutOfRange {
                what: "directory limit",
                value: u64::from(message.limit),
                min: 1,
                max,
            });
        }
        Ok(Self {
            limit: message.limit,
            after_server: if message.after_server.is_empty() {
                None
            } else {
                Some(ServerId::from_bytes(check::fixed(
                    "after server",
                    &message.after_server,
                )?))
            },
        })
    }
}

impl DirectoryResponse {
    /// Encodes the response.
    pub fn to_bytes(&self) -> Vec<u8> {
        pb::DirectoryResponse {
            adverts: self.adverts.clone(),
            more: self.more,
        }
        .encode_to_vec()
    }

    /// Decodes and checks a response (the adverts are not verified here).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtoError> {
        check::encoded_size(
            "directory response",
            bytes.len(),
            MAX_DIRECTORY_RESPONSE_BYTES,
        )?;
        wire_counts::check(bytes, &wire_counts::DIRECTORY_RESPONSE)?;
        let message = pb::DirectoryResponse::decode(bytes)
            .map_err(|err| ProtoError::decode("directory response", err))?;
        let adverts = check::at_most("directory adverts", message.adverts, MAX_DIRECTORY_ADVERTS)?
            .into_iter()
            .map(|advert| {
                check::encoded_size("signed advert", advert.len(), MAX_SIGNED_ADVERT_BYTES)?;
                Ok(advert)
            })
            .collect::<Result<_, ProtoError>>()?;
        Ok(Self {
            adverts,
            more: message.more,
        })
    }
}
