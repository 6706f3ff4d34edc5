//! The overlay's address book as the node stores it (multiaddrs as text).

use net_overlay::{AddressBookSnapshot, KnownPeer};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct StoredPeer {
    server: Option<String>,
    peer: String,
    addrs: Vec<String>,
    last_seen_ms: u64,
}

/// A persisted address book.
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct StoredAddressBook {
    peers: Vec<StoredPeer>,
}

impl StoredAddressBook {
    pub(crate) fn from_snapshot(snapshot: &AddressBookSnapshot) -> Self {
        Self {
            peers: snapshot
                .peers
                .iter()
                .map(|known| StoredPeer {
                    server: known.server.map(|server| server.to_hex()),
                    peer: known.peer.to_string(),
                    addrs: known.addrs.iter().map(ToString::to_string).collect(),
                    last_seen_ms: known.last_seen_ms,
                })
                .collect(),
        }
    }

    /// Back to the overlay's form; unparsable records are skipped.
    pub(crate) fn into_snapshot(self) -> AddressBookSnapshot {
        AddressBookSnapshot {
            peers: self
                .peers
                .into_iter()
                .filter_map(|stored| {
                    Some(KnownPeer {
                        server: match stored.server {
                            Some(hex) => Some(hex.parse().ok()?),
                            None => None,
                        },
                        peer: stored.peer.parse().ok()?,
                        addrs: stored
                            .addrs
                            .iter()
                            .filter_map(|addr| addr.parse().ok())
                            .collect(),
                        last_seen_ms: stored.last_seen_ms,
                    })
                })
                .collect(),
        }
    }
}
