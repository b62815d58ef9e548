#!/usr/bin/env bash
# Instructions per request of umbra-proxy, nginx and HAProxy under valgrind's callgrind, for a
# fixed number of keep-alive requests: unlike req/s and CPU time, instruction counts barely
# move when other work shares the machine (shared/PERF-NOTES.md). Prints the counts, the ratios,
# and where umbra-proxy's instructions go (top functions, memcpy callers, by crate).
#
#   bench/proxy/callgrind.sh [-n REQUESTS] [-c CONNS] [--top N] [--only "umbra nginx haproxy"]
#
# Env equivalents: CG_REQUESTS (5000), CG_WARMUP (500 requests before counting), CG_CONNECTIONS
# (32), TOP (30), ONLY, CLIENT_CPU (0), PROXY_CPU (1), UMBRA_PROXY_BIN (skip the dist build;
# UMBRA_PROXY_LABEL names it), KEEP=1 (keep the temp dir with the callgrind dumps for
# callgrind_annotate or kcachegrind).
# Counting starts after the warm-up (`callgrind_control -z`) and ends with a dump
# (`callgrind_control -d`), so start-up and shutdown are not in the numbers.
set -euo pipefail
source "$(dirname "$0")/common.sh"

requests="${CG_REQUESTS:-5000}"
warmup="${CG_WARMUP:-500}"
connections="${CG_CONNECTIONS:-32}"
top="${TOP:-30}"
only="${ONLY:-umbra nginx haproxy}"
client_cpu="${CLIENT_CPU:-0}"
proxy_cpu="${PROXY_CPU:-1}"
args_used="$*"

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--requests) requests="$2"; shift ;;
    -c|--connections) connections="$2"; shift ;;
    --top) top="$2"; shift ;;
    --only) only="$2"; shift ;;
    -h|--help) usage 0 ;;
    *) echo "callgrind.sh: unknown argument $1" >&2; usage 2 >&2 ;;
  esac
  shift
done

ensure_tools nginx:nginx haproxy:haproxy valgrind:valgrind taskset:util-linux
umbra_bin=""
if [[ " $only " == *" umbra "* ]]; then umbra_bin="$(umbra_binary)"; fi

open_session
taskset -cp "$client_cpu" $$ >/dev/null

read -r up_port nginx_port haproxy_port umbra_port umbra_admin < <(python3 "$helper" ports 5)
write_upstream_conf "$tmp/upstream.conf" "$up_port"
# One process (no master) so that callgrind sees the worker itself.
write_nginx_conf "$tmp/nginx.conf" "$nginx_port" "$up_port" off
write_haproxy_conf "$tmp/haproxy.cfg" "$haproxy_port" "$up_port"
write_umbra_conf "$tmp/umbra.toml" "$umbra_port" "$umbra_admin" "$up_port"

start_nginx upstream "$client_cpu" "$tmp/upstream.conf"
python3 "$helper" wait-http "http://127.0.0.1:$up_port/" --body "$body" --timeout 30

cg_control() {  # callgrind_control exits 0 even when it finds no such process
  local out
  out="$(callgrind_control "$@" 2>&1)"
  grep -q "OK" <<<"$out" || { echo "callgrind_control $*: $out" >&2; exit 1; }
}

declare -A port=([nginx]=$nginx_port [haproxy]=$haproxy_port [umbra]=$umbra_port)
declare -A label=([nginx]="$(nginx -v 2>&1 | sed 's|.*nginx/|nginx |')"
                  [haproxy]="$(haproxy -v | head -1 | awk '{print "HAProxy " $3}' | sed 's/-.*//')"
                  [umbra]="$(umbra_label)")
results="$tmp/callgrind.jsonl"
: >"$results"

for t in $only; do
  cg=(valgrind --tool=callgrind --callgrind-out-file="$tmp/callgrind.$t")
  case "$t" in
    umbra) cmd=("${cg[@]}" "$umbra_bin" --config "$tmp/umbra.toml") ;;
    nginx) cmd=("${cg[@]}" nginx -p "$tmp" -e "$tmp/nginx.error.log" -c "$tmp/nginx.conf") ;;
    haproxy) cmd=("${cg[@]}" haproxy -db -f "$tmp/haproxy.cfg") ;;
    *) echo "callgrind.sh: unknown target $t (umbra, nginx, haproxy)" >&2; exit 2 ;;
  esac
  log "$t under callgrind on core $proxy_cpu"
  start "$t" "$proxy_cpu" "${cmd[@]}"
  pid=$started
  python3 "$helper" wait-http "http://127.0.0.1:${port[$t]}/" --body "$body" --timeout 180 \
    || { tail -20 "$tmp/$t.log" >&2; exit 1; }
  taskset -c "$client_cpu" python3 "$helper" load "127.0.0.1:${port[$t]}" \
    --requests "$warmup" --connections "$connections"
  cg_control -z "$pid"
  log "$t: counting $requests requests over $connections connections"
  taskset -c "$client_cpu" python3 "$helper" load "127.0.0.1:${port[$t]}" \
    --requests "$requests" --connections "$connections"
  cg_control -d "$pid"
  dump="$tmp/callgrind.$t.1"
  for _ in $(seq 100); do [ -s "$dump" ] && grep -q '^totals:' "$dump" && break; sleep 0.2; done
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  python3 "$helper" callgrind "$dump" --target "$t" --requests "$requests" --json >>"$results"
done

echo
echo "### Instructions per request under callgrind ($requests keep-alive requests over $connections connections, after $warmup warm-up)"
echo
python3 - "$results" "${label[umbra]}" "${label[nginx]}" "${label[haproxy]}" <<'EOF'
import json, sys
recs = {r["target"]: r for r in map(json.loads, open(sys.argv[1]))}
labels = dict(zip(["umbra", "nginx", "haproxy"], sys.argv[2:5]))
umbra = recs.get("umbra")
print("| proxy | instructions/request | umbra-proxy / this | allocator calls/req "
      "| task spawns/req | syscalls/req | syscalls by name, per request |")
print("|---|---:|---:|---:|---:|---:|---|")
for t, r in recs.items():
    n, c = r["requests"], r["calls"]
    ratio = "–" if t == "umbra" or not umbra else f"{umbra['ir_per_request'] / r['ir_per_request']:.2f}"
    sc = {k: v / n for k, v in c["syscalls"].items() if v / n >= 0.01}
    names = ", ".join(f"{k} {v:.2f}" for k, v in sorted(sc.items(), key=lambda kv: -kv[1]))
    print(f"| {labels[t]} | {r['ir_per_request']:,.0f} | {ratio} | {c['allocator_calls'] / n:.1f} "
          f"| {c['task_spawns'] / n:.2f} | {sum(c['syscalls'].values()) / n:.2f} | {names} |")
EOF
echo
echo "User-space instructions only (callgrind does not see the kernel); per request = counted / requests."
echo "Allocator calls: malloc/free-family entries from outside the allocator; syscalls: calls of libc"
echo "wrappers (under valgrind, so the batching per epoll_wait differs from a native run)."
echo
echo "Command: \`$(command_line callgrind.sh "$args_used" CG_REQUESTS CG_WARMUP CG_CONNECTIONS TOP \
  ONLY CLIENT_CPU PROXY_CPU UMBRA_PROXY_BIN UMBRA_PROXY_LABEL)\`"
if [[ " $only " == *" umbra "* ]]; then
  echo
  python3 "$helper" callgrind "$tmp/callgrind.umbra.1" --target umbra-proxy \
    --requests "$requests" --top "$top"
fi
