#!/bin/bash
# record.sh - record kascope's small reference captures (captures/*.pcap) from real servers
# (nginx, Apache, Python) and real clients (curl, captures/clients/*.py).
#
# usage: sudo captures/record.sh [NAME ...]
#   NAME = capture basename (e.g. pipeline-5-apache); default: all scenarios.
#   env: OUTDIR=dir (default: this script's directory), KEEP_TMP=1 (keep the temp dir with
#        server configs and logs), NO_FIXTURES=1 (skip make_fixtures.sh at the end),
#        RACE_APACHE_SLEEPS / RACE_NGINX_SLEEPS="S1 S2 ..." (idle times of the race captures).
#
# Network: two network namespaces created here, ksRecS<pid> (server, 10.201.0.1/24) and ksRecC<pid>
# (client, 10.201.0.2/24), joined by a veth pair (MTU 1500; tso/gso/gro/tx-checksum offloads
# off so the capture holds real <=1514-byte frames with valid checksums; IPv6 off and static
# neighbour entries so the captures hold only IPv4/TCP, no ARP/ICMPv6 noise).
# Servers run inside ksRecS<pid> with private configs in a temp dir: nginx :80, Apache (mpm_event)
# :8080, python3 -m http.server :8000, captures/servers/chunked_server.py :8001,
# captures/servers/liar_server.py :8002, Python's smtpd (SMTP) :25.
# One tcpdump per scenario on the server veth (-s 0 --immediate-mode -U); traffic starts only
# after tcpdump prints "listening on", and tcpdump is stopped (SIGINT) 1.7 s after the last
# client exits so the final FIN/ACKs are in the file.
# Everything started here is stopped on exit (trap), also on failure or Ctrl-C; namespaces
# are deleted.
# Run time: ~60 s for all scenarios, plus ~15 s for make_fixtures.sh.
set -Eeuo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUTDIR=${OUTDIR:-$HERE}
PY=${PYTHON:-python3}
# Names carry the process id, so that runs by several people at once do not meet.
S=ksRecS$$; C=ksRecC$$; SDEV=ksS$$; CDEV=ksC$$
SIP=10.201.0.1; CIP=10.201.0.2
POST_WAIT=1.7           # seconds between the last client action and stopping tcpdump
MAX_SIZE=204800         # warn above this many bytes per capture
export PYTHONDONTWRITEBYTECODE=1 LC_ALL=C

ALL=(nginx-keepalive-curl connection-close pipeline-5 chunked head-304
     max-requests-nginx idle-timeout-nginx
     apache-keepalive-curl pipeline-5-apache max-requests-apache idle-timeout-apache
     python-http-server chunked-trailer
     noncompliant-server race-apache race-nginx http10-keepalive
     tcp-keepalive pool-safe pool-risk pool-race
     malformed-heads-nginx malformed-heads-apache smtp-python fragments-vxlan-python)

die()  { echo "record.sh: ERROR: $*" >&2; exit 1; }
warn() { echo "record.sh: WARNING: $*" >&2; }
say()  { echo "== $*"; }

[ "$(id -u)" = 0 ] || die "must run as root: sudo $0"
for t in ip ethtool tcpdump nginx apache2 curl ss "$PY"; do
  command -v "$t" >/dev/null || die "missing command: $t"
done
for n in "$@"; do
  [[ " ${ALL[*]} " == *" $n "* ]] || die "unknown capture '$n' (known: ${ALL[*]})"
done
want() { [ $# -ge 1 ] || return 1; local n; for n in "${WANT[@]}"; do [ "$n" = "$1" ] && return 0; done; return 1; }
if [ $# -gt 0 ]; then WANT=("$@"); else WANT=("${ALL[@]}"); fi
want_any() { local n; for n in "$@"; do want "$n" && return 0; done; return 1; }

TMP=""; TCPDUMP_PID=""; NGINX_PIDFILE=""; APACHE_PIDFILE=""; PY_PID=""

# --- process / namespace helpers ----------------------------------------------------------
kill_wait() {  # PID...: SIGTERM, wait up to 3 s, then SIGKILL
  local p i alive
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for i in $(seq 30); do
    alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && return 0
    sleep 0.1
  done
  for p in "$@"; do kill -KILL "$p" 2>/dev/null || true; done
}
ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }
ns_cleanup() {  # stop every process left inside our two namespaces, then delete them
  local ns pids
  for ns in $S $C; do
    if ns_exists $ns; then
      pids=$(ip netns pids $ns 2>/dev/null || true)
      [ -n "$pids" ] && kill_wait $pids
      ip netns del $ns 2>/dev/null || true
    fi
  done
}
pidfile_pid() { [ -n "$1" ] && [ -s "$1" ] && cat "$1" || true; }
wait_port() {  # PORT up|down
  local i
  for i in $(seq 100); do
    if [ -n "$(ip netns exec $S ss -Hltn "sport = :$1" 2>/dev/null)" ]; then
      [ "$2" = up ] && return 0
    else
      [ "$2" = down ] && return 0
    fi
    sleep 0.05
  done
  die "port $1 did not go $2 within 5 s"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM ERR
  set +e
  if [ -n "$TCPDUMP_PID" ]; then kill -INT "$TCPDUMP_PID" 2>/dev/null; wait "$TCPDUMP_PID" 2>/dev/null; fi
  local p
  p=$(pidfile_pid "$NGINX_PIDFILE");  [ -n "$p" ] && kill_wait "$p"
  p=$(pidfile_pid "$APACHE_PIDFILE"); [ -n "$p" ] && kill_wait "$p"
  [ -n "$PY_PID" ] && kill_wait "$PY_PID"
  ns_cleanup
  if [ -n "$TMP" ]; then
    if [ -n "${KEEP_TMP:-}" ]; then echo "record.sh: temp dir kept: $TMP"; else rm -rf "$TMP"; fi
  fi
  [ $rc = 0 ] || echo "record.sh: failed (exit $rc); everything started was stopped" >&2
  exit $rc
}
trap cleanup EXIT
trap 'echo "record.sh: interrupted" >&2; exit 130' INT TERM
trap 'echo "record.sh: command failed (line $LINENO): $BASH_COMMAND" >&2' ERR

# --- setup ---------------------------------------------------------------------------------
T_START=$(date +%s)
ns_cleanup
TMP=$(mktemp -d /tmp/ksrec.XXXXXX)
chmod 755 "$TMP"
mkdir -p "$TMP/www" "$TMP/nginx-tmp" "$OUTDIR"

say "network: $S ($SIP) <-veth $SDEV/$CDEV-> $C ($CIP)"
ip netns add $S
ip netns add $C
ip link add $SDEV netns $S type veth peer name $CDEV netns $C
for ns in $S $C; do
  ip netns exec $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n $ns link set lo up
done
ip -n $S addr add $SIP/24 dev $SDEV
ip -n $C addr add $CIP/24 dev $CDEV
ip -n $S link set $SDEV mtu 1500 up
ip -n $C link set $CDEV mtu 1500 up
ip netns exec $S ethtool -K $SDEV tso off gso off gro off tx off >/dev/null 2>&1 || die "ethtool -K $SDEV failed"
ip netns exec $C ethtool -K $CDEV tso off gso off gro off tx off >/dev/null 2>&1 || die "ethtool -K $CDEV failed"
CMAC=$(ip netns exec $C cat /sys/class/net/$CDEV/address)
SMAC=$(ip netns exec $S cat /sys/class/net/$SDEV/address)
ip -n $S neigh replace $CIP lladdr "$CMAC" dev $SDEV nud permanent
ip -n $C neigh replace $SIP lladdr "$SMAC" dev $CDEV nud permanent

# --- content: deterministic files with a fixed mtime (so Last-Modified/ETag are stable) ----
"$PY" - "$TMP/www" <<'PYEOF'
import os, random, sys
d = sys.argv[1]
random.seed(20240102)
words = ("keep alive connection request response server client pipeline chunk header "
         "timeout close persistent socket stream segment window latency idle reuse "
         "proxy balancer nginx apache curl wire capture packet frame byte").split()
def text(n):
    out, line = [], []
    while sum(map(len, out)) < n:
        line.append(random.choice(words))
        if len(line) >= random.randint(6, 14):
            out.append(" ".join(line) + ".\n"); line = []
    return "".join(out)[:n - 1] + "\n"
def write(name, s):
    with open(os.path.join(d, name), "w") as f:
        f.write(s)
write("tiny.txt", text(200))
html = "<!DOCTYPE html>\n<html><head><title>kascope</title><link rel=stylesheet href=style.css></head>\n<body><h1>kascope test page</h1>\n<p>"
write("index.html", (html + text(600 - len(html) - 16) + "</p></body></html>\n")[:600])
write("page.html", html + text(4096 - len(html) - 20) + "</p></body></html>\n")
write("style.css", "".join(f".c{i} {{ margin: {i}px; padding: {i % 7}px; color: #{i * 4099 % 0xffffff:06x}; }}\n" for i in range(1, 40)))
write("big.txt", text(64 * 1024))
PYEOF
chmod 644 "$TMP"/www/*
touch -d '2024-01-02 03:04:05 UTC' "$TMP"/www/*
LASTMOD=$(date -u -r "$TMP/www/index.html" '+%a, %d %b %Y %H:%M:%S GMT')

# --- servers -------------------------------------------------------------------------------
nginx_start() {  # NAME KEEPALIVE_TIMEOUT KEEPALIVE_REQUESTS
  local name=$1 conf=$TMP/nginx-$1.conf
  cat > "$conf" <<NG
# private nginx config written by captures/record.sh (variant $name)
worker_processes 1;
pid $TMP/nginx-$name.pid;
error_log $TMP/nginx-$name.error.log info;
events { worker_connections 64; }
http {
  types { text/html html; text/plain txt; text/css css; }
  default_type application/octet-stream;
  access_log $TMP/nginx-$name.access.log;
  client_body_temp_path $TMP/nginx-tmp; proxy_temp_path $TMP/nginx-tmp;
  fastcgi_temp_path $TMP/nginx-tmp; uwsgi_temp_path $TMP/nginx-tmp; scgi_temp_path $TMP/nginx-tmp;
  sendfile on;
  ${NGINX_EXTRA:-}
  keepalive_timeout $2;
  keepalive_requests $3;
  # only used when the client sends Accept-Encoding: gzip (chunked.pcap)
  gzip on; gzip_types text/plain text/css; gzip_min_length 1000; chunked_transfer_encoding on;
  gzip_buffers 2 2k;  # small gzip output buffers -> nginx flushes the body in several chunks
  server { listen $SIP:80; server_name ks-nginx; root $TMP/www; }
}
NG
  NGINX_PIDFILE=$TMP/nginx-$name.pid
  ip netns exec $S nginx -p "$TMP/" -e "$TMP/nginx-$name.error.log" -c "$conf"
  wait_port 80 up
  say "nginx ($name): keepalive_timeout $2; keepalive_requests $3"
}
nginx_stop() {
  local p; p=$(pidfile_pid "$NGINX_PIDFILE")
  [ -n "$p" ] && kill_wait "$p"
  NGINX_PIDFILE=""
  wait_port 80 down
}

apache_start() {  # NAME MaxKeepAliveRequests KeepAliveTimeout
  local name=$1 conf=$TMP/apache-$1.conf run=$TMP/apache-$1.run
  mkdir -p "$run"
  cat > "$conf" <<AP
# private Apache config written by captures/record.sh (variant $name)
ServerRoot $TMP
ServerName ks-apache
Listen $SIP:8080
PidFile $TMP/apache-$name.pid
DefaultRuntimeDir $run
Mutex file:$run default
ErrorLog $TMP/apache-$name.error.log
LogLevel warn
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule dir_module /usr/lib/apache2/modules/mod_dir.so
LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so
# %k = number of keep-alive requests handled on the connection before this one
LogFormat "%h:%{remote}p \"%r\" %>s %b keepalive#%k" ks
CustomLog $TMP/apache-$name.access.log ks
User www-data
Group www-data
TypesConfig /dev/null
AddType text/html .html
AddType text/plain .txt
AddType text/css .css
KeepAlive On
MaxKeepAliveRequests $2
KeepAliveTimeout $3
StartServers 1
ServerLimit 1
ThreadLimit 16
ThreadsPerChild 16
MinSpareThreads 1
MaxSpareThreads 16
MaxRequestWorkers 16
DocumentRoot $TMP/www
DirectoryIndex index.html
<Directory />
  Require all denied
</Directory>
<Directory $TMP/www>
  Require all granted
</Directory>
AP
  APACHE_PIDFILE=$TMP/apache-$name.pid
  ip netns exec $S apache2 -f "$conf" -k start
  wait_port 8080 up
  say "apache ($name): KeepAlive On; MaxKeepAliveRequests $2; KeepAliveTimeout $3"
}
apache_stop() {
  local p; p=$(pidfile_pid "$APACHE_PIDFILE")
  [ -n "$p" ] && kill_wait "$p"
  APACHE_PIDFILE=""
  wait_port 8080 down
}

py_start() {  # PORT CMD...: a Python server in the server namespace
  local port=$1; shift
  ip netns exec $S "$@" > "$TMP/pyserver-$port.log" 2>&1 &
  PY_PID=$!
  wait_port "$port" up
}
py_stop() { [ -n "$PY_PID" ] && kill_wait "$PY_PID"; PY_PID=""; }

# --- capture -------------------------------------------------------------------------------
CUR=""
cap_start() {  # NAME
  CUR=$1
  local err=$TMP/$CUR.tcpdump.txt i
  rm -f "$TMP/$CUR.pcap"
  say "capture $CUR"
  ip netns exec $S tcpdump -i $SDEV -s 0 --immediate-mode -U -Z root -w "$TMP/$CUR.pcap" 2> "$err" &
  TCPDUMP_PID=$!
  for i in $(seq 100); do
    grep -q 'listening on' "$err" && return 0
    kill -0 "$TCPDUMP_PID" 2>/dev/null || die "tcpdump exited: $(cat "$err")"
    sleep 0.05
  done
  die "tcpdump did not print 'listening on' within 5 s"
}
cap_stop() {
  local err=$TMP/$CUR.tcpdump.txt size
  sleep $POST_WAIT
  kill -INT "$TCPDUMP_PID"
  wait "$TCPDUMP_PID" || true
  TCPDUMP_PID=""
  grep -q '^0 packets dropped by kernel' "$err" || warn "$CUR: tcpdump reports drops: $(tr '\n' ' ' < "$err")"
  size=$(stat -c %s "$TMP/$CUR.pcap")
  [ "$size" -le $MAX_SIZE ] || warn "$CUR.pcap is $size bytes (> $MAX_SIZE)"
  cp "$TMP/$CUR.pcap" "$OUTDIR/$CUR.pcap"
  chmod 644 "$OUTDIR/$CUR.pcap"
  [ -n "${SUDO_UID:-}" ] && chown "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" "$OUTDIR/$CUR.pcap"
  echo "   -> $OUTDIR/$CUR.pcap ($size bytes; $(grep -o '^[0-9]* packets captured' "$err"))"
  RECORDED+=("$CUR")
}
client() {  # run a client command in the client namespace, log its output
  echo "   \$ ${*/#$HERE\//}"
  if ! ip netns exec $C "$@" 2>&1 | sed 's/^/     /'; then
    die "client command failed (capture $CUR): $*"
  fi
}
RECORDED=()

N="http://$SIP"; A="http://$SIP:8080"
CW='%{http_code} %{url_effective} size=%{size_download} new_connections=%{num_connects} local_port=%{local_port}\n'
SEQ=("$PY" "$HERE/clients/sequential.py")
PIPE=("$PY" "$HERE/clients/pipeline.py")
RACE=("$PY" "$HERE/clients/race.py")
MALFORMED=("$PY" "$HERE/clients/malformed.py")
POOL=("$PY" "$HERE/clients/pool.py" --host $SIP)

# --- nginx, default keep-alive (keepalive_timeout 15 10; keepalive_requests 100) -----------
if want_any nginx-keepalive-curl connection-close pipeline-5 chunked head-304 malformed-heads-nginx; then
  nginx_start default "15 10" 100
  if want nginx-keepalive-curl; then
    cap_start nginx-keepalive-curl
    for i in 1 2; do
      client curl -sS -w "$CW" -o /dev/null -o /dev/null -o /dev/null -o /dev/null \
        $N/index.html $N/tiny.txt $N/style.css $N/page.html
    done
    cap_stop
  fi
  if want connection-close; then
    cap_start connection-close
    client curl -sS -w "$CW" -H 'Connection: close' -o /dev/null -o /dev/null $N/index.html $N/tiny.txt
    cap_stop
  fi
  if want pipeline-5; then
    cap_start pipeline-5
    client "${PIPE[@]}" --host $SIP --port 80 --count 5 /tiny.txt /index.html /style.css
    cap_stop
  fi
  if want chunked; then
    cap_start chunked
    client curl -sS -w "$CW" -H 'Accept-Encoding: gzip' -o /dev/null -o /dev/null $N/big.txt $N/page.html
    cap_stop
  fi
  if want head-304; then
    cat > "$TMP/head-304.req" <<REQ
HEAD /index.html HTTP/1.1
Host: {host}
User-Agent: kascope-sequential/1.0
Accept: */*

GET /index.html HTTP/1.1
Host: {host}
User-Agent: kascope-sequential/1.0
Accept: */*
If-Modified-Since: $LASTMOD

GET /index.html HTTP/1.1
Host: {host}
User-Agent: kascope-sequential/1.0
Accept: */*
REQ
    cap_start head-304
    client "${SEQ[@]}" --host $SIP --port 80 --raw "$TMP/head-304.req"
    cap_stop
  fi
  if want malformed-heads-nginx; then
    # one connection per malformed head (NUL bytes, space before the colon, folded length,
    # bad byte in a name), each with Content-Length: 840 and a body that looks like a request
    cap_start malformed-heads-nginx
    client "${MALFORMED[@]}" --host $SIP --port 80
    cap_stop
  fi
  nginx_stop
fi

# --- nginx, short keep-alive (keepalive_timeout 3 3; keepalive_requests 4) ----------------
if want_any max-requests-nginx idle-timeout-nginx; then
  nginx_start short "3 3" 4
  if want max-requests-nginx; then
    cap_start max-requests-nginx
    client "${SEQ[@]}" /tiny.txt 6 --host $SIP --port 80 --keepalive
    cap_stop
  fi
  if want idle-timeout-nginx; then
    cap_start idle-timeout-nginx
    client "${SEQ[@]}" /tiny.txt 1 --host $SIP --port 80 --keepalive --idle 6
    cap_stop
  fi
  nginx_stop
fi

# --- nginx, 2 s keep-alive (keepalive_timeout 2 2; keepalive_requests 100): the race -------
if want race-nginx; then
  # same client as race-apache: idle 1.990 s, 2.002 s (nginx closes 2.0006-2.0045 s after the
  # response: either way) and 2.010 s (after the FIN: RST). Env RACE_NGINX_SLEEPS overrides.
  nginx_start race "2 2" 100
  cap_start race-nginx
  client "${RACE[@]}" --host $SIP --port 80 --path /tiny.txt --pause 0.3 \
    $(for s in ${RACE_NGINX_SLEEPS:-1.990 2.002 2.010}; do echo --sleep $s; done)
  cap_stop
  nginx_stop
fi

# --- TCP keep-alive probes: nginx keepalive_timeout 4 4 -------------------------------------
if want tcp-keepalive; then
  # :80 - the client probes: SO_KEEPALIVE, TCP_KEEPIDLE 1 s, TCP_KEEPINTVL 1 s; it reuses its
  # connection after 3.5 s idle, then waits for nginx's idle close at 4 s.
  # :81 - the server probes (listen so_keepalive=1:1:5): one request, then nginx's idle close.
  NGINX_EXTRA="server { listen $SIP:81 so_keepalive=1:1:5; server_name ks-probe; root $TMP/www; }" \
    nginx_start probe "4 4" 100
  cap_start tcp-keepalive
  client "${POOL[@]}" --port 81 --workers 1 --requests 1 --max-idle 0 --agent kascope-plain/1.0 &
  PROBED=$!
  client "${POOL[@]}" --port 80 --workers 1 --requests 2 --min-idle 3.5 --max-idle 3.5 \
    --tcp-keepalive 1:1 --agent kascope-keepalive/1.0
  wait $PROBED
  cap_stop
  nginx_stop
fi

# --- client pools against nginx and Apache at once: reuse gaps against the idle timeout ------
# nginx: keepalive_timeout 2 (one value: no Keep-Alive header at all), keepalive_requests 4.
# Apache: KeepAliveTimeout 3, MaxKeepAliveRequests 4 (it serves 5; 'timeout=3, max=4').
# Each pool: 3 workers x 6 requests, idle gaps drawn uniformly from [MIN, MAX] (seeded), then
# each worker waits for the server's idle close. pool-safe: gaps comfortably below the timeout
# (nginx 0.5-1.0 s, Apache 0.75-1.5 s), plus a second pool whose own idle timeout (0.6 s)
# closes first; pool-risk: just under it (1.6-1.95 s, 2.6-2.95 s); pool-race: up to past it
# (1.3-2.6 s, 1.9-3.8 s).
if want_any pool-safe pool-risk pool-race; then
  nginx_start pool 2 4
  apache_start pool 4 3
  pool_capture() {  # NAME NGINX_GAPS APACHE_GAPS [EXTRA_POOL_ARGS...]; GAPS = "MIN MAX"
    local name=$1 pid extra=""
    local -a gn=($2) ga=($3)
    shift 3
    cap_start "$name"
    client "${POOL[@]}" --port 80 --min-idle "${gn[0]}" --max-idle "${gn[1]}" --seed 1 &
    pid=$!
    if [ $# -gt 0 ]; then client "${POOL[@]}" "$@" & extra=$!; fi
    client "${POOL[@]}" --port 8080 --min-idle "${ga[0]}" --max-idle "${ga[1]}" --seed 2
    wait $pid
    [ -n "$extra" ] && wait "$extra"
    cap_stop
  }
  want pool-safe && pool_capture pool-safe "0.5 1.0" "0.75 1.5" --port 80 --workers 2 \
    --requests 3 --max-idle 0.4 --then close:0.6 --agent kascope-shortpool/2.0 --seed 3
  want pool-risk && pool_capture pool-risk "1.6 1.95" "2.6 2.95"
  want pool-race && pool_capture pool-race "1.3 2.6" "1.9 3.8"
  apache_stop
  nginx_stop
fi

# --- Apache, default keep-alive (MaxKeepAliveRequests 100, KeepAliveTimeout 5) -------------
if want_any apache-keepalive-curl http10-keepalive malformed-heads-apache; then
  apache_start default 100 5
  if want apache-keepalive-curl; then
    cap_start apache-keepalive-curl
    client curl -sS -w "$CW" -H 'Connection: keep-alive' -o /dev/null -o /dev/null -o /dev/null \
      $A/index.html $A/tiny.txt $A/style.css
    cap_stop
  fi
  if want http10-keepalive; then
    # HTTP/1.0 keep-alive: 3 requests with 'Connection: keep-alive' on one connection, then the
    # client closes; then one plain HTTP/1.0 request (Apache closes after the response, the
    # client waits for that close with --idle so the server's FIN is reliably first).
    for p in /index.html /tiny.txt /style.css; do
      printf 'GET %s HTTP/1.0\nHost: {host}\nUser-Agent: kascope-sequential/1.0\nAccept: */*\nConnection: keep-alive\n\n' "$p"
    done > "$TMP/http10-ka.req"
    printf 'GET /tiny.txt HTTP/1.0\nHost: {host}\nUser-Agent: kascope-sequential/1.0\nAccept: */*\n' > "$TMP/http10-close.req"
    cap_start http10-keepalive
    client "${SEQ[@]}" --host $SIP --port 8080 --raw "$TMP/http10-ka.req"
    client "${SEQ[@]}" --host $SIP --port 8080 --raw "$TMP/http10-close.req" --idle 3
    cap_stop
  fi
  if want malformed-heads-apache; then
    cap_start malformed-heads-apache
    client "${MALFORMED[@]}" --host $SIP --port 8080
    cap_stop
  fi
  apache_stop
fi

# --- Apache, short keep-alive (MaxKeepAliveRequests 3, KeepAliveTimeout 2) ----------------
if want_any pipeline-5-apache max-requests-apache idle-timeout-apache race-apache; then
  apache_start short 3 2
  if want pipeline-5-apache; then
    cap_start pipeline-5-apache
    client "${PIPE[@]}" --host $SIP --port 8080 --count 5 --keepalive /tiny.txt /index.html /style.css
    cap_stop
  fi
  if want max-requests-apache; then
    cap_start max-requests-apache
    client "${SEQ[@]}" /tiny.txt 6 --host $SIP --port 8080 --keepalive
    cap_stop
  fi
  if want idle-timeout-apache; then
    cap_start idle-timeout-apache
    client "${SEQ[@]}" /tiny.txt 1 --host $SIP --port 8080 --keepalive --idle 5
    cap_stop
  fi
  if want race-apache; then
    # keep-alive race: 3 connections, each sends request 2 after idling 1.990 s (before
    # KeepAliveTimeout 2: answered), 2.0022 s (Apache closes 2.0007-2.0031 s after the
    # response: either way) and 2.010 s (after the server's FIN: lost). Env RACE_APACHE_SLEEPS
    # overrides the list. See docs/captures.md.
    cap_start race-apache
    client "${RACE[@]}" --host $SIP --port 8080 --path /tiny.txt --pause 0.3 \
      $(for s in ${RACE_APACHE_SLEEPS:-1.990 2.0022 2.010}; do echo --sleep $s; done)
    cap_stop
  fi
  apache_stop
fi

# --- Python servers ------------------------------------------------------------------------
if want python-http-server; then
  py_start 8000 "$PY" -m http.server 8000 --bind $SIP --directory "$TMP/www"
  cap_start python-http-server
  client curl -sS -w "$CW" -o /dev/null -o /dev/null http://$SIP:8000/index.html http://$SIP:8000/tiny.txt
  cap_stop
  py_stop
fi
if want chunked-trailer; then
  py_start 8001 "$PY" "$HERE/servers/chunked_server.py" --bind $SIP --port 8001
  cap_start chunked-trailer
  client curl -sS -w "$CW" -o /dev/null -o /dev/null http://$SIP:8001/one http://$SIP:8001/two
  cap_stop
  py_stop
fi
if want noncompliant-server; then
  # liar_server.py advertises 'Keep-Alive: timeout=10, max=2' but answers any number of
  # requests and closes idle connections after 1 s. Connection 1: 5 requests, then idle until
  # the server's FIN; connection 2: 1 request, then idle until the server's FIN.
  py_start 8002 "$PY" "$HERE/servers/liar_server.py" --bind $SIP --port 8002 --directory "$TMP/www" --idle 1.0
  cap_start noncompliant-server
  client "${SEQ[@]}" /tiny.txt 5 --host $SIP --port 8002 --keepalive --idle 4
  client "${SEQ[@]}" /tiny.txt 1 --host $SIP --port 8002 --keepalive --idle 4
  cap_stop
  py_stop
fi

if want fragments-vxlan-python; then
  # A VXLAN overlay given the underlay's MTU (1500, not 1450; no lower device named, so the
  # kernel allows it) between the two namespaces,
  # with path-MTU discovery off on the server (its segments leave DF clear): each full-size
  # segment makes a VXLAN packet 50 bytes too large for the veth, which the kernel sends as
  # two IPv4 fragments, as a misconfigured overlay does. Python's http.server on the overlay.
  VX=ksVx$$; SVX=10.202.0.1; CVX=10.202.0.2
  ip -n $S link add $VX type vxlan id 42 dstport 4789 local $SIP remote $CIP
  ip -n $C link add $VX type vxlan id 42 dstport 4789 local $CIP remote $SIP
  ip -n $S addr add $SVX/24 dev $VX
  ip -n $C addr add $CVX/24 dev $VX
  for ns in $S $C; do
    ip -n $ns link set $VX mtu 1500 up
    ip netns exec $ns ethtool -K $VX tso off gso off gro off tx off >/dev/null 2>&1 || true
  done
  ip netns exec $S sysctl -qw net.ipv4.ip_no_pmtu_disc=1
  ip -n $S neigh replace $CVX lladdr "$(ip netns exec $C cat /sys/class/net/$VX/address)" dev $VX nud permanent
  ip -n $C neigh replace $SVX lladdr "$(ip netns exec $S cat /sys/class/net/$VX/address)" dev $VX nud permanent
  py_start 8003 "$PY" -m http.server 8003 --bind $SVX --directory "$TMP/www"
  cap_start fragments-vxlan-python
  client curl -sS -w "$CW" -o /dev/null -o /dev/null http://$SVX:8003/page.html http://$SVX:8003/big.txt
  cap_stop
  py_stop
  ip netns exec $S sysctl -qw net.ipv4.ip_no_pmtu_disc=0
  ip -n $S link del $VX
  ip -n $C link del $VX
fi

if want smtp-python; then
  # Python's smtpd (a real SMTP server: it greets first) and smtplib sending one mail whose
  # body holds lines that look like HTTP.
  py_start 25 "$PY" -W ignore -m smtpd -n -c DebuggingServer $SIP:25
  cap_start smtp-python
  client "$PY" -c "import smtplib; s = smtplib.SMTP('$SIP', 25); s.sendmail('alice@example.com', ['bob@example.org'], 'Subject: proxy log\r\n\r\nGET /index.html HTTP/1.1\r\nHTTP/1.1 502 Bad Gateway\r\n'); s.quit(); print('mail sent')"
  cap_stop
  py_stop
fi

say "recorded ${#RECORDED[@]} capture(s) in $(( $(date +%s) - T_START )) s: ${RECORDED[*]}"

# --- fixtures (tshark oracle CSVs) ---------------------------------------------------------
if [ -z "${NO_FIXTURES:-}" ] && [ ${#RECORDED[@]} -gt 0 ]; then
  if OUTDIR="$OUTDIR" "$HERE/make_fixtures.sh" "${RECORDED[@]}"; then
    [ -n "${SUDO_UID:-}" ] && for n in "${RECORDED[@]}"; do
      chown "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" "$OUTDIR/$n.streams.csv" 2>/dev/null || true; done
  else
    warn "make_fixtures.sh failed; the .streams.csv files may be stale"
  fi
fi
exit 0
