#!/usr/bin/env bash
# Long property-based fuzzing of every parser that reads untrusted input: W3C traceparent,
# tracestate and baggage headers, OTLP protobuf and JSON bodies (through the HTTP router, the
# path a request takes), OTLP/JSON files, and scenario YAML. Each target runs N generated
# inputs (release build) and prints its executions per second. A panic fails the target and
# proptest prints the minimal failing input.
#
# cargo-fuzz needs a nightly toolchain; these proptest targets run on stable, and CI runs each
# of them with the default small count as part of `cargo test`.
#
# Usage: bash bench/fuzz.sh [N] [FILTER]   N inputs per target (default 1000000); FILTER keeps
#        targets whose name contains it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N=${1:-1000000}
FILTER=${2:-}

TARGETS=(
    "tracelab-propagation parser_properties traceparent_parse_never_panics_and_round_trips"
    "tracelab-propagation parser_properties tracestate_parse_never_panics_and_round_trips"
    "tracelab-propagation parser_properties baggage_parse_never_panics_and_round_trips"
    "tracelab-receiver decode_fuzz random_protobuf_bodies_never_panic"
    "tracelab-receiver decode_fuzz mutated_protobuf_bodies_never_panic"
    "tracelab-receiver decode_fuzz random_json_bodies_never_panic"
    "tracelab-receiver decode_fuzz mutated_json_never_panics"
    "tracelab-receiver decode_fuzz random_text_never_panics_the_file_reader"
    "tracelab-scenario no_panic random_text_never_panics"
    "tracelab-scenario no_panic random_yaml_tokens_never_panic"
    "tracelab-scenario no_panic mutated_quickstart_never_panics"
)

echo "fuzz: $(date -u +%FT%TZ), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $N inputs per target"
failed=0
for target in "${TARGETS[@]}"; do
    read -r crate test name <<<"$target"
    [[ -z "$FILTER" || "$name" == *"$FILTER"* ]] || continue
    cargo test --quiet --release -p "$crate" --test "$test" --no-run 2>/dev/null
    start=$(date +%s.%N)
    if PROPTEST_CASES=$N cargo test --quiet --release -p "$crate" --test "$test" -- --exact "$name" \
        >/tmp/fuzz-$$.log 2>&1; then
        verdict=ok
    else
        verdict=FAILED
        failed=$((failed + 1))
        cat /tmp/fuzz-$$.log >&2
    fi
    end=$(date +%s.%N)
    awk -v n="$N" -v s="$start" -v e="$end" -v name="$name" -v v="$verdict" \
        'BEGIN { t = e - s; printf "%-52s %s  %d inputs in %.1f s: %.0f exec/s\n", name, v, n, t, n / t }'
done
rm -f /tmp/fuzz-$$.log
[ "$failed" -eq 0 ]
