//! `palaver-sim`: runs a scenario and writes its report.
// A command-line program: its report goes to standard output, errors to
// standard error.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use simulations::{Scenario, bench, report, run};

#[derive(Parser)]
#[command(
    name = "palaver-sim",
    version,
    about = "Palaver's churn simulation harness"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a scenario and writes result.json, report.md and SVG plots.
    Run {
        /// The scenario file (TOML), e.g. simulations/scenarios/smoke.toml.
        scenario: PathBuf,
        /// Where to write the results.
        #[arg(long)]
        out: PathBuf,
        /// Exit with status 1 when a threshold of the scenario fails.
        #[arg(long)]
        check: bool,
        /// Replace the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Replace the scenario's member count (to find how many this
        /// machine runs in real time).
        #[arg(long)]
        members: Option<u32>,
        /// Where the nodes' data directories go (default: a new directory
        /// in /dev/shm when it exists, so that a hundred sled databases
        /// flushing do not make the disk the bottleneck; else the system's
        /// temporary directory). Removed after the run.
        #[arg(long)]
        work_dir: Option<PathBuf>,
    },
    /// Runs a network benchmark on 127.0.0.1 (docs/benchmarks.md) and
    /// prints its figures.
    Bench {
        /// Which benchmark.
        #[arg(value_enum)]
        which: BenchKind,
        /// `backfill`: messages written while the member is away.
        #[arg(long, default_value_t = 10_000)]
        messages: u64,
        /// `cold-start`: how many starts.
        #[arg(long, default_value_t = 10)]
        rounds: u32,
        /// `bootstrap`: peers that connect.
        #[arg(long, default_value_t = 500)]
        peers: usize,
        /// `bootstrap`: seconds of idle during which CPU time is measured.
        #[arg(long, default_value_t = 60)]
        idle_secs: u64,
        /// `bootstrap`: the `palaver-node` binary (default: beside this one).
        #[arg(long)]
        node_bin: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BenchKind {
    /// 10,000 messages fetched from a replica by a returning member.
    Backfill,
    /// Start to the first delivered message.
    ColdStart,
    /// A bootstrap node holding 500 connected peers.
    Bootstrap,
}

/// mimalloc: the node's paths spend a fifth of their time in the
/// allocator, and it cut the author and receive paths' CPU by about a
/// quarter against glibc's (`docs/benchmarks.md`, third round).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let (scenario, out, check, seed, members, work_dir) = match Cli::parse().command {
        Command::Run {
            scenario,
            out,
            check,
            seed,
            members,
            work_dir,
        } => (scenario, out, check, seed, members, work_dir),
        Command::Bench {
            which,
            messages,
            rounds,
            peers,
            idle_secs,
            node_bin,
        } => {
            let options = BenchOptions {
                messages,
                rounds,
                peers,
                idle: std::time::Duration::from_secs(idle_secs),
                node_bin,
            };
            return run_bench(which, &options);
        }
    };
    let mut scenario = match Scenario::load(&scenario) {
        Ok(scenario) => scenario,
        Err(err) => {
            eprintln!("palaver-sim: {err}");
            return ExitCode::from(2);
        }
    };
    if let Some(seed) = seed {
        scenario.seed = seed;
    }
    if let Some(members) = members {
        scenario.members = members;
        scenario.name = format!("{}-at-{members}", scenario.name);
        if let Err(err) = scenario.validate() {
            eprintln!("palaver-sim: {err}");
            return ExitCode::from(2);
        }
    }
    let parent = work_dir.unwrap_or_else(|| {
        let shm = PathBuf::from("/dev/shm");
        if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        }
    });
    let work = match tempfile::Builder::new()
        .prefix("palaver-sim-")
        .tempdir_in(&parent)
    {
        Ok(work) => work,
        Err(err) => {
            eprintln!("palaver-sim: cannot create a working directory: {err}");
            return ExitCode::from(2);
        }
    };
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let result = match run(&scenario, work.path(), progress) {
        Ok(result) => result,
        Err(err) => {
            eprintln!("palaver-sim: {err}");
            return ExitCode::from(2);
        }
    };
    if let Err(err) = report::write(&result, &out) {
        eprintln!("palaver-sim: {err}");
        return ExitCode::from(2);
    }
    println!("{}", report::markdown(&result));
    println!("results in {}", out.display());
    if check && !result.passed() {
        eprintln!("palaver-sim: a threshold failed");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

struct BenchOptions {
    messages: u64,
    rounds: u32,
    peers: usize,
    idle: std::time::Duration,
    node_bin: Option<PathBuf>,
}

fn millis(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn run_bench(which: BenchKind, options: &BenchOptions) -> ExitCode {
    let work = match tempfile::Builder::new().prefix("palaver-bench-").tempdir() {
        Ok(work) => work,
        Err(err) => {
            eprintln!("palaver-sim: cannot create a working directory: {err}");
            return ExitCode::from(2);
        }
    };
    let result = match which {
        BenchKind::Backfill => bench::backfill(work.path(), options.messages).map(|result| {
            println!(
                "backfill: {} messages of ~1 KiB; author wrote them in {:.0} ms ({:.0} msg/s, durable, QUIC publish to the replica)",
                result.messages,
                millis(result.author_time),
                result.messages as f64 / result.author_time.as_secs_f64()
            );
            println!(
                "backfill: returning member, Node::start to all {} stored and shown: {:.0} ms (goal <= 1000 ms)",
                result.messages,
                millis(result.backfill_time)
            );
            let threads: Vec<String> = result
                .backfill_cpu
                .iter()
                .take(8)
                .map(|(name, cpu)| format!("{name} {:.0} ms", millis(*cpu)))
                .collect();
            println!("backfill: CPU by thread meanwhile: {}", threads.join(", "));
        }),
        BenchKind::ColdStart => bench::cold_start(work.path(), options.rounds).map(|result| {
            let mut times: Vec<f64> = result.start_to_message.iter().map(|time| millis(*time)).collect();
            times.sort_by(f64::total_cmp);
            let median = times.get(times.len() / 2).copied().unwrap_or(0.0);
            println!(
                "cold start: Node::start to first delivered message over {} rounds: median {median:.0} ms, min {:.0}, max {:.0} ({times:.0?})",
                times.len(),
                times.first().copied().unwrap_or(0.0),
                times.last().copied().unwrap_or(0.0),
            );
            println!(
                "cold start: keyfile unlock (Argon2id, default parameters) {:.0} ms; total median {:.0} ms (goal <= 500 ms)",
                millis(result.unlock),
                median + millis(result.unlock)
            );
        }),
        BenchKind::Bootstrap => {
            let bin = options.node_bin.clone().unwrap_or_else(|| {
                std::env::current_exe()
                    .ok()
                    .and_then(|exe| exe.parent().map(|dir| dir.join("palaver-node")))
                    .unwrap_or_else(|| PathBuf::from("palaver-node"))
            });
            bench::bootstrap(work.path(), &bin, options.peers, options.idle).map(|result| {
                let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
                let per_peer = result.rss_after.saturating_sub(result.rss_before) as f64
                    / result.connected.max(1) as f64
                    / 1024.0;
                println!(
                    "bootstrap: {} peers connected ({} still connected after the idle window)",
                    result.connected, result.connected_after_idle
                );
                println!(
                    "bootstrap: RSS {:.1} MiB before, {:.1} MiB with the peers: {per_peer:.1} KiB per peer",
                    mib(result.rss_before),
                    mib(result.rss_after)
                );
                println!(
                    "bootstrap: CPU {:.2} s over {:.0} s idle = {:.2} % of one core",
                    result.idle_cpu.as_secs_f64(),
                    result.idle.as_secs_f64(),
                    100.0 * result.idle_cpu.as_secs_f64() / result.idle.as_secs_f64()
                );
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("palaver-sim bench: {err}");
            ExitCode::from(2)
        }
    }
}
