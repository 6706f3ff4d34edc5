//! Where the app keeps its data and how its node is configured.

use std::path::PathBuf;

use net_overlay::{Multiaddr, OverlayConfig};
use node::NodeConfig;

use crate::model::Settings;

/// The default data directory: the OS data directory of Palaver, `desktop`
/// inside it (e.g. `~/.local/share/palaver/desktop` on Linux).
pub fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("org", "palaver", "palaver")
        .map(|dirs| dirs.data_dir().join("desktop"))
        .unwrap_or_else(|| PathBuf::from(".palaver-desktop"))
}

/// The node configuration of a desktop peer with `settings`: QUIC and TCP
/// on the chosen port, mDNS as chosen, the relay client on, and the extra
/// bootstrap peers.
pub fn node_config(data_dir: PathBuf, settings: &Settings) -> NodeConfig {
    let port = settings.listen_port;
    let listen: Vec<Multiaddr> = [
        format!("/ip4/0.0.0.0/udp/{port}/quic-v1"),
        format!("/ip4/0.0.0.0/tcp/{port}"),
    ]
    .iter()
    .filter_map(|text| text.parse().ok())
    .collect();
    let mut overlay = OverlayConfig::desktop(listen);
    overlay.mdns = settings.mdns;
    overlay.bootstrap = settings
        .bootstrap_peers
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect();
    let mut config = NodeConfig::new(data_dir, overlay);
    if !settings.display_name.trim().is_empty() {
        config.display_name = Some(settings.display_name.trim().to_owned());
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_shape_the_node_config() {
        let settings = Settings {
            display_name: "ada".into(),
            listen_port: 4100,
            mdns: false,
            bootstrap_peers: "/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWGjkiD46xwGNxYHtrp9r92feTXGKn7bAsAWgKde655GCJ\nnot an address\n".into(),
        };
        let config = node_config(PathBuf::from("/tmp/x"), &settings);
        assert!(!config.overlay.mdns);
        assert_eq!(config.overlay.bootstrap.len(), 1);
        assert!(
            config
                .overlay
                .listen
                .iter()
                .any(|a| a.to_string().contains("/udp/4100/quic-v1"))
        );
        assert_eq!(config.display_name.as_deref(), Some("ada"));
    }
}
