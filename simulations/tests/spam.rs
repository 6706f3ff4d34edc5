//! A small version of the `spam` scenario: one member floods valid
//! messages over the rate limit and one outsider floods the topic with
//! invalid gossip, while honest members keep talking: every honest
//! message still arrives, within the deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use simulations::{Scenario, run};

#[test]
fn honest_members_are_heard_through_a_flood() {
    let mut scenario = Scenario::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/spam.toml"
    )))
    .unwrap();
    scenario.members = 8;
    scenario.traffic.senders = 4;
    scenario.traffic.rate_per_s = 2.0;
    scenario.duration_s = 8.0;
    scenario.drain_s = 20.0;
    scenario.timers = simulations::scenario::Timers::Fast;
    let spam = scenario.spam.as_mut().unwrap();
    spam.flooders = 1;
    spam.outsiders = 1;
    let work = tempfile::tempdir().unwrap();
    let result = run(&scenario, work.path(), false).unwrap();
    let counts = result.spam.clone().unwrap();
    assert!(counts.flood_messages > 100, "{counts:?}");
    assert!(counts.outsider_messages > 300, "{counts:?}");
    let summary = &result.summary;
    assert!(
        summary.deadline_delivery >= 0.99,
        "{}",
        simulations::report::markdown(&result)
    );
    assert!(
        (summary.eventual_delivery - 1.0).abs() < f64::EPSILON,
        "{}",
        simulations::report::markdown(&result)
    );
}
