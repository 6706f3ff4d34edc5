//! Tests of the control fold: one module per concern, sharing [`Scene`], a
//! builder that writes control records the way members would and applies
//! them as it goes.

mod determinism;
mod record;
mod rules;
mod scenario;

use std::collections::BTreeMap;

use bytes::Bytes;
use identity_core::{Identity, UserId};
use messaging_proto::{
    ChannelId, ChannelSpec, ControlEvent, CreateServer, EntryHash, EpochKey, FeedCut, Invite,
    InviteId, InviteIssued, Join, KeyGrant, KeyRotation, LogId, Role, ServerId, SignedInvite,
    Visibility,
};

use super::{ControlRecord, Denied, ServerState};

/// The timestamp of the genesis.
const T0: u64 = 1_700_000_000_000;

/// The identity of test user `n` (the owner is 1).
fn user(n: u8) -> Identity {
    Identity::from_secret_bytes(&[n; 32])
}

fn owner() -> Identity {
    user(1)
}

fn channel_id(n: u8) -> ChannelId {
    ChannelId::from_bytes([n; 16])
}

fn invite_id(n: u8) -> InviteId {
    InviteId::from_bytes([n; 16])
}

/// A control log being written: records get increasing lamport clocks (so
/// creation order is display order), per-author seqs, timestamps one
/// second apart, and distinct hashes. Every record is applied to `state`
/// at once; when the scene is dropped, the state is checked against a
/// fold of all its records.
struct Scene {
    server: ServerId,
    control_log: LogId,
    genesis: ControlRecord,
    general: ChannelId,
    records: Vec<ControlRecord>,
    state: ServerState,
    lamport: u64,
    seqs: BTreeMap<UserId, u64>,
    now_ms: u64,
}

impl Scene {
    fn new(visibility: Visibility) -> Self {
        let owner = owner();
        let general = channel_id(0xaa);
        let genesis = ControlRecord {
            hash: EntryHash::from_bytes(*blake3::hash(b"test genesis").as_bytes()),
            author: owner.user_id(),
            seq: 1,
            lamport: 1,
            timestamp_ms: T0,
            key_epoch: 1,
            event: ControlEvent::CreateServer(CreateServer {
                name: "Test server".into(),
                description: "for tests".into(),
                visibility,
                general_channel_id: general,
                owner_name: String::new(),
            }),
        };
        let server = ServerId::from(genesis.hash);
        let control_log = LogId::from_bytes([0xc0; 32]);
        let state = ServerState::genesis(server, &genesis, control_log).unwrap();
        Self {
            server,
            control_log,
            genesis,
            general,
            records: Vec::new(),
            state,
            lamport: 1,
            seqs: BTreeMap::from([(owner.user_id(), 1)]),
            now_ms: T0,
        }
    }

    fn general_log(&self) -> LogId {
        self.server.channel_log(&self.general)
    }

    /// The next record of `author`, not applied.
    fn record(&mut self, author: &Identity, event: ControlEvent) -> ControlRecord {
        self.lamport += 1;
        self.now_ms += 1_000;
        let seq = self.seqs.entry(author.user_id()).or_insert(0);
        *seq += 1;
        let mut hasher = blake3::Hasher::new();
        hasher.update(author.user_id().as_bytes());
        hasher.update(&self.lamport.to_be_bytes());
        hasher.update(&seq.to_be_bytes());
        ControlRecord {
            hash: EntryHash::from_bytes(*hasher.finalize().as_bytes()),
            author: author.user_id(),
            seq: *seq,
            lamport: self.lamport,
            timestamp_ms: self.now_ms,
            key_epoch: if event.is_key_distribution() {
                0
            } else {
                self.state.current_epoch()
            },
            event,
        }
    }

    /// Writes and applies the next record of `author`.
    fn act(&mut self, author: &Identity, event: ControlEvent) -> Result<(), Denied> {
        let record = self.record(author, event);
        self.push(record)
    }

    /// Applies a record built elsewhere (and keeps it for the final fold).
    fn push(&mut self, record: ControlRecord) -> Result<(), Denied> {
        self.records.push(record.clone());
        self.state.apply(&record)
    }

    #[track_caller]
    fn ok(&mut self, author: &Identity, event: ControlEvent) {
        let kind = event.kind();
        if let Err(denied) = self.act(author, event) {
            panic!("{kind} denied: {denied:?}");
        }
    }

    #[track_caller]
    fn denied(&mut self, author: &Identity, event: ControlEvent) -> Denied {
        let kind = event.kind();
        match self.act(author, event) {
            Ok(()) => panic!("{kind} allowed"),
            Err(denied) => denied,
        }
    }

    /// An invite to this server signed by `inviter`, carrying a key of
    /// `epoch`.
    fn invite(
        &self,
        inviter: &Identity,
        id: u8,
        expires_at_ms: Option<u64>,
        max_uses: Option<u32>,
        epoch: u32,
    ) -> SignedInvite {
        signed_invite(self.server, inviter, id, expires_at_ms, max_uses, epoch)
    }

    /// `who` joins: without an invite on a public server, else with a
    /// fresh owner's invite.
    #[track_caller]
    fn join(&mut self, who: &Identity) {
        let invite = match self.state.profile().visibility {
            Visibility::Public => None,
            Visibility::Private => {
                let id = u8::try_from(self.records.len() % 200).unwrap() + 50;
                Some(self.invite(&owner(), id, None, None, 1))
            }
        };
        self.ok(who, join(invite, "someone"));
    }

    /// `who` joins and the owner gives them `role`.
    #[track_caller]
    fn member_with_role(&mut self, who: &Identity, role: Role) {
        self.join(who);
        if role != Role::Member {
            self.ok(&owner(), grant(who, role));
        }
    }

    fn fold(&self) -> ServerState {
        ServerState::fold(self.server, &self.genesis, self.control_log, &self.records).unwrap()
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        // Applying record by record in display order equals folding them
        // all (only checked when the test has not already failed).
        if !std::thread::panicking() {
            let folded = self.fold();
            assert_eq!(folded, self.state, "apply and fold disagree");
            assert_eq!(folded.state_hash(), self.state.state_hash());
        }
    }
}

fn signed_invite(
    server: ServerId,
    inviter: &Identity,
    id: u8,
    expires_at_ms: Option<u64>,
    max_uses: Option<u32>,
    epoch: u32,
) -> SignedInvite {
    SignedInvite::sign(
        inviter,
        Invite {
            server_id: server,
            server_name: "Test server".into(),
            bootstrap: Vec::new(),
            key: EpochKey::from_bytes(epoch, [7; 32]),
            inviter: inviter.user_id(),
            expires_at_ms,
            max_uses,
            invite_id: invite_id(id),
            issued_at_ms: T0,
        },
    )
    .unwrap()
}

fn join(invite: Option<SignedInvite>, display_name: &str) -> ControlEvent {
    ControlEvent::Join(Box::new(Join {
        invite,
        display_name: display_name.into(),
    }))
}

fn issue(id: u8, expires_at_ms: Option<u64>, max_uses: Option<u32>) -> ControlEvent {
    ControlEvent::InviteIssued(InviteIssued {
        invite_id: invite_id(id),
        expires_at_ms,
        max_uses,
    })
}

fn revoke_invite(id: u8) -> ControlEvent {
    ControlEvent::InviteRevoked {
        invite_id: invite_id(id),
    }
}

fn grant(who: &Identity, role: Role) -> ControlEvent {
    ControlEvent::GrantRole {
        member: who.user_id(),
        role,
    }
}

fn revoke(who: &Identity, role: Role) -> ControlEvent {
    ControlEvent::RevokeRole {
        member: who.user_id(),
        role,
    }
}

fn cut(log: LogId, seq: u64) -> FeedCut {
    FeedCut { log, seq }
}

fn kick(who: &Identity, cuts: Vec<FeedCut>) -> ControlEvent {
    ControlEvent::Kick {
        member: who.user_id(),
        reason: String::new(),
        cut: cuts,
    }
}

fn ban(who: &Identity, cuts: Vec<FeedCut>) -> ControlEvent {
    ControlEvent::Ban {
        member: who.user_id(),
        reason: "spam".into(),
        cut: cuts,
    }
}

fn unban(who: &Identity) -> ControlEvent {
    ControlEvent::Unban {
        member: who.user_id(),
    }
}

fn leave(cuts: Vec<FeedCut>) -> ControlEvent {
    ControlEvent::Leave { cut: cuts }
}

fn spec(id: u8, name: &str) -> ChannelSpec {
    ChannelSpec {
        channel_id: channel_id(id),
        name: name.into(),
        topic: format!("about {name}"),
    }
}

fn create_channel(id: u8, name: &str) -> ControlEvent {
    ControlEvent::CreateChannel(spec(id, name))
}

fn rename_channel(id: u8, name: &str) -> ControlEvent {
    ControlEvent::RenameChannel(spec(id, name))
}

fn delete_channel(id: u8) -> ControlEvent {
    ControlEvent::DeleteChannel {
        channel_id: channel_id(id),
    }
}

fn rotation(new_epoch: u32, part: u32, part_count: u32, key_byte: u8) -> ControlEvent {
    ControlEvent::KeyRotation(KeyRotation {
        new_epoch,
        sealed_keys: vec![
            Bytes::from(vec![key_byte; 80]),
            Bytes::from(vec![key_byte ^ 1; 80]),
        ],
        previous_key: Bytes::from(vec![new_epoch as u8; messaging_proto::WRAPPED_KEY_LEN]),
        part,
        part_count,
    })
}

fn key_grant(epoch: u32, who: &Identity) -> ControlEvent {
    ControlEvent::KeyGrant(KeyGrant {
        epoch,
        member: who.user_id(),
        sealed_key: Bytes::from_static(&[9; 80]),
    })
}
