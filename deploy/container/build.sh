#!/usr/bin/env bash
# Builds the umbra-proxy and umbra images from release binaries already built on this machine:
# each image is `FROM scratch` plus the binary (stripped), exactly the shared libraries `ldd`
# lists for it, the dynamic loader, a CA bundle, /etc/passwd with the non-root user 65532 and
# the default config. No base image is pulled, so it builds without any registry.
#
# Usage: deploy/container/build.sh [--bin-dir DIR] [--registry NAME] [--tag TAG] [proxy|controller]...
#   --bin-dir   where umbra-proxy and umbra are (default: $CARGO_TARGET_DIR/release, else target/release;
#               build them first: cargo build --release --bins)
#   --registry  image name prefix (default: localhost)
#   --tag       image tag (default: the binaries' version)
#   images      which to build (default: both)
# Environment: PODMAN, the podman command with any global flags (default: podman).
# Prints one line per image: "<name> <size in bytes>".
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin_dir="${CARGO_TARGET_DIR:-$repo/target}/release"
registry="localhost"
tag=""
images=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) bin_dir="$2"; shift 2 ;;
    --registry) registry="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    proxy|controller) images+=("$1"); shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#images[@]} -gt 0 ] || images=(proxy controller)
read -r -a podman <<< "${PODMAN:-podman}"

# Copies a file to the same path under the root, following symlinks (the loader and the
# libraries are symlinks on Debian).
put() {
  local src="$1" root="$2" mode="$3"
  install -D -m "$mode" "$(readlink -f "$src")" "$root$src"
}

# The shared libraries a binary loads, and its loader, as absolute paths; fails on any missing.
libraries() {
  local bin="$1" out
  out="$(ldd "$bin" 2>&1)" || {
    case "$out" in
      *"not a dynamic executable"*|*"statically linked"*) return 0 ;;
      *) echo "ldd $bin: $out" >&2; return 1 ;;
    esac
  }
  if grep -q "not found" <<< "$out"; then
    echo "ldd $bin: a library is missing on this machine:" >&2
    echo "$out" >&2
    return 1
  fi
  # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)";
  # linux-vdso has no file.
  awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<< "$out"
}

# Lays out the image's root file system under $1/rootfs for binary $2.
prepare() {
  local ctx="$1" bin="$2" root="$1/rootfs"
  mkdir -p "$root"
  install -D -m 0755 "$bin_dir/$bin" "$root/usr/local/bin/$bin"
  # No debug sections in an image: the release profile keeps symbols, which double `umbra`.
  strip --strip-unneeded "$root/usr/local/bin/$bin"
  local lib
  for lib in $(libraries "$bin_dir/$bin"); do
    put "$lib" "$root" 0755
  done
  install -D -m 0644 "$here/umbra.toml" "$root/etc/umbra/umbra.toml"
  install -D -m 0644 "$repo/policies/default.toml" "$root/etc/umbra/policies/default.toml"
  # Upstream TLS (proxy) and webhooks (controller) verify against the system's roots.
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  fi
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' \
    > "$root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' > "$root/etc/group"
  # Sockets and temporary files (the proxy's upgrade socket defaults to /tmp).
  mkdir -p "$root/tmp" && chmod 1777 "$root/tmp"
  mkdir -p "$ctx/data"
}

version="$("$bin_dir/umbra-proxy" --version | awk '{print $2}')"
tag="${tag:-$version}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for image in "${images[@]}"; do
  case "$image" in
    proxy) bin=umbra-proxy ;;
    controller) bin=umbra ;;
  esac
  [ -x "$bin_dir/$bin" ] || {
    echo "build.sh: $bin_dir/$bin not found; build it first: cargo build --release --bins" >&2
    exit 1
  }
  prepare "$work/$image" "$bin"
  name="$registry/$bin:$tag"
  "${podman[@]}" build --quiet --file "$here/Containerfile.$image" --tag "$name" "$work/$image" >/dev/null
  echo "$name $("${podman[@]}" image inspect --format '{{.Size}}' "$name")"
done
