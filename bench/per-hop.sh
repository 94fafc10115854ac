#!/usr/bin/env bash
# What does one hop through the mesh cost?
#
# Starts the real services (release build) and measures one request path
# three ways, interleaved over rounds in one run so drift hits every mode
# alike:
#   direct   - wrk -> courses  GET /courses/c0001       (telemetry on,
#              spans exported over OTLP/gRPC to `loadgen receive`)
#   mesh     - wrk -> gateway  GET /api/courses/c0001 -> courses, both with
#              full telemetry (spans exported, RED metrics on)
#   mesh-off - the same hop with OTEL_SDK_DISABLED=true and
#              METRICS_ENABLED=false in both services
#   mesh-noexport - the same hop with spans made and metrics on, but no
#              span export (OTEL_TRACES_EXPORTER=none): what the mesh's
#              instrumentation costs without a collector on the same cores
# For each: throughput at saturation (wrk) and latency at low load
# (`hop-latency`: one connection, one request at a time, HdrHistogram).
# Then: throughput mesh/mesh-off (target >= 0.90) and the p50 a hop adds,
# mesh - direct (target <= 50 us), and mesh-off - direct.
#
# Usage: bench/per-hop.sh [seconds per wrk run] [rounds] [connections] [seconds of low-load latency]
# Needs wrk (Debian package `wrk`). Loopback only; stops by itself and
# kills what it started on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-10}
ROUNDS=${2:-3}
CONNECTIONS=${3:-32}
LATENCY_SECONDS=${4:-5}
THREADS=2
OTLP_GRPC=127.0.0.1:14317
OTLP_HTTP=127.0.0.1:14318
COURSES_ON=18111   # telemetry on: the direct target and the mesh's upstream
COURSES_OFF=18112  # telemetry off: mesh-off's upstream
GATEWAY_ON=18121
GATEWAY_OFF=18122
COURSES_NX=18113   # spans made, not exported: mesh-noexport's upstream
GATEWAY_NX=18123
NOWHERE=http://127.0.0.1:18199 # users, payments, progress: never called here
COURSE=c0001

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet -p bench -p loadgen
BIN=$CARGO_TARGET_DIR/release
WORK=$(mktemp -d)

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Telemetry settings per mode, as environment.
ON=(OTEL_EXPORTER_OTLP_ENDPOINT="http://$OTLP_GRPC" OTEL_EXPORTER_OTLP_PROTOCOL=grpc METRICS_ENABLED=true)
OFF=(OTEL_SDK_DISABLED=true METRICS_ENABLED=false)
NX=(OTEL_TRACES_EXPORTER=none METRICS_ENABLED=true)
# The bench measures the hop, not the guards: no shedding, no rate limit,
# no per-client cap on requests in flight (wrk's connections are one client).
COMMON=(RUST_LOG=warn CONCURRENCY_LIMIT=0 RATE_LIMIT_PER_SECOND=0 CONCURRENCY_LIMIT_PER_CLIENT=0)

start() { # name env... -- args...
  local name=$1; shift
  local env=()
  while [ "$1" != -- ]; do env+=("$1"); shift; done
  shift
  env "${COMMON[@]}" "${env[@]}" "$BIN/loadgen" "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
}

wait_ready() { # url
  for _ in $(seq 1 100); do
    curl -fs "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "not ready: $1" >&2
  exit 1
}

start receiver -- receive --grpc "$OTLP_GRPC" --http "$OTLP_HTTP" --keep 1000
start courses-on "${ON[@]}" -- serve courses --port "$COURSES_ON" --database-url "sqlite://$WORK/courses-on.db"
start courses-off "${OFF[@]}" -- serve courses --port "$COURSES_OFF" --database-url "sqlite://$WORK/courses-off.db"
start courses-nx "${NX[@]}" -- serve courses --port "$COURSES_NX" --database-url "sqlite://$WORK/courses-nx.db"
for url in "http://127.0.0.1:$COURSES_ON/readyz" "http://127.0.0.1:$COURSES_OFF/readyz" "http://127.0.0.1:$COURSES_NX/readyz"; do wait_ready "$url"; done
start gateway-on "${ON[@]}" -- serve gateway --port "$GATEWAY_ON" \
  --courses-url "http://127.0.0.1:$COURSES_ON" --users-url "$NOWHERE" --payments-url "$NOWHERE" --progress-url "$NOWHERE"
start gateway-off "${OFF[@]}" -- serve gateway --port "$GATEWAY_OFF" \
  --courses-url "http://127.0.0.1:$COURSES_OFF" --users-url "$NOWHERE" --payments-url "$NOWHERE" --progress-url "$NOWHERE"
start gateway-nx "${NX[@]}" -- serve gateway --port "$GATEWAY_NX" \
  --courses-url "http://127.0.0.1:$COURSES_NX" --users-url "$NOWHERE" --payments-url "$NOWHERE" --progress-url "$NOWHERE"
for url in "http://127.0.0.1:$GATEWAY_ON/readyz" "http://127.0.0.1:$GATEWAY_OFF/readyz" "http://127.0.0.1:$GATEWAY_NX/readyz"; do wait_ready "$url"; done

url_of() {
  case $1 in
    direct) echo "http://127.0.0.1:$COURSES_ON/courses/$COURSE" ;;
    mesh) echo "http://127.0.0.1:$GATEWAY_ON/api/courses/$COURSE" ;;
    mesh-off) echo "http://127.0.0.1:$GATEWAY_OFF/api/courses/$COURSE" ;;
    mesh-noexport) echo "http://127.0.0.1:$GATEWAY_NX/api/courses/$COURSE" ;;
  esac
}
MODES="direct mesh mesh-off mesh-noexport"
for mode in $MODES; do curl -fs "$(url_of "$mode")" >/dev/null || { echo "$mode: $(url_of "$mode") fails" >&2; exit 1; }; done

run() { # mode -> "rps p50_us p90_us p99_us"
  local url out rps
  url=$(url_of "$1")
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "$url" >/dev/null # warm-up
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "$url")
  if echo "$out" | grep -q 'Non-2xx'; then echo "$1: wrk saw errors: $out" >&2; exit 1; fi
  rps=$(echo "$out" | awk '/Requests\/sec/ { printf "%.0f", $2 }')
  read -r _ p50 p90 p99 _ < <("$BIN/hop-latency" --url "$url" --duration "${LATENCY_SECONDS}s")
  echo "$rps $p50 $p90 $p99"
}

declare -A RPS P50 P90 P99
for mode in $MODES; do RPS[$mode]=""; P50[$mode]=""; P90[$mode]=""; P99[$mode]=""; done
printf "%-9s %-5s %10s %8s %8s %8s\n" mode round req/s p50_us p90_us p99_us
for round in $(seq 1 "$ROUNDS"); do
  for mode in $MODES; do
    read -r rps p50 p90 p99 < <(run "$mode")
    printf "%-9s %-5s %10s %8s %8s %8s\n" "$mode" "$round" "$rps" "$p50" "$p90" "$p99"
    RPS[$mode]+="$rps "; P50[$mode]+="$p50 "; P90[$mode]+="$p90 "; P99[$mode]+="$p99 "
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
declare -A M_RPS M_P50
echo
echo "medians over $ROUNDS rounds: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s (saturation);"
echo "low load: one connection, sequential requests, ${LATENCY_SECONDS}s; $(nproc) cores shared by wrk and the services"
printf "| %-8s | %8s | %8s | %8s | %8s |\n" mode req/s p50_us p90_us p99_us
for mode in $MODES; do
  M_RPS[$mode]=$(echo "${RPS[$mode]}" | median)
  M_P50[$mode]=$(echo "${P50[$mode]}" | median)
  printf "| %-8s | %8s | %8s | %8s | %8s |\n" "$mode" "${M_RPS[$mode]}" "${M_P50[$mode]}" \
    "$(echo "${P90[$mode]}" | median)" "$(echo "${P99[$mode]}" | median)"
done
awk -v on="${M_RPS[mesh]}" -v off="${M_RPS[mesh-off]}" -v nx="${M_RPS[mesh-noexport]}" -v d="${M_P50[direct]}" \
    -v m="${M_P50[mesh]}" -v o="${M_P50[mesh-off]}" 'BEGIN {
  r = on / off
  printf "throughput mesh/mesh-off: %.3f (target >= 0.90: %s)\n", r, r >= 0.90 ? "met" : "missed"
  printf "throughput mesh-noexport/mesh-off: %.3f (instrumentation without the co-located collector)\n", nx / off
  printf "p50 added by the hop, telemetry on  (mesh - direct):     %d us (target <= 50 us: %s)\n", m - d, m - d <= 50 ? "met" : "missed"
  printf "p50 added by the hop, telemetry off (mesh-off - direct): %d us\n", o - d
}'
spans=$(grep -o '[0-9]* spans received' "$WORK/receiver.log" | tail -1 || true)
echo "receiver: ${spans:-no report yet} (reported every 5 s)"
echo "command: bench/per-hop.sh $DURATION $ROUNDS $CONNECTIONS $LATENCY_SECONDS"
