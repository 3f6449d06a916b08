#!/usr/bin/env bash
# Throughput benchmark: kascope with 1 and more threads vs a plain read of the file and
# tshark (HTTP parsing + TCP reassembly), on one big capture, in the same run.
#
# usage: bench/run.sh [--small]
#   default  ~1.2 GB capture  (gen.sh OUT 1100 340 30 240), file ${BENCH_PCAP:-/var/tmp/kascope-bench.pcap}
#   --small  ~50 MB capture   (gen.sh OUT 50 16 25 120),    file ${BENCH_PCAP:-/var/tmp/kascope-bench-small.pcap}
# env:
#   BENCH_PCAP    capture to use (generated there if missing)
#   BENCH_RUNS    runs per tool; the median and the best wall time are reported (default 3)
#   BENCH_THREADS kascope --threads values to run (default "1 2")
#   KASCOPE       kascope command (default target/release/kascope; release build runs first
#                 only when this is left at the default)
#   KASCOPE_ARGS  arguments after the capture path (default --quiet)
#   BENCH_TSHARK  set to 0 to skip the tshark runs
#   BENCH_GEN     capture generator (default ../shared/bench/gen.sh next to the repo)
# The capture generator needs root (network namespaces); sudo is used when not root.
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT"

MODE=big
for a in "$@"; do
  case "$a" in
    --small) MODE=small ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "bench: unknown argument: $a" >&2; exit 2 ;;
  esac
done

if [ "$MODE" = small ]; then
  PCAP=${BENCH_PCAP:-/var/tmp/kascope-bench-small.pcap}; GEN_ARGS=(50 16 25 120)
else
  PCAP=${BENCH_PCAP:-/var/tmp/kascope-bench.pcap}; GEN_ARGS=(1100 340 30 240)
fi
RUNS=${BENCH_RUNS:-3}
KASCOPE_DEFAULT=target/release/kascope
KASCOPE=${KASCOPE:-$KASCOPE_DEFAULT}
KASCOPE_ARGS=${KASCOPE_ARGS---quiet}
GEN=${BENCH_GEN:-$HERE/../../shared/bench/gen.sh}

run() { printf '+ %s\n' "$*" >&2; "$@"; }
log() { printf 'bench: %s\n' "$*" >&2; }

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kascope-bench.XXXXXX")
cleanup() {
  rm -rf "$WORK"
  # gen.sh removes its namespaces itself; make sure nothing is left if it was interrupted
  for ns in kaPerfC kaPerfS; do
    if ip netns list 2>/dev/null | grep -qw "$ns"; then "${SUDO[@]}" ip netns del "$ns" 2>/dev/null || true; fi
  done
}
trap cleanup EXIT

run bash scripts/install-deps.sh

# ---- capture
if [ ! -s "$PCAP" ]; then
  GEN=$(cd "$(dirname "$GEN")" 2>/dev/null && pwd)/$(basename "$GEN")
  [ -x "$GEN" ] || { log "capture $PCAP missing and generator $GEN not found"; exit 1; }
  tmp="${PCAP%.pcap}.partial.pcap"          # gen.sh logs to ${OUT%.pcap}.gen.log
  log "generating $PCAP (this takes ${GEN_ARGS[2]}..${GEN_ARGS[3]} s)"
  "${SUDO[@]}" rm -f "$tmp"
  run "${SUDO[@]}" "$GEN" "$tmp" "${GEN_ARGS[@]}" >&2
  if [ ! -s "$tmp" ] || ! capinfos -c "$tmp" >/dev/null 2>&1; then
    log "generation failed (see ${tmp%.pcap}.gen.log)"; exit 1
  fi
  "${SUDO[@]}" mv -f "$tmp" "$PCAP"
  "${SUDO[@]}" mv -f "${tmp%.pcap}.gen.log" "${PCAP%.pcap}.gen.log" 2>/dev/null || true
  "${SUDO[@]}" chmod a+r "$PCAP"
fi
if ip netns list 2>/dev/null | grep -qwE 'kaPerfS|kaPerfC'; then log "warning: leftover kaPerf namespaces"; fi

BYTES=$(stat -c %s "$PCAP")
PACKETS=$(capinfos -c -M "$PCAP" | awk -F: '/Number of packets/ {gsub(/[^0-9]/, "", $2); print $2}')
[ -n "$PACKETS" ] || { log "capinfos could not count packets in $PCAP"; exit 1; }
log "capture $PCAP: $BYTES bytes, $PACKETS packets"

# ---- build
if [ "$KASCOPE" = "$KASCOPE_DEFAULT" ]; then
  run cargo build --release --locked
fi

# warm the page cache so every run reads from memory
avail_kb=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
if [ "$((BYTES / 1024))" -gt "$avail_kb" ]; then log "warning: capture larger than available memory; runs will hit the disk"; fi
run cat "$PCAP" > /dev/null

# ---- runs
# The read and kascope take turns, one run each per round, so that a slower minute of this
# shared machine falls on all of them alike rather than on whichever ran then. tshark's
# runs come after them: 20 s of one busy vCPU leaves this VM slow to give a second one for
# some seconds (--threads 2 took 290, 282, 271, 262 ms in the four runs after it, against
# 240-250 ms otherwise; --threads 1 was unaffected).
# run_once NAME CMD...   -> appends the run's wall time to $WORK/NAME.times, its peak RSS
# (KB) to $WORK/NAME.rss and "wall user sys" to $WORK/NAME.cpu; keeps the output of the
# best run in $WORK/out.NAME
run_once() {
  local name=$1; shift
  local t0 t1 s
  printf '+ [%s %d/%d] %s\n' "$name" "$ROUND" "$RUNS" "$*" >&2
  t0=$(date +%s%N)
  if ! /usr/bin/time -v -o "$WORK/time" "$@" > "$WORK/out" 2> "$WORK/err"; then
    log "$name failed:"; tail -20 "$WORK/err" >&2; exit 1
  fi
  t1=$(date +%s%N)
  s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')
  echo "$s" >> "$WORK/$name.times"
  awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$WORK/time" >> "$WORK/$name.rss"
  echo "$s $(awk -F': ' '/User time/ {u = $2} /System time/ {y = $2} END {print u, y}' "$WORK/time")" >> "$WORK/$name.cpu"
  if [ "$(sort -g "$WORK/$name.times" | head -1)" = "$s" ]; then mv -f "$WORK/out" "$WORK/out.$name"; fi
}

# summarize NAME -> "NAME best_s max_rss_kb user_s sys_s all_times median_s" (CPU of the best run)
summarize() {
  local name=$1 times median best cpu
  times=$(paste -sd, "$WORK/$name.times")
  median=$(sort -g "$WORK/$name.times" | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')
  best=$(sort -g "$WORK/$name.times" | head -1)
  cpu=$(sort -g "$WORK/$name.cpu" | head -1 | cut -d' ' -f2-)
  echo "$name $best $(sort -n "$WORK/$name.rss" | tail -1) $cpu $times $median" >> "$WORK/results"
  local sz; sz=$(stat -c %s "$WORK/out.$name")
  if [ "$sz" -le 8192 ]; then
    echo "---- $name output (best run)" >&2; cat "$WORK/out.$name" >&2
  elif head -c 4096 "$WORK/out.$name" | grep -Iq .; then
    echo "---- $name output: $sz bytes; first lines:" >&2; head -c 4096 "$WORK/out.$name" | head -n 20 >&2; echo >&2
  else
    echo "---- $name output: $sz bytes of binary data (not shown)" >&2
  fi
}

read -r -a kascope_cmd <<< "$KASCOPE"
read -r -a kascope_args <<< "$KASCOPE_ARGS"
TOOLS=(read)
for threads in ${BENCH_THREADS:-1 2}; do TOOLS+=("kascope-j$threads"); done
for ((ROUND = 1; ROUND <= RUNS; ROUND++)); do
  for name in "${TOOLS[@]}"; do
    case $name in
      read) run_once read dd if="$PCAP" of=/dev/null bs=1M status=none ;;
      kascope-j*) run_once "$name" "${kascope_cmd[@]}" "$PCAP" --threads "${name#kascope-j}" "${kascope_args[@]}" ;;
    esac
  done
done
if [ "${BENCH_TSHARK:-1}" != 0 ]; then
  TOOLS+=(tshark)
  for ((ROUND = 1; ROUND <= RUNS; ROUND++)); do
    run_once tshark tshark -n -r "$PCAP" -q -z http,tree
  done
fi
for name in "${TOOLS[@]}"; do summarize "$name"; done

# ---- report
echo
echo "capture: $PCAP  ($(awk -v b="$BYTES" 'BEGIN {printf "%.1f MB", b / 1e6}'), $PACKETS packets)  runs: $RUNS; MB/s from the median wall time"
echo "kascope command: $KASCOPE <capture> --threads N $KASCOPE_ARGS; read: dd bs=1M to /dev/null"
awk -v bytes="$BYTES" -v pk="$PACKETS" '
  BEGIN { printf "%-12s %9s %9s %9s %12s %13s %9s  %s\n", "tool", "median s", "best s", "MB/s", "packets/s", "peak RSS MB", "CPU s", "all runs (s)" }
  { printf "%-12s %9.3f %9.3f %9.1f %12.0f %13.1f %9.2f  %s\n", $1, $7, $2, bytes / 1e6 / $7, pk / $7, $3 / 1024, $4 + $5, $6 }
' "$WORK/results"
