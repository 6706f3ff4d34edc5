//! `palaver-node run`: lock the data directory, unlock the identity, start
//! the node, serve the control socket (and metrics), and on SIGINT, SIGTERM
//! or a `shutdown` request stop gracefully: the node drains its outbox
//! (bounded), saves its address book, flushes the ledger and closes its
//! connections; then the socket file is removed and the lock released.
//!
//! The exclusive lock on `<data-dir>/palaver.lock` is taken before anything
//! else is touched, so a second `run` on the same directory is refused and
//! leaves the first undisturbed. The kernel drops the lock when the process
//! dies, so a run killed with SIGKILL never blocks the next one.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use identity_core::Identity;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

use super::error::CliError;
use super::metrics_http;
use super::settings::RunSettings;
use super::socket::{ControlSocket, SocketContext};
use crate::Node;
use crate::api::{ErrorCategory, Request, Response};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "palaver.lock";
/// Longest wait for the node's own graceful shutdown.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// Exclusive ownership of a data directory, held while `run` runs.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

impl InstanceLock {
    /// Takes the lock of `data_dir`, or fails with
    /// [`CliError::already_running`].
    pub fn acquire(data_dir: &Path) -> Result<Self, CliError> {
        let path = data_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|err| CliError::io("cli.lock", "cannot open the lock file", &path, &err))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(CliError::already_running(data_dir));
            }
            Err(std::fs::TryLockError::Error(err)) => {
                return Err(CliError::io("cli.lock", "cannot lock", &path, &err));
            }
        }
        // The owner's pid, for operators; the lock, not the content, matters.
        let _ = file.set_len(0);
        let _ = writeln!(file, "{}", std::process::id());
        Ok(Self { _file: file })
    }
}

/// Creates the data directory with mode 0700 if it does not exist, and
/// warns if an existing one is open to others.
pub fn ensure_data_dir(data_dir: &Path) -> Result<(), CliError> {
    if !data_dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(|err| {
                CliError::io(
                    "cli.data_dir",
                    "cannot create the data directory",
                    data_dir,
                    &err,
                )
            })?;
    } else if let Ok(meta) = std::fs::metadata(data_dir)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %data_dir.display(),
            "the data directory is accessible to other users; consider chmod 700"
        );
    }
    Ok(())
}

/// Runs the node of `data_dir` until it is told to stop.
pub async fn run(
    data_dir: PathBuf,
    identity: Identity,
    settings: RunSettings,
    recorded_name: Option<String>,
) -> Result<(), CliError> {
    // Install the handlers first, so that a signal during start-up is
    // handled as a graceful stop once the node is up.
    let signal_error = |err: std::io::Error| {
        CliError::setup(ErrorCategory::Internal, "cli.signals", err.to_string())
    };
    let mut terminate = signal(SignalKind::terminate()).map_err(signal_error)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_error)?;

    let registry = settings.metrics.map(|_| {
        Arc::new(parking_lot::Mutex::new(
            prometheus_client::registry::Registry::default(),
        ))
    });
    let metrics_listener = match settings.metrics {
        Some(addr) => Some(metrics_http::bind(addr).await?),
        None => None,
    };

    let display_name = settings.display_name.clone().or(recorded_name);
    let mut config = settings.node_config(data_dir.clone(), registry.clone());
    config.display_name = display_name.clone();
    let user_id = identity.user_id().to_string();
    let (handle, _events) = Node::start(identity, config)
        .await
        .map_err(|error| CliError {
            error,
            status: super::error::ExitStatus::Setup,
        })?;
    if let Some(name) = display_name {
        let current = match handle.request(Request::Identity).await {
            Ok(Response::Identity(view)) => Some(view.display_name),
            _ => None,
        };
        if current.as_deref() != Some(name.as_str())
            && let Err(err) = handle.request(Request::SetDisplayName { name }).await
        {
            tracing::warn!(code = err.code, "cannot set the display name");
        }
    }

    let socket = match ControlSocket::bind(&data_dir).await {
        Ok(socket) => socket,
        Err(err) => {
            let _ = handle.shutdown().await;
            return Err(err);
        }
    };
    let (stopped_tx, stopped) = watch::channel(false);
    let (shutdown_tx, mut shutdown_rx) = mpsc::channel(1);
    let socket_path = socket.path().to_path_buf();
    let socket_task = tokio::spawn(socket.serve(SocketContext {
        handle: handle.clone(),
        shutdown: shutdown_tx,
        stopped: stopped.clone(),
    }));
    let metrics_task = match (metrics_listener, registry) {
        (Some(listener), Some(registry)) => {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "serving metrics on /metrics");
            }
            Some(tokio::spawn(metrics_http::serve(
                listener,
                registry,
                stopped.clone(),
            )))
        }
        _ => None,
    };
    tracing::info!(
        %user_id,
        data_dir = %data_dir.display(),
        socket = %socket_path.display(),
        "palaver-node running"
    );

    let reason = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
        _ = shutdown_rx.recv() => "a shutdown request",
    };
    tracing::info!(reason, "shutting down gracefully");
    let stopped_in_time = tokio::select! {
        result = tokio::time::timeout(SHUTDOWN_TIMEOUT, handle.shutdown()) => match result {
            Ok(Ok(())) => true,
            Ok(Err(err)) => {
                tracing::warn!(code = err.code, "the node did not stop cleanly");
                false
            }
            Err(_) => {
                tracing::warn!("the node did not stop within {SHUTDOWN_TIMEOUT:?}");
                false
            }
        },
        _ = terminate.recv() => { tracing::warn!("second signal: stopping at once"); false }
        _ = interrupt.recv() => { tracing::warn!("second signal: stopping at once"); false }
    };
    let _ = stopped_tx.send(true);
    let _ = socket_task.await;
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    let _ = std::fs::remove_file(&socket_path);
    if stopped_in_time {
        tracing::info!("palaver-node stopped");
        Ok(())
    } else {
        Err(CliError::setup(
            ErrorCategory::Internal,
            "cli.unclean_shutdown",
            "the node was stopped before its graceful shutdown finished",
        ))
    }
}
