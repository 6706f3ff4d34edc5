//! Palaver's churn simulation harness: many real nodes (the `node` library,
//! unchanged) in one process, over libp2p's memory transport behind a
//! seeded link model, with a churn schedule and a traffic model. Each run
//! writes `result.json`, `report.md` and SVG plots. See
//! `docs/simulation.md`.

pub mod baseline;
pub mod bench;
pub mod cluster;
pub mod discovery;
pub mod link;
pub mod metrics;
pub mod report;
pub mod run;
pub mod scenario;
pub mod spam;

pub use run::{RunResult, run};
pub use scenario::Scenario;
