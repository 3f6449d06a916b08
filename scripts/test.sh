#!/usr/bin/env bash
# The whole test suite: system deps, release build, all tests.
# Tests read the shared corpus at ../shared/corpus (relative to the repo root).
# CI (e.g. CI=true) is passed through to cargo/the tests unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

run() { printf '+ %s\n' "$*" >&2; "$@"; }

echo "test.sh: repo=$(pwd) CI=${CI:-<unset>} corpus=$(cd ../shared/corpus 2>/dev/null && pwd || echo '../shared/corpus (missing)')" >&2

run bash scripts/install-deps.sh test
run cargo build --release --locked
run cargo test --release --locked
# The fuzz targets are run by hand on nightly (docs/fuzzing.md); type-checking them here on
# stable keeps them in step with the library's interfaces.
run cargo check --locked --manifest-path fuzz/Cargo.toml --bins
