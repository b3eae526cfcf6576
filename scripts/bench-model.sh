#!/usr/bin/env bash
# Model benchmark (not a test): stressctl's `model` task against a minimal loop of the same
# inference session in the same page.
#
#   scripts/bench-model.sh [--rounds N] [--ops N] [--loop-n N] [--keep]
#
# One campaign (benches/configs/model-bench.toml + the phases written here), one Chromium session:
#   warmup            model task, builtin:text on webgpu: opens the session, creates the inference
#                     session (load + first inference, kept out of op latencies), warms it
#   then ROUNDS rounds, each a `model` phase and a `loop` phase, alternating which goes first
#   (a b, b a, a b, …: a load drifting during the run weighs on both):
#   (a) model-R       OPS ops of the model task: one inference per WebDriver call, each checked
#                     against the wasm provider (its reference cached per seed in the page)
#   (b) loop-R        OPS / LOOP_N ops of a `page` task whose script calls model.mjs's loop():
#                     LOOP_N runs of the same inference session on the same inputs, in the page,
#                     nothing checked, one driver call per LOOP_N inferences
# Inferences per second: (a) the phase's throughput_ops_per_s; (b) throughput_ops_per_s × LOOP_N.
# A round is kept only if it ran as planned: both phases ran all their ops, none failed, the model
# phase's ops ran in the warm-up's session (its session record) and no session was opened in
# between (a loop op outside that page fails: the page task's url is never served).
# Prints each kept round's ratio a/b, the ratio of the means (goal >= 0.95) and the spread.
#
# Exit status: 0 measured (goal met or missed), 1 when no round could be kept or the campaign
# gave no report, 2 on bad usage. STRESSCTL=path uses that binary instead of building
# target/release/stressctl (cargo build --release).
set -euo pipefail

ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=3
OPS=300
LOOP_N=30
KEEP=0
GOAL=0.95
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=${2:?--rounds needs a number}; shift 2 ;;
        --ops) OPS=${2:?--ops needs a number}; shift 2 ;;
        --loop-n) LOOP_N=${2:?--loop-n needs a number}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "bench-model.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
for v in "$ROUNDS" "$OPS" "$LOOP_N"; do
    case "$v" in ''|*[!0-9]*|0) echo "bench-model.sh: --rounds, --ops and --loop-n take positive numbers" >&2; exit 2 ;; esac
done
[ $((OPS % LOOP_N)) -eq 0 ] || { echo "bench-model.sh: --ops ($OPS) must be a multiple of --loop-n ($LOOP_N)" >&2; exit 2; }
ORT_DIR="$ROOT_DIR/vendor/onnxruntime-web"
[ -f "$ORT_DIR/ort.webgpu.min.mjs" ] || { echo "bench-model.sh: no onnxruntime-web in $ORT_DIR: run scripts/setup-ort.sh" >&2; exit 1; }

. "$ROOT_DIR/scripts/bench-common.sh"
stressctl_bin bench-model.sh

TMP=$(mktemp -d /tmp/bench-model.XXXXXX)
cleanup() { if [ "$KEEP" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi; }
trap cleanup EXIT

CFG="$TMP/bench-model.toml"
LOOPS=$((OPS / LOOP_N))
{
    cat "$ROOT_DIR/benches/configs/model-bench.toml"
    model_phase() { # name ops
        printf '\n[[phases]]\nname = "%s"\nduration = "600s"\nsessions = 1\nops_per_session = %s\nstress_level = "extreme"\n' "$1" "$2"
        printf '[phases.criteria]\nmax_p95 = "60s"\n[phases.task]\nkind = "model"\nmodel = "builtin:text"\nexecution_provider = "webgpu"\nort_dir = "%s"\n' "$ORT_DIR"
    }
    loop_phase() { # name
        printf '\n[[phases]]\nname = "%s"\nduration = "600s"\nsessions = 1\nops_per_session = %s\nstress_level = "extreme"\n' "$1" "$LOOPS"
        printf '[phases.criteria]\nmax_p95 = "60s"\n[phases.task]\nkind = "page"\nurl = "http://127.0.0.1:9/never-loaded"\n'
        # shellcheck disable=SC2016
        printf "script = '''\nconst done = arguments[arguments.length - 1];\nconst m = window.__stressctlModel;\n(m ? m.then((x) => x.loop({n: %s})) : Promise.resolve({ok: false, class: 'script_error', message: 'not the model page'}))\n  .then(done, (e) => done({ok: false, class: 'script_error', message: String(e)}));\n'''\n" "$LOOP_N"
    }
    model_phase warmup 64
    for r in $(seq 1 "$ROUNDS"); do
        if [ $((r % 2)) -eq 1 ]; then model_phase "model-$r" "$OPS"; loop_phase "loop-$r"; else loop_phase "loop-$r"; model_phase "model-$r" "$OPS"; fi
    done
} >"$CFG"

echo "== bench-model: builtin:text on webgpu, 1 Chromium session, $ROUNDS round(s): model task $OPS ops vs loop() $LOOPS × $LOOP_N inferences; load $(cut -d' ' -f1-3 /proc/loadavg)"
set +e
"$BIN" launch --config "$CFG" --output-dir "$TMP/out" --state-dir "$TMP/state" --log-dir "$TMP/logs" >"$TMP/launch.out" 2>&1
rc=$?
set -e
REPORT=$(find "$TMP/out" -name campaign_report.json 2>/dev/null | head -1 || true)
if [ -z "$REPORT" ]; then
    echo "bench-model.sh: the campaign gave no report (exit $rc):" >&2
    tail -20 "$TMP/launch.out" >&2
    exit 1
fi

python3 - "$REPORT" "$ROUNDS" "$OPS" "$LOOPS" "$LOOP_N" "$GOAL" <<'PY'
import json, statistics, sys
report, rounds, ops, loops, loop_n, goal = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
r = json.load(open(report))
phases = {p["name"]: p for p in r["phases"]}
def sessions(p):
    return {s.get("session") for s in p.get("tasks", {}).get("model", {}).get("sessions", [])}
warm = phases.get("warmup")
home = sessions(warm) if warm else set()
if len(home) != 1:
    print(f"bench-model: the warm-up did not open exactly one model session: {sorted(home)}")
    sys.exit(1)
kept, a_all, b_all = [], [], []
for i in range(1, rounds + 1):
    a, b = phases.get(f"model-{i}"), phases.get(f"loop-{i}")
    why = []
    if not a or not b:
        why.append("a phase did not run")
    else:
        if a["ops_attempted"] != ops or a["ops_failed"]:
            why.append(f"model: {a['ops_attempted']} ops, {a['ops_failed']} failed {a.get('errors_by_class')}")
        if b["ops_attempted"] != loops or b["ops_failed"]:
            why.append(f"loop: {b['ops_attempted']} ops, {b['ops_failed']} failed {b.get('errors_by_class')} {[e.get('message') for e in b.get('top_errors', [])][:1]}")
        if sessions(a) - home:
            why.append(f"model ran in another session {sorted(sessions(a))}")
    if why:
        print(f"   round {i}: DISCARDED ({'; '.join(why)})")
        continue
    ia = a["throughput_ops_per_s"]
    ib = b["throughput_ops_per_s"] * loop_n
    la = a["latency_ms"]
    print(f"   round {i}: stressctl {ia:.2f} inf/s (p50 {la['p50']:.2f} ms, p95 {la['p95']:.2f} ms, all verified: {a['tasks']['model']['verified'] == ops}), loop {ib:.2f} inf/s, ratio {ia / ib:.3f}")
    kept.append(ia / ib); a_all.append(ia); b_all.append(ib)
if not kept:
    print("bench-model: no round ran as planned")
    sys.exit(1)
ratio = statistics.mean(a_all) / statistics.mean(b_all)
verdict = "PASS" if ratio >= goal else "MISSED"
print(f"== ratio stressctl/loop = {ratio:.3f} (means over {len(kept)} kept round(s) of {rounds}: {statistics.mean(a_all):.2f} vs {statistics.mean(b_all):.2f} inferences/s); "
      f"round ratios min {min(kept):.3f} / median {statistics.median(kept):.3f} / max {max(kept):.3f}; goal >= {goal}: {verdict}")
PY
