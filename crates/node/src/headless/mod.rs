//! The headless node `palaver-node`: a bootstrap / relay / replica node and
//! a scriptable command-line client of it.
//!
//! `palaver-node run` starts a [`crate::Node`] for a data directory and
//! serves its API on a control socket (`<data-dir>/palaver.sock`, see
//! [`socket`]); every other subcommand but `init` is a client of that
//! socket. The binary only parses the command line, sets up logging and
//! calls [`Invocation::execute`]:
//!
//! ```no_run
//! use clap::Parser;
//! use node::headless::{Invocation, cli::Cli, logging};
//!
//! fn main() -> std::process::ExitCode {
//!     let invocation = match Invocation::prepare(Cli::parse()) {
//!         Ok(invocation) => invocation,
//!         Err(failure) => return failure.report().into(),
//!     };
//!     logging::init(invocation.log_format(), invocation.default_log_level());
//!     invocation.execute().into()
//! }
//! ```
//!
//! `docs/cli.md` documents the subcommands, their `--json` output, the exit
//! statuses and the socket protocol; `docs/operator.md` how to run a
//! bootstrap node.

pub mod cli;
mod commands;
pub mod error;
pub mod identity;
pub mod logging;
pub mod metrics_http;
pub mod output;
pub mod run;
pub mod settings;
pub mod socket;

use std::path::PathBuf;
use std::time::Duration;

use cli::{Cli, Command};
use error::{CliError, ExitStatus};
use logging::LogFormat;
use output::Output;
use settings::RunSettings;

use crate::api::ErrorCategory;

/// The data directory's sub-folder of the OS data directory.
pub const DEFAULT_DATA_SUBDIR: &str = "node";

/// The default data directory: the OS data directory of Palaver plus
/// `node` (`~/.local/share/palaver/node` on Linux,
/// `~/Library/Application Support/org.palaver.palaver/node` on macOS).
pub fn default_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("org", "palaver", "palaver")
        .map(|dirs| dirs.data_dir().join(DEFAULT_DATA_SUBDIR))
}

/// A failure before the command could run.
#[derive(Debug)]
pub struct Failure {
    error: CliError,
    json: bool,
}

impl Failure {
    /// Prints the error and gives the exit status.
    pub fn report(self) -> ExitStatus {
        Output::new(self.json).error(&self.error);
        self.error.status
    }
}

/// A parsed command line with its data directory and (for `run`) its
/// merged settings, ready to execute.
#[derive(Debug)]
pub struct Invocation {
    cli: Cli,
    data_dir: PathBuf,
    run_settings: Option<RunSettings>,
}

impl Invocation {
    /// Resolves the data directory and, for `run`, loads the config file
    /// and merges the flags.
    pub fn prepare(cli: Cli) -> Result<Self, Failure> {
        let json = cli.global.json;
        let fail = |error| Failure { error, json };
        let data_dir = match cli.global.data_dir.clone().or_else(default_data_dir) {
            Some(dir) => dir,
            None => {
                return Err(fail(CliError::usage(
                    "cli.no_data_dir",
                    "cannot find the OS data directory; pass --data-dir DIR",
                )));
            }
        };
        let run_settings = match &cli.command {
            Command::Run(args) => Some(RunSettings::from_args(args).map_err(fail)?),
            _ => None,
        };
        Ok(Self {
            cli,
            data_dir,
            run_settings,
        })
    }

    /// The log format (`run` may choose JSON).
    pub fn log_format(&self) -> LogFormat {
        self.run_settings
            .as_ref()
            .map_or(LogFormat::Pretty, |settings| settings.log_format)
    }

    /// The level when `RUST_LOG` is not set: `info` for `init` and `run`,
    /// `warn` for client subcommands.
    pub fn default_log_level(&self) -> &'static str {
        if self.cli.command.is_client() {
            "warn"
        } else {
            "info"
        }
    }

    /// Runs the command, prints its result or error, and gives the exit
    /// status.
    pub fn execute(self) -> ExitStatus {
        let out = Output::new(self.cli.global.json);
        match self.execute_inner(out) {
            Ok(()) => ExitStatus::Ok,
            Err(err) => {
                out.error(&err);
                err.status
            }
        }
    }

    fn execute_inner(self, out: Output) -> Result<(), CliError> {
        let Invocation {
            cli,
            data_dir,
            run_settings,
        } = self;
        match cli.command {
            Command::Init(args) => {
                run::ensure_data_dir(&data_dir)?;
                let passphrase = identity::passphrase(cli.global.passphrase_file.as_deref())?;
                let created = identity::init(&data_dir, passphrase.as_ref(), args.name.as_deref())?;
                tracing::debug!(user_id = %created.user_id, protection = created.protection, "identity created");
                out.value(
                    &serde_json::json!({
                        "user_id": created.user_id,
                        "protection": created.protection,
                        "data_dir": data_dir.display().to_string(),
                    }),
                    &format!(
                        "created identity {} (protected by {}) in {}",
                        created.user_id,
                        created.protection,
                        data_dir.display()
                    ),
                );
                Ok(())
            }
            Command::Run(_) => {
                let settings = run_settings.ok_or_else(|| {
                    CliError::setup(ErrorCategory::Internal, "internal", "run settings missing")
                })?;
                run::ensure_data_dir(&data_dir)?;
                // Before anything else in the directory is touched.
                let _lock = run::InstanceLock::acquire(&data_dir)?;
                let passphrase = identity::passphrase(cli.global.passphrase_file.as_deref())?;
                let identity = identity::unlock(&data_dir, passphrase.as_ref())?;
                drop(passphrase);
                let recorded_name = identity::recorded_display_name(&data_dir);
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .thread_name("palaver-node")
                    .build()
                    .map_err(|err| {
                        CliError::setup(ErrorCategory::Internal, "cli.runtime", err.to_string())
                    })?;
                let result =
                    runtime.block_on(run::run(data_dir, identity, settings, recorded_name));
                runtime.shutdown_timeout(Duration::from_secs(2));
                result
            }
            command => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|err| {
                        CliError::setup(ErrorCategory::Internal, "cli.runtime", err.to_string())
                    })?;
                runtime.block_on(commands::execute(command, &data_dir, out))
            }
        }
    }
}
