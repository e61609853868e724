#!/usr/bin/env python3
"""Differential test and speed comparison of the Strata engine against Prometheus 2.42.

Generates demo-service-like data (the metrics of the PromQL compliance tester's query set),
backfills it into a TSDB with `promtool tsdb create-blocks-from openmetrics`, starts a local
Prometheus on it, expands the compliance query set (../shared/promql-compliance), and runs every
query as a range query against Prometheus's HTTP API and against the Strata engine
(`examples/eval_openmetrics.rs`) on the same data. Answers must match within a relative 1e-5
(the compliance tester's tolerance). With `--bench`, it instead times the benchmark shapes of
`benches/engine.rs` on generated counters and buckets in both engines.

Usage (from the workspace root):
  python3 promql/benches/prometheus_compare.py [--bench] [--series N] [--hours H]
"""

import argparse
import itertools
import json
import math
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

WORKSPACE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
QUERIES_FILE = os.path.join(WORKSPACE, "..", "shared", "promql-compliance", "promql-test-queries.yml")

VARIANTS = {
    "range": ["1s", "15s", "1m", "5m", "15m", "1h"],
    "offset": ["1m", "5m", "10m"],
    "simpleAggrOp": ["sum", "avg", "max", "min", "count", "stddev", "stdvar"],
    "topBottomOp": ["topk", "bottomk"],
    "quantile": ["-0.5", "0.1", "0.5", "0.75", "0.95", "0.90", "0.99", "1", "1.5"],
    "arithBinOp": ["+", "-", "*", "/", "%", "^"],
    "compBinOp": ["==", "!=", "<", ">", "<=", ">="],
    "binOp": ["+", "-", "*", "/", "%", "^", "==", "!=", "<", ">", "<=", ">="],
    "simpleTimeAggrOp": ["sum", "avg", "max", "min", "count", "stddev", "stdvar", "absent", "last", "present"],
    "simpleMathFunc": ["abs", "ceil", "floor", "exp", "sqrt", "ln", "log2", "log10", "round"],
    "extrapolatedRateFunc": ["delta", "rate", "increase"],
    "dateFunc": ["day_of_month", "day_of_week", "days_in_month", "hour", "minute", "month", "year"],
    "instantRateFunc": ["idelta", "irate"],
    "clampFunc": ["clamp_min", "clamp_max"],
}


def load_queries():
    """Expands the compliance query templates (a tiny YAML subset parser)."""
    cases = []
    current = None
    for raw in open(QUERIES_FILE, encoding="utf-8"):
        line = raw.rstrip("\n")
        m = re.match(r"^\s*-?\s*(?:#.*\n?)?\s*query:\s*(.*)$", line)
        if m:
            q = m.group(1).strip()
            if (q.startswith("'") and q.endswith("'")) or (q.startswith('"') and q.endswith('"')):
                q = q[1:-1]
            current = {"query": q, "fail": False, "args": []}
            cases.append(current)
            continue
        m = re.match(r"^\s*variant_args:\s*\[(.*)\]", line)
        if m and current is not None:
            current["args"] = [a.strip().strip("'\"") for a in m.group(1).split(",")]
        if re.match(r"^\s*should_fail:\s*true", line) and current is not None:
            current["fail"] = True
    out = []
    for c in cases:
        if not c["args"]:
            out.append((c["query"], c["fail"]))
            continue
        for combo in itertools.product(*(VARIANTS[a] for a in c["args"])):
            q = c["query"]
            for name, value in zip(c["args"], combo):
                q = q.replace("{{.%s}}" % name, value)
            out.append((q, c["fail"]))
    return out


def gen_demo(path, hours, scrape_s=5):
    """Demo-service-like series (3 instances), written as OpenMetrics."""
    rnd = random.Random(42)
    end = 1_700_000_000
    start = end - hours * 3600
    instances = ["demo.promlabs.com:10000", "demo.promlabs.com:10001", "demo.promlabs.com:10002"]
    lines = {}

    def add(name, labels, t, v):
        key = name + "{" + ",".join('%s="%s"' % kv for kv in sorted(labels.items())) + "}"
        lines.setdefault((name, key), []).append("%s %s %s" % (key, fmt(v), t))

    buckets = ["0.0002", "0.0004", "0.0008", "0.0016", "0.0032", "0.0064", "0.0128", "0.0256", "0.0512", "0.1024", "0.2048", "+Inf"]
    cpu = {}
    hist = {}
    for t in range(start, end + 1, scrape_s):
        for i, inst in enumerate(instances):
            base = {"instance": inst, "job": "demo"}
            for typ, scale in (("buffers", 1e8), ("cached", 5e8), ("free", 2e9), ("used", 3e9)):
                add("demo_memory_usage_bytes", dict(base, type=typ), t, round(scale * (1 + 0.3 * math.sin(t / 600 + i)) + rnd.random() * 1e6))
            for mode in ("idle", "system", "user"):
                k = (inst, mode)
                cpu[k] = cpu.get(k, 0.0) + rnd.random() * scrape_s
                if rnd.random() < 0.0005:
                    cpu[k] = 0.0
                add("demo_cpu_usage_seconds_total", dict(base, mode=mode), t, round(cpu[k], 3))
            add("demo_num_cpus", base, t, 4 + i)
            add("demo_disk_usage_bytes", base, t, round(1e10 + (t - start) * 1000 * (i + 1) + rnd.random() * 1e5))
            add("demo_batch_last_success_timestamp_seconds", base, t, t - (t % 300))
            if (t // 600) % 2 == 0:
                add("demo_intermittent_metric", base, t, 1)
            for method, path_, status in (("GET", "/api/foo", "200"), ("POST", "/api/bar", "500")):
                hl = dict(base, method=method, path=path_, status=status)
                k = (inst, method)
                counts = hist.setdefault(k, [0.0] * len(buckets))
                n = rnd.randint(0, 20)
                for _ in range(n):
                    obs = rnd.expovariate(50)
                    for b, le in enumerate(buckets):
                        if le == "+Inf" or obs <= float(le):
                            counts[b] += 1
                for b, le in enumerate(buckets):
                    add("demo_api_request_duration_seconds_bucket", dict(hl, le=le), t, counts[b])
                add("demo_api_request_duration_seconds_count", hl, t, counts[-1])
                add("demo_api_request_duration_seconds_sum", hl, t, round(counts[-1] * 0.02, 3))
    write_openmetrics(path, lines)
    return start, end


def fmt(v):
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return repr(v)


def write_openmetrics(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        by_name = {}
        for (name, key), ls in lines.items():
            by_name.setdefault(name, []).append(ls)
        for name, groups in by_name.items():
            typ = "counter" if name.endswith("_total") else "gauge"
            if typ == "counter":
                f.write("# TYPE %s counter\n" % name[: -len("_total")])
            else:
                f.write("# TYPE %s gauge\n" % name)
            for ls in groups:
                f.write("\n".join(ls) + "\n")
        f.write("# EOF\n")


def gen_bench(path, series, hours, scrape_s=15):
    """Counters and buckets like benches/engine.rs (same shapes, OpenMetrics)."""
    points = hours * 3600 // scrape_s
    buckets = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]
    with open(path, "w", encoding="utf-8") as f:
        f.write("# TYPE http_requests counter\n")
        for s in range(series):
            key = 'http_requests_total{instance="instance-%d",job="job-%d"}' % (s, s % 10)
            rate = 1.0 + s % 7
            value = 0.0
            out = []
            for t in range(points):
                value += rate * (1.0 + ((t + s) % 5) / 10.0)
                if (t + s) % 2000 == 0:
                    value = 0.0
                out.append("%s %r %d" % (key, value, t * scrape_s))
            f.write("\n".join(out) + "\n")
        f.write("# TYPE http_request_duration_seconds_bucket gauge\n")
        for i in range(series // len(buckets)):
            for b, le in enumerate(buckets):
                key = 'http_request_duration_seconds_bucket{instance="instance-%d",le="%s"}' % (i, le)
                per = (b + 1) * (1.0 + i % 3)
                f.write("\n".join("%s %r %d" % (key, per * t, t * scrape_s) for t in range(points)) + "\n")
        f.write("# EOF\n")
    return 0, (points - 1) * scrape_s


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_prometheus(tmp, data_dir):
    port = free_port()
    cfg = os.path.join(tmp, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1h\n")
    proc = subprocess.Popen(
        ["prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + data_dir, "--web.listen-address=127.0.0.1:%d" % port,
         "--storage.tsdb.retention.time=100y", "--query.max-samples=1000000000", "--query.timeout=10m"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(120):
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % port, timeout=1)
            return proc, port
        except Exception:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("prometheus did not become ready")


def prom_range(port, query, start, end, step):
    params = urllib.parse.urlencode({"query": query, "start": start, "end": end, "step": step})
    began = time.time()
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/query_range?%s" % (port, params), timeout=600) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        body = json.load(e)
    return body, time.time() - began


def values_equal(a, b):
    a, b = float(a), float(b)
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    return abs(a - b) <= 1e-5 * max(abs(a), abs(b))


def compare(prom, ours):
    if prom.get("status") != "success":
        return "error" in ours["data"], "prometheus error %r, strata %r" % (prom.get("error"), ours["data"].get("error"))
    if "error" in ours["data"]:
        return False, "strata error: %s" % ours["data"]["error"]
    key = lambda s: sorted(s["metric"].items())
    p = sorted(prom["data"]["result"], key=key)
    o = sorted(ours["data"]["result"], key=key)
    if [key(s) for s in p] != [key(s) for s in o]:
        return False, "series differ: prometheus %d, strata %d" % (len(p), len(o))
    for ps, os_ in zip(p, o):
        if len(ps["values"]) != len(os_["values"]):
            return False, "%s: %d vs %d points" % (ps["metric"], len(ps["values"]), len(os_["values"]))
        for (pt, pv), (ot, ov) in zip(ps["values"], os_["values"]):
            if abs(float(pt) - float(ot)) > 1e-9 or not values_equal(pv, ov):
                return False, "%s at %s: prometheus %s, strata %s" % (ps["metric"], pt, pv, ov)
    return True, ""


def build_example():
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", "/work/target")
    subprocess.check_call(["cargo", "build", "--release", "-q", "-p", "strata-promql", "--example", "eval_openmetrics"], cwd=WORKSPACE, env=env)
    return os.path.join(env["CARGO_TARGET_DIR"], "release", "examples", "eval_openmetrics")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--queries", help="file of extra queries (one per line) instead of the compliance set")
    args = ap.parse_args()
    binary = build_example()
    tmp = tempfile.mkdtemp(prefix="strata-promql-compare-")
    om = os.path.join(tmp, "data.om")
    if args.bench:
        start, end = gen_bench(om, args.series, args.hours)
        step = 15
        queries = [
            ("rate", "rate(http_requests_total[5m])"),
            ("sum_by_rate", "sum by (job) (rate(http_requests_total[5m]))"),
            ("histogram_quantile", "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))"),
            ("topk", "topk(5, rate(http_requests_total[5m]))"),
            ("subquery", "max_over_time(sum(rate(http_requests_total[5m]))[30m:1m])"),
        ]
        cases = [(q, False) for _, q in queries]
        windows = [(start, end, step)]
    else:
        hours = 2
        start, end = gen_demo(om, hours)
        if args.queries:
            cases = [(l.strip(), False) for l in open(args.queries) if l.strip() and not l.startswith("#")]
        else:
            cases = load_queries()
        # The compliance tester: 10 minute ranges at a 10s step, here at three positions.
        windows = [(end - 600, end, 10), (start + 1800, start + 2400, 10), (end - 3600, end - 3000, 7)]
    data_dir = os.path.join(tmp, "tsdb")
    subprocess.check_call(["promtool", "tsdb", "create-blocks-from", "openmetrics", om, data_dir], stdout=subprocess.DEVNULL)
    qfile = os.path.join(tmp, "queries.txt")
    with open(qfile, "w") as f:
        for (q, _), (s, e, st) in itertools.product(cases, windows):
            f.write("%s %s %s %s\n" % (s, e, st, q))
    out = subprocess.run([binary, om, qfile], check=True, capture_output=True, text=True).stdout.splitlines()
    ours = [json.loads(l) for l in out]
    proc, port = start_prometheus(tmp, data_dir)
    try:
        failures = 0
        for ((q, fail), (s, e, st)), o in zip(itertools.product(cases, windows), ours):
            if args.bench:
                # Warm up once, then take the best of three for each engine.
                prom_range(port, q, s, e, st)
                prom_t = min(prom_range(port, q, s, e, st)[1] for _ in range(3))
                print("%-90s prometheus %.3fs  strata %.3fs" % (q, prom_t, o["seconds"]))
                continue
            prom, _ = prom_range(port, q, s, e, st)
            ok, why = compare(prom, o)
            if not ok:
                failures += 1
                print("MISMATCH %s [%s..%s/%s]: %s" % (q, s, e, st, why))
        if not args.bench:
            total = len(cases) * len(windows)
            print("%d passed, %d failed" % (total - failures, failures))
            sys.exit(1 if failures else 0)
    finally:
        proc.terminate()
        proc.wait()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
