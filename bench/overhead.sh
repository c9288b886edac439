#!/usr/bin/env bash
# Tracing overhead table (Dapper's Table 2, for the lab): throughput and latency of a saturated
# 3-hop chain at sampling 1/1, 1/2, 1/4, 1/16, 1/1024 against tracing off, alternating in one
# run. Target: throughput at 1/1 >= 0.90 x tracing off.
#
# Usage: bash bench/overhead.sh [ROUNDS] [WINDOW_SECONDS] [CLIENTS]   (defaults: 4 3 16)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --quiet --release -p tracelab --example overhead
echo "overhead: $(date -u +%FT%TZ), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$TARGET/release/examples/overhead" "$@"
