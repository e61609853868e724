#!/usr/bin/env bash
# Range-query latency and peak memory: strata-querier + strata-store-gateway versus Prometheus
# 2.42 on the same blocks, same machine, same run (issue 5's performance acceptance).
#
# Writes SERIES series x HOURS hours (15 s interval) as 2 h blocks with
# `examples/bench_blocks.rs`: one copy in a Prometheus data directory, one in a FILESYSTEM
# bucket with external labels. Starts Prometheus on the first, the store gateway on the second
# and the querier in front of the gateway, runs every query shape RUNS times against both HTTP
# APIs (range queries over the whole data at STEP), and prints the median latency of each and
# both processes' peak RSS (VmHWM).
#
# Usage (from the workspace root, after a release build):
#   cargo build --release -p strata-querier -p strata-store-gateway --bins
#   cargo build --release -p strata-querier --example bench_blocks
#   querier/bench/querier_vs_prometheus.sh [SERIES=10000] [HOURS=24] [RUNS=5] [STEP=60]
set -euo pipefail

SERIES=${1:-10000}
HOURS=${2:-24}
RUNS=${3:-5}
STEP=${4:-60}
TARGET=${CARGO_TARGET_DIR:-target}/${PROFILE:-release}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {  # url log
  for _ in $(seq 1 3000); do
    if curl -fs "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "not ready: $1; last log lines:" >&2; tail -20 "$2" >&2; return 1
}

GEN_STARTED=$(date +%s)
read -r START_MS END_MS < <("$TARGET/examples/bench_blocks" "$WORK" "$SERIES" "$HOURS" "$(date +%s)")
echo "blocks written in $(( $(date +%s) - GEN_STARTED ))s" >&2
START=$((START_MS / 1000 + 600)); END=$((END_MS / 1000 - 1))
echo "data: $SERIES series x $HOURS h, range [$START, $END] step ${STEP}s" >&2

PROM_PORT=$(free_port); SG_HTTP=$(free_port); SG_GRPC=$(free_port); Q_HTTP=$(free_port); Q_GRPC=$(free_port)
printf 'global: {}\n' > "$WORK/prometheus.yml"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom" \
  --storage.tsdb.retention.time=100y --web.listen-address="127.0.0.1:$PROM_PORT" \
  >"$WORK/prometheus.log" 2>&1 &
PROM_PID=$!; PIDS+=("$PROM_PID")
printf 'type: FILESYSTEM\nconfig:\n  directory: %s\n' "$WORK/bucket" > "$WORK/objstore.yml"
"$TARGET/strata-store-gateway" store --objstore.config-file="$WORK/objstore.yml" \
  --data-dir="$WORK/sg" --http-address="127.0.0.1:$SG_HTTP" --grpc-address="127.0.0.1:$SG_GRPC" \
  >"$WORK/sg.log" 2>&1 &
PIDS+=("$!")
"$TARGET/strata-querier" query --endpoint="127.0.0.1:$SG_GRPC" \
  --http-address="127.0.0.1:$Q_HTTP" --grpc-address="127.0.0.1:$Q_GRPC" \
  >"$WORK/querier.log" 2>&1 &
Q_PID=$!; PIDS+=("$Q_PID")
wait_ready "http://127.0.0.1:$PROM_PORT/-/ready" "$WORK/prometheus.log"
wait_ready "http://127.0.0.1:$SG_HTTP/-/ready" "$WORK/sg.log"
wait_ready "http://127.0.0.1:$Q_HTTP/-/ready" "$WORK/querier.log"
# The querier sees the gateway's blocks once its Info has been refreshed.
for _ in $(seq 1 100); do
  if curl -fs "http://127.0.0.1:$Q_HTTP/api/v1/stores" | grep -q '"lastError":null'; then break; fi
  sleep 0.2
done

QUERIES=(
  'sum(rate(bench_requests_total[5m]))'
  'sum by (job) (rate(bench_requests_total[5m]))'
  'histogram_quantile(0.99, sum by (le) (rate(bench_latency_seconds_bucket[5m])))'
  'topk(5, rate(bench_requests_total[5m]))'
  'sum(rate(bench_requests_total{code=~"5.."}[5m])) / sum(rate(bench_requests_total[5m]))'
)

median_seconds() {  # url-without-query query
  local base=$1 query=$2 times=()
  for _ in $(seq 1 "$RUNS"); do
    t=$(curl -s -o "$WORK/out.json" -w '%{time_total}' --data-urlencode "query=$query" \
      --data "start=$START&end=$END&step=$STEP" "$base/api/v1/query_range")
    grep -q '"status":"success"' "$WORK/out.json" || { echo "failed: $query: $(head -c 300 "$WORK/out.json")" >&2; exit 1; }
    times+=("$t")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

printf '%-95s %12s %12s %8s\n' query prometheus_s strata_s ratio
for query in "${QUERIES[@]}"; do
  p=$(median_seconds "http://127.0.0.1:$PROM_PORT" "$query")
  s=$(median_seconds "http://127.0.0.1:$Q_HTTP" "$query")
  printf '%-95s %12s %12s %8.2f\n' "$query" "$p" "$s" "$(echo "$s / $p" | bc -l)"
done
hwm() { awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' "/proc/$1/status"; }
echo "peak RSS: prometheus $(hwm "$PROM_PID"), strata-querier $(hwm "$Q_PID")"
