//! [`ServerState::state_hash`]: BLAKE3 over a canonical byte encoding of
//! everything in the state that matters, so that peers can compare states
//! cheaply and resync when they differ.
//!
//! The encoding is hand-written, not a serializer's, so that it is fixed
//! and another implementation can reproduce it. BLAKE3 runs in key
//! derivation mode with the context `palaver/v1/server-state`, then sees a
//! format version (`u32` 1) and the fields in this order: server id, owner,
//! control log, profile (name, description, visibility), current epoch,
//! channels, members, departures, bans, invites, rotations, key grants,
//! bootstrap peers, moderator redactions. Integers are big-endian; a
//! variable-length field (string, byte string, sequence) starts with its
//! length as a `u64`; an optional field is a `0` byte, or a `1` byte and
//! the value; a set or map is a sequence sorted by key (the order of the
//! `BTreeMap`s it comes from); fixed-size ids are written as they are.
//! Key grants and bootstrap peers are lists and keep their order (fold
//! order; the order of the accepted event). A rotation contributes the
//! BLAKE3 hash of its sealed keys and previous key rather than the keys.
//! The fold's bookkeeping (which records were folded or rejected) is left
//! out: it is diagnostic, not state.

use messaging_proto::{Role, Visibility};

use super::state::{DepartureKind, Rotation, ServerState};

const STATE_HASH_CONTEXT: &str = "palaver/v1/server-state";
const STATE_HASH_VERSION: u32 = 1;
const ROTATION_KEYS_CONTEXT: &str = "palaver/v1/server-state/rotation-keys";

/// Writes the canonical encoding straight into a hasher.
struct Canonical(blake3::Hasher);

impl Canonical {
    fn new(context: &str) -> Self {
        Self(blake3::Hasher::new_derive_key(context))
    }

    fn u8(&mut self, value: u8) {
        self.0.update(&[value]);
    }

    fn u32(&mut self, value: u32) {
        self.0.update(&value.to_be_bytes());
    }

    fn u64(&mut self, value: u64) {
        self.0.update(&value.to_be_bytes());
    }

    fn bool(&mut self, value: bool) {
        self.u8(u8::from(value));
    }

    /// A length (of a field or a sequence).
    fn len(&mut self, len: usize) {
        self.u64(len as u64);
    }

    /// Bytes of a fixed size, known from the field.
    fn fixed(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// Bytes of a variable size.
    fn bytes(&mut self, bytes: &[u8]) {
        self.len(bytes.len());
        self.0.update(bytes);
    }

    fn str(&mut self, text: &str) {
        self.bytes(text.as_bytes());
    }

    fn option<T>(&mut self, value: Option<T>, write: impl FnOnce(&mut Self, T)) {
        match value {
            Some(value) => {
                self.u8(1);
                write(self, value);
            }
            None => self.u8(0),
        }
    }

    fn finish(&self) -> [u8; 32] {
        *self.0.finalize().as_bytes()
    }
}

fn role_code(role: Role) -> u8 {
    match role {
        Role::Member => 0,
        Role::Moderator => 1,
        Role::Admin => 2,
        Role::Owner => 3,
    }
}

fn visibility_code(visibility: Visibility) -> u8 {
    match visibility {
        Visibility::Private => 0,
        Visibility::Public => 1,
    }
}

fn departure_code(kind: DepartureKind) -> u8 {
    match kind {
        DepartureKind::Left => 0,
        DepartureKind::Kicked => 1,
        DepartureKind::Banned => 2,
    }
}

/// BLAKE3 of a rotation's keys: the sealed keys as a sequence, then the
/// previous key.
fn rotation_keys_digest(rotation: &Rotation) -> [u8; 32] {
    let mut out = Canonical::new(ROTATION_KEYS_CONTEXT);
    out.len(rotation.sealed_keys.len());
    for key in &rotation.sealed_keys {
        out.bytes(key);
    }
    out.bytes(&rotation.previous_key);
    out.finish()
}

impl ServerState {
    /// BLAKE3 over a canonical, sorted, map-free byte encoding of everything
    /// that matters (not the [`ServerState::rejected`] diagnostics). Equal
    /// record sets give equal hashes. The layout is in the `hash` module
    /// documentation.
    pub fn state_hash(&self) -> [u8; 32] {
        let mut out = Canonical::new(STATE_HASH_CONTEXT);
        out.u32(STATE_HASH_VERSION);
        out.fixed(self.server.as_bytes());
        out.fixed(self.owner.as_bytes());
        out.fixed(self.control_log.as_bytes());
        out.str(&self.profile.name);
        out.str(&self.profile.description);
        out.u8(visibility_code(self.profile.visibility));
        out.u32(self.current_epoch);

        out.len(self.channels.len());
        for channel in self.channels.values() {
            out.fixed(channel.id.as_bytes());
            out.str(&channel.name);
            out.str(&channel.topic);
            out.fixed(channel.log.as_bytes());
            out.fixed(channel.created_by.as_bytes());
            out.bool(channel.deleted);
        }

        out.len(self.members.len());
        for member in self.members.values() {
            out.fixed(member.user.as_bytes());
            out.str(&member.display_name);
            out.u8(role_code(member.role));
            out.u64(member.joined_at_ms);
            out.option(member.invite, |out, id| out.fixed(id.as_bytes()));
        }

        out.len(self.departures.len());
        for (user, departure) in &self.departures {
            out.fixed(user.as_bytes());
            out.u8(departure_code(departure.kind));
            out.fixed(departure.by.as_bytes());
            out.len(departure.cuts.len());
            for (log, seq) in &departure.cuts {
                out.fixed(log.as_bytes());
                out.u64(*seq);
            }
        }

        out.len(self.bans.len());
        for user in &self.bans {
            out.fixed(user.as_bytes());
        }

        out.len(self.invites.len());
        for invite in self.invites.values() {
            out.fixed(invite.id.as_bytes());
            out.option(invite.issuer, |out, user| out.fixed(user.as_bytes()));
            out.option(invite.expires_at_ms, Canonical::u64);
            out.option(invite.max_uses, Canonical::u32);
            out.u32(invite.uses);
            out.bool(invite.revoked);
        }

        out.len(self.rotations.len());
        for rotation in self.rotations.values() {
            out.u32(rotation.epoch);
            out.fixed(rotation.by.as_bytes());
            out.u32(rotation.part_count);
            out.len(rotation.parts.len());
            for part in &rotation.parts {
                out.u32(*part);
            }
            out.fixed(&rotation_keys_digest(rotation));
        }

        out.len(self.key_grants.len());
        for grant in &self.key_grants {
            out.u32(grant.epoch);
            out.fixed(grant.member.as_bytes());
            out.bytes(&grant.sealed_key);
        }

        out.len(self.bootstrap_peers.len());
        for peer in &self.bootstrap_peers {
            out.fixed(peer.peer.as_bytes());
            out.len(peer.addrs.len());
            for addr in &peer.addrs {
                out.bytes(&addr.to_vec());
            }
        }

        out.len(self.redactions.len());
        for (channel, target) in &self.redactions {
            out.fixed(channel.as_bytes());
            out.fixed(target.as_bytes());
        }

        out.finish()
    }
}
