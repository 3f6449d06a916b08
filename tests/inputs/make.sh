#!/bin/bash
# make.sh - regenerate the captures built in test code (tests/inputs/NAME.pcap, .pcapng) and
# their tshark fixtures (NAME.streams.csv) with the corpus oracle tool (tshark-based,
# independent of kascope). Needs tshark; the committed CSVs were made with TShark 4.0.17.
# usage: tests/inputs/make.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ORACLE=${MAKE_ORACLE:-$HERE/../../../shared/corpus/tools/make_oracle.py}
[ -f "$ORACLE" ] || { echo "make.sh: oracle tool not found: $ORACLE (set MAKE_ORACLE)" >&2; exit 2; }
cd "$HERE/../.."
cargo test --release --locked --test inputs -- --ignored --exact write_built
for capture in "$HERE"/*.pcap "$HERE"/*.pcapng; do
  python3 "$ORACLE" "$capture" "${capture%.*}.streams.csv"
done
