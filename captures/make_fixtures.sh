#!/bin/bash
# make_fixtures.sh - regenerate captures/NAME.streams.csv for every captures/NAME.pcap with
# the corpus oracle tool (tshark-based, independent of kascope):
#   python3 shared/corpus/tools/make_oracle.py captures/NAME.pcap captures/NAME.streams.csv
# and captures/NAME.http-time.csv, tshark's own response timing (one row per HTTP response:
# tcp.stream, http.response_number, http.time, tcp.segment.count — empty when the response
# was one segment) and captures/NAME.irtt.csv, tshark's tcp.analysis.initial_rtt per stream
# (SYN to the ACK of the SYN-ACK). tests/timing.rs compares kascope's ttfb_s, response_s and
# handshake_rtt_s with them.
# usage: captures/make_fixtures.sh [NAME ...]      (default: every captures/*.pcap)
#   env: MAKE_ORACLE=path/to/make_oracle.py (default: ../../shared/corpus/tools/make_oracle.py
#        relative to this script), OUTDIR (default: this script's directory).
# Needs tshark (Debian package tshark; the committed CSVs were made with TShark 4.0.17).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUTDIR=${OUTDIR:-$HERE}
PY=${PYTHON:-python3}
ORACLE=${MAKE_ORACLE:-$(dirname "$0")/../../shared/corpus/tools/make_oracle.py}

if [ ! -f "$ORACLE" ]; then
  echo "make_fixtures.sh: oracle tool not found: $ORACLE" >&2
  echo "  it lives in the shared corpus (shared/corpus/tools/make_oracle.py next to the repository);" >&2
  echo "  set MAKE_ORACLE=/path/to/make_oracle.py to use another copy" >&2
  exit 2
fi
command -v tshark >/dev/null || { echo "make_fixtures.sh: tshark not installed (apt-get install tshark)" >&2; exit 2; }

# Extra tshark decode-as rules per capture. tshark decodes HTTP on 80 and 8080 by itself
# but not on 8000/8001/8002 (the Python servers) or 81 (tcp-keepalive), so those captures
# need --decode-as.
decode_as() {
  case "$1" in
    python-http-server)  echo "--decode-as tcp.port==8000,http" ;;
    chunked-trailer)     echo "--decode-as tcp.port==8001,http" ;;
    noncompliant-server) echo "--decode-as tcp.port==8002,http" ;;
    tcp-keepalive)       echo "--decode-as tcp.port==81,http" ;;
    *)                  echo "" ;;
  esac
}

if [ $# -gt 0 ]; then
  names=("$@")
else
  names=()
  for f in "$OUTDIR"/*.pcap; do [ -e "$f" ] && names+=("$(basename "$f" .pcap)"); done
fi
[ ${#names[@]} -gt 0 ] || { echo "make_fixtures.sh: no captures in $OUTDIR" >&2; exit 1; }

printf '%-24s %s\n' "capture" "streams http_streams requests responses pipelined_streams max_outstanding keepalive_values"
rc=0
for n in "${names[@]}"; do
  pcap=$OUTDIR/$n.pcap
  [ -f "$pcap" ] || { echo "make_fixtures.sh: missing $pcap" >&2; rc=1; continue; }
  # shellcheck disable=SC2046
  if summary=$("$PY" "$ORACLE" "$pcap" "$OUTDIR/$n.streams.csv" $(decode_as "$n")); then
    printf '%-24s %s\n' "$n" "$(echo "$summary" | cut -f1-7 | tr '\t' ' ')"
  else
    echo "make_fixtures.sh: make_oracle.py failed on $pcap" >&2; rc=1
  fi
  # shellcheck disable=SC2046
  { echo "stream,response_number,http_time,segments"
    tshark -r "$pcap" $(decode_as "$n" | sed "s/--decode-as/-d/") -Y http.response -T fields -E separator=, \
      -e tcp.stream -e http.response_number -e http.time -e tcp.segment.count 2>/dev/null
  } > "$OUTDIR/$n.http-time.csv" || { echo "make_fixtures.sh: tshark failed on $pcap" >&2; rc=1; }
  { echo "stream,initial_rtt"
    tshark -r "$pcap" -Y tcp.analysis.initial_rtt -T fields -E separator=, \
      -e tcp.stream -e tcp.analysis.initial_rtt 2>/dev/null | sort -t, -k1,1n -u
  } > "$OUTDIR/$n.irtt.csv" || { echo "make_fixtures.sh: tshark failed on $pcap" >&2; rc=1; }
done
exit $rc
