#!/usr/bin/env bash
# Drift analysis cost on an 8-hour store (issue 24's number: under 2 s added to `report`). A
# benchmark, not a test.
#
#   scripts/bench-drift.sh              # ROUNDS=5
#
# Writes two 8-hour stores with `examples/drift_store.rs` (the overnight profile's eight phases,
# one op window per session per second, a guardian sample with each browser's RSS every 2 s), the
# same rows in both; the second's stored config sets `drift_min_phase = "2d"`, so its report
# analyses nothing. Then times `stressctl report ID` of each, ROUNDS times, interleaved (the
# order alternating each round), and prints each run's wall and CPU (user + system) time, the
# medians and spread (min..max) per store, and the median difference: the drift analysis' cost
# (judged on CPU time, which the other work of a shared machine disturbs less than wall time). Exits non-zero only on errors; a
# missed goal prints MISSED.
#
# Environment:
#   ROUNDS       timed reports per store          (default 5)
#   SKIP_BUILD=1 do not build (release) the binary and the example
#   STRESSCTL    the binary to measure (default target/release/stressctl)
#   KEEP_TMP=1   keep the temp dir and print its path
set -euo pipefail

ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT_DIR"
. "$ROOT_DIR/scripts/bench-common.sh"
ROUNDS="${ROUNDS:-5}"

if [ -z "${SKIP_BUILD:-}" ]; then
    echo "== building the store writer (release)"
    cargo build --release --quiet --example drift_store
fi
stressctl_bin bench-drift.sh
WRITER="$ROOT_DIR/target/release/examples/drift_store"
[ -x "$WRITER" ] || { echo "bench-drift.sh: $WRITER is not built" >&2; exit 1; }

TMP="$(mktemp -d)"
if [ -z "${KEEP_TMP:-}" ]; then trap 'rm -rf "$TMP"' EXIT; else echo "== keeping $TMP"; fi
STATE="$TMP/state"

echo "== writing two 8-hour stores"
/usr/bin/time -f "   written in %e s" "$WRITER" "$STATE" drift-on
/usr/bin/time -f "   written in %e s" "$WRITER" "$STATE" drift-off --no-drift
ls -l "$STATE"/runs/*/store.sqlite | awk '{print "   " $5/1048576 " MiB " $NF}'

# "wall cpu" seconds of one `report ID` (cpu: user + system, less sensitive than the wall time to
# what else the shared machine runs)
one() {
    /usr/bin/time -f "%e %U %S" -o "$TMP/time" \
        "$BIN" report "$1" --state-dir "$STATE" --output-dir "$TMP/out" --log-dir "$TMP/logs" >/dev/null
    awk '{printf "%s %.3f\n", $1, $2 + $3}' "$TMP/time"
}

ON=(); OFF=()
for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then
        ON+=("$(one drift-on)"); OFF+=("$(one drift-off)")
    else
        OFF+=("$(one drift-off)"); ON+=("$(one drift-on)")
    fi
    echo "   round $r: with drift ${ON[-1]% *} s wall, ${ON[-1]#* } s cpu; without ${OFF[-1]% *} s wall, ${OFF[-1]#* } s cpu"
done

python3 - "$(printf '%s,' "${ON[@]}")" "$(printf '%s,' "${OFF[@]}")" <<'PY'
import statistics, sys
def runs(a):
    return [tuple(float(x) for x in r.split()) for r in a.split(",") if r]
on, off = runs(sys.argv[1]), runs(sys.argv[2])
for k, name in ((0, "wall"), (1, "cpu")):
    a, b = [r[k] for r in on], [r[k] for r in off]
    ma, mb = statistics.median(a), statistics.median(b)
    d = [x - y for x, y in zip(a, b)]
    print(f"{name:4}: report with drift median {ma:.3f} s ({min(a):.3f}..{max(a):.3f}), without {mb:.3f} s ({min(b):.3f}..{max(b):.3f});"
          f" drift adds {ma - mb:.3f} s (per round {min(d):.3f}..{max(d):.3f})")
mcpu = statistics.median([r[1] for r in on]) - statistics.median([r[1] for r in off])
print("goal: the drift analysis adds < 2 s (cpu medians): " + ("met" if mcpu < 2.0 else "MISSED"))
PY
echo "== in one process (fastest..slowest of 3): what the drift analysis reads, against the whole report"
"$WRITER" --time "$STATE" drift-on
grep -q '"drift"' "$TMP/out/drift-on/campaign_report.json" || { echo "bench-drift.sh: the report of drift-on has no drift section" >&2; exit 1; }
