# Sourced by the live benchmarks (bench/live.sh, bench/tc-compare/run.sh): two network
# namespaces joined by a veth pair, and nginx serving test files from a private config.
# The caller sets NS_S NS_C VETH_S VETH_C IP_S IP_C WORK and defines die().

# lab_network: the namespaces and the veth (MTU 1500, offloads off, no IPv6 chatter).
lab_network() {
  ip netns add "$NS_S"
  ip netns add "$NS_C"
  ip link add "$VETH_S" netns "$NS_S" type veth peer name "$VETH_C" netns "$NS_C"
  local side ns_var veth_var ip_var ns veth addr
  for side in S C; do
    ns_var=NS_$side veth_var=VETH_$side ip_var=IP_$side
    ns=${!ns_var} veth=${!veth_var} addr=${!ip_var}
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
    ip -n "$ns" link set "$veth" mtu 1500
    ip -n "$ns" addr add "$addr/24" dev "$veth"
    ip netns exec "$ns" ethtool -K "$veth" tso off gso off gro off >/dev/null
    ip -n "$ns" link set "$veth" up
  done
}

# lab_nginx HTTP_EXTRA SERVER_EXTRA: nginx in $NS_S on $IP_S:80 serving $WORK/www
# (tiny.txt 200 bytes, 4k.txt 4 KiB, 1m.bin 1 MiB) with keepalive_timeout 15 10 and
# keepalive_requests 1000, the extra lines added to its http and server blocks; waits until
# it answers. Sets NGINX_PID.
lab_nginx() {
  mkdir -p "$WORK/www" "$WORK/tmp"
  head -c 199 /dev/zero | tr '\0' 'a' > "$WORK/www/tiny.txt"; echo >> "$WORK/www/tiny.txt"
  head -c 4095 /dev/zero | tr '\0' 'b' > "$WORK/www/4k.txt"; echo >> "$WORK/www/4k.txt"
  head -c 1048576 /dev/urandom > "$WORK/www/1m.bin"
  chmod 644 "$WORK/www/"*
  cat > "$WORK/nginx.conf" <<NGINX
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    default_type text/plain;
    sendfile on;
    keepalive_timeout 15 10;
    keepalive_requests 1000;
    client_body_temp_path $WORK/tmp/body;
    proxy_temp_path $WORK/tmp/proxy;
    fastcgi_temp_path $WORK/tmp/fastcgi;
    uwsgi_temp_path $WORK/tmp/uwsgi;
    scgi_temp_path $WORK/tmp/scgi;
    $1
    server {
        listen $IP_S:80;
        root $WORK/www;
        $2
    }
}
NGINX
  ip netns exec "$NS_S" nginx -p "$WORK/" -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" \
    > "$WORK/nginx.out" 2>&1 &
  NGINX_PID=$!
  local i
  for ((i = 0; i < 50; i++)); do
    ip netns exec "$NS_C" curl -fsS -o /dev/null "http://$IP_S/tiny.txt" 2>/dev/null && break
    kill -0 "$NGINX_PID" 2>/dev/null || { cat "$WORK/nginx.out" "$WORK/nginx-error.log" >&2; die "nginx exited"; }
    sleep 0.1
  done
  [ "$i" -lt 50 ] || die "nginx does not answer on http://$IP_S/tiny.txt"
}

now() { date +%s.%N; }
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }   # utime + stime of PID
