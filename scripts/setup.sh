#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build and run stressctl, then builds the
# release binary. Idempotent: re-running it only does what is missing.
#
#   scripts/setup.sh            # install Chromium + ChromeDriver (apt) and build target/release/stressctl
#   SKIP_BUILD=1 scripts/setup.sh   # packages only
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_pkgs+=(chromium-driver)

if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to apt-get install ${need_pkgs[*]} (run as root or with sudo)" >&2
    exit 1
  fi
  echo "setup: installing ${need_pkgs[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
echo "setup: $(chromium --version 2>/dev/null | head -1)"
echo "setup: $(chromedriver --version 2>/dev/null | head -1)"

mkdir -p monitoring_logs results_summary

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found: stressctl needs a Rust toolchain 1.82 or newer on the PATH (rustup)" >&2
  exit 1
fi

if [ "${SKIP_BUILD:-0}" != "1" ]; then
  echo "setup: building release binary"
  cargo build --release --locked --quiet 2>/dev/null || cargo build --release --quiet
  echo "setup: built $(pwd)/target/release/stressctl"
fi
