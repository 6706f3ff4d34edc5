//! Logs: `tracing` to standard error, human-readable or JSON, with the
//! level from `RUST_LOG` (default `info` for `init` and `run`, `warn` for
//! the client subcommands, which should print their answer and nothing
//! else).
//!
//! Nothing in this crate logs key material, passphrases, invite codes or
//! message text, at any level; a test runs whole scenarios at `trace` and
//! searches every process's log for them.

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Targets whose warnings are noise for an operator: Kademlia warns "Failed
/// to trigger bootstrap: No known peers" half a second after a node with no
/// peers yet starts listening (an automatic bootstrap this version of
/// libp2p-kad does not let us turn off). `RUST_LOG` overrides it.
pub const QUIET_BY_DEFAULT: &str = "libp2p_kad=error";

/// Installs the global `tracing` subscriber: standard error, `format`, the
/// level from `RUST_LOG` or else `default_level`. Calling it twice is
/// harmless (the second call changes nothing).
pub fn init(format: LogFormat, default_level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_level},{QUIET_BY_DEFAULT}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
