#!/bin/bash
# make_fixtures.sh - write tests/built/NAME.pcap from the builders in tests/built.rs, then
# what tshark (not kascope) makes of each:
#   NAME.streams.csv  one row per tcp.stream, by the corpus oracle tool
#                     (shared/corpus/tools/make_oracle.py, beside the repository)
#   NAME.frames.csv   one row per frame: frame.number, tcp.stream, frame.protocols
# usage: tests/built/make_fixtures.sh
#   env: MAKE_ORACLE=path/to/make_oracle.py. Needs cargo, python3 and tshark (the committed
#   fixtures were made with TShark 4.0.17). Run it after changing a builder: the test
#   the_builders_still_make_the_committed_captures says when.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ORACLE=${MAKE_ORACLE:-$REPO/../shared/corpus/tools/make_oracle.py}
[ -f "$ORACLE" ] || { echo "make_fixtures.sh: oracle tool not found: $ORACLE (set MAKE_ORACLE)" >&2; exit 2; }
command -v tshark >/dev/null || { echo "make_fixtures.sh: tshark not installed (apt-get install tshark)" >&2; exit 2; }

(cd "$REPO" && cargo test --release --locked --test built -- --ignored --exact write_built_captures)

for pcap in "$HERE"/*.pcap; do
  n=$(basename "$pcap" .pcap)
  python3 "$ORACLE" "$pcap" "$HERE/$n.streams.csv" > /dev/null
  tshark -n -r "$pcap" -T fields -E header=y -E separator=, -E quote=d \
    -e frame.number -e tcp.stream -e frame.protocols > "$HERE/$n.frames.csv" 2> /dev/null
  echo "$n: $(($(wc -l < "$HERE/$n.streams.csv") - 1)) streams, $(($(wc -l < "$HERE/$n.frames.csv") - 1)) frames"
done
