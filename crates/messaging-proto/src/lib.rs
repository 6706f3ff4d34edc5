//! Palaver's wire and storage types.
//!
//! The protobuf schemas live in `proto/palaver/v1/` at the workspace root and
//! are compiled at build time with `prost-build` + `protox` (no system
//! `protoc`). The generated types stay private to this crate: everything
//! else uses the domain types here, which are built with `TryFrom` that
//! checks required fields and every limit in [`limits`], and are encoded
//! only after the same checks pass.
//!
//! Signatures cover the exact encoded bytes (never a re-encoding), with a
//! domain-separation tag per object ([`ENTRY_SIGNATURE_CONTEXT`],
//! [`INVITE_SIGNATURE_CONTEXT`], [`ADVERT_SIGNATURE_CONTEXT`]). Content
//! hashes are BLAKE3. This crate does no I/O and needs no runtime.
//!
//! # Example
//!
//! ```
//! use identity_core::Identity;
//! use messaging_proto::{
//!     Body, EntryDraft, EpochKey, LogId, Payload, Sealing, SpaceId, Text, TxnId, VerifiedEntry,
//! };
//!
//! let mut rng = rand::rng();
//! let alice = Identity::generate(&mut rng);
//! let key = EpochKey::generate(&mut rng, 1);
//! let payload = Payload {
//!     client_txn_id: TxnId::random(&mut rng),
//!     body: Body::Text(Text { body: "hello".into(), reply_to: None }),
//! };
//! let draft = EntryDraft {
//!     space: Some(SpaceId::from_bytes([1; 32])),
//!     log_id: LogId::from_bytes([2; 32]),
//!     seq: 1,
//!     backlink: None,
//!     lamport: 1,
//!     timestamp_ms: 1_700_000_000_000,
//! };
//! let entry = VerifiedEntry::seal(&mut rng, &alice, draft, &payload, Sealing::Encrypt(&key))?;
//!
//! // A receiver verifies the bytes, then decrypts with the epoch key.
//! let received = VerifiedEntry::verify(entry.encoded().clone())?;
//! assert_eq!(received.hash(), entry.hash());
//! assert_eq!(received.open(&key)?, payload);
//! # Ok::<(), messaging_proto::ProtoError>(())
//! ```

mod advert;
mod check;
mod common;
mod control;
mod directory;
mod entry;
mod error;
mod gossip;
mod group_key;
mod ids;
mod invite;
pub mod limits;
mod payload;
mod sync;
mod wire_counts;

#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;

mod pb {
    #![allow(
        missing_docs,
        unreachable_pub,
        clippy::all,
        clippy::pedantic,
        rust_2018_idioms
    )]
    include!(concat!(env!("OUT_DIR"), "/palaver.v1.rs"));
}

pub use advert::{
    ADVERT_CLOCK_SKEW_MS, ADVERT_KEY_PREFIX, ADVERT_SIGNATURE_CONTEXT, ServerAdvert, SignedAdvert,
    advert_record_key,
};
pub use common::{BootstrapPeer, Role, Visibility};
pub use control::{
    ChannelSpec, ControlEvent, CreateServer, FeedCut, InviteIssued, Join, KeyGrant, KeyRotation,
    ServerProfile, WRAPPED_KEY_LEN,
};
pub use directory::{DirectoryRequest, DirectoryResponse};
pub use entry::{
    ENTRY_SIGNATURE_CONTEXT, ENTRY_VERSION, EntryDraft, EntryHeader, PLAINTEXT_EPOCH, Sealing,
    VerifiedEntry,
};
pub use error::ProtoError;
pub use gossip::GossipMessage;
pub use group_key::{EpochKey, KEY_LEN, NONCE_LEN, TAG_LEN, epoch_key_aad};
pub use ids::{ChannelId, DmId, EntryHash, InboxTag, InviteId, LogId, ServerId, SpaceId};
pub use invite::{
    INVITE_SIGNATURE_CONTEXT, INVITE_VERSION, Invite, SignedInvite, expiry_has_passed,
};
pub use payload::{Body, Payload, Text, TxnId};
pub use sync::{
    DigestResponse, Head, HeadsResponse, LogDigest, PushResult, RangeRequest, RangeResponse,
    SyncError, SyncErrorCode, SyncRequest, SyncResponse,
};
