//! What travels on a server's gossipsub topic.

use bytes::Bytes;
use prost::Message;

use crate::check;
use crate::error::ProtoError;
use crate::limits::{MAX_GOSSIP_MESSAGE_BYTES, MAX_SIGNED_ENTRY_BYTES};
use crate::pb;
use crate::pb::gossip_message::Body;

/// One gossip message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GossipMessage {
    /// An encoded `SignedEntry`, verified by the receiver before it is
    /// accepted or forwarded.
    Entry(Bytes),
}

impl GossipMessage {
    /// Encodes the message.
    pub fn to_bytes(&self) -> Vec<u8> {
        let body = match self {
            Self::Entry(entry) => Body::Entry(entry.clone()),
        };
        pb::GossipMessage { body: Some(body) }.encode_to_vec()
    }

    /// Decodes and checks a message.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtoError> {
        check::encoded_size("gossip message", bytes.len(), MAX_GOSSIP_MESSAGE_BYTES)?;
        let message = pb::GossipMessage::decode(bytes)
            .map_err(|err| ProtoError::decode("gossip message", err))?;
        match check::required("gossip message body", message.body)? {
            Body::Entry(entry) => {
                if entry.is_empty() {
                    return Err(ProtoError::MissingField {
                        what: "gossip entry",
                    });
                }
                check::encoded_size("signed entry", entry.len(), MAX_SIGNED_ENTRY_BYTES)?;
                Ok(Self::Entry(entry))
            }
        }
    }
}
