#!/usr/bin/env bash
# Demo: install what building needs (pkg-config, libpcap-dev, a C compiler; apt output in a
# log file), build release without the eBPF path (which needs clang and libbpf), analyse a
# bundled capture with target/release/kascope.
# usage: scripts/demo.sh [CAPTURE.pcap] [extra kascope args...]
set -euo pipefail
cd "$(dirname "$0")/.."

run() { printf '+ %s\n' "$*" >&2; "$@"; }

capture=${1:-captures/pipeline-5.pcap}
shift || true

run bash scripts/install-deps.sh demo
run cargo build --release --locked --no-default-features
run target/release/kascope "$capture" "$@"
