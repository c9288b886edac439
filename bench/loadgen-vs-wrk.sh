#!/usr/bin/env bash
# Maximum throughput of tracelab's load generator against wrk's, on one trivial endpoint.
#
# Starts the trivial axum endpoint (loadgen/examples/trivial_server.rs) on 127.0.0.1, then
# alternates ROUNDS rounds of
#   - tracelab load, closed loop, CONNECTIONS users with no think time, tracing off
#     (the generator's maximum-throughput mode: each user sends as soon as its answer is in);
#   - wrk with the same number of connections;
# for DURATION seconds each, and prints both medians. Then one open-loop run at half of
# tracelab's median capacity for 10 s checks the rate accuracy. The LAST line is the ratio
# `tracelab/wrk`.
#
# Run with:  bench/loadgen-vs-wrk.sh            (CONNECTIONS=32 DURATION=5 ROUNDS=3 by default)
# Installs Debian's wrk with apt-get when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
WRK_THREADS=${WRK_THREADS:-$(nproc)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk…" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -qq wrk >/dev/null 2>&1 || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk; }
fi

echo "building (release)…" >&2
cargo build --release -q -p tracelab --bin tracelab
cargo build --release -q -p tracelab-loadgen --example trivial_server
TRACELAB="$CARGO_TARGET_DIR/release/tracelab"
SERVER="$CARGO_TARGET_DIR/release/examples/trivial_server"

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

"$SERVER" 127.0.0.1:0 >"$WORK/server.out" &
SERVER_PID=$!
for _ in $(seq 50); do grep -q listening "$WORK/server.out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^listening on //p' "$WORK/server.out")
[ -n "$URL" ] || { echo "the trivial server did not start" >&2; exit 1; }

cat >"$WORK/bench.yaml" <<YAML
# Benchmark: one trivial endpoint, served by loadgen/examples/trivial_server.rs.
name: bench
services:
  bench:
    routes:
      /: {}
load:
  rate: 1
  duration: 1s
  entries:
    - {service: bench, route: /}
YAML

# The first "achieved_rate" of report.json is the requests section's.
achieved() { grep -m1 '"achieved_rate"' "$1" | sed 's/.*: *\([0-9.eE+-]*\).*/\1/'; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

echo "endpoint $URL, $CONNECTIONS connections, ${DURATION}s x $ROUNDS rounds, $(nproc) cores" >&2
: >"$WORK/tracelab.rates"; : >"$WORK/wrk.rates"
for round in $(seq "$ROUNDS"); do
  "$TRACELAB" load "$WORK/bench.yaml" --target "bench=$URL" --users "$CONNECTIONS" \
    --duration "${DURATION}s" --no-progress --no-tracing --out "$WORK/run-$round" >/dev/null
  t=$(achieved "$WORK/run-$round/report.json")
  w=$(wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "$URL/" | awk '/Requests\/sec/ {print $2}')
  echo "$t" >>"$WORK/tracelab.rates"; echo "$w" >>"$WORK/wrk.rates"
  printf 'round %d: tracelab %.0f req/s, wrk %.0f req/s\n' "$round" "$t" "$w"
done
T=$(median <"$WORK/tracelab.rates")
W=$(median <"$WORK/wrk.rates")
printf 'median: tracelab %.0f req/s, wrk %.0f req/s\n' "$T" "$W"

# Rate accuracy: open loop at half the measured capacity, 10 s.
HALF=$(awk -v t="$T" 'BEGIN {printf "%d", t / 2}')
"$TRACELAB" load "$WORK/bench.yaml" --target "bench=$URL" --rate "$HALF" --duration 10s \
  --connections "$CONNECTIONS" --no-progress --no-tracing --out "$WORK/accuracy" >/dev/null
SENT=$(grep -m1 '"total"' "$WORK/accuracy/report.json" | sed 's/.*: *\([0-9]*\).*/\1/')
awk -v s="$SENT" -v h="$HALF" 'BEGIN {printf "rate accuracy: target %d/s for 10 s, sent %d (%.0f/s, %+.2f %%)\n", h, s, s / 10, 100 * (s / 10 - h) / h}'

awk -v t="$T" -v w="$W" 'BEGIN {printf "tracelab/wrk %.2f\n", t / w}'
