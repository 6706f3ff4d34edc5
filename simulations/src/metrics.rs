//! What a run records while it runs, and the figures computed from it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// The text prefix of every simulated message: `sim|<id>|<padding>`.
const PREFIX: &str = "sim|";

/// The text of message `id`, padded to `size` characters.
pub fn message_text(id: u64, size: usize) -> String {
    let mut text = format!("{PREFIX}{id}|");
    while text.len() < size {
        text.push('x');
    }
    text
}

fn message_id(text: &str) -> Option<u64> {
    text.strip_prefix(PREFIX)?.split('|').next()?.parse().ok()
}

/// One sent message.
#[derive(Clone, Debug)]
pub struct Sent {
    /// The sending member.
    pub sender: u32,
    /// When the send request was made.
    pub at: Instant,
    /// When the sender's node acknowledged it durable (None: it failed or
    /// the sender went down first).
    pub acked: Option<Instant>,
    /// The recipient of a direct message; None for a channel message,
    /// which every other member should get.
    pub to: Option<u32>,
}

impl Sent {
    /// Whether `member` should receive it.
    pub fn expects(&self, member: u32) -> bool {
        member != self.sender && self.to.is_none_or(|to| to == member)
    }
}

#[derive(Default)]
struct State {
    sent: HashMap<u64, Sent>,
    /// (message, member) → first receipt.
    received: HashMap<(u64, u32), Instant>,
    duplicates: u64,
    /// Per member: (down since, back at) intervals.
    down: HashMap<u32, Vec<(Instant, Option<Instant>)>>,
    /// Churn events for the plots: (when, what).
    events: Vec<(Instant, String)>,
    /// Failed sends by error code.
    send_errors: std::collections::BTreeMap<String, u64>,
}

/// Collects sends, receipts and churn from every node's thread.
#[derive(Default)]
pub struct Recorder {
    state: Mutex<State>,
    lagged: AtomicU64,
}

impl Recorder {
    /// A message is about to be sent.
    pub fn sending(&self, id: u64, sender: u32, at: Instant) {
        self.sending_to(id, sender, None, at);
    }

    /// A message (`to`: a direct message's recipient) is about to be sent.
    pub fn sending_to(&self, id: u64, sender: u32, to: Option<u32>, at: Instant) {
        self.state.lock().sent.insert(
            id,
            Sent {
                sender,
                at,
                acked: None,
                to,
            },
        );
    }

    /// The sender's node acknowledged message `id`.
    pub fn acked(&self, id: u64, at: Instant) {
        if let Some(sent) = self.state.lock().sent.get_mut(&id) {
            sent.acked = Some(at);
        }
    }

    /// The sender's node refused or failed a send.
    pub fn send_failed(&self, code: String) {
        *self.state.lock().send_errors.entry(code).or_default() += 1;
    }

    /// A member's node showed a message.
    pub fn received(&self, member: u32, text: &str, edited: bool) {
        let Some(id) = message_id(text) else {
            return;
        };
        let now = Instant::now();
        let mut state = self.state.lock();
        if state
            .sent
            .get(&id)
            .is_some_and(|sent| sent.sender == member)
        {
            return;
        }
        if state.received.contains_key(&(id, member)) {
            if !edited {
                state.duplicates += 1;
            }
            return;
        }
        state.received.insert((id, member), now);
    }

    /// A member's event stream fell behind (receipts may be missing).
    pub fn lagged(&self, missed: u64) {
        self.lagged.fetch_add(missed, Ordering::Relaxed);
    }

    /// A member went down.
    pub fn down(&self, member: u32, at: Instant) {
        self.state
            .lock()
            .down
            .entry(member)
            .or_default()
            .push((at, None));
    }

    /// A member came back.
    pub fn up(&self, member: u32, at: Instant) {
        if let Some(last) = self
            .state
            .lock()
            .down
            .get_mut(&member)
            .and_then(|intervals| intervals.last_mut())
        {
            last.1 = Some(at);
        }
    }

    /// A churn event, for the plots.
    pub fn event(&self, at: Instant, what: String) {
        self.state.lock().events.push((at, what));
    }

    /// Whether every acknowledged message has reached every member in
    /// `online` (all but its sender).
    pub fn all_delivered_to(&self, online: &[u32]) -> bool {
        let state = self.state.lock();
        state
            .sent
            .iter()
            .filter(|(_, sent)| sent.acked.is_some())
            .all(|(id, sent)| {
                online
                    .iter()
                    .filter(|member| sent.expects(**member))
                    .all(|member| state.received.contains_key(&(*id, *member)))
            })
    }

    /// The figures of the run.
    pub fn summarize(&self, input: &SummaryInput) -> Summary {
        let state = self.state.lock();
        let online_at = |member: u32, at: Instant| {
            state.down.get(&member).is_none_or(|intervals| {
                !intervals
                    .iter()
                    .any(|(from, to)| *from <= at && to.is_none_or(|to| at < to))
            })
        };
        let online_throughout = |member: u32, from: Instant, to: Instant| {
            state.down.get(&member).is_none_or(|intervals| {
                !intervals
                    .iter()
                    .any(|(down, up)| *down < to && up.is_none_or(|up| up > from))
            })
        };
        let deadline = std::time::Duration::from_millis(input.deadline_ms);
        let mut latencies_ms = Vec::new();
        let (mut in_time, mut in_time_of) = (0u64, 0u64);
        let (mut eventual, mut eventual_of) = (0u64, 0u64);
        let (mut returning, mut returning_of) = (0u64, 0u64);
        let (mut dm, mut dm_of) = (0u64, 0u64);
        let mut buckets: HashMap<u64, (u64, u64)> = HashMap::new();
        let mut acked = 0u64;
        for (id, sent) in &state.sent {
            if sent.acked.is_none() {
                continue;
            }
            acked += 1;
            let second = sent.at.saturating_duration_since(input.start).as_secs();
            for member in 0..input.members {
                if !sent.expects(member) {
                    continue;
                }
                let receipt = state.received.get(&(*id, member)).copied();
                if online_throughout(member, sent.at, sent.at + deadline) {
                    // Latency of live delivery only: a member that was down
                    // catches up later by design (counted as eventual).
                    if let Some(at) = receipt {
                        latencies_ms
                            .push(at.saturating_duration_since(sent.at).as_secs_f64() * 1e3);
                    }
                    in_time_of += 1;
                    let ok = receipt.is_some_and(|at| at <= sent.at + deadline);
                    in_time += u64::from(ok);
                    let bucket = buckets.entry(second).or_default();
                    bucket.1 += 1;
                    bucket.0 += u64::from(ok);
                }
                if online_at(member, input.end) {
                    eventual_of += 1;
                    eventual += u64::from(receipt.is_some());
                    if sent.to.is_some() {
                        dm_of += 1;
                        dm += u64::from(receipt.is_some());
                    }
                    if state.down.contains_key(&member) {
                        returning_of += 1;
                        returning += u64::from(receipt.is_some());
                    }
                }
            }
        }
        // Catch-up: how long after the last disturbance everything sent
        // before it had reached every member online at the end.
        let catch_up_s = input.last_disturbance.map(|disturbed| {
            let mut latest = disturbed;
            let mut complete = true;
            for (id, sent) in state.sent.iter().filter(|(_, sent)| sent.acked.is_some()) {
                if sent.at > disturbed {
                    continue;
                }
                for member in (0..input.members).filter(|m| sent.expects(*m)) {
                    if !online_at(member, input.end) {
                        continue;
                    }
                    match state.received.get(&(*id, member)) {
                        Some(at) => latest = latest.max(*at),
                        None => complete = false,
                    }
                }
            }
            complete.then(|| latest.saturating_duration_since(disturbed).as_secs_f64())
        });
        latencies_ms.sort_by(f64::total_cmp);
        let pick = |q: f64| -> f64 {
            if latencies_ms.is_empty() {
                return 0.0;
            }
            let index = ((latencies_ms.len() - 1) as f64 * q).round() as usize;
            latencies_ms[index]
        };
        let ratio = |ok: u64, of: u64| if of == 0 { 1.0 } else { ok as f64 / of as f64 };
        let mut delivery_over_time: Vec<(u64, f64)> = buckets
            .into_iter()
            .map(|(second, (ok, of))| (second, ratio(ok, of)))
            .collect();
        delivery_over_time.sort_by_key(|(second, _)| *second);
        let link = input.link_delay_ms.max(f64::MIN_POSITIVE);
        let events = state
            .events
            .iter()
            .map(|(at, what)| {
                (
                    at.saturating_duration_since(input.start).as_secs_f64(),
                    what.clone(),
                )
            })
            .collect();
        Summary {
            messages_sent: state.sent.len() as u64,
            messages_acked: acked,
            deadline_delivery: ratio(in_time, in_time_of),
            deadline_deliveries: [in_time, in_time_of],
            eventual_delivery: ratio(eventual, eventual_of),
            eventual_deliveries: [eventual, eventual_of],
            returning_delivery: ratio(returning, returning_of),
            returning_deliveries: [returning, returning_of],
            dm_deliveries: [dm, dm_of],
            latency_ms: Percentiles {
                p50: pick(0.5),
                p90: pick(0.9),
                p99: pick(0.99),
                max: pick(1.0),
            },
            latency_link_delays: Percentiles {
                p50: pick(0.5) / link,
                p90: pick(0.9) / link,
                p99: pick(0.99) / link,
                max: pick(1.0) / link,
            },
            catch_up_s: catch_up_s.flatten(),
            send_errors: state.send_errors.clone(),
            app_duplicates: state.duplicates,
            events_lagged: self.lagged.load(Ordering::Relaxed),
            latencies_ms: latencies_ms.clone(),
            delivery_over_time,
            churn_events: events,
        }
    }
}

/// What `summarize` needs besides the records.
pub struct SummaryInput {
    /// Start of the traffic phase.
    pub start: Instant,
    /// End of the run.
    pub end: Instant,
    /// Members (ids `0..members`).
    pub members: u32,
    /// The delivery deadline.
    pub deadline_ms: u64,
    /// The mean one-way link delay.
    pub link_delay_ms: f64,
    /// The last churn event, heal or return.
    pub last_disturbance: Option<Instant>,
}

/// Latency percentiles.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// The delivery figures of a run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Send requests made.
    pub messages_sent: u64,
    /// Sends the sender's node acknowledged (the ones judged).
    pub messages_acked: u64,
    /// Sends that failed, by error code (the rest of the unacknowledged
    /// ones were still waiting when the run ended).
    pub send_errors: std::collections::BTreeMap<String, u64>,
    /// Delivered within the deadline, to members online from the send
    /// until the deadline.
    pub deadline_delivery: f64,
    /// [delivered, expected] behind `deadline_delivery`.
    pub deadline_deliveries: [u64; 2],
    /// Delivered by the end of the run, to members online at the end.
    pub eventual_delivery: f64,
    /// [delivered, expected] behind `eventual_delivery`.
    pub eventual_deliveries: [u64; 2],
    /// The same, only for members that were down at some point.
    pub returning_delivery: f64,
    /// [delivered, expected] behind `returning_delivery`.
    pub returning_deliveries: [u64; 2],
    /// Direct messages delivered by the end to recipients online then:
    /// [delivered, expected] (also counted in the figures above).
    #[serde(default)]
    pub dm_deliveries: [u64; 2],
    /// Send → shown at the receiver, milliseconds (members online from the
    /// send until the deadline).
    pub latency_ms: Percentiles,
    /// The same in multiples of the mean one-way link delay.
    pub latency_link_delays: Percentiles,
    /// Seconds from the last disturbance (churn event, heal, return) until
    /// every message sent before it had reached every member online at
    /// the end; None without disturbance or if some never arrived.
    pub catch_up_s: Option<f64>,
    /// A message shown twice to the same member by its node (should be 0;
    /// gossip-level duplicates are not counted here).
    pub app_duplicates: u64,
    /// Events the harness missed because a node's event stream lagged.
    pub events_lagged: u64,
    /// Every receipt's latency, sorted (for the CDF).
    #[serde(skip)]
    pub latencies_ms: Vec<f64>,
    /// Per second of the run: delivery ratio within the deadline of the
    /// messages sent in it.
    pub delivery_over_time: Vec<(u64, f64)>,
    /// Churn events: seconds into the run, what.
    pub churn_events: Vec<(f64, String)>,
}

/// Gossip duplicates: copies a node received beyond the first, per first
/// copy (gossipsub's own per-topic counters, so per node, not per message).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Duplicates {
    /// Over all nodes: every extra copy ÷ every first copy.
    pub mean: f64,
    /// The median of the nodes' own ratios.
    pub median: f64,
    /// Each node's ratio (nodes that received nothing are left out).
    pub per_node: Vec<f64>,
}

impl Duplicates {
    /// From each node's (all copies, first copies); None when no node
    /// received anything.
    pub fn from_counts(counts: &[(u64, u64)]) -> Option<Self> {
        let (all, first) = counts
            .iter()
            .fold((0u64, 0u64), |(a, f), (na, nf)| (a + na, f + nf));
        if first == 0 {
            return None;
        }
        let mut per_node: Vec<f64> = counts
            .iter()
            .filter(|(_, first)| *first > 0)
            .map(|(all, first)| all.saturating_sub(*first) as f64 / *first as f64)
            .collect();
        per_node.sort_by(f64::total_cmp);
        let median = percentile(&per_node, 0.5);
        Some(Self {
            mean: all.saturating_sub(first) as f64 / first as f64,
            median,
            per_node,
        })
    }
}

/// Reads gossipsub's per-topic receive counters from a metrics registry:
/// (all copies, first copies).
pub fn gossip_counts(registry: &prometheus_client::registry::Registry) -> (u64, u64) {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, registry).is_err() {
        return (0, 0);
    }
    let (mut all, mut first) = (0u64, 0u64);
    for line in text.lines() {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value = value.parse::<f64>().unwrap_or(0.0) as u64;
        if name.starts_with("gossipsub_topic_msg_recv_counts_unfiltered_total") {
            all += value;
        } else if name.starts_with("gossipsub_topic_msg_recv_counts_total") {
            first += value;
        }
    }
    (all, first)
}

/// How late the harness ran scheduled steps (sends, churn): near zero when
/// the machine keeps up, so that simulated time is real time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Lag {
    /// Median lateness, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Worst, milliseconds.
    pub max_ms: f64,
}

impl Lag {
    /// From every step's lateness in milliseconds.
    pub fn from_samples(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        Self {
            p50_ms: percentile(&samples, 0.5),
            p99_ms: percentile(&samples, 0.99),
            max_ms: samples.last().copied().unwrap_or(0.0),
        }
    }
}

/// The `q` quantile of sorted `values` (0 when empty).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn texts_carry_their_id_and_size() {
        let text = message_text(42, 100);
        assert_eq!(text.len(), 100);
        assert_eq!(message_id(&text), Some(42));
        assert_eq!(message_id("hello"), None);
    }

    #[test]
    fn delivery_counts_only_members_that_could_receive() {
        let recorder = Recorder::default();
        let start = Instant::now();
        // Member 0 sends; 1 receives in 30 ms; 2 is down throughout and
        // comes back, then receives late.
        recorder.sending(1, 0, start);
        recorder.acked(1, start);
        recorder.down(2, start);
        recorder.received(1, &message_text(1, 10), false);
        recorder.received(1, &message_text(1, 10), false);
        recorder.up(2, start + Duration::from_secs(9));
        recorder.received(2, &message_text(1, 10), false);
        // Member 0's own echo is not a receipt.
        recorder.received(0, &message_text(1, 10), false);
        let summary = recorder.summarize(&SummaryInput {
            start,
            end: Instant::now() + Duration::from_secs(10),
            members: 3,
            deadline_ms: 5_000,
            link_delay_ms: 25.0,
            last_disturbance: Some(start + Duration::from_secs(9)),
        });
        assert_eq!(summary.messages_acked, 1);
        assert_eq!(summary.deadline_deliveries, [1, 1]);
        assert_eq!(summary.eventual_deliveries, [2, 2]);
        assert_eq!(summary.returning_deliveries, [1, 1]);
        assert_eq!(summary.app_duplicates, 1);
        // Member 2's receipt came right after it returned (the disturbance).
        assert!(
            summary.catch_up_s.is_some_and(|s| s < 1.0),
            "{:?}",
            summary.catch_up_s
        );
        assert!(recorder.all_delivered_to(&[0, 1, 2]));
    }

    #[test]
    fn duplicates_take_the_median_of_the_nodes_and_the_mean_of_all_copies() {
        let counts = [(30, 10), (10, 10), (0, 0), (20, 10)];
        let dups = Duplicates::from_counts(&counts).unwrap();
        assert_eq!(dups.per_node, vec![0.0, 1.0, 2.0]);
        assert!((dups.median - 1.0).abs() < 1e-9);
        assert!((dups.mean - 1.0).abs() < 1e-9);
        assert_eq!(Duplicates::from_counts(&[(0, 0)]), None);
    }

    #[test]
    fn lag_percentiles() {
        let lag = Lag::from_samples((0..=100).map(f64::from).collect());
        assert!((lag.p50_ms - 50.0).abs() < 1e-9);
        assert!((lag.p99_ms - 99.0).abs() < 1e-9);
        assert!((lag.max_ms - 100.0).abs() < 1e-9);
    }
}
