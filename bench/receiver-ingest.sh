#!/usr/bin/env bash
# Receiver ingest: spans per second on one core over OTLP/gRPC and OTLP/HTTP, batches of 512
# realistic spans, the sender in another process (on another core when there is one), and the
# receiver's resident memory per stored span.
#
# Usage: bash bench/receiver-ingest.sh [BATCHES] [IN_FLIGHT]   (defaults: 1000 batches, 4)
#        SINK=1 bash bench/receiver-ingest.sh    also writes spans.otlp.jsonl, as `tracelab run` does
# Needs Linux (taskset, /proc). Target: >= 150,000 spans/s on one core.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BATCHES=${1:-1000}
IN_FLIGHT=${2:-4}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --quiet --release -p tracelab-receiver --examples

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
GRPC=127.0.0.1:$(free_port)
HTTP=127.0.0.1:$(free_port)
SINK_ARGS=()
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [ "${SINK:-0}" = 1 ]; then SINK_ARGS=("$WORK/spans.otlp.jsonl"); fi

# The receiver gets core 0 to itself; its tokio runtime sizes itself from the affinity mask.
# The sender's standard input keeps the receiver alive: closing it stops the receiver.
PIN_SENDER=()
if [ "$(nproc)" -gt 1 ]; then PIN_SENDER=(taskset -c 1); fi
mkfifo "$WORK/control"
taskset -c 0 "$TARGET/release/examples/ingest_receiver" "$GRPC" "$HTTP" "${SINK_ARGS[@]}" \
    <"$WORK/control" >"$WORK/ready" &
RECEIVER=$!
exec 3>"$WORK/control"
for _ in $(seq 100); do
    grep -q ready "$WORK/ready" 2>/dev/null && break
    sleep 0.1
done
grep -q ready "$WORK/ready" || { echo "the receiver did not start" >&2; exit 1; }

echo "receiver-ingest: $(date -u +%FT%TZ), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "receiver pinned to core 0${SINK_ARGS:+, writing spans.otlp.jsonl}; sender: ${PIN_SENDER[*]:-unpinned}"
"${PIN_SENDER[@]}" "$TARGET/release/examples/ingest_sender" "$RECEIVER" "http://$GRPC" \
    "http://$HTTP/v1/traces" "$BATCHES" "$IN_FLIGHT"
exec 3>&-
wait "$RECEIVER"
