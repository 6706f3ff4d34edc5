//! The baseline: the same members, links and traffic over bare libp2p
//! gossipsub — no ledger, no encryption, no sync, no churn — so a report can
//! show our latency beside what the transport and gossip alone give, in the
//! same run.
//!
//! Each baseline node is a swarm with only gossipsub (configured like the
//! overlay's: anonymous, content-hash ids, the same mesh parameters and
//! heartbeat) on its own one-thread runtime, over the same link model.
//! Members dial the bootstrap nodes and up to six random earlier members
//! (seeded), a random graph like the one the overlay's discovery builds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, Swarm};
use net_overlay::TransportConfig;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use tokio::sync::mpsc;

use crate::cluster::SimError;
use crate::link::LinkNet;
use crate::metrics::{Percentiles, Recorder, SummaryInput, message_text};
use crate::scenario::Scenario;

/// Other members each member dials.
const DIAL_MEMBERS: usize = 6;

/// What the baseline measured.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Baseline {
    /// Messages published.
    pub messages: u64,
    /// Delivered within the deadline (every member stays online).
    pub deadline_delivery: f64,
    /// Delivered by the end.
    pub eventual_delivery: f64,
    /// Publish → received, milliseconds.
    pub latency_ms: Percentiles,
    /// Gossip copies received beyond the first (gossipsub's counters).
    #[serde(default)]
    pub duplicates: Option<crate::metrics::Duplicates>,
}

struct BaseNode {
    runtime: tokio::runtime::Runtime,
    metrics: net_overlay::SharedRegistry,
    publish: mpsc::Sender<Vec<u8>>,
    addr: Multiaddr,
}

fn start_node(
    net: &LinkNet,
    gossip: &net_overlay::GossipConfig,
    index: u32,
    member: Option<u32>,
    dial: Vec<Multiaddr>,
    recorder: Arc<Recorder>,
) -> Result<BaseNode, SimError> {
    let fail = |message: String| SimError::Start {
        node: format!("baseline-{index}"),
        message,
    };
    let runtime = crate::cluster::peer_runtime(&format!("base-{index}"))
        .map_err(|err| fail(err.to_string()))?;
    let keypair = libp2p::identity::Keypair::generate_ed25519();
    let peer_id = keypair.public().to_peer_id();
    let TransportConfig::Custom(factory) = net.transport(index) else {
        return Err(fail("the link model is not a custom transport".into()));
    };
    let transport = factory(&keypair).map_err(|err| fail(err.to_string()))?;
    let config = net_overlay::gossipsub_config(gossip)
        .build()
        .map_err(|err| fail(err.to_string()))?;
    let metrics = net_overlay::SharedRegistry::default();
    let mut behaviour: gossipsub::Behaviour =
        gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, config)
            .map_err(|err| fail(err.to_string()))?
            .with_metrics(
                metrics.lock().sub_registry_with_prefix("gossipsub"),
                gossipsub::MetricsConfig::default(),
            );
    behaviour
        .subscribe(&IdentTopic::new("baseline"))
        .map_err(|err| fail(err.to_string()))?;
    let (publish, mut commands) = mpsc::channel::<Vec<u8>>(4096);
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    runtime.spawn(async move {
        let mut swarm = Swarm::new(
            transport,
            behaviour,
            peer_id,
            libp2p::swarm::Config::with_tokio_executor()
                .with_idle_connection_timeout(Duration::from_secs(3600)),
        );
        if swarm
            .listen_on(Multiaddr::empty().with(libp2p::multiaddr::Protocol::Memory(0)))
            .is_err()
        {
            return;
        }
        for addr in dial {
            let _ = swarm.dial(addr);
        }
        let topic = IdentTopic::new("baseline");
        loop {
            tokio::select! {
                event = swarm.select_next_some() => match event {
                    SwarmEvent::NewListenAddr { address, .. } => {
                        let _ = addr_tx.send(address.with(libp2p::multiaddr::Protocol::P2p(peer_id)));
                    }
                    SwarmEvent::Behaviour(gossipsub::Event::Message { message, .. }) => {
                        if let (Some(member), Ok(text)) = (member, std::str::from_utf8(&message.data)) {
                            recorder.received(member, text, false);
                        }
                    }
                    _ => {}
                },
                command = commands.recv() => match command {
                    Some(data) => {
                        let _ = swarm.behaviour_mut().publish(topic.clone(), data);
                    }
                    None => break,
                },
            }
        }
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| fail("no listen address".into()))?;
    Ok(BaseNode {
        runtime,
        metrics,
        publish,
        addr,
    })
}

/// Runs the baseline of `scenario`: set-up, the scenario's traffic (same
/// seed, so the same sends), then a drain of `drain_s`.
pub fn run(scenario: &Scenario) -> Result<Baseline, SimError> {
    let gossip = scenario.gossip.config();
    let recorder = Arc::new(Recorder::default());
    let net = LinkNet::new(scenario.link.clone(), scenario.seed);
    let mut rng = StdRng::seed_from_u64(scenario.seed ^ 0xBA5E);
    let mut boot_addrs = Vec::new();
    let mut nodes = Vec::new();
    for index in 0..scenario.bootstrap_nodes {
        let node = start_node(
            &net,
            &gossip,
            index,
            None,
            boot_addrs.clone(),
            recorder.clone(),
        )?;
        boot_addrs.push(node.addr.clone());
        nodes.push(node);
    }
    let mut members: Vec<BaseNode> = Vec::new();
    for member in 0..scenario.members {
        let mut dial = boot_addrs.clone();
        let earlier: Vec<Multiaddr> = members.iter().map(|node| node.addr.clone()).collect();
        dial.extend(earlier.sample(&mut rng, DIAL_MEMBERS).cloned());
        let node = start_node(
            &net,
            &gossip,
            scenario.bootstrap_nodes + member,
            Some(member),
            dial,
            recorder.clone(),
        )?;
        members.push(node);
    }
    // Let the meshes form (a few heartbeats).
    std::thread::sleep(Duration::from_secs(5));

    // The same sends as the real run (same seed, same draws).
    let sends = scenario.send_schedule(&mut StdRng::seed_from_u64(scenario.seed));
    let start = Instant::now();
    // Bare gossipsub has no direct messages: the baseline carries the
    // channel traffic only.
    for (id, send) in sends.iter().enumerate() {
        if send.dm_to.is_some() {
            continue;
        }
        let due = start + Duration::from_secs_f64(send.at_s);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let id = id as u64 + 1;
        let now = Instant::now();
        recorder.sending(id, send.sender, now);
        recorder.acked(id, now);
        let _ = members[send.sender as usize]
            .publish
            .try_send(message_text(id, send.size).into_bytes());
    }
    let drain = Duration::from_secs_f64(scenario.drain_s.min(30.0));
    let all: Vec<u32> = (0..scenario.members).collect();
    let end_by = Instant::now() + drain;
    while Instant::now() < end_by && !recorder.all_delivered_to(&all) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let summary = recorder.summarize(&SummaryInput {
        start,
        end: Instant::now(),
        members: scenario.members,
        deadline_ms: scenario.deadline_ms,
        link_delay_ms: scenario.link.latency_ms,
        last_disturbance: None,
    });
    let counts: Vec<(u64, u64)> = members
        .iter()
        .chain(nodes.iter())
        .map(|node| crate::metrics::gossip_counts(&node.metrics.lock()))
        .collect();
    for node in members.into_iter().chain(nodes) {
        drop(node.publish);
        node.runtime.shutdown_timeout(Duration::from_secs(1));
    }
    Ok(Baseline {
        messages: summary.messages_acked,
        deadline_delivery: summary.deadline_delivery,
        eventual_delivery: summary.eventual_delivery,
        latency_ms: summary.latency_ms,
        duplicates: crate::metrics::Duplicates::from_counts(&counts),
    })
}
