#!/usr/bin/env bash
# Grid benchmark: the same op at the same session count through a Selenium Grid hub (a local
# scripts/grid.sh Grid, one node) and through a chromedriver stressctl manages directly.
#
#   scripts/bench-grid.sh                     # defaults below
#   ROUNDS=3 OPS_PER_SESSION=500 scripts/bench-grid.sh
#
# The same measurement is the Grid round of scripts/bench-throughput.sh; this script runs it alone.
# Both sides run benches/configs/throughput.toml (a warm-up phase that opens the sessions, then
# the `measured` phase: SESSIONS sessions × OPS_PER_SESSION ops of the WebGPU task on sessions
# already open), differing only in [[workers]] (the config's own table is dropped): `grid` (the hub's URL) or `local` (managed). The
# rounds alternate (grid, direct, grid, direct, …) in one run to spread a busy machine's noise over
# both; ops/s is the measured phase's `throughput_ops_per_s`. The ratio printed is
# mean(grid) / mean(direct); the goal is >= 0.9 (the hub proxies every WebDriver command to its
# node). A missed goal is printed as MISSED and does not change the exit code; errors exit 2.
#
# Needs scripts/setup-grid.sh to have run. The Grid is started here (hub port $HUB_PORT) and
# stopped on every exit path.
#
# Environment:
#   OPS_PER_SESSION  measured ops per session   (default 300)
#   WARMUP_OPS       warm-up ops per session    (default 64)
#   ROUNDS           grid/direct pairs          (default 2)
#   MATRIX_SIZE      WebGPU matrix size         (default 128)
#   STRESSCTL        the binary                 (default target/release/stressctl, else target/debug/stressctl)
#   HUB_PORT         the Grid's hub port        (default 4844)
#   PRIME=0          skip the unmeasured grid run that warms the hub's and node's JIT
#
# --lab: the same comparison across the network-namespace lab (scripts/netlab.sh, root only): the
# hub and one node in namespaces of their own, stressctl in the orchestrator's (both sides run
# there: the direct side's chromedriver is the orchestrator's own), its page server on the
# orchestrator's lab address for the Grid side. LATENCY=50ms adds that delay on the node's link
# (`netlab.sh latency`, netem) for a second set of rounds, goal >= 0.8; on a kernel without
# netem it says so and adds the same delay per round trip in user space instead
# (scripts/delay-proxy.py, in the orchestrator's namespace, between stressctl and the hub: every
# WebDriver command crosses it as it would cross the node's link). The lab's namespaces are
# prefixed sclab-b<pid>- and removed on every exit path; the proxy is stopped on every exit path.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

OPS_PER_SESSION="${OPS_PER_SESSION:-300}"
WARMUP_OPS="${WARMUP_OPS:-64}"
ROUNDS="${ROUNDS:-2}"
MATRIX_SIZE="${MATRIX_SIZE:-128}"
HUB_PORT="${HUB_PORT:-4844}"
GOAL="0.9"
SESSIONS=2 # benches/configs/throughput.toml runs 2 sessions; the Grid node gets 2 slots

die() { echo "bench-grid: error: $*" >&2; exit 2; }
LAB=0
case "${1:-}" in
  --lab) LAB=1 ;;
  "") ;;
  *) die "unknown argument $1 (the only one is --lab)" ;;
esac
for v in OPS_PER_SESSION WARMUP_OPS ROUNDS MATRIX_SIZE HUB_PORT; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
done
STRESSCTL="${STRESSCTL:-}"
if [ -z "$STRESSCTL" ]; then
  if [ -x target/release/stressctl ]; then STRESSCTL=target/release/stressctl; else STRESSCTL=target/debug/stressctl; fi
fi
[ -x "$STRESSCTL" ] || die "no $STRESSCTL (cargo build first)"
command -v jq >/dev/null 2>&1 || die "needs jq"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/bench-grid.XXXXXX")"
export STRESSCTL_GRID_DIR="$TMP/grid"
export STRESSCTL_LAB_DIR="$TMP/lab" STRESSCTL_LAB_PREFIX="sclab-b$$-" STRESSCTL_LAB_NET="10.213.9.0/24"
LAB_NET=10.213.9
CHILD=""
PROXY=""
cleanup() {
  local rc=$?
  [ -z "$CHILD" ] || { kill -TERM "$CHILD" 2>/dev/null || true; wait "$CHILD" 2>/dev/null || true; }
  [ -z "$PROXY" ] || { kill -TERM "$PROXY" 2>/dev/null || true; wait "$PROXY" 2>/dev/null || true; }
  if [ "$LAB" = 1 ]; then
    scripts/netlab.sh down >/dev/null 2>&1 || echo "bench-grid: netlab.sh down failed (state in $STRESSCTL_LAB_DIR)" >&2
  else
    scripts/grid.sh down >/dev/null 2>&1 || echo "bench-grid: grid.sh down failed (state in $STRESSCTL_GRID_DIR)" >&2
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "bench-grid: interrupted" >&2; exit 130' INT TERM

echo "== bench-grid: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), $(nproc) cores, $STRESSCTL"
echo "   $SESSIONS sessions × $OPS_PER_SESSION ops (after $WARMUP_OPS warm-up ops), webgpu matrix $MATRIX_SIZE, $ROUNDS round(s)"
if [ "$LAB" = 1 ]; then
  scripts/netlab.sh up --nodes 1 --slots "$SESSIONS" | sed 's/^/   /'
  HUB_URL="http://$LAB_NET.2:4444"
  # both sides run in the orchestrator's namespace; the Grid side serves its page on the
  # orchestrator's lab address, which the node reaches
  RUN=(scripts/netlab.sh exec -- "$(cd "$(dirname "$STRESSCTL")" && pwd)/$(basename "$STRESSCTL")")
  GRID_SERVER="[server]
listen = \"$LAB_NET.3:0\""
else
  scripts/grid.sh up --nodes 1 --slots "$SESSIONS" --hub-port "$HUB_PORT" | sed 's/^/   /'
  HUB_URL="http://127.0.0.1:$HUB_PORT"
  RUN=("$STRESSCTL")
  GRID_SERVER=""
fi

# run_side NAME WORKER_TOML: one campaign; prints its measured ops/s
run_side() {
  local d="$TMP/$1-$2" rc=0
  mkdir -p "$d"
  sed -E -e "s/^(matrix_size = )[0-9]+( # bench: MATRIX_SIZE)$/\1$MATRIX_SIZE\2/" \
    -e "s/^(ops_per_session = )[0-9]+( # bench: WARMUP_OPS)$/\1$WARMUP_OPS\2/" \
    -e "s/^(ops_per_session = )[0-9]+( # bench: OPS_PER_SESSION)$/\1$OPS_PER_SESSION\2/" \
    benches/configs/throughput.toml | awk '/^\[\[workers\]\]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' > "$d/config.toml"
  printf '\n%s\n' "$3" >> "$d/config.toml"
  "${RUN[@]}" launch --config "$d/config.toml" --output-dir "$d/out" --state-dir "$d/state" --log-dir "$d/logs" \
    >"$d/stdout.txt" 2>"$d/stderr.txt" &
  CHILD=$!
  wait "$CHILD" || rc=$?
  CHILD=""
  local report
  report="$(ls "$d"/out/*/campaign_report.json 2>/dev/null | head -n1 || true)"
  [ -n "$report" ] || { sed 's/^/   | /' "$d/stdout.txt" "$d/stderr.txt" >&2; die "$1 run (exit $rc) wrote no report"; }
  local sel='.phases[] | select(.name=="measured")'
  local ops tput failed
  ops=$(jq -r "$sel | .ops_attempted" "$report")
  tput=$(jq -r "$sel | .throughput_ops_per_s" "$report")
  failed=$(jq -r "$sel | .ops_failed" "$report")
  [ "$ops" = "$((SESSIONS * OPS_PER_SESSION))" ] || die "$1 run did $ops measured ops, expected $((SESSIONS * OPS_PER_SESSION)) (exit $rc)"
  echo "   round $2 $1: $tput ops/s ($ops ops, $failed failed)" >&2
  echo "$tput"
}

GRID_WORKER="$GRID_SERVER
[[workers]]
id = \"grid\"
url = \"$HUB_URL\""
LOCAL_WORKER='[[workers]]
id = "local"
managed = true'
# The hub and node are JVMs: their first minute of proxying runs before the JIT has compiled the
# hot paths. An unmeasured grid run first (PRIME=0 skips it), as a Grid in use would be warm.
if [ "${PRIME:-1}" = 1 ]; then
  run_side grid 0 "$GRID_WORKER" >/dev/null
fi
mean() { printf '%s\n' "$@" | awk '{ s += $1; n++ } END { printf "%.2f", s / n }'; }
# rounds TAG GOAL [LABEL]: ROUNDS interleaved grid/direct pairs (run directories grid$TAG-N,
# direct$TAG-N); prints the ratio line
rounds() {
  local grid=() direct=() r g d ratio verdict spread
  for r in $(seq 1 "$ROUNDS"); do
    grid+=("$(run_side "grid$1" "$r" "$GRID_WORKER")")
    direct+=("$(run_side "direct$1" "$r" "$LOCAL_WORKER")")
  done
  g=$(mean "${grid[@]}")
  d=$(mean "${direct[@]}")
  ratio=$(awk -v g="$g" -v d="$d" 'BEGIN { printf "%.3f", g / d }')
  spread=$(for r in $(seq 0 $((ROUNDS - 1))); do awk -v g="${grid[$r]}" -v d="${direct[$r]}" 'BEGIN { printf "%.3f\n", g / d }'; done | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s-%s", lo, hi }')
  verdict=$(awk -v r="$ratio" -v goal="$2" 'BEGIN { print (r >= goal) ? "MET" : "MISSED" }')
  echo "grid${3:-} (through the hub) $g ops/s, direct chromedriver $d ops/s: ratio $ratio (rounds $spread; goal >= $2: $verdict)"
}
rounds "" "$GOAL"
if [ "$LAB" = 1 ] && [ -n "${LATENCY:-}" ]; then
  if why=$(scripts/netlab.sh latency node-1 "$LATENCY" 2>&1); then
    rounds "-latency" 0.8 " with $LATENCY on the node's link"
    scripts/netlab.sh latency node-1 off >/dev/null
  else
    # No netem in this kernel: the same delay per round trip, added in user space on the
    # orchestrator's path to the hub (every WebDriver command crosses it, as it crosses the
    # node's link), by a proxy in the orchestrator's namespace on its own loopback.
    [[ "$LATENCY" =~ ^([0-9]+)ms$ ]] || die "LATENCY must be milliseconds, e.g. 50ms (got $LATENCY)"
    delay_ms=${BASH_REMATCH[1]}
    echo "   no netem here ($why)"
    echo "   so scripts/delay-proxy.py adds ${delay_ms} ms per round trip between the orchestrator and the hub"
    scripts/netlab.sh exec -- python3 "$ROOT/scripts/delay-proxy.py" 127.0.0.1:4445 "$LAB_NET.2:4444" "$delay_ms" \
      --lifetime 7200 >"$TMP/delay-proxy.log" 2>&1 &
    PROXY=$!
    for _ in $(seq 1 50); do grep -q "delay-proxy:" "$TMP/delay-proxy.log" 2>/dev/null && break; sleep 0.1; done
    grep -q "delay-proxy:" "$TMP/delay-proxy.log" || die "the delay proxy did not start: $(cat "$TMP/delay-proxy.log")"
    t_direct=$(scripts/netlab.sh exec -- curl -fsS -o /dev/null -w '%{time_total}' "$HUB_URL/status")
    t_proxy=$(scripts/netlab.sh exec -- curl -fsS -o /dev/null -w '%{time_total}' "http://127.0.0.1:4445/status")
    echo "   hub /status from the orchestrator: ${t_direct} s direct, ${t_proxy} s through the proxy"
    GRID_WORKER="$GRID_SERVER
[[workers]]
id = \"grid\"
url = \"http://127.0.0.1:4445\""
    if [ "${PRIME:-1}" = 1 ]; then
      run_side grid-latency 0 "$GRID_WORKER" >/dev/null
    fi
    rounds "-latency" 0.8 " with +${delay_ms} ms per round trip (delay-proxy)"
    kill -TERM "$PROXY" 2>/dev/null || true
    wait "$PROXY" 2>/dev/null || true
    PROXY=""
  fi
fi
