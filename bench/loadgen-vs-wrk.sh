#!/usr/bin/env bash
# The load generator's maximum throughput against wrk's, measured so that the *client* is the
# bottleneck: the trivial endpoint (loadgen/examples/trivial_server.rs) and the client run on
# separate cores (taskset), and every round prints the CPU use of both. A ratio is printed only
# when both clients saturated their core (≥ 95 %) and the server did not (< 95 % of its cores);
# otherwise the script says which condition failed instead of printing a number.
#
# Rounds alternate: tracelab load (closed loop, CONNECTIONS users, no think time, tracing off),
# then wrk (1 thread per client core, CONNECTIONS connections), then (a diagnostic) tracelab
# again with its requests.jsonl linked to /dev/null, to show what writing that file costs. Then
# the same tracelab load with tracing on, its client spans exported over OTLP/gRPC to a receiver
# on the server's cores (receiver/examples/ingest_receiver.rs), for the ratio with tracing and
# the CPU per span.
#
# Run with:  bash bench/loadgen-vs-wrk.sh
# Knobs:     SERVER_CORES=0 CLIENT_CORES=1 CONNECTIONS=32 DURATION=5 ROUNDS=3
#            (on more cores, e.g. SERVER_CORES=0-7 CLIENT_CORES=8-9)
#            TRACELAB=path/to/tracelab measures that binary instead of building this checkout's
# Installs Debian's wrk with apt-get when it is missing. The LAST line is the ratio: by
# throughput when the clients, not the server, were the bottleneck; else by client CPU per
# request (the line before it says why).
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER_CORES=${SERVER_CORES:-0}
CLIENT_CORES=${CLIENT_CORES:-1}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

count_cores() { taskset -c "$1" nproc; }
SERVER_N=$(count_cores "$SERVER_CORES")
CLIENT_N=$(count_cores "$CLIENT_CORES")

if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk…" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -qq wrk >/dev/null 2>&1 || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk; }
fi

echo "building (release)…" >&2
[ -n "${TRACELAB:-}" ] || cargo build --release -q -p tracelab --bin tracelab
cargo build --release -q -p tracelab-loadgen --example trivial_server
cargo build --release -q -p tracelab-receiver --example ingest_receiver
TRACELAB=${TRACELAB:-$CARGO_TARGET_DIR/release/tracelab}
SERVER="$CARGO_TARGET_DIR/release/examples/trivial_server"
RECEIVER="$CARGO_TARGET_DIR/release/examples/ingest_receiver"

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

# CPU seconds (user + system) a process has used so far.
cpu_of() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }

# The server: one tokio worker per server core, pinned.
TRIVIAL_SERVER_THREADS=$SERVER_N taskset -c "$SERVER_CORES" "$SERVER" 127.0.0.1:0 >"$WORK/server.out" &
SERVER_PID=$!; PIDS+=("$SERVER_PID")
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

echo "endpoint $URL; server on cores $SERVER_CORES ($SERVER_N), clients on cores $CLIENT_CORES ($CLIENT_N); $CONNECTIONS connections, ${DURATION}s x $ROUNDS rounds; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
sent() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["load"]["sent"], r["load"]["send_window_s"])' "$1"; }

# Runs "$@" pinned to the client cores; prints: requests/s, client CPU %, µs CPU per request,
# server CPU % (of its cores). The command's request count comes from $COUNT_FILE's reader.
measure() {
  local kind=$1; shift
  local s0; s0=$(cpu_of "$SERVER_PID")
  local start; start=$(date +%s.%N)
  local times="$WORK/times"
  /usr/bin/time -f "%U %S %e" -o "$times" taskset -c "$CLIENT_CORES" "$@" >"$WORK/client.out" 2>"$WORK/client.err"
  local end; end=$(date +%s.%N)
  local s1; s1=$(cpu_of "$SERVER_PID")
  local requests seconds
  case $kind in
    tracelab) read -r requests seconds < <(sent "$WORK/run/report.json");;
    wrk) requests=$(awk '/requests in/ {print $1}' "$WORK/client.out")
         seconds=$(awk '/requests in/ {gsub("s,","",$4); print $4}' "$WORK/client.out");;
  esac
  read -r user sys elapsed <"$times"
  awk -v r="$requests" -v s="$seconds" -v u="$user" -v y="$sys" -v e="$elapsed" \
      -v s0="$s0" -v s1="$s1" -v st="$start" -v en="$end" -v cn="$CLIENT_N" -v sn="$SERVER_N" \
      'BEGIN {
         rate = r / s; cpu = 100 * (u + y) / e / cn; per = 1e6 * (u + y) / r;
         server = 100 * (s1 - s0) / (en - st) / sn;
         printf "%.0f %.1f %.2f %.1f\n", rate, cpu, per, server }'
}

: >"$WORK/tracelab.rows"; : >"$WORK/wrk.rows"; : >"$WORK/nofile.rows"
for round in $(seq "$ROUNDS"); do
  rm -rf "$WORK/run"
  t=$(measure tracelab "$TRACELAB" load "$WORK/bench.yaml" --target "bench=$URL" --users "$CONNECTIONS" \
      --duration "${DURATION}s" --no-progress --no-tracing --out "$WORK/run")
  w=$(measure wrk wrk -t"$CLIENT_N" -c"$CONNECTIONS" -d"${DURATION}s" "$URL/")
  # A diagnostic, not a way to run: the same tracelab with its requests.jsonl linked to
  # /dev/null, to show what writing the ground truth (one line a request) costs. wrk writes none.
  rm -rf "$WORK/run"; mkdir "$WORK/run"; ln -s /dev/null "$WORK/run/requests.jsonl"
  n=$(measure tracelab "$TRACELAB" load "$WORK/bench.yaml" --target "bench=$URL" --users "$CONNECTIONS" \
      --duration "${DURATION}s" --no-progress --no-tracing --out "$WORK/run")
  echo "$t" >>"$WORK/tracelab.rows"; echo "$w" >>"$WORK/wrk.rows"; echo "$n" >>"$WORK/nofile.rows"
  read -r tr tc tp ts <<<"$t"; read -r wr wc wp ws <<<"$w"; read -r _ _ np _ <<<"$n"
  printf 'round %d: tracelab %7.0f req/s (client CPU %5.1f %%, %5.2f µs/req; server %5.1f %%) | wrk %7.0f req/s (client CPU %5.1f %%, %5.2f µs/req; server %5.1f %%) | tracelab, requests.jsonl to /dev/null: %5.2f µs/req\n' \
    "$round" "$tr" "$tc" "$tp" "$ts" "$wr" "$wc" "$wp" "$ws" "$np"
done

col() { awk -v c="$1" '{print $c}' "$2" | median; }
T=$(col 1 "$WORK/tracelab.rows"); W=$(col 1 "$WORK/wrk.rows")
TC=$(col 2 "$WORK/tracelab.rows"); WC=$(col 2 "$WORK/wrk.rows")
TP=$(col 3 "$WORK/tracelab.rows"); WP=$(col 3 "$WORK/wrk.rows")
TS=$(col 4 "$WORK/tracelab.rows"); WS=$(col 4 "$WORK/wrk.rows")
printf 'median: tracelab %.0f req/s at %.1f %% client CPU (%.2f µs/req), wrk %.0f req/s at %.1f %% (%.2f µs/req); server %.1f %% / %.1f %%\n' \
  "$T" "$TC" "$TP" "$W" "$WC" "$WP" "$TS" "$WS"
NP=$(col 3 "$WORK/nofile.rows")
printf 'requests.jsonl: tracelab with it linked to /dev/null %.2f µs/req (median), so writing it costs %.2f µs a request here\n' \
  "$NP" "$(awk -v a="$TP" -v b="$NP" 'BEGIN {print a - b}')"

# With tracing on: client spans to a receiver on the server's cores.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
GRPC="127.0.0.1:$(free_port)"
# The receiver runs until its standard input closes: a fifo held open by a sleep that is
# killed with the others (a bare `< <(sleep …)` outlived the script and held its output open).
mkfifo "$WORK/receiver.in"
sleep 100000 2>/dev/null >"$WORK/receiver.in" &
PIDS+=("$!")
taskset -c "$SERVER_CORES" "$RECEIVER" "$GRPC" "127.0.0.1:$(free_port)" >"$WORK/receiver.out" <"$WORK/receiver.in" &
RECEIVER_PID=$!; PIDS+=("$RECEIVER_PID")
for _ in $(seq 50); do grep -q ready "$WORK/receiver.out" 2>/dev/null && break; sleep 0.1; done
if grep -q ready "$WORK/receiver.out"; then
  rm -rf "$WORK/run"
  traced=$(OTEL_EXPORTER_OTLP_ENDPOINT="http://$GRPC" OTEL_EXPORTER_OTLP_PROTOCOL=grpc \
    measure tracelab "$TRACELAB" load "$WORK/bench.yaml" --target "bench=$URL" --users "$CONNECTIONS" \
      --duration "${DURATION}s" --no-progress --out "$WORK/run")
  read -r xr xc xp xs <<<"$traced"
  printf 'tracing on: tracelab %.0f req/s (client CPU %.1f %%, %.2f µs per request and span); tracelab with tracing / wrk %.2f\n' \
    "$xr" "$xc" "$xp" "$(awk -v a="$xr" -v b="$W" 'BEGIN {print a / b}')"
else
  echo "tracing on: not measured (the receiver did not start)"
fi

# The throughput ratio is only fair when both clients saturate their cores and the server
# does not. Where the server cannot outrun the clients (one core each on a 2-core machine),
# the comparison that stays fair is each client's CPU per request: the same server answers
# both, so the one that spends less of its core per request is the faster client.
awk -v t="$T" -v w="$W" -v tc="$TC" -v wc="$WC" -v ts="$TS" -v ws="$WS" -v tp="$TP" -v wp="$WP" 'BEGIN {
  reason = ""
  if (tc < 95 || wc < 95) reason = sprintf("a client did not saturate its cores (tracelab %.1f %%, wrk %.1f %%)", tc, wc)
  if (ts >= 95 || ws >= 95) reason = sprintf("the server was the bottleneck (%.1f %% / %.1f %% of its cores)", ts, ws)
  if (reason == "") { printf "tracelab/wrk %.2f\n", t / w; exit 0 }
  printf "throughput ratio not measured: %s\n", reason
  printf "tracelab/wrk %.2f by client CPU per request (wrk %.2f µs / tracelab %.2f µs)\n", wp / tp, wp, tp }'
