#!/usr/bin/env bash
# Footprint of the whole lab: a generated 20-service scenario (bench/lab20.py) at RATE req/s
# with full capture for DURATION, in one `tracelab run` process. Prints the peak RSS (target
# < 500 MB at 1,000 req/s for 60 s) and the time from launch to the first complete trace in
# the run's spans.otlp.jsonl (target < 3 s, after the build).
#
# Usage: bash bench/footprint.sh [RATE] [DURATION]   (defaults: 1000 60s)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RATE=${1:-1000}
DURATION=${2:-60s}
source bench/lab20.sh "$RATE" "$DURATION"

describe footprint "$RATE req/s for $DURATION"
start=$(date +%s.%N)
run_lab /usr/bin/time -v -o "$WORK/time" &
LAB=$!
python3 bench/lab20.py watch "$WORK/run/spans.otlp.jsonl" "$start" 30 || true
wait "$LAB" || { cat "$WORK/stderr" >&2; exit 1; }
python3 - "$WORK/report.json" "$WORK/time" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
peak_kib = next(int(l.split(":")[1]) for l in open(sys.argv[2]) if "Maximum resident" in l)
r, s, t = report["requests"], report["spans"], report["traces"]
print(f"requests {r['total']} at {r['achieved_rate']:.0f} req/s (target {r['target_rate']:.0f}), errors {r['errors']}")
print(f"spans received {s['received']}, exported {s['exported']}, lost {s['lost']}; traces complete {t['complete_percent']:.2f} %")
print(f"peak RSS of the whole lab: {peak_kib / 1024:.0f} MiB ({peak_kib * 1024 / max(s['received'], 1):.0f} bytes per received span)")
PY
