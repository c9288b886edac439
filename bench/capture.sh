# Sourced by the benchmarks that read a large full-capture run directory. Builds tracelab and
# the capture generator (`tracelab/examples/sampling_capture.rs`: a small shop with errors, a
# latency tail, late queue spans and incident windows) and sets RUN to a seeded run directory
# of $1 spans, in WORK (removed on exit) or in RUN_DIR, generated once and reused there.
# The generator's own lines go to $2 (default: the terminal).
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --quiet --release -p tracelab --bin tracelab --example sampling_capture

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
RUN=${RUN_DIR:-$WORK/run}
if [ ! -s "$RUN/spans.otlp.jsonl" ]; then
    "$TARGET/release/examples/sampling_capture" "$RUN" "$1" >"${2:-/dev/stdout}"
fi
