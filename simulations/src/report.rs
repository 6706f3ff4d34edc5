//! Writing a run's results: `result.json`, `report.md` and SVG plots.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::cluster::SimError;
use crate::metrics::Duplicates;
use crate::run::RunResult;

/// Writes `result.json`, `report.md`, `latency_cdf.svg`,
/// `delivery_over_time.svg`, `convergence_timeline.svg` and
/// `duplicates_histogram.svg` into `out`.
pub fn write(result: &RunResult, out: &Path) -> Result<(), SimError> {
    let fail = |path: &Path, message: String| SimError::Output {
        path: path.display().to_string(),
        message,
    };
    std::fs::create_dir_all(out).map_err(|err| fail(out, err.to_string()))?;
    let json = out.join("result.json");
    let text = serde_json::to_string_pretty(result).map_err(|err| fail(&json, err.to_string()))?;
    std::fs::write(&json, text).map_err(|err| fail(&json, err.to_string()))?;
    let cdf = out.join("latency_cdf.svg");
    latency_cdf(result, &cdf).map_err(|err| fail(&cdf, err))?;
    let over_time = out.join("delivery_over_time.svg");
    delivery_over_time(result, &over_time).map_err(|err| fail(&over_time, err))?;
    let timeline = out.join("convergence_timeline.svg");
    convergence_timeline(result, &timeline).map_err(|err| fail(&timeline, err))?;
    let histogram = out.join("duplicates_histogram.svg");
    duplicates_histogram(result, &histogram).map_err(|err| fail(&histogram, err))?;
    let report = out.join("report.md");
    std::fs::write(&report, markdown(result)).map_err(|err| fail(&report, err.to_string()))?;
    Ok(())
}

/// The Markdown report.
pub fn markdown(result: &RunResult) -> String {
    let s = &result.summary;
    let sc = &result.scenario;
    let mut md = String::new();
    let _ = writeln!(md, "# Simulation `{}`\n", sc.name);
    if !sc.description.is_empty() {
        let _ = writeln!(md, "{}\n", sc.description);
    }
    let _ = writeln!(
        md,
        "{} members + {} bootstrap node(s); links {} ms ± {} ms, loss {}, {}; \
         {} senders at {}/s for {} s, {} channel(s); {:?} timers; seed {}.\n",
        sc.members,
        sc.bootstrap_nodes,
        sc.link.latency_ms,
        sc.link.jitter_ms,
        sc.link.loss,
        if sc.link.bandwidth_kbps == 0 {
            "unlimited bandwidth".to_owned()
        } else {
            format!("{} kbit/s", sc.link.bandwidth_kbps)
        },
        sc.traffic.senders,
        sc.traffic.rate_per_s,
        sc.duration_s,
        sc.traffic.channels,
        sc.timers,
        sc.seed,
    );
    let _ = writeln!(md, "| metric | value |\n|---|---|");
    let _ = writeln!(
        md,
        "| set-up (start, create, all join) | {:.1} s |",
        result.setup_s
    );
    let _ = writeln!(
        md,
        "| messages sent / acknowledged | {} / {} |",
        s.messages_sent, s.messages_acked
    );
    if !s.send_errors.is_empty() {
        let errors: Vec<String> = s
            .send_errors
            .iter()
            .map(|(code, n)| format!("{code} × {n}"))
            .collect();
        let _ = writeln!(md, "| failed sends | {} |", errors.join(", "));
    }
    let _ = writeln!(
        md,
        "| delivered within {} ms (members online throughout) | {:.4} ({} of {}) |",
        sc.deadline_ms, s.deadline_delivery, s.deadline_deliveries[0], s.deadline_deliveries[1]
    );
    let _ = writeln!(
        md,
        "| delivered by the end (members online at the end) | {:.4} ({} of {}) |",
        s.eventual_delivery, s.eventual_deliveries[0], s.eventual_deliveries[1]
    );
    let _ = writeln!(
        md,
        "| … of which members that were down at some point | {:.4} ({} of {}) |",
        s.returning_delivery, s.returning_deliveries[0], s.returning_deliveries[1]
    );
    if s.dm_deliveries[1] > 0 {
        let _ = writeln!(
            md,
            "| … of which direct messages | {} of {} |",
            s.dm_deliveries[0], s.dm_deliveries[1]
        );
    }
    let _ = writeln!(
        md,
        "| latency p50 / p90 / p99 / max | {:.0} / {:.0} / {:.0} / {:.0} ms |",
        s.latency_ms.p50, s.latency_ms.p90, s.latency_ms.p99, s.latency_ms.max
    );
    let _ = writeln!(
        md,
        "| … in link delays | {:.1} / {:.1} / {:.1} / {:.1} |",
        s.latency_link_delays.p50,
        s.latency_link_delays.p90,
        s.latency_link_delays.p99,
        s.latency_link_delays.max
    );
    let _ = writeln!(
        md,
        "| catch-up after the last disturbance (all sent before it, everywhere) | {} |",
        s.catch_up_s
            .map_or_else(|| "—".to_owned(), |c| format!("{c:.2} s"))
    );
    let _ = writeln!(
        md,
        "| convergence after the traffic stopped | {} |",
        result
            .convergence_s
            .map_or_else(|| "not reached".to_owned(), |c| format!("{c:.2} s"))
    );
    let _ = writeln!(
        md,
        "| link bytes per message per node | {:.0} B |",
        result.bytes_per_message_per_node
    );
    let _ = writeln!(
        md,
        "| gossip duplicates per message, median of the nodes (mean of all copies) | {} |",
        dup_text(result.duplicates.as_ref())
    );
    let _ = writeln!(
        md,
        "| harness lateness of scheduled steps p50 / p99 / max | {:.1} / {:.1} / {:.1} ms |",
        result.schedule_lag.p50_ms, result.schedule_lag.p99_ms, result.schedule_lag.max_ms
    );
    let _ = writeln!(
        md,
        "| app-level duplicate receipts | {} |",
        s.app_duplicates
    );
    let _ = writeln!(
        md,
        "| peak memory per node (process peak ÷ nodes) | {:.1} MiB |",
        result.peak_memory_per_node_mb
    );
    if s.events_lagged > 0 {
        let _ = writeln!(
            md,
            "| harness events missed (lagged streams) | {} |",
            s.events_lagged
        );
    }
    if let Some(spam) = &result.spam {
        let _ = writeln!(
            md,
            "\n## Hostile traffic\n\n| sent by | messages |\n|---|---|\n\
             | flooding members (valid, over the rate limit) | {} |\n\
             | outsiders (invalid gossip) | {} |",
            spam.flood_messages, spam.outsider_messages
        );
    }
    if let Some(probes) = &result.discovery {
        let median = |values: &[f64]| {
            let mut sorted = values.to_vec();
            sorted.sort_by(f64::total_cmp);
            sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
        };
        let requests: Vec<f64> = probes
            .advert_requests
            .iter()
            .map(|r| f64::from(*r))
            .collect();
        let _ = writeln!(
            md,
            "\n## Discovery (fresh peers that know only the bootstrap nodes)\n\n\
             | probe | found | median time | median cost |\n|---|---|---|---|\n\
             | DHT advert lookup | {} of {} | {:.0} ms | {:.0} Kademlia requests (max {:.0}) |\n\
             | public directory listing | {} of {} | {:.0} ms | |",
            probes.advert_found,
            probes.visitors,
            median(&probes.advert_ms),
            median(&requests),
            requests.iter().copied().fold(0.0, f64::max),
            probes.directory_found,
            probes.visitors,
            median(&probes.directory_ms),
        );
    }
    if let Some(base) = &result.baseline {
        let ratio = |ours: f64, theirs: f64| {
            if theirs > 0.0 {
                format!("{:.2}×", ours / theirs)
            } else {
                "—".to_owned()
            }
        };
        let _ = writeln!(
            md,
            "\n## Beside bare gossipsub (same members, links and traffic; no churn)\n\n\
             | figure | Palaver | bare gossipsub | ratio |\n|---|---|---|---|"
        );
        let _ = writeln!(
            md,
            "| latency p50 | {:.0} ms | {:.0} ms | {} |",
            s.latency_ms.p50,
            base.latency_ms.p50,
            ratio(s.latency_ms.p50, base.latency_ms.p50)
        );
        let _ = writeln!(
            md,
            "| latency p99 | {:.0} ms | {:.0} ms | {} |",
            s.latency_ms.p99,
            base.latency_ms.p99,
            ratio(s.latency_ms.p99, base.latency_ms.p99)
        );
        let _ = writeln!(
            md,
            "| delivered within {} ms | {:.4} | {:.4} | |",
            sc.deadline_ms, s.deadline_delivery, base.deadline_delivery
        );
        let _ = writeln!(
            md,
            "| delivered by the end | {:.4} | {:.4} | |",
            s.eventual_delivery, base.eventual_delivery
        );
        let median = |dups: Option<&Duplicates>| dups.map_or(0.0, |d| d.median);
        let _ = writeln!(
            md,
            "| gossip duplicates per message (median of the nodes) | {} | {} | {} |",
            dup_text(result.duplicates.as_ref()),
            dup_text(base.duplicates.as_ref()),
            ratio(
                median(result.duplicates.as_ref()),
                median(base.duplicates.as_ref())
            )
        );
    }
    if !result.checks.is_empty() {
        let _ = writeln!(
            md,
            "\n## Thresholds\n\n| check | result | measured |\n|---|---|---|"
        );
        for check in &result.checks {
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                check.what,
                if check.passed { "pass" } else { "FAIL" },
                check.detail
            );
        }
    }
    if !result.divergence.is_empty() {
        let _ = writeln!(
            md,
            "\n## Not converged: each live member at the end\n\n| member | entries | held back | state hash |\n|---|---|---|---|"
        );
        for (name, entries, held, hash) in &result.divergence {
            let short: String = hash.chars().take(16).collect();
            let _ = writeln!(md, "| {name} | {entries} | {held} | {short} |");
        }
    }
    if !s.churn_events.is_empty() {
        let _ = writeln!(md, "\n## Churn\n");
        for (at, what) in &s.churn_events {
            let _ = writeln!(md, "- {at:.1} s: {what}");
        }
    }
    let _ = writeln!(
        md,
        "\n![latency CDF](latency_cdf.svg)\n\n![delivery over time](delivery_over_time.svg)\n\n\
         ![convergence timeline](convergence_timeline.svg)\n\n![duplicates](duplicates_histogram.svg)"
    );
    md
}

fn latency_cdf(result: &RunResult, path: &Path) -> Result<(), String> {
    let latencies = &result.summary.latencies_ms;
    let root = SVGBackend::new(path, (640, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(|err| err.to_string())?;
    let max = latencies.last().copied().unwrap_or(1.0).max(1.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: latency CDF (send → shown)", result.scenario.name),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d((1f64..max * 1.5).log_scale(), 0f64..1f64)
        .map_err(|err| err.to_string())?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(235, 235, 235))
        .x_desc("latency (ms, log scale)")
        .y_desc("fraction of deliveries")
        .draw()
        .map_err(|err| err.to_string())?;
    let n = latencies.len().max(1) as f64;
    chart
        .draw_series(LineSeries::new(
            latencies
                .iter()
                .enumerate()
                .map(|(i, ms)| (ms.max(1.0), (i + 1) as f64 / n)),
            &BLUE,
        ))
        .map_err(|err| err.to_string())?;
    root.present().map_err(|err| err.to_string())
}

fn delivery_over_time(result: &RunResult, path: &Path) -> Result<(), String> {
    let points = &result.summary.delivery_over_time;
    let root = SVGBackend::new(path, (640, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(|err| err.to_string())?;
    let end = result.scenario.duration_s.max(1.0);
    let low = points
        .iter()
        .map(|(_, ratio)| *ratio)
        .fold(1.0f64, f64::min)
        .min(0.9);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: delivered within {} ms, by send second",
                result.scenario.name, result.scenario.deadline_ms
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..end, (low - 0.02)..1.01f64)
        .map_err(|err| err.to_string())?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(235, 235, 235))
        .x_desc("seconds into the run (red: churn events)")
        .y_desc("delivery ratio")
        .draw()
        .map_err(|err| err.to_string())?;
    for (at, _) in &result.summary.churn_events {
        chart
            .draw_series(LineSeries::new([(*at, low - 0.02), (*at, 1.01)], &RED))
            .map_err(|err| err.to_string())?;
    }
    chart
        .draw_series(LineSeries::new(
            points
                .iter()
                .map(|(second, ratio)| (*second as f64 + 0.5, *ratio)),
            &BLUE,
        ))
        .map_err(|err| err.to_string())?;
    root.present().map_err(|err| err.to_string())
}

fn dup_text(dups: Option<&Duplicates>) -> String {
    dups.map_or_else(
        || "—".to_owned(),
        |d| format!("{:.2} ({:.2})", d.median, d.mean),
    )
}

fn convergence_timeline(result: &RunResult, path: &Path) -> Result<(), String> {
    let points = &result.convergence_timeline;
    let root = SVGBackend::new(path, (640, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(|err| err.to_string())?;
    let end = points
        .last()
        .map_or(1.0, |(at, _, _)| *at)
        .max(result.scenario.duration_s)
        .max(1.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: live members agreeing on entries and state",
                result.scenario.name
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..end, 0f64..1.02f64)
        .map_err(|err| err.to_string())?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(235, 235, 235))
        .x_desc("seconds into the run (red: churn, grey: traffic ends)")
        .y_desc("share agreeing")
        .draw()
        .map_err(|err| err.to_string())?;
    for (at, _) in &result.summary.churn_events {
        chart
            .draw_series(LineSeries::new([(*at, 0.0), (*at, 1.02)], &RED))
            .map_err(|err| err.to_string())?;
    }
    let stop = result.scenario.duration_s;
    chart
        .draw_series(LineSeries::new(
            [(stop, 0.0), (stop, 1.02)],
            &RGBColor(150, 150, 150),
        ))
        .map_err(|err| err.to_string())?;
    chart
        .draw_series(LineSeries::new(
            points.iter().map(|(at, share, _)| (*at, *share)),
            &BLUE,
        ))
        .map_err(|err| err.to_string())?;
    root.present().map_err(|err| err.to_string())
}

fn duplicates_histogram(result: &RunResult, path: &Path) -> Result<(), String> {
    const BUCKET: f64 = 0.5;
    let ours = result
        .duplicates
        .as_ref()
        .map(|d| d.per_node.clone())
        .unwrap_or_default();
    let theirs = result
        .baseline
        .as_ref()
        .and_then(|b| b.duplicates.as_ref())
        .map(|d| d.per_node.clone())
        .unwrap_or_default();
    let top = ours
        .iter()
        .chain(theirs.iter())
        .copied()
        .fold(1.0f64, f64::max);
    let buckets = (top / BUCKET).floor() as usize + 1;
    let count = |values: &[f64]| {
        let mut counts = vec![0u32; buckets];
        for value in values {
            let bucket = ((value / BUCKET).floor() as usize).min(buckets - 1);
            counts[bucket] += 1;
        }
        counts
    };
    let (ours_counts, theirs_counts) = (count(&ours), count(&theirs));
    let highest = ours_counts
        .iter()
        .chain(theirs_counts.iter())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1);
    let root = SVGBackend::new(path, (640, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(|err| err.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: gossip duplicates per message, per node",
                result.scenario.name
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..buckets as f64 * BUCKET, 0u32..highest + 1)
        .map_err(|err| err.to_string())?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(235, 235, 235))
        .x_desc("copies beyond the first, per message (blue: Palaver, grey: bare gossipsub)")
        .y_desc("nodes")
        .draw()
        .map_err(|err| err.to_string())?;
    let bars = |counts: &[u32], offset: f64, color: RGBColor| {
        counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(move |(i, n)| {
                let left = i as f64 * BUCKET + offset;
                Rectangle::new([(left, 0), (left + BUCKET / 2.0, *n)], color.filled())
            })
            .collect::<Vec<_>>()
    };
    chart
        .draw_series(bars(&ours_counts, 0.0, RGBColor(40, 90, 200)))
        .map_err(|err| err.to_string())?;
    chart
        .draw_series(bars(&theirs_counts, BUCKET / 2.0, RGBColor(160, 160, 160)))
        .map_err(|err| err.to_string())?;
    root.present().map_err(|err| err.to_string())
}
