#!/usr/bin/env bash
# Capacity benchmark: is the search's answer stable, and how much cheaper than a linear sweep?
#
#   scripts/bench-capacity.sh [--runs N] [--keep]
#
# Runs the embedded `capacity` profile (a capacity search of the WebGPU 128²
# matmul on Chromium: 1..max_sessions, doubling, then bisecting) N times (default 3) and, in the
# middle of them, a linear sweep of the same workload: one load phase per count 1..max_sessions,
# each as long as one search step, judged by the same criteria, all run (no halt). It prints each
# search's answer and wall time, the sweep's answer (the highest count that held below its first
# failing one) and wall time, and two goals:
#   - the searches' answers within ±1 of each other (max − min ≤ 2)
#   - the mean search wall time at most 1/3 of the sweep's
# A round that did not run as planned (no report, stopped by the guardian or an operator,
# halted, a search cut short) is discarded and rerun, at most twice per round.
#
# Exit status: 0 when every round could be measured (goals met or not), 1 when a round could not
# be measured, 2 on bad usage. Environment: STRESSCTL=path uses that binary instead of building
# target/release/stressctl.

set -euo pipefail

ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
RUNS=3
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "bench-capacity.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$RUNS" in ''|*[!0-9]*|0) echo "bench-capacity.sh: --runs must be a positive number" >&2; exit 2 ;; esac

. "$ROOT_DIR/scripts/bench-common.sh"
stressctl_bin bench-capacity.sh

TMP_ROOT=$(mktemp -d /tmp/bench-capacity.XXXXXX)
cleanup() { if [ "$KEEP" = 1 ]; then echo "kept $TMP_ROOT"; else rm -rf "$TMP_ROOT"; fi; }
trap cleanup EXIT

# the sweep: the capacity profile with, instead of its search, one load phase per count
# with the search's step duration and criteria (read from the effective profile)
"$BIN" check --print-config -p capacity > "$TMP_ROOT/capacity.toml"
python3 - "$TMP_ROOT/capacity.toml" "$TMP_ROOT/sweep.toml" <<'PY'
import sys, tomllib
cfg = tomllib.load(open(sys.argv[1], "rb"))
cap = next(p for p in cfg["phases"] if p.get("kind") == "capacity")
spec, crit = cap["capacity"], cap["criteria"]
out = ["[campaign]", "max_consecutive_failed_phases = 100", ""]
# the profile's other phases, if any, run in both
for p in cfg["phases"]:
    if p.get("kind") != "capacity":
        out += ["[[phases]]", f'name = "{p["name"]}"', f'duration = "{p["duration"]}"', f'sessions = {p["sessions"]}', f'stress_level = "{p["stress_level"]}"', ""]
for n in range(cap["sessions"], spec["max_sessions"] + 1):
    out += ["[[phases]]", f'name = "sweep-{n:02}"', f'duration = "{spec["step_duration"]}"', f"sessions = {n}",
            f'stress_level = "{cap["stress_level"]}"', "[phases.criteria]",
            f'min_success_rate = {crit["min_success_rate"]}', f'max_p95 = "{crit["max_p95"]}"', ""]
open(sys.argv[2], "w").write("\n".join(out))
PY

# run KIND INDEX: one campaign in its own directories; prints "answer wall_s" or "discard why"
run() {
    local kind=$1 i=$2 dir="$TMP_ROOT/$1-$2" t0 t1 rc=0
    mkdir -p "$dir"
    local args=(launch --no-baseline -p capacity --state-dir "$dir/state" --output-dir "$dir/out" --log-dir "$dir/logs")
    [ "$kind" = sweep ] && args+=(-c "$TMP_ROOT/sweep.toml")
    t0=$(date +%s.%N)
    "$BIN" "${args[@]}" > "$dir/stdout" 2> "$dir/stderr" || rc=$?
    t1=$(date +%s.%N)
    local report
    report=$(ls "$dir"/out/*/campaign_report.json 2>/dev/null | head -1 || true)
    if [ -z "$report" ]; then echo "discard no report (exit $rc)"; return; fi
    python3 - "$report" "$kind" "$t0" "$t1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); kind = sys.argv[2]; wall = float(sys.argv[4]) - float(sys.argv[3])
if r["outcome"] not in ("passed", "failed"):
    print(f"discard outcome {r['outcome']} ({r.get('stop_reason')})"); sys.exit()
if kind == "search":
    cap = next(c for p in r["phases"] for c in p.get("capacity", []))
    if not cap["complete"] or cap["max_sustainable"] is None:
        print(f"discard search incomplete: {cap['answer']}"); sys.exit()
    steps = " ".join(f"{s['sessions']}{'+' if s['passed'] else '-'}" for s in sorted(cap["steps"], key=lambda s: s["order"]))
    print(f"{cap['max_sustainable']} {wall:.1f} steps {steps}")
else:
    held, first_fail = [], None
    for p in r["phases"]:
        if not p["name"].startswith("sweep-"):
            continue
        n = p["sessions"]
        if p["criteria"]["passed"]:
            held.append(n)
        elif first_fail is None or n < first_fail:
            first_fail = n
    below = [n for n in held if first_fail is None or n < first_fail]
    print(f"{max(below) if below else 0} {wall:.1f} passed {held} first_fail {first_fail}")
PY
}

measure() {
    local kind=$1 i=$2 tries=0 line
    while :; do
        tries=$((tries + 1))
        line=$(run "$kind" "$i-$tries")
        case "$line" in
            discard*)
                echo "   $kind round $i try $tries discarded: ${line#discard }  (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
                [ "$tries" -ge 3 ] && { echo "bench-capacity.sh: $kind round $i could not be measured in 3 tries" >&2; exit 1; } ;;
            *) echo "$line"; return ;;
        esac
    done
}

answers=(); times=()
sweep=""
for i in $(seq 1 "$RUNS"); do
    echo "== search $i/$RUNS (load $(cut -d' ' -f1-3 /proc/loadavg))"
    line=$(measure search "$i")
    echo "   max sustainable $(echo "$line" | cut -d' ' -f1), wall $(echo "$line" | cut -d' ' -f2) s, $(echo "$line" | cut -d' ' -f3-)"
    answers+=("$(echo "$line" | cut -d' ' -f1)"); times+=("$(echo "$line" | cut -d' ' -f2)")
    if [ "$i" = 1 ]; then
        echo "== linear sweep (load $(cut -d' ' -f1-3 /proc/loadavg))"
        sweep=$(measure sweep 1)
        echo "   answer $(echo "$sweep" | cut -d' ' -f1), wall $(echo "$sweep" | cut -d' ' -f2) s, $(echo "$sweep" | cut -d' ' -f3-)"
    fi
done

python3 - "${answers[*]}" "${times[*]}" "$sweep" <<'PY'
import sys
answers = [int(a) for a in sys.argv[1].split()]
times = [float(t) for t in sys.argv[2].split()]
sweep_answer, sweep_wall = int(sys.argv[3].split()[0]), float(sys.argv[3].split()[1])
mean = sum(times) / len(times)
ratio = mean / sweep_wall
spread = max(answers) - min(answers)
print(f"searches: answers {answers} (spread {spread}), wall {min(times):.1f}-{max(times):.1f} s, mean {mean:.1f} s")
print(f"sweep:    answer {sweep_answer}, wall {sweep_wall:.1f} s")
print(f"answers within ±1 of each other: {'PASS' if spread <= 2 else 'MISSED'} (max - min = {spread})")
print(f"search / sweep wall time: {ratio:.2f} (searches {min(times)/sweep_wall:.2f}-{max(times)/sweep_wall:.2f}); goal <= 0.33: {'PASS' if ratio <= 1/3 else 'MISSED'}")
PY
