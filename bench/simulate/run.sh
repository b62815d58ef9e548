#!/usr/bin/env bash
# Replays three real traces through `umbra simulate --json` (release build) with one policy and
# one set of flags for all of them, then prints predictive vs reactive (HPA) with ratios.
#
#   bench/simulate/run.sh            # the three bench traces
#   bench/simulate/run.sh --heldout  # two traces the settings were not tuned on
#
# Scaling to request rates (a fixed unit change per trace; both strategies see the same
# demand): every trace is multiplied so its values become requests/s of a service whose
# median load is a few hundred requests/s, i.e. around ten 50 rps instances:
#   elb_request_count_8c0756   requests per 5 min        x10   -> median ~480 rps
#   nyc_taxi                   passengers per 30 min     x0.03 -> median ~500 rps
#   ec2_cpu_utilization_825cc2 CPU % of one instance     x5    -> median ~460 rps
set -euo pipefail
cd "$(dirname "$0")/../.."
here=bench/simulate
traces=../shared/data/traces/numenta-NAB
target_dir="${CARGO_TARGET_DIR:-target}"

cargo build --release -p umbra --bin umbra >&2
bin="$target_dir/release/umbra"

# The same flags for every trace (see README.md for why each).
common=(--policy "$here/policy.toml" --instance-capacity 50 --startup 120s
        --hpa-target 70 --primary-percentile 25 --primary-utilisation 80
        --refit-every 15m --select-every 1d --json)

if [ "${1:-}" = "--heldout" ]; then
  set -- ec2_cpu_utilization_5f5533.csv:5 rds_cpu_utilization_cc0c53.csv:5
else
  set -- elb_request_count_8c0756.csv:10 nyc_taxi.csv:0.03 ec2_cpu_utilization_825cc2.csv:5
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
started=$(date +%s)
replay() {
  local name=$1 scale=$2 t0
  t0=$(date +%s.%N)
  if ! "$bin" simulate --trace "$traces/$name" --scale "$scale" "${common[@]}" \
      > "$out/${name%.csv}.json" 2> "$out/${name%.csv}.log"; then
    echo "umbra simulate failed on $name:" >&2
    cat "$out/${name%.csv}.log" >&2
    return 1
  fi
  awk -v name="$name" -v a="$t0" -v b="$(date +%s.%N)" \
    'BEGIN { printf "%s: replayed in %.1f s\n", name, b - a }' >&2
}
# One at a time: each replay makes its forecasts on every core, and its time is the one a user
# waits for.
for spec in "$@"; do
  replay "${spec%%:*}" "${spec##*:}"
done
echo "replayed $# traces in $(( $(date +%s) - started )) s with: ${common[*]}"
python3 "$here/table.py" "$out"/*.json
