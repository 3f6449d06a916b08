#!/bin/bash
# make_keepalive_fixture.sh - regenerate captures/keepalive.csv: per capture and tcp.stream,
# how many segments tshark flags tcp.analysis.keep_alive and tcp.analysis.keep_alive_ack,
# for every captures/*.pcap and every capture of the shared corpus (../shared/corpus beside
# the repository, named corpus/DIR/FILE). Streams with neither are left out: the test reads
# a missing row as zero of both.
# usage: captures/make_keepalive_fixture.sh
#   env: CORPUS=dir (default: ../../shared/corpus relative to this script), OUT=file.
# Needs tshark (Debian package tshark; the committed file was made with TShark 4.0.17).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CORPUS=$(cd "${CORPUS:-$HERE/../../shared/corpus}" 2>/dev/null && pwd) ||
  { echo "make_keepalive_fixture.sh: no corpus directory" >&2; exit 2; }
OUT=${OUT:-$HERE/keepalive.csv}
command -v tshark >/dev/null || { echo "make_keepalive_fixture.sh: tshark not installed" >&2; exit 2; }
[ -f "$CORPUS/MANIFEST.md" ] || { echo "make_keepalive_fixture.sh: no corpus at $CORPUS" >&2; exit 2; }

counts() {  # FILE NAME: one line per stream with probes or probe ACKs
  # A capture cut short makes tshark fail after printing what it read: that is kept.
  { tshark -r "$1" -Y 'tcp.analysis.keep_alive || tcp.analysis.keep_alive_ack' -T fields \
    -e tcp.stream -e tcp.analysis.keep_alive -e tcp.analysis.keep_alive_ack 2>/dev/null || true; } |
  awk -F'\t' -v name="$2" '
    { if ($2 != "") probes[$1]++; if ($3 != "") acks[$1]++; seen[$1] = 1 }
    END { for (s in seen) printf "%s,%d,%d,%d\n", name, s, probes[s], acks[s] }' | sort -t, -k2,2n
}

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
echo "capture,tcp_stream,keep_alive,keep_alive_ack" > "$tmp"
for f in "$HERE"/*.pcap; do counts "$f" "$(basename "$f")" >> "$tmp"; done
while IFS= read -r f; do
  counts "$f" "corpus/${f#"$CORPUS"/}" >> "$tmp"
done < <(find "$CORPUS" -name '*.pcap' -o -name '*.pcapng' -o -name '*.pcap.gz' | sort)
mv "$tmp" "$OUT"
trap - EXIT
echo "make_keepalive_fixture.sh: $(($(wc -l < "$OUT") - 1)) streams with keep-alive probes or ACKs -> $OUT"
