#!/usr/bin/env bash
# The whole test suite: unit tests, the PostgreSQL integration tests, the macro's compile-fail
# cases and the doctests. Starts PostgreSQL first if it is not running (see ensure-postgres.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/ensure-postgres.sh
# Each PostgreSQL test creates a database of its own and leaves it behind (to inspect a failure);
# the ones earlier runs left behind are dropped here so they do not pile up.
if command -v psql >/dev/null 2>&1; then
  psql "$DATABASE_URL" -qtAc "SELECT datname FROM pg_database
      WHERE datname LIKE 'jobsmith\_t\_%' OR datname LIKE 'jobsmith\_cli\_%' OR datname LIKE 'jobsmith\_bench\_%'" |
    while read -r name; do
      [ -n "$name" ] && psql "$DATABASE_URL" -qtAc "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null || true
    done
fi
# The dashboard's browser test needs Debian's Chromium and chromedriver.
bash scripts/ensure-chromium.sh
# --all-features: the optional dashboard and Prometheus features are tested too.
cargo test --workspace --all-features "$@"
