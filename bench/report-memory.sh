#!/usr/bin/env bash
# Peak memory of `tracelab report` on a large span file: the report streams its input, so its
# peak RSS should not grow with the file. Generates a seeded full-capture run directory
# (`tracelab/examples/sampling_capture.rs`, a small shop with errors, a latency tail and
# incidents) of SPANS spans, then runs `tracelab report` on it twice: on the run directory and on
# the bare span file. Prints the input size, wall time and peak RSS of each, and the verdict
# against the target (peak < 300 MB for a 500 MB file) on the last line.
#
# Usage: bash bench/report-memory.sh [SPANS]   (default 800000: about 500 MB of OTLP/JSON)
#        RUN_DIR=DIR bash bench/report-memory.sh   generates into DIR once and reuses it
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SPANS=${1:-800000}
# shellcheck source=bench/capture.sh
source bench/capture.sh "$SPANS" /dev/null
mb=$(du -m "$RUN/spans.otlp.jsonl" | cut -f1)
echo "report-memory: $(date -u +%FT%TZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "input: $mb MB of OTLP/JSON ($(wc -l <"$RUN/requests.jsonl") requests)"
worst=0
for input in "$RUN" "$RUN/spans.otlp.jsonl"; do
    [ -d "$input" ] && what="the run directory" || what="the span file alone"
    start=$(date +%s.%N)
    /usr/bin/time -f '%M' -o "$WORK/rss" "$TARGET/release/tracelab" report "$input" \
        --quiet --out "$WORK/report.html" >/dev/null
    end=$(date +%s.%N)
    rss=$(($(cat "$WORK/rss") / 1024))
    [ "$rss" -gt "$worst" ] && worst=$rss
    printf 'tracelab report on %s: %.1f s, peak RSS %d MiB\n' "$what" "$(echo "$end - $start" | bc -l)" "$rss"
done
verdict=$([ "$worst" -lt 286 ] && echo met || echo 'NOT met')
printf 'report over %d MB of spans: peak RSS %d MiB (target < 300 MB = 286 MiB): %s\n' "$mb" "$worst" "$verdict"
