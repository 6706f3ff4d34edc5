//! Generates the prost types from `proto/` with protox, so that no system
//! `protoc` is needed.

use std::path::PathBuf;

const SCHEMAS: &[&str] = &[
    "palaver/v1/common.proto",
    "palaver/v1/entry.proto",
    "palaver/v1/control.proto",
    "palaver/v1/invite.proto",
    "palaver/v1/advert.proto",
    "palaver/v1/sync.proto",
    "palaver/v1/directory.proto",
    "palaver/v1/gossip.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    for schema in SCHEMAS {
        println!("cargo:rerun-if-changed={}", root.join(schema).display());
    }
    let descriptors = protox::compile(SCHEMAS, [&root])?;
    prost_build::Config::new()
        .bytes(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
