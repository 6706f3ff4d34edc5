//! The smoke scenario, as CI runs it: real nodes over the simulated
//! network, a crash and a leave that both return, channel posts and direct
//! messages; every acknowledged message reaches every member online at the
//! end, all converge, and fresh peers discover the public server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use simulations::{Scenario, report, run};

#[test]
fn the_smoke_scenario_meets_its_thresholds() {
    let scenario = Scenario::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/smoke.toml"
    )))
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let result = run(&scenario, work.path(), false).unwrap();
    let out = tempfile::tempdir().unwrap();
    report::write(&result, out.path()).unwrap();
    for file in [
        "result.json",
        "report.md",
        "latency_cdf.svg",
        "delivery_over_time.svg",
        "convergence_timeline.svg",
        "duplicates_histogram.svg",
    ] {
        assert!(out.path().join(file).exists(), "{file} missing");
    }
    let summary = &result.summary;
    assert!(summary.messages_acked > 40, "{summary:?}");
    assert!(result.passed(), "{}", report::markdown(&result));
    // The churn happened and the returning members caught up.
    assert_eq!(summary.churn_events.len(), 4, "{:?}", summary.churn_events);
    assert!(summary.returning_deliveries[1] > 0);
    // Direct messages were part of the traffic and all arrived.
    assert!(summary.dm_deliveries[1] > 0, "{summary:?}");
    assert_eq!(summary.dm_deliveries[0], summary.dm_deliveries[1]);
    // Gossip duplicates and the convergence timeline were measured.
    assert!(result.duplicates.is_some());
    assert!(result.convergence_timeline.len() >= 10);
}

#[test]
fn the_baseline_delivers_over_bare_gossipsub() {
    let mut scenario = Scenario::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/smoke.toml"
    )))
    .unwrap();
    scenario.members = 5;
    scenario.duration_s = 3.0;
    scenario.churn.clear();
    let baseline = simulations::baseline::run(&scenario).unwrap();
    assert!(baseline.messages > 5, "{baseline:?}");
    assert!(
        (baseline.eventual_delivery - 1.0).abs() < f64::EPSILON,
        "{baseline:?}"
    );
    assert!(
        baseline.latency_ms.p50 >= 20.0,
        "the link delay applies: {baseline:?}"
    );
}
