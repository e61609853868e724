#!/usr/bin/env bash
# Range-query latency, CPU time and peak memory of three systems on the same samples, same
# machine, same run (issues 5 and 13):
#   prometheus  Prometheus 2.42 on the blocks as Prometheus writes them;
#   strata      strata-querier in front of strata-store-gateway on the same blocks in a
#               FILESYSTEM bucket, one block per cluster per 2 h with `cluster` as external label;
#   vm          VictoriaMetrics single-node (Debian's victoria-metrics 1.79) holding the same
#               samples, imported through /api/v1/import (its rollup cache off, so repeated runs
#               measure queries rather than the cache).
#
# Data: SERIES series x HOURS hours at 15 s over CLUSTERS clusters (`examples/bench_blocks.rs`).
# Every query shape runs at every step in STEPS, RUNS times per system, the systems alternating
# within each run. Per query and system it prints the median latency, the median CPU seconds
# (utime + stime of the serving processes; strata = querier + gateway), the peak RSS while that
# query ran (VmHWM reset through /proc/PID/clear_refs before it; strata = the querier's, the
# gateway's in its own column), the ratio strata/prometheus and vm/prometheus, and whether
# each answer equals Prometheus's (same series, values within 1e-9 relative). VictoriaMetrics'
# MetricsQL differs from PromQL by design (rate extrapolation, lookback): its differences are
# reported, not failures. A summary line gives the median and worst strata/prometheus ratio
# and the peak RSS of every process over the whole run.
#
# Usage (from the workspace root):
#   cargo build --release -p strata-querier -p strata-store-gateway --bins
#   cargo build --release -p strata-querier --example bench_blocks
#   querier/bench/querier_vs_prometheus.sh [SERIES=10000] [HOURS=24] [RUNS=5] [STEPS=15,60] [CLUSTERS=4]
# Without a `victoria-metrics` binary (apt-get install victoria-metrics) the vm columns say n/a.
# BENCH_ONLY=regex runs only the query shapes matching it.
set -euo pipefail

SERIES=${1:-10000}
HOURS=${2:-24}
RUNS=${3:-5}
STEPS=${4:-15,60}
CLUSTERS=${5:-4}
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

NOW=$(date +%s)
GEN_STARTED=$(date +%s)
read -r START_MS END_MS < <("$TARGET/examples/bench_blocks" "$WORK" "$SERIES" "$HOURS" "$NOW" "$CLUSTERS")
echo "blocks written in $(( $(date +%s) - GEN_STARTED ))s" >&2
START=$((START_MS / 1000 + 600)); END=$((END_MS / 1000 - 1))
echo "data: $SERIES series x $HOURS h over $CLUSTERS clusters, range [$START, $END], steps $STEPS s" >&2

PROM_PORT=$(free_port); SG_HTTP=$(free_port); SG_GRPC=$(free_port); Q_HTTP=$(free_port); Q_GRPC=$(free_port)
printf 'global: {}\n' > "$WORK/prometheus.yml"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom" \
  --storage.tsdb.retention.time=100y --web.listen-address="127.0.0.1:$PROM_PORT" \
  --query.max-samples=2000000000 >"$WORK/prometheus.log" 2>&1 &
PROM_PID=$!; PIDS+=("$PROM_PID")
printf 'type: FILESYSTEM\nconfig:\n  directory: %s\n' "$WORK/bucket" > "$WORK/objstore.yml"
"$TARGET/strata-store-gateway" store --objstore.config-file="$WORK/objstore.yml" \
  --data-dir="$WORK/sg" --http-address="127.0.0.1:$SG_HTTP" --grpc-address="127.0.0.1:$SG_GRPC" \
  >"$WORK/sg.log" 2>&1 &
SG_PID=$!; PIDS+=("$SG_PID")
"$TARGET/strata-querier" query --endpoint="127.0.0.1:$SG_GRPC" \
  --http-address="127.0.0.1:$Q_HTTP" --grpc-address="127.0.0.1:$Q_GRPC" \
  --query.max-samples=2000000000 >"$WORK/querier.log" 2>&1 &
Q_PID=$!; PIDS+=("$Q_PID")

VM_PID=""
if command -v victoria-metrics >/dev/null 2>&1; then
  VM_PORT=$(free_port)
  victoria-metrics -storageDataPath="$WORK/vm" -retentionPeriod=100y \
    -httpListenAddr="127.0.0.1:$VM_PORT" -search.disableCache -search.maxPointsPerTimeseries=1000000 \
    -search.maxSamplesPerQuery=2000000000 -search.maxUniqueTimeseries=10000000 \
    >"$WORK/vm.log" 2>&1 &
  VM_PID=$!; PIDS+=("$VM_PID")
  wait_ready "http://127.0.0.1:$VM_PORT/health" "$WORK/vm.log"
  IMPORT_STARTED=$(date +%s)
  "$TARGET/examples/bench_blocks" --vm-jsonl "$SERIES" "$HOURS" "$NOW" "$CLUSTERS" |
    curl -fsS -X POST -H 'Content-Type: application/json' -T - \
      "http://127.0.0.1:$VM_PORT/api/v1/import"
  curl -fsS "http://127.0.0.1:$VM_PORT/internal/force_flush" >/dev/null
  echo "victoria-metrics import: $(( $(date +%s) - IMPORT_STARTED ))s" >&2
else
  echo "victoria-metrics not found (apt-get install victoria-metrics): vm columns are n/a" >&2
fi

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
  'sum by (cluster) (rate(bench_requests_total[5m]))'
  'sum(rate(bench_requests_total{code=~"5.."}[5m])) / sum(rate(bench_requests_total[5m]))'
  'histogram_quantile(0.99, sum by (le) (rate(bench_latency_seconds_bucket[5m])))'
  'topk(5, rate(bench_requests_total[5m]))'
  'sum by (job) (avg_over_time(bench_requests_total[10m]))'
  'count by (cluster, job) (bench_requests_total)'
  'max_over_time(sum(rate(bench_requests_total[5m]))[30m:1m])'
)

# CPU seconds (utime + stime) of the processes given.
cpu_seconds() {
  local total=0 pid ticks
  for pid in "$@"; do
    ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    total=$((total + ticks))
  done
  echo "$total $(getconf CLK_TCK)" | awk '{printf "%.3f", $1 / $2}'
}
reset_peak() { for pid in "$@"; do echo 5 > "/proc/$pid/clear_refs" 2>/dev/null || true; done; }
hwm_mib() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print "n/a"; else print a[int((NR+1)/2)]}'; }

# run SYSTEM BASE_URL QUERY STEP: one timed run, appending "seconds cpu" to $WORK/SYSTEM.times
# and leaving the answer in $WORK/SYSTEM.json.
run_once() {
  local system=$1 base=$2 query=$3 step=$4 pids=() cpu_before cpu_after t
  case $system in
    prometheus) pids=("$PROM_PID") ;;
    strata) pids=("$Q_PID" "$SG_PID") ;;
    vm) pids=("$VM_PID") ;;
  esac
  cpu_before=$(cpu_seconds "${pids[@]}")
  t=$(curl -s -o "$WORK/$system.json" -w '%{time_total}' --data-urlencode "query=$query" \
    --data "start=$START&end=$END&step=$step" "$base/api/v1/query_range")
  cpu_after=$(cpu_seconds "${pids[@]}")
  grep -q '"status":"success"' "$WORK/$system.json" ||
    { echo "failed on $system: $query: $(head -c 300 "$WORK/$system.json")" >&2; exit 1; }
  echo "$t $(echo "$cpu_after - $cpu_before" | bc -l)" >> "$WORK/$system.times"
}

# Compares $WORK/$1.json with $WORK/prometheus.json: "same" or what differs.
compare() {
  python3 - "$WORK/prometheus.json" "$WORK/$1.json" <<'EOF'
import json, math, sys
def load(path):
    out = {}
    for series in json.load(open(path))["data"]["result"]:
        key = tuple(sorted(series["metric"].items()))
        out[key] = {int(round(float(t) * 1000)): float(v) for t, v in series["values"]}
    return out
want, got = load(sys.argv[1]), load(sys.argv[2])
if set(want) != set(got):
    print("series differ (%d vs %d, %d in common)" % (len(want), len(got), len(set(want) & set(got))))
    sys.exit()
points = worst = 0
for key, values in want.items():
    other = got[key]
    if set(values) != set(other):
        print("timestamps differ")
        sys.exit()
    for t, v in values.items():
        w = other[t]
        if math.isnan(v) and math.isnan(w):
            continue
        err = abs(v - w) / max(abs(v), abs(w), 1e-300)
        if err > 1e-9:
            points += 1
            worst = max(worst, err)
print("same" if points == 0 else "%d points differ (max rel %.2g)" % (points, worst))
EOF
}

RATIOS="$WORK/ratios"
: > "$RATIOS"
printf '%-88s %4s | %8s %7s %6s | %8s %7s %6s %6s %5s | %8s %7s %6s %5s | %s\n' \
  query step prom_s cpu_s rss strata_s cpu_s q_rss sg_rss ratio vm_s cpu_s rss ratio answers
IFS=',' read -r -a STEP_LIST <<< "$STEPS"
for step in "${STEP_LIST[@]}"; do
  for query in "${QUERIES[@]}"; do
    if [ -n "${BENCH_ONLY:-}" ] && ! grep -qE "$BENCH_ONLY" <<< "$query"; then continue; fi
    rm -f "$WORK"/*.times
    reset_peak "$PROM_PID" "$Q_PID" "$SG_PID" ${VM_PID:+"$VM_PID"}
    for _ in $(seq 1 "$RUNS"); do
      run_once prometheus "http://127.0.0.1:$PROM_PORT" "$query" "$step"
      run_once strata "http://127.0.0.1:$Q_HTTP" "$query" "$step"
      if [ -n "$VM_PID" ]; then run_once vm "http://127.0.0.1:$VM_PORT" "$query" "$step"; fi
    done
    p_s=$(awk '{print $1}' "$WORK/prometheus.times" | median); p_cpu=$(awk '{print $2}' "$WORK/prometheus.times" | median)
    s_s=$(awk '{print $1}' "$WORK/strata.times" | median); s_cpu=$(awk '{print $2}' "$WORK/strata.times" | median)
    ratio=$(echo "$s_s / $p_s" | bc -l)
    echo "$ratio" >> "$RATIOS"
    answers="strata: $(compare strata)"
    v_s=n/a; v_cpu=n/a; v_rss=n/a; v_ratio=n/a
    if [ -n "$VM_PID" ]; then
      v_s=$(awk '{print $1}' "$WORK/vm.times" | median | xargs printf '%.3f'); v_cpu=$(awk '{print $2}' "$WORK/vm.times" | median)
      v_rss=$(hwm_mib "$VM_PID"); v_ratio=$(printf '%.2f' "$(echo "$v_s / $p_s" | bc -l)")
      answers="$answers; vm: $(compare vm)"
    fi
    hwm_mib "$PROM_PID" >> "$WORK/peak.prometheus"; echo >> "$WORK/peak.prometheus"
    hwm_mib "$Q_PID" >> "$WORK/peak.querier"; echo >> "$WORK/peak.querier"
    hwm_mib "$SG_PID" >> "$WORK/peak.gateway"; echo >> "$WORK/peak.gateway"
    if [ -n "$VM_PID" ]; then hwm_mib "$VM_PID" >> "$WORK/peak.vm"; echo >> "$WORK/peak.vm"; fi
    printf '%-88s %4s | %8.3f %7s %6s | %8.3f %7s %6s %6s %5.2f | %8s %7s %6s %5s | %s\n' \
      "$query" "$step" "$p_s" "$p_cpu" "$(hwm_mib "$PROM_PID")" "$s_s" "$s_cpu" \
      "$(hwm_mib "$Q_PID")" "$(hwm_mib "$SG_PID")" "$ratio" "$v_s" "$v_cpu" "$v_rss" "$v_ratio" "$answers"
  done
done
echo "strata/prometheus ratio: median $(median < "$RATIOS" | xargs printf '%.2f'), worst $(sort -n "$RATIOS" | tail -1 | xargs printf '%.2f')"
echo "peak RSS over the run (MiB): prometheus $(sort -n "$WORK/peak.prometheus" | tail -1), strata-querier $(sort -n "$WORK/peak.querier" | tail -1), strata-store-gateway $(sort -n "$WORK/peak.gateway" | tail -1)${VM_PID:+, victoria-metrics $(sort -n "$WORK/peak.vm" 2>/dev/null | tail -1)}"
