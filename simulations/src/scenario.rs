//! Scenarios: what a run simulates, read from a TOML file.

use std::path::Path;

use rand::RngExt;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::link::LinkParams;

/// One simulation: topology, links, traffic, churn and the thresholds a
/// CI run asserts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name (used in reports).
    pub name: String,
    /// What it shows.
    #[serde(default)]
    pub description: String,
    /// Seeds the link model, the traffic and the churn schedule.
    pub seed: u64,
    /// Members of the server, the owner included.
    pub members: u32,
    /// Bootstrap nodes that relay and replicate (not members).
    #[serde(default = "one")]
    pub bootstrap_nodes: u32,
    /// Length of the traffic phase, seconds.
    pub duration_s: f64,
    /// After the traffic: time allowed for eventual delivery and
    /// convergence, seconds.
    pub drain_s: f64,
    /// A message counts as delivered in time when it arrives within this.
    pub deadline_ms: u64,
    /// The nodes' protocol timers.
    #[serde(default)]
    pub timers: Timers,
    /// Gossipsub settings that differ from the shipped ones (for
    /// what-if runs; the baseline uses them too).
    #[serde(default)]
    pub gossip: GossipOverrides,
    /// Every link's properties.
    pub link: LinkParams,
    /// Who sends what.
    pub traffic: Traffic,
    /// Churn events, in any order.
    #[serde(default)]
    pub churn: Vec<ChurnEvent>,
    /// Discovery probes after the run (the server is public then).
    #[serde(default)]
    pub discovery: Option<Discovery>,
    /// Hostile traffic beside the honest one.
    #[serde(default)]
    pub spam: Option<Spam>,
    /// Also run the bare-gossipsub baseline (same members, links and
    /// traffic) and report our figures beside it.
    #[serde(default)]
    pub baseline: bool,
    /// What a CI run asserts.
    #[serde(default)]
    pub thresholds: Thresholds,
}

fn one() -> u32 {
    1
}

/// Which protocol timers the nodes run with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Timers {
    /// The shipped defaults (sync every 30 s, outbox retry from 2 s).
    #[default]
    Default,
    /// The test timers (sync every 2 s, outbox retry from 300 ms).
    Fast,
}

impl Timers {
    /// The node timers.
    pub fn node_timers(self) -> node::NodeTimers {
        match self {
            Self::Default => node::NodeTimers::default(),
            Self::Fast => node::NodeTimers::fast(),
        }
    }
}

/// Gossipsub settings a scenario changes; unset ones keep the shipped
/// values of [`net_overlay::GossipConfig`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GossipOverrides {
    /// Target mesh degree (D).
    pub mesh_n: Option<usize>,
    /// Lower bound of the mesh degree.
    pub mesh_n_low: Option<usize>,
    /// Upper bound of the mesh degree.
    pub mesh_n_high: Option<usize>,
    /// Publish to every subscribed peer, not only the mesh.
    pub flood_publish: Option<bool>,
    /// Messages larger than this many bytes trigger IDONTWANT.
    pub idontwant_threshold: Option<usize>,
}

impl GossipOverrides {
    /// The gossip settings the nodes run with.
    pub fn config(&self) -> net_overlay::GossipConfig {
        let mut config = net_overlay::GossipConfig::default();
        if let Some(value) = self.mesh_n {
            config.mesh_n = value;
        }
        if let Some(value) = self.mesh_n_low {
            config.mesh_n_low = value;
        }
        if let Some(value) = self.mesh_n_high {
            config.mesh_n_high = value;
        }
        if let Some(value) = self.flood_publish {
            config.flood_publish = value;
        }
        if let Some(value) = self.idontwant_threshold {
            config.idontwant_threshold = value;
        }
        config
    }
}

/// Discovery probes (see [`crate::discovery`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Discovery {
    /// Fresh peers that each look the advert up and list the directory.
    pub visitors: u32,
}

/// Hostile traffic (see [`crate::spam`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spam {
    /// Members (the last ones, never honest senders) that send valid
    /// messages far above the per-author rate limit.
    #[serde(default)]
    pub flooders: u32,
    /// Each flooder's rate, messages per second.
    #[serde(default)]
    pub flood_rate_per_s: f64,
    /// Non-members that flood the server's topic with invalid gossip.
    #[serde(default)]
    pub outsiders: u32,
    /// Each outsider's rate, messages per second.
    #[serde(default)]
    pub outsider_rate_per_s: f64,
}

/// The traffic model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    /// How many members send (the first ones after the owner).
    pub senders: u32,
    /// Poisson rate of each sender, messages per second.
    pub rate_per_s: f64,
    /// Message sizes, uniform in `[min, max]` characters.
    pub size: [usize; 2],
    /// Channels the messages spread over (`general` and more).
    #[serde(default = "one")]
    pub channels: u32,
    /// The share of sends that are direct messages to a random other
    /// member (0 to 1).
    #[serde(default)]
    pub dm_share: f64,
}

/// What a churn event does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChurnAction {
    /// Nodes stop without shutting down (their runtime is dropped).
    Crash,
    /// Nodes shut down gracefully.
    Leave,
    /// The network splits: the chosen nodes on one side, the rest on the
    /// other.
    Partition,
    /// The network heals.
    Heal,
}

/// A churn event (repeated every `every_s` until `until_s` when set).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnEvent {
    /// When, seconds into the traffic phase.
    pub at_s: f64,
    /// What.
    pub action: ChurnAction,
    /// How many members (never the owner), as a count…
    #[serde(default)]
    pub count: Option<u32>,
    /// …or as a fraction of the members online.
    #[serde(default)]
    pub fraction: Option<f64>,
    /// Crashed or departed members come back after this long (same keys,
    /// same data directory); never when absent.
    #[serde(default)]
    pub down_s: Option<f64>,
    /// Repeat period, seconds.
    #[serde(default)]
    pub every_s: Option<f64>,
    /// Last repetition no later than this, seconds (default: the end of
    /// the traffic phase).
    #[serde(default)]
    pub until_s: Option<f64>,
}

/// Thresholds a run is checked against (`palaver-sim run --check`, CI).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Least eventual delivery ratio to members online at the end.
    #[serde(default)]
    pub eventual_delivery: Option<f64>,
    /// Least delivery ratio within the deadline to members online
    /// throughout.
    #[serde(default)]
    pub deadline_delivery: Option<f64>,
    /// All live members must converge before the run ends.
    #[serde(default)]
    pub converged: bool,
    /// Least share of discovery probes that find the server both in the
    /// DHT and in the directory.
    #[serde(default)]
    pub discovery: Option<f64>,
}

/// One send of the traffic phase.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlannedSend {
    /// Seconds into the traffic phase.
    pub at_s: f64,
    /// The sending member.
    pub sender: u32,
    /// The channel (0 is `general`).
    pub channel: u32,
    /// Characters.
    pub size: usize,
    /// A direct message to this member instead of a channel post.
    pub dm_to: Option<u32>,
}

/// A scenario that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid scenario.
    #[error("{path} is not a valid scenario: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ScenarioError::Invalid {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses and checks a scenario.
    pub fn parse(text: &str) -> Result<Self, String> {
        let scenario: Self = toml::from_str(text).map_err(|err| err.to_string())?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Checks every setting; the error names the one that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.members < 2 || self.members > 2_000 {
            return Err("members must be between 2 and 2000".into());
        }
        if self.bootstrap_nodes == 0 || self.bootstrap_nodes > 16 {
            return Err("bootstrap_nodes must be between 1 and 16".into());
        }
        if !(self.duration_s > 0.0 && self.duration_s <= 86_400.0) {
            return Err("duration_s must be positive and at most a day".into());
        }
        if !(self.drain_s >= 0.0 && self.drain_s <= 3_600.0) {
            return Err("drain_s must be between 0 and 3600".into());
        }
        self.link.validate()?;
        let traffic = &self.traffic;
        if traffic.senders == 0 || traffic.senders > self.members {
            return Err("traffic.senders must be between 1 and members".into());
        }
        if !(traffic.rate_per_s > 0.0 && traffic.rate_per_s <= 1_000.0) {
            return Err("traffic.rate_per_s must be positive and at most 1000".into());
        }
        let [min, max] = traffic.size;
        if min == 0 || min > max || max > 4_000 {
            return Err("traffic.size must be [min, max] with 1 ≤ min ≤ max ≤ 4000".into());
        }
        if !(0.0..=1.0).contains(&traffic.dm_share) {
            return Err("traffic.dm_share must be between 0 and 1".into());
        }
        if traffic.channels == 0 || traffic.channels > 32 {
            return Err("traffic.channels must be between 1 and 32".into());
        }
        if let Some(discovery) = &self.discovery
            && !(1..=200).contains(&discovery.visitors)
        {
            return Err("discovery.visitors must be between 1 and 200".into());
        }
        if let Some(spam) = &self.spam {
            if spam.flooders + traffic.senders >= self.members {
                return Err("spam.flooders must leave the owner and the senders honest".into());
            }
            if spam.outsiders > 64 {
                return Err("spam.outsiders must be at most 64".into());
            }
            for rate in [spam.flood_rate_per_s, spam.outsider_rate_per_s] {
                if !(0.0..=10_000.0).contains(&rate) {
                    return Err("spam rates must be between 0 and 10000 per second".into());
                }
            }
        }
        for event in &self.churn {
            if !(event.at_s >= 0.0 && event.at_s <= self.duration_s) {
                return Err("churn.at_s must be within the traffic phase".into());
            }
            if let Some(fraction) = event.fraction
                && !(fraction > 0.0 && fraction < 1.0)
            {
                return Err("churn.fraction must be between 0 and 1".into());
            }
            if event.every_s.is_some_and(|every| every < 0.1) {
                return Err("churn.every_s must be at least 0.1".into());
            }
            let needs_nodes = !matches!(event.action, ChurnAction::Heal);
            if needs_nodes && event.count.is_none() && event.fraction.is_none() {
                return Err("churn events other than heal need count or fraction".into());
            }
        }
        Ok(())
    }

    /// The sends of the traffic phase in time order: Poisson arrivals per
    /// sender, then channel and size, all drawn from `rng` (the real run
    /// and the baseline draw the same sends from the same seed).
    pub fn send_schedule(&self, rng: &mut StdRng) -> Vec<PlannedSend> {
        let mut sends = Vec::new();
        let [min, max] = self.traffic.size;
        for sender in 0..self.traffic.senders {
            let mut at_s = 0.0;
            loop {
                let u: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
                at_s += -u.ln() / self.traffic.rate_per_s;
                if at_s >= self.duration_s {
                    break;
                }
                let channel = rng.random_range(0..self.traffic.channels);
                let size = rng.random_range(min..=max);
                // Drawn only when asked for, so that scenarios without DMs
                // keep their schedules.
                let share = self.traffic.dm_share;
                let dm_to = (share > 0.0 && rng.random_bool(share)).then(|| {
                    let to = rng.random_range(0..self.members - 1);
                    if to >= sender { to + 1 } else { to }
                });
                sends.push(PlannedSend {
                    at_s,
                    sender,
                    channel,
                    size,
                    dm_to,
                });
            }
        }
        sends.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        sends
    }

    /// The churn events in time order, repetitions expanded.
    pub fn churn_schedule(&self) -> Vec<(f64, ChurnEvent)> {
        let mut out = Vec::new();
        for event in &self.churn {
            let until = event
                .until_s
                .unwrap_or(self.duration_s)
                .min(self.duration_s);
            let mut at = event.at_s;
            loop {
                out.push((at, event.clone()));
                match event.every_s {
                    Some(every) if at + every <= until => at += every,
                    _ => break,
                }
            }
        }
        out.sort_by(|a, b| a.0.total_cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const SMOKE: &str = include_str!("../scenarios/smoke.toml");

    #[test]
    fn the_shipped_scenarios_parse() {
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios")).unwrap() {
            let path = entry.unwrap().path();
            Scenario::load(&path).unwrap_or_else(|err| panic!("{err}"));
        }
        assert_eq!(Scenario::parse(SMOKE).unwrap().name, "smoke");
    }

    #[test]
    fn bad_scenarios_are_explained() {
        let bad = SMOKE.replace("members = ", "members = 1 #");
        assert!(Scenario::parse(&bad).unwrap_err().contains("members"));
        let unknown = format!("{SMOKE}\nsurprise = 1\n");
        assert!(Scenario::parse(&unknown).unwrap_err().contains("surprise"));
    }

    #[test]
    fn repeated_churn_expands_in_order() {
        let mut scenario = Scenario::parse(SMOKE).unwrap();
        scenario.duration_s = 10.0;
        scenario.churn = vec![ChurnEvent {
            at_s: 1.0,
            action: ChurnAction::Crash,
            count: Some(1),
            fraction: None,
            down_s: Some(2.0),
            every_s: Some(3.0),
            until_s: None,
        }];
        let times: Vec<f64> = scenario.churn_schedule().iter().map(|e| e.0).collect();
        assert_eq!(times, vec![1.0, 4.0, 7.0, 10.0]);
    }

    #[test]
    fn direct_messages_go_to_another_member_and_leave_other_schedules_alone() {
        let mut plain = Scenario::parse(SMOKE).unwrap();
        plain.traffic.dm_share = 0.0;
        let before = plain.send_schedule(&mut StdRng::seed_from_u64(plain.seed));
        assert!(before.iter().all(|send| send.dm_to.is_none()));
        let mut with_dms = plain.clone();
        with_dms.traffic.dm_share = 0.5;
        let sends = with_dms.send_schedule(&mut StdRng::seed_from_u64(plain.seed));
        let dms: Vec<&PlannedSend> = sends.iter().filter(|s| s.dm_to.is_some()).collect();
        assert!(dms.len() > sends.len() / 4 && dms.len() < sends.len() * 3 / 4);
        for send in dms {
            let to = send.dm_to.unwrap();
            assert!(to != send.sender && to < plain.members, "{send:?}");
        }
        // The same seed gives the same schedule again.
        let again = plain.send_schedule(&mut StdRng::seed_from_u64(plain.seed));
        assert_eq!(before, again);
    }

    #[test]
    fn spam_discovery_and_dm_settings_are_checked() {
        let flood_all = format!("{SMOKE}\n[spam]\nflooders = 4\nflood_rate_per_s = 10.0\n");
        assert!(
            Scenario::parse(&flood_all)
                .unwrap_err()
                .contains("flooders")
        );
        let no_visitors = SMOKE.replace("visitors = 3", "visitors = 0");
        assert!(
            Scenario::parse(&no_visitors)
                .unwrap_err()
                .contains("visitors")
        );
        let share = SMOKE.replace("channels = 2", "channels = 2\ndm_share = 1.5");
        assert!(Scenario::parse(&share).unwrap_err().contains("dm_share"));
        let gossip = format!("{SMOKE}\n[gossip]\nmesh_n = 5\n");
        assert_eq!(Scenario::parse(&gossip).unwrap().gossip.config().mesh_n, 5);
    }
}
