//! `palaver-sim`: runs a scenario and writes its report.
// A command-line program: its report goes to standard output, errors to
// standard error.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use simulations::{Scenario, report, run};

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
}

fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let Cli {
        command:
            Command::Run {
                scenario,
                out,
                check,
                seed,
                members,
                work_dir,
            },
    } = Cli::parse();
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
