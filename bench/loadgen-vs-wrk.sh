#!/usr/bin/env bash
# Can loadgen push as hard as wrk?
#
# Serves one trivial endpoint (the bench crate's bare axum router,
# `mesh-overhead-server --mode plain`) and loads it, in one run and on the
# same connection count:
#   wrk            - wrk -t2, closed model: as fast as it answers
#   loadgen        - `loadgen bench`, closed model, the same
#   rate N         - `loadgen bench --rate N` for N = 10000 and 20000:
#                    open model; the achieved/target ratio shows whether
#                    loadgen keeps an arrival rate it should be able to
# The closed-model pair is interleaved over rounds (median reported) so
# drift on a shared machine hits both alike. Prints each rate and the ratio
# loadgen/wrk (target >= 0.80).
#
# Usage: bench/loadgen-vs-wrk.sh [seconds per run] [connections] [rounds]
# Needs wrk (Debian package `wrk`; installed if missing and we are root).
# Loopback only; stops by itself and kills what it started on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-10}
CONNECTIONS=${2:-32}
ROUNDS=${3:-3}
THREADS=2
PORT=18095
URL=http://127.0.0.1:$PORT/items/c0001

if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y --no-install-recommends wrk >/dev/null
  else
    echo "wrk is needed: apt-get install wrk" >&2
    exit 1
  fi
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet -p bench -p loadgen
BIN=$CARGO_TARGET_DIR/release

SERVER=
cleanup() {
  if [ -n "$SERVER" ]; then
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

RUST_LOG=warn "$BIN/mesh-overhead-server" --mode plain --port "$PORT" >/dev/null 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do
  curl -fs "$URL" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "$URL" >/dev/null || { echo "the endpoint does not answer: $URL" >&2; exit 1; }

wrk_rps() {
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "$URL")
  if echo "$out" | grep -q 'Non-2xx\|Socket errors'; then echo "wrk saw errors: $out" >&2; fi
  echo "$out" | awk '/Requests\/sec/ { printf "%.0f", $2 }'
}

# `loadgen bench` prints one `bench: key=value ...` line for scripts.
loadgen_line() { # [--rate N]
  "$BIN/loadgen" bench "$URL" --connections "$CONNECTIONS" --duration "${DURATION}s" "$@" 2>/dev/null |
    grep '^bench:'
}
field() { # line key
  echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'
}

wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "$URL" >/dev/null # warm-up

WRK=""
LOADGEN=""
printf "%-8s %-5s %10s %10s %10s\n" tool round req/s p50_ms p99_ms
for round in $(seq 1 "$ROUNDS"); do
  rps=$(wrk_rps)
  printf "%-8s %-5s %10s\n" wrk "$round" "$rps"
  WRK+="$rps "
  line=$(loadgen_line)
  rps=$(field "$line" rps)
  printf "%-8s %-5s %10.0f %10s %10s\n" loadgen "$round" "$rps" "$(field "$line" p50_ms)" "$(field "$line" p99_ms)"
  LOADGEN+="$rps "
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
M_WRK=$(echo "$WRK" | median)
M_LOADGEN=$(echo "$LOADGEN" | median)

echo
printf "%-12s %10s %10s %12s %9s %9s %12s\n" open-model target started/s achieved/tgt dropped p50_ms p99_ms
for rate in 10000 20000; do
  line=$(loadgen_line --rate "$rate")
  printf "%-12s %10s %10.0f %12s %9s %9s %12s\n" "rate $rate" "$rate" "$(field "$line" rps)" \
    "$(field "$line" achieved_ratio)" "$(field "$line" dropped)" "$(field "$line" p50_ms)" "$(field "$line" p99_ms)"
done

echo
echo "medians over $ROUNDS rounds of ${DURATION}s, $CONNECTIONS connections, wrk -t$THREADS, $(nproc) cores shared by server and client:"
awk -v w="$M_WRK" -v l="$M_LOADGEN" 'BEGIN {
  r = l / w
  printf "wrk: %.0f req/s, loadgen bench: %.0f req/s, loadgen/wrk: %.3f (target >= 0.80: %s)\n", w, l, r, r >= 0.80 ? "met" : "missed"
}'
echo "command: bench/loadgen-vs-wrk.sh $DURATION $CONNECTIONS $ROUNDS"
