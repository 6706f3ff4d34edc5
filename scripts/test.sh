#!/usr/bin/env bash
# Runs every test of the workspace: unit, integration, property, crash and doc
# tests. Nothing is installed by hand: the system packages the tests need
# are installed here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/packages.sh

# The desktop's snapshot tests render with wgpu; without a GPU they use
# Mesa's software Vulkan driver (lavapipe).
ensure_packages libvulkan1 mesa-vulkan-drivers

# A target directory outside the checkout keeps rebuilds fast across clones.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palaver-target}"

cargo test --workspace --all-features --locked "$@"
# identity-core's pure core must also build and pass without its I/O feature.
cargo test -p identity-core --no-default-features --locked
