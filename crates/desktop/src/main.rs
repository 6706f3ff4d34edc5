//! `palaver`: the desktop peer. Thin: flags, logging, window.
#![allow(clippy::print_stderr)]

use std::path::PathBuf;

use desktop::model::Settings;
use desktop::{AppConfig, PalaverApp};

/// mimalloc: the node's paths spend a fifth of their time in the
/// allocator, and it cut the author and receive paths' CPU by about a
/// quarter against glibc's (`docs/benchmarks.md`, third round).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let launched = std::time::Instant::now();
    let data_dir = data_dir_from_args().unwrap_or_else(desktop::launch::default_data_dir);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(format!(
                    "warn,node=info,net_overlay=info,desktop=info,{}",
                    node::headless::logging::QUIET_BY_DEFAULT
                ))
            }),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Palaver")
            .with_inner_size([1100.0, 720.0])
            .with_min_inner_size([640.0, 420.0]),
        persistence_path: Some(data_dir.join("ui.ron")),
        ..Default::default()
    };
    let result = eframe::run_native(
        "Palaver",
        options,
        Box::new(move |cc| {
            let settings = cc
                .storage
                .and_then(|storage| {
                    eframe::get_value::<Settings>(storage, desktop::app::SETTINGS_KEY)
                })
                .unwrap_or_default();
            let config = AppConfig {
                node: desktop::launch::node_config(data_dir.clone(), &settings),
                launched,
            };
            Ok(Box::new(PalaverApp::from_eframe(cc, config)))
        }),
    );
    if let Err(err) = result {
        eprintln!("palaver: cannot open the window: {err}");
        std::process::exit(1);
    }
}

/// `--data-dir DIR` (or `PALAVER_DATA_DIR`).
fn data_dir_from_args() -> Option<PathBuf> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--data-dir" {
            return args.next().map(PathBuf::from);
        }
        if let Some(dir) = arg.strip_prefix("--data-dir=") {
            return Some(PathBuf::from(dir));
        }
    }
    std::env::var_os("PALAVER_DATA_DIR").map(PathBuf::from)
}
