//! Helpers for tests in this and other crates (feature `test-utils`):
//! [`FeedWriter`] writes valid hash-linked feeds, and the `strategies`
//! module has proptest strategies for every domain type.

use identity_core::Identity;
use rand::CryptoRng;

use crate::entry::{EntryDraft, Sealing, VerifiedEntry};
use crate::group_key::EpochKey;
use crate::ids::{EntryHash, LogId, SpaceId};
use crate::payload::{Body, Payload, Text, TxnId};

/// Writes one author's feed of one log: each call to
/// [`FeedWriter::text`] seals the next entry with the right seq, backlink
/// and lamport.
pub struct FeedWriter {
    identity: Identity,
    space: SpaceId,
    log: LogId,
    key: EpochKey,
    seq: u64,
    last: Option<EntryHash>,
    lamport: u64,
    timestamp_ms: u64,
}

impl FeedWriter {
    /// A feed of `identity` in `log` of `space`, encrypted with `key`.
    pub fn new(identity: Identity, space: SpaceId, log: LogId, key: EpochKey) -> Self {
        Self {
            identity,
            space,
            log,
            key,
            seq: 0,
            last: None,
            lamport: 0,
            timestamp_ms: 1_700_000_000_000,
        }
    }

    /// The author.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The log.
    pub fn log(&self) -> LogId {
        self.log
    }

    /// The space.
    pub fn space(&self) -> SpaceId {
        self.space
    }

    /// Continues an existing feed after `seq` / `last` (e.g. after a restart).
    pub fn resume(&mut self, seq: u64, last: Option<EntryHash>, lamport: u64) {
        self.seq = seq;
        self.last = last;
        self.lamport = lamport;
    }

    /// Makes the next entry take a lamport clock of at least `lamport`
    /// (to interleave with other authors).
    pub fn observe_lamport(&mut self, lamport: u64) {
        self.lamport = self.lamport.max(lamport);
    }

    /// Seals the next entry of the feed with a text message.
    pub fn text<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, body: &str) -> VerifiedEntry {
        let payload = Payload {
            client_txn_id: TxnId::random(rng),
            body: Body::Text(Text {
                body: body.to_owned(),
                reply_to: None,
            }),
        };
        self.payload(rng, &payload)
    }

    /// Seals the next entry of the feed with any payload.
    ///
    /// # Panics
    /// If the payload breaks a protocol limit (a bug in the test).
    #[allow(clippy::expect_used)]
    pub fn payload<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, payload: &Payload) -> VerifiedEntry {
        self.seq += 1;
        self.lamport += 1;
        self.timestamp_ms += 1;
        let draft = EntryDraft {
            space: Some(self.space),
            log_id: self.log,
            seq: self.seq,
            backlink: self.last,
            lamport: self.lamport,
            timestamp_ms: self.timestamp_ms,
        };
        let entry = VerifiedEntry::seal(rng, &self.identity, draft, payload, Sealing::Encrypt(&self.key))
            .expect("test payload within limits");
        self.last = Some(entry.hash());
        entry
    }
}
