//! The rules an entry must pass to join its feed, as free functions.
//!
//! The entry's own structure and signature were checked when it became a
//! [`VerifiedEntry`]; these rules compare it with the stored head of its
//! (log, author) feed. In order: an entry at or below the head is either
//! the stored one again (a duplicate, accepted without writing), below the
//! prune point (refused), or a second entry for a taken seq (an
//! equivocation: the first is kept and the other becomes evidence). An
//! entry above the head must be exactly the next seq, name the head as its
//! backlink, and carry a larger lamport clock than the head. Each rule has
//! its own [`LedgerError`] variant so callers can react to each (a gap
//! triggers a backfill, an equivocation flags the author).

use messaging_proto::{EntryHash, VerifiedEntry};

use crate::error::LedgerError;
use crate::store::FeedHead;

/// What to do with an entry that passed the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendDecision {
    /// Store it: it is the feed's next entry.
    Append,
    /// The same entry is already stored: write nothing.
    Duplicate,
    /// Another entry holds this seq: keep that one, record this one as
    /// evidence and refuse it.
    Equivocation {
        /// The hash of the stored entry.
        kept: EntryHash,
    },
}

/// Applies every rule. `stored_hash(seq)` returns the hash of the stored
/// entry at a seq between the feed's `first_seq` and its head (it is only
/// called for such seqs).
///
/// # Errors
/// [`LedgerError::BelowPrunePoint`], [`LedgerError::SeqGap`],
/// [`LedgerError::BacklinkMismatch`], [`LedgerError::LamportRegression`],
/// [`LedgerError::Corrupt`] if `stored_hash` finds nothing, or whatever
/// `stored_hash` returns.
pub fn check_append<F>(
    head: Option<&FeedHead>,
    entry: &VerifiedEntry,
    stored_hash: F,
) -> Result<AppendDecision, LedgerError>
where
    F: FnOnce(u64) -> Result<Option<EntryHash>, LedgerError>,
{
    let seq = entry.seq();
    match head {
        Some(head) if seq <= head.seq => {
            check_prune_point(head, seq)?;
            let kept = if seq == head.seq {
                head.hash
            } else {
                stored_hash(seq)?.ok_or(LedgerError::Corrupt { what: "feed entry" })?
            };
            Ok(classify_existing(kept, entry.hash()))
        }
        _ => {
            check_next_seq(head, seq)?;
            if let Some(head) = head {
                check_backlink(head, entry)?;
                check_lamport(head, entry)?;
            }
            Ok(AppendDecision::Append)
        }
    }
}

/// An entry below the feed's `first_seq` was pruned and cannot be checked.
///
/// # Errors
/// [`LedgerError::BelowPrunePoint`].
pub fn check_prune_point(head: &FeedHead, seq: u64) -> Result<(), LedgerError> {
    if seq < head.first_seq {
        return Err(LedgerError::BelowPrunePoint {
            seq,
            first_seq: head.first_seq,
        });
    }
    Ok(())
}

/// A new entry must take the seq right after the head (1 for a new feed).
///
/// # Errors
/// [`LedgerError::SeqGap`].
pub fn check_next_seq(head: Option<&FeedHead>, seq: u64) -> Result<(), LedgerError> {
    let expected = head.map_or(1, |head| head.seq.saturating_add(1));
    if seq != expected {
        return Err(LedgerError::SeqGap {
            expected,
            found: seq,
        });
    }
    Ok(())
}

/// The next entry must name the head as its backlink.
///
/// # Errors
/// [`LedgerError::BacklinkMismatch`].
pub fn check_backlink(head: &FeedHead, entry: &VerifiedEntry) -> Result<(), LedgerError> {
    let found = entry.header().backlink;
    if found != Some(head.hash) {
        return Err(LedgerError::BacklinkMismatch {
            seq: entry.seq(),
            expected: head.hash,
            found,
        });
    }
    Ok(())
}

/// The next entry's lamport clock must exceed the head's.
///
/// # Errors
/// [`LedgerError::LamportRegression`].
pub fn check_lamport(head: &FeedHead, entry: &VerifiedEntry) -> Result<(), LedgerError> {
    if entry.lamport() <= head.lamport {
        return Err(LedgerError::LamportRegression {
            seq: entry.seq(),
            previous: head.lamport,
            found: entry.lamport(),
        });
    }
    Ok(())
}

/// An entry for a taken seq is a duplicate if it is the stored one, an
/// equivocation otherwise.
pub fn classify_existing(kept: EntryHash, incoming: EntryHash) -> AppendDecision {
    if kept == incoming {
        AppendDecision::Duplicate
    } else {
        AppendDecision::Equivocation { kept }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use identity_core::Identity;
    use messaging_proto::test_utils::FeedWriter;
    use messaging_proto::{EpochKey, LogId, SpaceId};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn writer(seed: u8) -> FeedWriter {
        FeedWriter::new(
            Identity::from_secret_bytes(&[seed; 32]),
            SpaceId::from_bytes([1; 32]),
            LogId::from_bytes([2; 32]),
            EpochKey::from_bytes(1, [3; 32]),
        )
    }

    fn head_of(entry: &VerifiedEntry, first_seq: u64) -> FeedHead {
        FeedHead {
            seq: entry.seq(),
            hash: entry.hash(),
            lamport: entry.lamport(),
            first_seq,
        }
    }

    fn no_lookup(_: u64) -> Result<Option<EntryHash>, LedgerError> {
        Err(LedgerError::Closed)
    }

    #[test]
    fn first_entry_of_a_feed() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut feed = writer(1);
        let first = feed.text(&mut rng, "a");
        let second = feed.text(&mut rng, "b");
        assert_eq!(
            check_append(None, &first, no_lookup),
            Ok(AppendDecision::Append)
        );
        assert_eq!(
            check_append(None, &second, no_lookup),
            Err(LedgerError::SeqGap {
                expected: 1,
                found: 2
            })
        );
    }

    #[test]
    fn next_entry_rules() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut feed = writer(1);
        feed.observe_lamport(10);
        let e1 = feed.text(&mut rng, "a");
        let e2 = feed.text(&mut rng, "b");
        let e3 = feed.text(&mut rng, "c");
        let head = head_of(&e1, 1);
        assert_eq!(
            check_append(Some(&head), &e2, no_lookup),
            Ok(AppendDecision::Append)
        );
        assert_eq!(
            check_append(Some(&head), &e3, no_lookup),
            Err(LedgerError::SeqGap {
                expected: 2,
                found: 3
            })
        );

        // Same author, seq 2, but chained on another seq-1 entry.
        let mut fork = writer(1);
        let f1 = fork.text(&mut rng, "x");
        let f2 = fork.text(&mut rng, "y");
        assert_eq!(
            check_append(Some(&head), &f2, no_lookup),
            Err(LedgerError::BacklinkMismatch {
                seq: 2,
                expected: e1.hash(),
                found: Some(f1.hash()),
            })
        );

        // Right backlink, lamport not above the head's (equal, then lower).
        for lamport in [e1.lamport() - 1, e1.lamport() - 2] {
            let mut late = writer(1);
            late.resume(1, Some(e1.hash()), lamport);
            let entry = late.text(&mut rng, "late");
            assert_eq!(
                check_append(Some(&head), &entry, no_lookup),
                Err(LedgerError::LamportRegression {
                    seq: 2,
                    previous: e1.lamport(),
                    found: lamport + 1,
                })
            );
        }
    }

    #[test]
    fn entries_at_or_below_the_head() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut feed = writer(1);
        let entries: Vec<_> = (0..4).map(|_| feed.text(&mut rng, "m")).collect();
        let stored: HashMap<u64, EntryHash> = entries.iter().map(|e| (e.seq(), e.hash())).collect();
        let lookup = |seq: u64| Ok(stored.get(&seq).copied());
        let head = head_of(&entries[3], 2);

        assert_eq!(
            check_append(Some(&head), &entries[3], lookup),
            Ok(AppendDecision::Duplicate)
        );
        assert_eq!(
            check_append(Some(&head), &entries[1], lookup),
            Ok(AppendDecision::Duplicate)
        );
        assert_eq!(
            check_append(Some(&head), &entries[0], lookup),
            Err(LedgerError::BelowPrunePoint {
                seq: 1,
                first_seq: 2
            })
        );

        let mut fork = writer(1);
        let f1 = fork.text(&mut rng, "x");
        let f2 = fork.text(&mut rng, "y");
        assert_eq!(
            check_append(Some(&head), &f2, lookup),
            Ok(AppendDecision::Equivocation {
                kept: entries[1].hash()
            })
        );
        assert_eq!(
            check_append(Some(&head), &f1, lookup),
            Err(LedgerError::BelowPrunePoint {
                seq: 1,
                first_seq: 2
            })
        );
        // A head without the stored entry behind it is a damaged database.
        assert_eq!(
            check_append(Some(&head), &entries[2], |_| Ok(None)),
            Err(LedgerError::Corrupt { what: "feed entry" })
        );
    }
}
