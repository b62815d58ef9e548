#!/usr/bin/env bash
# Puts one upstream (a separate nginx answering `return 200` with a 64-byte body) behind
# umbra-proxy, nginx and HAProxy, drives each with wrk on loopback, and prints req/s, p50/p99
# latency and proxy CPU per request, plus umbra/nginx and umbra/haproxy ratios: medians of
# same-repetition ratios over repetitions whose order rotates. Method: shared/PERF-NOTES.md.
#
#   bench/proxy/run.sh [--quick] [-d SECS] [-c CONNS] [-r REPS] [--wait-quiet MIN] [--nice N]
#                      [--per-rep]
#
# --quick is a 2 s, 1-repetition smoke run. --nice -10 runs wrk, upstream and proxies at that
# priority (root), so concurrent compiles barely get their cores during the run; the Noise line
# shows what still got through. Env equivalents: DURATION (10), CONNECTIONS (32), NICE (0),
# REPS (3), WARMUP (2 s per target before the first repetition), WAIT_QUIET (minutes to wait
# for no rustc/cargo and no core over QUIET_BUSY_PCT (15) % busy; 0), CLIENT_CPU (0: wrk +
# upstream), PROXY_CPU (1: proxy under test),
# UMBRA_PROXY_BIN (skip the dist build; UMBRA_PROXY_LABEL names it in the table), KEEP=1
# (keep the temp dir: configs, logs, raw JSON).
set -euo pipefail
source "$(dirname "$0")/common.sh"

duration="${DURATION:-10}"
connections="${CONNECTIONS:-32}"
reps="${REPS:-3}"
warmup="${WARMUP:-2}"
wait_quiet="${WAIT_QUIET:-0}"
client_cpu="${CLIENT_CPU:-0}"
proxy_cpu="${PROXY_CPU:-1}"
per_rep=""
quick=""
nice_level=""
args_used="$*"

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; duration=2; reps=1; warmup=1 ;;
    -d|--duration) duration="$2"; shift ;;
    -c|--connections) connections="$2"; shift ;;
    -r|--reps|--repetitions) reps="$2"; shift ;;
    --wait-quiet) wait_quiet="$2"; shift ;;
    --nice) nice_level="$2"; shift ;;
    --per-rep) per_rep=1 ;;
    -h|--help) usage 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; usage 2 >&2 ;;
  esac
  shift
done
duration="${duration%s}"
nice_level="${nice_level:-${NICE:-0}}"

ensure_tools nginx:nginx haproxy:haproxy wrk:wrk taskset:util-linux
if [ "$(nproc --all)" -lt 2 ]; then
  echo "run.sh: needs 2 cores (wrk + upstream on one, the proxy alone on the other)" >&2
  exit 1
fi
umbra_bin="$(umbra_binary)"
umbra_build="dist profile"
if [ -n "${UMBRA_PROXY_BIN:-}" ]; then umbra_build="binary $UMBRA_PROXY_BIN"; fi
if [ "$wait_quiet" != 0 ]; then wait_for_quiet "$wait_quiet"; fi

open_session
# The script and the helpers it runs between measurements stay off the proxy core.
taskset -cp "$client_cpu" $$ >/dev/null

read -r up_port nginx_port haproxy_port umbra_port umbra_admin < <(python3 "$helper" ports 5)
write_upstream_conf "$tmp/upstream.conf" "$up_port"
write_nginx_conf "$tmp/nginx.conf" "$nginx_port" "$up_port"
write_haproxy_conf "$tmp/haproxy.cfg" "$haproxy_port" "$up_port"
write_umbra_conf "$tmp/umbra.toml" "$umbra_port" "$umbra_admin" "$up_port"

start_nginx upstream "$client_cpu" "$tmp/upstream.conf"
upstream_pid=$started
# All proxies run for the whole benchmark (idle while another is measured) so each one's
# upstream keep-alive pool stays warm across repetitions.
start_nginx nginx "$proxy_cpu" "$tmp/nginx.conf"
nginx_pid=$started
start haproxy "$proxy_cpu" haproxy -db -f "$tmp/haproxy.cfg"
haproxy_pid=$started
start umbra "$proxy_cpu" "$umbra_bin" --config "$tmp/umbra.toml"
umbra_pid=$started

targets=(direct nginx haproxy umbra)
declare -A port=([direct]=$up_port [nginx]=$nginx_port [haproxy]=$haproxy_port [umbra]=$umbra_port)
declare -A proxy_pid=([nginx]=$nginx_pid [haproxy]=$haproxy_pid [umbra]=$umbra_pid)

python3 "$helper" wait-http "http://127.0.0.1:$umbra_admin/readyz" --timeout 30 \
  || { tail -20 "$tmp/umbra.log" >&2; exit 1; }
for t in "${targets[@]}"; do
  python3 "$helper" wait-http "http://127.0.0.1:${port[$t]}/" --body "$body" --timeout 30 \
    || { tail -20 "$tmp/$t.log" >&2; exit 1; }
done
log "all targets serve the upstream's body; pids: upstream=$upstream_pid nginx=$nginx_pid" \
  "haproxy=$haproxy_pid umbra=$umbra_pid; files in $tmp"

wrk_run() {  # wrk_run TARGET SECONDS OUTFILE
  taskset -c "$client_cpu" nice -n "$nice_level" wrk -t1 -c"$connections" -d"${2}s" -s "$here/report.lua" \
    "http://127.0.0.1:${port[$1]}/" >"$3" 2>&1
}

for t in "${targets[@]}"; do
  log "warm-up $t ${warmup}s"
  wrk_run "$t" "$warmup" "$tmp/warmup-$t.txt"
done

results="$tmp/results.jsonl"
: >"$results"
n=${#targets[@]}
for ((rep = 1; rep <= reps; rep++)); do
  order=()
  for ((i = 0; i < n; i++)); do order+=("${targets[(i + rep - 1) % n]}"); done
  log "repetition $rep/$reps: ${order[*]}"
  pos=0
  for t in "${order[@]}"; do
    pos=$((pos + 1))
    procs=("upstream=$upstream_pid")
    if [ "$t" != direct ]; then procs+=("proxy=${proxy_pid[$t]}"); fi
    python3 "$helper" snap "${procs[@]}" >"$tmp/before.json"
    wrk_run "$t" "$duration" "$tmp/wrk-$rep-$t.txt"
    python3 "$helper" snap "${procs[@]}" >"$tmp/after.json"
    python3 "$helper" record --target "$t" --rep "$rep" --position "$pos" \
      --proxy-cpu "$proxy_cpu" --wrk-out "$tmp/wrk-$rep-$t.txt" \
      --before "$tmp/before.json" --after "$tmp/after.json" >>"$results"
  done
done
assert_alive

# --- report ---------------------------------------------------------------------------------
META_COMMAND="$(command_line run.sh "$args_used" DURATION CONNECTIONS REPS WARMUP WAIT_QUIET \
  CLIENT_CPU PROXY_CPU UMBRA_PROXY_BIN UMBRA_PROXY_LABEL QUIET_BUSY_PCT NICE)" \
META_TITLE="median of $reps repetition(s), wrk -t1 -c$connections -d${duration}s, keep-alive${quick:+ (QUICK smoke run: not for the README)}" \
META_SETUP="Setup: $(nproc --all) cores, Linux $(uname -r); wrk and the upstream (nginx \`return 200\`, ${#body}-byte body) on core $client_cpu, the proxy alone on core $proxy_cpu with one worker (nginx worker_processes 1, HAProxy nbthread 1, umbra-proxy threads = 1, $umbra_build); keep-alive on both sides; nice $nice_level. Proxy CPU/req = utime+stime of the proxy's processes (/proc/PID/stat) over the run / requests; upstream CPU likewise for the upstream nginx." \
META_NGINX="$(nginx -v 2>&1 | sed 's|.*nginx/|nginx |')" \
META_HAPROXY="$(haproxy -v | head -1 | awk '{print "HAProxy " $3}' | sed 's/-.*//')" \
META_UMBRA="$(umbra_label)" \
META_OUT="$tmp/meta.json" \
python3 -c 'import json, os
e = os.environ
json.dump({"command": e["META_COMMAND"], "title": e["META_TITLE"], "setup": e["META_SETUP"],
           "targets": ["direct", "nginx", "haproxy", "umbra"],
           "labels": {"direct": "direct to upstream (no proxy)", "nginx": e["META_NGINX"],
                      "haproxy": e["META_HAPROXY"], "umbra": e["META_UMBRA"]}},
          open(e["META_OUT"], "w"))'
echo
python3 "$helper" report "$results" --meta "$tmp/meta.json" ${per_rep:+--per-rep}
