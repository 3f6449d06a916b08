#!/usr/bin/env bash
# Live-capture benchmark: how many packets/s kascope keeps up with on a veth, and its CPU cost.
#
# usage: sudo bench/live.sh            (needs root: network namespaces, packet capture)
#        sudo bench/live.sh ebpf       libpcap and --ebpf side by side (see below)
#
# Two network namespaces ksLbS (server 10.203.0.1) and ksLbC (client 10.203.0.2) joined by a
# veth pair (MTU 1500, tso/gso/gro off). nginx serves a 200-byte and a 4 KiB file from a
# private config in a temp dir (keepalive_timeout 15 10, keepalive_requests 1000). For every
# step a fresh kascope captures on the server-side veth
#     ip netns exec ksLbS target/release/kascope -i ksLbS0 --no-progress -q
# while wrk runs in the client namespace:
#     wrk -t1 -c C -d 8s http://10.203.0.1/tiny.txt        for C in 1 2 4 8 16 32 64
# then kascope is stopped with SIGINT and its "captured N packets in S s" line and any
# "the kernel dropped N packets" warning are read from its stderr. A last step runs at a fixed
# moderate rate: wrk -t1 -c 2 -d 10s against /paced/tiny.txt, which nginx's limit_req holds to
# LIVE_PACED_RATE requests/s (delayed, not rejected).
#
# Columns: conns; wrk req/s; pkts/s seen = kascope's packet count / wrk's wall time; wire
# pkts/s = rx+tx packet counters of the server veth over the same window (what kascope should
# have seen); kascope CPU% and nginx CPU% = CPU seconds (utime+stime from /proc/PID/stat,
# sampled just before wrk starts and just before SIGINT, i.e. including a 1 s drain) / wrk's
# wall time, 100% = one core; wrk CPU likewise, from /usr/bin/time; CPUs busy = non-idle
# share of all CPUs (/proc/stat) while wrk runs, 100% = every core (other processes count
# too: run it on an otherwise idle machine); kernel drops as kascope reports them; reqs
# seen/wrk = requests in kascope's summary vs requests wrk completed (kascope also counts
# the few still in flight when wrk stops).
#
# `ebpf` mode: each step runs TWO fresh kascopes on the same veth at once, one through libpcap
# and one with --ebpf, while wrk runs at its highest rate against a small body (/tiny.txt,
# 200 bytes, c=64) and a large one (/1m.bin, 1 MiB, c=8). For each it prints CPU seconds and
# CPU% (as above), the bytes on the wire and the bytes delivered to user space from its
# closing line ("captured N packets in S s: W bytes on the wire, D delivered to user space
# (P%), K packets dropped by the kernel"), kernel drops and the requests it counted.
#
# env:
#   KASCOPE          kascope binary (default target/release/kascope, built first with cargo)
#   LIVE_CONNS       connection counts (default "1 2 4 8 16 32 64")
#   LIVE_DURATION    seconds per step (default 8)
#   LIVE_PATH        path requested in the load steps (default /tiny.txt; /4k.txt is the 4 KiB file)
#   LIVE_PACED_RATE  requests/s of the fixed-rate step (default 1000; 0 skips the step)
#   LIVE_RESULTS     also write the table as tab-separated values to this file
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT"

MODE=load
case "${1:-}" in
  -h|--help) sed -n '2,/^set -euo/{/^set/d;p}' "$0"; exit 0 ;;
  "") ;;
  ebpf) MODE=ebpf ;;
  *) echo "live: unknown argument: $1" >&2; exit 2 ;;
esac

log() { printf 'live: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
. "$HERE/lab.sh"

[ "$(id -u)" -eq 0 ] || die "run as root (network namespaces and packet capture)"
for tool in ip ethtool nginx wrk curl; do
  command -v "$tool" >/dev/null || die "$tool not found"
done

CONNS=${LIVE_CONNS:-1 2 4 8 16 32 64}
DURATION=${LIVE_DURATION:-8}
URL_PATH=${LIVE_PATH:-/tiny.txt}
PACED_RATE=${LIVE_PACED_RATE:-1000}
PACED_CONNS=2
PACED_DURATION=10
DRAIN=1                      # seconds between wrk's end and SIGINT, for kascope to catch up

NS_S=ksLbS NS_C=ksLbC
VETH_S=ksLbS0 VETH_C=ksLbC0
IP_S=10.203.0.1 IP_C=10.203.0.2
HZ=$(getconf CLK_TCK)

KASCOPE_DEFAULT=target/release/kascope
KASCOPE=${KASCOPE:-$KASCOPE_DEFAULT}
if [ "$KASCOPE" = "$KASCOPE_DEFAULT" ]; then
  cargo build --release --locked >&2
fi
[ -x "$KASCOPE" ] || die "kascope binary $KASCOPE not found"
KASCOPE=$(cd "$(dirname "$KASCOPE")" && pwd)/$(basename "$KASCOPE")

# One run at a time: the namespace names are fixed. With the lock held, namespaces of those
# names are leftovers of a run that was killed hard, and are removed.
exec 9> /run/kascope-live-bench.lock
flock -n 9 || die "another bench/live.sh is running"
for ns in "$NS_S" "$NS_C"; do
  if ip netns list | grep -qw "$ns"; then log "removing leftover namespace $ns"; ip netns del "$ns"; fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kascope-live.XXXXXX")
chmod 755 "$WORK"
NGINX_PID="" KAS_PID="" WRK_PID=""

stop_pid() {   # stop_pid PID SIGNAL: signal, wait up to 3 s, then SIGKILL
  local pid=$1 sig=$2 i
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < 30; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  set +e
  local child
  if [ -n "$WRK_PID" ]; then   # wrk runs as the child of /usr/bin/time
    for child in $(ps -o pid= --ppid "$WRK_PID"); do stop_pid "$child" TERM; done
  fi
  stop_pid "$WRK_PID" TERM
  for pid in $KAS_PID; do stop_pid "$pid" TERM; done
  stop_pid "$NGINX_PID" QUIT
  ip netns del "$NS_C" 2>/dev/null
  ip netns del "$NS_S" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

busy_idle() {   # "busy_ticks total_ticks" over all CPUs
  awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit}' /proc/stat
}
b0=$(busy_idle); sleep 1; b1=$(busy_idle)
busy=$(awk -v a="$b0" -v b="$b1" 'BEGIN {split(a, x, " "); split(b, y, " "); printf "%.0f", 100 * (y[1] - x[1]) / (y[2] - x[2])}')
if [ "$busy" -gt 20 ]; then
  log "warning: the CPUs are already ${busy}% busy; other processes will distort the numbers"
fi

# ---- network and nginx (bench/lab.sh)
lab_network
lab_nginx "limit_req_zone \$server_name zone=paced:1m rate=$((PACED_RATE > 0 ? PACED_RATE : 1))r/s;" \
  "server_name kascope-live-bench; location /paced/ { alias $WORK/www/; limit_req zone=paced burst=1000; }"
for p in /tiny.txt /4k.txt /1m.bin /paced/tiny.txt; do
  size=$(ip netns exec "$NS_C" curl -fsS "http://$IP_S$p" | wc -c)
  log "GET $p -> $size bytes"
done

# ---- measurement helpers
wire_packets() {
  ip netns exec "$NS_S" cat "/sys/class/net/$VETH_S/statistics/rx_packets" \
    "/sys/class/net/$VETH_S/statistics/tx_packets" | awk '{s += $1} END {print s}'
}

printf 'label\tconns\twrk_reqs\twrk_rps\tkas_packets\tpkts_s_seen\twire_pkts_s\tkas_cpu_pct\tnginx_cpu_pct\tkernel_drops\tkas_reqs\twall_s\tkas_cpu_s\tall_cpus_busy_pct\twrk_cpu_pct\n' \
  > "$WORK/results.tsv"

# start_kascope OUT ERR [ARGS...]: a kascope on the server veth; sets STARTED to its PID once
# it says it is capturing.
start_kascope() {
  local out=$1 err=$2 i; shift 2
  : > "$err"
  ip netns exec "$NS_S" "$KASCOPE" -i "$VETH_S" --no-progress -q "$@" > "$out" 2> "$err" &
  STARTED=$!
  for ((i = 0; i < 100; i++)); do
    grep -q 'capturing on' "$err" && break
    kill -0 "$STARTED" 2>/dev/null || { cat "$err" >&2; die "kascope exited"; }
    sleep 0.05
  done
  [ "$i" -lt 100 ] || die "kascope did not start capturing"
  [ "$(cat "/proc/$STARTED/comm")" = kascope ] || die "PID $STARTED is not kascope"
}

# step LABEL CONNS SECONDS URL_PATH
step() {
  local label=$1 conns=$2 secs=$3 path=$4
  log "step $label: wrk -t1 -c $conns -d ${secs}s http://$IP_S$path"
  start_kascope "$WORK/kas.out" "$WORK/kas.err"
  KAS_PID=$STARTED
  sleep 0.3

  local k0 n0 w0 t0 t1 k1 n1 w1 rc b0 b1
  k0=$(cpu_ticks "$KAS_PID"); n0=$(cpu_ticks "$NGINX_PID"); w0=$(wire_packets); b0=$(busy_idle); t0=$(now)
  ip netns exec "$NS_C" /usr/bin/time -f '%U %S' -o "$WORK/wrk.time" \
    wrk -t1 -c "$conns" -d "${secs}s" "http://$IP_S$path" > "$WORK/wrk.out" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || { cat "$WORK/wrk.out" >&2; die "wrk failed"; }
  WRK_PID=""
  t1=$(now); b1=$(busy_idle)
  sleep "$DRAIN"
  k1=$(cpu_ticks "$KAS_PID"); n1=$(cpu_ticks "$NGINX_PID"); w1=$(wire_packets)
  kill -INT "$KAS_PID"
  rc=0; wait "$KAS_PID" || rc=$?
  KAS_PID=""
  [ "$rc" -eq 0 ] || { cat "$WORK/kas.err" >&2; die "kascope exited with status $rc"; }

  local packets drops reqs wrk_reqs wrk_rps wrk_cpu errors
  packets=$(sed -n 's/.*captured \([0-9]*\) packets in .*/\1/p' "$WORK/kas.err")
  [ -n "$packets" ] || { cat "$WORK/kas.err" >&2; die "no 'captured N packets' line from kascope"; }
  drops=$(sed -n 's/.*the kernel dropped \([0-9]*\) packets.*/\1/p' "$WORK/kas.err")
  drops=${drops:-0}
  reqs=$(sed -n 's/.*connections.*, \([0-9]*\) requests,.*/\1/p' "$WORK/kas.out" | head -1)
  wrk_reqs=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$WORK/wrk.out")
  wrk_rps=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk.out")
  wrk_cpu=$(awk '{print $1 + $2}' "$WORK/wrk.time")
  errors=$(grep -E 'Non-2xx|Socket errors' "$WORK/wrk.out" || true)
  [ -z "$errors" ] || log "wrk: $errors"
  grep -v -e 'capturing on' -e 'captured .* packets in' "$WORK/kas.err" >&2 || true

  awk -v OFS='\t' -v label="$label" -v c="$conns" -v wr="$wrk_reqs" -v rps="$wrk_rps" \
      -v p="$packets" -v t0="$t0" -v t1="$t1" -v w="$((w1 - w0))" -v kc="$((k1 - k0))" \
      -v nc="$((n1 - n0))" -v hz="$HZ" -v d="$drops" -v r="${reqs:-?}" -v b0="$b0" -v b1="$b1" -v wc="$wrk_cpu" 'BEGIN {
    split(b0, x, " "); split(b1, y, " ")
    wall = t1 - t0
    print label, c, wr, rps, p, sprintf("%.0f", p / wall), sprintf("%.0f", w / wall),
          sprintf("%.1f", 100 * kc / hz / wall), sprintf("%.1f", 100 * nc / hz / wall), d, r,
          sprintf("%.2f", wall), sprintf("%.2f", kc / hz),
          sprintf("%.0f", 100 * (y[1] - x[1]) / (y[2] - x[2])), sprintf("%.1f", 100 * wc / wall)
  }' >> "$WORK/results.tsv"
  tail -1 "$WORK/results.tsv" | awk -F'\t' '{printf "live:   %s req/s, %s pkts/s seen, kascope %s%% CPU, %s kernel drops\n", $4, $6, $8, $10}' >&2
}

# compare_step LABEL CONNS SECONDS URL_PATH: libpcap and --ebpf on the same traffic.
compare_step() {
  local label=$1 conns=$2 secs=$3 path=$4 pcap ebpf
  log "step $label (libpcap and --ebpf at once): wrk -t1 -c $conns -d ${secs}s http://$IP_S$path"
  start_kascope "$WORK/pcap.out" "$WORK/pcap.err"; pcap=$STARTED
  start_kascope "$WORK/ebpf.out" "$WORK/ebpf.err" --ebpf; ebpf=$STARTED
  KAS_PID="$pcap $ebpf"
  sleep 0.3
  local p0 e0 p1 e1 t0 t1 rc which
  p0=$(cpu_ticks "$pcap"); e0=$(cpu_ticks "$ebpf"); t0=$(now)
  ip netns exec "$NS_C" wrk -t1 -c "$conns" -d "${secs}s" "http://$IP_S$path" > "$WORK/wrk.out" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || { cat "$WORK/wrk.out" >&2; die "wrk failed"; }
  WRK_PID=""
  t1=$(now)
  sleep "$DRAIN"
  p1=$(cpu_ticks "$pcap"); e1=$(cpu_ticks "$ebpf")
  for which in "$pcap" "$ebpf"; do
    kill -INT "$which"
    rc=0; wait "$which" || rc=$?
    [ "$rc" -eq 0 ] || { cat "$WORK/pcap.err" "$WORK/ebpf.err" >&2; die "kascope exited with status $rc"; }
  done
  KAS_PID=""
  local wrk_reqs wrk_rps
  wrk_reqs=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$WORK/wrk.out")
  wrk_rps=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk.out")
  for which in pcap ebpf; do
    local line reqs ticks
    line=$(grep 'captured .* packets in' "$WORK/$which.err") || { cat "$WORK/$which.err" >&2; die "no summary line"; }
    reqs=$(sed -n 's/.*connections.*, \([0-9]*\) requests,.*/\1/p' "$WORK/$which.out" | head -1)
    if [ "$which" = pcap ]; then ticks=$((p1 - p0)); else ticks=$((e1 - e0)); fi
    echo "$line" | sed -n 's/.*captured \([0-9]*\) packets in [^:]*: \([0-9]*\) bytes on the wire, \([0-9]*\) delivered to user space ([^)]*), \([0-9]*\) packets dropped.*/\1 \2 \3 \4/p' |
      awk -v OFS='\t' -v label="$label" -v c="$conns" -v path="$which" -v wr="$wrk_reqs" -v rps="$wrk_rps" \
          -v t0="$t0" -v t1="$t1" -v kc="$ticks" -v hz="$HZ" -v r="${reqs:-?}" '{
        wall = t1 - t0
        print label, c, path, wr, rps, $1, $2, $3, sprintf("%.1f", 100 * $3 / ($2 ? $2 : 1)),
              sprintf("%.2f", kc / hz), sprintf("%.1f", 100 * kc / hz / wall), $4, r
      }' >> "$WORK/compare.tsv"
  done
  tail -2 "$WORK/compare.tsv" | awk -F'\t' '{printf "live:   %-6s %s req/s, %s of %s bytes delivered (%s%%), kascope %s%% CPU, %s kernel drops\n", $3, $5, $8, $7, $9, $11, $12}' >&2
}

if [ "$MODE" = ebpf ]; then
  printf 'step\tconns\tpath\twrk_reqs\twrk_rps\tpackets\twire_bytes\tdelivered_bytes\tdelivered_pct\tkas_cpu_s\tkas_cpu_pct\tkernel_drops\tkas_reqs\n' > "$WORK/compare.tsv"
  compare_step "small" 64 "$DURATION" /tiny.txt
  compare_step "large" 8 "$DURATION" /1m.bin
  echo
  echo "libpcap and --ebpf on $VETH_S at once (veth, MTU 1500, tso/gso/gro off), nginx 1 process, wrk -t1; $(nproc) CPUs"
  echo "${DURATION} s per step; CPU% is of one core, over wrk's wall time plus a ${DRAIN} s drain"
  awk -F'\t' '
    NR == 1 { printf "%-6s %6s %-8s %11s %10s %15s %15s %10s %9s %9s %8s %14s\n", "step", "conns", "path",
              "wrk req/s", "packets", "wire bytes", "delivered", "deliv. %", "CPU s", "CPU %", "drops", "reqs seen/wrk"; next }
    { printf "%-6s %6s %-8s %11.0f %10s %15s %15s %9s%% %9s %8s%% %8s %14s\n", $1, $2, $3, $5, $6, $7, $8, $9, $10, $11, $12, $13 "/" $4 }
  ' "$WORK/compare.tsv"
  if [ -n "${LIVE_RESULTS:-}" ]; then cp "$WORK/compare.tsv" "$LIVE_RESULTS"; fi
  exit 0
fi

for c in $CONNS; do
  step "c=$c" "$c" "$DURATION" "$URL_PATH"
done
if [ "$PACED_RATE" != 0 ]; then
  step "paced ${PACED_RATE}/s" "$PACED_CONNS" "$PACED_DURATION" /paced/tiny.txt
fi

# ---- report
echo
echo "kascope live on $VETH_S (veth, MTU 1500, tso/gso/gro off), nginx 1 process, wrk -t1; $(nproc) CPUs"
echo "load path: $URL_PATH ($(wc -c < "$WORK/www${URL_PATH}") bytes), ${DURATION} s per step; CPU% is of one core"
awk -F'\t' '
  NR == 1 { printf "%-12s %6s %11s %13s %13s %12s %10s %9s %12s %18s %10s\n", "step", "conns", "wrk req/s",
            "pkts/s seen", "wire pkts/s", "kascope CPU", "nginx CPU", "wrk CPU", "kernel drops",
            "reqs seen/wrk", "CPUs busy"; next }
  { printf "%-12s %6s %11.0f %13s %13s %11s%% %9s%% %8s%% %12s %18s %9s%%\n", $1, $2, $4, $6, $7, $8, $9,
           $15, $10, $11 "/" $3, $14 }
' "$WORK/results.tsv"
if [ -n "${LIVE_RESULTS:-}" ]; then cp "$WORK/results.tsv" "$LIVE_RESULTS"; fi
