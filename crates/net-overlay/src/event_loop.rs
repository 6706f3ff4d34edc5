//! The one event loop that owns the `Swarm`.
//!
//! It `select!`s over swarm events, the bounded command channel and a
//! maintenance tick. Replies to commands that finish later (dials, requests,
//! DHT queries) wait in `pending_*` maps keyed by connection, request or
//! query id; every map is bounded, and entries that outlive their timeout
//! are dropped on the tick. The loop never blocks on the node: events go
//! out with `try_send` (see [`EventSender`]), and an inbound request the
//! node cannot take right now is answered with "busy" at once. The loop
//! returns when the command channel closes or on `Shutdown`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::core::transport::ListenerId;
use libp2p::gossipsub::{self, MessageAcceptance, PublishError, TopicHash};
use libp2p::kad::store::RecordStore;
use libp2p::kad::{
    self, GetProvidersOk, GetRecordOk, InboundRequest, PutRecordError, QueryId, QueryResult,
    Quorum, Record,
};
use libp2p::metrics::{Metrics, Recorder};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, autonat, identify, mdns, relay};
use messaging_proto::limits::MAX_SIGNED_ADVERT_BYTES;
use messaging_proto::{
    DirectoryRequest, DirectoryResponse, ProtoError, ServerId, SignedAdvert, SyncErrorCode,
    SyncRequest, SyncResponse,
};
use tokio::sync::mpsc;

use crate::address_book::{AddressBook, RedialSchedule};
use crate::behaviour::{Behaviour, BehaviourEvent, KAD_PROTOCOL};
use crate::codec::WireRequest;
use crate::config::OverlayConfig;
use crate::error::OverlayError;
use crate::gossip;
use crate::handle::{
    AdvertLookup, Command, EventSender, GossipVerdict, InboundToken, OverlayEvent, PublishOutcome,
    Reply, TokenBucket,
};
use crate::records::{self, RecordRejection, advert_key, directory_key};
use crate::restarts::{Path, RestartedPeers, Verdict};
use crate::status::{NatStatus, NetworkStatus};

/// Most outbound requests, DHT queries or dials waiting at once.
const MAX_PENDING: usize = 1024;
/// Most inbound sync requests waiting for the node's answer.
const MAX_INBOUND_PENDING: usize = 1024;
/// Most peers whose listen addresses we keep (only connected peers).
const MAX_PEER_ADDRS: usize = 8;
/// Wait before listening again on an address that failed or closed.
const RELISTEN_DELAY: Duration = Duration::from_millis(500);
/// How often to fall back to remembered peers while nothing is connected.
const FALLBACK_INTERVAL: Duration = Duration::from_secs(30);
/// How often the Kademlia routing table is refreshed (a bootstrap query),
/// when it has any peer at all.
const KAD_REFRESH_INTERVAL: Duration = Duration::from_secs(5 * 60);

struct AdvertQuery {
    server: ServerId,
    best: Option<SignedAdvert>,
    rejected: u32,
    /// Why the last invalid record was refused (reported if none is valid).
    last_rejection: Option<ProtoError>,
    started: Instant,
    reply: Reply<AdvertLookup>,
}

struct Inbound {
    since: Instant,
    channel: ResponseChannel<Bytes>,
}

pub(crate) struct EventLoop {
    metrics: Option<Metrics>,
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: EventSender,
    config: OverlayConfig,
    subscriptions: HashMap<TopicHash, ServerId>,
    pending_dials: HashMap<ConnectionId, (Instant, Reply<PeerId>)>,
    /// `Dial` commands for a peer that another dial was already reaching:
    /// answered by that dial's outcome, so that a live peer never gets two
    /// connections from us at once (which looks like a restart to it).
    waiting_dials: HashMap<PeerId, Vec<(Instant, Reply<PeerId>)>>,
    pending_sync: HashMap<OutboundRequestId, (PeerId, Reply<SyncResponse>)>,
    pending_directory: HashMap<OutboundRequestId, (PeerId, Reply<DirectoryResponse>)>,
    inbound_sync: HashMap<InboundToken, Inbound>,
    next_token: u64,
    pending_gets: HashMap<QueryId, AdvertQuery>,
    pending_puts: HashMap<QueryId, Reply<()>>,
    pending_providers: HashMap<QueryId, (HashSet<PeerId>, Reply<Vec<PeerId>>)>,
    directory: Vec<SignedAdvert>,
    providing: bool,
    address_book: AddressBook,
    redial: RedialSchedule,
    /// Open connections per peer, to spot a peer back from a restart.
    restarts: RestartedPeers,
    last_fallback: Option<Instant>,
    /// When the Kademlia routing table was last refreshed.
    last_kad_refresh: Option<Instant>,
    peer_addrs: HashMap<PeerId, Vec<Multiaddr>>,
    rate: HashMap<PeerId, TokenBucket>,
    nat: NatStatus,
    reservations: HashSet<PeerId>,
    /// Relay circuit listeners we asked for, to re-establish when they close
    /// (the relay restarted, the reservation expired, a race at start-up).
    circuit_listeners: HashMap<ListenerId, Multiaddr>,
    relisten: Vec<(Instant, Multiaddr)>,
    /// Every listener, removed explicitly at shutdown (the memory transport
    /// frees its port only then).
    listener_ids: Vec<ListenerId>,
}

impl EventLoop {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        events: EventSender,
        config: OverlayConfig,
        metrics: Option<Metrics>,
    ) -> Self {
        let address_book = AddressBook::from_snapshot(&config.address_book);
        Self {
            metrics,
            swarm,
            commands,
            events,
            config,
            subscriptions: HashMap::new(),
            pending_dials: HashMap::new(),
            waiting_dials: HashMap::new(),
            pending_sync: HashMap::new(),
            pending_directory: HashMap::new(),
            inbound_sync: HashMap::new(),
            next_token: 0,
            pending_gets: HashMap::new(),
            pending_puts: HashMap::new(),
            pending_providers: HashMap::new(),
            directory: Vec::new(),
            providing: false,
            address_book,
            redial: RedialSchedule::default(),
            restarts: RestartedPeers::default(),
            last_fallback: None,
            last_kad_refresh: Some(Instant::now()),
            peer_addrs: HashMap::new(),
            rate: HashMap::new(),
            nat: NatStatus::Unknown,
            reservations: HashSet::new(),
            circuit_listeners: HashMap::new(),
            relisten: Vec::new(),
            listener_ids: Vec::new(),
        }
    }

    /// Listens, dials the bootstrap peers, then runs until shut down.
    pub(crate) async fn run(mut self) {
        for addr in self.config.listen.clone() {
            if let Err(err) = self.listen_on(addr.clone()) {
                // E.g. the port is still held by a process that just
                // exited: try again shortly rather than never.
                tracing::warn!(%addr, %err, "cannot listen yet; retrying");
                self.relisten.push((Instant::now() + RELISTEN_DELAY, addr));
            }
        }
        for addr in self.config.external_addrs.clone() {
            self.swarm.add_external_address(addr);
        }
        let now = Instant::now();
        for addr in self.config.bootstrap.clone() {
            match peer_of(&addr) {
                Some(peer) => {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, addr.clone());
                    self.redial.want(peer, vec![addr], now);
                }
                None => tracing::warn!(%addr, "bootstrap address without /p2p/<peer id> ignored"),
            }
        }
        if self.config.bootstrap.is_empty() {
            self.dial_remembered_peers();
        }
        let mut tick = tokio::time::interval(self.config.maintenance_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shutdown_reply = loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown(reply)) => break Some(reply),
                    Some(command) => self.on_command(command),
                    None => break None,
                },
                _ = tick.tick() => self.maintain(),
            }
        };
        // Close every connection and listener before confirming, so that a
        // restarted node can take the same address at once.
        for id in std::mem::take(&mut self.listener_ids) {
            self.swarm.remove_listener(id);
        }
        let Self { swarm, .. } = self;
        drop(swarm);
        tracing::debug!("overlay event loop stopped");
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(Ok(()));
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Listen(addr, reply) => {
                let result =
                    self.listen_on(addr.clone())
                        .map(|_| ())
                        .map_err(|err| OverlayError::Listen {
                            addr: addr.to_string(),
                            reason: err.to_string(),
                        });
                let _ = reply.send(result);
            }
            Command::AddExternalAddress(addr, reply) => {
                self.swarm.add_external_address(addr);
                let _ = reply.send(Ok(()));
            }
            Command::Dial(addr, reply) => self.dial(addr, reply),
            Command::AddPeer {
                server,
                peer,
                addrs,
                keep_connected,
                reply,
            } => {
                for addr in &addrs {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, addr.clone());
                }
                self.address_book
                    .remember(server, peer, &addrs, self.config.clock.now_ms());
                let result = if keep_connected && !self.redial.want(peer, addrs, Instant::now()) {
                    Err(OverlayError::Busy)
                } else {
                    Ok(())
                };
                let _ = reply.send(result);
            }
            Command::DialServerPeers(server, reply) => {
                let mut started = 0;
                for (peer, addrs) in self.address_book.peers_for(&server) {
                    if peer != *self.swarm.local_peer_id() && !self.swarm.is_connected(&peer) {
                        let opts = DialOpts::peer_id(peer)
                            .addresses(addrs)
                            .condition(PeerCondition::DisconnectedAndNotDialing)
                            .build();
                        if self.swarm.dial(opts).is_ok() {
                            started += 1;
                        }
                    }
                }
                let _ = reply.send(Ok(started));
            }
            Command::Subscribe(server, reply) => {
                let topic = gossip::topic(&server);
                let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
                let result = gossipsub
                    .subscribe(&topic)
                    .map(|_| ())
                    .map_err(|err| OverlayError::Publish(err.to_string()));
                if result.is_ok() {
                    if let Err(err) =
                        gossipsub.set_topic_params(topic.clone(), gossip::topic_score_params())
                    {
                        tracing::warn!(%err, "cannot set topic score parameters");
                    }
                    let hash = topic.hash();
                    self.subscriptions.insert(hash.clone(), server);
                    // Peers that subscribed before we did: tell the node
                    // now, as it would have heard had we been first.
                    let known: Vec<PeerId> = self
                        .swarm
                        .behaviour()
                        .gossipsub
                        .all_peers()
                        .filter(|(_, topics)| topics.contains(&&hash))
                        .map(|(peer, _)| *peer)
                        .collect();
                    for peer in known {
                        self.remember_server_peer(server, peer);
                        self.events
                            .send(OverlayEvent::PeerSubscribed { peer, server });
                    }
                }
                let _ = reply.send(result);
            }
            Command::Unsubscribe(server, reply) => {
                let topic = gossip::topic(&server);
                self.swarm.behaviour_mut().gossipsub.unsubscribe(&topic);
                self.subscriptions.remove(&topic.hash());
                let _ = reply.send(Ok(()));
            }
            Command::Publish(server, data, reply) => {
                let topic = gossip::topic(&server);
                let result = match self.swarm.behaviour_mut().gossipsub.publish(topic, data) {
                    Ok(_) => Ok(PublishOutcome::Sent),
                    Err(PublishError::NoPeersSubscribedToTopic)
                    | Err(PublishError::AllQueuesFull(_)) => Ok(PublishOutcome::NoPeers),
                    Err(PublishError::Duplicate) => Ok(PublishOutcome::Duplicate),
                    Err(err) => Err(OverlayError::Publish(err.to_string())),
                };
                let _ = reply.send(result);
            }
            Command::ReportGossip(id, source, verdict) => {
                let acceptance = match verdict {
                    GossipVerdict::Accept => MessageAcceptance::Accept,
                    GossipVerdict::Reject => MessageAcceptance::Reject,
                    GossipVerdict::Ignore => MessageAcceptance::Ignore,
                };
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &source, acceptance);
            }
            Command::Sync(peer, request, reply) => {
                if self.pending_sync.len() >= MAX_PENDING {
                    let _ = reply.send(Err(OverlayError::Busy));
                    return;
                }
                let id = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_request(&peer, WireRequest::Message(Bytes::from(request.to_bytes())));
                self.pending_sync.insert(id, (peer, reply));
            }
            Command::RespondSync(token, response, reply) => {
                let result = match self.inbound_sync.remove(&token) {
                    Some(inbound) => self
                        .swarm
                        .behaviour_mut()
                        .sync
                        .send_response(inbound.channel, Bytes::from(response.to_bytes()))
                        .map_err(|_| OverlayError::UnknownRequest),
                    None => Err(OverlayError::UnknownRequest),
                };
                let _ = reply.send(result);
            }
            Command::Directory(peer, request, reply) => {
                if self.pending_directory.len() >= MAX_PENDING {
                    let _ = reply.send(Err(OverlayError::Busy));
                    return;
                }
                let id = self
                    .swarm
                    .behaviour_mut()
                    .directory
                    .send_request(&peer, WireRequest::Message(Bytes::from(request.to_bytes())));
                self.pending_directory.insert(id, (peer, reply));
            }
            Command::SetDirectory(mut adverts, reply) => {
                adverts.sort_by_key(|advert| advert.advert().server_id);
                adverts.dedup_by_key(|advert| advert.advert().server_id);
                let provide = !adverts.is_empty();
                self.directory = adverts;
                let kad = &mut self.swarm.behaviour_mut().kad;
                if provide && !self.providing {
                    if let Err(err) = kad.start_providing(directory_key()) {
                        tracing::warn!(%err, "cannot provide the directory key");
                    }
                } else if !provide && self.providing {
                    kad.stop_providing(&directory_key());
                }
                self.providing = provide;
                let _ = reply.send(Ok(()));
            }
            Command::PutAdvert(advert, reply) => self.put_advert(*advert, reply),
            Command::GetAdvert(server, reply) => {
                if self.pending_gets.len() >= MAX_PENDING {
                    let _ = reply.send(Err(OverlayError::Busy));
                    return;
                }
                let id = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_record(advert_key(&server));
                self.pending_gets.insert(
                    id,
                    AdvertQuery {
                        server,
                        best: None,
                        rejected: 0,
                        last_rejection: None,
                        started: Instant::now(),
                        reply,
                    },
                );
            }
            Command::FindDirectoryProviders(reply) => {
                if self.pending_providers.len() >= MAX_PENDING {
                    let _ = reply.send(Err(OverlayError::Busy));
                    return;
                }
                let id = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_providers(directory_key());
                let mut found = HashSet::new();
                if self.providing {
                    found.insert(*self.swarm.local_peer_id());
                }
                self.pending_providers.insert(id, (found, reply));
            }
            Command::Status(reply) => {
                let _ = reply.send(Ok(self.status()));
            }
            Command::PeerScore(peer, reply) => {
                let _ = reply.send(Ok(self.swarm.behaviour().gossipsub.peer_score(&peer)));
            }
            Command::AddressBook(reply) => {
                let _ = reply.send(Ok(self.address_book.snapshot()));
            }
            #[cfg(feature = "test-utils")]
            Command::PutRawRecord(record, reply) => {
                match self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .put_record(record, Quorum::One)
                {
                    Ok(id) => {
                        self.pending_puts.insert(id, reply);
                    }
                    Err(err) => {
                        let _ = reply.send(Err(OverlayError::Dht(err.to_string())));
                    }
                }
            }
            #[cfg(feature = "test-utils")]
            Command::LocalRecord(key, reply) => {
                let value = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .store_mut()
                    .get(&key)
                    .map(|record| record.value.clone());
                let _ = reply.send(Ok(value));
            }
            #[cfg(feature = "test-utils")]
            Command::SyncRaw(peer, bytes, reply) => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_request(&peer, WireRequest::Message(bytes));
                self.pending_sync.insert(id, (peer, reply));
            }
            Command::Shutdown(reply) => {
                // Handled in `run`; kept for exhaustiveness.
                let _ = reply.send(Ok(()));
            }
        }
    }

    fn listen_on(
        &mut self,
        addr: Multiaddr,
    ) -> Result<ListenerId, libp2p::TransportError<std::io::Error>> {
        let id = self.swarm.listen_on(addr.clone())?;
        self.listener_ids.push(id);
        if is_relayed(&addr) {
            self.circuit_listeners.insert(id, addr);
        }
        Ok(id)
    }

    fn dial(&mut self, addr: Multiaddr, reply: Reply<PeerId>) {
        let waiting: usize = self.waiting_dials.values().map(Vec::len).sum();
        if self.pending_dials.len() + waiting >= MAX_PENDING {
            let _ = reply.send(Err(OverlayError::Busy));
            return;
        }
        let peer = peer_of(&addr);
        if let Some(peer) = peer
            && self.swarm.is_connected(&peer)
        {
            let _ = reply.send(Ok(peer));
            return;
        }
        let opts = match peer {
            Some(peer) => DialOpts::peer_id(peer)
                .addresses(vec![addr.clone()])
                .condition(PeerCondition::NotDialing)
                .build(),
            None => DialOpts::unknown_peer_id().address(addr.clone()).build(),
        };
        let connection = opts.connection_id();
        match (self.swarm.dial(opts), peer) {
            (Ok(()), _) => {
                self.pending_dials
                    .insert(connection, (Instant::now(), reply));
            }
            (Err(DialError::DialPeerConditionFalse(_)), Some(peer)) => self
                .waiting_dials
                .entry(peer)
                .or_default()
                .push((Instant::now(), reply)),
            (Err(err), _) => {
                let _ = reply.send(Err(OverlayError::Dial {
                    target: addr.to_string(),
                    reason: err.to_string(),
                }));
            }
        }
    }

    fn put_advert(&mut self, advert: SignedAdvert, reply: Reply<()>) {
        let server = advert.advert().server_id;
        let bytes = advert.to_bytes();
        // Check with the same rules every peer applies before storing.
        let now = self.config.clock.now_ms();
        if let Err(err) = SignedAdvert::from_bytes_for(&bytes, &server, now) {
            let _ = reply.send(Err(OverlayError::InvalidAdvert(Box::new(err))));
            return;
        }
        if self.pending_puts.len() >= MAX_PENDING {
            let _ = reply.send(Err(OverlayError::Busy));
            return;
        }
        let mut record = Record::new(advert_key(&server), bytes);
        record.expires = expiry_instant(advert.advert().expires_at_ms, now);
        let kad = &mut self.swarm.behaviour_mut().kad;
        // `put_record` stores locally and replicates to the closest peers.
        match kad.put_record(record, Quorum::One) {
            Ok(id) => {
                self.pending_puts.insert(id, reply);
            }
            Err(err) => {
                let _ = reply.send(Err(OverlayError::Dht(err.to_string())));
            }
        }
    }

    fn status(&mut self) -> NetworkStatus {
        let mut mesh_peers = Vec::new();
        let mut topic_peers = Vec::new();
        for (hash, server) in &self.subscriptions {
            let gossipsub = &self.swarm.behaviour().gossipsub;
            mesh_peers.push((*server, gossipsub.mesh_peers(hash).count()));
            let subscribed = gossipsub
                .all_peers()
                .filter(|(_, topics)| topics.contains(&hash))
                .count();
            topic_peers.push((*server, subscribed));
        }
        mesh_peers.sort();
        topic_peers.sort();
        let mut connected_peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        connected_peers.sort();
        let mut relay_reservations: Vec<PeerId> = self.reservations.iter().copied().collect();
        relay_reservations.sort();
        NetworkStatus {
            peer_id: Some(*self.swarm.local_peer_id()),
            listen_addrs: self.swarm.listeners().cloned().collect(),
            external_addrs: self.swarm.external_addresses().cloned().collect(),
            nat: self.nat.clone(),
            connected_peers,
            routing_table_size: self.swarm.behaviour_mut().routing_table_size(),
            mesh_peers,
            topic_peers,
            relay_reservations,
        }
    }

    fn maintain(&mut self) {
        let now = Instant::now();
        for peer in self.restarts.expired(now) {
            tracing::debug!(%peer, "old connections still closing; accepting the peer again");
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
        }
        for (peer, addrs) in self.redial.due(now) {
            let opts = DialOpts::peer_id(peer)
                .addresses(addrs)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(err) = self.swarm.dial(opts) {
                tracing::debug!(%peer, %err, "redial not started");
                if !matches!(err, DialError::DialPeerConditionFalse(_)) {
                    self.redial.failed(&peer, now);
                }
            }
        }
        let (due, waiting): (Vec<_>, Vec<_>) =
            self.relisten.drain(..).partition(|(at, _)| *at <= now);
        self.relisten = waiting;
        for (_, addr) in due {
            if let Err(err) = self.listen_on(addr.clone()) {
                tracing::debug!(%addr, %err, "cannot listen on the relay again yet");
                self.relisten.push((now + RELISTEN_DELAY, addr));
            }
        }
        let refresh_due = self
            .last_kad_refresh
            .is_none_or(|last| now.duration_since(last) >= KAD_REFRESH_INTERVAL);
        if refresh_due {
            self.last_kad_refresh = Some(now);
            let known = self
                .swarm
                .behaviour_mut()
                .kad
                .kbuckets()
                .any(|bucket| bucket.num_entries() > 0);
            if known {
                let _ = self.swarm.behaviour_mut().kad.bootstrap();
            }
        }
        let isolated = self.swarm.connected_peers().next().is_none();
        let fallback_due = self
            .last_fallback
            .is_none_or(|last| now.duration_since(last) >= FALLBACK_INTERVAL);
        if isolated && self.redial.all_failing() && fallback_due {
            tracing::info!("bootstrap peers unreachable; trying remembered peers");
            self.dial_remembered_peers();
            self.last_fallback = Some(now);
        }
        // Inbound requests the node never answered: drop them (the requester
        // times out) so the map stays bounded.
        let timeout = self.config.request_timeout * 2;
        self.inbound_sync
            .retain(|_, inbound| now.duration_since(inbound.since) < timeout);
        // Dials that never resolved.
        let stale =
            |(since, _): &mut (Instant, Reply<PeerId>)| now.duration_since(*since) > timeout;
        let timed_out = |target: String| OverlayError::Dial {
            target,
            reason: "timed out".into(),
        };
        for (id, (_, reply)) in self.pending_dials.extract_if(|_, dial| stale(dial)) {
            let _ = reply.send(Err(timed_out(format!("{id}"))));
        }
        for (peer, waiters) in &mut self.waiting_dials {
            for (_, reply) in waiters.extract_if(.., |dial| stale(dial)) {
                let _ = reply.send(Err(timed_out(peer.to_string())));
            }
        }
        self.waiting_dials.retain(|_, waiters| !waiters.is_empty());
    }

    fn dial_remembered_peers(&mut self) {
        let local = *self.swarm.local_peer_id();
        for (peer, addrs) in self.address_book.all_peers().into_iter().take(32) {
            if peer == local {
                continue;
            }
            for addr in &addrs {
                self.swarm
                    .behaviour_mut()
                    .kad
                    .add_address(&peer, addr.clone());
            }
            let opts = DialOpts::peer_id(peer)
                .addresses(addrs)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            let _ = self.swarm.dial(opts);
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        if let Some(metrics) = &self.metrics {
            metrics.record(&event);
            if let SwarmEvent::Behaviour(inner) = &event {
                match inner {
                    BehaviourEvent::Gossipsub(event) => metrics.record(event),
                    BehaviourEvent::Kad(event) => metrics.record(event),
                    BehaviourEvent::Identify(event) => metrics.record(event),
                    BehaviourEvent::Ping(event) => metrics.record(event),
                    BehaviourEvent::RelayServer(event) => metrics.record(event),
                    BehaviourEvent::Dcutr(event) => metrics.record(event),
                    _ => {}
                }
            }
        }
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                self.events.send(OverlayEvent::Listening { addr: address });
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                if let Some((_, reply)) = self.pending_dials.remove(&connection_id) {
                    let _ = reply.send(Ok(peer_id));
                }
                for (_, reply) in self.waiting_dials.remove(&peer_id).unwrap_or_default() {
                    let _ = reply.send(Ok(peer_id));
                }
                if self.redial.is_wanted(&peer_id) && num_established.get() == 1 {
                    // Fill the routing table from a bootstrap peer.
                    let _ = self.swarm.behaviour_mut().kad.bootstrap();
                }
                self.redial.connected(&peer_id);
                let addr = endpoint.get_remote_address().clone();
                if let ConnectedPoint::Dialer { address, .. } = &endpoint {
                    self.note_peer_addrs(peer_id, std::slice::from_ref(address));
                }
                self.note_connection(peer_id, connection_id, &endpoint);
                if num_established.get() == 1 {
                    tracing::debug!(peer = %peer_id, %addr, "connected");
                    self.events.send(OverlayEvent::PeerConnected {
                        peer: peer_id,
                        addr,
                    });
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                if self
                    .restarts
                    .closed(&peer_id, connection_id, Instant::now())
                {
                    tracing::debug!(peer = %peer_id, "old connections closed; connecting to the peer again");
                    self.swarm.behaviour_mut().blocked.unblock_peer(peer_id);
                    // It may not redial us (a peer found by mDNS, or two
                    // peers that dialled each other at once): we do, with
                    // the addresses we dialled or it announced, and those
                    // the behaviours know (Kademlia).
                    let addrs = self.peer_addrs.get(&peer_id).cloned().unwrap_or_default();
                    let opts = DialOpts::peer_id(peer_id)
                        .addresses(addrs)
                        .extend_addresses_through_behaviour()
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .build();
                    if let Err(err) = self.swarm.dial(opts) {
                        tracing::debug!(peer = %peer_id, %err, "no redial after the reset");
                    }
                }
                if num_established == 0 {
                    tracing::debug!(peer = %peer_id, "disconnected");
                    self.redial.disconnected(&peer_id, Instant::now());
                    self.rate.remove(&peer_id);
                    self.peer_addrs.remove(&peer_id);
                    self.events
                        .send(OverlayEvent::PeerDisconnected { peer: peer_id });
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                if let Some((_, reply)) = self.pending_dials.remove(&connection_id) {
                    let _ = reply.send(Err(OverlayError::Dial {
                        target: peer_id.map_or_else(|| "peer".to_owned(), |peer| peer.to_string()),
                        reason: error.to_string(),
                    }));
                }
                if let Some(peer) = peer_id
                    && !self.swarm.is_connected(&peer)
                {
                    self.redial.failed(&peer, Instant::now());
                    for (_, reply) in self.waiting_dials.remove(&peer).unwrap_or_default() {
                        let _ = reply.send(Err(OverlayError::Dial {
                            target: peer.to_string(),
                            reason: error.to_string(),
                        }));
                    }
                }
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                if let Some(addr) = self.circuit_listeners.remove(&listener_id) {
                    tracing::info!(%addr, ?reason, "relay listener closed; listening again shortly");
                    if let Some(relay) = relay_of(&addr) {
                        self.reservations.remove(&relay);
                    }
                    self.relisten.push((Instant::now() + RELISTEN_DELAY, addr));
                }
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                tracing::info!(%address, "external address confirmed");
            }
            _ => {}
        }
    }

    /// Tracks a new connection; when the peer seems back from a restart
    /// (`restarts.rs`), closes all its connections so that its redial is a
    /// first connection, on which gossipsub announces our subscriptions.
    fn note_connection(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        endpoint: &ConnectedPoint,
    ) {
        let path = if endpoint.is_relayed() {
            Path::Relayed
        } else {
            Path::Direct
        };
        let verdict = self.restarts.established(
            peer,
            connection,
            path,
            endpoint.is_listener(),
            Instant::now(),
        );
        if verdict == Verdict::Reset {
            tracing::debug!(%peer, "a peer connected again while its old connection is open; reconnecting it afresh");
            self.swarm.behaviour_mut().blocked.block_peer(peer);
        }
    }

    /// Records in the address book that `peer` is in `server`'s topic, with
    /// the addresses we know for it.
    fn remember_server_peer(&mut self, server: ServerId, peer: PeerId) {
        let addrs = self.peer_addrs.get(&peer).cloned().unwrap_or_default();
        self.address_book
            .remember(Some(server), peer, &addrs, self.config.clock.now_ms());
    }

    fn note_peer_addrs(&mut self, peer: PeerId, addrs: &[Multiaddr]) {
        let known = self.peer_addrs.entry(peer).or_default();
        for addr in addrs {
            if !known.contains(addr) {
                known.insert(0, addr.clone());
            }
        }
        known.truncate(MAX_PEER_ADDRS);
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                let addrs: Vec<Multiaddr> = info
                    .listen_addrs
                    .iter()
                    .filter(|addr| !is_relayed(addr))
                    .take(MAX_PEER_ADDRS)
                    .cloned()
                    .collect();
                if info.protocols.contains(&KAD_PROTOCOL) {
                    for addr in &addrs {
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&peer_id, addr.clone());
                    }
                }
                self.note_peer_addrs(peer_id, &addrs);
                if self.redial.is_wanted(&peer_id) {
                    self.address_book
                        .remember(None, peer_id, &addrs, self.config.clock.now_ms());
                }
                // Servers whose topic this peer joined before we knew where
                // it listens.
                let servers: Vec<ServerId> = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .all_peers()
                    .filter(|(peer, _)| **peer == peer_id)
                    .flat_map(|(_, topics)| {
                        topics
                            .iter()
                            .filter_map(|topic| self.subscriptions.get(*topic).copied())
                            .collect::<Vec<_>>()
                    })
                    .collect();
                for server in servers {
                    self.remember_server_peer(server, peer_id);
                }
            }
            BehaviourEvent::Gossipsub(event) => self.on_gossip_event(event),
            BehaviourEvent::Kad(event) => self.on_kad_event(event),
            BehaviourEvent::Sync(event) => self.on_sync_event(event),
            BehaviourEvent::Directory(event) => self.on_directory_event(event),
            BehaviourEvent::Autonat(autonat::Event::StatusChanged { new, .. }) => {
                self.nat = match new {
                    autonat::NatStatus::Public(addr) => NatStatus::Public(addr),
                    autonat::NatStatus::Private => NatStatus::Private,
                    autonat::NatStatus::Unknown => NatStatus::Unknown,
                };
                self.events.send(OverlayEvent::NatChanged(self.nat.clone()));
            }
            BehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                ..
            }) => {
                tracing::info!(relay = %relay_peer_id, "relay reservation accepted");
                self.reservations.insert(relay_peer_id);
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, addr.clone());
                    let opts = DialOpts::peer_id(peer)
                        .addresses(vec![addr])
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .build();
                    let _ = self.swarm.dial(opts);
                }
            }
            _ => {}
        }
    }

    fn on_gossip_event(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let Some(server) = self.subscriptions.get(&message.topic).copied() else {
                    self.report(&message_id, &propagation_source, MessageAcceptance::Ignore);
                    return;
                };
                // Cheap structural check here; signatures and membership
                // are the node's to judge.
                if messaging_proto::GossipMessage::from_bytes(&message.data).is_err() {
                    self.report(&message_id, &propagation_source, MessageAcceptance::Reject);
                    return;
                }
                let delivered = self.events.send(OverlayEvent::Gossip {
                    server,
                    source: propagation_source,
                    id: message_id.clone(),
                    data: Bytes::from(message.data),
                });
                if !delivered {
                    // The node is behind: drop without penalty; sync repairs it.
                    self.report(&message_id, &propagation_source, MessageAcceptance::Ignore);
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic, .. } => {
                if let Some(server) = self.subscriptions.get(&topic).copied() {
                    self.remember_server_peer(server, peer_id);
                    self.events.send(OverlayEvent::PeerSubscribed {
                        peer: peer_id,
                        server,
                    });
                }
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                if let Some(server) = self.subscriptions.get(&topic).copied() {
                    self.events.send(OverlayEvent::PeerUnsubscribed {
                        peer: peer_id,
                        server,
                    });
                }
            }
            _ => {}
        }
    }

    fn report(
        &mut self,
        id: &gossipsub::MessageId,
        source: &PeerId,
        acceptance: MessageAcceptance,
    ) {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, source, acceptance);
    }

    fn on_kad_event(&mut self, event: kad::Event) {
        match event {
            kad::Event::InboundRequest { request } => match request {
                InboundRequest::PutRecord {
                    source,
                    record: Some(record),
                    ..
                } => self.store_offered_record(source, record),
                InboundRequest::AddProvider {
                    record: Some(record),
                } => match records::validate_provider(&record) {
                    Ok(()) => {
                        if let Err(err) = self
                            .swarm
                            .behaviour_mut()
                            .kad
                            .store_mut()
                            .add_provider(record)
                        {
                            tracing::debug!(%err, "provider record not stored");
                        }
                    }
                    Err(err) => tracing::debug!(%err, "provider record refused"),
                },
                _ => {}
            },
            kad::Event::OutboundQueryProgressed {
                id,
                result,
                step,
                stats,
            } => match result {
                QueryResult::GetRecord(result) => {
                    let Some(query) = self.pending_gets.get_mut(&id) else {
                        return;
                    };
                    let mut finished = step.last;
                    match result {
                        Ok(GetRecordOk::FoundRecord(found)) => {
                            let now = self.config.clock.now_ms();
                            let rejection =
                                match records::validate_advert_record(&found.record, now) {
                                    Ok(advert) if advert.advert().server_id == query.server => {
                                        let newer = query.best.as_ref().is_none_or(|best| {
                                            best.advert().seq < advert.advert().seq
                                        });
                                        if newer {
                                            query.best = Some(advert);
                                        }
                                        None
                                    }
                                    Ok(_) => Some(ProtoError::AdvertServerMismatch),
                                    Err(RecordRejection::InvalidAdvert(err)) => Some(err),
                                    Err(RecordRejection::TooLarge(size)) => {
                                        Some(ProtoError::TooLarge {
                                            what: "advert record",
                                            size,
                                            limit: MAX_SIGNED_ADVERT_BYTES,
                                        })
                                    }
                                    // Not returned for a lookup of an advert key.
                                    Err(
                                        RecordRejection::UnknownKey | RecordRejection::BadProvider,
                                    ) => Some(ProtoError::AdvertServerMismatch),
                                };
                            if let Some(err) = rejection {
                                query.rejected += 1;
                                tracing::debug!(peer = ?found.peer, %err, "invalid advert record discarded");
                                query.last_rejection = Some(err);
                            }
                        }
                        Ok(GetRecordOk::FinishedWithNoAdditionalRecord { .. }) | Err(_) => {
                            finished = true
                        }
                    }
                    if finished && let Some(mut query) = self.pending_gets.remove(&id) {
                        if let Some(mut kad_query) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                            kad_query.finish();
                        }
                        let result = match (query.best.take(), query.last_rejection.take()) {
                            (Some(advert), _) => Ok(AdvertLookup {
                                advert,
                                requests: stats.num_requests(),
                                rejected: query.rejected,
                                duration: query.started.elapsed(),
                            }),
                            // Found, but none verifies here (e.g. our clock
                            // is far from the owner's): say why.
                            (None, Some(err)) => Err(OverlayError::AdvertRejected {
                                server: query.server,
                                error: Box::new(err),
                            }),
                            (None, None) => Err(OverlayError::AdvertNotFound(query.server)),
                        };
                        let _ = query.reply.send(result);
                    }
                }
                QueryResult::PutRecord(result) => {
                    if let Some(reply) = self.pending_puts.remove(&id) {
                        let result = match result {
                            Ok(_) => Ok(()),
                            // Stored locally; nobody else reachable yet. The
                            // record is republished periodically.
                            Err(PutRecordError::QuorumFailed { .. }) => Ok(()),
                            Err(err) => Err(OverlayError::Dht(err.to_string())),
                        };
                        let _ = reply.send(result);
                    }
                }
                QueryResult::GetProviders(result) => {
                    let Some((found, _)) = self.pending_providers.get_mut(&id) else {
                        return;
                    };
                    let mut finished = step.last;
                    match result {
                        Ok(GetProvidersOk::FoundProviders { providers, .. }) => {
                            found.extend(providers)
                        }
                        Ok(GetProvidersOk::FinishedWithNoAdditionalRecord { .. }) | Err(_) => {
                            finished = true
                        }
                    }
                    if finished && let Some((found, reply)) = self.pending_providers.remove(&id) {
                        let mut providers: Vec<PeerId> = found.into_iter().collect();
                        providers.sort();
                        let _ = reply.send(Ok(providers));
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }

    /// A peer offers a record for our store: keep it only if it verifies
    /// and is not older than what we hold.
    fn store_offered_record(&mut self, source: PeerId, mut record: Record) {
        let now = self.config.clock.now_ms();
        let advert = match records::validate_advert_record(&record, now) {
            Ok(advert) => advert,
            Err(err) => {
                tracing::debug!(peer = %source, %err, "DHT record refused");
                return;
            }
        };
        let store = self.swarm.behaviour_mut().kad.store_mut();
        if let Some(existing) = store.get(&record.key) {
            let existing_seq = SignedAdvert::from_bytes(&existing.value, now)
                .map(|known| known.advert().seq)
                .ok();
            if existing_seq.is_some_and(|seq| seq > advert.advert().seq) {
                return;
            }
        }
        record.expires = expiry_instant(advert.advert().expires_at_ms, now);
        if let Err(err) = store.put(record) {
            tracing::debug!(%err, "DHT record not stored");
        }
    }

    fn on_sync_event(&mut self, event: request_response::Event<WireRequest, Bytes>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    self.on_sync_request(peer, request, channel);
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some((peer, reply)) = self.pending_sync.remove(&request_id) {
                        let result = SyncResponse::from_bytes(&response).map_err(|error| {
                            OverlayError::InvalidResponse {
                                peer: Box::new(peer),
                                error: Box::new(error),
                            }
                        });
                        let _ = reply.send(result);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some((_, reply)) = self.pending_sync.remove(&request_id) {
                    let _ = reply.send(Err(OverlayError::Request {
                        peer: Box::new(peer),
                        reason: error.to_string(),
                    }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound sync request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn respond_now(&mut self, channel: ResponseChannel<Bytes>, response: &SyncResponse) {
        let _ = self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, Bytes::from(response.to_bytes()));
    }

    fn on_sync_request(
        &mut self,
        peer: PeerId,
        request: WireRequest,
        channel: ResponseChannel<Bytes>,
    ) {
        let bytes = match request {
            WireRequest::Message(bytes) => bytes,
            WireRequest::Oversized { len } => {
                let message = format!("request of {len} bytes is over the limit");
                self.respond_now(
                    channel,
                    &SyncResponse::error(SyncErrorCode::Malformed, &message),
                );
                return;
            }
        };
        let now = Instant::now();
        let (rate, burst) = (
            self.config.sync_requests_per_second,
            self.config.sync_request_burst,
        );
        let bucket = self
            .rate
            .entry(peer)
            .or_insert_with(|| TokenBucket::new(burst, now));
        if let Err(wait) = bucket.take(rate, burst, now) {
            let mut response =
                SyncResponse::error(SyncErrorCode::RateLimited, "too many sync requests");
            if let SyncResponse::Error(error) = &mut response {
                error.retry_after_ms =
                    Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1));
            }
            self.respond_now(channel, &response);
            return;
        }
        let request = match SyncRequest::from_bytes(&bytes) {
            Ok(request) => request,
            Err(err) => {
                self.respond_now(
                    channel,
                    &SyncResponse::error(SyncErrorCode::Malformed, &err.to_string()),
                );
                return;
            }
        };
        if self.inbound_sync.len() >= MAX_INBOUND_PENDING {
            let mut response = SyncResponse::error(SyncErrorCode::RateLimited, "busy");
            if let SyncResponse::Error(error) = &mut response {
                error.retry_after_ms = Some(1000);
            }
            self.respond_now(channel, &response);
            return;
        }
        self.next_token += 1;
        let token = InboundToken(self.next_token);
        if self.events.send(OverlayEvent::SyncRequest {
            peer,
            request,
            token,
        }) {
            self.inbound_sync.insert(
                token,
                Inbound {
                    since: now,
                    channel,
                },
            );
        } else {
            let mut response = SyncResponse::error(SyncErrorCode::RateLimited, "busy");
            if let SyncResponse::Error(error) = &mut response {
                error.retry_after_ms = Some(1000);
            }
            self.respond_now(channel, &response);
        }
    }

    fn on_directory_event(&mut self, event: request_response::Event<WireRequest, Bytes>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let response = match request {
                        WireRequest::Message(bytes) => match DirectoryRequest::from_bytes(&bytes) {
                            Ok(request) => self.directory_page(&request),
                            Err(err) => {
                                tracing::debug!(%peer, %err, "malformed directory request");
                                DirectoryResponse {
                                    adverts: Vec::new(),
                                    more: false,
                                }
                            }
                        },
                        WireRequest::Oversized { .. } => DirectoryResponse {
                            adverts: Vec::new(),
                            more: false,
                        },
                    };
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .directory
                        .send_response(channel, Bytes::from(response.to_bytes()));
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some((peer, reply)) = self.pending_directory.remove(&request_id) {
                        let result = DirectoryResponse::from_bytes(&response).map_err(|error| {
                            OverlayError::InvalidResponse {
                                peer: Box::new(peer),
                                error: Box::new(error),
                            }
                        });
                        let _ = reply.send(result);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some((_, reply)) = self.pending_directory.remove(&request_id) {
                    let _ = reply.send(Err(OverlayError::Request {
                        peer: Box::new(peer),
                        reason: error.to_string(),
                    }));
                }
            }
            _ => {}
        }
    }

    fn directory_page(&self, request: &DirectoryRequest) -> DirectoryResponse {
        let now = self.config.clock.now_ms();
        let mut adverts = self
            .directory
            .iter()
            .filter(|advert| advert.advert().expires_at_ms > now)
            .filter(|advert| {
                request
                    .after_server
                    .is_none_or(|after| advert.advert().server_id > after)
            });
        let limit = usize::try_from(request.limit).unwrap_or(usize::MAX);
        let page: Vec<Bytes> = adverts
            .by_ref()
            .take(limit)
            .map(|advert| Bytes::from(advert.to_bytes()))
            .collect();
        let more = adverts.next().is_some();
        DirectoryResponse {
            adverts: page,
            more,
        }
    }
}

/// The peer id at the end of an address (`…/p2p/<peer id>`).
pub(crate) fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().last().and_then(|protocol| match protocol {
        Protocol::P2p(peer) => Some(peer),
        _ => None,
    })
}

/// The relay named in a circuit address (`…/p2p/<relay>/p2p-circuit`).
fn relay_of(addr: &Multiaddr) -> Option<PeerId> {
    let mut relay = None;
    for protocol in addr.iter() {
        match protocol {
            Protocol::P2p(peer) => relay = Some(peer),
            Protocol::P2pCircuit => return relay,
            _ => {}
        }
    }
    None
}

fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter()
        .any(|protocol| matches!(protocol, Protocol::P2pCircuit))
}

/// The local instant at which a record expiring at `expires_at_ms` (wall
/// time) expires, judged by our clock reading `now_ms`.
fn expiry_instant(expires_at_ms: u64, now_ms: u64) -> Option<Instant> {
    let remaining = expires_at_ms.saturating_sub(now_ms);
    Instant::now().checked_add(Duration::from_millis(remaining))
}
