//! Palaver's desktop peer: an egui app over the node library.
//!
//! The node runs on its own tokio runtime thread ([`bridge`]); the app
//! ([`app::PalaverApp`]) keeps a plain view model ([`model`]) that only node
//! events and answers change, draws it each frame ([`ui`]) and turns what
//! the user does into [`actions::Action`]s and then node requests, without
//! ever blocking the UI thread.

pub mod actions;
pub mod app;
pub mod bridge;
pub mod launch;
pub mod model;
pub mod ui;

pub use app::{AppConfig, PalaverApp};
