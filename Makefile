# Shortcuts for the common loops; the scripts hold the real logic.
.PHONY: fmt lint test bench demo build

build:
	cargo build --workspace

fmt:
	cargo fmt --all

lint:
	cargo clippy --workspace --all-targets -- -D warnings

test:
	./scripts/test.sh

bench:
	cargo bench --workspace

demo:
	./scripts/demo.sh
