//! Errors of the command-line tool: a [`NodeError`] (category, stable code,
//! message) and the process exit status it maps to.

use std::fmt;
use std::path::Path;
use std::process::ExitCode;

use crate::api::{ErrorCategory, NodeError};

/// The exit statuses of `palaver-node` (documented in `docs/cli.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Success.
    Ok = 0,
    /// The node answered with an error.
    Node = 1,
    /// Bad command-line usage (also what `clap` exits with).
    Usage = 2,
    /// No `palaver-node run` is serving this data directory.
    NoNode = 3,
    /// A local problem: configuration, identity, data directory, I/O.
    Setup = 4,
    /// Another `palaver-node run` already owns this data directory.
    AlreadyRunning = 5,
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status as u8)
    }
}

/// An error of a `palaver-node` command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CliError {
    /// What went wrong (category, stable code, message).
    pub error: NodeError,
    /// The exit status it causes.
    pub status: ExitStatus,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for CliError {}

impl CliError {
    /// An error answered by the node.
    pub fn node(error: NodeError) -> Self {
        Self {
            error,
            status: ExitStatus::Node,
        }
    }

    /// A local set-up problem with its own code.
    pub fn setup(category: ErrorCategory, code: &str, message: impl Into<String>) -> Self {
        Self {
            error: NodeError::new(category, code, message),
            status: ExitStatus::Setup,
        }
    }

    /// A usage problem found after argument parsing.
    pub fn usage(code: &str, message: impl Into<String>) -> Self {
        Self {
            error: NodeError::new(ErrorCategory::Config, code, message),
            status: ExitStatus::Usage,
        }
    }

    /// Nothing answers on the data directory's control socket.
    pub fn no_node(data_dir: &Path) -> Self {
        Self {
            error: NodeError::new(
                ErrorCategory::Network,
                "cli.no_node",
                format!(
                    "no palaver-node is running for data directory {} (start one with `palaver-node run`)",
                    data_dir.display()
                ),
            ),
            status: ExitStatus::NoNode,
        }
    }

    /// The data directory's lock is held by another process.
    pub fn already_running(data_dir: &Path) -> Self {
        Self {
            error: NodeError::new(
                ErrorCategory::Config,
                "cli.already_running",
                format!(
                    "another palaver-node is already running for data directory {}",
                    data_dir.display()
                ),
            ),
            status: ExitStatus::AlreadyRunning,
        }
    }

    /// An I/O failure on a local file.
    pub fn io(code: &str, what: &str, path: &Path, err: &std::io::Error) -> Self {
        Self::setup(
            ErrorCategory::Storage,
            code,
            format!("{what} {}: {err}", path.display()),
        )
    }
}

impl From<identity_core::IdentityError> for CliError {
    fn from(err: identity_core::IdentityError) -> Self {
        Self {
            error: NodeError::from(err),
            status: ExitStatus::Setup,
        }
    }
}
