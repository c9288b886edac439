#!/usr/bin/env bash
# Offline validation of the deployment files: the compose stack, the Collector, Jaeger and
# Grafana configuration, and the metric names the dashboards query. Nothing here needs docker or a network beyond the package index
# (for check-jsonschema and PyYAML, installed when missing).
#
# The Rust side (compose file == renderer output, Kubernetes manifests parse) is
# `cargo test -p tracelab-deploy`.
#
# Usage: bash .ci/validate-deploy.sh   (from anywhere in the repository)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import yaml' 2>/dev/null; then
    "$PYTHON" -m pip install --quiet pyyaml
fi
if ! command -v check-jsonschema >/dev/null 2>&1; then
    "$PYTHON" -m pip install --quiet check-jsonschema
fi

COMPOSE=compose/docker-compose.yaml
passed=0
failed=0

# Runs one named check, counting it, and keeps going so that one run reports every problem.
check() {
    local name=$1
    shift
    echo "== $name"
    if "$@"; then
        passed=$((passed + 1))
    else
        echo "FAILED: $name" >&2
        failed=$((failed + 1))
    fi
}

parse_all_yaml() {
    "$PYTHON" - <<'PY'
import glob, sys, yaml
files = sorted(glob.glob("compose/**/*.yaml", recursive=True) + glob.glob("grafana/**/*.yaml", recursive=True))
bad = 0
for path in files:
    try:
        with open(path, encoding="utf-8") as handle:
            list(yaml.safe_load_all(handle))
    except yaml.YAMLError as error:
        print(f"{path}: {error}", file=sys.stderr)
        bad += 1
print(f"{len(files) - bad} of {len(files)} YAML files parse")
sys.exit(1 if bad else 0)
PY
}

check "every YAML file parses" parse_all_yaml
check "compose file matches the compose-spec schema" \
    check-jsonschema --builtin-schema vendor.compose-spec "$COMPOSE"
check "compose images pinned, mounted paths exist" \
    "$PYTHON" .ci/check_compose.py "$COMPOSE"
check "Collector pipelines reference defined components" \
    "$PYTHON" .ci/check_collector_config.py --compose "$COMPOSE" otel-collector
check "Jaeger pipelines reference defined components" \
    "$PYTHON" .ci/check_collector_config.py --compose "$COMPOSE" jaeger
check "Grafana provisioning and dashboards" \
    "$PYTHON" .ci/check_grafana.py grafana "$COMPOSE"
check "dashboard metrics are the ones the backends emit" \
    "$PYTHON" .ci/check_metric_names.py .
check "compose/smoke.sh parses" bash -n compose/smoke.sh

echo "deploy validation: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
