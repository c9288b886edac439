#!/usr/bin/env bash
# Soak: the 20-service scenario (bench/lab20.py) at a steady RATE for DURATION in one
# `tracelab run`, the process's RSS sampled every few seconds. Prints the growth from the 20 %
# mark of the run (minute 2 of 10) to its end; target < 10 %.
#
# Usage: bash bench/soak.sh [RATE] [SECONDS]   (defaults: 200 600; a short run: 100 60)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RATE=${1:-200}
SECONDS_TOTAL=${2:-600}
source bench/lab20.sh "$RATE" "${SECONDS_TOTAL}s"

describe soak "$RATE req/s for $SECONDS_TOTAL s"
run_lab &
LAB=$!
STEP=$(( SECONDS_TOTAL / 60 > 1 ? SECONDS_TOTAL / 60 : 1 ))
launched=$(date +%s)
: >"$WORK/rss"
while kill -0 "$LAB" 2>/dev/null; do
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$LAB/status" 2>/dev/null || true)
    [ -n "$rss" ] && echo "$(( $(date +%s) - launched )) $rss" >>"$WORK/rss"
    sleep "$STEP"
done
wait "$LAB" || { cat "$WORK/stderr" >&2; exit 1; }
python3 - "$WORK/rss" "$SECONDS_TOTAL" "$WORK/report.json" <<'PY'
import json, sys
samples = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
total = int(sys.argv[2])
# Only the load phase counts: after it the run flushes and analyses, which is not steady state.
load = [(t, kib) for t, kib in samples if t <= total]
mark = next(kib for t, kib in load if t >= total * 0.2)
end = load[-1][1]
report = json.load(open(sys.argv[3]))
print(f"RSS at {total * 0.2:.0f} s: {mark / 1024:.0f} MiB; at {load[-1][0]} s: {end / 1024:.0f} MiB; growth {100 * (end - mark) / mark:.1f} % (target < 10 %)")
print("samples (s, MiB): " + ", ".join(f"{t}:{kib / 1024:.0f}" for t, kib in load[:: max(1, len(load) // 12)]))
s = report["spans"]
print(f"requests {report['requests']['total']}, spans received {s['received']}, lost {s['lost']}")
PY
