#!/usr/bin/env bash
# Is the top of a scenario's p99 critical path the scenario's, or chance's? Runs one scenario
# once per seed given, each run alone, and prints the three services with the largest share of
# the slowest 1 % of traces' critical path (report.json's `services[].critical_share_p99`).
# Where the seeds disagree on the first, the ranking is decided by which traces the host
# happened to stall, not by the scenario (docs/import.md, "How faithful the round trip is").
#
# Usage: bash bench/critical-path-top.sh SCENARIO [SEED...]
#        RATE=200 DURATION=10s (the import round trip's load) by default.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ $# -ge 1 ] || { echo "usage: $0 SCENARIO [SEED...]" >&2; exit 2; }
scenario=$1
shift
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1 3 5 7 9 11)
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --quiet --release -p tracelab --bin tracelab
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "$scenario at ${RATE:-200}/s for ${DURATION:-10s}, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for seed in "${seeds[@]}"; do
    "$TARGET/release/tracelab" run "$scenario" --rate "${RATE:-200}" --duration "${DURATION:-10s}" \
        --seed "$seed" --out "$work/$seed" --no-progress >/dev/null 2>&1 || true
    python3 - "$work/$seed/report.json" "$seed" <<'PY'
import json, sys
services = json.load(open(sys.argv[1]))["services"]
top = sorted(services, key=lambda s: -s["critical_share_p99"])[:3]
print(f"seed {sys.argv[2]:>3}: " + ", ".join(f"{s['service']} {s['critical_share_p99'] * 100:.1f} %" for s in top))
PY
    rm -rf "${work:?}/$seed"
done
