#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, clippy with warnings as errors, then every
# unit, property, conformance and end-to-end test (real Prometheus 2.42, promtool, moto S3).
# Installs what it needs first. The PromQL conformance files are read from ../shared/promqltest
# beside the checkout (or STRATA_PROMQLTEST_DIR).
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
cargo nextest run --workspace --locked --no-fail-fast
