#!/usr/bin/env bash
# Peer benchmark (not a test): stressctl against a Playwright loop and the in-page loop, on the
# same page, the same op and the same session count, interleaved in one run.
#
#   scripts/bench-peers.sh                         # SESSIONS_LIST="2 4", ROUNDS=2
#   OPS_PER_SESSION=300 ROUNDS=3 scripts/bench-peers.sh
#
# The op (issue 12): a 256x256 f32 storage buffer doubled by a WebGPU compute shader, adapter and
# device requested per op, the result read back and checked; `window.benchOp()` of one page
# (file://…/bench.html) that all three load.
#   (s) stressctl, `page` task on that page (script: `window.benchOp()`), batched transport; a
#       warm-up phase opens and warms the sessions, the `measured` phase runs SESSIONS ×
#       OPS_PER_SESSION ops; ops/s = its throughput_ops_per_s.
#   (p) Playwright (playwright-core from the npm registry, installed once into $PW_DIR), one
#       Chromium per session launched by executablePath with stressctl's own Chromium flags (read
#       from MANDATORY_ARGS in src/browser/session.rs, plus the software adapter, headless and, as
#       root, --no-sandbox; Playwright adds its defaults), a page each,
#       WARMUP_OPS ops each, then OPS_PER_SESSION `page.evaluate(() => benchOp())` per session,
#       sessions concurrent; ops/s = all ops / wall time of the loop.
#   (i) the in-page loop: the same browsers as (p), one `page.evaluate` that runs OPS_PER_SESSION
#       ops back to back in the page (the limit: no round trip per op).
# CPU, read from /proc every 0.25 s for each side's whole process tree and taken over the timed
# window only (stressctl: the `measured` phase, from its events; Playwright and in-page: the timed
# loop), per op:
#   orch: the orchestrator (stressctl, its PID-namespace inits and chromedriver; node);
#   browser: every Chromium process;
#   cores: the tree's CPU per second of the window, i.e. how much of the machine the side got.
# On a shared machine the ops/s of a side follow the cores it got (other people's builds take the
# rest), so each figure comes with the load average and the sides rotate their order each round;
# "ops per CPU-s" (ops / the tree's CPU) is the load-robust comparison of what each side costs.
# A round is discarded (and said so) when a side failed an op, ran a different op count, or left
# no figure. Exits non-zero only on set-up errors; the goals are printed as met/MISSED.
#
# BATCHES="500ms/32 1s/64" adds one stressctl side per entry, with `[browser] batch_budget` and
# `batch_max_ops` set to BUDGET/MAX (the plain `stressctl` side keeps the defaults), in the same
# rotation, with its own ratios: how the transport's batch length moves the figures.
#
# Environment: SESSIONS_LIST ("2 4"), ROUNDS (2), OPS_PER_SESSION (200), WARMUP_OPS (32), BATCHES,
#   PW_DIR (~/.cache/stressctl-bench/pw: where playwright-core is installed), CHROMIUM
#   (/usr/bin/chromium), SKIP_BUILD=1 (no `cargo build --release`), KEEP_TMP=1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SESSIONS_LIST="${SESSIONS_LIST:-2 4}"
ROUNDS="${ROUNDS:-2}"
OPS_PER_SESSION="${OPS_PER_SESSION:-200}"
WARMUP_OPS="${WARMUP_OPS:-32}"
PW_DIR="${PW_DIR:-$HOME/.cache/stressctl-bench/pw}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
STRESSCTL="$ROOT/target/release/stressctl"

die() { echo "bench-peers: $*" >&2; exit 1; }
command -v node >/dev/null || die "node is not installed (needed for Playwright)"
command -v jq >/dev/null || die "jq is not installed"
[ -x "$CHROMIUM" ] || die "no Chromium at $CHROMIUM (set CHROMIUM)"

if [ "${SKIP_BUILD:-0}" != 1 ]; then cargo build --release --quiet; fi
[ -x "$STRESSCTL" ] || die "no $STRESSCTL: run cargo build --release"
if [ ! -d "$PW_DIR/node_modules/playwright-core" ]; then
  mkdir -p "$PW_DIR"
  (cd "$PW_DIR" && npm install --silent --no-audit --no-fund playwright-core >/dev/null) || die "npm install playwright-core failed"
fi

TMP="$(mktemp -d /tmp/bench-peers.XXXXXX)"
CHILDREN=""
cleanup() {
  for p in $CHILDREN; do kill "$p" 2>/dev/null || true; done
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

cat >"$TMP/bench.html" <<'EOF'
<!doctype html><meta charset="utf-8"><title>bench-peers</title><p>bench-peers</p>
<script>
const N = 256 * 256;
const WGSL = `@group(0) @binding(0) var<storage, read_write> d: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < arrayLength(&d)) { d[g.x] = d[g.x] * 2.0; } }`;
const input = new Float32Array(N).map((_, i) => i % 1000);
window.benchOp = async () => {
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) return { ok: false, class: "api_unsupported", message: "no adapter" };
  const device = await adapter.requestDevice();
  try {
    const buf = device.createBuffer({ size: N * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    const rb = device.createBuffer({ size: N * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(buf, 0, input);
    const pipe = device.createComputePipeline({ layout: "auto", compute: { module: device.createShaderModule({ code: WGSL }), entryPoint: "main" } });
    const bind = device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }] });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass(); pass.setPipeline(pipe); pass.setBindGroup(0, bind); pass.dispatchWorkgroups(N / 64); pass.end();
    enc.copyBufferToBuffer(buf, 0, rb, 0, N * 4);
    device.queue.submit([enc.finish()]);
    await rb.mapAsync(GPUMapMode.READ);
    const out = new Float32Array(rb.getMappedRange());
    for (let i = 0; i < N; i++) if (out[i] !== input[i] * 2) return { ok: false, class: "wrong_result", message: "mismatch at " + i };
    return { ok: true, verified: true };
  } finally { device.destroy(); }
};
</script>
EOF
PAGE_URL="file://$TMP/bench.html"

# stressctl's own Chromium flags (the software adapter; --no-sandbox as root), for Playwright
CHROMIUM_ARGS="$(awk '/pub const MANDATORY_ARGS/ { on = 1; next } on && /\];/ { exit } on { gsub(/[ ",]/, ""); if ($0 != "") print }' src/browser/session.rs)"
[ -n "$CHROMIUM_ARGS" ] || die "cannot read MANDATORY_ARGS from src/browser/session.rs"
CHROMIUM_ARGS="$CHROMIUM_ARGS
--use-webgpu-adapter=swiftshader
--headless=new"
[ "$(id -u)" = 0 ] && CHROMIUM_ARGS="$CHROMIUM_ARGS
--no-sandbox"
export CHROMIUM_ARGS

# treecpu.py ROOT OUT: every 0.25 s "epoch {pid: [browser?, ticks]}" for the tree under ROOT
cat >"$TMP/treecpu.py" <<'EOF'
import os, sys, time, json
root, out = int(sys.argv[1]), open(sys.argv[2], "w")
def browser(pid):
    try: b = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError: return False
    return b.startswith("chrom") and not b.startswith("chromedriver")
while True:
    procs = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                s = open(f"/proc/{d}/stat", "rb").read(); f = s[s.rindex(b")") + 2:].split()
                procs[int(d)] = (int(f[1]), int(f[11]) + int(f[12]))
            except (OSError, ValueError): pass
    if root not in procs: break
    kids = {}
    for p, (pp, _) in procs.items(): kids.setdefault(pp, []).append(p)
    per, stack = {}, [root]
    while stack:
        p = stack.pop(); stack.extend(kids.get(p, [])); per[p] = [browser(p), procs[p][1]]
    out.write(f"{time.time():.3f} {json.dumps(per)}\n"); out.flush()
    time.sleep(0.25)
EOF
# window.py SAMPLES T0 T1 OPS -> "orch_ms_per_op browser_ms_per_op cores": CPU in [T0, T1] by pid
cat >"$TMP/window.py" <<'EOF'
import sys, json, os
f, t0, t1, ops = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
rows = [(float(l.split(" ", 1)[0]), json.loads(l.split(" ", 1)[1])) for l in open(f) if " " in l]
if len(rows) < 2 or ops <= 0: print(""); sys.exit()
a = ([r for r in rows if r[0] <= t0] or rows[:1])[-1]
b = ([r for r in rows if r[0] >= t1] or rows[-1:])[0]
# an exiting process loses its exe link: a pid is a browser if any sample saw it as one
seen = {p for r in rows for p, (isb, _) in r[1].items() if isb}
hz = os.sysconf("SC_CLK_TCK"); orch = brow = 0
# a process gone before T1 (a GPU process restarted, a renderer swapped) counts until its last sample
last = {}
for r in rows:
    if a[0] <= r[0] <= b[0]:
        for p, (_, t) in r[1].items(): last[p] = t
for p, t in last.items():
    d = t - a[1].get(p, [False, 0])[1]
    if p in seen: brow += d
    else: orch += d
span = max(b[0] - a[0], 1e-3)
print(f"{orch * 1000 / hz / ops:.3f} {brow * 1000 / hz / ops:.2f} {(orch + brow) / hz / span:.2f}")
EOF

cat >"$TMP/pw.js" <<'EOF'
// node pw.js MODE SESSIONS OPS WARMUP URL CHROMIUM -> one JSON line
const { chromium } = require(process.env.PW_DIR + "/node_modules/playwright-core");
const [mode, sessions, ops, warm, url, exe] = [process.argv[2], +process.argv[3], +process.argv[4], +process.argv[5], process.argv[6], process.argv[7]];
const args = process.env.CHROMIUM_ARGS.split("\n").filter(Boolean);
(async () => {
  const browsers = await Promise.all(Array.from({ length: sessions }, () => chromium.launch({ executablePath: exe, args, headless: true })));
  try {
    const pages = await Promise.all(browsers.map(async (b) => { const p = await b.newPage(); await p.goto(url); return p; }));
    let failed = 0;
    const loop = (p, n) => mode === "inpage"
      ? p.evaluate(async (n) => { let f = 0; for (let i = 0; i < n; i++) { const r = await window.benchOp(); if (!r.ok) f++; } return f; }, n)
      : (async () => { let f = 0; for (let i = 0; i < n; i++) { const r = await p.evaluate(() => window.benchOp()); if (!r.ok) f++; } return f; })();
    await Promise.all(pages.map((p) => loop(p, warm)));
    const w0 = Date.now(), t0 = process.hrtime.bigint();
    failed = (await Promise.all(pages.map((p) => loop(p, ops)))).reduce((a, b) => a + b, 0);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9, w1 = Date.now();
    const total = sessions * ops;
    console.log(JSON.stringify({ ops: total, secs, ops_per_s: total / secs, failed, t0: w0 / 1000, t1: w1 / 1000 }));
  } finally { await Promise.all(browsers.map((b) => b.close())); }
})().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
EOF

# stressctl SESSIONS DIR [BUDGET/MAX] -> RESULT "ops secs ops_per_s failed orch_ms_per_op browser_ms_per_op cores"
run_stressctl() {
  local n="$1" d="$2" batch=""
  [ -z "${3:-}" ] || batch="batch_budget = \"${3%/*}\"
batch_max_ops = ${3#*/}"
  mkdir -p "$d"
  cat >"$d/c.toml" <<EOF
[campaign]
name = "bench-peers"
progressive_escalation = false
auto_recovery = false
grace_period = "5s"
[task]
kind = "page"
url = "$PAGE_URL"
script = '''const done = arguments[arguments.length - 1]; window.benchOp().then(done, (e) => done({ok: false, message: String(e)}));'''
[browser]
max_ops_per_session = 1000000
op_timeout = "20s"
session_timeout = "60s"
$batch
[safety]
max_campaign_duration = "30m"
reserve_percent = 0
# a benchmark on a shared machine: the guardian must not stop it (the peers have none)
memory_percent = 100
cpu_percent = 100
disk_percent = 100
[[phases]]
name = "warmup"
duration = "300s"
sessions = $n
ops_per_session = $WARMUP_OPS
stress_level = "extreme"
[[phases]]
name = "measured"
duration = "1200s"
sessions = $n
ops_per_session = $OPS_PER_SESSION
stress_level = "extreme"
EOF
  "$STRESSCTL" launch --config "$d/c.toml" --output-dir "$d/out" --state-dir "$d/state" --log-dir "$d/logs" >"$d/stdout" 2>"$d/stderr" &
  local pid=$!
  CHILDREN+=" $pid"
  python3 "$TMP/treecpu.py" "$pid" "$d/cpu" &
  local poller=$!
  wait "$pid" || true
  wait "$poller" || true
  local r; r="$(ls "$d"/out/*/campaign_report.json 2>/dev/null | head -n1 || true)"
  [ -n "$r" ] || { RESULT=""; return; }
  local sel='.phases[] | select(.name=="measured")'
  local m ev t0 t1 ops
  m="$(jq -r "$sel | \"\(.ops_attempted) \(.duration_s) \(.throughput_ops_per_s) \(.ops_failed)\"" "$r")"
  if [ -z "$m" ]; then
    echo "   stressctl: $(jq -r '.outcome + " " + (.stop_reason // "")' "$r")" >&2; RESULT=""; return
  fi
  # the measured phase's window, from its events (ms resolution)
  ev="$(dirname "$r")/events.jsonl"
  t0="$(jq -r 'select(.kind == "phase_started" and .phase == 1) | .at' "$ev")"
  t1="$(jq -r 'select(.kind == "phase_ended" and .phase == 1) | .at' "$ev")"
  ops="${m%% *}"
  RESULT="$m $(python3 "$TMP/window.py" "$d/cpu" "$(date -d "$t0" +%s.%N)" "$(date -d "$t1" +%s.%N)" "$ops")"
}

# pw MODE SESSIONS -> RESULT
run_pw() {
  local line pid poller
  PW_DIR="$PW_DIR" node "$TMP/pw.js" "$1" "$2" "$OPS_PER_SESSION" "$WARMUP_OPS" "$PAGE_URL" "$CHROMIUM" >"$TMP/pw.out" 2>"$TMP/pw.err" &
  pid=$!
  CHILDREN+=" $pid"
  python3 "$TMP/treecpu.py" "$pid" "$TMP/pw.cpu" &
  poller=$!
  wait "$pid" || true
  wait "$poller" || true
  line="$(tail -n1 "$TMP/pw.out")"
  [ -n "$line" ] || { sed 's/^/   | /' "$TMP/pw.err" >&2; RESULT=""; return; }
  RESULT="$(jq -r '"\(.ops) \(.secs) \(.ops_per_s) \(.failed)"' <<<"$line") $(python3 "$TMP/window.py" "$TMP/pw.cpu" "$(jq .t0 <<<"$line")" "$(jq .t1 <<<"$line")" "$(jq .ops <<<"$line")")"
}

declare -A SUM CNT ORCH BROW EFF MIN MAX
SIDES=(stressctl)
for b in ${BATCHES:-}; do
  case "$b" in */*) SIDES+=("stressctl@$b") ;; *) die "BATCHES entries are BUDGET/MAX, e.g. 500ms/32 (got $b)" ;; esac
done
SIDES+=(playwright inpage)
NS=${#SIDES[@]}
echo "bench-peers: op = 256x256 f32 buffer doubled (adapter+device per op, checked); $OPS_PER_SESSION ops/session after $WARMUP_OPS warm-up; rounds $ROUNDS"
echo "   CPU per op (ms) in the timed window: orch = orchestrator, browser = Chromium; cores = the side's CPU/s"
for round in $(seq 1 "$ROUNDS"); do
  for n in $SESSIONS_LIST; do
    # rotate the order each round: a side is not always first (or last) after the same neighbour
    for k in $(seq 0 $((NS - 1))); do
      side="${SIDES[$(( (k + round - 1) % NS ))]}"
      case "$side" in
        stressctl) run_stressctl "$n" "$TMP/s-$round-$n" ;;
        stressctl@*) run_stressctl "$n" "$TMP/s-$round-$n-$k" "${side#stressctl@}" ;;
        playwright) run_pw evaluate "$n" ;;
        inpage) run_pw inpage "$n" ;;
      esac
      load="$(cut -d' ' -f1 /proc/loadavg)"
      if [ -z "$RESULT" ]; then echo "   round $round, $n sessions, $side: no figure (discarded)"; continue; fi
      read -r ops secs tput failed orch brow cores <<<"$RESULT"
      if [ "$failed" != 0 ] || [ "$ops" != "$((n * OPS_PER_SESSION))" ] || [ -z "${cores:-}" ]; then
        echo "   round $round, $n sessions, $side: $ops ops, $failed failed, cpu '${orch:-}' (not as planned: discarded)"; continue
      fi
      printf '   round %s, %s sessions, %-11s %6.1f ops/s  (%s ops in %6.2f s; CPU/op orch %6.3f browser %5.2f; cores %4.2f; load %s)\n' \
        "$round" "$n" "$side:" "$tput" "$ops" "$secs" "$orch" "$brow" "$cores" "$load"
      key="$side-$n"
      SUM[$key]="$(awk -v a="${SUM[$key]:-0}" -v b="$tput" 'BEGIN { print a + b }')"
      CNT[$key]=$(( ${CNT[$key]:-0} + 1 ))
      ORCH[$key]="$(awk -v a="${ORCH[$key]:-0}" -v b="$orch" 'BEGIN { print a + b }')"
      BROW[$key]="$(awk -v a="${BROW[$key]:-0}" -v b="$brow" 'BEGIN { print a + b }')"
      EFF[$key]="$(awk -v a="${EFF[$key]:-0}" -v o="$orch" -v b="$brow" 'BEGIN { print a + 1000 / (o + b) }')"
      MIN[$key]="$(awk -v a="${MIN[$key]:-1e9}" -v b="$tput" 'BEGIN { print (b < a) ? b : a }')"
      MAX[$key]="$(awk -v a="${MAX[$key]:-0}" -v b="$tput" 'BEGIN { print (b > a) ? b : a }')"
    done
  done
done

echo
echo "means over valid rounds (ops/s [min-max]; CPU ms/op orch, browser; ops per CPU-second of the whole tree):"
for n in $SESSIONS_LIST; do
  for side in "${SIDES[@]}"; do
    key="$side-$n"; c="${CNT[$key]:-0}"
    if [ "$c" = 0 ]; then echo "   $n sessions  $side: no valid round"; continue; fi
    awk -v s="${SUM[$key]}" -v c="$c" -v lo="${MIN[$key]}" -v hi="${MAX[$key]}" -v o="${ORCH[$key]}" -v b="${BROW[$key]}" -v e="${EFF[$key]}" -v side="$side" -v n="$n" \
      'BEGIN { printf "   %s sessions  %-11s %6.1f [%5.1f-%5.1f]  (%d rounds; orch %.3f, browser %.2f ms/op; %.1f ops/CPU-s)\n", n, side, s / c, lo, hi, c, o / c, b / c, e / c }'
  done
  for side in "${SIDES[@]}"; do
    case "$side" in stressctl*) ;; *) continue ;; esac
    if [ "${CNT[$side-$n]:-0}" != 0 ] && [ "${CNT[playwright-$n]:-0}" != 0 ] && [ "${CNT[inpage-$n]:-0}" != 0 ]; then
      awk -v s="${SUM[$side-$n]}" -v sc="${CNT[$side-$n]}" -v p="${SUM[playwright-$n]}" -v pc="${CNT[playwright-$n]}" \
          -v i="${SUM[inpage-$n]}" -v ic="${CNT[inpage-$n]}" -v se="${EFF[$side-$n]}" -v pe="${EFF[playwright-$n]}" -v ie="${EFF[inpage-$n]}" -v n="$n" -v side="$side" 'BEGIN {
        rp = (s / sc) / (p / pc); ri = (s / sc) / (i / ic)
        goal = (n == 4) ? sprintf(" (goal >= 1.0: %s; >= 0.9: %s)", rp >= 1.0 ? "met" : "MISSED", ri >= 0.9 ? "met" : "MISSED") : ""
        printf "   %s sessions  %s/playwright = %.3f, %s/in-page = %.3f%s\n", n, side, rp, side, ri, goal
        printf "   %s sessions  per CPU-second: %s/playwright = %.3f, %s/in-page = %.3f\n", n, side, (se / sc) / (pe / pc), side, (se / sc) / (ie / ic) }'
    fi
  done
done
