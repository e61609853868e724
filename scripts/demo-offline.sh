#!/usr/bin/env bash
# An offline tour of Strata's block tools on the embedded default (a FILESYSTEM bucket under
# .demo/offline). It installs what it needs, builds Strata, backfills two "clusters" of metrics
# with Prometheus's own promtool, inspects and dumps a block, rewrites every block with Strata's
# writer into the bucket with each cluster's external labels, lists the bucket, and ends with a
# PromQL answer computed by Strata's engine straight over the blocks (no services running).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
demo="$root/.demo/offline"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
bin="$CARGO_TARGET_DIR/debug"

./scripts/install-deps.sh
echo "== building Strata"
cargo build --workspace --bins --locked -q

rm -rf "$demo" && mkdir -p "$demo/bucket"
now=$(date +%s)
start=$(( (now - 6 * 3600) / 7200 * 7200 ))

for cluster in eu-1 us-1; do
  echo "== cluster $cluster: backfilling 4h of metrics with promtool"
  mkdir -p "$demo/$cluster/data/wal"
  python3 - "$cluster" "$start" > "$demo/$cluster/metrics.om" <<'PY'
import sys
cluster, start = sys.argv[1], int(sys.argv[2])
handlers = ["/api/v1/query", "/api/v1/query_range", "/metrics"]
codes = ["200", "500"]
print("# TYPE prometheus_http_requests counter")
for h_i, h in enumerate(handlers):
    for c in codes:
        total = 0.0
        rate = (3 + h_i) * (1 if c == "200" else 0.05) * (2 if cluster == "us-1" else 1)
        for step in range(0, 4 * 3600, 15):
            total += rate * 15
            print(f'prometheus_http_requests_total{{code="{c}",handler="{h}"}} {total} {start + step}')
print("# EOF")
PY
  /usr/bin/promtool tsdb create-blocks-from openmetrics -q "$demo/$cluster/metrics.om" "$demo/$cluster/data"
done

block=$(ls -d "$demo"/eu-1/data/0* | head -1)
echo "== strata-tools block inspect $(basename "$block")"
"$bin/strata-tools" block inspect "$block" | head -20
echo "== strata-tools block dump (first lines)"
"$bin/strata-tools" block dump --match 'prometheus_http_requests_total{code="500"}' "$block" | head -3

echo "== rewriting every block with Strata's writer into the bucket"
for cluster in eu-1 us-1; do
  for b in "$demo/$cluster"/data/0*; do
    out=$("$bin/strata-tools" block rewrite --label "cluster=$cluster" "$b" "$demo/bucket")
    echo "  $cluster: $(basename "$b") -> $(basename "$out")"
  done
done

cat > "$demo/objstore.yml" <<YML
type: FILESYSTEM
config:
  directory: $demo/bucket
YML
echo "== strata-tools bucket ls"
"$bin/strata-tools" bucket ls --objstore.config-file "$demo/objstore.yml"

echo "== PromQL over the bucket's blocks"
query='sum by (cluster) (rate(prometheus_http_requests_total[5m]))'
echo "query: $query"
"$bin/strata-tools" promql query --data-dir "$demo/bucket" --time "$(( start + 4 * 3600 - 60 ))" "$query"
