//! The control state of a server: a deterministic fold of its control log.
//!
//! A server's state — profile, channels, members and roles, departures and
//! their feed cuts, bans, invites, key epochs and rotations, key grants,
//! bootstrap peers, moderator redactions — is never sent; every member
//! computes it from the same control records. [`ServerState::fold`] starts
//! from the genesis (`CreateServer`, whose hash is the server id), sorts the
//! other [`ControlRecord`]s by display order `(lamport, author, seq)` with
//! the entry hash as the last tie-break, drops duplicates, and passes each
//! record to the one permission function [`ServerState::authorize`]: allowed
//! records change the state, denied ones are listed in
//! [`ServerState::rejected`] with their [`Denied`] rule. Because the order
//! is total and the code is pure (no clock, no randomness, no hash maps;
//! time comes from the records), any set of records folds to the same state
//! on every peer, whatever order it arrived in, and
//! [`ServerState::state_hash`] — BLAKE3 over a canonical encoding — lets
//! peers compare states cheaply. A record that sorts after everything
//! folded so far can be added with [`ServerState::apply`]; one that sorts
//! earlier needs a refold.
//!
//! The modules: `record` (the input), `state` (the state and the fold),
//! `authorize` (the rules), `transition` (what allowed events do), `hash`
//! (the canonical encoding) and `denied` (the errors).

mod authorize;
mod denied;
mod hash;
mod record;
mod state;
mod transition;

#[cfg(test)]
mod tests;

pub use denied::{Denied, FoldError};
pub use record::{ControlRecord, OrderKey};
pub use state::{
    Channel, Departure, DepartureKind, GENERAL_CHANNEL_NAME, GENESIS_EPOCH, InviteState, Member,
    OWNER_DISPLAY_NAME, Rotation, ServerState,
};
