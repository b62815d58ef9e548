#!/usr/bin/env bash
# Load under fault (bench/chaos/README.md): builds the release binaries, then runs every
# scenario, or `--only NAME[,NAME]`, or `--soak 30m`, and prints the table. Loopback only;
# the disk-full scenario mounts a small tmpfs, so it needs root.
#   bench/chaos/run.sh                       # the whole suite, about 6 minutes
#   bench/chaos/run.sh --only black-hole     # one scenario (--list names them)
#   bench/chaos/run.sh --soak 30m            # the soak
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build --release -p proxy -p umbra -p umbra-chaos --bins

# A run killed before its own cleanup may leave the disk-full tmpfs mounted: unmount it.
unmount_leftovers() {
    awk '$1 == "umbra-chaos" { print $2 }' /proc/mounts | while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" || true
    done
}
trap unmount_leftovers EXIT

"${CARGO_TARGET_DIR:-target}/release/umbra-chaos" "$@"
