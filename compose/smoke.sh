#!/usr/bin/env bash
# The compose stack, end to end, on a machine with Docker: builds and starts it, waits for the
# health checks, then asks each backend's HTTP API whether the lab's traffic arrived where the
# dashboards and the tour in docs/compose.md expect it:
#   - Jaeger has traces (tail-sampled) for every lab service;
#   - Tempo's /api/search finds traces of every lab service;
#   - Prometheus has the span metrics, the service-graph metrics and the Collector's own
#     (sampling) metrics under the names and labels the dashboards query;
#   - every Grafana datasource answers its health check.
# and always takes the stack down again (`down -v`: its volumes too).
#
# Usage: bash compose/smoke.sh        (from anywhere; about 5 minutes, most of it the build)
# Exit status: 0 all checks passed, 1 a check failed, 2 no Docker engine to run on.
# SMOKE_TIMEOUT (seconds, default 240) bounds the wait for data after the stack is healthy.
set -uo pipefail

here=${BASH_SOURCE[0]%/*}
[ "$here" = "${BASH_SOURCE[0]}" ] && here=.
compose_file="$here/docker-compose.yaml"

if ! command -v docker >/dev/null 2>&1; then
    echo "smoke.sh: no docker command here; this check needs Docker with the compose plugin" \
        "(https://docs.docker.com/engine/install/). Nothing was started." >&2
    exit 2
fi
if ! docker info >/dev/null 2>&1; then
    echo "smoke.sh: docker cannot reach a Docker engine (is the daemon running, and is" \
        "DOCKER_HOST right?); this check needs one. Nothing was started." >&2
    exit 2
fi
if ! docker compose version >/dev/null 2>&1; then
    echo "smoke.sh: docker has no compose plugin (docker compose version fails)." >&2
    exit 2
fi
for tool in curl python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "smoke.sh: $tool is needed" >&2; exit 2; }
done

compose() { docker compose -f "$compose_file" "$@"; }
failures=0
fail() {
    echo "FAILED: $*" >&2
    failures=$((failures + 1))
}
cleanup() {
    echo "== docker compose down -v"
    compose down -v --remove-orphans >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "== docker compose up --build -d --wait"
if ! compose up --build -d --wait --wait-timeout 300; then
    compose ps >&2
    compose logs --tail 50 >&2
    fail "the stack did not become healthy"
    exit 1
fi

# The lab services: every service of the compose file built from the lab image.
lab_services=$(compose config --format json | python3 -c '
import json, sys
services = json.load(sys.stdin)["services"]
print(" ".join(sorted(n for n, s in services.items() if str(s.get("image", "")).startswith("tracelab:"))))
')
echo "lab services: $lab_services"

# Runs a check (a command and its arguments) until it succeeds or the time is up.
deadline=$(( $(date +%s) + ${SMOKE_TIMEOUT:-240} ))
eventually() {
    local what=$1
    shift
    until "$@"; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            fail "$what"
            return 1
        fi
        sleep 5
    done
    echo "ok: $what"
}

# JSON from a URL, read by a Python expression over `d`; succeeds when it is truthy.
json_true() {
    local url=$1 expression=$2
    curl -fsS --max-time 10 "$url" 2>/dev/null | python3 -c "
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if ($expression) else 1)
" 2>/dev/null
}

urlencode() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }

for service in $lab_services; do
    eventually "Jaeger has traces of $service" \
        json_true "http://localhost:16686/api/traces?service=$service&limit=1" 'len(d.get("data") or []) > 0'
    eventually "Tempo finds traces of $service" \
        json_true "http://localhost:3200/api/search?tags=$(urlencode "service.name=$service")&limit=1" 'len(d.get("traces") or []) > 0'
done

# The series the dashboards query, with the labels they select on.
for query in \
    'traces_span_metrics_calls_total{span_kind="SPAN_KIND_SERVER"}' \
    'traces_span_metrics_duration_seconds_bucket{span_kind="SPAN_KIND_SERVER"}' \
    'traces_service_graph_request_total' \
    'traces_service_graph_request_server_seconds_bucket' \
    'otelcol_receiver_accepted_spans_total{receiver="otlp"}' \
    'otelcol_exporter_sent_spans_total{exporter="otlp_grpc/tempo"}' \
    'otelcol_exporter_sent_spans_total{exporter="otlp_grpc/jaeger"}' \
    'otelcol_processor_tail_sampling_global_count_traces_sampled_total' \
    'otelcol_processor_tail_sampling_count_traces_sampled_total{sampled="true"}' \
    'otelcol_processor_tail_sampling_sampling_traces_on_memory' \
    'otelcol_processor_incoming_items_total{otel_signal="traces"}'; do
    eventually "Prometheus has $query" \
        json_true "http://localhost:9090/api/v1/query?query=$(urlencode "$query")" 'len(d["data"]["result"]) > 0'
done

for uid in $(curl -fsS --max-time 10 http://localhost:3000/api/datasources |
    python3 -c 'import json, sys; print(" ".join(s["uid"] for s in json.load(sys.stdin)))'); do
    eventually "Grafana datasource $uid is healthy" \
        json_true "http://localhost:3000/api/datasources/uid/$uid/health" 'd.get("status") == "OK"'
done

if [ "$failures" -gt 0 ]; then
    echo "smoke: $failures checks failed" >&2
    compose logs --tail 30 otel-collector loadgen >&2
    exit 1
fi
echo "smoke: every check passed"
