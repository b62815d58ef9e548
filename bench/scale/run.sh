#!/usr/bin/env bash
# Issue 11's scale benchmark: one controller, 1,000 workloads, 10 real umbra-proxy processes
# (see run.py for what is measured and the targets). Arguments go to run.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo build --release -p proxy -p umbra --bins >&2
exec python3 bench/scale/run.py --bin-dir "$CARGO_TARGET_DIR/release" "$@"
