#!/usr/bin/env bash
# The whole test suite: unit tests, the PostgreSQL integration tests, the macro's compile-fail
# cases and the doctests. Starts PostgreSQL first if it is not running (see ensure-postgres.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/ensure-postgres.sh
# The dashboard's browser test needs Debian's Chromium and chromedriver.
bash scripts/ensure-chromium.sh
# --all-features: the optional dashboard and Prometheus features are tested too.
cargo test --workspace --all-features "$@"
