//! Payloads: what an entry says once decrypted — a message, an edit, a
//! redaction, a reaction or a control event — with the client's transaction
//! id that makes retries idempotent.

use bytes::Bytes;
use prost::Message;

use crate::check;
use crate::control::ControlEvent;
use crate::error::ProtoError;
use crate::ids::EntryHash;
use crate::limits::{MAX_REACTION_BYTES, MAX_SIGNED_ENTRY_BYTES, MAX_TEXT_CHARS, MAX_TXN_ID_BYTES};
use crate::pb;
use crate::pb::payload::Body as PbBody;
use crate::wire_counts;

/// A client-chosen id for one user action; a retry reuses it so that it
/// never creates a second message. At most 32 bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxnId(Bytes);

impl TxnId {
    /// Wraps up to 32 bytes.
    pub fn new(bytes: impl Into<Bytes>) -> Result<Self, ProtoError> {
        check::max_bytes("client txn id", bytes.into(), MAX_TXN_ID_BYTES).map(Self)
    }

    /// A fresh random 16-byte id.
    pub fn random<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        Self(Bytes::copy_from_slice(&bytes))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The decrypted content of an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    /// The client's transaction id (may be empty for events without one).
    pub client_txn_id: TxnId,
    /// What the entry says.
    pub body: Body,
}

/// What an entry says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// A chat message.
    Text(Text),
    /// A new text for one of the author's own messages.
    Edit {
        /// The message being edited.
        target: EntryHash,
        /// The new text (at most 5,000 characters).
        body: String,
    },
    /// The author withdraws one of their own messages.
    Redact {
        /// The message.
        target: EntryHash,
    },
    /// A reaction added to or removed from a message.
    Reaction {
        /// The message.
        target: EntryHash,
        /// 1..=64 bytes, usually one emoji.
        emoji: String,
        /// True to take back an earlier reaction.
        remove: bool,
    },
    /// A change to the server (control log only).
    Control(ControlEvent),
}

/// A chat message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text {
    /// At most 5,000 characters.
    pub body: String,
    /// The message this replies to.
    pub reply_to: Option<EntryHash>,
}

impl Payload {
    /// Encodes the payload after checking it against the rules a receiver
    /// applies, so that we never send what peers would refuse.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ProtoError> {
        let message = pb::Payload::from(self);
        Payload::try_from(message.clone())?;
        Ok(message.encode_to_vec())
    }

    /// Decodes and checks a payload.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtoError> {
        check::encoded_size("payload", bytes.len(), MAX_SIGNED_ENTRY_BYTES)?;
        wire_counts::check(bytes, &wire_counts::PAYLOAD)?;
        let message =
            pb::Payload::decode(bytes).map_err(|err| ProtoError::decode("payload", err))?;
        Self::try_from(message)
    }

    /// The control event, if this payload carries one.
    pub fn control(&self) -> Option<&ControlEvent> {
        match &self.body {
            Body::Control(event) => Some(event),
            _ => None,
        }
    }
}

fn message_text(what: &'static str, value: String) -> Result<String, ProtoError> {
    check::text(what, value, 1, MAX_TEXT_CHARS)
}

fn reaction(value: String) -> Result<String, ProtoError> {
    if value.is_empty() {
        return Err(ProtoError::MissingField { what: "reaction" });
    }
    if value.len() > MAX_REACTION_BYTES {
        return Err(ProtoError::TooLarge {
            what: "reaction",
            size: value.len(),
            limit: MAX_REACTION_BYTES,
        });
    }
    Ok(value)
}

impl TryFrom<pb::Payload> for Payload {
    type Error = ProtoError;

    fn try_from(value: pb::Payload) -> Result<Self, ProtoError> {
        let client_txn_id = TxnId::new(value.client_txn_id)?;
        let body = match check::required("payload body", value.body)? {
            PbBody::Text(text) => Body::Text(Text {
                body: message_text("message text", text.body)?,
                reply_to: check::optional_hash("reply target", &text.reply_to)?,
            }),
            PbBody::Edit(edit) => Body::Edit {
                target: check::hash("edit target", &edit.target)?,
                body: message_text("edited text", edit.body)?,
            },
            PbBody::Redact(redact) => Body::Redact {
                target: check::hash("redaction target", &redact.target)?,
            },
            PbBody::Reaction(r) => Body::Reaction {
                target: check::hash("reaction target", &r.target)?,
                emoji: reaction(r.emoji)?,
                remove: r.remove,
            },
            PbBody::Control(event) => Body::Control(ControlEvent::try_from(event)?),
        };
        Ok(Self {
            client_txn_id,
            body,
        })
    }
}

fn hash_bytes(hash: &EntryHash) -> Bytes {
    Bytes::copy_from_slice(hash.as_bytes())
}

impl From<&Payload> for pb::Payload {
    fn from(value: &Payload) -> Self {
        let body = match &value.body {
            Body::Text(text) => PbBody::Text(pb::Text {
                body: text.body.clone(),
                reply_to: text.reply_to.as_ref().map(hash_bytes).unwrap_or_default(),
            }),
            Body::Edit { target, body } => PbBody::Edit(pb::Edit {
                target: hash_bytes(target),
                body: body.clone(),
            }),
            Body::Redact { target } => PbBody::Redact(pb::Redact {
                target: hash_bytes(target),
            }),
            Body::Reaction {
                target,
                emoji,
                remove,
            } => PbBody::Reaction(pb::Reaction {
                target: hash_bytes(target),
                emoji: emoji.clone(),
                remove: *remove,
            }),
            Body::Control(event) => PbBody::Control(pb::ControlEvent::from(event)),
        };
        Self {
            client_txn_id: value.client_txn_id.0.clone(),
            body: Some(body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(body: &str) -> Payload {
        Payload {
            client_txn_id: TxnId::new(b"t1".to_vec()).unwrap(),
            body: Body::Text(Text {
                body: body.to_owned(),
                reply_to: None,
            }),
        }
    }

    #[test]
    fn text_limit_is_in_characters() {
        // 5,000 four-byte characters are allowed, 5,001 are not.
        let at_limit = "😀".repeat(MAX_TEXT_CHARS);
        let bytes = text(&at_limit).to_bytes().unwrap();
        assert_eq!(Payload::from_bytes(&bytes).unwrap(), text(&at_limit));
        let over = "a".repeat(MAX_TEXT_CHARS + 1);
        assert_eq!(
            text(&over).to_bytes().unwrap_err().code(),
            "proto.text_too_long"
        );
        assert_eq!(
            text("").to_bytes().unwrap_err().code(),
            "proto.missing_field"
        );
    }

    #[test]
    fn txn_id_is_bounded() {
        assert!(TxnId::new(vec![0; MAX_TXN_ID_BYTES]).is_ok());
        assert_eq!(
            TxnId::new(vec![0; MAX_TXN_ID_BYTES + 1])
                .unwrap_err()
                .code(),
            "proto.too_large"
        );
    }

    #[test]
    fn missing_body_is_an_error() {
        let bytes = pb::Payload {
            client_txn_id: Bytes::new(),
            body: None,
        }
        .encode_to_vec();
        assert_eq!(
            Payload::from_bytes(&bytes),
            Err(ProtoError::MissingField {
                what: "payload body"
            })
        );
    }
}
