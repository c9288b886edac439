#!/usr/bin/env bash
# Tracing overhead table (Dapper's Table 2, for the lab): throughput, latency and CPU per
# request of a saturated 3-hop chain at sampling 1/1, 1/2, 1/4, 1/16, 1/1024 against tracing
# off, alternating in one run. The chain injects no waits, so each request costs only CPU; the
# process (services, client and receiver) is pinned to CORES with taskset, prints how much of
# those cores each mode used, and prints a ratio only when every mode saturated them (>= 95 %).
# Target: throughput at 1/1 >= 0.90 x tracing off.
#
# Usage: CORES=0-1 bash bench/overhead.sh [ROUNDS] [WINDOW_SECONDS] [CLIENTS]
#        (defaults: every core, 4 rounds, 3 s windows, 16 clients)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGET=${CARGO_TARGET_DIR:-target}
CORES=${CORES:-0-$(($(nproc) - 1))}
cargo build --quiet --release -p tracelab --example overhead
echo "overhead: $(date -u +%FT%TZ), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg), pinned to cores $CORES"
exec taskset -c "$CORES" "$TARGET/release/examples/overhead" "$@"
