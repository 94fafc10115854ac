#!/usr/bin/env bash
# What does the mesh cost per request?
#
# Serves one JSON endpoint three ways, in turn, and loads each with wrk:
#   plain    - a bare axum router (the baseline, measured in the same run)
#   noexport - the same router inside the mesh's inbound stack, telemetry
#              on, spans made but not exported (OTEL_TRACES_EXPORTER=none)
#   mesh     - the same, every span exported over OTLP/gRPC to
#              `loadgen receive` (which runs on the same two cores)
# and prints throughput, latency and memory per mode, and ratios to plain.
#
# Usage: bench/mesh-overhead.sh [seconds per run] [rounds] [connections]
# Needs wrk (Debian package `wrk`). Loopback only; stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-10}
ROUNDS=${2:-3}
CONNECTIONS=${3:-32}
PORT=18090
OTLP_GRPC=127.0.0.1:14317
OTLP_HTTP=127.0.0.1:14318

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet -p bench -p loadgen
BIN=target/release

"$BIN/loadgen" receive --grpc "$OTLP_GRPC" --http "$OTLP_HTTP" --keep 1000 >/tmp/mesh-overhead-receiver.log 2>&1 &
RECEIVER=$!
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  kill "$RECEIVER" 2>/dev/null || true
}
trap cleanup EXIT

run() { # mode -> "rps p50_ms p99_ms rss_kib"
  local mode=$1 server_mode=mesh exporter=otlp
  case $mode in
    plain) server_mode=plain ;;
    noexport) exporter=none ;;
  esac
  OTEL_EXPORTER_OTLP_ENDPOINT=http://$OTLP_GRPC OTEL_EXPORTER_OTLP_PROTOCOL=grpc \
    OTEL_TRACES_EXPORTER=$exporter RUST_LOG=warn \
    "$BIN/mesh-overhead-server" --mode "$server_mode" --port "$PORT" >/dev/null 2>&1 &
  SERVER=$!
  for _ in $(seq 1 50); do
    curl -fs "http://127.0.0.1:$PORT/items/c0001" >/dev/null 2>&1 && break
    sleep 0.1
  done
  wrk -t1 -c"$CONNECTIONS" -d2s "http://127.0.0.1:$PORT/items/c0001" >/dev/null # warm-up
  local out
  out=$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "http://127.0.0.1:$PORT/items/c0001")
  local rss
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER/status")
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
  SERVER=
  echo "$out" | awk -v rss="$rss" '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    END { printf "%.0f %.3f %.3f %d\n", rps, p50, p99, rss }'
}

MODES="plain noexport mesh"
declare -A RPS P50 P99 RSS
for mode in $MODES; do RPS[$mode]=""; P50[$mode]=""; P99[$mode]=""; RSS[$mode]=""; done
printf "%-8s %-5s %10s %9s %9s %9s\n" mode round req/s p50_ms p99_ms rss_kib
for round in $(seq 1 "$ROUNDS"); do
  for mode in $MODES; do
    read -r rps p50 p99 rss < <(run "$mode")
    printf "%-8s %-5s %10s %9s %9s %9s\n" "$mode" "$round" "$rps" "$p50" "$p99" "$rss"
    RPS[$mode]+="$rps "; P50[$mode]+="$p50 "; P99[$mode]+="$p99 "; RSS[$mode]+="$rss "
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo
echo "medians over $ROUNDS rounds of ${DURATION}s, $CONNECTIONS connections, wrk 1 thread, $(nproc) cores:"
for mode in $MODES; do
  printf "  %-8s %10s req/s  p50 %s ms  p99 %s ms  rss %s KiB\n" "$mode" \
    "$(echo "${RPS[$mode]}" | median)" "$(echo "${P50[$mode]}" | median)" \
    "$(echo "${P99[$mode]}" | median)" "$(echo "${RSS[$mode]}" | median)"
done
for mode in noexport mesh; do
  awk -v m="$mode" -v pr="$(echo "${RPS[plain]}" | median)" -v mr="$(echo "${RPS[$mode]}" | median)" \
      -v pp="$(echo "${P99[plain]}" | median)" -v mp="$(echo "${P99[$mode]}" | median)" \
      'BEGIN { printf "  %s/plain: throughput %.2f, p99 latency %.2f\n", m, mr/pr, mp/pp }'
done
