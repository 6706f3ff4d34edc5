#!/usr/bin/env bash
# Runs every test of the workspace: unit, integration, property, crash and doc
# tests. Installs nothing by hand: when a test needs a system package, this
# script installs it (none are needed yet).
set -euo pipefail
cd "$(dirname "$0")/.."

# A target directory outside the checkout keeps rebuilds fast across clones.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palaver-target}"

cargo test --workspace --all-features --locked "$@"
# identity-core's pure core must also build and pass without its I/O feature.
cargo test -p identity-core --no-default-features --locked
