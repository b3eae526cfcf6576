#!/usr/bin/env bash
# Stop benchmark: how fast stressctl stops, and what its guardian costs.
#
#   scripts/bench-stop.sh [--runs N] [--only graceful,force,trip,trip-cold,cost] [--keep]
#
# Measures, with 4 WebGPU browser sessions running (configs in benches/configs/stop-*.toml):
#   graceful   `stressctl emergency-stop` until the daemon has exited          goal <= 2 s
#   force      `stressctl emergency-stop --force` until the daemon has exited  goal <= 1 s
#   trip       guardian trip: first violating sample -> daemon exit           goal <= 3 x 0.5 s + 1 s
#              (memory threshold below the memory in use, set for the 2nd phase, when the 4
#              sessions are open and working)
#   trip-cold  the same, but the threshold applies from the start: the trip comes ~1 s after
#              launch, while the 4 browsers are still being opened (reported, same goal)
#   cost       daemon CPU with no ops running, guardian sampling every 1 s, minus the same with
#              the guardian idle (sample_interval 1h)                          goal < 1 % of a core
# Each measurement runs N times (default 3); every figure is printed, then min/median/max and
# PASS/MISSED per goal (judged on the median; the count of single runs within the goal follows).
# After each stop run the script checks that campaign_report.json says "emergency_stopped" and
# that no process mentioning the run's temp dir (chromium, chromedriver) is left.
#
# Exit status: 0 when every run could be measured and checked (goals missed or not), 1 when a
# run failed or a check failed (no report, wrong outcome, leftover processes), 2 on bad usage.
# Environment: STRESSCTL=path uses that binary instead of building target/release/stressctl.

set -euo pipefail

ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
CONFIGS="$ROOT_DIR/benches/configs"
RUNS=3
ONLY="graceful,force,trip,trip-cold,cost"
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
        --only) ONLY=${2:?--only needs a list}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "bench-stop.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$RUNS" in ''|*[!0-9]*|0) echo "bench-stop.sh: --runs must be a positive number" >&2; exit 2 ;; esac
want() {  # want NAME...: true if any of them was asked for
    local n
    for n in "$@"; do case ",$ONLY," in *",$n,"*) return 0 ;; esac; done
    return 1
}

. "$ROOT_DIR/scripts/bench-common.sh"
stressctl_bin bench-stop.sh

# the interpreter itself, not a version-manager shim (a pyenv shim costs ~1 s per call on a busy box)
PY=$(python3 -c 'import sys; print(sys.executable)')
TMP_ROOT=$(mktemp -d /tmp/bench-stop.XXXXXX)
HELPER="$TMP_ROOT/helper.py"
ERRORS=0
DAEMONS=()   # pids of the daemons this script started (killed on exit if still alive)

err() { echo "ERROR: $*"; ERRORS=$((ERRORS + 1)); }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

cleanup() {
    local pid
    for pid in "${DAEMONS[@]}"; do
        # only if that pid is still one of ours (it mentions our temp dir)
        if grep -qF "$TMP_ROOT" "/proc/$pid/cmdline" 2>/dev/null; then
            echo "cleanup: stopping daemon pid $pid"
            kill -TERM "$pid" 2>/dev/null || true
            sleep 3
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    # anything still running that mentions our temp dir was started by one of our daemons
    if [ -f "$HELPER" ]; then
        for pid in $("$PY" "$HELPER" leftovers "$TMP_ROOT" --pids); do
            echo "cleanup: killing leftover pid $pid ($(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null | cut -c1-100))"
            kill -KILL "$pid" 2>/dev/null || true
        done
    fi
    if [ "$KEEP" = 1 ]; then echo "kept $TMP_ROOT"; else rm -rf "$TMP_ROOT"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$HELPER" <<'PY'
"""Timing-critical and parsing helpers of bench-stop.sh."""
import json, os, re, sqlite3, subprocess, sys, time

def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return s[s.rindex(")") + 2]

def alive(pid):
    """Running (a zombie has exited: only its parent has not reaped it yet)."""
    st = proc_state(pid)
    return st is not None and st not in "ZX"

def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, all threads

def status(bin_, common):
    try:
        out = subprocess.run([bin_, "status", "--json", *common], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0:
        return None
    try:
        return json.loads(out.stdout)
    except ValueError:
        return None

def store_path(state):
    runs = os.path.join(state, "runs")
    ids = sorted(os.listdir(runs)) if os.path.isdir(runs) else []
    return os.path.join(runs, ids[-1], "store.sqlite") if ids else None

def active_slots(state, phase):
    path = store_path(state)
    if not path or not os.path.exists(path):
        return 0
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
        n = con.execute("SELECT COUNT(DISTINCT slot) FROM windows WHERE phase_idx = ? AND attempted > 0", (phase,)).fetchone()[0]
        con.close()
        return n
    except sqlite3.Error:
        return 0

def cmd_wait_working(args):
    """wait-working BIN STATE SLOTS TIMEOUT_S PID -- COMMON...: until SLOTS sessions have done ops
    and the op count grows. Prints {"ready_s", "ops", "pid"}."""
    bin_, state, slots, timeout, pid = args[0], args[1], int(args[2]), float(args[3]), int(args[4])
    common = args[args.index("--") + 1:]
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not alive(pid):
            print(json.dumps({"error": "the daemon exited before its sessions were working"}))
            return 1
        if active_slots(state, 0) >= slots:
            a = status(bin_, common)
            time.sleep(1.5)
            b = status(bin_, common)
            if a and b and b["ops"]["attempted"] > a["ops"]["attempted"]:
                print(json.dumps({"ready_s": round(time.monotonic() - t0, 1), "ops": b["ops"]["attempted"], "pid": b["pid"],
                                  "tree_processes": (b.get("resources") or {}).get("tree_processes")}))
                return 0
        time.sleep(0.25)
    print(json.dumps({"error": f"{slots} sessions were not all working after {timeout:.0f} s"}))
    return 1

def cmd_stop(args):
    """stop BIN PID FORCE -- COMMON...: runs emergency-stop; measures the CLI's own wall time and,
    independently, send -> daemon pid gone (polled every 2 ms)."""
    bin_, pid, force = args[0], int(args[1]), args[2] == "1"
    common = args[args.index("--") + 1:]
    cmd = [bin_, "emergency-stop", *(["--force"] if force else []), "--reason", "bench-stop.sh", *common]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    gone = None
    while gone is None and time.monotonic() - t0 < 60:
        if not alive(pid):
            gone = time.monotonic() - t0
            break
        time.sleep(0.002)
    out, _ = p.communicate(timeout=90)
    cli = time.monotonic() - t0
    m = re.search(r"stopped after ([0-9.]+)s", out)
    print(json.dumps({"pid_gone_s": None if gone is None else round(gone, 3), "cli_s": round(cli, 3),
                      "cli_reported_s": float(m.group(1)) if m else None, "rc": p.returncode,
                      "zombie": proc_state(pid) == "Z", "output": out.strip().replace("\n", " | ")}))
    return 0

def cmd_leftovers(args):
    """leftovers ROOT [--pids]: processes (other than this one and its parent) whose command line
    mentions ROOT."""
    root = args[0].encode()
    mine = {os.getpid(), os.getppid()}
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in mine:
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cl = f.read()
        except OSError:
            continue
        if root in cl and proc_state(int(d)) not in (None, "Z", "X"):
            found.append((int(d), cl.replace(b"\0", b" ").decode(errors="replace")[:120]))
    if "--pids" in args:
        print(" ".join(str(p) for p, _ in found))
    else:
        for p, c in found:
            print(f"  pid {p}: {c}")
    return 0

def cmd_report(args):
    """report OUTDIR: outcome, stop reason and totals of the campaign report in OUTDIR/<id>/."""
    out = args[0]
    ids = sorted(os.listdir(out)) if os.path.isdir(out) else []
    path = os.path.join(out, ids[-1], "campaign_report.json") if ids else None
    if not path or not os.path.exists(path):
        print(json.dumps({"error": f"no campaign_report.json under {out}"}))
        return 0
    r = json.load(open(path))
    print(json.dumps({"outcome": r.get("outcome"), "stop_reason": r.get("stop_reason"), "ops": r["totals"]["ops_attempted"],
                      "id": r.get("campaign_id")}))
    return 0

def cmd_trip(args):
    """trip STATE OUTDIR EXIT_EPOCH PHASE CONSECUTIVE: first violating sample (of PHASE, or of any
    phase with 'any'), the tripping sample, and the latencies to the daemon's exit."""
    state, out, t_exit, phase, consecutive = args[0], args[1], float(args[2]), args[3], int(args[4])
    con = sqlite3.connect(f"file:{store_path(state)}?mode=ro", uri=True)
    rows = con.execute("SELECT at, at_ms, phase_idx, violations, tree_processes FROM samples ORDER BY at_ms").fetchall()
    streak, first, trip, first_row = 0, None, None, None
    for at, at_ms, ph, viol, procs in rows:
        if phase != "any" and ph != int(phase):
            continue
        mem = any(v.get("metric") == "memory" for v in json.loads(viol))
        if mem:
            streak += 1
            if first is None:
                first, first_row = at_ms / 1000.0, (at, ph, procs)
            if streak >= consecutive and trip is None:
                trip = at_ms / 1000.0
        else:
            streak = 0
            if trip is None:
                first = None
    ids = sorted(os.listdir(out))
    events = [json.loads(l) for l in open(os.path.join(out, ids[-1], "events.jsonl"))]
    ev_first = next((e["at"] for e in events if e["kind"] == "guardian_violation"), None)
    ops = {}
    for e in events:
        if e["kind"] == "phase_ended":
            ops[e.get("phase")] = e["data"]["attempted"]
    slots = {p: n for p, n in con.execute("SELECT phase_idx, COUNT(DISTINCT slot) FROM windows WHERE attempted > 0 GROUP BY phase_idx")}
    res = {"first_violation_at": first_row[0] if first_row else None, "first_violation_event_at": ev_first,
           "first_to_exit_s": None if first is None else round(t_exit - first, 3),
           "trip_to_exit_s": None if trip is None else round(t_exit - trip, 3),
           "first_to_trip_s": None if (first is None or trip is None) else round(trip - first, 3),
           "tree_processes_at_first_violation": first_row[2] if first_row else None,
           "ops_by_phase": ops, "working_sessions_by_phase": slots}
    print(json.dumps(res))
    return 0

def cmd_cpu(args):
    """cpu PID SECONDS: CPU time of PID over SECONDS of wall time, in % of one core."""
    pid, secs = int(args[0]), float(args[1])
    hz = os.sysconf("SC_CLK_TCK")
    c0, t0 = cpu_ticks(pid), time.monotonic()
    time.sleep(secs)
    c1, t1 = cpu_ticks(pid), time.monotonic()
    print(json.dumps({"cpu_s": (c1 - c0) / hz, "wall_s": round(t1 - t0, 3), "pct": round((c1 - c0) / hz / (t1 - t0) * 100, 3)}))
    return 0

def cmd_stats(args):
    """stats V...: min median max of the numbers given."""
    v = sorted(float(x) for x in args)
    n = len(v)
    med = v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
    print(f"{v[0]:.3f} {med:.3f} {v[-1]:.3f}")
    return 0

def cmd_get(args):
    """get JSON KEY: one field of a JSON object ('' for null / missing)."""
    v = json.loads(args[0]).get(args[1])
    print("" if v is None else (json.dumps(v) if isinstance(v, (dict, list, bool)) else v))
    return 0

if __name__ == "__main__":
    sys.exit(globals()["cmd_" + sys.argv[1].replace("-", "_")](sys.argv[2:]))
PY

py() { "$PY" "$HELPER" "$@"; }
# get JSON KEY: one top-level field ('' when null or missing)
if command -v jq >/dev/null; then
    get() { jq -r --arg k "$2" '.[$k] | if . == null then "" elif type == "object" or type == "array" then tojson else tostring end' <<<"$1"; }
else
    get() { py get "$1" "$2"; }
fi

# Memory in use as the guardian computes it, floor - 1 (min 1): a threshold the host is already over.
memory_threshold() {
    awk '/^MemTotal:/ {t=$2} /^MemAvailable:/ {a=$2} END {v=int((t-a)*100/t)-1; if (v<1) v=1; print v}' /proc/meminfo
}

# verify RUN_DIR EXPECTED_OUTCOME: the report's outcome and that nothing of the run is left.
verify() {
    local dir=$1 expect=$2 rep outcome left
    rep=$(py report "$dir/out")
    outcome=$(get "$rep" outcome)
    if [ "$outcome" = "$expect" ]; then
        echo "      report: outcome $outcome, $(get "$rep" ops) ops, stop reason: $(get "$rep" stop_reason)"
    else
        err "report of $dir: outcome '${outcome}' (expected $expect) $(get "$rep" error)"
    fi
    left=$(py leftovers "$dir")
    if [ -n "$left" ]; then
        err "processes of $dir still running right after the daemon exited:"
        echo "$left"
        sleep 3
        left=$(py leftovers "$dir")
        [ -n "$left" ] && echo "      ... and still 3 s later" || echo "      ... gone 3 s later"
    else
        echo "      leftovers: none (no process mentions $dir)"
    fi
    if [ -e "$dir/state/stressctl.lock" ]; then err "lock file $dir/state/stressctl.lock left behind"; fi
}

declare -A FIG   # FIG[name]="v1 v2 ..."
add_fig() { FIG[$1]="${FIG[$1]:-} $2"; }

echo "== bench-stop: $(nproc) cores, load average $(loadavg), $RUNS run(s) per measurement"
echo "   binary $BIN ($("$BIN" --version))"
echo "   temp dir $TMP_ROOT"

# ---------------------------------------------------------------- graceful / force
stop_run() {  # stop_run MODE(graceful|force) N
    local mode=$1 n=$2 dir common id out pid ready res force=0
    [ "$mode" = force ] && force=1
    dir="$TMP_ROOT/$mode-$n"
    mkdir -p "$dir"
    common=(--state-dir "$dir/state" --output-dir "$dir/out" --log-dir "$dir/logs")
    echo "  [$mode #$n] load $(loadavg)"
    if ! out=$("$BIN" launch --detach -c "$CONFIGS/stop-webgpu.toml" "${common[@]}" 2>"$dir/detach.err"); then
        err "launch --detach failed: $(cat "$dir/detach.err")"
        return
    fi
    id=$out
    pid=$(get "$(cat "$dir/state/stressctl.lock")" pid)
    DAEMONS+=("$pid")
    ready=$(py wait-working "$BIN" "$dir/state" 4 180 "$pid" -- "${common[@]}") || {
        err "$mode #$n: $(get "$ready" error)"
        "$BIN" emergency-stop --force "${common[@]}" >/dev/null 2>&1 || true
        return
    }
    [ "$(get "$ready" pid)" = "$pid" ] || err "status --json pid $(get "$ready" pid) differs from the lock's pid $pid"
    echo "      campaign $id, daemon pid $pid: 4 sessions working after $(get "$ready" ready_s) s ($(get "$ready" ops) ops, $(get "$ready" tree_processes) browser/driver processes)"
    res=$(py stop "$BIN" "$pid" "$force" -- "${common[@]}")
    echo "      send -> daemon exited: $(get "$res" pid_gone_s) s;  emergency-stop CLI: wall $(get "$res" cli_s) s, says $(get "$res" cli_reported_s) s, exit $(get "$res" rc)$( [ "$(get "$res" zombie)" = true ] && echo ' (the daemon was still an unreaped zombie then)')"
    if [ -z "$(get "$res" pid_gone_s)" ] || [ "$(get "$res" rc)" != 0 ]; then
        err "$mode #$n: the daemon did not exit ($(get "$res" output))"
        return
    fi
    add_fig "$mode-gone" "$(get "$res" pid_gone_s)"
    add_fig "$mode-cli" "$(get "$res" cli_s)"
    verify "$dir" emergency_stopped
}

# ---------------------------------------------------------------- guardian trip
trip_run() {  # trip_run VARIANT(trip|trip-cold) N
    local variant=$1 n=$2 dir common cfg thr pid rc=0 t_exit res phase
    dir="$TMP_ROOT/$variant-$n"
    mkdir -p "$dir"
    common=(--state-dir "$dir/state" --output-dir "$dir/out" --log-dir "$dir/logs")
    thr=$(memory_threshold)
    cfg="$dir/$variant.toml"
    sed "s/^\(memory_percent = \).*# BENCH-MEMORY/\1$thr/" "$CONFIGS/stop-$variant.toml" >"$cfg"
    grep -q "^memory_percent = $thr\$" "$cfg" || { err "could not set the memory threshold in $cfg"; return; }
    if [ "$variant" = trip ]; then phase=1; else phase=any; fi
    echo "  [$variant #$n] load $(loadavg); memory threshold $thr % (in use: $(awk '/^MemTotal:/ {t=$2} /^MemAvailable:/ {a=$2} END {printf "%.1f", (t-a)*100/t}' /proc/meminfo) %)"
    "$BIN" launch -c "$cfg" "${common[@]}" >"$dir/launch.out" 2>&1 &
    pid=$!
    DAEMONS+=("$pid")
    wait "$pid" || rc=$?
    t_exit=$(date +%s.%N)
    res=$(py trip "$dir/state" "$dir/out" "$t_exit" "$phase" 3)
    if [ -z "$(get "$res" first_to_exit_s)" ]; then
        err "$variant #$n: no memory violation found in the store (exit $rc): $(tail -3 "$dir/launch.out" | tr '\n' ' ')"
        return
    fi
    echo "      first violation $(get "$res" first_violation_at) (event $(get "$res" first_violation_event_at)); $(get "$res" tree_processes_at_first_violation) browser/driver processes then"
    echo "      first violation -> trip $(get "$res" first_to_trip_s) s;  first violation -> exit $(get "$res" first_to_exit_s) s;  trip -> exit $(get "$res" trip_to_exit_s) s  (daemon exit $rc)"
    echo "      ops per phase $(get "$res" ops_by_phase); sessions that did ops, per phase $(get "$res" working_sessions_by_phase)"
    add_fig "$variant-first" "$(get "$res" first_to_exit_s)"
    add_fig "$variant-trip" "$(get "$res" trip_to_exit_s)"
    verify "$dir" emergency_stopped
    grep -q "memory" <<<"$(get "$(py report "$dir/out")" stop_reason)" || err "$variant #$n: the stop reason does not name the memory metric"
}

# ---------------------------------------------------------------- guardian cost
cost_run() {  # cost_run INTERVAL(1s|1h) N
    local iv=$1 n=$2 dir common pid st0 st1 res s0 s1 a0 a1 t0
    dir="$TMP_ROOT/cost-$iv-$n"
    mkdir -p "$dir"
    common=(--state-dir "$dir/state" --output-dir "$dir/out" --log-dir "$dir/logs")
    "$BIN" launch -c "$CONFIGS/stop-guardian-$iv.toml" "${common[@]}" >"$dir/launch.out" 2>&1 &
    pid=$!
    DAEMONS+=("$pid")
    t0=$SECONDS
    while :; do
        st0=$("$BIN" status --json "${common[@]}" 2>/dev/null || true)
        if [ -n "$st0" ] && [ "$(get "$(get "$st0" ops)" attempted)" -ge 1 ]; then break; fi
        if ! kill -0 "$pid" 2>/dev/null || [ $((SECONDS - t0)) -gt 30 ]; then err "cost $iv #$n: the campaign did not start its op"; return; fi
        sleep 0.2
    done
    sleep 3   # the op's window is flushed; from here on the daemon only waits (and samples)
    st0=$("$BIN" status --json "${common[@]}")
    res=$(py cpu "$pid" 30)
    st1=$("$BIN" status --json "${common[@]}")
    a0=$(get "$(get "$st0" ops)" attempted); s0=$(get "$(get "$st0" guardian)" samples)
    a1=$(get "$(get "$st1" ops)" attempted); s1=$(get "$(get "$st1" guardian)" samples)
    echo "  [cost sample_interval=$iv #$n] load $(loadavg): daemon CPU $(get "$res" cpu_s) s over $(get "$res" wall_s) s = $(get "$res" pct) % of one core (10 ms tick resolution); $((s1 - s0)) guardian samples over $(find /proc -maxdepth 1 -name '[0-9]*' | wc -l) host processes, $((a1 - a0)) ops in the window; RSS $(awk '/VmRSS/ {print $2, $3}' /proc/"$pid"/status)"
    [ "$a1" = "$a0" ] || err "cost $iv #$n: ops ran during the idle window ($a0 -> $a1)"
    add_fig "cost-$iv" "$(get "$res" pct)"
    "$BIN" emergency-stop "${common[@]}" >/dev/null 2>&1 || err "cost $iv #$n: emergency-stop failed"
    wait "$pid" || true
    verify "$dir" emergency_stopped
}

if want graceful; then echo "== graceful emergency-stop, 4 WebGPU sessions (goal <= 2 s)"; for i in $(seq "$RUNS"); do stop_run graceful "$i"; done; fi
if want force; then echo "== emergency-stop --force, 4 WebGPU sessions (goal <= 1 s)"; for i in $(seq "$RUNS"); do stop_run force "$i"; done; fi
if want trip; then echo "== guardian trip with 4 sessions working (sample_interval 500ms, 3 in a row; goal <= 2.5 s)"; for i in $(seq "$RUNS"); do trip_run trip "$i"; done; fi
if want trip-cold; then echo "== guardian trip while the 4 sessions are being opened (same goal)"; for i in $(seq "$RUNS"); do trip_run trip-cold "$i"; done; fi
if want cost; then
    echo "== guardian cost: daemon CPU over 30 s with no ops running (goal < 1 % of one core)"
    for i in $(seq "$RUNS"); do cost_run 1s "$i"; cost_run 1h "$i"; done
fi

# ---------------------------------------------------------------- summary
echo
echo "== summary (load average now $(loadavg)); figures in run order, then min / median / max"
verdict() {  # verdict LABEL KEY GOAL_OP GOAL UNIT
    local label=$1 key=$2 op=$3 goal=$4 unit=$5 vals stats med ok
    vals=${FIG[$key]:-}
    if [ -z "${vals// /}" ]; then printf '  %-44s no figures (runs failed or skipped)\n' "$label"; return; fi
    stats=$(py stats $vals)
    med=$(cut -d' ' -f2 <<<"$stats")
    # PASS/MISSED on the median; and how many single runs were within the goal
    ok=$(awk -v m="$med" -v g="$goal" -v op="$op" 'BEGIN {print ((op == "le" ? m <= g : m < g) ? "PASS" : "MISSED")}')
    within=$(for v in $vals; do awk -v m="$v" -v g="$goal" -v op="$op" 'BEGIN {if (op == "le" ? m <= g : m < g) print 1}'; done | wc -l)
    printf '  %-44s %s  [%s] %s   goal %s %s %s  %s (%s/%s runs within)\n' "$label" "$(echo $vals)" "$(tr ' ' '/' <<<"$stats")" "$unit" "$([ "$op" = le ] && echo '<=' || echo '<')" "$goal" "$unit" "$ok" "$within" "$(wc -w <<<"$vals")"
}
want graceful && verdict "graceful: send -> daemon exited" graceful-gone le 2 s
want graceful && verdict "graceful: emergency-stop CLI wall time" graceful-cli le 2 s
want force && verdict "force: send -> daemon exited" force-gone le 1 s
want force && verdict "force: emergency-stop --force CLI wall time" force-cli le 1 s
want trip && verdict "trip (4 working): 1st violation -> exit" trip-first le 2.5 s
want trip && verdict "trip (4 working): trip -> exit" trip-trip le 1.5 s
want trip-cold && verdict "trip (opening): 1st violation -> exit" trip-cold-first le 2.5 s
want trip-cold && verdict "trip (opening): trip -> exit" trip-cold-trip le 1.5 s
if want cost; then
    verdict "cost: daemon CPU, guardian every 1 s" cost-1s lt 1 %
    verdict "cost: daemon CPU, guardian idle (1h)" cost-1h lt 1 %
    a=(${FIG[cost-1s]:-}); b=(${FIG[cost-1h]:-}); share=""
    for i in "${!a[@]}"; do [ -n "${b[$i]:-}" ] && share+=" $(awk -v a="${a[$i]}" -v b="${b[$i]}" 'BEGIN {printf "%.3f", a - b}')"; done
    FIG[cost-share]=$share
    verdict "cost: guardian share (1 s run - 1h run)" cost-share lt 1 %
fi
want trip trip-cold && echo "  (trip -> exit is held against 1.5 s: the goal 3 x 0.5 s + 1 s minus the 1 s from the 1st to the 3rd violating sample)"
left=$(pgrep -fa chromedriver | grep -F "$TMP_ROOT" || true)
[ -z "$left" ] || err "chromedriver of this benchmark still running: $left"
if [ "$ERRORS" -gt 0 ]; then echo "bench-stop: $ERRORS error(s)"; exit 1; fi
echo "bench-stop: all runs measured and checked"
