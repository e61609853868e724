#!/usr/bin/env bash
# Run one fuzz target of fuzz/ for a given time: scripts/fuzz.sh TARGET SECONDS [libFuzzer args]
#   scripts/fuzz.sh list            prints the targets
#   scripts/fuzz.sh all SECONDS     runs every target for SECONDS each
#
# Works on stable Rust without cargo-fuzz: it builds the target with the same instrumentation
# cargo-fuzz uses (SanitizerCoverage through stable -C flags; libFuzzer itself comes from the
# libfuzzer-sys crate, compiled with the system C++ compiler) and `--cfg fuzzing`, under which
# the tsdb crate skips CRC verification so mutated inputs reach the decoders. No sanitizer:
# the code under test has no `unsafe`; panics, overflows and debug assertions are the crashes.
#
# Corpus: fuzz/seeds/TARGET (committed: real Prometheus 2.42 block files and chunks) is read;
# new inputs go to fuzz/corpus/TARGET, crashes to fuzz/artifacts/TARGET/. Reproduce a crash with
#   scripts/fuzz.sh TARGET 0 fuzz/artifacts/TARGET/crash-...
# Exit status is non-zero when the target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

targets() { sed -n 's/^name = "\([a-z_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^strata-fuzz$'; }

if [ "${1:-}" = "list" ]; then
    targets
    exit 0
fi
if [ $# -lt 2 ]; then
    echo "usage: $0 TARGET SECONDS [libFuzzer args or input files] | $0 list | $0 all SECONDS" >&2
    exit 2
fi
target=$1
seconds=$2
shift 2
if [ "$target" = "all" ]; then
    status=0
    for name in $(targets); do
        "$0" "$name" "$seconds" "$@" || status=1
    done
    exit $status
fi
if ! targets | grep -qx "$target"; then
    echo "unknown target $target; targets: $(targets | tr '\n' ' ')" >&2
    exit 2
fi

host=$(rustc -vV | sed -n 's/^host: //p')
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
# The flags cargo-fuzz passes (without -Zsanitizer, which needs nightly).
export RUSTFLAGS="${RUSTFLAGS:-} --cfg fuzzing -Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares \
 -Cforce-frame-pointers"
# An explicit --target keeps these flags off build scripts and proc macros, and keeps the
# instrumented artifacts apart from ordinary builds in the shared target directory.
cargo build --manifest-path fuzz/Cargo.toml --release --locked --target "$host" --bin "$target"
bin="$CARGO_TARGET_DIR/$host/release/$target"

mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
inputs=()
# Input files on the command line: run just those (reproduce a crash).
for arg in "$@"; do
    [ -f "$arg" ] && inputs+=("$arg")
done
if [ ${#inputs[@]} -gt 0 ]; then
    exec "$bin" "$@"
fi
corpora=("fuzz/corpus/$target")
[ -d "fuzz/seeds/$target" ] && corpora+=("fuzz/seeds/$target")
echo "== fuzzing $target for ${seconds}s"
exec "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="fuzz/artifacts/$target/" "$@" "${corpora[@]}"
