#!/usr/bin/env bash
# TC clsact + BPF ring buffer against kascope's socket filter, on the same traffic.
# A measurement prototype for docs/ebpf.md ("Why a socket filter and not TC + a ring
# buffer"), not a kascope feature.
#
# usage: bench/tc-compare/run.sh      (root: network namespaces, BPF, packet capture)
#
# Two namespaces kTcS$$ (nginx, 10.213.0.1) and kTcC$$ (wrk, 10.213.0.2) joined by a veth
# pair (MTU 1500, tso/gso/gro off, as bench/live.sh). For each workload
#     wrk -t1 -c16 -d8s http://10.213.0.1/tiny.txt     (200-byte body)
#     wrk -t1 -c4  -d8s http://10.213.0.1/1m.bin       (1 MiB body)
# each design runs alone on the server veth, one after the other:
#   none     nothing attached (the system-CPU baseline)
#   pcap     kascope -i VETH -q                  (libpcap, classic BPF "tcp")
#   sockf    kascope -i VETH -q --ebpf           (the shipped socket filter, shed_bodies)
#   sockf0   sockf-null.c: shed_bodies on a libpcap socket, frames only counted (the socket
#            filter's transport without kascope's analysis; its shed map stays empty),
#            libpcap in immediate mode as kascope uses it: a wake-up per packet
#   sockf0b  sockf0 in libpcap's buffered mode, 1 ms timeout (blocks, like tc-poll's timer)
#   tc-hdr   consumer + tc.bpf.c, headers-only records (64 bytes)
#   tc-256   consumer + tc.bpf.c, headers + first 256 payload bytes (320-byte records)
#   tc-poll  tc-hdr with BPF_RB_NO_WAKEUP, the consumer draining every millisecond
# and reports: packets seen (kascope's "captured N packets", the consumer's record count:
# TC's egress hook runs before the stack's software GSO, so it sees TCP's super-packets,
# up to 64 KiB, even with gso off, where the packet tap sees the segments),
# wire packets (veth rx+tx), ns/packet in the BPF program (kernel BPF statistics,
# run_time_ns / run_cnt, kernel.bpf_stats_enabled=1 during the run; the socket filter's
# figure leaves out the tap's clone and copy into the mmap ring, which run outside it),
# user-space CPU µs per packet seen and per wire packet (utime+stime of kascope or the
# consumer from /proc/PID/stat, from just before wrk to just before SIGINT), drops (kernel drops kascope reports; failed
# ring-buffer reservations), and the whole machine's non-nice CPU (user+system+irq+softirq
# from /proc/stat, so processes at nice > 0 are left out) per wire packet: the difference
# to `none` is the design's whole cost, kernel copy paths included, but it is noisy (nginx
# and wrk run on the same two cores).
#
# env: KASCOPE (default target/release/kascope, built with cargo), TC_DURATION (default 8),
#      TC_DESIGNS (default "none pcap sockf sockf0 sockf0b tc-hdr tc-256 tc-poll"), TC_RESULTS (also write the TSV here)
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"

log() { printf 'tc-compare: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
. "$HERE/../lab.sh"

[ "$(id -u)" -eq 0 ] || die "run as root"
for tool in ip ethtool nginx wrk curl clang cc bpftool jq; do
  command -v "$tool" >/dev/null || die "$tool not found"
done

DURATION=${TC_DURATION:-8}
DRAIN=1
NS_S=kTcS$$ NS_C=kTcC$$
VETH_S=kTcS$$ VETH_C=kTcC$$
IP_S=10.213.0.1 IP_C=10.213.0.2
HZ=$(getconf CLK_TCK)

KASCOPE_DEFAULT=target/release/kascope
KASCOPE=${KASCOPE:-$KASCOPE_DEFAULT}
if [ "$KASCOPE" = "$KASCOPE_DEFAULT" ]; then cargo build --release --locked >&2; fi
[ -x "$KASCOPE" ] || die "kascope binary $KASCOPE not found"
KASCOPE=$(cd "$(dirname "$KASCOPE")" && pwd)/$(basename "$KASCOPE")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kascope-tc.XXXXXX")
chmod 755 "$WORK"
NGINX_PID="" CAP_PID="" WRK_PID="" STATS_WAS="" SOCKF_ID=""

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
  stop_pid "$WRK_PID" TERM
  stop_pid "$CAP_PID" TERM
  stop_pid "$NGINX_PID" QUIT
  ip netns del "$NS_C" 2>/dev/null   # takes the veth and its clsact qdisc with it
  ip netns del "$NS_S" 2>/dev/null
  [ -n "$STATS_WAS" ] && sysctl -qw kernel.bpf_stats_enabled="$STATS_WAS"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build the prototype
INC="-I/usr/include/$(uname -m)-linux-gnu"
for n in 0 256; do
  clang -O2 -g -target bpf $INC -DPAYLOAD_MAX=$n -c "$HERE/tc.bpf.c" -o "$WORK/tc-$n.o"
done
clang -O2 -g -target bpf $INC -DPAYLOAD_MAX=0 -DSUBMIT_FLAGS=BPF_RB_NO_WAKEUP -c "$HERE/tc.bpf.c" -o "$WORK/tc-nw.o"
cc -O2 -Wall -Wextra -o "$WORK/consumer" "$HERE/consumer.c" -lbpf -lelf -lz
clang -O2 -g -target bpf $INC -c "$ROOT/src/bpf/shed.bpf.c" -o "$WORK/shed.o"
cc -O2 -Wall -Wextra -o "$WORK/sockf-null" "$HERE/sockf-null.c" -lpcap -lbpf -lelf -lz

STATS_WAS=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1   # global: other BPF programs pay a clock read too

# ---- network and nginx (bench/lab.sh)
lab_network
lab_nginx "" ""

# ---- helpers
busy_ticks() {   # non-nice busy ticks of all CPUs: user system irq softirq steal
  awk '/^cpu / {print $2 + $4 + $7 + $8 + $9; exit}' /proc/stat
}
wire_packets() {
  ip netns exec "$NS_S" cat "/sys/class/net/$VETH_S/statistics/rx_packets" \
    "/sys/class/net/$VETH_S/statistics/tx_packets" | awk '{s += $1} END {print s}'
}
wait_for() {   # wait_for FILE PATTERN PID
  local i
  for ((i = 0; i < 100; i++)); do
    grep -q "$2" "$1" && return 0
    kill -0 "$3" 2>/dev/null || { cat "$1" >&2; die "capture process exited"; }
    sleep 0.05
  done
  die "capture process did not start"
}
# This bpftool lists no owning PIDs: kascope's program is the shed_bodies one that appeared
# when it started (other engineers' kascopes may hold older ones).
shed_ids() { bpftool -j prog show | jq -r '.[] | select(.name == "shed_bodies") | .id' | sort; }
prog_stats() {   # prog_stats ID: "run_cnt run_time_ns"
  bpftool -j prog show id "$1" | jq -r '"\(.run_cnt // 0) \(.run_time_ns // 0)"'
}

printf 'workload\tdesign\twrk_rps\twire_pkts\tseen\tbpf_cnt\tbpf_ns\tuser_ticks\tdrops\tbusy_ticks\trecord_bytes\n' > "$WORK/results.tsv"

# run WORKLOAD CONNS PATH DESIGN
run() {
  local workload=$1 conns=$2 path=$3 design=$4 out=$WORK/cap.out err=$WORK/cap.err
  : > "$out"; : > "$err"
  local ids_before; ids_before=$(shed_ids)
  case $design in
    none) CAP_PID="" ;;
    pcap|sockf)
      local extra=(); [ "$design" = sockf ] && extra=(--ebpf)
      ip netns exec "$NS_S" "$KASCOPE" -i "$VETH_S" --no-progress -q "${extra[@]}" > "$out" 2> "$err" &
      CAP_PID=$!; wait_for "$err" 'capturing on' "$CAP_PID"
      if [ "$design" = sockf ]; then   # the shed_bodies program this kascope loaded
        SOCKF_ID=$(comm -13 <(echo "$ids_before") <(shed_ids))
        [ "$(echo "$SOCKF_ID" | wc -w)" -eq 1 ] || die "cannot tell kascope's shed_bodies program (new ids: $SOCKF_ID)"
      fi ;;
    sockf0|sockf0b)
      local batch=(); [ "$design" = sockf0b ] && batch=(batch)
      ip netns exec "$NS_S" "$WORK/sockf-null" "$WORK/shed.o" "$VETH_S" "${batch[@]}" > "$out" 2> "$err" &
      CAP_PID=$!; wait_for "$err" 'capturing on' "$CAP_PID" ;;
    tc-hdr|tc-256|tc-poll)
      local args=("$WORK/tc-0.o" "$VETH_S")
      [ "$design" = tc-256 ] && args=("$WORK/tc-256.o" "$VETH_S")
      [ "$design" = tc-poll ] && args=("$WORK/tc-nw.o" "$VETH_S" poll)
      ip netns exec "$NS_S" "$WORK/consumer" "${args[@]}" > "$out" 2> "$err" &
      CAP_PID=$!; wait_for "$err" 'attached to' "$CAP_PID" ;;
  esac
  sleep 0.3
  local c0=0 c1=0 w0 w1 b0 b1 s0="0 0" s1="0 0"
  [ -n "$CAP_PID" ] && c0=$(cpu_ticks "$CAP_PID")
  [ "$design" = sockf ] && s0=$(prog_stats "$SOCKF_ID")
  w0=$(wire_packets); b0=$(busy_ticks)
  ip netns exec "$NS_C" wrk -t1 -c "$conns" -d "${DURATION}s" "http://$IP_S$path" > "$WORK/wrk.out" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || { cat "$WORK/wrk.out" >&2; die "wrk failed"; }
  WRK_PID=""
  sleep "$DRAIN"
  b1=$(busy_ticks); w1=$(wire_packets)
  [ "$design" = sockf ] && s1=$(prog_stats "$SOCKF_ID")
  [ -n "$CAP_PID" ] && c1=$(cpu_ticks "$CAP_PID")
  if [ -n "$CAP_PID" ]; then
    kill -INT "$CAP_PID"
    local rc=0; wait "$CAP_PID" || rc=$?
    CAP_PID=""
    [ "$rc" -eq 0 ] || { cat "$err" >&2; die "$design exited with status $rc"; }
  fi
  local rps seen=0 cnt=0 ns=0 drops=0 rbytes=0
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk.out")
  case $design in
    pcap|sockf)
      seen=$(sed -n 's/.*captured \([0-9]*\) packets in .*/\1/p' "$err")
      drops=$(sed -n 's/.*, \([0-9]*\) packets* dropped by the kernel.*/\1/p' "$err"); drops=${drops:-0}
      rbytes=$(sed -n 's/.*, \([0-9]*\) delivered to user space.*/\1/p' "$err"); rbytes=${rbytes:-0}
      if [ "$design" = sockf ]; then
        cnt=$(( ${s1% *} - ${s0% *} )); ns=$(( ${s1#* } - ${s0#* } ))
      fi ;;
    sockf0|sockf0b)
      read -r _ seen _ rbytes _ cnt _ ns _ drops < "$out" ;;
    tc-*)
      grep 'egress records' "$err" | sed 's/^/tc-compare:   /' >&2
      read -r _ seen _ rbytes _ _ _ _ _ drops _ cnt _ ns < "$out" ;;
  esac
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$workload" "$design" "$rps" \
    "$((w1 - w0))" "$seen" "$cnt" "$ns" "$((c1 - c0))" "$drops" "$((b1 - b0))" "$rbytes" >> "$WORK/results.tsv"
  log "$workload $design: $(tail -1 "$WORK/results.tsv" | cut -f3-)"
}

DESIGNS=${TC_DESIGNS:-none pcap sockf sockf0 sockf0b tc-hdr tc-256 tc-poll}
for design in $DESIGNS; do run small 16 /tiny.txt "$design"; done
for design in $DESIGNS; do run large 4 /1m.bin "$design"; done

echo
echo "server veth $VETH_S (MTU 1500, tso/gso/gro off), nginx 1 process, wrk -t1 ${DURATION} s; $(nproc) CPUs; $(uname -r)"
echo "small = -c16 /tiny.txt (200 B), large = -c4 /1m.bin (1 MiB); user = the capturing process's CPU"
awk -F'\t' -v hz="$HZ" '
  NR == 1 { printf "%-6s %-7s %9s %10s %10s %10s %12s %12s %6s %17s %14s\n", "load", "design", "req/s",
            "wire pkts", "seen", "BPF ns/run", "user us/seen", "user us/wire", "drops", "machine us/wire p", "delivered B/seen"; next }
  { bpf = $6 > 0 ? sprintf("%.0f", $7 / $6) : "-"
    user = $5 > 0 ? sprintf("%.2f", 1e6 * $8 / hz / $5) : "-"
    deliv = $5 > 0 ? sprintf("%.0f", $11 / $5) : "-"
    userw = $5 > 0 ? sprintf("%.2f", 1e6 * $8 / hz / $4) : "-"
    printf "%-6s %-7s %9.0f %10s %10s %10s %12s %12s %6s %17.2f %14s\n", $1, $2, $3, $4, $5, bpf, user, userw, $9,
           1e6 * $10 / hz / $4, deliv }
' "$WORK/results.tsv"
if [ -n "${TC_RESULTS:-}" ]; then cp "$WORK/results.tsv" "$TC_RESULTS"; fi
