#!/usr/bin/env bash
# Compares Umbra's default forecasts with statsforecast and Python Prophet on the M4 hourly
# series (M4's protocol, next to the published M4 results), on the shared traces (one-day
# horizon, last day held out), then measures event-day error with and without the example
# calendars. `--only m4|main|events` runs one part; see README.md.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${UMBRA_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/umbra-bench}"
traces="${UMBRA_TRACES:-$repo/../shared/data/traces}"
venv="$cache/venv"
# The M4 files are not downloaded here; README.md says how to get them from the public repo.
m4_dir="${UMBRA_M4_DIR:-$cache/m4}"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import prophet, statsforecast, openpyxl' 2>/dev/null; then
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q prophet statsforecast pandas openpyxl
fi
(cd "$repo" && cargo build --release -p umbra --bin umbra && cargo build --release -p forecast --example m4)
target="${CARGO_TARGET_DIR:-$repo/target}/release"
exec "$venv/bin/python" "$repo/bench/forecast/compare.py" \
  --umbra "$target/umbra" --m4-bin "$target/examples/m4" --m4-dir "$m4_dir" \
  --traces "$traces" --events "$repo/examples/events" --work "$cache/work" "$@"
