#!/usr/bin/env bash
# Peak memory of one big Series request (issue 9): `{__name__=~".+"}` over 10k series x 24 h
# at 15 s (57.6 M samples) through the store gateway (a FILESYSTEM bucket), and over a real
# Prometheus 2.42 holding 10k series x 2 h at 15 s through the sidecar (remote read, streamed
# chunks). Data: `querier/examples/bench_blocks` (the data set of the querier bench). For each:
# peak RSS (VmHWM) of the Strata process over its whole life, the request's figures from
# `strata-tools store series --stats`, then the same request with a series limit of 1,000, which
# must stop early with ResourceExhausted. Without a limit the gateway answers the request four
# times in a row (peak RSS after each: the cache is full after the first).
#
# Usage: scripts/bench-series-memory.sh [work dir]   (builds the release binaries it needs;
# CARGO_TARGET_DIR honoured; needs prometheus, see scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p strata-store-gateway -p strata-sidecar -p strata-tools >&2
cargo build --release --locked -p strata-querier --example bench_blocks >&2
BIN="${CARGO_TARGET_DIR:-target}/release"
WORK="${1:-$(mktemp -d /tmp/strata-series-memory.XXXXXX)}"
mkdir -p "$WORK"
echo "work dir: $WORK" >&2
END_S=$(date +%s)

# Blocks of 10k series over $1 hours ending now, in $2/prom (Prometheus) and $2/bucket.
make_blocks() {
  if [ -d "$2" ]; then return; fi
  "$BIN/examples/bench_blocks" "$2" 10000 "$1" "$END_S" >/dev/null
}

peak_mib() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# Starts a Strata service ($1: binary, then its flags) on port 0 with its log in $LOG, waits
# until it is ready and sets PID and GRPC (the bound address, read from the log).
start_service() {
  local binary=$1
  shift
  : >"$LOG"
  "$BIN/$binary" "$@" --grpc-address=127.0.0.1:0 --http-address=127.0.0.1:0 --log.level=info \
    >"$LOG" 2>&1 &
  PID=$!
  local http=""
  for _ in $(seq 1 1200); do
    kill -0 "$PID" 2>/dev/null || { echo "$binary exited:" >&2; cat "$LOG" >&2; return 1; }
    http=$(grep -o 'listening for HTTP" address=[0-9.:]*' "$LOG" | sed 's/.*address=//' | head -1 || true)
    GRPC=$(grep -o 'listening for gRPC" address=[0-9.:]*' "$LOG" | sed 's/.*address=//' | head -1 || true)
    if [ -n "$http" ] && [ -n "$GRPC" ] && curl -sf "http://$http/-/ready" >/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "$binary not ready" >&2
  return 1
}

# Runs the request against $1 and prints its --stats line (or the error).
request() {
  "$BIN/strata-tools" store series --endpoint="$1" --match='{__name__=~".+"}' --stats 2>&1 | tail -3 | tr '\n' ' '
}

# measure NAME: the request against GRPC, then the peak RSS of PID.
measure() {
  local out
  out=$(request "$GRPC" || true)
  echo "$1: peak RSS $(peak_mib "$PID") MiB; request: $out"
}

echo "== store gateway: 10k series x 24 h" >&2
make_blocks 24 "$WORK/data24h"
LOG="$WORK/gateway.log"
for caches in default off; do
  for limit in 0 1000; do
    rm -rf "$WORK/gateway-data"
    cache_flags=()
    [ "$caches" = off ] && cache_flags=(--chunk-pool-size=0 --index-cache-size=0)
    start_service strata-store-gateway store --objstore.config="type: FILESYSTEM
config:
  directory: $WORK/data24h/bucket" --data-dir="$WORK/gateway-data" \
      --store.limits.request-series="$limit" "${cache_flags[@]}"
    measure "store gateway, caches $caches, series limit $limit"
    if [ "$limit" = 0 ]; then
      # The same request three more times on the same process: caches filled, memory reused.
      for run in 2 3 4; do measure "  same gateway, request $run"; done
    fi
    kill "$PID"; wait "$PID" || true
  done
done

echo "== sidecar: Prometheus with 10k series x 2 h" >&2
make_blocks 2 "$WORK/data2h"
rm -rf "$WORK/prometheus" && mkdir -p "$WORK/prometheus"
cp -al "$WORK"/data2h/prom/01* "$WORK/prometheus/"
cat >"$WORK/prometheus.yml" <<'EOF'
global:
  external_labels:
    cluster: bench
EOF
# Prometheus cannot report a port it picked itself: try random ones until one binds.
for _ in 1 2 3 4 5; do
  prom_port=$((20000 + RANDOM % 40000))
  prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prometheus" \
    --storage.tsdb.retention.time=20y --web.listen-address="127.0.0.1:$prom_port" \
    >"$WORK/prometheus.log" 2>&1 &
  prom_pid=$!
  ready=""
  for _ in $(seq 1 600); do
    kill -0 "$prom_pid" 2>/dev/null || break
    if curl -sf "http://127.0.0.1:$prom_port/-/ready" >/dev/null; then ready=1; break; fi
    sleep 0.1
  done
  [ -n "$ready" ] && break
  kill "$prom_pid" 2>/dev/null || true
done
[ -n "$ready" ] || { echo "prometheus did not start" >&2; cat "$WORK/prometheus.log" >&2; exit 1; }
LOG="$WORK/sidecar.log"
for limit in 0 1000; do
  start_service strata-sidecar sidecar --prometheus.url="http://127.0.0.1:$prom_port" \
    --tsdb.path="$WORK/prometheus" --store.limits.request-series="$limit"
  measure "sidecar, series limit $limit"
  kill "$PID"; wait "$PID" || true
done
kill "$prom_pid"; wait "$prom_pid" || true
