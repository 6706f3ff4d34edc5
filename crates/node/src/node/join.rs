//! Joining a server, with an invite or through a public advert.
//!
//! 1. Parse and check the invite (checksum, signature, expiry), or fetch
//!    and verify the advert.
//! 2. Remember the bootstrap peers, keep them connected, and (in a spawned
//!    task, so the node never waits on the network) fetch the genesis and
//!    the control log from the first one that answers.
//! 3. Back in the node: verify the genesis hash against the server id,
//!    recover older keys through the key rotations' wrapped keys, fold the
//!    control log, and check the join with `authorize` (revoked, exhausted,
//!    banned…) — only then write our `Join`.
//! 4. Subscribe and sync the channels.

use std::time::Duration;

use bytes::Bytes;
use messaging_proto::{
    ControlEvent, EpochKey, Join, LogId, ServerId, SignedInvite, SpaceId, SyncRequest,
    SyncResponse, VerifiedEntry,
};
use net_overlay::{Multiaddr, OverlayHandle, PeerId};
use storage_ledger::LedgerStore;

use super::ingest::Source;
use super::{Internal, LocalRole, NodeCore, Reply, ServerRecord, ServerRuntime, peer_of};
use crate::api::{ErrorCategory, Event, NodeError, Response};
use crate::control::{ControlRecord, ServerState};
use crate::invite_code;
use messaging_proto::EntryHash;

/// What the network part of a join brought back.
pub(crate) struct JoinProgress {
    pub(crate) server: ServerId,
    pub(crate) invite: Option<SignedInvite>,
    pub(crate) key: EpochKey,
    pub(crate) peer: Option<PeerId>,
    pub(crate) genesis: Result<Bytes, NodeError>,
    pub(crate) control: Vec<Bytes>,
}

impl NodeCore {
    pub(crate) async fn join_with_invite(&mut self, text: &str, reply: Reply) {
        let invite = match invite_code::parse(text, self.now_ms()) {
            Ok(invite) => invite,
            Err(err) => {
                let _ = reply.send(Err(err.into()));
                return;
            }
        };
        let content = invite.invite().clone();
        let peers: Vec<(PeerId, Vec<Multiaddr>)> = content
            .bootstrap
            .iter()
            .filter(|peer| peer.peer != self.me)
            .map(|peer| (peer_of(&peer.peer), super::servers::dialable(peer)))
            .collect();
        self.start_join(content.server_id, Some(invite), content.key, peers, reply)
            .await;
    }

    pub(crate) async fn join_public(&mut self, server: &str, reply: Reply) {
        let server: ServerId = match server.parse() {
            Ok(server) => server,
            Err(_) => {
                let _ = reply.send(Err(NodeError::invalid(
                    "node.invalid_server_id",
                    "a server id is 64 hex digits",
                )));
                return;
            }
        };
        let overlay = self.overlay.clone();
        let internal = self.internal_tx.clone();
        let timeout = self.config.timers.join_timeout;
        // The advert lookup is network work: do it in the background, then
        // continue like an invite.
        tokio::spawn(async move {
            let lookup = tokio::time::timeout(timeout, overlay.get_advert(server)).await;
            let progress = match lookup {
                Ok(Ok(found)) => {
                    let advert = found.advert.advert().clone();
                    match advert.join_key {
                        Some(key) => {
                            let peers: Vec<(PeerId, Vec<Multiaddr>)> = advert
                                .bootstrap
                                .iter()
                                .map(|peer| (peer_of(&peer.peer), super::servers::dialable(peer)))
                                .collect();
                            for (peer, addrs) in &peers {
                                let _ = overlay
                                    .add_peer(Some(server), *peer, addrs.clone(), true)
                                    .await;
                            }
                            fetch_server(&overlay, server, None, key, &peers, timeout).await
                        }
                        None => JoinProgress {
                            server,
                            invite: None,
                            key: EpochKey::from_bytes(1, [0; 32]),
                            peer: None,
                            genesis: Err(NodeError::new(
                                ErrorCategory::Permission,
                                "node.server_not_public",
                                "this server is not public: join it with an invite",
                            )),
                            control: Vec::new(),
                        },
                    }
                }
                Ok(Err(err)) => failed(server, err.into()),
                Err(_) => failed(
                    server,
                    NodeError::new(
                        ErrorCategory::Network,
                        "node.join_timeout",
                        "no advert found in time",
                    )
                    .retry_after(5_000),
                ),
            };
            let _ = internal
                .send(Internal::JoinFetched(Box::new(progress)))
                .await;
        });
        self.pending_joins.entry(server).or_default().push(reply);
    }

    async fn start_join(
        &mut self,
        server: ServerId,
        invite: Option<SignedInvite>,
        key: EpochKey,
        peers: Vec<(PeerId, Vec<Multiaddr>)>,
        reply: Reply,
    ) {
        if self
            .servers
            .get(&server)
            .and_then(|runtime| runtime.state.as_ref())
            .is_some_and(|state| state.is_member(&self.me))
        {
            let _ = reply.send(Err(NodeError::invalid(
                "node.already_member",
                "you are already a member of this server",
            )));
            return;
        }
        for (peer, addrs) in &peers {
            let _ = self
                .overlay
                .add_peer(Some(server), *peer, addrs.clone(), true)
                .await;
        }
        if peers.is_empty() {
            let _ = reply.send(Err(NodeError::new(
                ErrorCategory::Network,
                "node.no_bootstrap_peers",
                "the invite names no peer to connect to",
            )));
            return;
        }
        self.pending_joins.entry(server).or_default().push(reply);
        let overlay = self.overlay.clone();
        let internal = self.internal_tx.clone();
        let timeout = self.config.timers.join_timeout;
        tokio::spawn(async move {
            let progress = fetch_server(&overlay, server, invite, key, &peers, timeout).await;
            let _ = internal
                .send(Internal::JoinFetched(Box::new(progress)))
                .await;
        });
    }

    pub(crate) async fn join_fetched(&mut self, progress: JoinProgress) {
        let server = progress.server;
        let result = self.complete_join(progress).await;
        if result.is_err() {
            // Leave nothing half-joined behind.
            if self.servers.get(&server).is_some_and(|runtime| {
                runtime
                    .state
                    .as_ref()
                    .is_none_or(|state| !state.is_member(&self.me))
            }) {
                self.servers.remove(&server);
            }
        }
        for reply in self.pending_joins.remove(&server).unwrap_or_default() {
            let _ = reply.send(result.clone());
        }
    }

    async fn complete_join(&mut self, progress: JoinProgress) -> Result<Response, NodeError> {
        let JoinProgress {
            server,
            invite,
            key,
            peer,
            genesis,
            control,
        } = progress;
        let space = SpaceId::from(server);
        let genesis = VerifiedEntry::verify(genesis?)?;
        if genesis.genesis_of() != Some(server) {
            return Err(NodeError::new(
                ErrorCategory::Protocol,
                "node.genesis_mismatch",
                "the bootstrap peer sent the genesis of another server",
            ));
        }
        let control_log = genesis.log_id();
        let entries: Vec<VerifiedEntry> = control
            .into_iter()
            .filter_map(|bytes| VerifiedEntry::verify(bytes).ok())
            .filter(|entry| entry.space() == space && entry.log_id() == control_log)
            .collect();
        // Judge the join in memory first: nothing is stored (keys, entries,
        // server) unless the invite is still good.
        let preview = preview_join(server, &genesis, &entries, &key)?;
        let probe = ControlRecord {
            hash: EntryHash::from_bytes([0; 32]),
            author: self.me,
            seq: 1,
            lamport: u64::MAX,
            timestamp_ms: self.now_ms(),
            key_epoch: preview.state.current_epoch(),
            event: ControlEvent::Join(Box::new(Join {
                invite: invite.clone(),
                display_name: self.display_name.clone(),
            })),
        };
        preview.state.authorize(&probe).map_err(join_error)?;

        for known in preview.keys {
            let primary = !self.keys.has(&space, known.epoch());
            self.keys.add(space, known, primary).await?;
        }
        // A server we left (or were removed from) before: the ledger holds
        // its control log already, and entries we hold are not ingested
        // again, so the state is folded from the ledger.
        let rejoin = self.ledger.get_by_hash(&genesis.hash())?.is_some();
        let (_, _durable_later) = self.ledger.append_deferred(&genesis)?;
        if rejoin {
            self.load_server(server, LocalRole::Member).await?;
        } else {
            let state = ServerState::genesis(server, &preview.genesis_record, control_log)?;
            self.servers.insert(
                server,
                ServerRuntime::member(
                    server,
                    genesis.clone(),
                    preview.genesis_record.clone(),
                    state,
                ),
            );
        }
        let mut sorted = entries;
        sorted.sort_by_key(|entry| (*entry.author(), entry.seq()));
        let source = peer.map_or(Source::Retry, Source::Peer);
        for entry in sorted {
            let _ = self.ingest_entry(entry, source).await;
        }
        self.settle().await;

        let join = ControlEvent::Join(Box::new(Join {
            invite,
            display_name: self.display_name.clone(),
        }));
        self.author_control(server, join).await?;
        self.save_server_record(&server, &ServerRecord::member(self.now_ms(), false))
            .await?;
        self.connect_server(server).await;
        if let Some(peer) = peer {
            self.start_sync(space, peer);
        }
        self.emit(Event::ServersChanged);
        self.server_detail(&server).map(Response::Server)
    }
}

/// A join judged before anything is stored.
struct JoinPreview {
    state: ServerState,
    genesis_record: ControlRecord,
    /// Every key recovered, the invite's included.
    keys: Vec<EpochKey>,
}

/// Recovers older keys through the rotations' wrapped keys, decrypts and
/// folds the control log — all in memory.
fn preview_join(
    server: ServerId,
    genesis: &VerifiedEntry,
    entries: &[VerifiedEntry],
    key: &EpochKey,
) -> Result<JoinPreview, NodeError> {
    let mut keys: std::collections::BTreeMap<u32, Vec<EpochKey>> = Default::default();
    keys.entry(key.epoch()).or_default().push(key.clone());
    let rotations: Vec<messaging_proto::KeyRotation> = entries
        .iter()
        .filter(|entry| entry.header().key_epoch == messaging_proto::PLAINTEXT_EPOCH)
        .filter_map(|entry| match entry.open_plain().ok()?.body {
            messaging_proto::Body::Control(ControlEvent::KeyRotation(rotation)) => Some(rotation),
            _ => None,
        })
        .collect();
    loop {
        let mut learned = false;
        for rotation in &rotations {
            let newer: Vec<EpochKey> = keys.get(&rotation.new_epoch).cloned().unwrap_or_default();
            for newer in newer {
                if let Ok(previous) = newer.unwrap_previous(&server, &rotation.previous_key) {
                    let list = keys.entry(previous.epoch()).or_default();
                    if !list.contains(&previous) {
                        list.push(previous);
                        learned = true;
                    }
                }
            }
        }
        if !learned {
            break;
        }
    }
    let open = |entry: &VerifiedEntry| -> Option<messaging_proto::Payload> {
        let epoch = entry.header().key_epoch;
        if epoch == messaging_proto::PLAINTEXT_EPOCH {
            return entry.open_plain().ok();
        }
        keys.get(&epoch)?
            .iter()
            .find_map(|key| entry.open(key).ok())
    };
    let genesis_payload = open(genesis).ok_or_else(|| {
        NodeError::new(
            ErrorCategory::Crypto,
            "node.cannot_read_genesis",
            "the invite's key does not open the server's history",
        )
    })?;
    let genesis_record = ControlRecord::from_entry(genesis, &genesis_payload).ok_or_else(|| {
        NodeError::new(
            ErrorCategory::Protocol,
            "node.bad_genesis",
            "not a server genesis",
        )
    })?;
    let records: Vec<ControlRecord> = entries
        .iter()
        .filter(|entry| entry.hash() != genesis.hash())
        .filter_map(|entry| ControlRecord::from_entry(entry, &open(entry)?))
        .collect();
    let state = ServerState::fold(server, &genesis_record, genesis.log_id(), &records)?;
    Ok(JoinPreview {
        state,
        genesis_record,
        keys: keys.into_values().flatten().collect(),
    })
}

/// The join's denial in the invite's vocabulary where one applies.
fn join_error(denied: crate::control::Denied) -> NodeError {
    use crate::control::Denied;
    let (code, message) = match &denied {
        Denied::InviteRevoked => ("invite.revoked", "this invite was revoked"),
        Denied::InviteExpired => ("invite.expired", "this invite has expired"),
        Denied::InviteExhausted => ("invite.exhausted", "this invite has been used up"),
        Denied::Banned => ("permission.banned", "you are banned from this server"),
        _ => return denied.into(),
    };
    NodeError::new(ErrorCategory::Permission, code, message)
}

fn failed(server: ServerId, error: NodeError) -> JoinProgress {
    JoinProgress {
        server,
        invite: None,
        key: EpochKey::from_bytes(1, [0; 32]),
        peer: None,
        genesis: Err(error),
        control: Vec::new(),
    }
}

/// Dials the bootstrap peers until one sends the genesis, then fetches the
/// whole control log from it.
async fn fetch_server(
    overlay: &OverlayHandle,
    server: ServerId,
    invite: Option<SignedInvite>,
    key: EpochKey,
    peers: &[(PeerId, Vec<Multiaddr>)],
    timeout: Duration,
) -> JoinProgress {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_error = NodeError::new(
        ErrorCategory::Network,
        "node.bootstrap_unreachable",
        "none of the server's bootstrap peers could be reached",
    )
    .retry_after(5_000);
    while tokio::time::Instant::now() < deadline {
        for (peer, addrs) in peers {
            for addr in addrs {
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), overlay.dial(addr.clone())).await;
            }
            let request = SyncRequest::Genesis { server };
            match tokio::time::timeout(Duration::from_secs(10), overlay.sync(*peer, request)).await
            {
                Ok(Ok(SyncResponse::Genesis(genesis))) => {
                    let control = match VerifiedEntry::verify(genesis.clone()) {
                        Ok(entry) => fetch_log(overlay, *peer, entry.log_id()).await,
                        Err(_) => Vec::new(),
                    };
                    return JoinProgress {
                        server,
                        invite,
                        key,
                        peer: Some(*peer),
                        genesis: Ok(genesis),
                        control,
                    };
                }
                Ok(Ok(SyncResponse::Error(error))) => {
                    last_error = NodeError::new(
                        ErrorCategory::NotFound,
                        "node.server_unknown_to_peer",
                        format!(
                            "the bootstrap peer does not hold this server ({})",
                            error.message
                        ),
                    );
                }
                Ok(Ok(_)) => {}
                Ok(Err(err)) => last_error = err.into(),
                Err(_) => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    failed(server, last_error).with_key(invite, key)
}

impl JoinProgress {
    fn with_key(mut self, invite: Option<SignedInvite>, key: EpochKey) -> Self {
        self.invite = invite;
        self.key = key;
        self
    }
}

/// Every entry a peer holds of one log (bounded by the sync limits per
/// request; the whole log is fetched page by page).
pub(crate) async fn fetch_log(overlay: &OverlayHandle, peer: PeerId, log: LogId) -> Vec<Bytes> {
    const MAX_ENTRIES: usize = 100_000;
    let mut entries = Vec::new();
    let mut after_author = None;
    loop {
        let Ok(SyncResponse::Heads(heads)) = overlay
            .sync(peer, SyncRequest::Heads { log, after_author })
            .await
        else {
            break;
        };
        for head in &heads.heads {
            let mut from_seq = head.first_seq;
            while from_seq <= head.seq && entries.len() < MAX_ENTRIES {
                let request = SyncRequest::Range(messaging_proto::RangeRequest {
                    log,
                    author: head.author,
                    from_seq,
                    limit: 4096,
                    max_bytes: u32::try_from(messaging_proto::limits::MAX_SYNC_CHUNK_BYTES)
                        .unwrap_or(u32::MAX),
                });
                let Ok(SyncResponse::Range(range)) = overlay.sync(peer, request).await else {
                    break;
                };
                if range.entries.is_empty() {
                    break;
                }
                from_seq += range.entries.len() as u64;
                entries.extend(range.entries);
                if !range.more {
                    break;
                }
            }
        }
        match (heads.more, heads.heads.last()) {
            (true, Some(last)) => after_author = Some(last.author),
            _ => break,
        }
    }
    entries
}
