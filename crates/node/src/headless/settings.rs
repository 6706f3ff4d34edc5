//! The settings of `palaver-node run`: a TOML file (`--config FILE`) with
//! the same settings as the flags, and the flags on top. A flag that is
//! given replaces the file's value; a repeatable flag given at least once
//! replaces the file's whole list.
//!
//! ```toml
//! display_name = "bootstrap-1"
//! listen = ["/ip4/0.0.0.0/udp/4001/quic-v1", "/ip4/0.0.0.0/tcp/4001"]
//! external = ["/ip4/203.0.113.7/udp/4001/quic-v1", "/ip4/203.0.113.7/tcp/4001"]
//! bootstrap = []
//! replica_all = true          # or: replica_for = ["<server id>", …]
//! metrics = "127.0.0.1:9464"
//! log_format = "json"
//!
//! [timers]                    # optional; the defaults suit production
//! sync_interval = "30s"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use messaging_proto::ServerId;
use net_overlay::{Multiaddr, OverlayConfig};
use serde::Deserialize;

use super::cli::{RunArgs, parse_duration};
use super::error::CliError;
use super::logging::LogFormat;
use crate::api::ErrorCategory;
use crate::config::{NodeConfig, NodeTimers, ReplicaScope};

/// The listen addresses used when neither flags nor the file name any.
pub const DEFAULT_LISTEN: [&str; 2] = ["/ip4/0.0.0.0/udp/4001/quic-v1", "/ip4/0.0.0.0/tcp/4001"];
/// Config files are small; a larger file is refused.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The contents of a `--config` file. Unknown keys are refused, so a typo
/// does not go unnoticed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// The display name others see.
    pub display_name: Option<String>,
    /// Listen multiaddrs.
    pub listen: Option<Vec<String>>,
    /// Public multiaddrs.
    pub external: Option<Vec<String>>,
    /// Peers to keep connected.
    pub bootstrap: Option<Vec<String>>,
    /// Servers (ids) to replicate.
    pub replica_for: Option<Vec<String>>,
    /// Replicate every server.
    pub replica_all: Option<bool>,
    /// Metrics address (`host:port`).
    pub metrics: Option<String>,
    /// `pretty` or `json`.
    pub log_format: Option<LogFormat>,
    /// Most established connections.
    pub max_connections: Option<u32>,
    /// Protocol timers (durations such as `"30s"`).
    pub timers: Option<TimerSettings>,
}

/// Optional protocol timers in a config file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimerSettings {
    /// Mean interval of periodic syncs.
    pub sync_interval: Option<String>,
    /// First outbox retry delay.
    pub outbox_first_retry: Option<String>,
    /// Longest outbox retry delay.
    pub outbox_max_retry: Option<String>,
    /// How long a join waits for a bootstrap peer.
    pub join_timeout: Option<String>,
}

impl FileSettings {
    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Self, CliError> {
        use std::io::Read;
        let file = std::fs::File::open(path)
            .map_err(|err| CliError::io("cli.config_unreadable", "cannot read", path, &err))?;
        let mut text = String::new();
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|err| CliError::io("cli.config_unreadable", "cannot read", path, &err))?;
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(config_error(path, "the file is larger than 1 MiB"));
        }
        Self::parse(&text).map_err(|message| config_error(path, &message))
    }

    /// Parses the TOML text of a config file.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|err| err.to_string())
    }
}

fn config_error(path: &Path, message: &str) -> CliError {
    CliError::setup(
        ErrorCategory::Config,
        "cli.config_invalid",
        format!("invalid config file {}: {message}", path.display()),
    )
}

fn invalid(message: String) -> CliError {
    CliError::setup(ErrorCategory::Config, "cli.config_invalid", message)
}

/// The resolved settings of `run`.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSettings {
    /// Listen multiaddrs.
    pub listen: Vec<Multiaddr>,
    /// Public multiaddrs.
    pub external: Vec<Multiaddr>,
    /// Peers to keep connected.
    pub bootstrap: Vec<Multiaddr>,
    /// Which servers to replicate.
    pub replica: ReplicaScope,
    /// Where to serve metrics.
    pub metrics: Option<SocketAddr>,
    /// Log format.
    pub log_format: LogFormat,
    /// Display name from the flags or the file.
    pub display_name: Option<String>,
    /// Most established connections (none: the overlay's default).
    pub max_connections: Option<u32>,
    /// Protocol timers.
    pub timers: TimerValues,
}

/// Timers after merging (none: the node's default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimerValues {
    /// Mean interval of periodic syncs.
    pub sync_interval: Option<Duration>,
    /// First outbox retry delay.
    pub outbox_first_retry: Option<Duration>,
    /// Longest outbox retry delay.
    pub outbox_max_retry: Option<Duration>,
    /// How long a join waits for a bootstrap peer.
    pub join_timeout: Option<Duration>,
}

fn addrs(key: &str, texts: &[String]) -> Result<Vec<Multiaddr>, CliError> {
    texts
        .iter()
        .map(|text| {
            text.parse::<Multiaddr>()
                .map_err(|err| invalid(format!("{key}: {text:?} is not a multiaddr: {err}")))
        })
        .collect()
}

fn timer(key: &str, text: &Option<String>) -> Result<Option<Duration>, CliError> {
    text.as_deref()
        .map(|text| parse_duration(text).map_err(|err| invalid(format!("timers.{key}: {err}"))))
        .transpose()
}

fn servers(texts: &[String]) -> Result<Vec<ServerId>, CliError> {
    texts
        .iter()
        .map(|text| {
            text.parse::<ServerId>().map_err(|_| {
                invalid(format!(
                    "replica_for: {text:?} is not a server id (64 hex digits)"
                ))
            })
        })
        .collect()
}

impl RunSettings {
    /// Merges a config file (if any) and the flags; flags win.
    pub fn resolve(file: FileSettings, args: &RunArgs) -> Result<Self, CliError> {
        let pick = |flags: &[Multiaddr], key: &str, from_file: &Option<Vec<String>>| {
            if flags.is_empty() {
                addrs(key, from_file.as_deref().unwrap_or_default())
            } else {
                Ok(flags.to_vec())
            }
        };
        let mut listen = pick(&args.listen, "listen", &file.listen)?;
        if listen.is_empty() {
            listen = addrs("listen", &DEFAULT_LISTEN.map(str::to_owned))?;
        }
        let external = pick(&args.external, "external", &file.external)?;
        let bootstrap = pick(&args.bootstrap, "bootstrap", &file.bootstrap)?;
        let replica = if args.replica_all {
            ReplicaScope::All
        } else if !args.replica_for.is_empty() {
            ReplicaScope::Servers(servers(&args.replica_for)?)
        } else {
            match (file.replica_all.unwrap_or(false), &file.replica_for) {
                (true, Some(list)) if !list.is_empty() => {
                    return Err(invalid(
                        "replica_all and replica_for exclude each other".to_owned(),
                    ));
                }
                (true, _) => ReplicaScope::All,
                (false, Some(list)) if !list.is_empty() => ReplicaScope::Servers(servers(list)?),
                (false, _) => ReplicaScope::None,
            }
        };
        let metrics = match (args.metrics, &file.metrics) {
            (Some(addr), _) => Some(addr),
            (None, Some(text)) => Some(text.parse::<SocketAddr>().map_err(|err| {
                invalid(format!(
                    "metrics: {text:?} is not an address such as 127.0.0.1:9464: {err}"
                ))
            })?),
            (None, None) => None,
        };
        let timers = file.timers.unwrap_or_default();
        Ok(Self {
            listen,
            external,
            bootstrap,
            replica,
            metrics,
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            display_name: args.display_name.clone().or(file.display_name),
            max_connections: file.max_connections,
            timers: TimerValues {
                sync_interval: timer("sync_interval", &timers.sync_interval)?,
                outbox_first_retry: timer("outbox_first_retry", &timers.outbox_first_retry)?,
                outbox_max_retry: timer("outbox_max_retry", &timers.outbox_max_retry)?,
                join_timeout: timer("join_timeout", &timers.join_timeout)?,
            },
        })
    }

    /// Loads `args.config` (if given) and merges the flags.
    pub fn from_args(args: &RunArgs) -> Result<Self, CliError> {
        let file = match &args.config {
            Some(path) => FileSettings::load(path)?,
            None => FileSettings::default(),
        };
        Self::resolve(file, args)
    }

    /// The node configuration: a bootstrap / relay node (Kademlia server
    /// mode, relay server, no mDNS) with these settings.
    pub fn node_config(
        &self,
        data_dir: PathBuf,
        metrics: Option<net_overlay::SharedRegistry>,
    ) -> NodeConfig {
        let mut overlay = OverlayConfig::bootstrap_node(self.listen.clone());
        overlay.external_addrs = self.external.clone();
        overlay.bootstrap = self.bootstrap.clone();
        if let Some(max) = self.max_connections {
            overlay.max_connections = max;
        }
        let mut config = NodeConfig::new(data_dir, overlay);
        config.display_name = self.display_name.clone();
        config.replica = self.replica.clone();
        config.metrics = metrics;
        let defaults = NodeTimers::default();
        config.timers = NodeTimers {
            sync_interval: self.timers.sync_interval.unwrap_or(defaults.sync_interval),
            outbox_first_retry: self
                .timers
                .outbox_first_retry
                .unwrap_or(defaults.outbox_first_retry),
            outbox_max_retry: self
                .timers
                .outbox_max_retry
                .unwrap_or(defaults.outbox_max_retry),
            join_timeout: self.timers.join_timeout.unwrap_or(defaults.join_timeout),
            ..defaults
        };
        config
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const SERVER: &str = "0101010101010101010101010101010101010101010101010101010101010101";

    fn file(text: &str) -> FileSettings {
        FileSettings::parse(text).unwrap()
    }

    #[test]
    fn defaults_without_file_or_flags() {
        let settings = RunSettings::resolve(FileSettings::default(), &RunArgs::default()).unwrap();
        let listen: Vec<String> = settings.listen.iter().map(ToString::to_string).collect();
        assert_eq!(listen, DEFAULT_LISTEN);
        assert!(settings.external.is_empty() && settings.bootstrap.is_empty());
        assert_eq!(settings.replica, ReplicaScope::None);
        assert_eq!(settings.metrics, None);
        assert_eq!(settings.log_format, LogFormat::Pretty);
        let config = settings.node_config(PathBuf::from("/tmp/x"), None);
        assert!(config.overlay.relay_server);
        assert!(!config.overlay.mdns);
        assert_eq!(config.overlay.kad_mode, net_overlay::KadMode::Server);
    }

    #[test]
    fn the_file_is_used_and_flags_override_it() {
        let text = format!(
            r#"
            display_name = "boot"
            listen = ["/ip4/127.0.0.1/udp/5000/quic-v1", "/ip4/127.0.0.1/tcp/5000"]
            external = ["/ip4/203.0.113.7/udp/5000/quic-v1"]
            replica_for = ["{SERVER}"]
            metrics = "127.0.0.1:9464"
            log_format = "json"
            max_connections = 100
            [timers]
            sync_interval = "5s"
            "#
        );
        let from_file = RunSettings::resolve(file(&text), &RunArgs::default()).unwrap();
        assert_eq!(from_file.listen.len(), 2);
        assert_eq!(from_file.external.len(), 1);
        assert_eq!(
            from_file.replica,
            ReplicaScope::Servers(vec![SERVER.parse().unwrap()])
        );
        assert_eq!(from_file.metrics, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(from_file.log_format, LogFormat::Json);
        assert_eq!(from_file.display_name.as_deref(), Some("boot"));
        assert_eq!(from_file.timers.sync_interval, Some(Duration::from_secs(5)));
        let config = from_file.node_config(PathBuf::from("/tmp/x"), None);
        assert_eq!(config.timers.sync_interval, Duration::from_secs(5));
        assert_eq!(
            config.timers.outbox_max_retry,
            NodeTimers::default().outbox_max_retry
        );
        assert_eq!(config.overlay.max_connections, 100);

        let args = RunArgs {
            listen: vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()],
            replica_all: true,
            metrics: Some("127.0.0.1:1".parse().unwrap()),
            log_format: Some(LogFormat::Pretty),
            display_name: Some("flag".to_owned()),
            ..RunArgs::default()
        };
        let merged = RunSettings::resolve(file(&text), &args).unwrap();
        // Repeatable flags replace the whole list; unset flags keep the file's.
        assert_eq!(merged.listen, args.listen);
        assert_eq!(merged.external, from_file.external);
        assert_eq!(merged.replica, ReplicaScope::All);
        assert_eq!(merged.metrics, args.metrics);
        assert_eq!(merged.log_format, LogFormat::Pretty);
        assert_eq!(merged.display_name.as_deref(), Some("flag"));
    }

    #[test]
    fn bad_files_are_refused_with_their_key() {
        assert!(FileSettings::parse("listen = [\"/ip4/1.2.3.4/tcp/1\"]\nlisten_typo = 1").is_err());
        assert!(FileSettings::parse("replica_all = \"yes\"").is_err());
        assert!(FileSettings::parse("log_format = \"xml\"").is_err());
        let err =
            RunSettings::resolve(file("listen = [\"nonsense\"]"), &RunArgs::default()).unwrap_err();
        assert_eq!(err.error.code, "cli.config_invalid");
        assert!(
            err.error.message.contains("listen"),
            "{}",
            err.error.message
        );
        let err = RunSettings::resolve(
            file(&format!("replica_all = true\nreplica_for = [\"{SERVER}\"]")),
            &RunArgs::default(),
        )
        .unwrap_err();
        assert!(err.error.message.contains("exclude"));
        let err = RunSettings::resolve(file("replica_for = [\"garden\"]"), &RunArgs::default())
            .unwrap_err();
        assert!(err.error.message.contains("server id"));
        let err = RunSettings::resolve(
            file("[timers]\nsync_interval = \"often\""),
            &RunArgs::default(),
        )
        .unwrap_err();
        assert!(err.error.message.contains("sync_interval"));
        let err =
            RunSettings::resolve(file("metrics = \"localhost\""), &RunArgs::default()).unwrap_err();
        assert!(err.error.message.contains("metrics"));
    }
}
