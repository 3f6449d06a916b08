#!/usr/bin/env bash
# Install the system packages kascope needs (idempotent, Debian/Ubuntu).
# usage: scripts/install-deps.sh [demo|test]   (default: test)
#   demo:       what `cargo build --no-default-features` and running kascope need:
#               pkg-config, libpcap-dev, liblzma-dev (xz input), a C compiler and linker
#               for rustc and the zstd decoder (gcc, libc6-dev)
#   test:       the above, and
#     build:    g++ (libFuzzer, compiled when scripts/test.sh type-checks fuzz/);
#               for the eBPF capture path (cargo feature `ebpf`, on by default) clang,
#               libbpf-dev, libelf-dev, zlib1g-dev, make (tests/ebpf.rs also compiles a small
#               TC program with clang and attaches it with tc)
#     tests:    tshark (oracle; also provides capinfos via wireshark-common), tcpdump,
#               chromium (renders the --html report in tests/html.rs), man-db (the man page
#               test)
#     bench/gen: nginx, apache2, curl, wrk, iproute2 (ip/tc), ethtool, python3,
#               time (GNU /usr/bin/time for peak RSS); hyperfine is optional
#     Parquet:  a JRE (default-jre-headless, unless java is there) and, from PyPI, duckdb
#               and pyspark: the engines tests/sql/check.py reads kascope's Parquet with
# Packages already installed (per dpkg) are skipped; `apt-get update` runs only when
# something is missing. apt's output goes to a log file ($KASCOPE_APT_LOG, default
# /tmp/kascope-install-deps.log), shown only when apt fails. Newly installed nginx/apache2
# services are not left running.
# The Rust toolchain itself is not installed here (use rustup; edition 2024 needs >= 1.85).
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

profile=${1:-test}
BUILD=(pkg-config libpcap-dev liblzma-dev gcc libc6-dev)
case "$profile" in
  demo)
    REQUIRED=("${BUILD[@]}")
    OPTIONAL=()
    ;;
  test)
    REQUIRED=("${BUILD[@]}" g++ clang libbpf-dev libelf-dev zlib1g-dev make tcpdump tshark curl wrk iproute2 ethtool python3 time apache2 chromium man-db)
    OPTIONAL=(hyperfine)
    ;;
  *)
    printf 'install-deps: unknown profile %s (demo or test)\n' "$profile" >&2
    exit 2
    ;;
esac
# any of these satisfies "nginx"; nginx-light is preferred when it has to be installed
NGINX_ALTS=(nginx-light nginx nginx-core nginx-full nginx-extras)
APT_LOG=${KASCOPE_APT_LOG:-/tmp/kascope-install-deps.log}

log() { printf 'install-deps: %s\n' "$*" >&2; }

# PyPI packages, pinned; installed for the python3 the tests run (as root: for everyone).
PIP_REQUIRED=(duckdb==2.0.1 pyspark==4.3.0)
pip_install() {
  local wanted=()
  for spec in "${PIP_REQUIRED[@]}"; do
    python3 -c "import ${spec%%==*}" 2>/dev/null || wanted+=("$spec")
  done
  [ "$profile" = test ] && [ ${#wanted[@]} -gt 0 ] || return 0
  local user=()
  [ "$(id -u)" -eq 0 ] || user=(--user)
  log "running: pip install ${wanted[*]}"
  # Debian's python3 is "externally managed"; these packages conflict with none of its own.
  PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check "${user[@]}" "${wanted[@]}"
}

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  log "dpkg/apt-get not found: install manually: ${REQUIRED[*]} nginx ${OPTIONAL[*]}"
  exit 1
fi

missing=()
for p in "${REQUIRED[@]}"; do installed "$p" || missing+=("$p"); done
have_nginx=
for p in "${NGINX_ALTS[@]}"; do if installed "$p"; then have_nginx=$p; break; fi; done
[ "$profile" = test ] || have_nginx=${have_nginx:-not needed}
missing_opt=()
for p in "${OPTIONAL[@]}"; do installed "$p" || missing_opt+=("$p"); done
if [ "$profile" = test ]; then
  command -v java >/dev/null || missing+=(default-jre-headless)
  python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
fi

if command -v cargo >/dev/null; then :; else
  log "warning: cargo not found (install Rust via rustup; kascope needs Rust >= 1.85)"
fi

if [ ${#missing[@]} -eq 0 ] && [ -n "$have_nginx" ] && [ ${#missing_opt[@]} -eq 0 ]; then
  log "all packages for '$profile' present"
  pip_install
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null; then
  SUDO=(sudo)
else
  log "not root and sudo is unavailable; cannot install: ${missing[*]} ${missing_opt[*]}"
  exit 1
fi
as_root() { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive "$@"; }
# apt's output goes to the log; on failure its end is shown
quiet_root() {
  if ! as_root "$@" >>"$APT_LOG" 2>&1; then
    log "failed: $* (last lines of $APT_LOG follow)"
    tail -n 30 "$APT_LOG" >&2
    return 1
  fi
}
: >"$APT_LOG"
log "apt output: $APT_LOG"
APT=(apt-get -o DPkg::Lock::Timeout=300 -y -q --no-install-recommends)

# pick the nginx package to install (nginx-light where the distro still ships it)
if [ -z "$have_nginx" ]; then
  nginx_pkg=nginx
  if apt-cache show nginx-light >/dev/null 2>&1; then nginx_pkg=nginx-light; fi
  missing+=("$nginx_pkg")
fi

# keep maintainer scripts from starting nginx/apache2 during installation
# (only if no policy-rc.d exists yet; ours is removed again on exit)
POLICY=/usr/sbin/policy-rc.d
created_policy=
cleanup() {
  if [ -n "$created_policy" ]; then as_root rm -f "$POLICY"; fi
}
trap cleanup EXIT
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# temporary, created by kascope scripts/install-deps.sh\nexit 101\n' \
    | as_root tee "$POLICY" >/dev/null
  as_root chmod 755 "$POLICY"
  created_policy=1
fi

# tshark would otherwise ask whether non-root users may capture
echo 'wireshark-common wireshark-common/install-setuid boolean false' | as_root debconf-set-selections

if [ ${#missing[@]} -gt 0 ]; then
  log "missing: ${missing[*]}"
  log "running: apt-get update"
  quiet_root apt-get -o DPkg::Lock::Timeout=300 -q update
  log "running: apt-get install ${missing[*]}"
  quiet_root "${APT[@]}" install "${missing[@]}"
fi
if [ ${#missing_opt[@]} -gt 0 ]; then
  log "installing optional: ${missing_opt[*]}"
  if [ ${#missing[@]} -eq 0 ]; then quiet_root apt-get -o DPkg::Lock::Timeout=300 -q update || true; fi
  quiet_root "${APT[@]}" install "${missing_opt[@]}" || log "warning: optional packages not installed: ${missing_opt[*]}"
fi

# belt and braces: if this run installed nginx/apache2 and something started them anyway, stop them
for p in "${missing[@]}"; do
  case "$p" in nginx*) svc=nginx ;; apache2) svc=apache2 ;; *) continue ;; esac
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    as_root systemctl stop "$svc" >/dev/null 2>&1 || true
  elif command -v service >/dev/null; then
    as_root service "$svc" stop >/dev/null 2>&1 || true
  fi
done

pip_install
commands=(pkg-config cc)
if [ "$profile" = test ]; then
  commands+=(clang tshark capinfos tcpdump nginx apache2 wrk curl ip tc ethtool python3 java /usr/bin/time chromium man)
fi
for c in "${commands[@]}"; do
  command -v "$c" >/dev/null || { log "error: '$c' still not available after install"; exit 1; }
done
log "done"
