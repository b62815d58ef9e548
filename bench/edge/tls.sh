#!/usr/bin/env bash
# TLS termination side by side: umbra-proxy, nginx and HAProxy with the same ECDSA P-256
# certificate in front of the same upstream, measured in one run the way bench/proxy does
# (shared/PERF-NOTES.md): HTTPS keep-alive req/s and CPU/request, new connections/s with
# wrk's resumed sessions, full handshakes/s, h2 req/s (h2load) against nginx, and the cost of
# umbra-proxy's access log. Prints medians and medians of same-repetition ratios.
#
#   bench/edge/tls.sh [--quick] [-d SECS] [-r REPS] [--scenarios ka,new,full,h2]
#                     [--wait-quiet MIN] [--nice N] [--per-rep]
#
# --quick is a 2 s, 1-repetition smoke run. Env equivalents and more: DURATION (10), REPS (3),
# WARMUP (2 s per target first), SCENARIOS (ka,new,full,h2), CONNECTIONS (32: wrk -c),
# HANDSHAKE_CLIENTS (4: processes of the full-handshake client), H2_CLIENTS (32: h2load -c),
# H2_STREAMS (10: h2load -m), NICE (0), WAIT_QUIET (0), CLIENT_CPU (0: clients + upstream),
# PROXY_CPU (1: the proxies), UMBRA_PROXY_BIN (skip the dist build; UMBRA_PROXY_LABEL names
# it), KEEP=1 (keep the temp dir: certificate, configs, logs, raw results, the access log).
set -euo pipefail
source "$(dirname "$0")/edge.sh"

duration="${DURATION:-10}"
reps="${REPS:-3}"
warmup="${WARMUP:-2}"
scenarios="${SCENARIOS:-ka,new,full,h2}"
connections="${CONNECTIONS:-32}"
hs_clients="${HANDSHAKE_CLIENTS:-4}"
h2_clients="${H2_CLIENTS:-32}"
h2_streams="${H2_STREAMS:-10}"
wait_quiet="${WAIT_QUIET:-0}"
client_cpu="${CLIENT_CPU:-0}"
proxy_cpu="${PROXY_CPU:-1}"
per_rep=""
quick=""
nice_level=""
args_used="$*"

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; duration=2; reps=1; warmup=1 ;;
    -d|--duration) duration="$2"; shift ;;
    -r|--reps|--repetitions) reps="$2"; shift ;;
    --scenarios) scenarios="$2"; shift ;;
    --wait-quiet) wait_quiet="$2"; shift ;;
    --nice) nice_level="$2"; shift ;;
    --per-rep) per_rep=1 ;;
    -h|--help) usage 0 ;;
    *) echo "tls.sh: unknown argument $1" >&2; usage 2 >&2 ;;
  esac
  shift
done
duration="${duration%s}"
nice_level="${nice_level:-${NICE:-0}}"
IFS=, read -r -a scenario_list <<<"$scenarios"
for sc in "${scenario_list[@]}"; do
  case "$sc" in ka|new|full|h2) ;; *) echo "tls.sh: unknown scenario $sc (ka, new, full, h2)" >&2; exit 2 ;; esac
done

ensure_tools nginx:nginx haproxy:haproxy wrk:wrk h2load:nghttp2-client openssl:openssl \
  taskset:util-linux
if [ "$(nproc --all)" -lt 2 ]; then
  echo "tls.sh: needs 2 cores (clients + upstream on one, the proxy alone on the other)" >&2
  exit 1
fi
umbra_bin="$(umbra_binary)"
umbra_build="dist profile"
if [ -n "${UMBRA_PROXY_BIN:-}" ]; then umbra_build="binary $UMBRA_PROXY_BIN"; fi
if [ "$wait_quiet" != 0 ]; then wait_for_quiet "$wait_quiet"; fi

open_session
taskset -cp "$client_cpu" $$ >/dev/null
make_cert

read -r up_port nginx_port haproxy_port umbra_port umbra_admin log_port log_admin \
  < <(python3 "$helper" ports 7)
access_log="$tmp/access.log"
write_upstream_conf "$tmp/upstream.conf" "$up_port"
write_edge_nginx "$tmp/nginx.conf" nginx port="$nginx_port" upstream="$up_port" tls=1
write_edge_haproxy "$tmp/haproxy.cfg" haproxy port="$haproxy_port" upstream="$up_port" tls=1
write_edge_umbra "$tmp/umbra.toml" umbra port="$umbra_port" admin="$umbra_admin" \
  upstream="$up_port" tls=1
write_edge_umbra "$tmp/umbra_log.toml" umbra_log port="$log_port" admin="$log_admin" \
  upstream="$up_port" tls=1 access_log="$access_log"
check_umbra_conf "$tmp/umbra.toml"
check_umbra_conf "$tmp/umbra_log.toml"

start_nginx upstream "$client_cpu" "$tmp/upstream.conf"
upstream_pid=$started
# All proxies stay up (idle while another is measured), as in bench/proxy.
start_nginx nginx "$proxy_cpu" "$tmp/nginx.conf"
nginx_pid=$started
start haproxy "$proxy_cpu" haproxy -db -f "$tmp/haproxy.cfg"
haproxy_pid=$started
start umbra "$proxy_cpu" "$umbra_bin" --config "$tmp/umbra.toml"
umbra_pid=$started
start umbra_log "$proxy_cpu" "$umbra_bin" --config "$tmp/umbra_log.toml"
log_pid=$started

declare -A port=([nginx]=$nginx_port [haproxy]=$haproxy_port [umbra]=$umbra_port
  [umbra_log]=$log_port)
declare -A proxy_pid=([nginx]=$nginx_pid [haproxy]=$haproxy_pid [umbra]=$umbra_pid
  [umbra_log]=$log_pid)
declare -A scenario_targets=([ka]="nginx haproxy umbra umbra_log" [new]="nginx haproxy umbra"
  [full]="nginx haproxy umbra" [h2]="nginx umbra")

python3 "$helper" wait-http "http://127.0.0.1:$up_port/" --body "$body" --timeout 30 \
  || { tail -20 "$tmp/upstream.log" >&2; exit 1; }
python3 "$helper" wait-http "http://127.0.0.1:$umbra_admin/readyz" --timeout 30 \
  || { tail -20 "$tmp/umbra.log" >&2; exit 1; }
python3 "$helper" wait-http "http://127.0.0.1:$log_admin/readyz" --timeout 30 \
  || { tail -20 "$tmp/umbra_log.log" >&2; exit 1; }
for t in nginx haproxy umbra umbra_log; do
  python3 "$edge_helper" wait "https://127.0.0.1:${port[$t]}/" --body "$body" --timeout 30 \
    || { tail -20 "$tmp/$t.log" >&2; exit 1; }
done
log "all proxies serve the upstream's body over https; pids: upstream=$upstream_pid" \
  "nginx=$nginx_pid haproxy=$haproxy_pid umbra=$umbra_pid umbra_log=$log_pid; files in $tmp"

probes="{}"
for t in nginx haproxy umbra; do
  probe="$(python3 "$edge_helper" tls-probe "127.0.0.1:${port[$t]}")" \
    || { echo "tls.sh: TLS probe of $t failed" >&2; exit 1; }
  log "$t negotiates: $probe"
  probes="$(PROBES="$probes" T="$t" P="$probe" python3 -c 'import json, os
d = json.loads(os.environ["PROBES"]); d[os.environ["T"]] = json.loads(os.environ["P"]); print(json.dumps(d))')"
done

on_client() { taskset -c "$client_cpu" nice -n "$nice_level" "$@"; }
wrk_cmd="wrk -t1 -c$connections -d${duration}s"
h2_cmd="h2load -t1 -c$h2_clients -m$h2_streams -D $duration"
hs_cmd="edge.py handshakes --procs $hs_clients --seconds $duration"

# load SCENARIO TARGET SECONDS OUTFILE: one run of the scenario's client against the target.
load() {
  local sc="$1" url="https://127.0.0.1:${port[$2]}/" secs="$3" out="$4" rc=0
  case "$sc" in
    ka) on_client wrk -t1 -c"$connections" -d"${secs}s" -s "$here/report.lua" "$url" >"$out" 2>&1 || rc=$? ;;
    new) on_client wrk -t1 -c"$connections" -d"${secs}s" -H "Connection: close" \
           -s "$here/report.lua" "$url" >"$out" 2>&1 || rc=$? ;;
    full) on_client python3 "$edge_helper" handshakes "127.0.0.1:${port[$2]}" \
            --procs "$hs_clients" --seconds "$secs" >"$out" 2>"$out.err" || rc=$? ;;
    h2) on_client h2load -t1 -c"$h2_clients" -m"$h2_streams" -D "$secs" "$url" >"$out" 2>&1 || rc=$? ;;
  esac
  if [ "$rc" != 0 ]; then
    cat "$out" "$out.err" 2>/dev/null | tail -20 >&2
    echo "tls.sh: the $sc client against $2 failed (exit $rc); logs in $tmp" >&2
    return 1
  fi
}

has_scenario() { [[ ",$scenarios," == *",$1,"* ]]; }
for t in nginx haproxy umbra umbra_log; do
  log "warm-up $t ${warmup}s (keep-alive)"
  load ka "$t" "$warmup" "$tmp/warmup-ka-$t.txt"
done
if has_scenario h2; then
  for t in ${scenario_targets[h2]}; do
    log "warm-up $t ${warmup}s (h2)"
    load h2 "$t" "$warmup" "$tmp/warmup-h2-$t.txt"
  done
fi

results="$tmp/results.jsonl"
: >"$results"
declare -A kind=([ka]=wrk [new]=wrk [full]=handshakes [h2]=h2load)
for ((rep = 1; rep <= reps; rep++)); do
  for sc in "${scenario_list[@]}"; do
    read -r -a targets <<<"${scenario_targets[$sc]}"
    n=${#targets[@]}
    order=()
    for ((i = 0; i < n; i++)); do order+=("${targets[(i + rep - 1) % n]}"); done
    log "repetition $rep/$reps, $sc: ${order[*]}"
    pos=0
    for t in "${order[@]}"; do
      pos=$((pos + 1))
      procs=("upstream=$upstream_pid" "proxy=${proxy_pid[$t]}")
      out="$tmp/$sc-$rep-$t.txt"
      python3 "$helper" snap "${procs[@]}" >"$tmp/before.json"
      load "$sc" "$t" "$duration" "$out"
      python3 "$helper" snap "${procs[@]}" >"$tmp/after.json"
      python3 "$edge_helper" record --kind "${kind[$sc]}" --scenario "$sc" --target "$t" \
        --rep "$rep" --position "$pos" --proxy-cpu "$proxy_cpu" --out "$out" \
        --before "$tmp/before.json" --after "$tmp/after.json" >>"$results"
    done
  done
done
assert_alive

# The access log: lines written against requests served (the writer flushes every 200 ms).
sleep 0.5
log_lines="$(wc -l <"$access_log")"
log_requests="$(python3 - "$tmp" <<'EOF'
import glob, json, sys
n = 0
for path in glob.glob(f"{sys.argv[1]}/*-umbra_log.txt"):
    for line in open(path):
        if line.startswith("WRKJSON "):
            n += json.loads(line[8:])["requests"]
print(n)
EOF
)"
log_dropped="$(python3 -c 'import sys, urllib.request
text = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
print(next((l.split()[1] for l in text.splitlines() if l.startswith("umbra_access_log_dropped_total ")), "?"))' \
  "http://127.0.0.1:$log_admin/metrics")"

# --- report ---------------------------------------------------------------------------------
META_COMMAND="$(command_line edge/tls.sh "$args_used" DURATION REPS WARMUP SCENARIOS CONNECTIONS \
  HANDSHAKE_CLIENTS H2_CLIENTS H2_STREAMS CLIENT_CPU PROXY_CPU UMBRA_PROXY_BIN \
  UMBRA_PROXY_LABEL WAIT_QUIET QUIET_BUSY_PCT NICE)" \
META_TITLE="median of $reps repetition(s), ${duration} s per run${quick:+ (QUICK smoke run: not for the README)}" \
META_SETUP="Setup: $(nproc --all) cores, Linux $(uname -r); clients and the upstream (nginx \`return 200\`, ${#body}-byte body, plain HTTP/1.1 keep-alive from every proxy) on core $client_cpu, the proxy under test alone on core $proxy_cpu with one worker (nginx worker_processes 1, HAProxy nbthread 1, umbra-proxy threads = 1, $umbra_build); one self-signed ECDSA P-256 certificate for all; server defaults otherwise (nginx also ssl_protocols TLSv1.2 TLSv1.3). Proxy CPU = utime+stime of the proxy's processes (/proc/PID/stat) over the run / requests (connections, handshakes); proxy core busy % = the proxy core's busy share over the run: far below 100% (the full-handshake runs) means the client on the other core set the rate, and only CPU per handshake compares the proxies; nice $nice_level." \
META_NGINX="$(nginx -v 2>&1 | sed 's|.*nginx/|nginx |')" \
META_HAPROXY="$(haproxy -v | head -1 | awk '{print "HAProxy " $3}' | sed 's/-.*//')" \
META_UMBRA="$(umbra_label)" \
META_PROBES="$probes" \
META_ACCESS_LOG="Access log: umbra-proxy (access log) wrote $log_lines JSON lines to $access_log for $log_requests requests wrk completed against it (warm-up included; requests still in flight when wrk stopped are logged but not counted by wrk); umbra_access_log_dropped_total = $log_dropped." \
META_CMD_KA="\`$wrk_cmd https://…/\`" \
META_CMD_NEW="\`$wrk_cmd -H 'Connection: close' https://…/\`: wrk keeps its TLS session when it reconnects and offers it again, so these are resumed handshakes (1 request each)" \
META_CMD_FULL="\`$hs_cmd\`: every connection a full handshake (no session offered; the resumed column counts exceptions), 1 request, \`Connection: close\`" \
META_CMD_H2="\`$h2_cmd https://…/\` (ALPN h2)" \
META_OUT="$tmp/meta.json" \
python3 -c 'import json, os
e = os.environ
json.dump({"command": e["META_COMMAND"], "title": e["META_TITLE"], "setup": e["META_SETUP"],
           "targets": ["nginx", "haproxy", "umbra", "umbra_log"],
           "labels": {"nginx": e["META_NGINX"], "haproxy": e["META_HAPROXY"],
                      "umbra": e["META_UMBRA"], "umbra_log": e["META_UMBRA"] + " + access log"},
           "probes": json.loads(e["META_PROBES"]), "access_log": e["META_ACCESS_LOG"],
           "commands": {"ka": e["META_CMD_KA"], "new": e["META_CMD_NEW"],
                        "full": e["META_CMD_FULL"], "h2": e["META_CMD_H2"]}},
          open(e["META_OUT"], "w"))'
echo
python3 "$edge_helper" tls-report "$results" --meta "$tmp/meta.json" ${per_rep:+--per-rep}
