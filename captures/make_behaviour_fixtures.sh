#!/bin/bash
# make_behaviour_fixtures.sh - regenerate the tshark fixtures of tests/behaviour.rs:
#   captures/keepalive.csv   per capture and tcp.stream, how many segments tshark flags
#                            tcp.analysis.keep_alive and tcp.analysis.keep_alive_ack, for every
#                            captures/*.pcap and every capture of the shared corpus
#                            (../shared/corpus beside the repository, named corpus/DIR/FILE);
#                            streams with neither are left out (read as zero of both).
#   captures/reuse-gaps.csv  per captures/*.pcap and tcp.stream, the longest idle gap before a
#                            reuse: from the frame that ends a response (tshark's HTTP frame)
#                            to the next request's frame, taken only when every request sent
#                            so far had its final response (1xx excluded); streams without
#                            such a gap are left out.
# usage: captures/make_behaviour_fixtures.sh
#   env: CORPUS=dir (default: ../../shared/corpus relative to this script).
# Needs tshark (Debian package tshark; the committed files were made with TShark 4.0.17).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CORPUS=$(cd "${CORPUS:-$HERE/../../shared/corpus}" 2>/dev/null && pwd) ||
  { echo "make_behaviour_fixtures.sh: no corpus directory" >&2; exit 2; }
command -v tshark >/dev/null || { echo "make_behaviour_fixtures.sh: tshark not installed" >&2; exit 2; }
[ -f "$CORPUS/MANIFEST.md" ] || { echo "make_behaviour_fixtures.sh: no corpus at $CORPUS" >&2; exit 2; }

counts() {  # FILE NAME: one line per stream with probes or probe ACKs
  # A capture cut short makes tshark fail after printing what it read: that is kept.
  { tshark -r "$1" -Y 'tcp.analysis.keep_alive || tcp.analysis.keep_alive_ack' -T fields \
    -e tcp.stream -e tcp.analysis.keep_alive -e tcp.analysis.keep_alive_ack 2>/dev/null || true; } |
  awk -F'\t' -v name="$2" '
    { if ($2 != "") probes[$1]++; if ($3 != "") acks[$1]++; seen[$1] = 1 }
    END { for (s in seen) printf "%s,%d,%d,%d\n", name, s, probes[s], acks[s] }' | sort -t, -k2,2n
}

gaps() {  # FILE NAME: one line per stream with an idle gap before a reuse
  { tshark -r "$1" -Y 'http.request || http.response' -T fields -E occurrence=a -E aggregator=, \
    -e tcp.stream -e frame.time_epoch -e http.request.method -e http.response.code 2>/dev/null || true; } |
  awk -F'\t' -v name="$2" '
    {
      s = $1; t = $2
      if ($3 != "") {
        if (s in last && out[s] <= 0) { g = t - last[s]; if (!(s in max) || g > max[s]) max[s] = g }
        out[s] += split($3, m, ",")
      }
      if ($4 != "") {
        n = split($4, c, ",")
        for (i = 1; i <= n; i++) if (c[i] < 100 || c[i] >= 200) { out[s]--; last[s] = t }
      }
    }
    END { for (s in max) printf "%s,%d,%.6f\n", name, s, max[s] }' | sort -t, -k2,2n
}

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
echo "capture,tcp_stream,keep_alive,keep_alive_ack" > "$tmp"
for f in "$HERE"/*.pcap; do counts "$f" "$(basename "$f")" >> "$tmp"; done
while IFS= read -r f; do
  counts "$f" "corpus/${f#"$CORPUS"/}" >> "$tmp"
done < <(find "$CORPUS" -name '*.pcap' -o -name '*.pcapng' -o -name '*.pcap.gz' | sort)
cp "$tmp" "$HERE/keepalive.csv"
echo "make_behaviour_fixtures.sh: $(($(wc -l < "$tmp") - 1)) streams with keep-alive probes or ACKs -> captures/keepalive.csv"
echo "capture,tcp_stream,max_reuse_idle_s" > "$tmp"
for f in "$HERE"/*.pcap; do gaps "$f" "$(basename "$f")" >> "$tmp"; done
cp "$tmp" "$HERE/reuse-gaps.csv"
echo "make_behaviour_fixtures.sh: $(($(wc -l < "$tmp") - 1)) streams with a reuse gap -> captures/reuse-gaps.csv"
