//! The log digest that lets two peers compare a log in one round trip.
//!
//! A log's digest is BLAKE3 over the concatenation, in ascending order of
//! author bytes, of `author (32 B) ‖ head seq (u64 big-endian) ‖ head hash
//! (32 B)` for every author with a feed in the log; an empty log hashes the
//! empty string. Because each feed is hash-linked, equal digests mean equal
//! content (up to pruning, which never touches heads), however the entries
//! arrived. When digests differ, peers page through heads and pull ranges.

use identity_core::UserId;

use crate::store::{FeedHead, LogDigestInfo};

/// Builds a digest from heads fed in ascending author order.
#[derive(Clone, Debug, Default)]
pub struct LogDigestBuilder {
    hasher: blake3::Hasher,
    authors: u64,
}

impl LogDigestBuilder {
    /// A digest of no heads yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next head; authors must come in ascending byte order.
    pub fn push(&mut self, author: &UserId, head: &FeedHead) {
        self.push_raw(author.as_bytes(), head);
    }

    /// Adds the next head from raw (already checked) author bytes.
    pub(crate) fn push_raw(&mut self, author: &[u8; 32], head: &FeedHead) {
        self.hasher.update(author);
        self.hasher.update(&head.seq.to_be_bytes());
        self.hasher.update(head.hash.as_bytes());
        self.authors += 1;
    }

    /// The digest; the author count saturates at `u32::MAX`.
    pub fn finish(&self) -> LogDigestInfo {
        LogDigestInfo {
            digest: *self.hasher.finalize().as_bytes(),
            author_count: u32::try_from(self.authors).unwrap_or(u32::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use identity_core::Identity;
    use messaging_proto::EntryHash;

    use super::*;

    #[test]
    fn matches_the_documented_formula() {
        assert_eq!(
            LogDigestBuilder::new().finish().digest,
            *blake3::hash(b"").as_bytes()
        );
        let author = Identity::from_secret_bytes(&[1; 32]).user_id();
        let head = FeedHead {
            seq: 3,
            hash: EntryHash::from_bytes([9; 32]),
            lamport: 7,
            first_seq: 1,
        };
        let mut builder = LogDigestBuilder::new();
        builder.push(&author, &head);
        let mut expected = Vec::new();
        expected.extend_from_slice(author.as_bytes());
        expected.extend_from_slice(&3u64.to_be_bytes());
        expected.extend_from_slice(&[9; 32]);
        let info = builder.finish();
        assert_eq!(info.digest, *blake3::hash(&expected).as_bytes());
        assert_eq!(info.author_count, 1);
        // Lamport and first_seq are not part of the digest.
        let mut other = LogDigestBuilder::new();
        other.push(
            &author,
            &FeedHead {
                lamport: 99,
                first_seq: 2,
                ..head
            },
        );
        assert_eq!(other.finish(), info);
    }
}
