#!/usr/bin/env bash
# Compares `umbra forecast --model auto` with seasonal naive, Python Prophet and statsforecast
# on the shared traces (one-day horizon, last day held out), then measures event-day error with
# and without the example calendars. Prints one table; see README.md.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${UMBRA_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/umbra-bench}"
traces="${UMBRA_TRACES:-$repo/../shared/data/traces}"
venv="$cache/venv"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import prophet, statsforecast' 2>/dev/null; then
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q prophet statsforecast pandas
fi
(cd "$repo" && cargo build --release -p controller --bin umbra)
umbra="${CARGO_TARGET_DIR:-$repo/target}/release/umbra"
exec "$venv/bin/python" "$repo/bench/forecast/compare.py" \
  --umbra "$umbra" --traces "$traces" --events "$repo/examples/events" \
  --work "$cache/work" "$@"
