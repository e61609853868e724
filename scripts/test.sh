#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, clippy with warnings as errors, then every
# unit, property, conformance and end-to-end test (real Prometheus 2.42, promtool, moto S3).
# Installs what it needs first. The PromQL conformance files are read from ../shared/promqltest
# beside the checkout (or STRATA_PROMQLTEST_DIR), the compliance query set from
# ../shared/promql-compliance (or STRATA_PROMQL_COMPLIANCE_DIR): where they are missing those two
# suites are skipped with a line saying so, unless CI=true, where missing files fail. The compose
# e2e test runs where Docker with compose is available and is skipped, saying why, elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== build (the end-to-end tests run the real binaries)"
cargo build --workspace --bins --locked
echo "== tests"
# Suites whose inputs live outside the repository, and the Docker e2e: say up front what runs.
promqltest_dir="${STRATA_PROMQLTEST_DIR:-../shared/promqltest/v2.42}"
compliance_dir="${STRATA_PROMQL_COMPLIANCE_DIR:-../shared/promql-compliance}"
if [ ! -d "$promqltest_dir" ] && [ "${CI:-}" != true ]; then
  echo "skipped: PromQL conformance suite: no $promqltest_dir; put Prometheus v2.42.0's promql/testdata/*.test there or set STRATA_PROMQLTEST_DIR to run it"
fi
if [ ! -f "$compliance_dir/promql-test-queries.yml" ] && [ "${CI:-}" != true ]; then
  echo "skipped: PromQL compliance suite: no $compliance_dir/promql-test-queries.yml; put the compliance tester's promql/promql-test-queries.yml there or set STRATA_PROMQL_COMPLIANCE_DIR to run it"
fi
if ! docker info >/dev/null 2>&1 || ! { docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; }; then
  echo "skipped: compose e2e test: Docker with compose is not available here"
fi
cargo nextest run --workspace --locked --no-fail-fast
