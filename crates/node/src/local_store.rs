//! Typed access to the ledger's encrypted private store: one namespace per
//! kind of record, values as JSON. Everything here may reveal plaintext or
//! keys, which is why it lives in the private store and not beside the
//! entries.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use storage_ledger::{Durable, PrivateStore, SledLedger};

use crate::api::NodeError;

/// Namespaces of the private store.
pub(crate) mod ns {
    /// Our profile (display name).
    pub(crate) const PROFILE: &str = "profile";
    /// Servers we belong to or replicate.
    pub(crate) const SERVERS: &str = "servers";
    /// Group keys per (server, epoch).
    pub(crate) const EPOCH_KEYS: &str = "epoch_keys";
    /// Client transaction ids → entry hash, per (log, author).
    pub(crate) const TXN: &str = "txn";
    /// Latest edit per message.
    pub(crate) const EDITS: &str = "edits";
    /// Reactions per message.
    pub(crate) const REACTIONS: &str = "reactions";
    /// Redactions per message.
    pub(crate) const REDACTIONS: &str = "redactions";
    /// Unread counters per log.
    pub(crate) const UNREAD: &str = "unread";
    /// Entries waiting for a peer to confirm them.
    pub(crate) const OUTBOX: &str = "outbox";
    /// DM conversations (DM id → the other user).
    pub(crate) const DMS: &str = "dms";
    /// The overlay's address book.
    pub(crate) const PEERS: &str = "peers";
    /// Display names seen in joins (user → name).
    pub(crate) const NAMES: &str = "names";
    /// A replica's DM inbox index (tag ‖ space).
    pub(crate) const INBOX: &str = "inbox";
}

/// Typed JSON records in the private store.
#[derive(Clone)]
pub(crate) struct LocalStore {
    ledger: Arc<SledLedger>,
}

impl LocalStore {
    pub(crate) fn new(ledger: Arc<SledLedger>) -> Self {
        Self { ledger }
    }

    pub(crate) fn put<T: Serialize>(
        &self,
        namespace: &str,
        key: &[u8],
        value: &T,
    ) -> Result<Durable, NodeError> {
        let bytes = encode(value)?;
        Ok(self.ledger.put_private(namespace, key, &bytes)?)
    }

    /// Stores `value` unless `key` holds one already: `None` if it did
    /// (nothing changes).
    pub(crate) fn put_if_absent<T: Serialize>(
        &self,
        namespace: &str,
        key: &[u8],
        value: &T,
    ) -> Result<Option<Durable>, NodeError> {
        let bytes = encode(value)?;
        Ok(self.ledger.put_private_if_absent(namespace, key, &bytes)?)
    }

    pub(crate) fn get<T: DeserializeOwned>(
        &self,
        namespace: &str,
        key: &[u8],
    ) -> Result<Option<T>, NodeError> {
        match self.ledger.get_private(namespace, key)? {
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|err| {
                NodeError::internal(format!("stored {namespace} record unreadable: {err}"))
            }),
            None => Ok(None),
        }
    }

    pub(crate) fn delete(&self, namespace: &str, key: &[u8]) -> Result<Durable, NodeError> {
        Ok(self.ledger.delete_private(namespace, key)?)
    }

    /// Every record of a namespace; unreadable ones are skipped with a warning.
    pub(crate) fn scan<T: DeserializeOwned>(
        &self,
        namespace: &str,
    ) -> Result<Vec<(Vec<u8>, T)>, NodeError> {
        let pairs = self.ledger.scan_private(namespace)?;
        let mut out = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            match serde_json::from_slice(&value) {
                Ok(value) => out.push((key, value)),
                Err(err) => {
                    tracing::warn!(namespace, %err, "skipping an unreadable private record")
                }
            }
        }
        Ok(out)
    }
}

/// A record's stored form (JSON).
fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, NodeError> {
    serde_json::to_vec(value).map_err(|err| NodeError::internal(format!("encode: {err}")))
}
