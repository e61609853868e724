#!/usr/bin/env bash
# Store gateway figures for issue 3, on release binaries and promtool 2.42 blocks in a
# FILESYSTEM bucket:
#   1. RSS after sync with 1 and with 100 blocks of 10k series (default caches), and after a
#      query that touches every block;
#   2. time to /-/ready with 1,000 blocks;
#   3. Series throughput (series/s, MB/s of chunk data) for 10k series over 24h, cold and warm,
#      measured end to end with `strata-tools store series` (decode + print included).
# Usage: store-gateway/bench/run.sh [work dir]   (needs `cargo build --release -p
# strata-store-gateway -p strata-tools` first; CARGO_TARGET_DIR honoured).
set -euo pipefail

BIN="${CARGO_TARGET_DIR:-target}/release"
WORK="${1:-$(mktemp -d /tmp/strata-sg-bench.XXXXXX)}"
mkdir -p "$WORK"
echo "work dir: $WORK" >&2

# OpenMetrics for $1 series over $3 ms from $2 every $4 ms, metric bench_metric{i, shard}.
generate() {
  python3 - "$@" <<'EOF'
import sys
series, start, duration, interval = (int(a) for a in sys.argv[1:5])
out = sys.stdout
out.write("# TYPE bench_metric gauge\n")
for i in range(series):
    labels = 'i="%05d",shard="%d",job="bench"' % (i, i % 10)
    for t in range(start, start + duration, interval):
        v = (i * 7 + t // interval) % 1000
        out.write("bench_metric{%s} %d %d.%03d\n" % (labels, v, t // 1000, t % 1000))
out.write("# EOF\n")
EOF
}

# Copies block $1 into bucket $2 $3 times with fresh ULIDs and external labels
# {cluster="bench", replica="r<n>"}.
clone_block() {
  python3 - "$@" <<'EOF'
import json, os, random, shutil, sys, time
src, bucket, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
def ulid():
    value = (int(time.time() * 1000) << 80) | random.getrandbits(80)
    return "".join(alphabet[(value >> (5 * (25 - i))) & 31] for i in range(26))
os.makedirs(bucket, exist_ok=True)
for n in range(copies):
    name = ulid()
    dst = os.path.join(bucket, name)
    os.makedirs(os.path.join(dst, "chunks"))
    for f in os.listdir(os.path.join(src, "chunks")):
        os.link(os.path.join(src, "chunks", f), os.path.join(dst, "chunks", f))
    os.link(os.path.join(src, "index"), os.path.join(dst, "index"))
    meta = json.load(open(os.path.join(src, "meta.json")))
    meta["ulid"] = name
    meta["thanos"] = {"labels": {"cluster": "bench", "replica": "r%04d" % n},
                      "downsample": {"resolution": 0}, "source": "test"}
    json.dump(meta, open(os.path.join(dst, "meta.json"), "w"))
EOF
}

make_block() { # series start duration interval dir
  local dir="$5"
  if [ -d "$dir" ]; then return; fi
  mkdir -p "$dir"
  generate "$1" "$2" "$3" "$4" > "$dir/input.om"
  promtool tsdb create-blocks-from openmetrics --quiet "$dir/input.om" "$dir" >/dev/null
  rm "$dir/input.om"
}

rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

GATEWAY_PID=""
READY=""
# Starts the gateway on bucket $1 with data dir $2; sets GATEWAY_PID, GRPC and READY (seconds
# from start to /-/ready 200). Not for $(...): the gateway would hold the substitution open.
start_gateway() {
  local grpc=$((20000 + RANDOM % 20000)) http=$((40000 + RANDOM % 20000))
  GRPC="127.0.0.1:$grpc"
  local started
  started=$(date +%s.%N)
  "$BIN/strata-store-gateway" store --objstore.config="type: FILESYSTEM
config:
  directory: $1" --data-dir="$2" --grpc-address="$GRPC" --http-address="127.0.0.1:$http" \
    --log.level=warn >>"$WORK/gateway.log" 2>&1 &
  GATEWAY_PID=$!
  until curl -sf "http://127.0.0.1:$http/-/ready" >/dev/null; do sleep 0.05; done
  READY=$(echo "$(date +%s.%N) - $started" | bc)
}
stop_gateway() { kill "$GATEWAY_PID"; wait "$GATEWAY_PID" || true; }

START=1700006400000
echo "== 1. RSS, 10k-series blocks" >&2
make_block 10000 "$START" 7200000 60000 "$WORK/b10k"
B10K=$(find "$WORK/b10k" -maxdepth 1 -name '01*' -type d | head -1)
rm -rf "$WORK/bucket1" "$WORK/bucket100" "$WORK/data1" "$WORK/data100"
clone_block "$B10K" "$WORK/bucket1" 1
clone_block "$B10K" "$WORK/bucket100" 100
start_gateway "$WORK/bucket1" "$WORK/data1"
sleep 1
RSS1=$(rss_mib "$GATEWAY_PID")
stop_gateway
start_gateway "$WORK/bucket100" "$WORK/data100"
READY100=$READY
sleep 1
RSS100=$(rss_mib "$GATEWAY_PID")
SECONDS=0
"$BIN/strata-tools" store series --endpoint="$GRPC" --match='bench_metric{shard="3"}' | wc -l >"$WORK/q100.lines"
Q100=$SECONDS
RSS100Q=$(rss_mib "$GATEWAY_PID")
stop_gateway
echo "RSS after sync, 1 block: ${RSS1} MiB; 100 blocks: ${RSS100} MiB (ready in ${READY100}s); per extra block: $(echo "($RSS100 - $RSS1) / 99" | bc -l | cut -c1-5) MiB" 
echo "RSS after bench_metric{shard=\"3\"} over 100 blocks ($(cat "$WORK/q100.lines") samples, ${Q100}s): ${RSS100Q} MiB"

echo "== 2. ready time, 1000 blocks" >&2
make_block 100 "$START" 7200000 60000 "$WORK/b100"
B100=$(find "$WORK/b100" -maxdepth 1 -name '01*' -type d | head -1)
rm -rf "$WORK/bucket1000" "$WORK/data1000"
clone_block "$B100" "$WORK/bucket1000" 1000
start_gateway "$WORK/bucket1000" "$WORK/data1000"
READY1000=$READY
echo "ready with 1000 blocks (index-headers built): ${READY1000}s; RSS $(rss_mib "$GATEWAY_PID") MiB"
stop_gateway
start_gateway "$WORK/bucket1000" "$WORK/data1000"
READY1000B=$READY
echo "ready with 1000 blocks (index-headers on disk): ${READY1000B}s"
stop_gateway

echo "== 3. throughput, 10k series over 24h (5m interval)" >&2
make_block 10000 "$START" 86400000 300000 "$WORK/b24h"
rm -rf "$WORK/bucket24h" "$WORK/data24h"
mkdir -p "$WORK/bucket24h"
for b in $(find "$WORK/b24h" -maxdepth 1 -name '01*' -type d); do clone_block "$b" "$WORK/bucket24h" 1; done
CHUNK_BYTES=$(du -cb "$WORK"/bucket24h/*/chunks | tail -1 | cut -f1)
start_gateway "$WORK/bucket24h" "$WORK/data24h"
for run in cold warm; do
  started=$(date +%s.%N)
  LINES=$("$BIN/strata-tools" store series --endpoint="$GRPC" --match='{__name__="bench_metric"}' | wc -l)
  elapsed=$(echo "$(date +%s.%N) - $started" | bc)
  echo "$run: 10000 series, $LINES samples, $CHUNK_BYTES chunk bytes in ${elapsed}s: $(echo "10000 / $elapsed" | bc) series/s, $(echo "$CHUNK_BYTES / $elapsed / 1048576" | bc -l | cut -c1-6) MB/s"
done
echo "RSS after queries: $(rss_mib "$GATEWAY_PID") MiB"
stop_gateway
