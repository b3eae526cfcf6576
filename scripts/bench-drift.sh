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
# order alternating each round), and prints each run, the median and spread (min..max) per
# store, and the median difference: the drift analysis' cost. Exits non-zero only on errors; a
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

# seconds of one `report ID`
one() {
    local start end
    start=$(date +%s.%N)
    "$BIN" report "$1" --state-dir "$STATE" --output-dir "$TMP/out" --log-dir "$TMP/logs" >/dev/null
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}

ON=(); OFF=()
for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then
        ON+=("$(one drift-on)"); OFF+=("$(one drift-off)")
    else
        OFF+=("$(one drift-off)"); ON+=("$(one drift-on)")
    fi
    printf "   round %d: with drift %.3f s, without %.3f s\n" "$r" "${ON[-1]}" "${OFF[-1]}"
done

python3 - "${ON[*]}" "${OFF[*]}" <<'PY'
import statistics, sys
on = [float(x) for x in sys.argv[1].split()]
off = [float(x) for x in sys.argv[2].split()]
mon, moff = statistics.median(on), statistics.median(off)
print(f"report with drift:    median {mon:.3f} s ({min(on):.3f}..{max(on):.3f})")
print(f"report without drift: median {moff:.3f} s ({min(off):.3f}..{max(off):.3f})")
pairs = [a - b for a, b in zip(on, off)]
print(f"drift analysis adds:  median {mon - moff:.3f} s (per round {min(pairs):.3f}..{max(pairs):.3f})  goal < 2 s: "
      + ("met" if mon - moff < 2.0 else "MISSED"))
PY
grep -q '"drift"' "$TMP/out/drift-on/campaign_report.json" || { echo "bench-drift.sh: the report of drift-on has no drift section" >&2; exit 1; }
