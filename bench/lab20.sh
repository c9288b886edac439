# shellcheck shell=bash
# Sourced by bench/footprint.sh and bench/soak.sh from the repository root, with the rate and
# the run's duration as $1 and $2: builds tracelab, makes the scratch directory $WORK (removed
# on exit) and writes the 20-service scenario (bench/lab20.py) to $WORK/lab20.yaml.
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --quiet --release -p tracelab

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 bench/lab20.py scenario "$1" "$2" >"$WORK/lab20.yaml"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The bench's header line: what ran, when, and on what.
describe() {
    echo "$1: $(date -u +%FT%TZ), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), 20 services, $2"
}

# `tracelab run` of the scenario, with the receiver on free ports, report.json and stderr in
# $WORK; the arguments, if any, are a command to run it under (`/usr/bin/time -v ...`). It
# replaces the shell it runs in, so `run_lab &` leaves the process itself in `$!`.
run_lab() {
    exec "$@" "$TARGET/release/tracelab" run "$WORK/lab20.yaml" --out "$WORK/run" --no-progress --json \
        --otlp-grpc "127.0.0.1:$(free_port)" --otlp-http "127.0.0.1:$(free_port)" \
        >"$WORK/report.json" 2>"$WORK/stderr"
}
