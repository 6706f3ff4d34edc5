//! The timeline: every entry of a log in display order, paged by cursor.
//!
//! Display order is `(lamport, author bytes, seq)`. Lamport clocks make an
//! entry sort after everything its author had seen; ties between authors
//! break on the author's key bytes, and the seq breaks the (impossible for
//! honest authors) tie within one feed. The ledger keeps a timeline index
//! whose keys are exactly this triple in big-endian bytes, so a page is one
//! range scan forwards ([`crate::LedgerStore::timeline_after`]) or backwards
//! ([`crate::LedgerStore::timeline_before`]) from a cursor, exclusive. A
//! cursor is a [`TimelinePosition`]; its string form
//! ([`TimelinePosition::to_cursor`]) is the lowercase hex of the same 48
//! bytes, so a client can hand it back later unchanged.

use bytes::Bytes;
use data_encoding::{HEXLOWER, HEXLOWER_PERMISSIVE};
use identity_core::UserId;
use messaging_proto::EntryHash;

use crate::error::LedgerError;

/// Most items in one timeline page; larger limits are capped to this.
pub const MAX_TIMELINE_PAGE: usize = 1_024;

/// Length of an encoded cursor in bytes (96 hex characters as a string).
pub const CURSOR_LEN: usize = 8 + 32 + 8;

/// The place of an entry in display order. The derived ordering compares
/// `lamport`, then the author's bytes, then `seq`: exactly display order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimelinePosition {
    /// The entry's lamport clock.
    pub lamport: u64,
    /// The entry's author.
    pub author: UserId,
    /// The entry's seq in the author's feed.
    pub seq: u64,
}

impl TimelinePosition {
    /// The 48-byte encoding: lamport u64 BE ‖ author 32 ‖ seq u64 BE.
    pub fn to_bytes(&self) -> [u8; CURSOR_LEN] {
        let mut out = [0u8; CURSOR_LEN];
        out[..8].copy_from_slice(&self.lamport.to_be_bytes());
        out[8..40].copy_from_slice(self.author.as_bytes());
        out[40..].copy_from_slice(&self.seq.to_be_bytes());
        out
    }

    /// Decodes [`TimelinePosition::to_bytes`].
    ///
    /// # Errors
    /// [`LedgerError::InvalidCursor`] for a wrong length or an author that
    /// is not a valid user id.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LedgerError> {
        if bytes.len() != CURSOR_LEN {
            return Err(LedgerError::InvalidCursor {
                reason: "a cursor is 48 bytes (96 hex characters)",
            });
        }
        let mut lamport = [0u8; 8];
        let mut author = [0u8; 32];
        let mut seq = [0u8; 8];
        lamport.copy_from_slice(&bytes[..8]);
        author.copy_from_slice(&bytes[8..40]);
        seq.copy_from_slice(&bytes[40..]);
        Ok(Self {
            lamport: u64::from_be_bytes(lamport),
            author: UserId::from_bytes(author).map_err(|_| LedgerError::InvalidCursor {
                reason: "the author is not a valid user id",
            })?,
            seq: u64::from_be_bytes(seq),
        })
    }

    /// The cursor string: lowercase hex of [`TimelinePosition::to_bytes`].
    pub fn to_cursor(&self) -> String {
        HEXLOWER.encode(&self.to_bytes())
    }

    /// Parses a cursor string (hex in either case).
    ///
    /// # Errors
    /// [`LedgerError::InvalidCursor`] if the text is not 96 hex characters
    /// of a valid position.
    pub fn from_cursor(text: &str) -> Result<Self, LedgerError> {
        if text.len() != CURSOR_LEN * 2 {
            return Err(LedgerError::InvalidCursor {
                reason: "a cursor is 96 hex characters",
            });
        }
        let bytes = HEXLOWER_PERMISSIVE.decode(text.as_bytes()).map_err(|_| {
            LedgerError::InvalidCursor {
                reason: "a cursor is hexadecimal",
            }
        })?;
        Self::from_bytes(&bytes)
    }
}

/// One entry of a timeline page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineItem {
    /// Where the entry sorts; pass it back as the next page's cursor.
    pub position: TimelinePosition,
    /// The entry's hash.
    pub hash: EntryHash,
    /// The encoded `SignedEntry`.
    pub entry: Bytes,
}

/// A page of a timeline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimelinePage {
    /// The items, newest first for `timeline_before`, oldest first for
    /// `timeline_after`.
    pub items: Vec<TimelineItem>,
    /// More items follow in the same direction.
    pub more: bool,
}

#[cfg(test)]
mod tests {
    use identity_core::Identity;
    use proptest::prelude::*;

    use super::*;

    fn author(seed: u8) -> UserId {
        Identity::from_secret_bytes(&[seed; 32]).user_id()
    }

    proptest! {
        #[test]
        fn cursor_round_trips(lamport in any::<u64>(), seq in any::<u64>(), seed in 1u8..8) {
            let position = TimelinePosition { lamport, author: author(seed), seq };
            let cursor = position.to_cursor();
            prop_assert_eq!(cursor.len(), 96);
            prop_assert_eq!(TimelinePosition::from_cursor(&cursor).unwrap(), position);
            prop_assert_eq!(TimelinePosition::from_cursor(&cursor.to_uppercase()).unwrap(), position);
        }

        /// Cursor bytes sort like positions, so a cursor is also a key suffix.
        #[test]
        fn cursor_bytes_sort_like_positions(
            la in 0u64..4, lb in 0u64..4, sa in 0u64..4, sb in 0u64..4, ua in 1u8..4, ub in 1u8..4,
        ) {
            let a = TimelinePosition { lamport: la, author: author(ua), seq: sa };
            let b = TimelinePosition { lamport: lb, author: author(ub), seq: sb };
            prop_assert_eq!(a.cmp(&b), a.to_bytes().cmp(&b.to_bytes()));
        }
    }

    #[test]
    fn ordering_is_display_order() {
        let (low, high) = {
            let (a, b) = (author(1), author(2));
            if a < b { (a, b) } else { (b, a) }
        };
        let p = |lamport, author, seq| TimelinePosition {
            lamport,
            author,
            seq,
        };
        assert!(p(1, high, 9) < p(2, low, 1));
        assert!(p(2, low, 9) < p(2, high, 1));
        assert!(p(2, low, 1) < p(2, low, 2));
    }

    #[test]
    fn bad_cursors_are_refused() {
        let good = TimelinePosition {
            lamport: 1,
            author: author(1),
            seq: 1,
        }
        .to_cursor();
        for text in [
            "",
            "zz",
            &good[..94],
            &format!("{good}00"),
            &good.replace('0', "g"),
        ] {
            let err = TimelinePosition::from_cursor(text).unwrap_err();
            assert_eq!(err.code(), "ledger.invalid_cursor", "{text}");
        }
        // 48 bytes whose author is not a curve point.
        let mut bytes = [0u8; CURSOR_LEN];
        bytes[8..40].copy_from_slice(&[0xff; 32]);
        assert!(TimelinePosition::from_bytes(&bytes).is_err());
    }
}
