# Shared by the benchmark scripts (sourced, not run): which stressctl binary they measure.
#
#   . "$ROOT_DIR/scripts/bench-common.sh"
#   stressctl_bin bench-name.sh     # sets BIN

# Sets BIN to $STRESSCTL (a kept build) or, without it, builds the release binary and uses it;
# exits 1 naming the calling script ($1) when BIN is not executable.
stressctl_bin() {
    if [ -n "${STRESSCTL:-}" ]; then
        BIN=$STRESSCTL
    else
        echo "== building stressctl (release)"
        (cd "$ROOT_DIR" && cargo build --release --quiet)
        BIN="$ROOT_DIR/target/release/stressctl"
    fi
    [ -x "$BIN" ] || { echo "$1: $BIN is not executable" >&2; exit 1; }
}
