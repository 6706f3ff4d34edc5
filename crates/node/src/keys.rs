//! The key book: every group key we hold, per server and epoch, kept in the
//! private store and cached in memory.
//!
//! An epoch usually has one key. Two admins rotating at the same moment
//! create two keys for one epoch; the fold makes the first (in display
//! order) the one to encrypt with, but messages already sent under the
//! other must stay readable, so both are kept and decryption tries each.

use std::collections::HashMap;

use data_encoding::HEXLOWER;
use messaging_proto::{EpochKey, Payload, ProtoError, SpaceId, VerifiedEntry};
use serde::{Deserialize, Serialize};

use crate::api::NodeError;
use crate::local_store::{LocalStore, ns};

#[derive(Serialize, Deserialize)]
struct StoredKeys {
    /// Hex keys; the first is the one to encrypt with.
    keys: Vec<String>,
}

fn record_key(space: &SpaceId, epoch: u32) -> Vec<u8> {
    let mut key = space.as_bytes().to_vec();
    key.extend_from_slice(&epoch.to_be_bytes());
    key
}

/// Group keys per (space, epoch).
pub(crate) struct KeyBook {
    store: LocalStore,
    keys: HashMap<(SpaceId, u32), Vec<EpochKey>>,
}

impl KeyBook {
    /// Loads every stored key.
    pub(crate) fn load(store: LocalStore) -> Result<Self, NodeError> {
        let mut keys: HashMap<(SpaceId, u32), Vec<EpochKey>> = HashMap::new();
        for (key, stored) in store.scan::<StoredKeys>(ns::EPOCH_KEYS)? {
            if key.len() != 36 {
                continue;
            }
            let Ok(space) = SpaceId::from_slice(&key[..32]) else {
                continue;
            };
            let epoch = u32::from_be_bytes([key[32], key[33], key[34], key[35]]);
            let parsed: Vec<EpochKey> = stored
                .keys
                .iter()
                .filter_map(|hex| {
                    let bytes = HEXLOWER.decode(hex.as_bytes()).ok()?;
                    EpochKey::from_slice(epoch, &bytes).ok()
                })
                .collect();
            if !parsed.is_empty() {
                keys.insert((space, epoch), parsed);
            }
        }
        Ok(Self { store, keys })
    }

    /// Adds a key; `primary` keys go first (they encrypt). Returns whether
    /// it was new. Waits until it is durable.
    pub(crate) async fn add(
        &mut self,
        space: SpaceId,
        key: EpochKey,
        primary: bool,
    ) -> Result<bool, NodeError> {
        let epoch = key.epoch();
        let list = self.keys.entry((space, epoch)).or_default();
        if let Some(position) = list.iter().position(|known| known == &key) {
            if primary && position != 0 {
                let key = list.remove(position);
                list.insert(0, key);
            } else {
                return Ok(false);
            }
        } else if primary {
            list.insert(0, key);
        } else {
            list.push(key);
        }
        let stored = StoredKeys {
            keys: list
                .iter()
                .map(|key| HEXLOWER.encode(key.as_bytes()))
                .collect(),
        };
        self.store
            .put(ns::EPOCH_KEYS, &record_key(&space, epoch), &stored)?
            .await?;
        Ok(true)
    }

    /// The keys of one epoch, the one to encrypt with first.
    pub(crate) fn get(&self, space: &SpaceId, epoch: u32) -> &[EpochKey] {
        self.keys.get(&(*space, epoch)).map_or(&[], Vec::as_slice)
    }

    /// The key of the highest epoch we hold.
    pub(crate) fn latest(&self, space: &SpaceId) -> Option<&EpochKey> {
        self.keys
            .iter()
            .filter(|((s, _), keys)| s == space && !keys.is_empty())
            .max_by_key(|((_, epoch), _)| *epoch)
            .and_then(|(_, keys)| keys.first())
    }

    /// Whether we hold any key of this epoch.
    pub(crate) fn has(&self, space: &SpaceId, epoch: u32) -> bool {
        !self.get(space, epoch).is_empty()
    }

    /// Decrypts an entry with any key we hold for its epoch.
    pub(crate) fn open(&self, entry: &VerifiedEntry) -> Result<Payload, OpenError> {
        let epoch = entry.header().key_epoch;
        if epoch == messaging_proto::PLAINTEXT_EPOCH {
            return entry.open_plain().map_err(OpenError::Invalid);
        }
        let keys = self.get(&entry.space(), epoch);
        if keys.is_empty() {
            return Err(OpenError::NoKey(epoch));
        }
        let mut last = ProtoError::DecryptFailed;
        for key in keys {
            match entry.open(key) {
                Ok(payload) => return Ok(payload),
                Err(err) => last = err,
            }
        }
        Err(OpenError::Invalid(last))
    }
}

/// Why an entry could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// We hold no key of this epoch (yet).
    NoKey(u32),
    /// Every key failed, or the plaintext is invalid.
    Invalid(ProtoError),
}
