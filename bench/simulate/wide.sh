#!/usr/bin/env bash
# The wide replay benchmark (issue 9): the built-in policy on 13 real traces and 2 synthetic
# ones at start-ups of 30 s and 5 min, against the HPA and perfect foresight. See README.md.
#
#   bench/simulate/wide.sh                       # everything (~10 min on 2 cores)
#   bench/simulate/wide.sh --only nyc_taxi --startups 300s
set -euo pipefail
cd "$(dirname "$0")/../.."
target_dir="${CARGO_TARGET_DIR:-target}"
cargo build --release -p umbra --bin umbra >&2
exec python3 bench/simulate/wide.py "$target_dir/release/umbra" "$@"
