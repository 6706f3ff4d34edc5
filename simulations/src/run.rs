//! Running a scenario: set up the server, play the traffic and churn
//! schedule in real time, drain, measure.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use net_overlay::Multiaddr;

use node::api::{Request, Response};
use rand::RngExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use serde::{Deserialize, Serialize};

use crate::cluster::{NodeSettings, SimError, SimNode};
use crate::discovery::DiscoveryResult;
use crate::link::LinkNet;
use crate::metrics::{Duplicates, Lag, Recorder, Summary, SummaryInput, message_text};
use crate::scenario::{ChurnAction, ChurnEvent, PlannedSend, Scenario};
use crate::spam::Outsider;

/// How many members join at once during set-up.
const JOIN_BATCH: usize = 8;

/// Everything a run produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResult {
    /// The scenario as run.
    pub scenario: Scenario,
    /// Set-up time: nodes started, server created, every member joined.
    pub setup_s: f64,
    /// Delivery and latency.
    pub summary: Summary,
    /// Seconds from the end of the traffic (or the last churn event, if
    /// later) until every live member held the same entries and state and
    /// every acknowledged message; None if that never happened before the
    /// drain ended.
    pub convergence_s: Option<f64>,
    /// Bytes the links carried per acknowledged message and per node.
    pub bytes_per_message_per_node: f64,
    /// Peak resident memory of the whole process divided by the nodes.
    pub peak_memory_per_node_mb: f64,
    /// Gossip copies received beyond the first, per first copy
    /// (gossipsub's own counters), over all nodes and per node.
    pub duplicates: Option<Duplicates>,
    /// Once a second: (seconds into the run, share of live members holding
    /// the most common (entries, state hash), how many different ones).
    pub convergence_timeline: Vec<(f64, f64, usize)>,
    /// How late the harness ran its scheduled steps.
    pub schedule_lag: Lag,
    /// What the discovery probes found, when the scenario has them.
    #[serde(default)]
    pub discovery: Option<DiscoveryResult>,
    /// Hostile messages sent, when the scenario has spam.
    #[serde(default)]
    pub spam: Option<SpamCounts>,
    /// When convergence was not reached: each live member's (name,
    /// entries, entries held back waiting for others, state hash) at the
    /// end, to see who differs.
    pub divergence: Vec<(String, u64, usize, String)>,
    /// The bare-gossipsub baseline of the same scenario, when asked for.
    pub baseline: Option<crate::baseline::Baseline>,
    /// Threshold checks: (what, passed, detail).
    pub checks: Vec<Check>,
}

/// Hostile messages a run sent.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SpamCounts {
    /// Valid messages the flooding members sent.
    pub flood_messages: u64,
    /// Invalid gossip messages the outsiders published.
    pub outsider_messages: u64,
}

/// Hostile traffic under way.
struct SpamRun {
    outsiders: Vec<Outsider>,
    flooded: Arc<AtomicU64>,
}

impl SpamRun {
    /// Stops the outsiders and counts what was sent.
    fn stop(mut self) -> SpamCounts {
        let mut outsider_messages = 0;
        for outsider in &mut self.outsiders {
            outsider.stop();
            outsider_messages += outsider.sent.load(Ordering::Relaxed);
        }
        SpamCounts {
            flood_messages: self.flooded.load(Ordering::Relaxed),
            outsider_messages,
        }
    }
}

/// Starts the scenario's hostile traffic: outsiders flooding the topic with
/// invalid gossip, and the last members flooding valid messages, both
/// until the traffic phase ends.
fn start_spam(
    scenario: &Scenario,
    net: &LinkNet,
    server: &str,
    members: &[SimNode],
    boot_addrs: &[Multiaddr],
) -> Result<Option<SpamRun>, SimError> {
    let Some(spam) = &scenario.spam else {
        return Ok(None);
    };
    let server_id: messaging_proto::ServerId = server.parse().map_err(|_| SimError::Setup {
        step: "start the spam".into(),
        message: format!("bad server id {server}"),
    })?;
    let mut rng = StdRng::seed_from_u64(scenario.seed ^ 0x5350_414d);
    let member_addrs: Vec<Multiaddr> = members.iter().filter_map(|n| n.addr.clone()).collect();
    let first_index = scenario.bootstrap_nodes + scenario.members;
    let mut outsiders = Vec::new();
    for i in 0..spam.outsiders {
        let mut dial = boot_addrs.to_vec();
        dial.extend(member_addrs.sample(&mut rng, 6).cloned());
        outsiders.push(Outsider::start(
            net,
            first_index + i,
            server_id,
            dial,
            spam.outsider_rate_per_s,
            rng.random(),
        )?);
    }
    let flooded = Arc::new(AtomicU64::new(0));
    let until = Duration::from_secs_f64(scenario.duration_s);
    let period = Duration::from_secs_f64(1.0 / spam.flood_rate_per_s.max(0.001));
    for node in members.iter().rev().take(spam.flooders as usize) {
        let Some(handle) = node.handle().cloned() else {
            continue;
        };
        let (server, flooded) = (server.to_owned(), flooded.clone());
        node.spawn(async move {
            let deadline = tokio::time::Instant::now() + until;
            let mut ticker = tokio::time::interval(period);
            for n in 0u64.. {
                ticker.tick().await;
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
                let request = Request::Send {
                    server: server.clone(),
                    channel: channel_name(0),
                    text: format!("flood|{n}|{}", "x".repeat(200)),
                    client_txn_id: None,
                    reply_to: None,
                };
                // Not awaited one by one: a flooder does not wait for its
                // own node's durable acknowledgement before the next send.
                let (handle, flooded) = (handle.clone(), flooded.clone());
                tokio::spawn(async move {
                    if handle.request(request).await.is_ok() {
                        flooded.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
    }
    Ok(Some(SpamRun { outsiders, flooded }))
}

/// One threshold check.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Check {
    /// What is checked.
    pub what: String,
    /// Whether it held.
    pub passed: bool,
    /// Measured against required.
    pub detail: String,
}

impl RunResult {
    /// Whether every threshold held.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|check| check.passed)
    }
}

/// What happens at a moment of the schedule.
enum Step {
    Send(PlannedSend),
    Churn(ChurnEvent),
    Return(u32),
}

/// Runs `scenario` with its nodes' data under `work`.
pub fn run(
    scenario: &Scenario,
    work: &std::path::Path,
    progress: bool,
) -> Result<RunResult, SimError> {
    let recorder = Arc::new(Recorder::default());
    let net = LinkNet::new(scenario.link.clone(), scenario.seed);
    let settings = NodeSettings {
        timers: scenario.timers.node_timers(),
        gossip: scenario.gossip.config(),
    };
    let bootstraps = scenario.bootstrap_nodes;
    // Link-model index: bootstrap nodes first, then members.
    let mut boot: Vec<SimNode> = (0..bootstraps)
        .map(|i| SimNode::new(i, format!("boot-{i}"), work, true))
        .collect();
    let mut members: Vec<SimNode> = (0..scenario.members)
        .map(|m| SimNode::new(bootstraps + m, format!("member-{m}"), work, false))
        .collect();

    let setup_started = Instant::now();
    let mut boot_addrs: Vec<Multiaddr> = Vec::new();
    for node in &mut boot {
        node.start(&net, boot_addrs.clone(), &settings, &recorder, None)?;
        boot_addrs.extend(node.addr.clone());
    }
    let server = set_up_server(
        scenario,
        &net,
        &settings,
        &recorder,
        &mut members,
        &boot_addrs,
    )?;
    let setup_s = setup_started.elapsed().as_secs_f64();

    let spam = start_spam(scenario, &net, &server, &members, &boot_addrs)?;
    // Flooding members (the last ones) are hostile: delivery to them and
    // their convergence are not what the figures judge.
    let honest =
        (scenario.members - scenario.spam.as_ref().map_or(0, |spam| spam.flooders)) as usize;

    // The schedule: Poisson sends per sender, churn events.
    let mut rng = StdRng::seed_from_u64(scenario.seed);
    let mut schedule: Vec<(f64, Step)> = scenario
        .send_schedule(&mut rng)
        .into_iter()
        .map(|send| (send.at_s, Step::Send(send)))
        .collect();
    for (at, event) in scenario.churn_schedule() {
        schedule.push((at, Step::Churn(event)));
    }
    schedule.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut schedule: std::collections::VecDeque<(f64, Step)> = schedule.into();

    let total = scenario.duration_s + scenario.drain_s;
    let bar = if progress {
        let bar = ProgressBar::new((total * 10.0) as u64);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} {msg} [{elapsed_precise}] {wide_bar} {percent}%",
        ) {
            bar.set_style(style);
        }
        bar.set_message(scenario.name.clone());
        bar
    } else {
        ProgressBar::hidden()
    };

    let start = Instant::now();
    let mut next_id = 0u64;
    let mut last_disturbance = 0.0f64;
    let mut disturbed_at: Option<Instant> = None;
    let mut returns: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    let mut converged_at: Option<f64> = None;
    let mut last_convergence_check = Instant::now();
    let timeline = Timeline::default();
    let mut next_sample = 0.0f64;
    let mut lateness_ms: Vec<f64> = Vec::new();
    let end_of_drain = start + Duration::from_secs_f64(total);
    loop {
        let now_s = start.elapsed().as_secs_f64();
        bar.set_position((now_s * 10.0) as u64);
        // Members whose downtime is over come back.
        while let Some((&at_ms, _)) = returns.first_key_value() {
            if at_ms as f64 / 1e3 > now_s {
                break;
            }
            if let Some((_, list)) = returns.pop_first() {
                for member in list {
                    schedule.push_front((now_s, Step::Return(member)));
                }
            }
        }
        match schedule.front() {
            Some((at, _)) if *at <= now_s => {
                let Some((at, step)) = schedule.pop_front() else {
                    continue;
                };
                if !matches!(step, Step::Return(_)) {
                    lateness_ms.push((now_s - at).max(0.0) * 1e3);
                }
                match step {
                    Step::Send(planned) => {
                        next_id += 1;
                        let to = planned
                            .dm_to
                            .map(|to| members[to as usize].user_id().to_string());
                        send(
                            &members[planned.sender as usize],
                            &planned,
                            next_id,
                            &server,
                            to,
                            &recorder,
                        );
                    }
                    Step::Churn(event) => {
                        last_disturbance = last_disturbance.max(at);
                        disturbed_at = Some(Instant::now());
                        converged_at = None;
                        churn(
                            &event,
                            at,
                            &net,
                            &mut members,
                            &recorder,
                            &mut rng,
                            &mut returns,
                        );
                    }
                    Step::Return(member) => {
                        last_disturbance = last_disturbance.max(at);
                        disturbed_at = Some(Instant::now());
                        converged_at = None;
                        let node = &mut members[member as usize];
                        node.start(&net, boot_addrs.clone(), &settings, &recorder, Some(member))?;
                        recorder.up(member, Instant::now());
                        recorder.event(Instant::now(), format!("member-{member} back"));
                    }
                }
                continue;
            }
            _ => {}
        }
        if now_s >= next_sample {
            next_sample = now_s.floor() + 1.0;
            timeline.sample(now_s, &members[..honest], &server);
        }
        let traffic_over = now_s >= scenario.duration_s;
        if traffic_over
            && converged_at.is_none()
            && returns.is_empty()
            && schedule.is_empty()
            && last_convergence_check.elapsed() >= Duration::from_millis(250)
        {
            last_convergence_check = Instant::now();
            let online: Vec<u32> = (0..honest as u32)
                .filter(|m| members[*m as usize].is_up())
                .collect();
            if converged(&members[..honest], &server) && recorder.all_delivered_to(&online) {
                converged_at = Some(start.elapsed().as_secs_f64());
            }
        }
        if Instant::now() >= end_of_drain || converged_at.is_some() {
            break;
        }
        let wait = schedule
            .front()
            .map_or(0.05, |(at, _)| (at - now_s).clamp(0.0, 0.05));
        std::thread::sleep(Duration::from_secs_f64(wait));
    }
    let end = Instant::now();
    bar.finish_and_clear();
    let spam = spam.map(SpamRun::stop);
    let discovery = match &scenario.discovery {
        Some(probes) => {
            bar.println("probing discovery");
            let server_id = server.parse().map_err(|_| SimError::Setup {
                step: "probe discovery".into(),
                message: format!("bad server id {server}"),
            })?;
            let first =
                bootstraps + scenario.members + scenario.spam.as_ref().map_or(0, |s| s.outsiders);
            Some(crate::discovery::probe(
                &net,
                first,
                probes.visitors,
                server_id,
                &boot_addrs,
            )?)
        }
        None => None,
    };

    let summary = recorder.summarize(&SummaryInput {
        start,
        end,
        members: honest as u32,
        deadline_ms: scenario.deadline_ms,
        link_delay_ms: scenario.link.latency_ms,
        last_disturbance: disturbed_at,
    });
    let convergence_s = converged_at.map(|at| at - last_disturbance.max(scenario.duration_s));
    let nodes = f64::from(scenario.members + bootstraps);
    let bytes_per_message_per_node = if summary.messages_acked > 0 {
        net.bytes_carried() as f64 / summary.messages_acked as f64 / nodes
    } else {
        0.0
    };
    let peak_memory_per_node_mb = peak_rss_mb() / nodes;
    let counts: Vec<(u64, u64)> = members
        .iter()
        .chain(boot.iter())
        .map(SimNode::gossip_received)
        .collect();
    let duplicates = Duplicates::from_counts(&counts);
    let divergence = if convergence_s.is_none() {
        server_views(&members, &server)
    } else {
        Vec::new()
    };
    for node in members.iter_mut().chain(boot.iter_mut()) {
        node.leave();
    }
    let checks = check(scenario, &summary, convergence_s, discovery.as_ref());
    let baseline = if scenario.baseline {
        bar.println("running the bare-gossipsub baseline");
        Some(crate::baseline::run(scenario)?)
    } else {
        None
    };
    Ok(RunResult {
        scenario: scenario.clone(),
        setup_s,
        summary,
        convergence_s,
        bytes_per_message_per_node,
        peak_memory_per_node_mb,
        duplicates,
        convergence_timeline: timeline.points(),
        schedule_lag: Lag::from_samples(lateness_ms),
        spam,
        discovery,
        divergence,
        baseline,
        checks,
    })
}

/// How long a batch of joins may take before the set-up fails.
const JOIN_TIMEOUT: Duration = Duration::from_secs(300);

/// Starts the members; the first creates the server, its channels and an
/// invite; the others join with it.
fn set_up_server(
    scenario: &Scenario,
    net: &LinkNet,
    settings: &NodeSettings,
    recorder: &Arc<Recorder>,
    members: &mut [SimNode],
    boot_addrs: &[Multiaddr],
) -> Result<String, SimError> {
    let setup = |step: &str, message: String| SimError::Setup {
        step: step.to_owned(),
        message,
    };
    let owner = &mut members[0];
    owner.start(net, boot_addrs.to_vec(), settings, recorder, Some(0))?;
    let server = match owner.request(Request::CreateServer {
        name: scenario.name.clone(),
        description: scenario.description.clone(),
        public: scenario.discovery.is_some(),
    }) {
        Ok(Response::Server(detail)) => detail.server.server_id,
        other => return Err(setup("create the server", format!("{other:?}"))),
    };
    owner
        .request(Request::SetBootstrapPeers {
            server: server.clone(),
            peers: boot_addrs.iter().map(ToString::to_string).collect(),
        })
        .map_err(|err| setup("set the bootstrap peers", err))?;
    for channel in 1..scenario.traffic.channels {
        owner
            .request(Request::CreateChannel {
                server: server.clone(),
                name: channel_name(channel),
                topic: String::new(),
            })
            .map_err(|err| setup("create a channel", err))?;
    }
    let invite = match owner.request(Request::CreateInvite {
        server: server.clone(),
        expires_in_ms: None,
        max_uses: None,
    }) {
        Ok(Response::Invite(invite)) => invite.invite,
        other => return Err(setup("create an invite", format!("{other:?}"))),
    };
    for batch in (1..members.len()).collect::<Vec<_>>().chunks(JOIN_BATCH) {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        for &index in batch {
            let member = u32::try_from(index).unwrap_or(u32::MAX);
            let node = &mut members[index];
            node.start(net, boot_addrs.to_vec(), settings, recorder, Some(member))?;
            let Some(handle) = node.handle().cloned() else {
                continue;
            };
            let (invite, done_tx) = (invite.clone(), done_tx.clone());
            node.spawn(async move {
                let result = handle.request(Request::Join { invite }).await;
                let _ = done_tx.send((member, result.map(|_| ()).map_err(|err| err.message)));
            });
        }
        drop(done_tx);
        // A join that never answers fails the set-up instead of hanging it.
        loop {
            match done_rx.recv_timeout(JOIN_TIMEOUT) {
                Ok((member, result)) => {
                    result.map_err(|err| setup(&format!("member-{member} joins"), err))?;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    return Err(setup(
                        "join",
                        format!("a batch of joins did not finish within {JOIN_TIMEOUT:?}"),
                    ));
                }
            }
        }
    }
    // Everyone sees everyone before the traffic starts.
    let deadline = Instant::now() + Duration::from_secs(120);
    let expected = members.len();
    while !members.iter().all(|node| {
        matches!(
            node.request(Request::ServerInfo { server: server.clone() }),
            Ok(Response::Server(detail)) if detail.members.len() == expected
        )
    }) {
        if Instant::now() > deadline {
            return Err(setup(
                "wait for the members",
                "not every member sees every other".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(server)
}

fn channel_name(channel: u32) -> String {
    if channel == 0 {
        "general".to_owned()
    } else {
        format!("channel-{channel}")
    }
}

/// Sends a planned message (to `to`'s user id when it is a DM).
fn send(
    node: &SimNode,
    planned: &PlannedSend,
    id: u64,
    server: &str,
    to: Option<String>,
    recorder: &Arc<Recorder>,
) {
    let Some(handle) = node.handle().cloned() else {
        return;
    };
    recorder.sending_to(id, planned.sender, planned.dm_to, Instant::now());
    let recorder = recorder.clone();
    let text = message_text(id, planned.size);
    let request = match to {
        Some(user) => Request::DmSend {
            user,
            text,
            client_txn_id: None,
        },
        None => Request::Send {
            server: server.to_owned(),
            channel: channel_name(planned.channel),
            text,
            client_txn_id: None,
            reply_to: None,
        },
    };
    node.spawn(async move {
        match handle.request(request).await {
            Ok(Response::Sent(_)) => recorder.acked(id, Instant::now()),
            Ok(other) => recorder.send_failed(format!("unexpected answer {other:?}")),
            Err(err) => recorder.send_failed(err.code),
        }
    });
}

fn churn(
    event: &ChurnEvent,
    at: f64,
    net: &LinkNet,
    members: &mut [SimNode],
    recorder: &Arc<Recorder>,
    rng: &mut StdRng,
    returns: &mut BTreeMap<u64, Vec<u32>>,
) {
    let now = Instant::now();
    if event.action == ChurnAction::Heal {
        net.heal();
        recorder.event(now, "heal".into());
        return;
    }
    // Never the owner (member 0): it holds the invite and the roles.
    let mut online: Vec<u32> = (1..members.len() as u32)
        .filter(|m| members[*m as usize].is_up())
        .collect();
    online.shuffle(rng);
    let count = match (event.count, event.fraction) {
        (Some(count), _) => count as usize,
        (None, Some(fraction)) => ((online.len() + 1) as f64 * fraction).round() as usize,
        (None, None) => 0,
    }
    .min(online.len());
    let chosen: Vec<u32> = online.into_iter().take(count).collect();
    match event.action {
        ChurnAction::Crash | ChurnAction::Leave => {
            for member in &chosen {
                let node = &mut members[*member as usize];
                if event.action == ChurnAction::Crash {
                    node.crash();
                } else {
                    node.leave();
                }
                recorder.down(*member, Instant::now());
                if let Some(down) = event.down_s {
                    let back = ((at + down) * 1e3) as u64;
                    returns.entry(back).or_default().push(*member);
                }
            }
            let verb = if event.action == ChurnAction::Crash {
                "crash"
            } else {
                "leave"
            };
            recorder.event(now, format!("{verb} {}", chosen.len()));
        }
        ChurnAction::Partition => {
            let side: HashMap<u32, u32> = chosen
                .iter()
                .map(|member| (members[*member as usize].index, 1))
                .collect();
            net.split(side);
            recorder.event(now, format!("partition {}", chosen.len()));
        }
        ChurnAction::Heal => {}
    }
}

/// A member's (entries, entries held back, state hash) of `server`; None
/// when the node does not answer or does not hold the server.
fn server_view(node: &SimNode, server: &str) -> Option<(u64, usize, String)> {
    let Ok(Response::Status(status)) = node.request(Request::Status) else {
        return None;
    };
    let view = status.servers.into_iter().find(|s| s.server_id == server)?;
    Some((view.entries, view.pending, view.state_hash))
}

/// Each live member's (name, entries, entries held back, state hash).
fn server_views(members: &[SimNode], server: &str) -> Vec<(String, u64, usize, String)> {
    members
        .iter()
        .filter(|node| node.is_up())
        .map(|node| {
            let (entries, held, hash) =
                server_view(node, server).unwrap_or((0, 0, "unknown".to_owned()));
            (node.name.clone(), entries, held, hash)
        })
        .collect()
}

/// The convergence timeline, sampled without blocking the schedule: each
/// live node answers a status request on its own runtime and the answers
/// are tallied per sample.
#[derive(Default)]
struct Timeline {
    /// Per sample: (seconds, live members, members per (entries, state hash)).
    samples: Arc<parking_lot::Mutex<Vec<TimelineSample>>>,
}

type TimelineSample = (f64, usize, HashMap<(u64, String), usize>);

impl Timeline {
    /// Asks every live member for its view of `server` now.
    fn sample(&self, at_s: f64, members: &[SimNode], server: &str) {
        let live: Vec<&SimNode> = members.iter().filter(|node| node.is_up()).collect();
        let index = {
            let mut samples = self.samples.lock();
            samples.push((at_s, live.len(), HashMap::new()));
            samples.len() - 1
        };
        for node in live {
            let Some(handle) = node.handle().cloned() else {
                continue;
            };
            let (samples, server) = (self.samples.clone(), server.to_owned());
            node.spawn(async move {
                let Ok(Response::Status(status)) = handle.request(Request::Status).await else {
                    return;
                };
                if let Some(view) = status.servers.into_iter().find(|s| s.server_id == server) {
                    let mut samples = samples.lock();
                    if let Some((_, _, states)) = samples.get_mut(index) {
                        *states.entry((view.entries, view.state_hash)).or_default() += 1;
                    }
                }
            });
        }
    }

    /// (seconds, share of live members holding the most common (entries,
    /// state hash), how many different ones).
    fn points(&self) -> Vec<(f64, f64, usize)> {
        self.samples
            .lock()
            .iter()
            .map(|(at_s, live, states)| {
                let largest = states.values().copied().max().unwrap_or(0);
                let share = if *live == 0 {
                    0.0
                } else {
                    largest as f64 / *live as f64
                };
                (*at_s, share, states.len())
            })
            .collect()
    }
}

/// Whether every live member holds the same entries and state of `server`.
fn converged(members: &[SimNode], server: &str) -> bool {
    let mut first: Option<(u64, String)> = None;
    for node in members.iter().filter(|node| node.is_up()) {
        let Some((entries, _, hash)) = server_view(node, server) else {
            return false;
        };
        match &first {
            None => first = Some((entries, hash)),
            Some(seen) if *seen == (entries, hash) => {}
            Some(_) => return false,
        }
    }
    true
}

fn check(
    scenario: &Scenario,
    summary: &Summary,
    convergence_s: Option<f64>,
    discovery: Option<&DiscoveryResult>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let thresholds = &scenario.thresholds;
    if let Some(least) = thresholds.eventual_delivery {
        checks.push(Check {
            what: "eventual delivery".into(),
            passed: summary.eventual_delivery >= least,
            detail: format!("{:.4} (need ≥ {least})", summary.eventual_delivery),
        });
    }
    if let Some(least) = thresholds.deadline_delivery {
        checks.push(Check {
            what: "delivery within the deadline".into(),
            passed: summary.deadline_delivery >= least,
            detail: format!("{:.4} (need ≥ {least})", summary.deadline_delivery),
        });
    }
    if thresholds.converged {
        checks.push(Check {
            what: "convergence".into(),
            passed: convergence_s.is_some(),
            detail: convergence_s.map_or_else(
                || "not reached before the drain ended".into(),
                |s| format!("{s:.2} s after the traffic stopped"),
            ),
        });
    }
    if let Some(least) = thresholds.discovery {
        let (found, of) = discovery.map_or((0, 0), |probes| {
            (
                probes.advert_found.min(probes.directory_found),
                probes.visitors,
            )
        });
        let share = if of == 0 {
            0.0
        } else {
            f64::from(found) / f64::from(of)
        };
        checks.push(Check {
            what: "discovery".into(),
            passed: of > 0 && share >= least,
            detail: format!("{found} of {of} probes found the server in both (need ≥ {least})"),
        });
    }
    if summary.messages_acked == 0 {
        checks.push(Check {
            what: "traffic".into(),
            passed: false,
            detail: "no message was acknowledged".into(),
        });
    }
    checks
}

/// Peak resident memory of this process (Linux), MiB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
