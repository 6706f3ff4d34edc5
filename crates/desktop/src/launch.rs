//! Where the app keeps its data and how its node is configured.

use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

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

/// The file in the data directory that keeps the port chosen for a peer
/// whose settings leave the port at 0.
const PORT_FILE: &str = "listen-port";

/// Fresh ports tried before giving up and letting the system pick one for
/// this run only.
const PORT_ATTEMPTS: usize = 16;

/// The port a desktop peer listens on: the settings' port, or when that is
/// 0, the port chosen the first time and kept in the data directory (a new
/// one, kept from then on, if another program took it). Peers' address
/// books and the invites we gave out name our address; a port that changed
/// at every start would leave them dialing the old one, so two desktop
/// peers without a bootstrap node could not find each other after both
/// restarted.
pub fn listen_port(data_dir: &Path, settings_port: u16) -> u16 {
    kept_port(data_dir, settings_port, IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// [`listen_port`] for a peer listening on `ip`.
fn kept_port(data_dir: &Path, settings_port: u16, ip: IpAddr) -> u16 {
    if settings_port != 0 {
        return settings_port;
    }
    let file = data_dir.join(PORT_FILE);
    let kept = std::fs::read_to_string(&file)
        .ok()
        .and_then(|text| text.trim().parse::<u16>().ok())
        .filter(|port| *port != 0);
    if let Some(port) = kept
        && is_free(ip, port)
    {
        return port;
    }
    let Some(port) = (0..PORT_ATTEMPTS).find_map(|_| free_port(ip)) else {
        tracing::warn!("no free port found to keep; listening on any port this time");
        return 0;
    };
    if let Err(err) =
        std::fs::create_dir_all(data_dir).and_then(|()| std::fs::write(&file, port.to_string()))
    {
        tracing::warn!(%err, "cannot remember the listen port; a new one is chosen next time");
    }
    port
}

/// Whether `port` can be bound on `ip` for both TCP and UDP (QUIC) now.
fn is_free(ip: IpAddr, port: u16) -> bool {
    TcpListener::bind((ip, port)).is_ok() && UdpSocket::bind((ip, port)).is_ok()
}

/// A port the system hands out for TCP that is free for UDP too.
fn free_port(ip: IpAddr) -> Option<u16> {
    let port = TcpListener::bind((ip, 0)).ok()?.local_addr().ok()?.port();
    is_free(ip, port).then_some(port)
}

/// The node configuration of a desktop peer with `settings` and its data
/// in `data_dir`: QUIC and TCP on the port from [`listen_port`], mDNS as
/// chosen, the relay client on, and the extra bootstrap peers.
pub fn node_config(data_dir: PathBuf, settings: &Settings) -> NodeConfig {
    let port = listen_port(&data_dir, settings.listen_port);
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
        assert!(
            !PathBuf::from("/tmp/x").join(PORT_FILE).exists(),
            "a chosen port is not written down"
        );
    }

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn kept_in(dir: &Path) -> Option<u16> {
        std::fs::read_to_string(dir.join(PORT_FILE))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    #[test]
    fn a_port_left_at_zero_is_chosen_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("not yet created");
        let first = kept_port(&data, 0, LOOPBACK);
        assert_ne!(first, 0);
        assert_eq!(kept_in(&data), Some(first));
        assert_eq!(kept_port(&data, 0, LOOPBACK), first);
        assert_eq!(kept_port(&data, 0, LOOPBACK), first);
    }

    #[test]
    fn a_kept_port_another_program_took_is_replaced_and_the_new_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let taken = TcpListener::bind((LOOPBACK, 0)).unwrap();
        let taken_port = taken.local_addr().unwrap().port();
        std::fs::write(dir.path().join(PORT_FILE), taken_port.to_string()).unwrap();
        let chosen = kept_port(dir.path(), 0, LOOPBACK);
        assert_ne!(chosen, taken_port);
        assert_ne!(chosen, 0);
        assert_eq!(kept_in(dir.path()), Some(chosen));
        drop(taken);
    }

    #[test]
    fn a_broken_port_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PORT_FILE), "not a port").unwrap();
        let chosen = kept_port(dir.path(), 0, LOOPBACK);
        assert_ne!(chosen, 0);
        assert_eq!(kept_in(dir.path()), Some(chosen));
    }

    #[test]
    fn a_port_set_in_the_settings_wins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PORT_FILE), "4321").unwrap();
        assert_eq!(kept_port(dir.path(), 4100, LOOPBACK), 4100);
        assert_eq!(kept_in(dir.path()), Some(4321));
    }
}
