//! Servers: creating them, loading them at start, the control events
//! members write (channels, invites, roles, kicks and bans with key
//! rotation, bootstrap peers), the reactions to control events others write
//! (new keys, key grants, names), and public adverts.

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use identity_core::UserId;
use messaging_proto::{
    Body, BootstrapPeer, ChannelId, ChannelSpec, ControlEvent, CreateServer, EntryHash, EpochKey,
    FeedCut, InviteId, InviteIssued, KeyGrant, KeyRotation, LogId, Payload, Role, Sealing,
    ServerAdvert, ServerId, SignedAdvert, SignedInvite, SpaceId, TxnId, VerifiedEntry, Visibility,
    epoch_key_aad,
};
use net_overlay::{Multiaddr, PeerId};
use storage_ledger::{LedgerStore, TimelinePosition};

use super::{LocalRole, NodeCore, ServerRecord, ServerRuntime, peer_of};
use crate::api::{ErrorCategory, Event, InviteView, NodeError, Response};
use crate::control::{ControlRecord, Denied, OrderKey, ServerState};
use crate::invite_code;
use crate::local_store::ns;

/// Most sealed keys per key rotation part.
const SEALED_KEYS_PER_PART: usize = 256;

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut bytes);
    bytes
}

impl NodeCore {
    pub(crate) async fn create_server(
        &mut self,
        name: String,
        description: String,
        public: bool,
    ) -> Result<Response, NodeError> {
        let key = EpochKey::generate(&mut rand::rng(), 1);
        let control_log = LogId::from_bytes(random_bytes());
        let general = ChannelId::from_bytes(random_bytes());
        let payload = Payload {
            client_txn_id: TxnId::default(),
            body: Body::Control(ControlEvent::CreateServer(CreateServer {
                name,
                description,
                visibility: if public {
                    Visibility::Public
                } else {
                    Visibility::Private
                },
                general_channel_id: general,
                owner_name: self.display_name.clone(),
            })),
        };
        payload.to_bytes()?;
        let (genesis, durable) =
            self.author(None, control_log, &payload, Sealing::Encrypt(&key))?;
        let server = genesis
            .genesis_of()
            .ok_or_else(|| NodeError::internal("the genesis has a space"))?;
        self.keys.add(SpaceId::from(server), key, true).await?;
        let record = ControlRecord::from_entry(&genesis, &payload)
            .ok_or_else(|| NodeError::internal("genesis without control event"))?;
        let state = ServerState::genesis(server, &record, control_log)?;
        self.servers.insert(
            server,
            ServerRuntime::member(server, genesis.clone(), record, state),
        );
        durable.await?;
        self.save_server_record(&server, &ServerRecord::member(self.now_ms(), false))
            .await?;
        self.connect_server(server).await;
        self.add_to_outbox(&genesis, None).await;
        if public {
            self.publish_advert(server).await;
        }
        self.emit(Event::ServersChanged);
        self.server_detail(&server).map(Response::Server)
    }

    /// Loads a server from the ledger at start: the genesis, the control
    /// log (decrypted and folded) for members.
    pub(crate) async fn load_server(
        &mut self,
        server: ServerId,
        role: LocalRole,
    ) -> Result<(), NodeError> {
        let genesis_bytes = self
            .ledger
            .get_by_hash(&EntryHash::from_bytes(*server.as_bytes()))?;
        let Some(genesis_bytes) = genesis_bytes else {
            self.servers
                .insert(server, ServerRuntime::placeholder(server));
            return Ok(());
        };
        let genesis = VerifiedEntry::decode_stored(genesis_bytes)?;
        let control_log = genesis.log_id();
        let mut runtime = ServerRuntime::placeholder(server);
        runtime.genesis = Some(genesis.clone());
        runtime.control_log = Some(control_log);
        runtime.role = role;
        if role == LocalRole::Member {
            let payload = self.keys.open(&genesis).map_err(|_| {
                NodeError::new(
                    ErrorCategory::Crypto,
                    "node.no_key",
                    "cannot open the genesis",
                )
            })?;
            let record = ControlRecord::from_entry(&genesis, &payload)
                .ok_or_else(|| NodeError::internal("genesis without control event"))?;
            runtime.records = self.stored_control_records(server, control_log)?;
            let records: Vec<ControlRecord> = runtime.records.values().cloned().collect();
            runtime.state = Some(ServerState::fold(server, &record, control_log, &records)?);
            runtime.genesis_record = Some(record);
        }
        let space = SpaceId::from(server);
        let bytes: u64 = self
            .ledger
            .logs_in_space(&space)?
            .iter()
            .filter_map(|log| self.ledger.log_stats(log).ok())
            .map(|stats| stats.bytes)
            .sum();
        self.space_bytes.insert(space, bytes);
        self.servers.insert(server, runtime);
        if role == LocalRole::Member && self.rotation_owed(&server) {
            self.deferred_rotations.insert(server);
        }
        Ok(())
    }

    /// The control records of a server the ledger holds (the genesis
    /// apart), decrypted with the keys we hold.
    fn stored_control_records(
        &self,
        server: ServerId,
        control_log: LogId,
    ) -> Result<BTreeMap<OrderKey, ControlRecord>, NodeError> {
        let mut records = BTreeMap::new();
        let mut cursor: Option<TimelinePosition> = None;
        loop {
            let page = self
                .ledger
                .timeline_after(&control_log, cursor.as_ref(), 1024)?;
            for item in &page.items {
                cursor = Some(item.position);
                if item.hash == EntryHash::from_bytes(*server.as_bytes()) {
                    continue;
                }
                let Ok(entry) = VerifiedEntry::decode_stored(item.entry.clone()) else {
                    continue;
                };
                if let Ok(payload) = self.keys.open(&entry)
                    && let Some(record) = ControlRecord::from_entry(&entry, &payload)
                {
                    records.insert(record.order_key(), record);
                }
            }
            if !page.more || page.items.is_empty() {
                break;
            }
        }
        Ok(records)
    }

    /// After the ledger was reopened (a storage failure), folds every
    /// server's state again from what the ledger holds: a control event of
    /// ours whose write failed was applied in memory but may be gone from
    /// the ledger, and must not stay in force here alone.
    pub(crate) fn refold_after_reopen(&mut self) {
        let reopens = self.ledger.reopens();
        if reopens == self.ledger_reopens {
            return;
        }
        self.ledger_reopens = reopens;
        let servers: Vec<(ServerId, LogId)> = self
            .servers
            .iter()
            .filter(|(_, runtime)| runtime.state.is_some())
            .filter_map(|(server, runtime)| Some((*server, runtime.control_log?)))
            .collect();
        for (server, control_log) in servers {
            let records = match self.stored_control_records(server, control_log) {
                Ok(records) => records,
                Err(err) => {
                    tracing::warn!(%server, code = err.code, "cannot read the control log after the ledger was reopened");
                    continue;
                }
            };
            let changed = self.servers.get_mut(&server).is_some_and(|runtime| {
                let changed = runtime.records.len() != records.len()
                    || runtime.records.keys().ne(records.keys());
                runtime.records = records;
                changed
            });
            if changed {
                tracing::warn!(%server, "server state folded again from the reopened ledger");
                self.refold(&server);
                self.emit(Event::ServerUpdated {
                    server_id: server.to_hex(),
                });
            }
        }
    }

    /// Joins a server's topic and keeps its bootstrap peers connected.
    pub(crate) async fn connect_server(&mut self, server: ServerId) {
        if let Err(err) = self.overlay.subscribe(server).await {
            tracing::warn!(%server, %err, "cannot subscribe to the server's topic");
        }
        let peers: Vec<BootstrapPeer> = self
            .servers
            .get(&server)
            .and_then(|runtime| runtime.state.as_ref())
            .map(|state| state.bootstrap_peers().to_vec())
            .unwrap_or_default();
        for peer in peers {
            if peer.peer != self.me {
                let _ = self
                    .overlay
                    .add_peer(Some(server), peer_of(&peer.peer), peer.addrs.clone(), true)
                    .await;
            }
        }
        let _ = self.overlay.dial_server_peers(server).await;
    }

    /// The peers that replicate a server: its bootstrap peers.
    pub(crate) fn replica_peers(&self, server: &ServerId) -> Vec<PeerId> {
        self.servers
            .get(server)
            .and_then(|runtime| runtime.state.as_ref())
            .map(|state| {
                state
                    .bootstrap_peers()
                    .iter()
                    .filter(|peer| peer.peer != self.me)
                    .map(|peer| peer_of(&peer.peer))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Writes a control event of ours: checks it with `authorize`, seals it
    /// (unencrypted for key distribution), applies it, waits until durable,
    /// and delivers it.
    pub(crate) async fn author_control(
        &mut self,
        server: ServerId,
        event: ControlEvent,
    ) -> Result<VerifiedEntry, NodeError> {
        let control_log = self
            .servers
            .get(&server)
            .and_then(|runtime| runtime.control_log)
            .ok_or_else(|| NodeError::not_found("node.unknown_server", "no such server"))?;
        let state = self.member_state(&server)?;
        let head = self.ledger.head(&control_log, &self.me)?;
        let probe = ControlRecord {
            hash: EntryHash::from_bytes([0; 32]),
            author: self.me,
            seq: head.map_or(1, |head| head.seq + 1),
            lamport: self.ledger.max_lamport(&control_log)? + 1,
            timestamp_ms: self.now_ms(),
            key_epoch: state.current_epoch(),
            event: event.clone(),
        };
        state.authorize(&probe)?;
        let payload = Payload {
            client_txn_id: TxnId::random(&mut rand::rng()),
            body: Body::Control(event),
        };
        let (entry, durable) = self.author_in_server(&server, control_log, &payload)?;
        let record = ControlRecord::from_entry(&entry, &payload)
            .ok_or_else(|| NodeError::internal("control payload without control event"))?;
        self.apply_control(server, record).await;
        durable.await?;
        self.add_to_outbox(&entry, None).await;
        self.deliver(&entry, None).await;
        Ok(entry)
    }

    pub(crate) async fn create_channel(
        &mut self,
        server: &str,
        name: String,
        topic: String,
    ) -> Result<Response, NodeError> {
        let server = self.resolve_server(server)?;
        let channel_id = ChannelId::from_bytes(random_bytes());
        self.author_control(
            server,
            ControlEvent::CreateChannel(ChannelSpec {
                channel_id,
                name,
                topic,
            }),
        )
        .await?;
        let state = self.member_state(&server)?;
        let channel = state
            .channel(&channel_id)
            .ok_or_else(|| NodeError::internal("the new channel is missing"))?;
        Ok(Response::Channel(crate::api::ChannelView {
            channel_id: channel_id.to_hex(),
            name: channel.name.clone(),
            topic: channel.topic.clone(),
            unread: 0,
        }))
    }

    pub(crate) async fn rename_channel(
        &mut self,
        server: &str,
        channel: &str,
        name: String,
        topic: Option<String>,
    ) -> Result<Response, NodeError> {
        let server = self.resolve_server(server)?;
        let (channel_id, _) = self.resolve_channel(&server, channel)?;
        let topic = match topic {
            Some(topic) => topic,
            None => self
                .member_state(&server)?
                .channel(&channel_id)
                .map(|channel| channel.topic.clone())
                .unwrap_or_default(),
        };
        self.author_control(
            server,
            ControlEvent::RenameChannel(ChannelSpec {
                channel_id,
                name,
                topic,
            }),
        )
        .await?;
        Ok(Response::Ok)
    }

    pub(crate) async fn delete_channel(
        &mut self,
        server: &str,
        channel: &str,
    ) -> Result<Response, NodeError> {
        let server = self.resolve_server(server)?;
        let (channel_id, _) = self.resolve_channel(&server, channel)?;
        self.author_control(server, ControlEvent::DeleteChannel { channel_id })
            .await?;
        Ok(Response::Ok)
    }

    pub(crate) async fn update_server(
        &mut self,
        server: &str,
        name: String,
        description: String,
        public: bool,
    ) -> Result<Response, NodeError> {
        let server = self.resolve_server(server)?;
        let visibility = if public {
            Visibility::Public
        } else {
            Visibility::Private
        };
        self.author_control(
            server,
            ControlEvent::UpdateServerProfile(messaging_proto::ServerProfile {
                name,
                description,
                visibility,
            }),
        )
        .await?;
        if public {
            self.publish_advert(server).await;
        } else if self.directory.remove(&server).is_some() {
            let adverts = self.directory.values().cloned().collect();
            let _ = self.overlay.set_directory(adverts).await;
        }
        self.server_detail(&server).map(Response::Server)
    }

    pub(crate) async fn set_bootstrap_peers(
        &mut self,
        server: &str,
        peers: Vec<String>,
    ) -> Result<Response, NodeError> {
        let server = self.resolve_server(server)?;
        let mut list: Vec<BootstrapPeer> = Vec::new();
        for text in peers {
            let addr: Multiaddr = text.parse().map_err(|_| {
                NodeError::invalid(
                    "node.invalid_address",
                    format!("{text:?} is not a multiaddr"),
                )
            })?;
            let peer = crate::net::peer_of_addr(&addr).ok_or_else(|| {
                NodeError::invalid(
                    "node.address_without_peer",
                    format!("{text:?} must end in /p2p/<peer id>"),
                )
            })?;
            let user = UserId::from_peer_id(&peer)
                .map_err(|_| NodeError::invalid("node.invalid_peer", "not a Palaver peer id"))?;
            let bare: Multiaddr = addr
                .iter()
                .filter(|protocol| !matches!(protocol, net_overlay::Protocol::P2p(_)))
                .collect();
            match list.iter_mut().find(|known| known.peer == user) {
                Some(known) => known.addrs.push(bare),
                None => list.push(BootstrapPeer {
                    peer: user,
                    addrs: vec![bare],
                }),
            }
        }
        self.author_control(server, ControlEvent::SetBootstrapPeers(list))
            .await?;
        self.connect_server(server).await;
        // A public server's advert names its bootstrap peers.
        self.publish_advert(server).await;
        Ok(Response::Ok)
    }

    /// Our own dialable addresses (with `/p2p/<us>`), to put in invites
    /// when a server has no bootstrap peers.
    async fn own_addresses(&self) -> Vec<Multiaddr> {
        let Ok(status) = self.overlay.status().await else {
            return Vec::new();
        };
        status
            .external_addrs
            .iter()
            .chain(status.listen_addrs.iter())
            .filter(|addr| crate::net::is_dialable(addr))
            .take(messaging_proto::limits::MAX_ADDRS_PER_PEER)
            .cloned()
            .collect()
    }

    pub(crate) async fn create_invite(
        &mut self,
        server: &str,
        expires_in_ms: Option<u64>,
        max_uses: Option<u32>,
    ) -> Result<Response, NodeError> {
        let server = self.resolve_server(server)?;
        let state = self.member_state(&server)?;
        let epoch = state.current_epoch();
        let name = state.profile().name.clone();
        let mut bootstrap: Vec<BootstrapPeer> = state
            .bootstrap_peers()
            .iter()
            .take(messaging_proto::limits::MAX_INVITE_BOOTSTRAP_PEERS)
            .cloned()
            .collect();
        // A server without bootstrap peers: the inviter is the way in.
        if bootstrap.is_empty() {
            let addrs = self.own_addresses().await;
            if !addrs.is_empty() {
                bootstrap.push(BootstrapPeer {
                    peer: self.me,
                    addrs,
                });
            }
        }
        let key = self
            .keys
            .get(&SpaceId::from(server), epoch)
            .first()
            .cloned()
            .ok_or_else(|| {
                NodeError::new(
                    ErrorCategory::Crypto,
                    "node.no_key",
                    "we do not hold the current key",
                )
            })?;
        let now = self.now_ms();
        let invite_id = InviteId::from_bytes(random_bytes());
        let expires_at_ms = expires_in_ms.map(|ms| now.saturating_add(ms));
        let signed = SignedInvite::sign(
            &self.identity,
            messaging_proto::Invite {
                server_id: server,
                server_name: name,
                bootstrap,
                key,
                inviter: self.me,
                expires_at_ms,
                max_uses,
                invite_id,
                issued_at_ms: now,
            },
        )?;
        self.author_control(
            server,
            ControlEvent::InviteIssued(InviteIssued {
                invite_id,
                expires_at_ms,
                max_uses,
            }),
        )
        .await?;
        Ok(Response::Invite(InviteView {
            invite: invite_code::encode(&signed),
            invite_id: invite_id.to_hex(),
            expires_at_ms,
            max_uses,
        }))
    }

    pub(crate) async fn revoke_invite(
        &mut self,
        server: &str,
        invite_id: &str,
    ) -> Result<Response, NodeError> {
        let server = self.resolve_server(server)?;
        let invite_id: InviteId = invite_id.parse().map_err(|_| {
            NodeError::invalid("node.invalid_invite_id", "an invite id is 32 hex digits")
        })?;
        self.author_control(server, ControlEvent::InviteRevoked { invite_id })
            .await?;
        Ok(Response::Ok)
    }

    /// Kicks or bans a member, then rotates the key so that they cannot
    /// read what follows.
    pub(crate) async fn remove_member(
        &mut self,
        server: &str,
        user: &str,
        reason: String,
        ban: bool,
    ) -> Result<Response, NodeError> {
        let server = self.resolve_server(server)?;
        let member = self.resolve_user(Some(&server), user)?;
        let was_member = self.member_state(&server)?.is_member(&member);
        let cut = self.feed_cuts(&server, &member)?;
        let event = if ban {
            ControlEvent::Ban {
                member,
                reason,
                cut,
            }
        } else {
            ControlEvent::Kick {
                member,
                reason,
                cut,
            }
        };
        self.author_control(server, event).await?;
        if was_member {
            self.rotate_key(server).await?;
        }
        Ok(Response::Ok)
    }

    /// Leaves a server: a `Leave` (our feeds' heads as its cut) goes to
    /// the others like any control event (not when we were removed
    /// already: then the server only leaves our lists), the server disappears from our
    /// lists at once, and it is forgotten here (record, gossip topic, syncs)
    /// once a peer holds every entry of ours in it (`forget_left_servers`);
    /// its entries stay in the ledger, so a later join with a new invite
    /// starts from them. The owner cannot leave: ownership cannot be handed
    /// on, and a server without its owner could never gain an admin again.
    pub(crate) async fn leave_server(&mut self, server: &str) -> Result<Response, NodeError> {
        let server = self.resolve_server(server)?;
        let member = match self.member_state(&server)?.role_of(&self.me) {
            // Removed already: there is nobody to tell; the server only
            // leaves our lists.
            None => false,
            Some(Role::Owner) => {
                return Err(NodeError::new(
                    ErrorCategory::Permission,
                    "permission.owner_cannot_leave",
                    "the owner cannot leave their server",
                ));
            }
            Some(_) => true,
        };
        if member {
            let cut = self.feed_cuts(&server, &self.me)?;
            self.author_control(server, ControlEvent::Leave { cut })
                .await?;
        }
        let joined_at_ms = self
            .store
            .get::<ServerRecord>(ns::SERVERS, server.as_bytes())
            .ok()
            .flatten()
            .map_or(0, |record| record.joined_at_ms);
        self.save_server_record(&server, &ServerRecord::member(joined_at_ms, true))
            .await?;
        if let Some(runtime) = self.servers.get_mut(&server) {
            runtime.left = true;
        }
        self.emit(Event::ServersChanged);
        Ok(Response::Ok)
    }

    /// Persists what we keep about a server, durably.
    pub(crate) async fn save_server_record(
        &self,
        server: &ServerId,
        record: &ServerRecord,
    ) -> Result<(), NodeError> {
        self.store
            .put(ns::SERVERS, server.as_bytes(), record)?
            .await?;
        Ok(())
    }

    /// Forgets the servers we left once no entry of ours in them waits in
    /// the outbox any more (our `Leave` reached a peer).
    pub(crate) async fn forget_left_servers(&mut self) {
        let left: Vec<ServerId> = self
            .servers
            .values()
            .filter(|runtime| runtime.left)
            .map(|runtime| runtime.id)
            .collect();
        for server in left {
            if self.outbox_holds_server(&server) {
                continue;
            }
            self.servers.remove(&server);
            self.topic_peers.remove(&server);
            if let Err(err) = self.store.delete(ns::SERVERS, server.as_bytes()) {
                tracing::warn!(%server, code = err.code, "cannot forget a server we left");
            }
            if let Err(err) = self.overlay.unsubscribe(server).await {
                tracing::debug!(%server, %err, "cannot unsubscribe from a server we left");
            }
            tracing::info!(%server, "left the server");
        }
    }

    /// The heads of `member`'s feeds in every log of the server.
    fn feed_cuts(&self, server: &ServerId, member: &UserId) -> Result<Vec<FeedCut>, NodeError> {
        let mut cuts = Vec::new();
        for log in self.ledger.logs_in_space(&SpaceId::from(*server))? {
            if let Some(head) = self.ledger.head(&log, member)? {
                cuts.push(FeedCut { log, seq: head.seq });
            }
        }
        cuts.truncate(messaging_proto::limits::MAX_FEED_CUTS);
        Ok(cuts)
    }

    /// Starts a new key epoch: the new key sealed to every remaining member,
    /// the previous key wrapped under the new one.
    pub(crate) async fn rotate_key(&mut self, server: ServerId) -> Result<(), NodeError> {
        let space = SpaceId::from(server);
        let state = self.member_state(&server)?;
        let current = state.current_epoch();
        let members: Vec<UserId> = state.members().map(|member| member.user).collect();
        let previous = self
            .keys
            .get(&space, current)
            .first()
            .cloned()
            .ok_or_else(|| {
                NodeError::new(
                    ErrorCategory::Crypto,
                    "node.no_key",
                    "we do not hold the current key",
                )
            })?;
        let new_epoch = current + 1;
        let (new_key, sealed, wrapped) = {
            let mut rng = rand::rng();
            let new_key = EpochKey::generate(&mut rng, new_epoch);
            let aad = epoch_key_aad(&server, new_epoch);
            let sealed: Vec<Bytes> = members
                .iter()
                .map(|member| {
                    Bytes::from(identity_core::seal(
                        &mut rng,
                        member,
                        new_key.as_bytes(),
                        &aad,
                    ))
                })
                .collect();
            let wrapped = Bytes::from(new_key.wrap_previous(&mut rng, &server, &previous));
            (new_key, sealed, wrapped)
        };
        let parts: Vec<Vec<Bytes>> = sealed
            .chunks(SEALED_KEYS_PER_PART)
            .map(<[Bytes]>::to_vec)
            .collect();
        let part_count = u32::try_from(parts.len().max(1)).unwrap_or(u32::MAX);
        // Hold the new key first, so that our own rotation applies with it.
        self.keys.add(space, new_key, true).await?;
        for (index, sealed_keys) in parts.into_iter().enumerate() {
            let event = ControlEvent::KeyRotation(KeyRotation {
                new_epoch,
                sealed_keys,
                previous_key: wrapped.clone(),
                part: u32::try_from(index).unwrap_or(u32::MAX),
                part_count,
            });
            self.author_control(server, event).await?;
        }
        Ok(())
    }

    pub(crate) async fn unban(&mut self, server: &str, user: &str) -> Result<Response, NodeError> {
        let server = self.resolve_server(server)?;
        let member = self.resolve_user(Some(&server), user)?;
        self.author_control(server, ControlEvent::Unban { member })
            .await?;
        Ok(Response::Ok)
    }

    pub(crate) async fn change_role(
        &mut self,
        server: &str,
        user: &str,
        role: &str,
        grant: bool,
    ) -> Result<Response, NodeError> {
        let server = self.resolve_server(server)?;
        let member = self.resolve_user(Some(&server), user)?;
        let role: Role = role.parse().map_err(|_| {
            NodeError::invalid(
                "node.invalid_role",
                "a role is member, moderator, admin or owner",
            )
        })?;
        let event = if grant {
            ControlEvent::GrantRole { member, role }
        } else {
            ControlEvent::RevokeRole { member, role }
        };
        self.author_control(server, event).await?;
        Ok(Response::Ok)
    }

    /// Reacts to an applied control record: keys for us, names, key grants
    /// owed to new members, the rotation owed when a member leaves.
    pub(crate) async fn after_control(&mut self, server: ServerId, record: &ControlRecord) {
        let space = SpaceId::from(server);
        match &record.event {
            ControlEvent::KeyRotation(rotation) => {
                self.learn_rotation_key(server, rotation, true).await;
            }
            ControlEvent::KeyGrant(grant) if grant.member == self.me => {
                let aad = epoch_key_aad(&server, grant.epoch);
                if let Ok(plain) = self.identity.open_sealed(&grant.sealed_key, &aad)
                    && let Ok(key) = EpochKey::from_slice(grant.epoch, &plain)
                {
                    let _ = self.keys.add(space, key, true).await;
                }
            }
            ControlEvent::Join(join) => {
                if record.author != self.me {
                    self.names.insert(record.author, join.display_name.clone());
                    let _ = self
                        .store
                        .put(ns::NAMES, record.author.as_bytes(), &join.display_name);
                }
                self.grant_key_if_owed(server, record, join.invite.as_ref());
            }
            ControlEvent::SetBootstrapPeers(_) => {
                self.deferred_connect.insert(server);
            }
            ControlEvent::Leave { .. } if self.rotation_owed(&server) => {
                self.deferred_rotations.insert(server);
            }
            _ => {}
        }
    }

    /// Whether we owe the server a key rotation, from its control records
    /// in order:
    /// - a member who leaves keeps the key of the epoch it left in, so the
    ///   owner rotates after a `Leave` (as a kick does);
    /// - a rotation of ours that the fold refused as concurrent leaves the
    ///   removal it was made for to the kept rotation, whose author may not
    ///   have known of it (the other side of a split) and sealed the key to
    ///   the removed member;
    ///
    /// unless an effective rotation of ours follows. Another moderator's
    /// does not count, for the same reason. Asked again when the deferred
    /// rotation is written, and when a server is loaded (a crash between
    /// the cause and the rotation).
    pub(crate) fn rotation_owed(&self, server: &ServerId) -> bool {
        let Some(runtime) = self.servers.get(server) else {
            return false;
        };
        let Some(state) = runtime.state.as_ref() else {
            return false;
        };
        // Rotating takes a moderator (a demoted or removed one cannot).
        if state
            .role_of(&self.me)
            .is_none_or(|role| role < Role::Moderator)
        {
            return false;
        }
        let refusals: std::collections::HashMap<&EntryHash, &Denied> = state
            .rejected()
            .iter()
            .map(|(hash, denied)| (hash, denied))
            .collect();
        let mut owed = false;
        for record in runtime.records.values() {
            match (&record.event, refusals.get(&record.hash).copied()) {
                (ControlEvent::Leave { .. }, None) => {
                    owed |= record.author != self.me && state.owner() == self.me;
                }
                (ControlEvent::KeyRotation(_), None) if record.author == self.me => owed = false,
                (ControlEvent::KeyRotation(_), Some(Denied::ConcurrentRotation))
                    if record.author == self.me =>
                {
                    owed = true;
                }
                _ => {}
            }
        }
        owed
    }

    /// A joiner whose entry is under an older epoch needs the current key:
    /// the inviter (or, without an invite, the owner) grants it.
    fn grant_key_if_owed(
        &mut self,
        server: ServerId,
        record: &ControlRecord,
        invite: Option<&SignedInvite>,
    ) {
        let Some(state) = self
            .servers
            .get(&server)
            .and_then(|runtime| runtime.state.as_ref())
        else {
            return;
        };
        let current = state.current_epoch();
        if record.author == self.me || record.key_epoch >= current {
            return;
        }
        let responsible = match invite {
            Some(invite) => invite.invite().inviter == self.me,
            None => state.owner() == self.me,
        };
        if responsible {
            self.deferred_grants.push((server, record.author));
        }
    }

    /// Writes the key grants owed (outside the ingest path) and the unread
    /// counters that changed.
    pub(crate) async fn write_deferred(&mut self) {
        for log in std::mem::take(&mut self.unread_dirty) {
            let count = self.unread.get(&log).copied().unwrap_or(0);
            if let Err(err) = self.store.put(ns::UNREAD, log.as_bytes(), &count) {
                tracing::debug!(code = err.code, "cannot save an unread count");
            }
        }
        let grants = std::mem::take(&mut self.deferred_grants);
        for (server, member) in grants {
            let space = SpaceId::from(server);
            let Ok(state) = self.member_state(&server) else {
                continue;
            };
            let epoch = state.current_epoch();
            let Some(key) = self.keys.get(&space, epoch).first().cloned() else {
                continue;
            };
            let sealed = identity_core::seal(
                &mut rand::rng(),
                &member,
                key.as_bytes(),
                &epoch_key_aad(&server, epoch),
            );
            let event = ControlEvent::KeyGrant(KeyGrant {
                epoch,
                member,
                sealed_key: Bytes::from(sealed),
            });
            if let Err(err) = self.author_control(server, event).await {
                tracing::warn!(code = err.code, "cannot grant the key to a new member");
            }
        }
        let rotations: Vec<ServerId> = self.deferred_rotations.drain().collect();
        for server in rotations {
            if !self.rotation_owed(&server) {
                continue;
            }
            if let Err(err) = self.rotate_key(server).await {
                tracing::warn!(code = err.code, "cannot rotate the key we owe the server");
            }
        }
        let connects: Vec<ServerId> = self.deferred_connect.drain().collect();
        for server in connects {
            self.connect_server(server).await;
        }
    }

    /// Opens our copy of a rotation's new key (if it was sealed to us) and
    /// keeps it; `primary` for the rotation the fold keeps (its key
    /// encrypts from now on), not for one it refused. Then recovers the
    /// older keys wrapped under it.
    pub(crate) async fn learn_rotation_key(
        &mut self,
        server: ServerId,
        rotation: &KeyRotation,
        primary: bool,
    ) {
        let space = SpaceId::from(server);
        let aad = epoch_key_aad(&server, rotation.new_epoch);
        for sealed in &rotation.sealed_keys {
            if let Ok(plain) = self.identity.open_sealed(sealed, &aad) {
                if let Ok(key) = EpochKey::from_slice(rotation.new_epoch, &plain)
                    && let Err(err) = self.keys.add(space, key, primary).await
                {
                    tracing::error!(code = err.code, "cannot store a new epoch key");
                }
                break;
            }
        }
        self.learn_previous_keys(server, rotation).await;
    }

    /// From a rotation to epoch n we hold the key of, recover the key of
    /// epoch n − 1 (wrapped under n), and so on down: whoever holds a newer
    /// key can read older history.
    pub(crate) async fn learn_previous_keys(&mut self, server: ServerId, rotation: &KeyRotation) {
        let space = SpaceId::from(server);
        let keys: Vec<EpochKey> = self.keys.get(&space, rotation.new_epoch).to_vec();
        for key in keys {
            if let Ok(previous) = key.unwrap_previous(&server, &rotation.previous_key) {
                let epoch = previous.epoch();
                let primary = !self.keys.has(&space, epoch);
                if let Ok(true) = self.keys.add(space, previous, primary).await {
                    self.retry_held(space);
                }
                break;
            }
        }
    }

    /// Signs and publishes the advert of a public server we own.
    pub(crate) async fn publish_advert(&mut self, server: ServerId) {
        let Some(runtime) = self.servers.get(&server) else {
            return;
        };
        let (Some(state), Some(genesis)) = (runtime.state.as_ref(), runtime.genesis.clone()) else {
            return;
        };
        if state.owner() != self.me || state.profile().visibility != Visibility::Public {
            return;
        }
        let epoch = state.current_epoch();
        let Some(join_key) = self
            .keys
            .get(&SpaceId::from(server), epoch)
            .first()
            .cloned()
        else {
            return;
        };
        let mut bootstrap: Vec<BootstrapPeer> = state
            .bootstrap_peers()
            .iter()
            .take(messaging_proto::limits::MAX_ADVERT_BOOTSTRAP_PEERS)
            .cloned()
            .collect();
        let profile = state.profile().clone();
        let members = u32::try_from(state.members().count()).unwrap_or(u32::MAX);
        if bootstrap.is_empty() {
            let addrs = self.own_addresses().await;
            if !addrs.is_empty() {
                bootstrap.push(BootstrapPeer {
                    peer: self.me,
                    addrs,
                });
            }
        }
        let now = self.now_ms();
        let lifetime =
            u64::try_from(self.config.timers.advert_lifetime.as_millis()).unwrap_or(u64::MAX);
        let advert = ServerAdvert {
            server_id: server,
            genesis,
            name: profile.name,
            description: profile.description,
            bootstrap,
            visibility: Visibility::Public,
            join_key: Some(join_key),
            seq: now,
            expires_at_ms: now + lifetime,
            member_count: members,
        };
        match SignedAdvert::sign(&self.identity, advert, now) {
            Ok(signed) => {
                if let Err(err) = self.overlay.put_advert(signed.clone()).await {
                    tracing::warn!(%err, "cannot publish the server's advert");
                }
                self.directory.insert(server, signed);
                let adverts = self.directory.values().cloned().collect();
                let _ = self.overlay.set_directory(adverts).await;
                if let Some(runtime) = self.servers.get_mut(&server) {
                    runtime.advert_published = Some(Instant::now());
                }
            }
            Err(err) => tracing::warn!(%err, "cannot sign the server's advert"),
        }
    }

    /// Re-publishes adverts at half their lifetime.
    pub(crate) async fn republish_adverts(&mut self) {
        let half = self.config.timers.advert_lifetime / 2;
        let due: Vec<ServerId> = self
            .servers
            .values()
            .filter(|runtime| {
                runtime.state.as_ref().is_some_and(|state| {
                    state.owner() == self.me && state.profile().visibility == Visibility::Public
                }) && runtime
                    .advert_published
                    .is_none_or(|published| published.elapsed() >= half)
            })
            .map(|runtime| runtime.id)
            .collect();
        for server in due {
            self.publish_advert(server).await;
        }
    }

    pub(crate) fn discover(&self, reply: super::Reply) {
        let overlay = self.overlay.clone();
        let internal = self.internal_tx.clone();
        let now = self.now_ms();
        tokio::spawn(async move {
            let result = overlay
                .discover_public_servers(now)
                .await
                .map_err(NodeError::from);
            let _ = internal
                .send(super::Internal::Discovered { result, reply })
                .await;
        });
    }

    /// A peer connected: sync the servers it serves with it, ask it for our
    /// DMs if it is a replica, and catch up a DM with it.
    pub(crate) fn on_peer_connected(&mut self, peer: PeerId) {
        let servers: Vec<ServerId> = self
            .servers
            .keys()
            .copied()
            .filter(|server| self.replica_peers(server).contains(&peer))
            .collect();
        let is_replica = !servers.is_empty();
        for server in servers {
            self.start_sync(SpaceId::from(server), peer);
        }
        if is_replica {
            self.query_inbox(peer);
        }
        if let Some(user) = super::user_of(&peer) {
            let dm = messaging_proto::DmId::between(&self.me, &user);
            if self.dms.contains_key(&dm) {
                self.start_sync(SpaceId::from(dm), peer);
            }
        }
    }
}

/// Used by invites and adverts: a peer's addresses with `/p2p/<id>`.
pub(crate) fn dialable(peer: &BootstrapPeer) -> Vec<Multiaddr> {
    peer.addrs
        .iter()
        .map(|addr| {
            let text = format!("{addr}/p2p/{}", peer.peer.to_peer_id());
            text.parse().unwrap_or_else(|_| addr.clone())
        })
        .collect()
}
