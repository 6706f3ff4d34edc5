//! [`ControlRecord`]: one decrypted control entry, reduced to what the fold
//! needs — the entry's id, the clear header fields that order and time it,
//! and the event.

use identity_core::UserId;
use messaging_proto::{Body, ControlEvent, EntryHash, Payload, VerifiedEntry};

/// The display-order key of a record: `(lamport, author bytes, seq)`.
pub type OrderKey = (u64, [u8; 32], u64);

/// One decrypted control entry: the fold's input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlRecord {
    /// The entry's hash (its id). Two records with the same hash are the
    /// same record.
    pub hash: EntryHash,
    /// Who wrote and signed the entry.
    pub author: UserId,
    /// Position in the author's feed of the control log.
    pub seq: u64,
    /// Lamport clock of the control log.
    pub lamport: u64,
    /// The author's clock (ms since the Unix epoch): the only time the fold
    /// knows, used for invite expiry and join times.
    pub timestamp_ms: u64,
    /// Epoch of the key that encrypted the entry (0 for key distribution).
    pub key_epoch: u32,
    /// What the entry says.
    pub event: ControlEvent,
}

impl ControlRecord {
    /// Builds the record of a verified entry and its decrypted payload.
    /// `None` if the payload is not a control event.
    pub fn from_entry(entry: &VerifiedEntry, payload: &Payload) -> Option<Self> {
        let Body::Control(event) = &payload.body else {
            return None;
        };
        let header = entry.header();
        Some(Self {
            hash: entry.hash(),
            author: header.author,
            seq: header.seq,
            lamport: header.lamport,
            timestamp_ms: header.timestamp_ms,
            key_epoch: header.key_epoch,
            event: event.clone(),
        })
    }

    /// Display order key: `(lamport, author bytes, seq)`.
    pub fn order_key(&self) -> OrderKey {
        (self.lamport, *self.author.as_bytes(), self.seq)
    }

    /// The total order the fold uses: the display order, then the hash, so
    /// that two different records with one key (an equivocating author)
    /// still fold in the same order on every peer.
    pub(super) fn fold_position(&self) -> (OrderKey, EntryHash) {
        (self.order_key(), self.hash)
    }
}
