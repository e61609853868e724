#!/usr/bin/env bash
# Peak memory of one big Series request (issue 9): `{__name__=~".+"}` over 10k series x 24 h
# at 15 s (57.6 M samples) through the store gateway (a FILESYSTEM bucket), and over a real
# Prometheus 2.42 holding 10k series x 2 h at 15 s through the sidecar (remote read, streamed
# chunks). Data: `querier/examples/bench_blocks` (the data set of the querier bench). For each:
# peak RSS (VmHWM) of the Strata process over its whole life, the request's figures from
# `strata-tools store series --stats`, then the same request with a series limit of 1,000, which
# must stop early with ResourceExhausted.
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
port() { echo $((20000 + RANDOM % 40000)); }
wait_ready() { # url pid
  for _ in $(seq 1 1200); do
    curl -sf "$1" >/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { echo "process $2 exited" >&2; return 1; }
    sleep 0.1
  done
  echo "not ready: $1" >&2
  return 1
}

# Runs the request against $1 and prints its --stats line (or the error).
request() {
  "$BIN/strata-tools" store series --endpoint="$1" --match='{__name__=~".+"}' --stats 2>&1 | tail -3 | tr '\n' ' '
}

# measure NAME PID GRPC: the request, then the peak RSS of PID.
measure() {
  local out
  out=$(request "$3" || true)
  echo "$1: peak RSS $(peak_mib "$2") MiB; request: $out"
}

echo "== store gateway: 10k series x 24 h" >&2
make_blocks 24 "$WORK/data24h"
for limit in 0 1000; do
  rm -rf "$WORK/gateway-data"
  grpc="127.0.0.1:$(port)" http="127.0.0.1:$(port)"
  "$BIN/strata-store-gateway" store --objstore.config="type: FILESYSTEM
config:
  directory: $WORK/data24h/bucket" --data-dir="$WORK/gateway-data" --grpc-address="$grpc" \
    --http-address="$http" --store.limits.request-series="$limit" --log.level=warn \
    >>"$WORK/gateway.log" 2>&1 &
  pid=$!
  wait_ready "http://$http/-/ready" "$pid"
  measure "store gateway, series limit $limit" "$pid" "$grpc"
  kill "$pid"; wait "$pid" || true
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
prom_port=$(port)
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prometheus" \
  --storage.tsdb.retention.time=20y --web.listen-address="127.0.0.1:$prom_port" \
  >"$WORK/prometheus.log" 2>&1 &
prom_pid=$!
wait_ready "http://127.0.0.1:$prom_port/-/ready" "$prom_pid"
for limit in 0 1000; do
  grpc="127.0.0.1:$(port)" http="127.0.0.1:$(port)"
  "$BIN/strata-sidecar" sidecar --prometheus.url="http://127.0.0.1:$prom_port" \
    --tsdb.path="$WORK/prometheus" --grpc-address="$grpc" --http-address="$http" \
    --store.limits.request-series="$limit" --log.level=warn >>"$WORK/sidecar.log" 2>&1 &
  pid=$!
  wait_ready "http://$http/-/ready" "$pid"
  measure "sidecar, series limit $limit" "$pid" "$grpc"
  kill "$pid"; wait "$pid" || true
done
kill "$prom_pid"; wait "$prom_pid" || true
