//! The bridge between the UI thread and the node, which runs on its own
//! tokio runtime thread. The UI never waits: it starts the node with a
//! message, sends requests with `try_request` (the answer arrives on a
//! channel it polls each frame), and drains events each frame; the runtime
//! thread calls `request_repaint` whenever something arrives, so an idle UI
//! costs nothing.

use std::path::PathBuf;
use std::thread;

use identity_core::keystore::{KeyStore, OsKeyring, SecretVault, Unlock};
use identity_core::{Identity, KdfParams, Passphrase};
use node::api::{Event, NodeError, Request, Response};
use node::{Node, NodeConfig, NodeHandle};
use tokio::sync::oneshot;

/// Node events and life-cycle messages waiting for the UI, at most.
const INBOUND_CAPACITY: usize = 4096;

/// How the node is to be started.
pub enum StartRequest {
    /// Create a new identity, then start.
    Create {
        /// The display name.
        display_name: String,
        /// The passphrase; none: keep the secret in the OS keyring.
        passphrase: Option<Passphrase>,
    },
    /// Unlock the existing identity, then start.
    Unlock {
        /// The passphrase; none: the OS keyring holds the secret.
        passphrase: Option<Passphrase>,
    },
}

/// What the bridge tells the UI about the node's life.
pub enum Lifecycle {
    /// The node is running.
    Ready(NodeHandle),
    /// Starting failed (wrong passphrase, locked data directory …); the UI
    /// may try again.
    Failed(NodeError),
}

/// Something from the node for the UI.
pub enum Inbound {
    /// A life-cycle change.
    Lifecycle(Lifecycle),
    /// A node event.
    Event(Event),
}

/// The UI's end of the bridge.
pub struct NodeBridge {
    start_tx: tokio::sync::mpsc::Sender<StartRequest>,
    inbound: tokio::sync::mpsc::Receiver<Inbound>,
    handle: Option<NodeHandle>,
    thread: Option<thread::JoinHandle<()>>,
}

/// A request in flight; poll it each frame.
pub struct Pending {
    answer: oneshot::Receiver<Result<Response, NodeError>>,
}

impl Pending {
    /// The answer, once it has arrived.
    pub fn poll(&mut self) -> Option<Result<Response, NodeError>> {
        match self.answer.try_recv() {
            Ok(answer) => Some(answer),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(Err(NodeError::stopped())),
        }
    }
}

impl NodeBridge {
    /// Starts the runtime thread; the node itself starts on
    /// [`NodeBridge::start`]. `repaint` is called from the runtime thread
    /// whenever the UI has something new to show.
    pub fn new(config: NodeConfig, repaint: impl Fn() + Send + Sync + 'static) -> Self {
        let (start_tx, mut start_rx) = tokio::sync::mpsc::channel::<StartRequest>(2);
        // Bounded: if the UI stops draining (a hidden window), the
        // forwarder waits, the node's event stream lags, and the app gets
        // `Event::Lagged` and reloads what it shows.
        let (inbound_tx, inbound) = tokio::sync::mpsc::channel::<Inbound>(INBOUND_CAPACITY);
        let thread = thread::Builder::new()
            .name("palaver-node".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .thread_name("palaver-node-worker")
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = inbound_tx.try_send(Inbound::Lifecycle(Lifecycle::Failed(
                            NodeError::internal(format!("cannot start the node's runtime: {err}")),
                        )));
                        repaint();
                        return;
                    }
                };
                runtime.block_on(async move {
                    while let Some(request) = start_rx.recv().await {
                        match start_node(&config, request).await {
                            Ok((_lock, handle, mut events)) => {
                                let _ = inbound_tx
                                    .send(Inbound::Lifecycle(Lifecycle::Ready(handle)))
                                    .await;
                                repaint();
                                while let Some(event) = events.recv().await {
                                    if inbound_tx.send(Inbound::Event(event)).await.is_err() {
                                        break;
                                    }
                                    repaint();
                                }
                                break;
                            }
                            Err(err) => {
                                let _ = inbound_tx
                                    .send(Inbound::Lifecycle(Lifecycle::Failed(err)))
                                    .await;
                                repaint();
                            }
                        }
                    }
                });
            })
            .unwrap_or_else(|err| panic!("cannot spawn the node thread: {err}"));
        Self {
            start_tx,
            inbound,
            handle: None,
            thread: Some(thread),
        }
    }

    /// Asks the runtime thread to create or unlock the identity and start
    /// the node. The answer arrives as an [`Inbound::Lifecycle`].
    /// (The UI shows a spinner meanwhile, so at most one is in flight.)
    pub fn start(&self, request: StartRequest) {
        let _ = self.start_tx.try_send(request);
    }

    /// Everything that arrived since the last call.
    pub fn drain(&mut self) -> Vec<Inbound> {
        let mut out = Vec::new();
        while let Ok(inbound) = self.inbound.try_recv() {
            if let Inbound::Lifecycle(Lifecycle::Ready(handle)) = &inbound {
                self.handle = Some(handle.clone());
            }
            out.push(inbound);
        }
        out
    }

    /// Sends a request without blocking.
    pub fn request(&self, request: Request) -> Result<Pending, NodeError> {
        let handle = self.handle.as_ref().ok_or_else(NodeError::stopped)?;
        handle.try_request(request).map(|answer| Pending { answer })
    }

    /// Whether the node is running.
    pub fn is_ready(&self) -> bool {
        self.handle.is_some()
    }

    /// Stops the node (on window close), waiting at most a few seconds
    /// until its thread has ended — and so has released the data
    /// directory's lock.
    pub fn shutdown(&mut self) {
        let Some(handle) = self.handle.take() else {
            return;
        };
        let Ok(answer) = handle.try_request(Request::Shutdown) else {
            return;
        };
        drop(handle);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut pending = Pending { answer };
        let mut answered = false;
        while std::time::Instant::now() < deadline {
            answered = answered || pending.poll().is_some();
            // Keep the thread's last events flowing so it can finish.
            while self.inbound.try_recv().is_ok() {}
            if answered
                && self
                    .thread
                    .as_ref()
                    .is_none_or(thread::JoinHandle::is_finished)
            {
                if let Some(thread) = self.thread.take() {
                    let _ = thread.join();
                }
                return;
            }
            thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Where the identity file lives.
pub fn identity_store(data_dir: &std::path::Path) -> KeyStore {
    KeyStore::new(data_dir.to_path_buf())
}

/// Whether an identity exists, and whether it is kept in the OS keyring
/// (then no passphrase is asked).
pub fn identity_state(data_dir: &std::path::Path) -> IdentityState {
    let store = identity_store(data_dir);
    if !store.exists() {
        return IdentityState::Missing;
    }
    let keyring = std::fs::read(store.path())
        .ok()
        .and_then(|bytes| identity_core::Keyfile::parse(&bytes).ok())
        .is_some_and(|keyfile| matches!(keyfile.protection(), identity_core::Protection::Keyring));
    IdentityState::Present { keyring }
}

/// What is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityState {
    /// No identity yet: onboarding.
    Missing,
    /// An identity; `keyring` when the OS keyring unlocks it.
    Present {
        /// Kept in the OS keyring.
        keyring: bool,
    },
}

/// Whether the OS keyring works here (to offer it at onboarding).
pub fn keyring_available() -> bool {
    OsKeyring::new("palaver").probe().is_ok()
}

/// Exclusive ownership of the data directory while the node runs: a second
/// `palaver` (or a `palaver-node`) on the same directory gets a clear error
/// instead of a database failure. The OS drops the lock if we crash.
pub struct DataDirLock {
    _file: std::fs::File,
}

impl DataDirLock {
    /// Takes the lock of `data_dir` (creating the directory).
    pub fn acquire(data_dir: &std::path::Path) -> Result<Self, NodeError> {
        let io = |what: &str, err: std::io::Error| {
            NodeError::new(
                node::api::ErrorCategory::Config,
                "desktop.data_dir",
                format!("{what} {}: {err}", data_dir.display()),
            )
        };
        std::fs::create_dir_all(data_dir)
            .map_err(|err| io("cannot create the data directory", err))?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(data_dir.join(node::headless::run::LOCK_FILE))
            .map_err(|err| io("cannot open the lock file in", err))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(NodeError::new(
                node::api::ErrorCategory::Config,
                "desktop.already_running",
                format!(
                    "Palaver is already running with the data directory {}: close the other window (or palaver-node) first",
                    data_dir.display()
                ),
            )),
            Err(std::fs::TryLockError::Error(err)) => Err(io("cannot lock", err)),
        }
    }
}

async fn start_node(
    config: &NodeConfig,
    request: StartRequest,
) -> Result<(DataDirLock, NodeHandle, node::EventStream), NodeError> {
    let lock = DataDirLock::acquire(&config.data_dir)?;
    let data_dir: PathBuf = config.data_dir.clone();
    let (identity, display_name) =
        tokio::task::spawn_blocking(move || unlock_or_create(&data_dir, request))
            .await
            .map_err(|err| NodeError::internal(format!("identity task: {err}")))??;
    let mut config = config.clone();
    config.display_name = chosen_display_name(&config, display_name);
    let (handle, events) = Node::start(identity, config).await?;
    Ok((lock, handle, events))
}

/// The name we go by: the one just chosen at onboarding, else the one in
/// the settings, else the one `palaver-node init --name` recorded.
fn chosen_display_name(config: &NodeConfig, created: Option<String>) -> Option<String> {
    created
        .or_else(|| config.display_name.clone())
        .or_else(|| node::headless::identity::recorded_display_name(&config.data_dir))
}

/// Creates or unlocks the identity (Argon2id runs here, off the UI thread).
fn unlock_or_create(
    data_dir: &std::path::Path,
    request: StartRequest,
) -> Result<(Identity, Option<String>), NodeError> {
    let store = identity_store(data_dir);
    let keyring = OsKeyring::new("palaver");
    match request {
        StartRequest::Create {
            display_name,
            passphrase,
        } => {
            let identity = Identity::generate_os();
            let vault: Option<&dyn SecretVault> = if passphrase.is_none() {
                Some(&keyring)
            } else {
                None
            };
            store.create(
                &mut rand::rng(),
                &identity,
                passphrase.as_ref(),
                vault,
                KdfParams::DEFAULT,
            )?;
            // Recorded as `palaver-node init --name` does, so a headless
            // node on this directory goes by the same name.
            let path = data_dir.join(node::headless::identity::DISPLAY_NAME_FILE);
            if let Err(err) = std::fs::write(&path, format!("{display_name}\n")) {
                tracing::warn!(%err, "cannot record the display name");
            }
            Ok((identity, Some(display_name)))
        }
        StartRequest::Unlock { passphrase } => {
            let identity = match &passphrase {
                Some(passphrase) => store.unlock(Unlock::Passphrase(passphrase))?,
                None => store.unlock(Unlock::Vault(&keyring))?,
            };
            Ok((identity, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_app_per_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let err = DataDirLock::acquire(dir.path()).err().unwrap();
        assert_eq!(err.code, "desktop.already_running");
        assert!(err.message.contains("already running"), "{}", err.message);
        drop(first);
        DataDirLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn the_display_name_comes_from_onboarding_settings_or_the_cli() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = NodeConfig::new(dir.path(), net_overlay::OverlayConfig::memory());
        assert_eq!(chosen_display_name(&config, None), None);
        std::fs::write(
            dir.path().join(node::headless::identity::DISPLAY_NAME_FILE),
            "ada\n",
        )
        .unwrap();
        assert_eq!(chosen_display_name(&config, None).as_deref(), Some("ada"));
        config.display_name = Some("bea".into());
        assert_eq!(chosen_display_name(&config, None).as_deref(), Some("bea"));
        assert_eq!(
            chosen_display_name(&config, Some("cy".into())).as_deref(),
            Some("cy")
        );
    }
}
