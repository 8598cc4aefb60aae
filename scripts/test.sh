#!/usr/bin/env bash
# The whole test suite: unit tests, the PostgreSQL integration tests, the macro's compile-fail
# cases and the doctests. Starts PostgreSQL first if it is not running (see ensure-postgres.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/ensure-postgres.sh
cargo test --workspace "$@"
