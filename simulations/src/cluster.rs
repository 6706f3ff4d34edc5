//! The simulated nodes: each a real `node::Node` with its own identity,
//! data directory and tokio runtime (one worker thread), so that a crash
//! can drop everything the node runs without a shutdown.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use identity_core::Identity;
use net_overlay::{Multiaddr, OverlayConfig};
use node::api::{Event, Request, Response};
use node::{Node, NodeConfig, NodeHandle, NodeTimers, ReplicaScope};

use crate::link::LinkNet;
use crate::metrics::Recorder;

/// How long a node may take to start or to answer a setup request.
const SETUP_WAIT: Duration = Duration::from_secs(60);

/// A failure of the harness itself (not of what it measures).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A node did not start.
    #[error("node {node} did not start: {message}")]
    Start {
        /// Which.
        node: String,
        /// Why.
        message: String,
    },
    /// A setup step failed.
    #[error("{step}: {message}")]
    Setup {
        /// Which step.
        step: String,
        /// Why.
        message: String,
    },
    /// Writing the results failed.
    #[error("cannot write {path}: {message}")]
    Output {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

/// A tokio runtime with one worker thread named `name`: every simulated
/// peer gets its own, so that dropping it stops all the peer runs.
pub(crate) fn peer_runtime(name: &str) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()
}

/// The overlay settings of a simulated peer: link-model index `index` of
/// `net`, a fresh memory port, no relay client, AutoNAT or mDNS.
pub(crate) fn overlay_config(net: &LinkNet, index: u32) -> OverlayConfig {
    let mut config = OverlayConfig::memory();
    config.transport = net.transport(index);
    config.relay_client = false;
    config.autonat = false;
    config.mdns = false;
    config.listen = vec![Multiaddr::empty().with(net_overlay::Protocol::Memory(0))];
    config
}

/// How every simulated node is configured.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    /// Protocol timers.
    pub timers: NodeTimers,
    /// Gossipsub settings.
    pub gossip: net_overlay::GossipConfig,
}

/// A simulated node.
pub struct SimNode {
    /// Its index in the link model (bootstrap nodes first, then members).
    pub index: u32,
    /// Its name in logs.
    pub name: String,
    identity: Identity,
    dir: PathBuf,
    replica: bool,
    /// Its address with `/p2p/…`.
    pub addr: Option<Multiaddr>,
    runtime: Option<tokio::runtime::Runtime>,
    handle: Option<NodeHandle>,
    /// One metrics registry per start (gossipsub's counters among them).
    registries: Vec<net_overlay::SharedRegistry>,
}

impl SimNode {
    /// A node that has not started yet, with its data under `root`.
    pub fn new(index: u32, name: String, root: &std::path::Path, replica: bool) -> Self {
        let identity = Identity::generate(&mut rand::rng());
        // Node logs name the user (see `node`'s span); this maps it back.
        tracing::info!(node = %name, user = %identity.user_id(), "simulated node");
        Self {
            index,
            dir: root.join(&name),
            name,
            identity,
            replica,
            addr: None,
            runtime: None,
            handle: None,
            registries: Vec::new(),
        }
    }

    /// Whether it runs.
    pub fn is_up(&self) -> bool {
        self.handle.is_some()
    }

    /// Its handle while it runs.
    pub fn handle(&self) -> Option<&NodeHandle> {
        self.handle.as_ref()
    }

    /// Starts (or restarts) the node and forwards its message events to
    /// `recorder`.
    pub fn start(
        &mut self,
        net: &LinkNet,
        bootstrap: Vec<Multiaddr>,
        settings: &NodeSettings,
        recorder: &Arc<Recorder>,
        member: Option<u32>,
    ) -> Result<(), SimError> {
        let fail = |message: String| SimError::Start {
            node: self.name.clone(),
            message,
        };
        let runtime =
            peer_runtime(&format!("sim-{}", self.name)).map_err(|err| fail(err.to_string()))?;
        // A fresh port at every start, as a desktop peer gets: peers learn
        // the new address through the bootstrap nodes and identify.
        let mut overlay = overlay_config(net, self.index);
        overlay.bootstrap = bootstrap;
        overlay.gossip = settings.gossip.clone();
        let mut config = NodeConfig::new(self.dir.clone(), overlay);
        config.display_name = Some(self.name.clone());
        config.timers = settings.timers.clone();
        config.event_capacity = 65_536;
        let registry: net_overlay::SharedRegistry = Arc::default();
        self.registries.push(registry.clone());
        config.metrics = Some(registry);
        if self.replica {
            config.replica = ReplicaScope::All;
        }
        let (handle, mut events) = runtime
            .block_on(Node::start(self.identity.clone(), config))
            .map_err(|err| fail(err.to_string()))?;
        let deadline = Instant::now() + SETUP_WAIT;
        let listen = loop {
            let status = runtime.block_on(handle.request(Request::Status));
            if let Ok(Response::Status(status)) = status
                && let Some(addr) = status.listen_addrs.first()
                && let Ok(addr) = addr.parse::<Multiaddr>()
            {
                break addr;
            }
            if Instant::now() > deadline {
                return Err(fail("no listen address".into()));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        self.addr = Some(
            format!("{listen}/p2p/{}", self.identity.user_id())
                .parse()
                .map_err(|err| fail(format!("address: {err}")))?,
        );
        if let Some(member) = member {
            let recorder = recorder.clone();
            runtime.spawn(async move {
                while let Some(event) = events.recv().await {
                    match event {
                        Event::Message { message, .. } | Event::DirectMessage { message, .. } => {
                            recorder.received(member, &message.text, message.edited);
                        }
                        Event::Lagged { missed } => recorder.lagged(missed),
                        _ => {}
                    }
                }
            });
        }
        self.runtime = Some(runtime);
        self.handle = Some(handle);
        Ok(())
    }

    /// Gossip messages this node received over all its starts:
    /// (all copies, first copies).
    pub fn gossip_received(&self) -> (u64, u64) {
        self.registries
            .iter()
            .map(|registry| crate::metrics::gossip_counts(&registry.lock()))
            .fold((0, 0), |(a, f), (na, nf)| (a + na, f + nf))
    }

    /// Its user id.
    pub fn user_id(&self) -> identity_core::UserId {
        self.identity.user_id()
    }

    /// Drops the node without a shutdown: its tasks stop wherever they are.
    pub fn crash(&mut self) {
        self.handle = None;
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// Shuts the node down gracefully.
    pub fn leave(&mut self) {
        if let (Some(handle), Some(runtime)) = (self.handle.take(), self.runtime.take()) {
            let _ = runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), handle.shutdown()).await
            });
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }

    /// Sends a request and waits for the answer (setup and measurement).
    pub fn request(&self, request: Request) -> Result<Response, String> {
        let (Some(handle), Some(runtime)) = (&self.handle, &self.runtime) else {
            return Err(format!("{} is down", self.name));
        };
        runtime
            .block_on(async {
                tokio::time::timeout(SETUP_WAIT, handle.request(request))
                    .await
                    .map_err(|_| node::api::NodeError::internal("timed out"))?
            })
            .map_err(|err| format!("{}: {}", err.code, err.message))
    }

    /// Runs `future` on the node's runtime without waiting for it.
    pub fn spawn<F>(&self, future: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        if let Some(runtime) = &self.runtime {
            runtime.spawn(future);
        }
    }
}
