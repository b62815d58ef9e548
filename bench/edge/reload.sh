#!/usr/bin/env bash
# Config reloads and a binary upgrade under load, side by side: with wrk holding 32 keep-alive
# connections through the proxy (-t1 -c32), five reloads, each with a real config change (the
# value of a response header, checked to be served before going on), then one binary upgrade;
# prints wrk's socket errors by kind, non-2xx responses and errors per 100k requests, per run
# and in total.
#
#   bench/edge/reload.sh [--quick] [-r REPS] [--proxies umbra,nginx,haproxy] [--https]
#                        [--wait-quiet MIN] [--nice N]
#
# umbra-proxy: SIGHUP x5, then `umbra-proxy --upgrade` started beside it and SIGQUIT to the old
# process. nginx: `nginx -s reload` x5, then its binary upgrade (USR2 to the master, WINCH and
# QUIT to the old master). HAProxy (master-worker, -W -S): SIGUSR2 to the master x6 (the master
# re-executes the binary, so its reload is also its upgrade). --https runs the same through
# TLS listeners. --quick: 1 repetition, shorter lead and tail. Env: REPS (3), RELOADS (5),
# LEAD (2 s of load before the first reload), SPACING (1 s between reloads), TAIL (2 s of load
# after the upgrade), CONNECTIONS (32), PROXIES, NICE (0), WAIT_QUIET (0), CLIENT_CPU (0),
# PROXY_CPU (1), UMBRA_PROXY_BIN, UMBRA_PROXY_LABEL, KEEP=1 (keep the temp dir).
set -euo pipefail
source "$(dirname "$0")/edge.sh"

reps="${REPS:-3}"
reloads="${RELOADS:-5}"
lead="${LEAD:-2}"
spacing="${SPACING:-1}"
tail_secs="${TAIL:-2}"
connections="${CONNECTIONS:-32}"
proxies="${PROXIES:-umbra,nginx,haproxy}"
wait_quiet="${WAIT_QUIET:-0}"
client_cpu="${CLIENT_CPU:-0}"
proxy_cpu="${PROXY_CPU:-1}"
https=""
quick=""
nice_level=""
args_used="$*"

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; reps=1; lead=1; tail_secs=1 ;;
    -r|--reps|--repetitions) reps="$2"; shift ;;
    --proxies) proxies="$2"; shift ;;
    --https) https=1 ;;
    --wait-quiet) wait_quiet="$2"; shift ;;
    --nice) nice_level="$2"; shift ;;
    -h|--help) usage 0 ;;
    *) echo "reload.sh: unknown argument $1" >&2; usage 2 >&2 ;;
  esac
  shift
done
nice_level="${nice_level:-${NICE:-0}}"
IFS=, read -r -a proxy_list <<<"$proxies"
for p in "${proxy_list[@]}"; do
  case "$p" in
    umbra|nginx|haproxy) ;;
    *) echo "reload.sh: unknown proxy $p (umbra, nginx, haproxy)" >&2; exit 2 ;;
  esac
done

ensure_tools nginx:nginx haproxy:haproxy wrk:wrk openssl:openssl taskset:util-linux
if [ "$(nproc --all)" -lt 2 ]; then
  echo "reload.sh: needs 2 cores (wrk + upstream on one, the proxy on the other)" >&2
  exit 1
fi
umbra_bin="$(umbra_binary)"
umbra_build="dist profile"
if [ -n "${UMBRA_PROXY_BIN:-}" ]; then umbra_build="binary $UMBRA_PROXY_BIN"; fi
if [ "$wait_quiet" != 0 ]; then wait_for_quiet "$wait_quiet"; fi

open_session
taskset -cp "$client_cpu" $$ >/dev/null
scheme=http
tls=0
if [ -n "$https" ]; then scheme=https; tls=1; make_cert; fi

read -r up_port port umbra_admin < <(python3 "$helper" ports 3)
url="$scheme://127.0.0.1:$port/"
write_upstream_conf "$tmp/upstream.conf" "$up_port"
start_nginx upstream "$client_cpu" "$tmp/upstream.conf"
python3 "$helper" wait-http "http://127.0.0.1:$up_port/" --body "$body" --timeout 30 \
  || { tail -20 "$tmp/upstream.log" >&2; exit 1; }

now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
# sleep_until T0 SECS: sleeps until SECS after T0 (not at all when that has passed).
sleep_until() {
  local left
  left="$(awk -v a="$1" -v s="$2" -v b="$(now)" 'BEGIN { d = a + s - b; if (d < 0) d = 0; printf "%.3f", d }')"
  sleep "$left"
}
# wait_gone PID SECS: waits until PID has exited (and reaps it if it is our child).
wait_gone() {
  local deadline=$(( $(date +%s) + $2 ))
  while ! gone "$1"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
  wait "$1" 2>/dev/null || true
}
# old_nginx_workers OLD NEW: the old master's processes other than the new master's tree (the
# new master is the old one's child until the old one quits).
old_nginx_workers() {
  local all keep p out=""
  all="$(python3 "$helper" descendants "$1")"
  keep=" $2 $(python3 "$helper" descendants "$2") "
  for p in $all; do [[ "$keep" == *" $p "* ]] || out+="$p "; done
  echo "$out"
}
# served GEN [TIMEOUT]: waits until a new connection gets `x-bench-gen: GEN` from the proxy.
served() {
  python3 "$edge_helper" wait "$url" --header "$gen_header=$1" --body "$body" --timeout "${2:-15}"
}
die() { echo "reload.sh: $*" >&2; exit 1; }

# --- per proxy: write the config of a generation, start, reload, upgrade ----------------------
write_conf() {  # write_conf PROXY GEN
  case "$1" in
    umbra) # watch_config off: only the SIGHUPs sent here reload.
      write_edge_umbra "$tmp/umbra.toml" umbra port="$port" admin="$umbra_admin" \
        upstream="$up_port" tls="$tls" gen="$2" watch=false ;;
    nginx) # daemon on: nginx ignores USR2 while its parent is the process that started it
      # ("the changing binary signal is ignored"), so the master must detach.
      write_edge_nginx "$tmp/nginx.conf" nginx port="$port" upstream="$up_port" tls="$tls" \
        gen="$2" daemon=on ;;
    haproxy)
      write_edge_haproxy "$tmp/haproxy.cfg" haproxy port="$port" upstream="$up_port" tls="$tls" \
        gen="$2" ;;
  esac
}

start_proxy() {  # start_proxy PROXY: the proxy at generation 0; sets proxy_pid
  local i
  write_conf "$1" 0
  case "$1" in
    umbra)
      check_umbra_conf "$tmp/umbra.toml"
      rm -f "$tmp/umbra.upgrade.sock"
      start "umbra-$run_id" "$proxy_cpu" "$umbra_bin" --config "$tmp/umbra.toml"
      proxy_pid=$started
      python3 "$helper" wait-http "http://127.0.0.1:$umbra_admin/readyz" --timeout 30 \
        || { tail -20 "$tmp/umbra-$run_id.log" >&2; exit 1; } ;;
    nginx)
      rm -f "$tmp/nginx.pid" "$tmp/nginx.pid.oldbin"
      # The command returns once the master has detached; the master writes its pid file. The
      # binary upgrade executes argv[0] again, so it is an absolute path.
      taskset -c "$proxy_cpu" nice -n "$nice_level" "$(command -v nginx)" -p "$tmp" \
        -e "$tmp/nginx.error.log" -c "$tmp/nginx.conf" >"$tmp/nginx-$run_id.log" 2>&1 \
        || { cat "$tmp/nginx-$run_id.log" "$tmp/nginx.error.log" >&2; die "nginx did not start"; }
      for ((i = 0; i < 100; i++)); do
        [ -s "$tmp/nginx.pid" ] && break
        sleep 0.05
      done
      [ -s "$tmp/nginx.pid" ] || die "nginx wrote no pid file ($tmp/nginx.pid)"
      proxy_pid="$(cat "$tmp/nginx.pid")"
      adopt "$proxy_pid" ;;
    haproxy)
      # Master-worker mode in the foreground (-db), the master CLI on a unix socket (-S).
      start "haproxy-$run_id" "$proxy_cpu" haproxy -W -db -S "$tmp/haproxy-master.sock" \
        -f "$tmp/haproxy.cfg"
      proxy_pid=$started ;;
  esac
  served 0 30 || { tail -20 "$tmp/$1-$run_id.log" "$tmp/$1.error.log" 2>/dev/null >&2; exit 1; }
}

reload_proxy() {  # reload_proxy PROXY
  case "$1" in
    umbra) kill -HUP "$proxy_pid" ;;
    nginx) nginx -p "$tmp" -e "$tmp/nginx.error.log" -c "$tmp/nginx.conf" -s reload ;;
    haproxy) kill -USR2 "$proxy_pid" ;;
  esac
}

# upgrade_proxy PROXY GEN: the binary upgrade, from a config at generation GEN; records the
# step and sets proxy_pid to the process that serves afterwards.
upgrade_proxy() {
  local t0 old="$proxy_pid" new i how
  write_conf "$1" "$2"
  case "$1" in
    umbra)
      how="upgrade (--upgrade + SIGQUIT)"
      rm -f "$tmp/umbra.upgrade.sock"
      start "umbra-$run_id-upgrade" "$proxy_cpu" "$umbra_bin" --upgrade --config "$tmp/umbra.toml"
      new=$started
      # The new process listens on upgrade_sock for the old one's sockets (Pingora waits ~5 s).
      for ((i = 0; i < 100; i++)); do
        [ -S "$tmp/umbra.upgrade.sock" ] && break
        gone "$new" && break
        sleep 0.05
      done
      if [ ! -S "$tmp/umbra.upgrade.sock" ]; then
        tail -20 "$tmp/umbra-$run_id-upgrade.log" >&2
        die "umbra-proxy --upgrade did not open $tmp/umbra.upgrade.sock"
      fi
      t0="$(now)"
      kill -QUIT "$old"
      if ! wait_gone "$old" 30; then
        tail -20 "$tmp/umbra-$run_id.log" >&2
        die "old umbra-proxy (pid $old) still running 30 s after SIGQUIT"
      fi
      forget "$old"
      if gone "$new"; then
        tail -30 "$tmp/umbra-$run_id-upgrade.log" >&2
        die "the upgraded umbra-proxy (pid $new) exited"
      fi
      ;;
    nginx)
      how="binary upgrade (USR2, WINCH, QUIT)"
      t0="$(now)"
      kill -USR2 "$old"
      for ((i = 0; i < 200; i++)); do
        if [ -f "$tmp/nginx.pid.oldbin" ] && [ -s "$tmp/nginx.pid" ] \
          && [ "$(cat "$tmp/nginx.pid")" != "$old" ]; then
          break
        fi
        sleep 0.05
      done
      new="$(cat "$tmp/nginx.pid" 2>/dev/null || true)"
      if [ -z "$new" ] || [ "$new" = "$old" ]; then
        die "nginx wrote no new master pid after USR2 (see $tmp/nginx.error.log)"
      fi
      adopt "$new"
      served "$2" || die "the new nginx master (pid $new) does not serve generation $2"
      kill -WINCH "$old"  # the old workers finish their requests and exit
      for ((i = 0; i < 300; i++)); do
        [ -z "$(old_nginx_workers "$old" "$new")" ] && break
        sleep 0.05
      done
      kill -QUIT "$old"
      wait_gone "$old" 30 || die "old nginx master (pid $old) still running 30 s after QUIT"
      forget "$old"
      ;;
    haproxy)
      how="reload $((reloads + 1)) (SIGUSR2: re-executes the binary)"
      local workers
      workers="$(python3 "$helper" descendants "$old")"
      t0="$(now)"
      kill -USR2 "$old"
      new="$old"
      for i in $workers; do
        wait_gone "$i" 30 || die "old HAProxy worker (pid $i) still running 30 s after the reload"
      done
      ;;
  esac
  local exited
  exited="$(since "$t0")"
  served "$2" || die "$1 does not serve generation $2 after its upgrade"
  proxy_pid="$new"
  python3 "$edge_helper" step --file "$steps" --step upgrade --gen "$2" \
    --old-exited-after "$exited" --how "$how"
}

results="$tmp/results.jsonl"
: >"$results"
noisy=0
n=${#proxy_list[@]}
for ((rep = 1; rep <= reps; rep++)); do
  order=()
  for ((i = 0; i < n; i++)); do order+=("${proxy_list[(i + rep - 1) % n]}"); done
  log "repetition $rep/$reps: ${order[*]}"
  for p in "${order[@]}"; do
    run_id="$rep"
    steps="$tmp/steps-$p-$rep.jsonl"
    : >"$steps"
    start_proxy "$p"
    run_noisy=""
    compilers_running && run_noisy=1
    wrk_out="$tmp/wrk-$p-$rep.txt"
    # Stopped with SIGINT once the sequence is over; wrk then prints its summary as usual.
    taskset -c "$client_cpu" nice -n "$nice_level" wrk -t1 -c"$connections" -d600s \
      -s "$here/report.lua" "$url" >"$wrk_out" 2>&1 &
    wrk_pid=$!
    pids+=("$wrk_pid")
    sleep "$lead"
    for ((g = 1; g <= reloads; g++)); do
      t0="$(now)"
      write_conf "$p" "$g"
      reload_proxy "$p"
      served "$g" || die "$p does not serve generation $g 15 s after reload $g (logs in $tmp)"
      python3 "$edge_helper" step --file "$steps" --step reload --gen "$g" --served-after "$(since "$t0")"
      sleep_until "$t0" "$spacing"
    done
    upgrade_proxy "$p" $((reloads + 1))
    sleep "$tail_secs"
    gone "$wrk_pid" && { cat "$wrk_out" >&2; die "wrk exited before the end of the sequence"; }
    kill -INT "$wrk_pid"
    wait "$wrk_pid" || { cat "$wrk_out" >&2; die "wrk failed"; }
    forget "$wrk_pid"
    compilers_running && run_noisy=1
    [ -n "$run_noisy" ] && noisy=$((noisy + 1))
    python3 "$edge_helper" reload-record --proxy "$p" --run "$rep" --wrk-out "$wrk_out" \
      --steps "$steps" >>"$results"
    stop "$proxy_pid"
  done
done

# --- report ---------------------------------------------------------------------------------
META_COMMAND="$(command_line edge/reload.sh "$args_used" REPS RELOADS LEAD SPACING TAIL \
  CONNECTIONS PROXIES CLIENT_CPU PROXY_CPU UMBRA_PROXY_BIN UMBRA_PROXY_LABEL WAIT_QUIET NICE)" \
META_TITLE="wrk -t1 -c$connections over $scheme, $reloads reloads ${spacing} s apart then one binary upgrade, $reps run(s) per proxy${quick:+ (QUICK smoke run: not for the README)}" \
META_SETUP="Setup: $(nproc --all) cores, Linux $(uname -r); wrk and the upstream (nginx \`return 200\`) on core $client_cpu, the proxy on core $proxy_cpu (one worker: nginx worker_processes 1, HAProxy nbthread 1, umbra-proxy threads = 1, $umbra_build; both processes during an upgrade); keep-alive on both sides, no request-count limit on client connections; each reload changes the \`$gen_header\` response header and the next step waits until a new connection gets the new value. Errors = wrk's socket errors (connect, read, write, timeout > 2 s) + non-2xx/3xx responses, over all requests of the run (${lead} s before the first reload to ${tail_secs} s after the upgrade). nice $nice_level." \
META_NGINX="$(nginx -v 2>&1 | sed 's|.*nginx/|nginx |')" \
META_HAPROXY="$(haproxy -v | head -1 | awk '{print "HAProxy " $3}' | sed 's/-.*//')" \
META_UMBRA="$(umbra_label)" \
META_NOISY="$noisy" \
META_OUT="$tmp/meta.json" \
python3 -c 'import json, os
e = os.environ
json.dump({"command": e["META_COMMAND"], "title": e["META_TITLE"], "setup": e["META_SETUP"],
           "targets": ["umbra", "nginx", "haproxy"], "noisy_runs": int(e["META_NOISY"]),
           "labels": {"nginx": e["META_NGINX"], "haproxy": e["META_HAPROXY"],
                      "umbra": e["META_UMBRA"]}},
          open(e["META_OUT"], "w"))'
echo
python3 "$edge_helper" reload-report "$results" --meta "$tmp/meta.json"
