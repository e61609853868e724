#!/usr/bin/env bash
# Builds one container image per Strata component (docker/components), without any registry:
# each image is FROM scratch plus a root filesystem assembled here (docker/Dockerfile.in).
#
#   docker/build-images.sh                     release images: a static binary (glibc with
#                                              +crt-static), tagged strata/<component>:<version>
#                                              and strata/<component>:latest
#   docker/build-images.sh querier sidecar     only these components
#   docker/build-images.sh --bin-dir DIR --prefix strata-e2e/ --tag test
#                                              images from binaries already built in DIR (the
#                                              compose e2e test uses target/debug); a dynamically
#                                              linked binary gets the loader and the libraries it
#                                              links copied from this machine
#
# Options: --prefix P (default strata/), --tag T (default the workspace version; `latest` is
# tagged too unless --no-latest), --bin-dir DIR, --no-latest. Build contexts are assembled under
# $STRATA_IMAGE_CONTEXT_DIR (default $CARGO_TARGET_DIR/docker). A component whose crate does not
# exist yet (the ruler before its crate lands) is skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

prefix="strata/"
tag=""
bin_dir=""
latest=1
selected=()
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --bin-dir) bin_dir="$2"; shift 2 ;;
    --no-latest) latest=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | cut -c3-; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) selected+=("$1"); shift ;;
  esac
done

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$tag" ] || tag="$version"
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
target_dir="${CARGO_TARGET_DIR:-$root/target}"
host_triple=$(rustc -vV | sed -n 's/^host: //p')

# The components to build: name, crate directory, binary.
names=(); crates=(); binaries=()
while read -r name crate binary; do
  case "$name" in ''|'#'*) continue ;; esac
  if [ ${#selected[@]} -gt 0 ] && ! printf '%s\n' "${selected[@]}" | grep -qx "$name"; then
    continue
  fi
  if [ ! -f "$crate/Cargo.toml" ]; then
    echo "== $name: no $crate/ crate in this checkout, skipped"
    continue
  fi
  names+=("$name"); crates+=("$crate"); binaries+=("$binary")
done < docker/components
for want in "${selected[@]}"; do
  grep -q "^$want " docker/components || { echo "unknown component $want" >&2; exit 2; }
done
[ ${#names[@]} -gt 0 ] || { echo "no component to build" >&2; exit 1; }

if [ -z "$bin_dir" ]; then
  # Static binaries: glibc's static libc through +crt-static. --target keeps the flag away
  # from build scripts and proc macros, which must stay dynamic.
  packages=()
  for crate in "${crates[@]}"; do
    packages+=(-p "$(sed -n 's/^name = "\(.*\)"$/\1/p' "$crate/Cargo.toml" | head -n 1)")
  done
  echo "== cargo build --release (static, $host_triple): ${names[*]}"
  RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release --locked --target "$host_triple" --bins "${packages[@]}"
  bin_dir="$target_dir/$host_triple/release"
fi

# Copies a file into the rootfs under the same path, following symlinks.
copy_into() {
  local file=$1 rootfs=$2
  mkdir -p "$rootfs$(dirname "$file")"
  cp -L "$file" "$rootfs$file"
}

for i in "${!names[@]}"; do
  name=${names[$i]}; binary=${binaries[$i]}
  src="$bin_dir/$binary"
  [ -x "$src" ] || { echo "$src not found: build it first" >&2; exit 1; }
  context="${STRATA_IMAGE_CONTEXT_DIR:-$target_dir/docker}/${prefix//\//_}$name"
  rm -rf "$context"
  rootfs="$context/rootfs"
  mkdir -p "$rootfs/usr/bin" "$rootfs/etc" "$rootfs/tmp" "$context/home"
  # Debug info is most of a debug binary's size; symbols stay for backtraces.
  objcopy --strip-debug "$src" "$rootfs/usr/bin/$binary"
  if ldd "$src" >/dev/null 2>&1; then
    # A dynamic binary: its loader and libraries from this machine.
    for lib in $(ldd "$src" | grep -o '/[^ ]*'); do copy_into "$lib" "$rootfs"; done
  fi
  printf 'root:x:0:0:root:/:/nonexistent\nnobody:x:65534:65534:nobody:/var/strata:/nonexistent\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    mkdir -p "$rootfs/etc/ssl/certs"
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
  fi
  chmod 1777 "$rootfs/tmp"
  sed "s|@BINARY@|$binary|g" docker/Dockerfile.in >"$context/Dockerfile"
  tags=(-t "$prefix$name:$tag")
  [ "$latest" = 1 ] && [ "$tag" != latest ] && tags+=(-t "$prefix$name:latest")
  echo "== docker build $prefix$name:$tag"
  if ! output=$(docker build -q "${tags[@]}" \
    --build-arg COMPONENT="$name" --build-arg VERSION="$version" \
    --build-arg REVISION="$revision" --build-arg CREATED="$created" \
    "$context" 2>&1); then
    echo "$output" >&2
    exit 1
  fi
  size=$(docker image inspect -f '{{.Size}}' "$prefix$name:$tag")
  echo "   $prefix$name:$tag $((size / 1000000)) MB"
done
