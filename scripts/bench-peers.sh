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
#       Chromium per session launched by executablePath with stressctl's flags, a page each,
#       WARMUP_OPS ops each, then OPS_PER_SESSION `page.evaluate(() => benchOp())` per session,
#       sessions concurrent; ops/s = all ops / wall time of the loop.
#   (i) the in-page loop: the same browsers as (p), one `page.evaluate` that runs OPS_PER_SESSION
#       ops back to back in the page (the limit: no round trip per op).
# Orchestrator CPU per op: (s) utime+stime of stressctl and its chromedriver children over the
# whole run (warm-up included) divided by all its ops; (p) the node process's CPU over its timed
# loop divided by its ops (Playwright has no driver process). Read from /proc (stressctl) and
# process.cpuUsage() (node).
# A round is discarded (and said so) when a side failed an op, ran a different op count, or left
# no figure. Exits non-zero only on set-up errors; the goals are printed as met/MISSED.
#
# Environment: SESSIONS_LIST ("2 4"), ROUNDS (2), OPS_PER_SESSION (200), WARMUP_OPS (32),
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

cat >"$TMP/pw.js" <<'EOF'
// node pw.js MODE SESSIONS OPS WARMUP URL CHROMIUM -> one JSON line
const { chromium } = require(process.env.PW_DIR + "/node_modules/playwright-core");
const [mode, sessions, ops, warm, url, exe] = [process.argv[2], +process.argv[3], +process.argv[4], +process.argv[5], process.argv[6], process.argv[7]];
const args = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
  "--disable-quic", "--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader", "--headless=new"];
(async () => {
  const browsers = await Promise.all(Array.from({ length: sessions }, () => chromium.launch({ executablePath: exe, args, headless: true })));
  try {
    const pages = await Promise.all(browsers.map(async (b) => { const p = await b.newPage(); await p.goto(url); return p; }));
    let failed = 0;
    const loop = (p, n) => mode === "inpage"
      ? p.evaluate(async (n) => { let f = 0; for (let i = 0; i < n; i++) { const r = await window.benchOp(); if (!r.ok) f++; } return f; }, n)
      : (async () => { let f = 0; for (let i = 0; i < n; i++) { const r = await p.evaluate(() => window.benchOp()); if (!r.ok) f++; } return f; })();
    await Promise.all(pages.map((p) => loop(p, warm)));
    const c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
    failed = (await Promise.all(pages.map((p) => loop(p, ops)))).reduce((a, b) => a + b, 0);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9, c = process.cpuUsage(c0);
    const total = sessions * ops;
    console.log(JSON.stringify({ ops: total, secs, ops_per_s: total / secs, failed, cpu_ms_per_op: (c.user + c.system) / 1000 / total }));
  } finally { await Promise.all(browsers.map((b) => b.close())); }
})().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
EOF

CLK_TCK="$(getconf CLK_TCK)"
# utime+stime ticks of pid and its chromedriver children (0 for a process gone)
tree_ticks() {
  local root="$1" sum=0 p
  for p in "$root" $(ps -o pid= --ppid "$root" 2>/dev/null); do
    if [ -r "/proc/$p/stat" ]; then
      sum=$((sum + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
    fi
  done
  echo "$sum"
}

# stressctl SESSIONS DIR -> RESULT "ops secs ops_per_s failed cpu_ms_per_op"
run_stressctl() {
  local n="$1" d="$2"
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
  local pid=$! peak=0 t
  CHILDREN+=" $pid"
  # the tree's CPU only grows: keep the peak sum seen while it runs (children exit at the end)
  while kill -0 "$pid" 2>/dev/null; do
    t="$(tree_ticks "$pid")"; [ "$t" -gt "$peak" ] && peak="$t"
    sleep 0.2
  done
  wait "$pid" || true
  local r; r="$(ls "$d"/out/*/campaign_report.json 2>/dev/null | head -n1 || true)"
  [ -n "$r" ] || { RESULT=""; return; }
  local sel='.phases[] | select(.name=="measured")'
  local all m; all="$(jq '[.phases[].ops_attempted] | add // 0' "$r")"
  m="$(jq -r "$sel | \"\(.ops_attempted) \(.duration_s) \(.throughput_ops_per_s) \(.ops_failed)\"" "$r")"
  if [ -z "$m" ] || [ "$all" = 0 ]; then
    echo "   stressctl: $(jq -r '.outcome + " " + (.stop_reason // "")' "$r")" >&2; RESULT=""; return
  fi
  RESULT="$m $(awk -v t="$peak" -v hz="$CLK_TCK" -v n="$all" 'BEGIN { printf "%.3f", t * 1000 / hz / n }')"
}

# pw MODE SESSIONS -> RESULT
run_pw() {
  local line
  line="$(PW_DIR="$PW_DIR" node "$TMP/pw.js" "$1" "$2" "$OPS_PER_SESSION" "$WARMUP_OPS" "$PAGE_URL" "$CHROMIUM" 2>"$TMP/pw.err" | tail -n1 || true)"
  [ -n "$line" ] || { sed 's/^/   | /' "$TMP/pw.err" >&2; RESULT=""; return; }
  RESULT="$(jq -r '"\(.ops) \(.secs) \(.ops_per_s) \(.failed) \(.cpu_ms_per_op)"' <<<"$line")"
}

declare -A SUM CNT CPU
echo "bench-peers: op = 256x256 f32 buffer doubled (adapter+device per op, checked); $OPS_PER_SESSION ops/session after $WARMUP_OPS warm-up; rounds $ROUNDS"
for round in $(seq 1 "$ROUNDS"); do
  for n in $SESSIONS_LIST; do
    for side in stressctl playwright inpage; do
      case "$side" in
        stressctl) run_stressctl "$n" "$TMP/s-$round-$n" ;;
        playwright) run_pw evaluate "$n" ;;
        inpage) run_pw inpage "$n" ;;
      esac
      if [ -z "$RESULT" ]; then echo "   round $round, $n sessions, $side: no figure (discarded)"; continue; fi
      read -r ops secs tput failed cpu <<<"$RESULT"
      if [ "$failed" != 0 ] || [ "$ops" != "$((n * OPS_PER_SESSION))" ]; then
        echo "   round $round, $n sessions, $side: $ops ops, $failed failed (not as planned: discarded)"; continue
      fi
      printf '   round %s, %s sessions, %-10s %8.1f ops/s  (%s ops in %.2f s; orchestrator CPU %s ms/op)\n' "$round" "$n" "$side:" "$tput" "$ops" "$secs" "$cpu"
      SUM[$side-$n]="$(awk -v a="${SUM[$side-$n]:-0}" -v b="$tput" 'BEGIN { print a + b }')"
      CNT[$side-$n]=$(( ${CNT[$side-$n]:-0} + 1 ))
      CPU[$side-$n]="$(awk -v a="${CPU[$side-$n]:-0}" -v b="$cpu" 'BEGIN { print a + b }')"
    done
  done
done

echo
echo "means (ops/s; orchestrator CPU ms/op):"
for n in $SESSIONS_LIST; do
  for side in stressctl playwright inpage; do
    c="${CNT[$side-$n]:-0}"
    if [ "$c" = 0 ]; then echo "   $n sessions  $side: no valid round"; continue; fi
    awk -v s="${SUM[$side-$n]}" -v c="$c" -v u="${CPU[$side-$n]}" -v side="$side" -v n="$n" \
      'BEGIN { printf "   %s sessions  %-10s %8.1f  (%.3f ms/op)\n", n, side, s / c, u / c }'
  done
  if [ "${CNT[stressctl-$n]:-0}" != 0 ] && [ "${CNT[playwright-$n]:-0}" != 0 ] && [ "${CNT[inpage-$n]:-0}" != 0 ]; then
    awk -v s="${SUM[stressctl-$n]}" -v sc="${CNT[stressctl-$n]}" -v p="${SUM[playwright-$n]}" -v pc="${CNT[playwright-$n]}" \
        -v i="${SUM[inpage-$n]}" -v ic="${CNT[inpage-$n]}" -v n="$n" 'BEGIN {
      rp = (s / sc) / (p / pc); ri = (s / sc) / (i / ic)
      goal = (n == 4) ? sprintf(" (goal >= 1.0: %s; >= 0.9: %s)", rp >= 1.0 ? "met" : "MISSED", ri >= 0.9 ? "met" : "MISSED") : ""
      printf "   %s sessions  stressctl/playwright = %.3f, stressctl/in-page = %.3f%s\n", n, rp, ri, goal }'
  fi
done
