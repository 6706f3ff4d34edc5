//! The Palaver chat node: servers, channels, roles, invites, group keys,
//! sync, outbox and direct messages, behind one in-process API.
//!
//! [`Node::start`] opens the node's data directory, starts the network
//! overlay and spawns the node's task; it returns a [`NodeHandle`] that
//! sends [`api::Request`]s and an [`EventStream`] of [`api::Event`]s. The
//! same serializable requests, responses and events are what the headless
//! node serves on its control socket.

pub mod api;
pub mod config;
pub mod control;
mod handle;
pub mod headless;
pub mod invite_code;
mod keys;
mod local_store;
mod metrics;
mod net;
mod node;
mod peers;

pub use config::{Clock, NodeConfig, NodeTimers, ReplicaLimits, ReplicaScope};
pub use handle::{EventStream, NodeHandle};
pub use node::Node;
