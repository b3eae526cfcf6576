#!/usr/bin/env bash
# Notification benchmark: a receiver that never answers must not slow the campaign.
#
#   scripts/bench-notify.sh [--runs N] [--keep]
#
# Runs the same synthetic campaign (4 sessions, 10 s, 1 ms ops, a thrown op every 2 s that opens
# a breaker for 100 ms, so `breaker_open` notices go out during the run) N times (default 3) in each of three
# modes, interleaved:
#   none      no [[notify]]
#   ok        a receiver on 127.0.0.1 that answers 200 at once
#   hanging   a receiver on 127.0.0.1 that accepts and never answers (timeout 2s, retries 2)
# and prints each run's ops/s (campaign_report.json totals.throughput_ops_per_s), its wall time
# (launch to exit, which includes the bounded drain of the last notices at the end) and the
# notifications the report counted. Goal: the median ops/s of `hanging` within the noise of
# `none` (the spread of its runs, at least 5 %), and `hanging`'s extra wall
# time at most the drain bound (timeout x (retries + 1) + 5 s x retries = 16 s).
#
# Exit status: 0 when every run could be measured (goal met or not; the campaign's own verdict
# does not matter), 1 when a run ended without a report,
# 2 on bad usage. Environment: STRESSCTL=path uses that binary instead of building
# target/release/stressctl.

set -euo pipefail

ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
RUNS=3
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "bench-notify.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$RUNS" in ''|*[!0-9]*|0) echo "bench-notify.sh: --runs must be a positive number" >&2; exit 2 ;; esac

. "$ROOT_DIR/scripts/bench-common.sh"
stressctl_bin bench-notify.sh

PY=$(python3 -c 'import sys; print(sys.executable)')
TMP_ROOT=$(mktemp -d /tmp/bench-notify.XXXXXX)
RECEIVERS=()   # pids of the receivers this script started
cleanup() {
    local p
    for p in "${RECEIVERS[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ "$KEEP" = 1 ]; then echo "kept $TMP_ROOT"; else rm -rf "$TMP_ROOT"; fi
}
trap cleanup EXIT

# receiver MODE PORTFILE: a loopback HTTP receiver (ok: 200 at once; hanging: never answers)
cat > "$TMP_ROOT/receiver.py" <<'PY'
import socket, sys, time
mode, portfile = sys.argv[1], sys.argv[2]
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
open(portfile, "w").write(str(s.getsockname()[1]))
held = []
deadline = time.time() + 3600
while time.time() < deadline:
    c, _ = s.accept()
    c.settimeout(5)
    try:
        c.recv(65536)
    except OSError:
        pass
    if mode == "ok":
        c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"); c.close()
    else:
        held.append(c)
PY

start_receiver() {  # start_receiver MODE: starts it (pid kept for cleanup), its port in port-MODE
    "$PY" "$TMP_ROOT/receiver.py" "$1" "$TMP_ROOT/port-$1" > /dev/null 2>&1 &
    RECEIVERS+=($!)
}
port_of() {  # port_of MODE: waits (at most 5 s) for the receiver's port
    local pf="$TMP_ROOT/port-$1" i
    for i in $(seq 1 50); do [ -s "$pf" ] && break; sleep 0.1; done
    [ -s "$pf" ] || { echo "bench-notify.sh: the $1 receiver did not start" >&2; exit 1; }
    cat "$pf"
}
start_receiver ok
start_receiver hanging
OK_PORT=$(port_of ok)
HANG_PORT=$(port_of hanging)

config() {  # config MODE FILE
    cat > "$2" <<TOML
[campaign]
name = "bench-notify-$1"
progressive_escalation = false
auto_recovery = false

[safety]
memory_percent = 100
cpu_percent = 100
disk_percent = 100
reserve_percent = 0

[task]
kind = "synthetic"
latency = "1ms"
jitter = "0s"
failure_probability = 0.0

# a thrown op every 2 s opens a breaker for 100 ms: breaker_open notices go out during the
# run, and the ops lost to the open breaker are the same few percent in every mode
[breaker]
failure_threshold = 1
recovery_timeout = "100ms"
max_recovery_timeout = "100ms"

[[faults]]
kind = "throw"
every = "2s"

[[phases]]
name = "load"
duration = "10s"
sessions = 4
[phases.criteria]
min_success_rate = 0.9
TOML
    case "$1" in
        ok) printf '\n[[notify]]\nurl = "http://127.0.0.1:%s/hook"\n' "$OK_PORT" >> "$2" ;;
        hanging) printf '\n[[notify]]\nurl = "http://127.0.0.1:%s/hook"\ntimeout = "2s"\nretries = 2\n' "$HANG_PORT" >> "$2" ;;
    esac
}

FAILED=0
declare -A OPS WALL
for run in $(seq 1 "$RUNS"); do
    for mode in none ok hanging; do
        dir="$TMP_ROOT/$mode-$run"; mkdir -p "$dir"
        config "$mode" "$dir/c.toml"
        t0=$(date +%s.%N)
        rc=0
        "$BIN" launch --config "$dir/c.toml" --output-dir "$dir/out" --state-dir "$dir/state" --log-dir "$dir/logs" > "$dir/stdout" 2> "$dir/stderr" || rc=$?
        # 1 is a campaign that failed its verdict: measured all the same
        if [ "$rc" -gt 1 ] || ! ls "$dir"/out/*/campaign_report.json > /dev/null 2>&1; then
            echo "run $run $mode: exited $rc without a report: $(tail -n 3 "$dir/stderr")"; FAILED=1; continue
        fi
        t1=$(date +%s.%N)
        report=$(ls "$dir"/out/*/campaign_report.json)
        read -r ops sent failed < <("$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); n=r["notifications"]; print(r["totals"]["throughput_ops_per_s"], n["sent"], n["failed"]+n["dropped"])' "$report")
        wall=$("$PY" -c "print(round($t1 - $t0, 2))")
        printf '%-8s run %d: %10.0f ops/s  wall %6.2f s  notifications %s sent, %s failed\n' "$mode" "$run" "$ops" "$wall" "$sent" "$failed"
        OPS[$mode]="${OPS[$mode]:-} $ops"; WALL[$mode]="${WALL[$mode]:-} $wall"
    done
done

median() { "$PY" -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print(statistics.median(v) if v else 0)' "$@"; }
echo
for mode in none ok hanging; do
    # shellcheck disable=SC2086
    printf '%-8s median %10.0f ops/s  wall %6.2f s\n' "$mode" "$(median ${OPS[$mode]:-})" "$(median ${WALL[$mode]:-})"
done
# shellcheck disable=SC2086
"$PY" - "${OPS[none]:-}" "${OPS[hanging]:-}" <<'PY'
import statistics, sys
none = [float(x) for x in sys.argv[1].split()]
hanging = [float(x) for x in sys.argv[2].split()]
if none and hanging:
    m0, m1 = statistics.median(none), statistics.median(hanging)
    d = (m1 - m0) / m0 * 100 if m0 else 0.0
    noise = (max(none) - min(none)) / m0 * 100 if m0 else 0.0
    bound = max(5.0, noise)
    verdict = "PASS" if abs(d) <= bound else "MISSED"
    print(f"hanging vs none: {d:+.1f} % ops/s; noise (spread of the none runs) {noise:.1f} % -> {verdict} (goal within max(5 %, noise) = {bound:.1f} %)")
PY
exit "$FAILED"
