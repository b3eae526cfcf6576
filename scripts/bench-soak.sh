#!/usr/bin/env bash
# Soak benchmark: does the daemon's memory stay flat over a million ops?
#
#   scripts/bench-soak.sh [--runs N] [--config FILE] [--keep]
#
# Runs a synthetic campaign of at least 1,000,000 ops (benches/configs/soak-1m.toml: five phases
# of 24 sessions, 1-5 % failures; no browser) N times (default 3). While it runs, the daemon's
# VmRSS (/proc/<pid>/status) and its op count (`stressctl status --json` over the control socket)
# are sampled every 0.5 s. Per run it prints:
#   - the RSS at the first sample with >= 10,000 ops, the RSS at the end (the last sample while the
#     campaign still answered `status`, i.e. before its shutdown frees memory), the peak, and the
#     growth end - first;                                      goal: growth <= 5 MB (5,000,000 bytes)
#   - the RSS at a few op counts along the way (is it flat, or growing with the op count?)
#   - the total ops (campaign_report.json totals.ops_attempted), the duration and the store file
#     size per million ops.
# Then min/median/max over the runs and PASS/MISSED per run.
#
# Browser soak (--browser): the `model` task on builtin:text (webgpu) in one Chromium session for
# N inferences (--inferences N, default 10,000; benches/configs/model-soak.toml), then the same
# task for --recycle-for (default 60 s) with `max_browser_rss_mb` below what that browser used
# (--cap-mb M, default 90 % of its RSS after set-up). Prints the browser's tree RSS (the page's
# process tree, measured by stressctl at set-up, every 100 inferences and kept every 1,000) after
# set-up, at 1,000 and at N inferences, the peak and the growth per 1,000 inferences, then the
# guardian's browser_rss_exceeded events and the sessions stressctl recycled and reopened.
#
# Exit status: 0 when every run was measured (goal met or missed), 1 when a run failed (fewer
# than 1,000,000 ops, no report, leftover processes, no samples), 2 on bad usage.
# Environment: STRESSCTL=path uses that binary instead of building target/release/stressctl.

set -euo pipefail

ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
CONFIG="$ROOT_DIR/benches/configs/soak-1m.toml"
RUNS=3
KEEP=0
GOAL_BYTES=5000000
MIN_OPS=1000000
BROWSER=0
INFERENCES=10000
CAP_MB=
RECYCLE_FOR=60s
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
        --config) CONFIG=${2:?--config needs a file}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --browser) BROWSER=1; shift ;;
        --inferences) INFERENCES=${2:?--inferences needs a number}; shift 2 ;;
        --cap-mb) CAP_MB=${2:?--cap-mb needs a number}; shift 2 ;;
        --recycle-for) RECYCLE_FOR=${2:?--recycle-for needs a duration like 60s}; shift 2 ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
        *) echo "bench-soak.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$RUNS" in ''|*[!0-9]*|0) echo "bench-soak.sh: --runs must be a positive number" >&2; exit 2 ;; esac
[ -f "$CONFIG" ] || { echo "bench-soak.sh: no config $CONFIG" >&2; exit 2; }
case "$INFERENCES" in ''|*[!0-9]*|0) echo "bench-soak.sh: --inferences must be a positive number" >&2; exit 2 ;; esac
case "$CAP_MB" in *[!0-9]*) echo "bench-soak.sh: --cap-mb must be a number of MiB (>= 64)" >&2; exit 2 ;; esac

. "$ROOT_DIR/scripts/bench-common.sh"
stressctl_bin bench-soak.sh

# the interpreter itself, not a version-manager shim (a pyenv shim costs ~1 s per call on a busy box)
PY=$(python3 -c 'import sys; print(sys.executable)')
TMP_ROOT=$(mktemp -d /tmp/bench-soak.XXXXXX)
HELPER="$TMP_ROOT/helper.py"
ERRORS=0
DAEMONS=()

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
    if [ "$KEEP" = 1 ]; then echo "kept $TMP_ROOT"; else rm -rf "$TMP_ROOT"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$HELPER" <<'PY'
"""Sampling and analysis helpers of bench-soak.sh."""
import json, os, subprocess, sys, time

def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    return s[s.rindex(")") + 2]

def vm(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None

def cmd_sample(args):
    """sample BIN PID CSV -- COMMON...: every 0.5 s, the daemon's VmRSS and op count, until it exits."""
    bin_, pid, csv = args[0], int(args[1]), args[2]
    common = args[args.index("--") + 1:]
    t0 = time.monotonic()
    nxt = t0
    with open(csv, "w") as out:
        out.write("t_s,rss_bytes,ops,phase,hwm_bytes\n")
        while True:
            st = proc_state(pid)
            if st is None or st in "ZX":
                break
            rss, hwm = vm(pid, "VmRSS"), vm(pid, "VmHWM")
            if rss is None:
                break
            ops, phase = "", ""
            try:
                r = subprocess.run([bin_, "status", "--json", *common], capture_output=True, text=True, timeout=5)
                if r.returncode == 0:
                    d = json.loads(r.stdout)
                    ops = d["ops"]["attempted"]
                    phase = (d.get("phase") or {}).get("name") or "-"
            except (subprocess.TimeoutExpired, ValueError, KeyError):
                pass
            out.write(f"{time.monotonic() - t0:.2f},{rss},{ops},{phase},{hwm}\n")
            out.flush()
            nxt += 0.5
            time.sleep(max(0.0, nxt - time.monotonic()))
    return 0

def mib(b):
    return f"{b / 1048576:.2f} MiB"

def cmd_analyze(args):
    """analyze CSV STATE OUTDIR GOAL_BYTES: the figures of one run, as JSON."""
    csv, state, out, goal = args[0], args[1], args[2], int(args[3])
    rows = []
    with open(csv) as f:
        next(f)
        for line in f:
            t, rss, ops, phase, hwm = line.rstrip("\n").split(",")
            rows.append((float(t), int(rss), int(ops) if ops else None, phase, int(hwm)))
    res = {"samples": len(rows)}
    with_ops = [r for r in rows if r[2] is not None]
    ref = next((r for r in with_ops if r[2] >= 10000), None)
    if not rows or ref is None:
        res["error"] = f"no sample with >= 10,000 ops ({len(rows)} samples)"
        print(json.dumps(res))
        return 0
    end, last_ops = rows[-1], with_ops[-1]
    peak = max(rows, key=lambda r: r[1])
    res.update({
        "ref_ops": ref[2], "ref_rss": ref[1], "ref_t": ref[0],
        "end_rss": last_ops[1], "end_t": last_ops[0], "end_ops": last_ops[2],
        "final_rss": end[1], "final_t": end[0], "peak_rss": peak[1],
        "peak_where": f"phase {peak[3]}, {peak[2]:,} ops" if peak[2] is not None else "after the ops, status no longer answering",
        "delta": last_ops[1] - ref[1],
    })
    res["verdict"] = "PASS" if res["delta"] <= goal else "MISSED"
    # RSS along the way: first sample at or past each mark
    trail = []
    for mark in (10_000, 100_000, 250_000, 500_000, 750_000, 1_000_000, 2_000_000, 3_000_000, 5_000_000, 10_000_000):
        r = next((r for r in with_ops if r[2] >= mark), None)
        if r:
            trail.append(f"{r[2]:,} ops ({r[3]}): {r[1] / 1048576:.2f}")
    res["trail"] = "; ".join(trail) + " MiB"
    ids = sorted(os.listdir(out))
    rep = json.load(open(os.path.join(out, ids[-1], "campaign_report.json")))
    res["id"] = rep["campaign_id"]
    res["outcome"] = rep["outcome"]
    res["total_ops"] = rep["totals"]["ops_attempted"]
    res["failed_ops"] = rep["totals"]["ops_failed"]
    res["duration_s"] = rep["totals"]["duration_s"]
    res["wall_s"] = rep.get("wall_time_s")
    res["ops_per_s"] = rep["totals"]["throughput_ops_per_s"]
    run = os.path.join(state, "runs", res["id"])
    store = sum(os.path.getsize(os.path.join(run, f)) for f in os.listdir(run) if f.startswith("store.sqlite"))
    events = os.path.getsize(os.path.join(out, ids[-1], "events.jsonl"))
    res["store_bytes"] = store
    res["store_per_mops"] = store / res["total_ops"] * 1e6 if res["total_ops"] else None
    res["events_bytes"] = events
    print(json.dumps(res))
    return 0

def cmd_stats(args):
    """stats V...: min median max."""
    v = sorted(float(x) for x in args)
    n = len(v)
    med = v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
    print(f"{v[0]:.2f} {med:.2f} {v[-1]:.2f}")
    return 0

def cmd_leftovers(args):
    """leftovers ROOT: processes (other than this one and its parent) mentioning ROOT."""
    root = args[0].encode()
    mine = {os.getpid(), os.getppid()}
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) not in mine:
            try:
                cl = open(f"/proc/{d}/cmdline", "rb").read()
            except OSError:
                continue
            if root in cl and proc_state(int(d)) not in (None, "Z", "X"):
                text = cl.replace(b"\0", b" ").decode(errors="replace")[:120]
                print(f"  pid {d}: {text}")
    return 0

if __name__ == "__main__":
    sys.exit(globals()["cmd_" + sys.argv[1]](sys.argv[2:]))
PY

py() { "$PY" "$HELPER" "$@"; }
if command -v jq >/dev/null; then
    get() { jq -r --arg k "$2" '.[$k] | if . == null then "" elif type == "object" or type == "array" then tojson else tostring end' <<<"$1"; }
else
    get() { "$PY" -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print("" if v is None else v)' "$1" "$2"; }
fi
mib() { awk -v b="$1" 'BEGIN {printf "%.2f MiB", b / 1048576}'; }

if [ "$BROWSER" = 1 ]; then
    ORT_DIR="$ROOT_DIR/vendor/onnxruntime-web"
    [ -f "$ORT_DIR/ort.webgpu.min.mjs" ] || { echo "bench-soak.sh: no onnxruntime-web in $ORT_DIR: run scripts/setup-ort.sh" >&2; exit 1; }
    # browser_campaign NAME PHASE_LINES SAFETY_LINES: runs one model campaign, prints its out dir
    browser_campaign() {
        local dir="$TMP_ROOT/$1" rc=0
        mkdir -p "$dir"
        { sed -e "s|@ORT_DIR@|$ORT_DIR|" -e "s|^@PHASE@$|$2|" -e "s|^@SAFETY@$|$3|" "$ROOT_DIR/benches/configs/model-soak.toml"; } >"$dir/c.toml"
        "$BIN" launch -c "$dir/c.toml" --state-dir "$dir/state" --output-dir "$dir/out" --log-dir "$dir/logs" >"$dir/launch.out" 2>&1 &
        DAEMONS+=("$!")
        wait "$!" || rc=$?
        echo "      $1: stressctl exited $rc; load $(loadavg)" >&2
        left=$(py leftovers "$dir")
        [ -z "$left" ] || { echo "ERROR: $1: processes left:" >&2; echo "$left" >&2; }
        echo "$dir"
    }
    echo "== bench-soak --browser: builtin:text on webgpu, one Chromium session, $INFERENCES inferences; load $(loadavg)"
    soak=$(browser_campaign soak "duration = \"4h\"\nops_per_session = $INFERENCES" "")
    figures=$("$PY" - "$soak/out" "$INFERENCES" <<'PY'
import glob, json, sys
out, n = sys.argv[1], int(sys.argv[2])
reps = glob.glob(f"{out}/*/campaign_report.json")
if not reps:
    print("      ERROR: the soak campaign gave no report", file=sys.stderr); sys.exit(0)
r = json.load(open(reps[0]))
p = r["phases"][0]
t = p["tasks"]["model"]
ss = t.get("sessions", [])
print(f"      campaign {r['outcome']}: {p['ops_attempted']} inferences ({p['ops_failed']} failed, {t['verified']} verified against wasm) "
      f"in {len(ss)} session(s), p50 {p['latency_ms']['p50']:.1f} ms, p95 {p['latency_ms']['p95']:.1f} ms; worst error abs {t['worst_error']['abs']}", file=sys.stderr)
for s in ss:
    m = s.get("rss_mb") or {}
    cps = ", ".join(f"{a}: {b}" for a, b in m.get("checkpoints", []))
    print(f"      session {s['session']}: browser tree RSS after set-up {m.get('start')} MiB, at 1,000 inferences {m.get('at_1000')} MiB, "
          f"at {m.get('last_at')} inferences {m.get('last')} MiB, peak {m.get('max')} MiB, growth {m.get('growth_per_1000')} MiB per 1,000 inferences", file=sys.stderr)
    print(f"        checkpoints (inferences: MiB) {cps}", file=sys.stderr)
    if m.get("last_at") != n:
        print(f"      ERROR session {s['session']}: last RSS figure at {m.get('last_at')} inferences, expected {n}", file=sys.stderr)
starts = [s["rss_mb"]["start"] for s in ss if s.get("rss_mb") and s["rss_mb"].get("start")]
print(int(min(starts)) if starts else "")
PY
)
    case "$figures" in ''|*[!0-9]*) err "the soak gave no RSS figure (see $soak/launch.out)"; exit 1 ;; esac
    cap=${CAP_MB:-$((figures * 9 / 10))}
    [ "$cap" -ge 64 ] || cap=64
    echo "== recycling: the same task for $RECYCLE_FOR with max_browser_rss_mb = $cap (the soak's browser used $figures MiB after set-up)"
    rec=$(browser_campaign recycle "duration = \"$RECYCLE_FOR\"" "max_browser_rss_mb = $cap")
    "$PY" - "$rec/out" <<'PY'
import glob, json, sys
out = sys.argv[1]
reps = glob.glob(f"{out}/*/campaign_report.json")
if not reps:
    print("ERROR: the recycling campaign gave no report"); sys.exit(0)
r = json.load(open(reps[0]))
p = r["phases"][0]
t = p["tasks"]["model"]
ev = [json.loads(l) for l in open(glob.glob(f"{out}/*/events.jsonl")[0])]
kinds = lambda k: [e for e in ev if e.get("kind") == k or e.get("event") == k or e.get("type") == k]
exceeded, recycled = kinds("browser_rss_exceeded"), kinds("browser_recycled")
print(f"      campaign {r['outcome']}: {p['ops_attempted']} inferences ({p['ops_failed']} failed) in {len(t.get('sessions', []))} model session(s); "
      f"browser_rss_exceeded {len(exceeded)}, browser_recycled {len(recycled)}")
for e in exceeded[:3]:
    print(f"        {e.get('message') or e}")
print("      recycling: " + ("PASS (sessions recycled when max_browser_rss_mb was hit)" if exceeded and recycled else "MISSED (no recycling seen)"))
PY
    if [ "$ERRORS" -gt 0 ]; then exit 1; fi
    exit 0
fi

echo "== bench-soak: $(nproc) cores, load average $(loadavg), $RUNS run(s)"
echo "   binary $BIN ($("$BIN" --version)); config $CONFIG"
echo "   temp dir $TMP_ROOT; goal: RSS at the end <= RSS after the first 10,000 ops + 5 MB ($GOAL_BYTES bytes)"

DELTAS=(); REFS=(); ENDS=(); PEAKS=(); STORES=(); VERDICTS=()
for n in $(seq "$RUNS"); do
    dir="$TMP_ROOT/run-$n"
    mkdir -p "$dir"
    common=(--state-dir "$dir/state" --output-dir "$dir/out" --log-dir "$dir/logs")
    echo "  [soak #$n] load $(loadavg) at start"
    "$BIN" launch -c "$CONFIG" "${common[@]}" >"$dir/launch.out" 2>&1 &
    pid=$!
    DAEMONS+=("$pid")
    py sample "$BIN" "$pid" "$dir/samples.csv" -- "${common[@]}"
    rc=0
    wait "$pid" || rc=$?
    echo "      daemon pid $pid exited $rc; load $(loadavg) at the end"
    if [ ! -s "$dir/samples.csv" ]; then err "soak #$n: no samples"; continue; fi
    res=$(py analyze "$dir/samples.csv" "$dir/state" "$dir/out" "$GOAL_BYTES" 2>&1) || { err "soak #$n: analysis failed: $res"; tail -5 "$dir/launch.out"; continue; }
    if [ -n "$(get "$res" error)" ]; then err "soak #$n: $(get "$res" error)"; tail -5 "$dir/launch.out"; continue; fi
    total=$(get "$res" total_ops)
    echo "      campaign $(get "$res" id): outcome $(get "$res" outcome), $total ops ($(get "$res" failed_ops) failed) in $(get "$res" duration_s) s of phases = $(get "$res" ops_per_s) ops/s; $(get "$res" samples) samples"
    echo "      RSS after $(get "$res" ref_ops) ops (t=$(get "$res" ref_t) s): $(mib "$(get "$res" ref_rss)")"
    echo "      RSS at the end (t=$(get "$res" end_t) s, last sample while the campaign still ran, $(get "$res" end_ops) ops): $(mib "$(get "$res" end_rss)")"
    echo "      RSS at the last sample before exit (t=$(get "$res" final_t) s, may be during shutdown): $(mib "$(get "$res" final_rss)")"
    echo "      RSS peak: $(mib "$(get "$res" peak_rss)") ($(get "$res" peak_where))"
    echo "      growth end - after 10k ops: $(get "$res" delta) bytes ($(mib "$(get "$res" delta)"))  -> $(get "$res" verdict)"
    echo "      along the way: $(get "$res" trail)"
    echo "      store $(get "$res" store_bytes) bytes = $(awk -v b="$(get "$res" store_per_mops)" 'BEGIN {printf "%.1f KiB", b / 1024}') per million ops; events.jsonl $(get "$res" events_bytes) bytes"
    [ "$total" -ge "$MIN_OPS" ] || err "soak #$n: only $total ops (the soak needs >= $MIN_OPS)"
    left=$(py leftovers "$dir")
    [ -z "$left" ] || { err "soak #$n: processes left:"; echo "$left"; }
    DELTAS+=("$(get "$res" delta)"); REFS+=("$(get "$res" ref_rss)"); ENDS+=("$(get "$res" end_rss)")
    PEAKS+=("$(get "$res" peak_rss)"); STORES+=("$(get "$res" store_per_mops)"); VERDICTS+=("$(get "$res" verdict)")
done

echo
echo "== summary (load average now $(loadavg)); per run, then [min/median/max]"
if [ ${#DELTAS[@]} -gt 0 ]; then
    row() {  # row LABEL SCALE VALUES...
        local label=$1 scale=$2; shift 2
        local vals=() v
        for v in "$@"; do vals+=("$(awk -v b="$v" -v s="$scale" 'BEGIN {printf "%.2f", b / s}')"); done
        printf '  %-36s %s  [%s]\n' "$label" "${vals[*]}" "$(py stats "${vals[@]}" | tr ' ' '/')"
    }
    row "RSS after 10,000 ops (MiB)" 1048576 "${REFS[@]}"
    row "RSS at the end (MiB)" 1048576 "${ENDS[@]}"
    row "RSS peak (MiB)" 1048576 "${PEAKS[@]}"
    row "growth end - 10k (MiB)" 1048576 "${DELTAS[@]}"
    row "growth end - 10k (MB, 10^6 bytes)" 1000000 "${DELTAS[@]}"
    row "store per million ops (KiB)" 1024 "${STORES[@]}"
    missed=0
    for v in "${VERDICTS[@]}"; do [ "$v" = PASS ] || missed=$((missed + 1)); done
    printf '  %-36s %s\n' "growth <= 5 MB, per run" "${VERDICTS[*]}"
    if [ "$missed" = 0 ]; then echo "  soak goal (RSS growth <= 5 MB over >= 1M ops): PASS in ${#VERDICTS[@]}/${#VERDICTS[@]} runs"
    else echo "  soak goal (RSS growth <= 5 MB over >= 1M ops): MISSED in $missed/${#VERDICTS[@]} runs"; fi
else
    echo "  no run could be measured"
fi
if [ "$ERRORS" -gt 0 ]; then echo "bench-soak: $ERRORS error(s)"; exit 1; fi
echo "bench-soak: all runs measured"
