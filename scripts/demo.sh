#!/usr/bin/env bash
# The main job: a local multi-cluster Strata on the embedded default (a FILESYSTEM bucket under
# .demo/). Three real Prometheus 2.42 servers, cluster "a" as an HA pair (replica 0 and 1) and
# cluster "b", each scraping every second with a strata-sidecar beside it shipping to the bucket;
# the store gateway on that bucket; the querier on 127.0.0.1:9090 deduplicating by `replica`.
# It prints the answer of
#   sum by (cluster) (rate(prometheus_http_requests_total[5m]))
# for both clusters and the UI address, then runs until Ctrl-C, which stops everything.
# STRATA_DEMO_ONCE=1 stops right after the answer (for scripted runs).
# It installs what it needs and builds Strata first. scripts/demo-offline.sh shows the block
# tools (dump, rewrite, bucket ls, offline PromQL) on backfilled data instead.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
demo="$root/.demo/multi-cluster"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
bin="$CARGO_TARGET_DIR/debug"

./scripts/install-deps.sh
echo "== building Strata"
cargo build --workspace --bins --locked -q

pids=()
cleanup() {
  echo; echo "== stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 0' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {
  for _ in $(seq 1 300); do
    if curl -fs "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "not ready: $1" >&2; exit 1
}

rm -rf "$demo" && mkdir -p "$demo/bucket"
printf 'type: FILESYSTEM\nconfig:\n  directory: %s\n' "$demo/bucket" > "$demo/objstore.yml"
endpoints=()
declare -A ports
for member in a:0 a:1 b:0; do ports[$member]=$(free_port); done
# Like a real HA pair, both replicas of cluster a scrape the same targets (both a servers).
targets_a="\"127.0.0.1:${ports[a:0]}\", \"127.0.0.1:${ports[a:1]}\""
targets_b="\"127.0.0.1:${ports[b:0]}\""
for member in a:0 a:1 b:0; do
  cluster=${member%%:*}; replica=${member##*:}
  dir="$demo/prom-$cluster-$replica"; mkdir -p "$dir/data"
  port=${ports[$member]}; sc_http=$(free_port); sc_grpc=$(free_port)
  if [ "$cluster" = a ]; then targets=$targets_a; else targets=$targets_b; fi
  cat > "$dir/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  external_labels: {cluster: "$cluster", replica: "$replica"}
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: [$targets]}]
YML
  /usr/bin/prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address="127.0.0.1:$port" --storage.tsdb.min-block-duration=2h \
    --storage.tsdb.max-block-duration=2h >"$dir/prometheus.log" 2>&1 &
  pids+=("$!")
  wait_ready "http://127.0.0.1:$port/-/ready"
  "$bin/strata-sidecar" sidecar --prometheus.url="http://127.0.0.1:$port" --tsdb.path="$dir/data" \
    --objstore.config-file="$demo/objstore.yml" --http-address="127.0.0.1:$sc_http" \
    --grpc-address="127.0.0.1:$sc_grpc" >"$dir/sidecar.log" 2>&1 &
  pids+=("$!")
  wait_ready "http://127.0.0.1:$sc_http/-/ready"
  endpoints+=("--endpoint=127.0.0.1:$sc_grpc")
  echo "== cluster $cluster replica $replica: prometheus :$port, sidecar grpc :$sc_grpc"
done

sg_http=$(free_port); sg_grpc=$(free_port)
"$bin/strata-store-gateway" store --objstore.config-file="$demo/objstore.yml" --data-dir="$demo/store" \
  --http-address="127.0.0.1:$sg_http" --grpc-address="127.0.0.1:$sg_grpc" >"$demo/store.log" 2>&1 &
pids+=("$!")
wait_ready "http://127.0.0.1:$sg_http/-/ready"
endpoints+=("--endpoint=127.0.0.1:$sg_grpc")
echo "== store gateway grpc :$sg_grpc"

# The querier takes Prometheus's port, 9090, unless something (say Debian's own Prometheus
# service) already holds it.
q_port=9090
if ! python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1])))' "$q_port" 2>/dev/null; then
  q_port=$(free_port)
  echo "== port 9090 is taken on this machine; the querier uses $q_port instead"
fi
q="http://127.0.0.1:$q_port"
"$bin/strata-querier" query "${endpoints[@]}" --query.replica-label=replica \
  --http-address="127.0.0.1:$q_port" --grpc-address="127.0.0.1:$(free_port)" >"$demo/querier.log" 2>&1 &
pids+=("$!")
wait_ready "$q/-/ready"

query='sum by (cluster) (rate(prometheus_http_requests_total[5m]))'
echo "== waiting for a few scrapes, then: $query"
for _ in $(seq 1 60); do
  sleep 1
  answer=$(curl -fs --data-urlencode "query=$query" $q/api/v1/query || true)
  if python3 -c 'import json,sys; r=json.loads(sys.argv[1])["data"]["result"]; sys.exit(0 if {s["metric"].get("cluster") for s in r} >= {"a","b"} else 1)' "$answer" 2>/dev/null; then
    break
  fi
done
python3 -c '
import json, sys
body = json.loads(sys.argv[1])
for s in body["data"]["result"]:
    print("  cluster=%s  %s" % (s["metric"].get("cluster"), s["value"][1]))
for w in body.get("warnings", []):
    print("  warning:", w)
' "$answer"
echo "== UI: $q/graph   (stores: $q/stores)"
[ "${STRATA_DEMO_ONCE:-0}" = 1 ] && exit 0
echo "== Ctrl-C stops everything."
while true; do sleep 3600; done
