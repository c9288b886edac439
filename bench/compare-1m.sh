#!/usr/bin/env bash
# `tracelab compare` over a generated full-capture run of 1,000,000 spans (about 91,000
# traces of a small shop, with errors, a latency tail, late queue spans and two incident
# windows; `tracelab/examples/sampling_capture.rs`) with the four strategies of
# bench/compare-1m.yaml, release build. Prints the wall and CPU time of each round (the CPU
# time is the steadier figure on a shared machine) and the median wall time against the
# target (< 5 s) on the last line.
#
# Usage: bash bench/compare-1m.sh [SPANS] [ROUNDS]   (defaults: 1000000 3)
#        RUN_DIR=DIR bash bench/compare-1m.sh       generates into DIR once and reuses it
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SPANS=${1:-1000000}
ROUNDS=${2:-3}
# shellcheck source=bench/capture.sh
source bench/capture.sh "$SPANS"

echo "compare-1m: $(date -u +%FT%TZ), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "input: $(du -m "$RUN/spans.otlp.jsonl" | cut -f1) MB of OTLP/JSON, $(wc -l <"$RUN/requests.jsonl") requests, $(wc -l <"$RUN/incidents.jsonl") incidents"
times=()
for round in $(seq "$ROUNDS"); do
    load=$(cut -d' ' -f1 /proc/loadavg)
    start=$(date +%s.%N)
    /usr/bin/time -f '%M %U %S' -o "$WORK/usage" "$TARGET/release/tracelab" compare "$RUN" \
        --strategies bench/compare-1m.yaml --out "$WORK/sampling.json" >"$WORK/table"
    end=$(date +%s.%N)
    seconds=$(echo "$end - $start" | bc -l)
    times+=("$seconds")
    read -r rss user sys <"$WORK/usage"
    printf 'round %d: %.2f s wall, %.2f s CPU (user %s + sys %s), peak RSS %d MiB, load average %s before\n' \
        "$round" "$seconds" "$(echo "$user + $sys" | bc -l)" "$user" "$sys" "$((rss / 1024))" "$load"
done
cat "$WORK/table"
median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}')
verdict=$(echo "$median < 5" | bc -l)
printf 'compare over %s spans, 4 strategies: median %.2f s of %d rounds (load average %s): target < 5 s %s\n' \
    "$(grep -o '"spans": *[0-9]*' "$WORK/sampling.json" | head -1 | grep -o '[0-9]*$')" \
    "$median" "$ROUNDS" "$(cut -d' ' -f1-3 /proc/loadavg)" \
    "$([ "$verdict" = 1 ] && echo met || echo 'NOT met')"
