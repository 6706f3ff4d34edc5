#!/usr/bin/env bash
# Builds and opens the Palaver desktop app (`palaver`). Installs the system
# libraries its window needs when they are missing (X11/Wayland client
# libraries and a Vulkan or GL driver; Mesa's software Vulkan driver keeps it
# working on machines without a GPU). Arguments go to the app, e.g.
# `./scripts/run.sh --data-dir /tmp/palaver-2` for a second profile.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/packages.sh

ensure_packages libxkbcommon0 libxkbcommon-x11-0 libx11-6 libx11-xcb1 libxcursor1 \
    libxrandr2 libxi6 libwayland-client0 libwayland-cursor0 libwayland-egl1 \
    libegl1 libvulkan1 mesa-vulkan-drivers

# A target directory outside the checkout keeps rebuilds fast across clones.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palaver-target}"

exec cargo run --release --locked -p desktop --bin palaver -- "$@"
