#!/bin/bash
# Runs fuzz targets one after another, each for SECONDS, on one core, and keeps the logs:
#   fuzz/run.sh 600 http_parser http_split reassembly pipeline pipeline_eth
# libFuzzer's output goes to fuzz/logs/TARGET.log, one line per target to fuzz/logs/summary.txt.
# Two invocations may run side by side (one per core): each writes only its own targets' logs.
set -u
cd "$(dirname "$0")"
secs=${1:?seconds}
shift
mkdir -p logs
for target in "$@"; do
  start=$(date +%s)
  cargo +nightly fuzz run "$target" -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
    > "logs/$target.driver.log" 2> "logs/$target.log"
  rc=$?
  echo "$target rc=$rc seconds=$(( $(date +%s) - start ))" >> logs/summary.txt
done
