#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build and run stressctl, then builds the
# release binary. Idempotent: re-running it only does what is missing.
#
#   scripts/setup.sh            # install Chromium + ChromeDriver, Firefox ESR + Mesa's Vulkan drivers,
#                               # prometheus-node-exporter, iproute2 (apt), geckodriver (cargo install)
#                               # and build target/release/stressctl
#   SKIP_BUILD=1 scripts/setup.sh   # packages only
#   scripts/setup.sh --vendor-check # fetch uPlot again from the npm registry (npm pack), check its
#                                   # sha512 and that the committed files are exactly its files
set -euo pipefail
cd "$(dirname "$0")/.."

# The dashboard's chart library, vendored in the repository (built into the binary with
# include_str!, so a build never needs the network): checked against the committed sums always,
# and against the npm registry's package with --vendor-check.
uplot_dir=assets/dashboard/vendor/uplot
(cd "$uplot_dir" && sha256sum --quiet -c SHA256SUMS) || { echo "setup: $uplot_dir does not match its SHA256SUMS" >&2; exit 1; }
if [ "${1:-}" = "--vendor-check" ]; then
  command -v npm >/dev/null 2>&1 || { echo "setup: --vendor-check needs npm (apt-get install npm)" >&2; exit 1; }
  # shellcheck source=/dev/null
  . "$uplot_dir/SOURCE"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$package@$version" >/dev/null)
  tgz="$tmp/$package-$version.tgz"
  got=$(node -e 'const c=require("crypto"),f=require("fs");process.stdout.write("sha512-"+c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$tgz")
  if [ "$got" != "$integrity" ]; then
    echo "setup: $package@$version from the registry has $got, expected $integrity" >&2
    exit 1
  fi
  for f in $files; do
    tar -xzf "$tgz" -C "$tmp" "package/$f"
    cmp -s "$tmp/package/$f" "$uplot_dir/$(basename "$f")" || { echo "setup: $uplot_dir/$(basename "$f") differs from $package@$version's $f" >&2; exit 1; }
  done
  echo "setup: $uplot_dir is $package@$version from the npm registry ($integrity)"
  exit 0
fi

need_pkgs=()
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_pkgs+=(chromium-driver)
# Firefox ESR, and Mesa's Vulkan drivers: lavapipe gives Firefox a software WebGPU adapter
command -v firefox-esr >/dev/null 2>&1 || need_pkgs+=(firefox-esr)
ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 || need_pkgs+=(mesa-vulkan-drivers)
# node runs the test page's logic in the unit tests; npm fetches onnxruntime-web (setup-ort.sh)
command -v node >/dev/null 2>&1 || need_pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || need_pkgs+=(npm)
# Prometheus node_exporter: what each machine of a multi-machine campaign runs so its load can be
# watched; scripts/netlab.sh starts one per lab node (on the node's own address), from this binary.
# On a machine run by systemd the package also enables its own service on :9100.
command -v prometheus-node-exporter >/dev/null 2>&1 || need_pkgs+=(prometheus-node-exporter)
# iproute2 (ip netns, veth, bridge, tc) for the network-namespace lab, scripts/netlab.sh
command -v ip >/dev/null 2>&1 && command -v tc >/dev/null 2>&1 || need_pkgs+=(iproute2)

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
echo "setup: $(firefox-esr --version 2>/dev/null | head -1)"
echo "setup: $(prometheus-node-exporter --version 2>&1 | head -1)"

mkdir -p monitoring_logs results_summary

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found: stressctl needs a Rust toolchain 1.82 or newer on the PATH (rustup)" >&2
  exit 1
fi

# geckodriver: Debian does not package it; it is on crates.io. Pinned, built with its lockfile.
# stressctl finds it in PATH or in cargo's bin directory ([browser] geckodriver = "geckodriver").
GECKODRIVER_VERSION=0.37.1
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
# its version line, read whole (geckodriver panics on a pipe closed early, e.g. by `head -1`)
gecko_version() {
  local v
  v=$({ geckodriver --version || "$cargo_bin/geckodriver" --version; } 2>/dev/null) || true
  echo "${v%%$'\n'*}"
}
if ! { command -v geckodriver || ls "$cargo_bin/geckodriver"; } >/dev/null 2>&1 \
  || [[ "$(gecko_version)" != *" $GECKODRIVER_VERSION"* ]]; then
  echo "setup: installing geckodriver $GECKODRIVER_VERSION (cargo install --locked; a few minutes)"
  cargo install --quiet --locked geckodriver --version "$GECKODRIVER_VERSION"
fi
echo "setup: $(gecko_version)"

# onnxruntime-web for the model task: npm pack at a pinned version, checked against the committed
# integrity, unpacked into vendor/onnxruntime-web (served by stressctl from loopback)
scripts/setup-ort.sh

# Selenium Grid 4 for the Grid workers and their tests: Java 17 (apt) and the server jar from the
# npm registry (@nightwatch/selenium-server, pinned, sha512 checked) in vendor/selenium
scripts/setup-grid.sh

if [ "${SKIP_BUILD:-0}" != "1" ]; then
  echo "setup: building release binary"
  cargo build --release --locked --quiet 2>/dev/null || cargo build --release --quiet
  echo "setup: built $(pwd)/target/release/stressctl"
fi
