# Shared by run.sh and callgrind.sh (sourced): tools, the umbra-proxy dist binary, process
# lifetime (everything started is killed on exit), free ports and the configs of all targets.
# shellcheck shell=bash

export PATH="/usr/sbin:/sbin:$PATH"  # nginx and haproxy live in sbin on Debian
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
helper="$here/bench.py"
# 64 bytes, so the response is one small segment on every hop.
body="umbra-proxy bench: a 64-byte fixed body from the upstream nginx."

log() { printf '[bench] %s\n' "$*" >&2; }

# ensure_tools CMD:PACKAGE...: apt-get installs the packages whose command is missing.
ensure_tools() {
  local missing=() spec sudo=""
  for spec in "$@"; do
    command -v "${spec%%:*}" >/dev/null || missing+=("${spec#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  # Installing nginx may start the distribution's service on :80; it is not used here.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# umbra_binary: prints the path of umbra-proxy, building it with the dist profile (fat LTO,
# one codegen unit, panic=abort) unless UMBRA_PROXY_BIN names one.
umbra_binary() {
  if [ -n "${UMBRA_PROXY_BIN:-}" ]; then
    [ -x "$UMBRA_PROXY_BIN" ] || { echo "no executable at UMBRA_PROXY_BIN=$UMBRA_PROXY_BIN" >&2; return 1; }
    echo "$UMBRA_PROXY_BIN"
    return 0
  fi
  local target_dir="${CARGO_TARGET_DIR:-}"
  if [ -z "$target_dir" ]; then
    target_dir="$(cd "$repo" && cargo metadata --format-version 1 --no-deps \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')" || return 1
  fi
  log "building umbra-proxy with --profile dist (slow: fat LTO of Pingora)"
  # Explicit returns: errexit does not reach into the $(umbra_binary) of the callers.
  (cd "$repo" && cargo build --profile dist -p proxy --bin umbra-proxy >&2) || return 1
  echo "$target_dir/dist/umbra-proxy"
}

# umbra_label: "umbra-proxy (<commit>[+dirty])" for the binary built here (dirty when the
# proxy's sources differ from HEAD); for UMBRA_PROXY_BIN, UMBRA_PROXY_LABEL or the path.
umbra_label() {
  local rev
  if [ -n "${UMBRA_PROXY_BIN:-}" ]; then
    echo "umbra-proxy (${UMBRA_PROXY_LABEL:-$UMBRA_PROXY_BIN})"
    return 0
  fi
  rev="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if [ -n "$(git -C "$repo" status --porcelain -- proxy/src config/src policies/src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    rev="$rev+dirty"
  fi
  echo "umbra-proxy ($rev, dist)"
}

# command_line SCRIPT "ARGS" VAR...: the command as typed, with the env settings that were used.
# SCRIPT is a file of bench/proxy (run.sh) or a path under bench/ (edge/tls.sh).
command_line() {
  local script="$1" args="$2" v val out=""
  shift 2
  for v in "$@"; do
    val="${!v:-}"
    [ -z "$val" ] && continue
    case "$val" in
      *[!A-Za-z0-9_./:=+-]*) out+="$v='${val//\'/\'\\\'\'}' " ;;
      *) out+="$v=$val " ;;
    esac
  done
  case "$script" in */*) script="bench/$script" ;; *) script="bench/proxy/$script" ;; esac
  echo "${out}$script${args:+ $args}"
}

compilers_running() { pgrep -x rustc >/dev/null || pgrep -x cargo >/dev/null; }

# quiet: no rustc/cargo, and no core more than QUIET_BUSY_PCT (15) % busy over 5 s (test
# binaries and linkers are load that pgrep for rustc misses).
quiet() {
  local busy
  compilers_running && return 1
  busy="$(python3 "$helper" busy --seconds 5)"
  [ "$busy" -le "${QUIET_BUSY_PCT:-15}" ] || { log "no compiler, but a core is $busy% busy"; return 1; }
}

# wait_for_quiet MINUTES: polls every 30 s until quiet twice in a row, at most MINUTES.
wait_for_quiet() {
  local deadline=$(( $(date +%s) + $1 * 60 )) streak=0
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if quiet; then
      streak=$((streak + 1))
      [ "$streak" -ge 2 ] && return 0
    else
      streak=0
      log "machine busy; waiting for a quiet moment (until $(date -d "@$deadline" +%T))"
    fi
    sleep 30
  done
  log "still not quiet after $1 min; measuring anyway (see the Noise line)"
}

# --- process lifetime -------------------------------------------------------------------------
# open_session: a temp dir for configs, logs and results, and the exit trap that kills every
# process started with `start` (by pid) and removes the dir (kept when KEEP=1).
open_session() {
  tmp="$(mktemp -d -t umbra-proxy-bench.XXXXXX)"
  mkdir -p "$tmp/nginx-tmp"
  pids=()
  trap cleanup EXIT
  trap 'exit 130' INT TERM
}
cleanup() {
  local p kids
  for p in "${pids[@]}"; do
    kids="$(python3 "$helper" descendants "$p" 2>/dev/null || true)"
    # shellcheck disable=SC2086  # kids is a list of pids
    kill -TERM "$p" $kids 2>/dev/null || true
  done
  sleep 0.5
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
}

# start NAME CPU CMD...: runs CMD pinned to CPU at nice $nice_level (0 unless the caller
# sets it), output to $tmp/NAME.log; sets $started.
start() {
  local name="$1" cpu="$2"
  shift 2
  taskset -c "$cpu" nice -n "${nice_level:-0}" "$@" >"$tmp/$name.log" 2>&1 &
  started=$!
  pids+=("$started")
}

# gone PID: the process has exited (a zombie not yet reaped counts as exited).
gone() { [ ! -e "/proc/$1" ] || grep -q '^[0-9]* (.*) Z ' "/proc/$1/stat" 2>/dev/null; }

# stop PID: TERM to PID and its descendants, KILL to those still there after 3 s; reaps PID if
# it is a child and forgets it, so that the exit trap never signals a recycled pid.
stop() {
  local p="$1" kids k i
  kids="$(python3 "$helper" descendants "$p" 2>/dev/null || true)"
  for k in "$p" $kids; do kill -TERM "$k" 2>/dev/null || true; done
  for ((i = 0; i < 30; i++)); do
    gone "$p" && break
    sleep 0.1
  done
  for k in "$p" $kids; do gone "$k" || kill -KILL "$k" 2>/dev/null || true; done
  wait "$p" 2>/dev/null || true
  forget "$p"
}

# forget PID: a started process that exited by design (the old one after an upgrade).
forget() {
  local kept=() p
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || kept+=("$p"); done
  pids=("${kept[@]}")
}

# adopt PID: a process another one started and that will outlive it (nginx's new master after
# USR2 is reparented when the old master quits), so the exit trap kills it too.
adopt() { pids+=("$1"); }

# assert_alive: fails when any started process has exited (a crash would skew the numbers).
assert_alive() {
  local p
  for p in "${pids[@]}"; do
    kill -0 "$p" 2>/dev/null || { echo "a benchmarked process (pid $p) died; logs in $tmp" >&2; return 1; }
  done
}

# --- configs ----------------------------------------------------------------------------------
# nginx closes a keep-alive connection after 1000 requests by default; every hop here keeps its
# connections for the whole run so that no target pays for reconnects the others skip.
nginx_preamble() {  # nginx_preamble NAME [master_process] [daemon]
  cat <<EOF
worker_processes 1;
master_process ${2:-on};
daemon ${3:-off};
pid $tmp/$1.pid;
error_log $tmp/$1.error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 16384; }
EOF
}
nginx_http_common() {
  cat <<EOF
    access_log off;
    keepalive_requests 1000000000;
    keepalive_timeout 300s;
    client_body_temp_path $tmp/nginx-tmp/body;
    proxy_temp_path $tmp/nginx-tmp/proxy;
    fastcgi_temp_path $tmp/nginx-tmp/fastcgi;
    uwsgi_temp_path $tmp/nginx-tmp/uwsgi;
    scgi_temp_path $tmp/nginx-tmp/scgi;
EOF
}

write_upstream_conf() {  # write_upstream_conf FILE PORT
  {
    nginx_preamble upstream
    echo "http {"
    nginx_http_common
    cat <<EOF
    server {
        listen 127.0.0.1:$2;
        location / { default_type text/plain; return 200 "$body"; }
    }
}
EOF
  } >"$1"
}

write_nginx_conf() {  # write_nginx_conf FILE PORT UPSTREAM_PORT [master_process]
  {
    nginx_preamble nginx "${4:-on}"
    echo "http {"
    nginx_http_common
    cat <<EOF
    upstream bench {
        server 127.0.0.1:$3;
        keepalive 64;
        keepalive_requests 1000000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:$2;
        location / {
            proxy_pass http://bench;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
  } >"$1"
}

write_haproxy_conf() {  # write_haproxy_conf FILE PORT UPSTREAM_PORT
  cat >"$1" <<EOF
global
    nbthread 1
    maxconn 4000

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 300s
    http-reuse always

frontend bench
    bind 127.0.0.1:$2
    default_backend upstream

backend upstream
    server up 127.0.0.1:$3
EOF
}

write_umbra_conf() {  # write_umbra_conf FILE PORT ADMIN_PORT UPSTREAM_PORT
  cat >"$1" <<EOF
[proxy]
listen = "127.0.0.1:$2"
admin_listen = "127.0.0.1:$3"
threads = 1

# Clients keep their connections, as nginx's keepalive_requests is raised for the others.
[proxy.client]
keepalive_requests = 0

[[workloads]]
name = "bench"
path_prefix = "/"
primary = ["127.0.0.1:$4"]
EOF
}

# start_nginx NAME CPU CONF [RUNNER...]: nginx with its error log in $tmp (not /var/log).
start_nginx() {
  local name="$1" cpu="$2" conf="$3"
  shift 3
  start "$name" "$cpu" "$@" nginx -p "$tmp" -e "$tmp/$name.error.log" -c "$conf"
}
