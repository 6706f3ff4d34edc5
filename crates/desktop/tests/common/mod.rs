//! Shared by the app's integration tests and its flood benchmark: a host
//! node on its own runtime, the app's node configuration over the memory
//! transport, and a kittest harness that runs the whole app.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use desktop::{PalaverApp, ui};
use egui_kittest::Harness;
use identity_core::Identity;
use net_overlay::{Multiaddr, OverlayConfig};
use node::api::{HistoryPage, Request, Response};
use node::{Node, NodeConfig, NodeHandle, NodeTimers};

pub const WAIT: Duration = Duration::from_secs(60);

pub fn memory_config(dir: std::path::PathBuf, bootstrap: Vec<Multiaddr>) -> NodeConfig {
    let mut overlay = OverlayConfig::memory();
    overlay.mdns = false;
    overlay.listen = vec!["/memory/0".parse().unwrap()];
    overlay.bootstrap = bootstrap;
    let mut config = NodeConfig::new(dir, overlay);
    config.timers = NodeTimers::fast();
    config
}

pub struct Host {
    pub runtime: tokio::runtime::Runtime,
    pub handle: NodeHandle,
    pub addr: Multiaddr,
    _dir: tempfile::TempDir,
}

impl Host {
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let identity = Identity::generate(&mut rand::rng());
        let mut config = memory_config(dir.path().to_path_buf(), Vec::new());
        config.display_name = Some("host".into());
        let user = identity.user_id();
        let (handle, _events) = runtime
            .block_on(Node::start(identity, config))
            .expect("host starts");
        let listen = wait_for("the host's address", || {
            match runtime.block_on(handle.request(Request::Status)).ok()? {
                Response::Status(status) => status.listen_addrs.first().cloned(),
                _ => None,
            }
        });
        let addr = format!("{listen}/p2p/{user}").parse().unwrap();
        Self {
            runtime,
            handle,
            addr,
            _dir: dir,
        }
    }

    pub fn request(&self, request: Request) -> Response {
        self.runtime
            .block_on(self.handle.request(request))
            .expect("host request")
    }

    /// Creates a private server; returns its id.
    pub fn create_server(&self, name: &str) -> String {
        match self.request(Request::CreateServer {
            name: name.into(),
            description: String::new(),
            public: false,
        }) {
            Response::Server(detail) => detail.server.server_id,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// A new invite code to `server`.
    pub fn invite(&self, server: &str) -> String {
        match self.request(Request::CreateInvite {
            server: server.into(),
            expires_in_ms: None,
            max_uses: None,
        }) {
            Response::Invite(invite) => invite.invite,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn texts(&self, server: &str) -> Vec<String> {
        match self.request(Request::History {
            server: server.into(),
            channel: "general".into(),
            limit: 100,
            before: None,
        }) {
            Response::History(HistoryPage { messages, .. }) => {
                messages.into_iter().map(|m| m.text).collect()
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

pub fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs frames until `done` holds for the app.
pub fn pump(harness: &mut Harness<'_, PalaverApp>, what: &str, done: impl Fn(&PalaverApp) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        harness.step();
        if done(harness.state()) {
            harness.step();
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; toasts: {:?}",
            harness.state().model.toasts
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn app_harness(app: PalaverApp) -> Harness<'static, PalaverApp> {
    Harness::builder()
        .with_size(egui::vec2(1100.0, 720.0))
        .build_ui_state(
            |ui, app: &mut PalaverApp| {
                app.process();
                let actions = ui::draw(ui, &mut app.model);
                let ctx = ui.ctx().clone();
                app.dispatch(actions, &ctx);
            },
            app,
        )
}
