#!/usr/bin/env bash
# `tracelab serve` on a large run: how long indexing takes, how fast a trace-id search and a
# trace's waterfall come back, how long the filter searches (a scan of every trace) take, and
# the server's peak RSS. Generates a seeded full-capture run directory of SPANS spans
# (`tracelab/examples/sampling_capture.rs`, see bench/capture.sh), serves it pinned to CPU 0,
# and asks from CPU 1 with curl: 200 trace ids drawn from requests.jsonl (seeded), each as a
# search and as a waterfall page, printing the server's CPU use while it answers. The last line is the verdict against the targets (trace-id
# search < 100 ms, peak RSS < 200 MB).
#
# Usage: bash bench/console-search.sh [SPANS]   (default 1000000)
#        RUN_DIR=DIR bash bench/console-search.sh   generates into DIR once and reuses it
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SPANS=${1:-1000000}
# shellcheck source=bench/capture.sh
source bench/capture.sh "$SPANS" /dev/null
mb=$(du -m "$RUN/spans.otlp.jsonl" | cut -f1)
echo "console-search: $(date -u +%FT%TZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "input: $mb MB of OTLP/JSON, $(wc -l <"$RUN/requests.jsonl") requests"

start=$(date +%s.%N)
taskset -c 0 "$TARGET/release/tracelab" serve "$RUN" >"$WORK/serve.out" 2>"$WORK/serve.err" &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$WORK"' EXIT
until grep -q '^console: ' "$WORK/serve.out" 2>/dev/null; do
    kill -0 $server 2>/dev/null || { cat "$WORK/serve.err"; exit 1; }
    sleep 0.05
done
ready=$(date +%s.%N)
url=$(sed -n 's/^console: //p' "$WORK/serve.out")
grep '^indexed' "$WORK/serve.err"
printf 'ready to answer after %.1f s\n' "$(echo "$ready - $start" | bc -l)"

python3 - "$RUN/requests.jsonl" >"$WORK/ids" <<'PY'
import json, random, sys
ids = [json.loads(line)["trace_id"] for line in open(sys.argv[1])]
random.Random(7).shuffle(ids)
print("\n".join(ids[:200]))
PY

# CPU seconds the server has used so far (user + system, from /proc).
server_cpu() { awk -v tick="$(getconf CLK_TCK)" '{ print ($14 + $15) / tick }' /proc/$server/stat; }
cpu_before=$(server_cpu)
wall_before=$(date +%s.%N)

# Milliseconds of each request to the paths read on stdin, one per line.
timed() {
    xargs -I{} taskset -c 1 curl --noproxy '*' -s -o /dev/null -w '%{http_code} %{time_total}\n' "${url}{}" |
        awk '$1 != 200 { bad++ } { print $2 * 1000 } END { if (bad) { print "non-200 answers: " bad > "/dev/stderr"; exit 1 } }'
}
stats() {
    sort -n | awk -v what="$1" '{ v[NR] = $1 } END {
        printf "%-40s n %3d  p50 %7.1f ms  p99 %7.1f ms  max %7.1f ms\n", what, NR, v[int(NR * 0.5 + 0.5)], v[int(NR * 0.99 + 0.5)], v[NR] }'
}
sed 's|^|api/search?trace_id=|' "$WORK/ids" | timed >"$WORK/search.ms"
stats "search by trace id" <"$WORK/search.ms" | tee "$WORK/search.line"
sed 's|^|trace/|' "$WORK/ids" | head -50 | timed | stats "open the waterfall (/trace/ID)"
services=$(curl --noproxy '*' -s "${url}api/overview" | python3 -c 'import json, sys; print(" ".join(s["name"] for s in json.load(sys.stdin)["services"]))')
echo "services: $services"
service=$(echo "$services" | tr ' ' '\n' | grep -v loadgen | tail -1)
for query in 'errors=1' 'min_ms=500' "service=$service&errors=1" 'from_s=60&to_s=120'; do
    matched=$(curl --noproxy '*' -s "${url}api/search?$query" | python3 -c 'import json, sys; print(json.load(sys.stdin)["matched"])')
    for _ in 1 2 3 4 5; do echo "api/search?$query"; done | timed | stats "search $query ($matched match)"
done
cpu_after=$(server_cpu)
wall_after=$(date +%s.%N)
# The server's share of its core while answering: far below 100 % means the figures above are
# its latency per request, not a saturated server (curl's own start-up sets the pace).
awk -v c="$(echo "$cpu_after - $cpu_before" | bc -l)" -v w="$(echo "$wall_after - $wall_before" | bc -l)" \
    'BEGIN { printf "server CPU while answering: %.2f s in %.1f s (%.0f %% of its core)\n", c, w, 100 * c / w }'
rss=$(awk '/^VmHWM/ { print int($2 / 1024) }' /proc/$server/status)
echo "server peak RSS: $rss MiB"
p99=$(sed 's/.*p99 *\([0-9.]*\) ms.*/\1/' "$WORK/search.line")
verdict=$(awk -v p="$p99" -v r="$rss" 'BEGIN { print (p < 100 && r < 191) ? "met" : "NOT met" }')
echo "console over $mb MB ($SPANS spans): trace-id search p99 $p99 ms (target < 100), peak RSS $rss MiB (target < 200 MB = 191 MiB): $verdict"
