//! [`ServerState`]: the folded state of one server, the types it is made
//! of, and the fold itself ([`ServerState::genesis`], [`ServerState::apply`],
//! [`ServerState::fold`]).
//!
//! The fold starts from the genesis, then takes every other record in
//! display order, with the entry hash as the last tie-break. Each record is
//! first put to [`ServerState::authorize`]; an allowed record changes the
//! state, a denied one is only listed in [`ServerState::rejected`]. Both
//! count as folded: a record that sorts before the last folded one cannot
//! be applied incrementally (it could change whether that one was
//! allowed), so [`ServerState::apply`] refuses it and the caller refolds.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use identity_core::UserId;
use messaging_proto::{
    BootstrapPeer, ChannelId, ControlEvent, EntryHash, FeedCut, InviteId, KeyGrant, LogId, Role,
    ServerId, ServerProfile,
};

use super::denied::{Denied, FoldError};
use super::record::{ControlRecord, OrderKey};

/// The display name of the genesis owner, who never wrote a `Join`.
pub const OWNER_DISPLAY_NAME: &str = "owner";
/// The name of the channel every server starts with.
pub const GENERAL_CHANNEL_NAME: &str = "general";
/// The epoch of the genesis key.
pub const GENESIS_EPOCH: u32 = 1;

/// A member of the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Who.
    pub user: UserId,
    /// The name they joined with (`"owner"` for the genesis owner).
    pub display_name: String,
    /// Their one role.
    pub role: Role,
    /// The timestamp of their join (of the genesis for the owner).
    pub joined_at_ms: u64,
    /// The invite they joined with, if any.
    pub invite: Option<InviteId>,
}

/// A channel of the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    /// Its id.
    pub id: ChannelId,
    /// Its name (unique among live channels, ignoring case).
    pub name: String,
    /// Its topic.
    pub topic: String,
    /// Its log: `server.channel_log(id)`.
    pub log: LogId,
    /// Who created it.
    pub created_by: UserId,
    /// True once deleted; a deleted channel's id is never reused.
    pub deleted: bool,
}

/// What the fold knows about an invite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteState {
    /// Its id.
    pub id: InviteId,
    /// Who issued it; `None` for an invite revoked before anyone used or
    /// announced it.
    pub issuer: Option<UserId>,
    /// When it expires, if ever.
    pub expires_at_ms: Option<u64>,
    /// How many joins it admits, if limited.
    pub max_uses: Option<u32>,
    /// How many joins redeemed it.
    pub uses: u32,
    /// True once revoked.
    pub revoked: bool,
}

/// How a member departed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DepartureKind {
    /// They left.
    Left,
    /// A moderator removed them.
    Kicked,
    /// An admin banned them.
    Banned,
}

/// A former member and where their feeds were cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Departure {
    /// How they departed.
    pub kind: DepartureKind,
    /// Who removed them (themselves for a leave).
    pub by: UserId,
    /// The last accepted seq of theirs per log (the highest if a log is
    /// named twice).
    pub cuts: BTreeMap<LogId, u64>,
}

/// One key rotation: the move to `epoch`, possibly in several parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// The epoch it starts (≥ 2).
    pub epoch: u32,
    /// Who rotated; only they may add parts.
    pub by: UserId,
    /// The new key sealed to each member, every part so far, in fold order.
    pub sealed_keys: Vec<Bytes>,
    /// The previous epoch's key wrapped under the new one (from the first
    /// part folded).
    pub previous_key: Bytes,
    /// The parts seen.
    pub parts: BTreeSet<u32>,
    /// How many parts the rotation has.
    pub part_count: u32,
}

impl Rotation {
    /// True when every part has been folded.
    pub fn complete(&self) -> bool {
        self.parts.len() == self.part_count as usize
    }
}

/// The state of a server: a deterministic fold of its control log.
///
/// Every field is a `BTreeMap`, `BTreeSet` or `Vec`, so iteration order —
/// and therefore [`ServerState::state_hash`] — depends only on the content.
/// Every collection grows by at most one element (or one event's bounded
/// contents) per folded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerState {
    pub(super) server: ServerId,
    pub(super) owner: UserId,
    pub(super) control_log: LogId,
    pub(super) profile: ServerProfile,
    pub(super) channels: BTreeMap<ChannelId, Channel>,
    /// Lowercased names of the live channels (an index of `channels`).
    pub(super) live_names: BTreeMap<String, ChannelId>,
    /// Channel logs, deleted channels included (an index of `channels`).
    pub(super) channel_logs: BTreeMap<LogId, ChannelId>,
    pub(super) members: BTreeMap<UserId, Member>,
    pub(super) departures: BTreeMap<UserId, Departure>,
    pub(super) bans: BTreeSet<UserId>,
    pub(super) invites: BTreeMap<InviteId, InviteState>,
    pub(super) current_epoch: u32,
    pub(super) rotations: BTreeMap<u32, Rotation>,
    pub(super) key_grants: Vec<KeyGrant>,
    pub(super) bootstrap_peers: Vec<BootstrapPeer>,
    pub(super) redactions: BTreeSet<(ChannelId, EntryHash)>,
    /// Every folded record (the genesis included) and, if it was denied,
    /// its index in `rejected`.
    pub(super) folded: BTreeMap<EntryHash, Option<usize>>,
    pub(super) rejected: Vec<(EntryHash, Denied)>,
    /// The fold position of the last record folded after the genesis.
    pub(super) position: Option<(OrderKey, EntryHash)>,
}

/// The key under which a live channel's name is unique: its lowercase form
/// (Unicode `to_lowercase`).
pub(super) fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// The cuts of a departure, keeping the highest seq of a log named twice.
pub(super) fn cut_map(cuts: &[FeedCut]) -> BTreeMap<LogId, u64> {
    let mut map = BTreeMap::new();
    for cut in cuts {
        map.entry(cut.log)
            .and_modify(|seq: &mut u64| *seq = (*seq).max(cut.seq))
            .or_insert(cut.seq);
    }
    map
}

impl ServerState {
    /// Starts a state from the genesis alone.
    ///
    /// The genesis must be a `CreateServer` whose hash is `server`. Its
    /// author becomes the owner (role `Owner`, display name `"owner"`),
    /// the server gets the channel `"general"` with the event's
    /// `general_channel_id`, the profile of the event, and epoch 1.
    /// `control_log` is the genesis entry's log id.
    pub fn genesis(
        server: ServerId,
        genesis: &ControlRecord,
        control_log: LogId,
    ) -> Result<Self, FoldError> {
        let ControlEvent::CreateServer(create) = &genesis.event else {
            return Err(FoldError::NotAGenesis {
                kind: genesis.event.kind(),
            });
        };
        if ServerId::from(genesis.hash) != server {
            return Err(FoldError::GenesisMismatch);
        }
        let owner = genesis.author;
        let general = Channel {
            id: create.general_channel_id,
            name: GENERAL_CHANNEL_NAME.to_owned(),
            topic: String::new(),
            log: server.channel_log(&create.general_channel_id),
            created_by: owner,
            deleted: false,
        };
        let member = Member {
            user: owner,
            display_name: if create.owner_name.is_empty() {
                OWNER_DISPLAY_NAME.to_owned()
            } else {
                create.owner_name.clone()
            },
            role: Role::Owner,
            joined_at_ms: genesis.timestamp_ms,
            invite: None,
        };
        Ok(Self {
            server,
            owner,
            control_log,
            profile: ServerProfile {
                name: create.name.clone(),
                description: create.description.clone(),
                visibility: create.visibility,
            },
            live_names: BTreeMap::from([(name_key(&general.name), general.id)]),
            channel_logs: BTreeMap::from([(general.log, general.id)]),
            channels: BTreeMap::from([(general.id, general)]),
            members: BTreeMap::from([(owner, member)]),
            departures: BTreeMap::new(),
            bans: BTreeSet::new(),
            invites: BTreeMap::new(),
            current_epoch: GENESIS_EPOCH,
            rotations: BTreeMap::new(),
            key_grants: Vec::new(),
            bootstrap_peers: Vec::new(),
            redactions: BTreeSet::new(),
            folded: BTreeMap::from([(genesis.hash, None)]),
            rejected: Vec::new(),
            position: None,
        })
    }

    /// Folds a server's control log: `genesis` first (it must be a
    /// `CreateServer` whose `hash` equals `server`, else [`FoldError`]),
    /// then every other record in display order (ties broken by hash);
    /// records that [`ServerState::authorize`] denies are skipped and listed
    /// in [`ServerState::rejected`]. Duplicate records (same hash, the
    /// genesis included) count once. The result is independent of the order
    /// of `records`.
    pub fn fold(
        server: ServerId,
        genesis: &ControlRecord,
        control_log: LogId,
        records: &[ControlRecord],
    ) -> Result<Self, FoldError> {
        let mut state = Self::genesis(server, genesis, control_log)?;
        let mut sorted: Vec<&ControlRecord> = records.iter().collect();
        sorted.sort_by_cached_key(|record| record.fold_position());
        for record in sorted {
            // A denial is recorded in `rejected`; sorted input is never
            // out of order, so nothing else can be returned here.
            let _outcome = state.apply(record);
        }
        Ok(state)
    }

    /// Authorizes `record` ([`ServerState::authorize`]), then applies it.
    ///
    /// Use it when the record sorts after every folded record
    /// ([`ServerState::last_applied`]); otherwise it returns
    /// [`Denied::OutOfOrder`] and changes nothing, and the caller refolds.
    /// A denied record is listed in [`ServerState::rejected`] and counts as
    /// folded (it holds its place in the order). A record folded before
    /// (same hash) changes nothing and gets its earlier answer again.
    pub fn apply(&mut self, record: &ControlRecord) -> Result<(), Denied> {
        if let Some(outcome) = self.folded.get(&record.hash) {
            return match outcome.and_then(|index| self.rejected.get(index)) {
                Some((_, denied)) => Err(denied.clone()),
                None => Ok(()),
            };
        }
        let position = record.fold_position();
        if self.position.as_ref().is_some_and(|last| position < *last) {
            return Err(Denied::OutOfOrder);
        }
        self.position = Some(position);
        match self.authorize(record) {
            Ok(()) => {
                self.transition(record);
                self.folded.insert(record.hash, None);
                Ok(())
            }
            Err(denied) => {
                self.folded.insert(record.hash, Some(self.rejected.len()));
                self.rejected.push((record.hash, denied.clone()));
                Err(denied)
            }
        }
    }

    /// The server's id (the genesis hash).
    pub fn server_id(&self) -> ServerId {
        self.server
    }

    /// The genesis author. Their `Owner` role can never be revoked.
    pub fn owner(&self) -> UserId {
        self.owner
    }

    /// The control log's id (the genesis entry's log id).
    pub fn control_log(&self) -> LogId {
        self.control_log
    }

    /// Name, description and visibility.
    pub fn profile(&self) -> &ServerProfile {
        &self.profile
    }

    /// The live (not deleted) channels, sorted by lowercase name.
    pub fn channels(&self) -> impl Iterator<Item = &Channel> {
        self.live_names
            .values()
            .filter_map(|id| self.channels.get(id))
    }

    /// Every channel ever created, deleted ones included, sorted by id.
    pub fn all_channels(&self) -> impl Iterator<Item = &Channel> {
        self.channels.values()
    }

    /// A channel by id, deleted ones included (see [`Channel::deleted`]).
    pub fn channel(&self, id: &ChannelId) -> Option<&Channel> {
        self.channels.get(id)
    }

    /// A channel by its log id, deleted ones included.
    pub fn channel_by_log(&self, log: &LogId) -> Option<&Channel> {
        self.channel_logs
            .get(log)
            .and_then(|id| self.channels.get(id))
    }

    /// A live channel by name, ignoring case.
    pub fn channel_by_name(&self, name: &str) -> Option<&Channel> {
        self.live_names
            .get(&name_key(name))
            .and_then(|id| self.channels.get(id))
    }

    /// The members, sorted by user id.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// A member.
    pub fn member(&self, user: &UserId) -> Option<&Member> {
        self.members.get(user)
    }

    /// A member's role; `None` for a non-member.
    pub fn role_of(&self, user: &UserId) -> Option<Role> {
        self.members.get(user).map(|member| member.role)
    }

    /// True if `user` is a member now.
    pub fn is_member(&self, user: &UserId) -> bool {
        self.members.contains_key(user)
    }

    /// True if `user` is banned (member or not).
    pub fn is_banned(&self, user: &UserId) -> bool {
        self.bans.contains(user)
    }

    /// The banned users, sorted.
    pub fn banned(&self) -> impl Iterator<Item = &UserId> {
        self.bans.iter()
    }

    /// How `user` departed, if they are a former member who has not joined
    /// again.
    pub fn departure(&self, user: &UserId) -> Option<&Departure> {
        self.departures.get(user)
    }

    /// The former members and their departures, sorted by user id.
    pub fn departures(&self) -> impl Iterator<Item = (&UserId, &Departure)> {
        self.departures.iter()
    }

    /// May `author`'s entry `seq` in `log` be accepted?
    ///
    /// Only if `log` is the log of a live (not deleted) channel of this
    /// server, and either the author is a member now, or the author
    /// departed and `seq` is at most their cut for that log (history
    /// written before the removal). Always false for the control log, whose
    /// entries go through [`ServerState::authorize`].
    pub fn may_post(&self, author: &UserId, log: &LogId, seq: u64) -> bool {
        let live = self
            .channel_by_log(log)
            .is_some_and(|channel| !channel.deleted);
        if !live {
            return false;
        }
        if self.is_member(author) {
            return true;
        }
        self.departures
            .get(author)
            .and_then(|departure| departure.cuts.get(log))
            .is_some_and(|cut| seq <= *cut)
    }

    /// What the fold knows about an invite.
    pub fn invite(&self, id: &InviteId) -> Option<&InviteState> {
        self.invites.get(id)
    }

    /// Every known invite, sorted by id.
    pub fn invites(&self) -> impl Iterator<Item = &InviteState> {
        self.invites.values()
    }

    /// The current key epoch (1 until the first rotation).
    pub fn current_epoch(&self) -> u32 {
        self.current_epoch
    }

    /// The rotation that started `epoch` (epochs ≥ 2).
    pub fn rotation(&self, epoch: u32) -> Option<&Rotation> {
        self.rotations.get(&epoch)
    }

    /// The accepted key grants, in fold order.
    pub fn key_grants(&self) -> &[KeyGrant] {
        &self.key_grants
    }

    /// The server's bootstrap peers (the last accepted list).
    pub fn bootstrap_peers(&self) -> &[BootstrapPeer] {
        &self.bootstrap_peers
    }

    /// True if a moderator redacted `target` in `channel`.
    pub fn is_moderator_redacted(&self, channel: &ChannelId, target: &EntryHash) -> bool {
        self.redactions.contains(&(*channel, *target))
    }

    /// The denied records and why, in fold order (at most one per record).
    pub fn rejected(&self) -> &[(EntryHash, Denied)] {
        &self.rejected
    }

    /// True if a record with this hash was folded (allowed or denied).
    pub fn has_folded(&self, hash: &EntryHash) -> bool {
        self.folded.contains_key(hash)
    }

    /// The order key of the last record folded after the genesis (allowed
    /// or denied); `None` when only the genesis was folded. A record may be
    /// [applied](ServerState::apply) incrementally only if it sorts after
    /// this.
    pub fn last_applied(&self) -> Option<OrderKey> {
        self.position.map(|(key, _)| key)
    }
}
