#!/usr/bin/env bash
# CPU per request, per process, at fixed rates: courses GET by id, the
# gateway hop, the browse journey and the checkout journey, with telemetry
# off and on (exporting), on SQLite and on PostgreSQL. What it measures and
# how: bench/cpu_per_request.py; results: docs/performance.md.
#
# Usage: bench/cpu-per-request.sh [options of cpu_per_request.py]
#   e.g. bench/cpu-per-request.sh --seconds 10 --rates 1000,3000
#        bench/cpu-per-request.sh --databases sqlite --paths course,hop
# Needs PostgreSQL at $POSTGRES_ADMIN_URL (default
# postgres://postgres@127.0.0.1:5432/postgres) unless --databases sqlite,
# and nats-server for the checkout path (the launcher's broker). Loopback
# only; stops what it started when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet -p loadgen
exec python3 bench/cpu_per_request.py --bin "$CARGO_TARGET_DIR/release/loadgen" "$@"
