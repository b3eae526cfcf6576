#!/usr/bin/env bash
# Throughput benchmark: stressctl against a minimal fantoccini loop, and the synthetic task.
#
#   scripts/bench-throughput.sh                       # defaults below
#   MATRIX_SIZES="128 32" ROUNDS=3 scripts/bench-throughput.sh
#   BROWSERS=firefox scripts/bench-throughput.sh      # the Firefox round alone
#
# Every round runs for each browser of BROWSERS (default "chromium firefox"): Chromium through one
# chromedriver, Firefox ESR through one geckodriver per session on both sides.
#
# (a) stressctl runs benches/configs/throughput.toml: a short warm-up phase that opens 2 sessions
#     (stressctl keeps healthy sessions in its pool across phases), then the `measured` phase with
#     2 sessions × OPS_PER_SESSION ops of the WebGPU task. Its ops/s is the phase's
#     `throughput_ops_per_s` from campaign_report.json = ops_attempted / duration_s, where
#     duration_s is the phase's wall time from just before its session slots are spawned until
#     the last slot has returned its session (it includes taking the already-open sessions back
#     out of the pool and the last window flush; no session is opened in it).
# (b) examples/fantoccini_loop.rs: same page server, chromedriver spawn, Chromium flags,
#     capabilities, op script, matrix size and seed policy (new seed every 64 ops) from the
#     stressctl library; 2 sessions opened and warmed (WARMUP_OPS each) before the clock starts,
#     then OPS_PER_SESSION ops per session, one tokio task per session. Timed: spawn → all joined.
#
# Both sides open their 2 sessions concurrently and warm them with WARMUP_OPS ops each before the
# clock starts: a freshly launched Chromium is slower for its first seconds (its own start-up
# work), so sessions of different ages or a too-short warm-up bias the comparison.
#
# (a) and (b) alternate (a, b, a, b, …) ROUNDS times per matrix size to spread the noise of a busy
# machine over both; the ratio is mean(a) / mean(b) and the goal is >= 0.95. Each round's ratio is
# printed too: on a loaded 2-core machine single rounds vary by ±10% or more, so look at the
# spread (and raise ROUNDS) before reading much into one MISSED.
# Then the Grid round (chromium only; GRID_ROUNDS=0 skips it): the same stressctl run, 2 sessions ×
# OPS_PER_SESSION ops after the same warm-up, once with its worker pointed at a local Selenium Grid
# hub (scripts/grid.sh, one node with 2 chromium slots) and once with the managed chromedriver of
# the (a) rounds; the two alternate (grid first in odd rounds, direct first in even ones), after one
# unmeasured grid run that warms the hub's and node's JIT. Ratio mean(grid)/mean(direct), goal
# >= 0.9 (the hub's proxy cost), with the round ratios' spread. Needs scripts/setup-grid.sh (java,
# the Selenium jar); without them the round prints SKIPPED. The Grid is stopped on every exit path.
# Then the synthetic task (no browser, latency 0, 1 session, SYNTHETIC_OPS ops) under
# `taskset -c 0` when available: the goal is >= 100,000 ops/s on one core.
#
# A round that did not run as planned — stressctl not exiting 0, a side attempting other than the
# planned op count, or any failed op — is discarded (printed as DISCARDED with the reason) and run
# again, up to MAX_RERUNS times per round; it is never averaged in.
#
# Exits non-zero only on errors (build failure, a run that produced no figure, leftover
# processes); a missed goal is printed as MISSED and does not change the exit code.
#
# Environment:
#   BROWSERS          browsers to measure                             (default "chromium firefox")
#   OPS_PER_SESSION   measured ops per session, both sides            (default 500; Firefox: FIREFOX_OPS)
#   FIREFOX_OPS       measured ops per session in the Firefox rounds  (default 200: ~10 ops/s per session)
#   MAX_RERUNS        reruns of a round that did not run as planned   (default 2)
#   WARMUP_OPS        warm-up ops per session, both sides             (default 64)
#   ROUNDS            a/b pairs per matrix size                       (default 2)
#   MATRIX_SIZES      space-separated matrix sizes                    (default "128"; e.g. "128 32")
#   BASELINE_RUNTIME  tokio flavor of the minimal loop: multi|current (default multi, the naive loop)
#   ORDER             abab (default: a first in every round) or abba (a first in odd rounds, b
#                     first in even ones: cancels a load that drifts during the run)
#   PAIRED_ROUNDS     extra rounds running (a) and (b) at the same time (default 0): both then see
#                     the same background load, which makes the ratio far less noisy on a shared
#                     machine (informational; the goal is judged on the sequential runs)
#   GRID_ROUNDS       grid/direct pairs of the Grid round (default 2; 0 skips the round)
#   GRID_HUB_PORT     the Grid round's hub port (default 4844; also uses P-2, P-1 and P+11)
#   SYNTHETIC_OPS     ops of the synthetic run                        (default 2000000)
#   SYNTHETIC_ROUNDS  synthetic runs                                  (default 2)
#   PRIME=0           skip the unmeasured primer run before round 1
#   SKIP_BUILD=1      do not run `cargo build --release --bins --examples`
#   KEEP_TMP=1        keep the temp dir (reports, logs, stores) and print its path
#   MODEL_ROUNDS      rounds of the model round (default 3; 0 skips it): scripts/bench-model.sh,
#                     stressctl's `model` task (builtin:text, webgpu, one inference per op, each
#                     checked against wasm) against loop() of the same inference session in the
#                     same page; goal >= 0.95. MODEL_OPS (default 300) inferences per side and
#                     round. MODEL_ONLY=1 runs the model round alone.
#   GRID_ONLY=1       the Grid round alone (no a/b rounds, model round or synthetic task)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

OPS_PER_SESSION="${OPS_PER_SESSION:-500}"
BROWSERS="${BROWSERS:-chromium firefox}"
FIREFOX_OPS="${FIREFOX_OPS:-200}"
MAX_RERUNS="${MAX_RERUNS:-2}"
CHROMIUM_OPS="$OPS_PER_SESSION"
WARMUP_OPS="${WARMUP_OPS:-64}"
ROUNDS="${ROUNDS:-2}"
MATRIX_SIZES="${MATRIX_SIZES:-128}"
BASELINE_RUNTIME="${BASELINE_RUNTIME:-multi}"
ORDER="${ORDER:-abab}"
PAIRED_ROUNDS="${PAIRED_ROUNDS:-0}"
SYNTHETIC_OPS="${SYNTHETIC_OPS:-2000000}"
SYNTHETIC_ROUNDS="${SYNTHETIC_ROUNDS:-2}"
GOAL_RATIO="0.95"
GOAL_SYNTHETIC="100000"
SESSIONS=2 # fixed by the issue; benches/configs/throughput.toml has sessions = 2 in both phases

die() { echo "bench-throughput: error: $*" >&2; exit 2; }
is_uint() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -gt 0 ]; }
is_uint "$OPS_PER_SESSION" || die "OPS_PER_SESSION must be a positive integer"
[[ "$WARMUP_OPS" =~ ^[0-9]+$ ]] && [ "$WARMUP_OPS" -ge 1 ] || die "WARMUP_OPS must be >= 1 (the warm-up phase opens the sessions)"
is_uint "$ROUNDS" || die "ROUNDS must be a positive integer"
is_uint "$SYNTHETIC_OPS" || die "SYNTHETIC_OPS must be a positive integer"
is_uint "$SYNTHETIC_ROUNDS" || die "SYNTHETIC_ROUNDS must be a positive integer"
for s in $MATRIX_SIZES; do is_uint "$s" || die "MATRIX_SIZES: $s is not a positive integer"; done
for b in $BROWSERS; do case "$b" in chromium|firefox) ;; *) die "BROWSERS: $b is not chromium or firefox" ;; esac; done
is_uint "$FIREFOX_OPS" || die "FIREFOX_OPS must be a positive integer"
[[ "$MAX_RERUNS" =~ ^[0-9]+$ ]] || die "MAX_RERUNS must be a number"
case "$BASELINE_RUNTIME" in multi|current) ;; *) die "BASELINE_RUNTIME must be multi or current" ;; esac
case "$ORDER" in abab|abba) ;; *) die "ORDER must be abab or abba" ;; esac
[[ "$PAIRED_ROUNDS" =~ ^[0-9]+$ ]] || die "PAIRED_ROUNDS must be a number"

# JSON field access: jq, else python3.
if command -v jq >/dev/null 2>&1; then
  jget() { jq -r "$2" "$1"; }
elif command -v python3 >/dev/null 2>&1; then
  jget() { python3 - "$1" "$2" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
expr = sys.argv[2]
# supports the forms used below: .a.b, and '.phases[] | select(.name=="X") | .a.b'
if "select(" in expr:
    name = expr.split('select(.name=="')[1].split('")')[0]
    doc = next(p for p in doc["phases"] if p["name"] == name)
    expr = expr.rsplit("|", 1)[1].strip()
for k in [k for k in expr.strip().lstrip(".").split(".") if k]:
    doc = doc[k]
print(doc)
PY
  }
else
  die "needs jq or python3 to read JSON reports"
fi
fmt() { awk -v v="$1" -v d="${2:-1}" 'BEGIN { printf "%.*f", d, v }'; }
mean() { awk 'BEGIN { s = 0; n = 0 } { s += $1; n++ } END { if (n) printf "%.3f", s / n; else print "nan" }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/bench-throughput.XXXXXX")"
# Nothing we started may be left: every browser profile and chromedriver log lives under $TMP.
# Kills what is and exits 3.
fail_if_left_behind() {
  local left
  left="$(pgrep -f -- "$TMP" || true)"
  if [ -n "$left" ]; then
    echo "bench-throughput: error: processes left behind (pids: $(echo $left)); killing them" >&2
    kill -KILL $left 2>/dev/null || true
    exit 3
  fi
}
CHILDREN="" # pids of the runs in progress (started by this script)
stop_children() {
  local p
  for p in $CHILDREN; do kill -TERM "$p" 2>/dev/null || true; done
  for p in $CHILDREN; do wait "$p" 2>/dev/null || true; done
  CHILDREN=""
}
GRID_UP=0 # 1 while the Grid round's scripts/grid.sh Grid runs (state in $STRESSCTL_GRID_DIR)
cleanup() {
  local rc=$?
  stop_children
  if [ "$GRID_UP" = 1 ]; then scripts/grid.sh down >/dev/null 2>&1 || echo "bench-throughput: grid.sh down failed" >&2; fi
  if [ "${KEEP_TMP:-0}" = 1 ]; then
    echo "bench-throughput: kept $TMP"
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "bench-throughput: interrupted" >&2; exit 130' INT TERM

# Runs are started in the background (so a signal to this script stops them gracefully through
# the EXIT trap: both programs close their sessions and kill their chromedriver on SIGTERM) and
# waited for with wait_children, which returns the exit codes in RCS.
RCS=()
wait_children() {
  local p rc
  RCS=()
  for p in $CHILDREN; do
    rc=0
    wait "$p" || rc=$?
    RCS+=("$rc")
  done
  CHILDREN=""
}

echo "== bench-throughput: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), $(nproc) cores"
echo "   load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   ${SESSIONS} sessions x ${OPS_PER_SESSION} measured ops (+${WARMUP_OPS} warm-up ops each), sizes: ${MATRIX_SIZES}, rounds: ${ROUNDS} (order ${ORDER}), minimal loop runtime: ${BASELINE_RUNTIME}"

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "== cargo build --release --bins --examples"
  cargo build --release --bins --examples --quiet || die "build failed"
fi
STRESSCTL="$ROOT/target/release/stressctl"
LOOP="$ROOT/target/release/examples/fantoccini_loop"
[ -x "$STRESSCTL" ] || die "$STRESSCTL missing (build first)"
# Model round (issue 13): scripts/bench-model.sh measures it; this runs it with the binary built
# above and keeps its verdict line for the summary.
MODEL_ROUNDS="${MODEL_ROUNDS:-3}"; MODEL_OPS="${MODEL_OPS:-300}"; MODEL_LINE=""
model_round() {
  [[ "$MODEL_ROUNDS" =~ ^[0-9]+$ ]] || die "MODEL_ROUNDS must be a number"
  [ "$MODEL_ROUNDS" -gt 0 ] || return 0
  if [ ! -f vendor/onnxruntime-web/ort.webgpu.min.mjs ]; then
    MODEL_LINE="   model builtin:text: SKIPPED (no onnxruntime-web: run scripts/setup-ort.sh)"; echo "$MODEL_LINE"; return 0
  fi
  echo "== model round: builtin:text on webgpu, ${MODEL_ROUNDS} round(s) x ${MODEL_OPS} inferences per side (load $(cut -d' ' -f1-3 /proc/loadavg))"
  local out="$TMP/model-round.txt"
  STRESSCTL="$STRESSCTL" scripts/bench-model.sh --rounds "$MODEL_ROUNDS" --ops "$MODEL_OPS" 2>&1 | tee "$out" | sed 's/^/   | /' \
    || die "the model round failed (scripts/bench-model.sh: $(tail -n1 "$out"))"
  MODEL_LINE="   model builtin:text: $(grep '^== ratio' "$out" | sed 's/^== //') [load $(cut -d' ' -f1-3 /proc/loadavg)]"
}
[ "${GRID_ONLY:-0}" = 1 ] || model_round
if [ "${MODEL_ONLY:-0}" = 1 ]; then echo "== summary"; echo "$MODEL_LINE"; exit 0; fi

[ -x "$LOOP" ] || die "$LOOP missing (build first)"

# Renders a config: replaces the value on each line marked `# bench: KEY`.
render() { # src dst KEY=VALUE...
  local src="$1" dst="$2"; shift 2
  cp "$src" "$dst"
  local kv key val
  for kv in "$@"; do
    key="${kv%%=*}"; val="${kv#*=}"
    grep -q "# bench: ${key}\$" "$dst" || die "$src has no line marked '# bench: ${key}'"
    sed -i -E "s/^([a-z_]+ = )(\"[a-z]+\"|[0-9_]+)( # bench: ${key})\$/\1${val}\3/" "$dst"
    grep -Fq " = ${val} # bench: ${key}" "$dst" || die "could not set ${key} in $dst"
  done
}

# The functions below run in this shell (not in $(...)), so that the EXIT trap sees the children;
# the collect_* ones leave their figures in $RESULT as "ops seconds ops_per_s failures mean_ms".
RESULT=""

# (a) stressctl: start_stressctl DIR SIZE, then collect_stressctl DIR RC
start_stressctl() {
  local d="$1" size="$2"
  mkdir -p "$d"
  render benches/configs/throughput.toml "$d/config.toml" "MATRIX_SIZE=$size" "WARMUP_OPS=$WARMUP_OPS" "OPS_PER_SESSION=$OPS_PER_SESSION" \
    "BROWSER=\"$BROWSER\""
  "$STRESSCTL" launch --config "$d/config.toml" --output-dir "$d/out" --state-dir "$d/state" --log-dir "$d/logs" \
    >"$d/stdout.txt" 2>"$d/stderr.txt" &
  CHILDREN+=" $!"
}
collect_stressctl() {
  local d="$1" rc="$2" report
  report="$(ls "$d"/out/*/campaign_report.json 2>/dev/null | head -n1 || true)"
  if [ -z "$report" ]; then
    sed 's/^/   | /' "$d/stdout.txt" "$d/stderr.txt" >&2
    die "stressctl (exit $rc) wrote no campaign_report.json"
  fi
  PLANNED=""
  [ "$rc" = 0 ] || PLANNED="stressctl exited $rc (campaign $(jget "$report" .outcome))"
  local sel='.phases[] | select(.name=="measured")'
  local ops secs tput failed lat
  ops="$(jget "$report" "$sel | .ops_attempted")"
  secs="$(jget "$report" "$sel | .duration_s")"
  tput="$(jget "$report" "$sel | .throughput_ops_per_s")"
  failed="$(jget "$report" "$sel | .ops_failed")"
  lat="$(jget "$report" "$sel | .latency_ms.mean")"
  [ "$ops" = "$((SESSIONS * OPS_PER_SESSION))" ] || PLANNED="${PLANNED:+$PLANNED; }attempted $ops ops, planned $((SESSIONS * OPS_PER_SESSION))"
  [ "$failed" = 0 ] || PLANNED="${PLANNED:+$PLANNED; }$failed ops failed"
  RESULT="$ops $secs $tput $failed $lat"
}

# (b) minimal loop: start_loop DIR SIZE, then collect_loop DIR RC
start_loop() {
  local d="$1" size="$2"
  mkdir -p "$d"
  "$LOOP" --sessions "$SESSIONS" --ops "$OPS_PER_SESSION" --warmup "$WARMUP_OPS" --size "$size" --browser "$BROWSER" \
    --runtime "$BASELINE_RUNTIME" --op-timeout 20s --work-dir "$d/work" >"$d/out.json" 2>"$d/stderr.txt" &
  CHILDREN+=" $!"
}
collect_loop() {
  local d="$1" rc="$2"
  if [ "$rc" != 0 ] || ! grep -q ops_per_s "$d/out.json"; then
    sed 's/^/   | /' "$d/stderr.txt" >&2
    die "fantoccini_loop exited $rc without a result"
  fi
  if [ -s "$d/stderr.txt" ]; then sed 's/^/   note: /' "$d/stderr.txt" >&2; fi
  tail -n1 "$d/out.json" >"$d/result.json"
  PLANNED=""
  [ "$(jget "$d/result.json" .failures)" = 0 ] || PLANNED="$(jget "$d/result.json" .failures) ops failed"
  RESULT="$(jget "$d/result.json" .ops) $(jget "$d/result.json" .seconds) $(jget "$d/result.json" .ops_per_s) $(jget "$d/result.json" .failures) $(jget "$d/result.json" .latency_mean_ms)"
}

# run_stressctl / run_loop SIZE ROUND: one run, rerun (up to MAX_RERUNS) while it did not run as
# planned; a discarded run is printed, never used.
run_stressctl() { # size round
  local try d
  for try in $(seq 0 "$MAX_RERUNS"); do
    d="$TMP/stressctl-$BROWSER-$1-$2-$try"
    start_stressctl "$d" "$1"; wait_children; collect_stressctl "$d" "${RCS[0]}"
    [ -z "$PLANNED" ] && return 0
    echo "   round $2  (a) stressctl: DISCARDED ($PLANNED)" >&2
  done
  die "stressctl did not run as planned in $((MAX_RERUNS + 1)) tries (see above)"
}
run_loop() { # size round
  local try d
  for try in $(seq 0 "$MAX_RERUNS"); do
    d="$TMP/loop-$BROWSER-$1-$2-$try"
    start_loop "$d" "$1"; wait_children; collect_loop "$d" "${RCS[0]}"
    [ -z "$PLANNED" ] && return 0
    echo "   round $2  (b) minimal loop: DISCARDED ($PLANNED)" >&2
  done
  die "the minimal loop did not run as planned in $((MAX_RERUNS + 1)) tries (see above)"
}

show() { # label round "ops secs tput failed lat"
  local label="$1" round="$2"; shift 2
  read -r ops secs tput failed lat <<<"$*"
  printf "   round %d  %-22s %6d ops in %7.3f s  = %7.2f ops/s   (failures %d, mean op latency %.2f ms)\n" \
    "$round" "$label" "$ops" "$secs" "$tput" "$failed" "$lat"
}

# Primer: one short unmeasured run, so that whichever side goes first in round 1 does not pay for
# bringing Chromium, chromedriver and SwiftShader back into the page cache (on a machine where
# other builds churn it, the first launch after a pause is slower for several seconds).
if [ "${PRIME:-1}" = 1 ] && [ "${GRID_ONLY:-0}" != 1 ]; then
  echo "== primer (unmeasured): minimal loop, 2 sessions x 32 ops"
  d="$TMP/primer"
  mkdir -p "$d"
  "$LOOP" --sessions "$SESSIONS" --ops 32 --warmup 1 --runtime "$BASELINE_RUNTIME" --work-dir "$d/work" >"$d/out.json" 2>"$d/stderr.txt" &
  CHILDREN+=" $!"
  wait_children
  [ "${RCS[0]}" = 0 ] || { sed 's/^/   | /' "$d/stderr.txt" >&2; die "primer run failed (exit ${RCS[0]})"; }
fi

declare -A RATIO SPREAD PAIRED MEAN_A MEAN_B
AB_BROWSERS="$BROWSERS"; [ "${GRID_ONLY:-0}" != 1 ] || AB_BROWSERS=""
for BROWSER in $AB_BROWSERS; do
if [ "$BROWSER" = firefox ]; then OPS_PER_SESSION="$FIREFOX_OPS"; else OPS_PER_SESSION="$CHROMIUM_OPS"; fi
for size in $MATRIX_SIZES; do
  key="$BROWSER $size"
  echo "== ${BROWSER}: WebGPU matmul ${size}x${size}, ${SESSIONS} sessions x ${OPS_PER_SESSION} ops (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
  a_list=""; b_list=""; r_list=""
  for round in $(seq 1 "$ROUNDS"); do
    if [ "$ORDER" = abba ] && [ $((round % 2)) = 0 ]; then
      run_loop "$size" "$round"; b="$RESULT"
      show "(b) minimal loop" "$round" "$b"
      run_stressctl "$size" "$round"; a="$RESULT"
      show "(a) stressctl" "$round" "$a"
    else
      run_stressctl "$size" "$round"; a="$RESULT"
      show "(a) stressctl" "$round" "$a"
      run_loop "$size" "$round"; b="$RESULT"
      show "(b) minimal loop" "$round" "$b"
    fi
    a_list+="$(echo "$a" | cut -d' ' -f3)"$'\n'
    b_list+="$(echo "$b" | cut -d' ' -f3)"$'\n'
    rr="$(awk -v a="$(echo "$a" | cut -d' ' -f3)" -v b="$(echo "$b" | cut -d' ' -f3)" 'BEGIN { printf "%.3f", a / b }')"
    r_list+="$rr"$'\n'
    echo "           round ratio (a)/(b) = $rr   (load average now: $(cut -d' ' -f1 /proc/loadavg))"
  done
  spread="$(printf "%s" "$r_list" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s .. %s", lo, hi }')"
  a_mean="$(printf "%s" "$a_list" | mean)"
  b_mean="$(printf "%s" "$b_list" | mean)"
  ratio="$(awk -v a="$a_mean" -v b="$b_mean" 'BEGIN { printf "%.3f", a / b }')"
  RATIO[$key]="$ratio"
  MEAN_A[$key]="$a_mean"
  MEAN_B[$key]="$b_mean"
  if ge "$ratio" "$GOAL_RATIO"; then verdict="PASS"; else verdict="MISSED"; fi
  echo "   ${BROWSER} ${size}: stressctl $(fmt "$a_mean" 2) ops/s, minimal loop $(fmt "$b_mean" 2) ops/s (mean of ${ROUNDS}); ratio stressctl/minimal = ${ratio} (round ratios ${spread})  goal >= ${GOAL_RATIO}: ${verdict}"
  SPREAD[$key]="$spread"
  # Paired cross-check: (a) and (b) at the same time, so both see the same background load
  # (4 browsers share the cores; the ratio, not the absolute ops/s, is the figure here).
  p_list=""
  for round in $(seq 1 "$PAIRED_ROUNDS"); do
    da="$TMP/paired-stressctl-$BROWSER-$size-$round"; db="$TMP/paired-loop-$BROWSER-$size-$round"
    start_stressctl "$da" "$size"; start_loop "$db" "$size"
    wait_children
    collect_stressctl "$da" "${RCS[0]}"; a="$RESULT"
    collect_loop "$db" "${RCS[1]}"; b="$RESULT"
    show "(a) stressctl, paired" "$round" "$a"
    show "(b) minimal, paired" "$round" "$b"
    rr="$(awk -v a="$(echo "$a" | cut -d' ' -f3)" -v b="$(echo "$b" | cut -d' ' -f3)" 'BEGIN { printf "%.3f", a / b }')"
    p_list+="$rr"$'\n'
    echo "           paired ratio (a)/(b) = $rr   (load average now: $(cut -d' ' -f1 /proc/loadavg))"
  done
  if [ "$PAIRED_ROUNDS" -gt 0 ]; then
    PAIRED[$key]="$(printf "%s" "$p_list" | mean)"
    echo "   ${key}: paired (concurrent) ratio stressctl/minimal = $(fmt "${PAIRED[$key]}" 3) (mean of ${PAIRED_ROUNDS}; informational, the goal is judged on the sequential runs above)"
  fi
done
done

# ---- Grid round (issue 15): stressctl through a Selenium Grid hub vs direct chromedriver ----
GRID_ROUNDS="${GRID_ROUNDS:-2}"
GRID_HUB_PORT="${GRID_HUB_PORT:-4844}"
GRID_SUMMARY=""
[[ "$GRID_ROUNDS" =~ ^[0-9]+$ ]] || die "GRID_ROUNDS must be a number"
grid_skip=""
[ "$GRID_ROUNDS" -gt 0 ] || grid_skip="GRID_ROUNDS=0"
[ -n "$grid_skip" ] || ls vendor/selenium/selenium-server-*.jar >/dev/null 2>&1 || grid_skip="no vendor/selenium jar (scripts/setup-grid.sh)"
[ -n "$grid_skip" ] || command -v java >/dev/null 2>&1 || grid_skip="no java (scripts/setup-grid.sh)"
if [ -n "$grid_skip" ]; then
  GRID_SUMMARY="grid: SKIPPED ($grid_skip)"
  echo "== Grid round: SKIPPED ($grid_skip)"
else
  BROWSER=chromium; OPS_PER_SESSION="$CHROMIUM_OPS"; gsize="${MATRIX_SIZES%% *}"
  echo "== Grid round: WebGPU ${gsize}x${gsize}, ${SESSIONS} sessions x ${OPS_PER_SESSION} ops, through a Grid hub vs direct chromedriver (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
  export STRESSCTL_GRID_DIR="$TMP/grid"
  GRID_UP=1
  scripts/grid.sh up --nodes 1 --slots "$SESSIONS" --hub-port "$GRID_HUB_PORT" | sed 's/^/   /'
  # grid_side grid|direct ROUND: one stressctl run (rerun while not as planned); ops/s in $RESULT.
  # The grid side is the (a) config with its [[workers]] table replaced by the hub's URL.
  # CPU seconds the Grid's JVMs (hub and node, recorded by grid.sh) have used so far
  jvm_cpu() {
    awk '$1 == "proc" { print $3 }' "$STRESSCTL_GRID_DIR/state" | while read -r p; do
      [ -r "/proc/$p/stat" ] && sed -E 's/^.*\) //' "/proc/$p/stat" | cut -d' ' -f12,13
    done | awk -v hz="$(getconf CLK_TCK)" '{ t += $1 + $2 } END { printf "%.1f", t / hz }'
  }
  grid_side() {
    local try d
    for try in $(seq 0 "$MAX_RERUNS"); do
      d="$TMP/gridround-$1-$2-$try"
      if [ "$1" = direct ]; then
        start_stressctl "$d" "$gsize"
      else
        mkdir -p "$d"
        render benches/configs/throughput.toml "$d/c" "MATRIX_SIZE=$gsize" "WARMUP_OPS=$WARMUP_OPS" "OPS_PER_SESSION=$OPS_PER_SESSION"
        awk '/^\[\[workers\]\]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' "$d/c" >"$d/config.toml"
        printf '[[workers]]\nid = "grid"\nurl = "http://127.0.0.1:%s"\n' "$GRID_HUB_PORT" >>"$d/config.toml"
        "$STRESSCTL" launch --config "$d/config.toml" --output-dir "$d/out" --state-dir "$d/state" --log-dir "$d/logs" \
          >"$d/stdout.txt" 2>"$d/stderr.txt" &
        CHILDREN+=" $!"
      fi
      wait_children; collect_stressctl "$d" "${RCS[0]}"
      [ -z "$PLANNED" ] && { RESULT="$(echo "$RESULT" | cut -d' ' -f3)"; return 0; }
      echo "   round $2 $1: DISCARDED ($PLANNED)" >&2
    done
    die "the Grid round's $1 side did not run as planned in $((MAX_RERUNS + 1)) tries (see above)"
  }
  if [ "${PRIME:-1}" = 1 ]; then # a short unmeasured run: the hub's and node's JIT warm, as in a Grid in use
    OPS_PER_SESSION=64 grid_side grid 0
    echo "   primer (unmeasured, 2 x 64 ops through the hub): $(fmt "$RESULT" 2) ops/s"
  fi
  g_list=""; d_list=""; gr_list=""
  for round in $(seq 1 "$GRID_ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="grid direct"; else order="direct grid"; fi
    for side in $order; do
      j0="$(jvm_cpu)"; grid_side "$side" "$round"
      jv="$(awk -v a="$j0" -v b="$(jvm_cpu)" 'BEGIN { printf "%.1f", b - a }')"
      if [ "$side" = grid ]; then grid_tput="$RESULT"; grid_jvm="$jv"; else direct_tput="$RESULT"; direct_jvm="$jv"; fi
    done
    g_list+="$grid_tput"$'\n'; d_list+="$direct_tput"$'\n'
    rr="$(awk -v a="$grid_tput" -v b="$direct_tput" 'BEGIN { printf "%.3f", a / b }')"; gr_list+="$rr"$'\n'
    echo "   round $round  grid $(fmt "$grid_tput" 2) ops/s, direct $(fmt "$direct_tput" 2) ops/s: ratio $rr   (hub+node JVM CPU: ${grid_jvm} s in the grid run, ${direct_jvm} s idle in the direct one; load average now: $(cut -d' ' -f1 /proc/loadavg))"
  done
  scripts/grid.sh down >/dev/null && GRID_UP=0
  g_mean="$(printf "%s" "$g_list" | mean)"; d_mean="$(printf "%s" "$d_list" | mean)"
  g_ratio="$(awk -v a="$g_mean" -v b="$d_mean" 'BEGIN { printf "%.3f", a / b }')"
  g_spread="$(printf "%s" "$gr_list" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s .. %s", lo, hi }')"
  if ge "$g_ratio" 0.9; then g_verdict="PASS"; else g_verdict="MISSED"; fi
  GRID_SUMMARY="grid webgpu ${gsize}: through the hub $(fmt "$g_mean" 2) ops/s, direct $(fmt "$d_mean" 2) ops/s: ratio ${g_ratio} (goal >= 0.9) ${g_verdict}   [round ratios ${g_spread}]"
  echo "   $GRID_SUMMARY"
fi
# ---- end of the Grid round ----
if [ "${GRID_ONLY:-0}" = 1 ]; then
  fail_if_left_behind
  echo "== summary (load average at end: $(cut -d' ' -f1-3 /proc/loadavg))"; echo "   ${GRID_SUMMARY}"; exit 0
fi

echo "== synthetic task (no browser), 1 session x ${SYNTHETIC_OPS} ops, latency 0"
PIN=()
if command -v taskset >/dev/null 2>&1 && taskset -c 0 true 2>/dev/null; then
  PIN=(taskset -c 0)
  echo "   pinned to one core: taskset -c 0"
else
  echo "   taskset unavailable: not pinned (the orchestrator is single-threaded anyway; the store writer is a second thread)"
fi
syn_list=""
for round in $(seq 1 "$SYNTHETIC_ROUNDS"); do
  d="$TMP/synthetic-$round"
  mkdir -p "$d"
  render benches/configs/synthetic.toml "$d/config.toml" "SYNTHETIC_OPS=$SYNTHETIC_OPS"
  "${PIN[@]}" "$STRESSCTL" launch --config "$d/config.toml" --output-dir "$d/out" --state-dir "$d/state" --log-dir "$d/logs" \
    >"$d/stdout.txt" 2>"$d/stderr.txt" &
  CHILDREN+=" $!"
  wait_children
  rc="${RCS[0]}"
  report="$(ls "$d"/out/*/campaign_report.json 2>/dev/null | head -n1 || true)"
  [ -n "$report" ] || { sed 's/^/   | /' "$d/stdout.txt" "$d/stderr.txt" >&2; die "synthetic run (exit $rc) wrote no report"; }
  sel='.phases[] | select(.name=="synthetic")'
  ops="$(jget "$report" "$sel | .ops_attempted")"
  secs="$(jget "$report" "$sel | .duration_s")"
  tput="$(jget "$report" "$sel | .throughput_ops_per_s")"
  ge "$secs" 0.001 || die "the synthetic phase took under 1 ms (the report's resolution): raise SYNTHETIC_OPS"
  printf "   round %d  %9d ops in %7.3f s  = %12.0f ops/s\n" "$round" "$ops" "$secs" "$tput"
  syn_list+="$tput"$'\n'
done
syn_mean="$(printf "%s" "$syn_list" | mean)"
if ge "$syn_mean" "$GOAL_SYNTHETIC"; then syn_verdict="PASS"; else syn_verdict="MISSED"; fi

fail_if_left_behind

echo "== summary (load average at end: $(cut -d' ' -f1-3 /proc/loadavg))"
for BROWSER in $BROWSERS; do
for size in $MATRIX_SIZES; do
  key="$BROWSER $size"
  r="${RATIO[$key]}"
  if ge "$r" "$GOAL_RATIO"; then v="PASS"; else v="MISSED"; fi
  echo "   ${BROWSER} webgpu ${size}: stressctl $(fmt "${MEAN_A[$key]}" 2) ops/s, minimal $(fmt "${MEAN_B[$key]}" 2) ops/s: ratio ${r} (goal >= ${GOAL_RATIO}) ${v}   [round ratios ${SPREAD[$key]}; on a busy 2-core machine a single round varies by ±10% or more]"
  if [ -n "${PAIRED[$key]:-}" ]; then
    echo "   ${BROWSER} webgpu ${size}: paired (concurrent) ratio = $(fmt "${PAIRED[$key]}" 3) (informational)"
  fi
done
done
[ -z "$MODEL_LINE" ] || echo "$MODEL_LINE"
echo "   ${GRID_SUMMARY}"
echo "   synthetic: $(fmt "$syn_mean" 0) ops/s (goal >= ${GOAL_SYNTHETIC} on one core) ${syn_verdict}"
