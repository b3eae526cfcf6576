#!/usr/bin/env bash
# node_exporter scrape cost: the orchestrator CPU that watching nodes costs, per node per minute.
#
#   scripts/bench-scrape.sh [--nodes N] [--runs N] [--duration SECS] [--keep]
#
# Starts N (default 8) Debian prometheus-node-exporter processes on loopback ports (each stands
# in for one node: its full /metrics answer, ~500 series and ~60 KB here, is what a real node sends)
# and runs the same synthetic campaign (1 session, 50 ms ops: the orchestrator nearly idle, so
# the difference is the watching) in two modes, interleaved, --runs times (default 3):
#   unwatched  N managed workers without node_metrics
#   watched    the same N workers, each with node_metrics = one of the exporters
# Each run lasts --duration seconds (default 60) at the default sampling interval (2 s: 30
# scrapes per node per minute). stressctl's CPU is its user + system time, read by wait4 when it
# exits (python3's resource.getrusage of the child), so start-up and report writing count in
# both modes alike. Everything a scrape costs is counted: the HTTP GET, parsing that text,
# judging the figures, the node_sample event (store row, events.jsonl line) and the dashboard
# model. The cost printed is per pair of runs, (watched - unwatched) / N / minutes, then the
# median and the spread; the campaign's own verdict does not matter, but a run that ended early
# (stopped by the guardian, or without a report) is reported and left out (rerun it).
#
# Exit status: 0 when every run was measured, 1 when one was not, 2 on bad usage. Environment:
# STRESSCTL=path uses that binary instead of building target/release/stressctl. The exporters are
# killed by the pids this script recorded, on every exit path.

set -euo pipefail

ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
NODES=8
RUNS=3
DURATION=60
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --nodes) NODES=${2:?--nodes needs a number}; shift 2 ;;
        --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
        --duration) DURATION=${2:?--duration needs seconds}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "bench-scrape.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
for v in NODES RUNS DURATION; do
    case "${!v}" in ''|*[!0-9]*|0) echo "bench-scrape.sh: --$(echo "$v" | tr 'A-Z' 'a-z') must be a positive number" >&2; exit 2 ;; esac
done
EXPORTER=/usr/bin/prometheus-node-exporter
[ -x "$EXPORTER" ] || { echo "bench-scrape.sh: $EXPORTER is missing (scripts/setup.sh installs prometheus-node-exporter)" >&2; exit 2; }

. "$ROOT_DIR/scripts/bench-common.sh"
stressctl_bin bench-scrape.sh

PY=$(python3 -c 'import sys; print(sys.executable)')
TMP_ROOT=$(mktemp -d /tmp/bench-scrape.XXXXXX)
EXPORTERS=()   # pids of the exporters this script started
cleanup() {
    local p
    for p in "${EXPORTERS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${EXPORTERS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ "$KEEP" = 1 ]; then echo "kept $TMP_ROOT"; else rm -rf "$TMP_ROOT"; fi
}
trap cleanup EXIT

PORTS=()
for i in $(seq 1 "$NODES"); do
    port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$EXPORTER" --web.listen-address="127.0.0.1:$port" > "$TMP_ROOT/exporter-$i.log" 2>&1 &
    EXPORTERS+=($!)
    PORTS+=("$port")
done
for port in "${PORTS[@]}"; do
    for _ in $(seq 1 50); do curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$port/metrics" 2>/dev/null && break; sleep 0.2; done
    curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$port/metrics" || { echo "bench-scrape.sh: the exporter on :$port did not answer" >&2; exit 1; }
done
BYTES=$(curl -fsS "http://127.0.0.1:${PORTS[0]}/metrics" | wc -c)
SERIES=$(curl -fsS "http://127.0.0.1:${PORTS[0]}/metrics" | grep -vc '^#' || true)

config() {  # config MODE FILE
    cat > "$2" <<TOML
[campaign]
name = "bench-scrape-$1"
progressive_escalation = false
auto_recovery = false

[safety]
memory_percent = 100
cpu_percent = 100
disk_percent = 100
reserve_percent = 0

[task]
kind = "synthetic"
latency = "50ms"
jitter = "0s"
failure_probability = 0.0

[[phases]]
name = "load"
duration = "${DURATION}s"
sessions = 1
TOML
    local i=0 port
    for port in "${PORTS[@]}"; do
        i=$((i + 1))
        printf '\n[[workers]]\nid = "node-%d"\nmanaged = true\n' "$i" >> "$2"
        [ "$1" = watched ] && printf 'node_metrics = "http://127.0.0.1:%s/metrics"\n' "$port" >> "$2"
    done
    return 0
}

# cpu_of DIR: runs the campaign of DIR/c.toml; prints "rc cpu_seconds wall_seconds"
cpu_of() {
    "$PY" - "$BIN" "$1" <<'PY'
import resource, subprocess, sys, time
bin, d = sys.argv[1], sys.argv[2]
t0 = time.monotonic()
with open(d + "/stdout", "w") as out, open(d + "/stderr", "w") as err:
    rc = subprocess.call([bin, "launch", "--config", d + "/c.toml", "--output-dir", d + "/out", "--state-dir", d + "/state",
                          "--log-dir", d + "/logs"], stdout=out, stderr=err)
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(rc, round(ru.ru_utime + ru.ru_stime, 3), round(wall, 2))
PY
}

echo "== bench-scrape: $(date -u +%FT%TZ) on $(hostname), $(nproc) cores, $BIN"
echo "   $NODES node_exporter(s) on loopback ($BYTES bytes, $SERIES series per scrape), ${DURATION} s runs, 2 s sampling interval, $RUNS pair(s)"
FAILED=0
COSTS=()
for run in $(seq 1 "$RUNS"); do
    declare -A CPU=()
    for mode in unwatched watched; do
        dir="$TMP_ROOT/$mode-$run"; mkdir -p "$dir"
        config "$mode" "$dir/c.toml"
        read -r rc cpu wall < <(cpu_of "$dir")
        report=$(ls "$dir"/out/*/campaign_report.json 2> /dev/null | head -n 1 || true)
        if [ "$rc" -gt 1 ] || [ -z "$report" ]; then
            echo "   run $run $mode: exited $rc without a report: $(tail -n 3 "$dir/stderr")"; FAILED=1; continue
        fi
        read -r samples status < <("$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(sum(n.get("samples", 0) for n in r.get("nodes", [])), r["phases"][0].get("status", "?"))' "$report")
        if [ "$status" != completed ]; then
            echo "   run $run $mode: its phase ended $status: left out (rerun)"; FAILED=1; continue
        fi
        printf '   run %d %-9s: cpu %7.3f s  wall %6.2f s  scrapes stored %s\n' "$run" "$mode" "$cpu" "$wall" "$samples"
        CPU[$mode]=$cpu
    done
    if [ -n "${CPU[unwatched]:-}" ] && [ -n "${CPU[watched]:-}" ]; then
        COSTS+=("$("$PY" -c "print(round(((${CPU[watched]}) - (${CPU[unwatched]})) / $NODES / ($DURATION / 60.0) * 1000, 1))")")
    fi
    unset CPU
done
if [ "${#COSTS[@]}" -gt 0 ]; then
    "$PY" - "${COSTS[@]}" <<'PY'
import statistics, sys
c = sorted(float(x) for x in sys.argv[1:])
print("   cost per node per minute (orchestrator CPU, ms): pairs " + ", ".join(f"{x:.1f}" for x in c)
      + f"; median {statistics.median(c):.1f} ms (spread {c[0]:.1f}..{c[-1]:.1f});"
      + f" {statistics.median(c) / 30:.2f} ms per scrape at 30 scrapes a minute;"
      + f" {statistics.median(c) / 600:.3f} % of one core per node")
PY
fi
exit "$FAILED"
