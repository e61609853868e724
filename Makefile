# Shortcuts for the common loops; the scripts hold the real logic.
.PHONY: fmt lint test bench demo build images

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

# One image per component (static binaries on an empty base), tagged strata/<component>:<version>
# and :latest; no registry needed. IMAGES="querier sidecar" builds only those.
images:
	./docker/build-images.sh $(IMAGES)
