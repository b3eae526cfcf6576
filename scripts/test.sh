#!/usr/bin/env bash
# Sets up and runs the whole test suite — exactly what CI runs (.ci/run calls this script).
#
#   1. scripts/setup.sh with SKIP_BUILD=1: installs chromium + chromium-driver with apt when they
#      are missing (that needs root)
#   2. cargo fmt --check
#   3. cargo clippy --all-targets -- -D warnings
#   4. cargo test --all-targets (unit tests, and the integration tests against real browsers: one
#      binary, tests/suite, whose browser tests take turns on a shared lock while the others run
#      beside them; STRESSCTL_TEST_TIMES=FILE records how long each held the lock)
#   5. no chromium/chromedriver/firefox/geckodriver process (nor a Selenium Grid java, nor a
#      prometheus-node-exporter) started during the run may be left, nor a network namespace of
#      the lab (sclab-*)
#
# Idempotent. Exits non-zero as soon as a step fails (after step 4 it still runs step 5).
#
# Step 5 compares against a snapshot taken at the start. The tests run with TMPDIR set to a fresh
# directory, and every path a test gives stressctl (state, logs, browser profiles, Chromium's
# crash database) lies under it, so a new process is counted as ours unless its command line
# points at a profile, log or crash database somewhere else — which is what Chromium started by
# someone else on a shared machine looks like.
set -euo pipefail
cd "$(dirname "$0")/.."

# pid:starttime of every live (non-zombie) browser or driver process: argv[0] chromium,
# chromedriver, firefox(-esr), geckodriver, or in /usr/lib/chromium/ or /usr/lib/firefox-esr/, and
# java running a Selenium server. Pid + start time identify a process across pid reuse.
browser_procs() {
  local d argv0 stat rest f
  for d in /proc/[0-9]*; do
    argv0=""
    IFS= read -r -d '' argv0 2>/dev/null <"$d/cmdline" || true
    case "$argv0" in
      chromium | chromedriver | */chromium | */chromedriver | /usr/lib/chromium/*) ;;
      geckodriver | */geckodriver | */firefox-esr | */firefox | /usr/lib/firefox-esr/*) ;;
      java | */java) tr '\0' ' ' 2>/dev/null <"$d/cmdline" | grep -q selenium || continue ;;
      prometheus-node-exporter | */prometheus-node-exporter) ;;
      *) continue ;;
    esac
    stat=$(cat 2>/dev/null "$d/stat") || continue
    rest=${stat##*) }
    read -r -a f <<<"$rest"
    [ "${f[0]}" = Z ] && continue
    echo "${d#/proc/}:${f[19]}"
  done | sort
}

step() {
  echo
  echo "==> $*"
  SECONDS=0
}

# the network namespaces of the lab (scripts/netlab.sh names them sclab-*)
lab_netns() { { ip netns list 2>/dev/null || true; } | awk '{print $1}' | grep '^sclab-' | sort || true; }

before=$(browser_procs)
netns_before=$(lab_netns)

step "setup (packages only)"
SKIP_BUILD=1 scripts/setup.sh

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo test --all-targets"
test_tmp=$(mktemp -d "${TMPDIR:-/tmp}/stressctl-tests.XXXXXX")
tests_rc=0
# Threads waiting for the browser lock do nothing, so more threads than cores let the tests that
# need no browser run while one browser test holds the lock.
TMPDIR=$test_tmp RUST_TEST_THREADS=${RUST_TEST_THREADS:-6} cargo test --all-targets --no-fail-fast || tests_rc=$?
echo "tests took ${SECONDS}s"

# Whether process $1 is none of ours: it is gone, or its command line does not mention $test_tmp
# but names a profile, log or crash database (somewhere else). Chromium's child processes rewrite
# their command line into one space-separated string, so this matches on substrings.
not_ours() {
  local cmd
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") || return 0
  [ -z "$cmd" ] && return 0
  [[ "$cmd" == *"$test_tmp"* ]] && return 1
  [[ "$cmd" == *--user-data-dir=* || "$cmd" == *--log-path=* || "$cmd" == *--database=* || "$cmd" == *" -profile "* ]]
}

step "no browser, driver, Grid or node_exporter process, nor lab namespace, left behind"
left=""
for _ in $(seq 1 50); do # up to 10 s for the last ones to exit
  left=""
  for pp in $(comm -13 <(echo "$before") <(browser_procs)); do
    not_ours "${pp%%:*}" || left+="$pp "
  done
  [ -z "$left" ] && break
  sleep 0.2
done
if [ -n "$left" ]; then
  echo "FAIL: processes started during the test run are still alive:" >&2
  for pp in $left; do
    pid=${pp%%:*}
    echo "  pid $pid: $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | cut -c1-200)" >&2
  done
  exit 1
fi
netns_left=$(comm -13 <(echo "$netns_before") <(lab_netns) | tr '\n' ' ')
if [ -n "${netns_left// /}" ]; then
  echo "FAIL: network namespaces made during the test run are still there: $netns_left" >&2
  exit 1
fi
rm -rf "$test_tmp"
echo "none"

if [ "$tests_rc" -ne 0 ]; then
  echo "FAIL: cargo test exited with $tests_rc" >&2
  exit "$tests_rc"
fi
echo
echo "all checks passed"
