# Shared by bench/edge/tls.sh and reload.sh (sourced): bench/proxy/common.sh (tools, the
# umbra-proxy binary, process lifetime, the upstream and nginx preamble), plus a test certificate
# and the configs of the three proxies as edge proxies: TLS listeners, and a response header
# whose value changes with every reload.
# shellcheck shell=bash

edge_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../proxy/common.sh
source "$edge_dir/../proxy/common.sh"
edge_helper="$edge_dir/edge.py"
# The response header a reload changes: the reload benchmark checks the new value is served.
gen_header="x-bench-gen"

# make_cert: one self-signed ECDSA P-256 certificate for all three proxies: $tmp/cert.pem and
# $tmp/key.pem (PKCS#8), and $tmp/haproxy.pem (both, the form HAProxy's `crt` takes).
make_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" >"$tmp/openssl-req.log" 2>&1 \
    || { cat "$tmp/openssl-req.log" >&2; echo "make_cert: openssl req failed" >&2; return 1; }
  cat "$tmp/cert.pem" "$tmp/key.pem" >"$tmp/haproxy.pem"
}

# The config writers take FILE NAME and then key=value options:
#   port=PORT upstream=PORT  the listener (127.0.0.1) and the upstream
#   tls=1                    the listener speaks TLS with $tmp/cert.pem (ALPN h2, http/1.1)
#   gen=N                    every response carries `x-bench-gen: N`
# plus, for umbra-proxy, admin=PORT, access_log=FILE and watch=true|false, and for nginx
# daemon=on (the master then detaches; see reload.sh).
edge_opts() {  # edge_opts KEY=VALUE...: sets opt_<KEY> for each, after clearing the known ones
  local kv
  opt_port="" opt_upstream="" opt_tls="" opt_gen="" opt_admin="" opt_access_log="" opt_watch=""
  opt_daemon=""
  for kv in "$@"; do
    case "$kv" in
      port=* | upstream=* | tls=* | gen=* | admin=* | access_log=* | watch=* | daemon=*)
        printf -v "opt_${kv%%=*}" '%s' "${kv#*=}" ;;
      *) echo "edge_opts: unknown option $kv" >&2; return 1 ;;
    esac
  done
  if [ -z "$opt_port" ] || [ -z "$opt_upstream" ]; then
    echo "edge_opts: port= and upstream= are required" >&2
    return 1
  fi
}

# write_edge_nginx FILE NAME OPTS...: nginx as the proxy under test (one worker, keep-alive
# upstream pool). nginx 1.22 leaves TLSv1.3 out of its default ssl_protocols, so it is named
# here (the others negotiate 1.3 by default). The pool keeps 128 idle connections, Pingora's
# default upstream pool size, so that h2's 320 concurrent streams do not make nginx alone
# reconnect upstream.
write_edge_nginx() {
  local file="$1" name="$2" listen
  shift 2
  edge_opts "$@" || return 1
  listen="listen 127.0.0.1:$opt_port;"
  if [ "$opt_tls" = 1 ]; then
    listen="listen 127.0.0.1:$opt_port ssl http2;
        ssl_certificate $tmp/cert.pem;
        ssl_certificate_key $tmp/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;"
  fi
  {
    nginx_preamble "$name" on "${opt_daemon:-off}"
    echo "http {"
    nginx_http_common
    cat <<EOF
    upstream bench {
        server 127.0.0.1:$opt_upstream;
        keepalive 128;
        keepalive_requests 1000000000;
        keepalive_timeout 300s;
    }
    server {
        $listen
        location / {
            proxy_pass http://bench;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            ${opt_gen:+add_header $gen_header $opt_gen always;}
        }
    }
}
EOF
  } >"$file"
}

# write_edge_haproxy FILE NAME OPTS...: HAProxy with one thread, as bench/proxy runs it. The
# stats socket with `expose-fd listeners` lets a master-worker reload pass the listening sockets
# to the new worker (HAProxy's documented seamless reload) instead of binding them again.
write_edge_haproxy() {
  local file="$1" name="$2" bind_tls=""
  shift 2
  edge_opts "$@" || return 1
  [ "$opt_tls" = 1 ] && bind_tls=" ssl crt $tmp/haproxy.pem alpn h2,http/1.1"
  cat >"$file" <<EOF
global
    nbthread 1
    maxconn 4000
    stats socket $tmp/$name.stats.sock mode 600 level admin expose-fd listeners

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 300s
    http-reuse always

frontend bench
    bind 127.0.0.1:$opt_port$bind_tls
${opt_gen:+    http-response set-header $gen_header $opt_gen
}    default_backend upstream

backend upstream
    server up 127.0.0.1:$opt_upstream
EOF
}

# write_edge_umbra FILE NAME OPTS...: umbra-proxy with one thread; plain `listen` or
# `[proxy.tls]` (not both); `keepalive_requests = 0` so that, as on nginx (keepalive_requests
# raised in common.sh) and HAProxy, no client connection is closed after a request count;
# upgrade_sock in the temp dir.
write_edge_umbra() {
  local file="$1" name="$2"
  shift 2
  edge_opts "$@" || return 1
  [ -n "$opt_admin" ] || { echo "write_edge_umbra: admin= is required" >&2; return 1; }
  {
    echo "[proxy]"
    [ "$opt_tls" = 1 ] || echo "listen = \"127.0.0.1:$opt_port\""
    cat <<EOF
admin_listen = "127.0.0.1:$opt_admin"
threads = 1
upgrade_sock = "$tmp/$name.upgrade.sock"
EOF
    [ -n "$opt_watch" ] && echo "watch_config = $opt_watch"
    cat <<EOF

[proxy.client]
keepalive_requests = 0
EOF
    if [ "$opt_tls" = 1 ]; then
      cat <<EOF

[proxy.tls]
listen = "127.0.0.1:$opt_port"
certificates = [{ cert = "$tmp/cert.pem", key = "$tmp/key.pem" }]
EOF
    fi
    if [ -n "$opt_access_log" ]; then
      cat <<EOF

[proxy.access_log]
path = "$opt_access_log"
EOF
    fi
    cat <<EOF

[[workloads]]
name = "bench"
path_prefix = "/"
primary = ["127.0.0.1:$opt_upstream"]
EOF
    if [ -n "$opt_gen" ]; then
      cat <<EOF

[workloads.response_headers]
set = { "$gen_header" = "$opt_gen" }
EOF
    fi
  } >"$file"
}

# check_umbra_conf FILE: `umbra-proxy --check` (config and certificates), failing with its words.
check_umbra_conf() {
  "$umbra_bin" --check --config "$1" >"$tmp/umbra-check.log" 2>&1 \
    || { cat "$tmp/umbra-check.log" >&2; echo "umbra-proxy --check $1 failed" >&2; return 1; }
}
