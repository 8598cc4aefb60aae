#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL 15 cluster with production-like settings
# (autovacuum on, default durability), as the benchmarks in docs/benchmarks.md are measured:
#   scripts/bench-cluster.sh cargo bench --bench throughput --all-features -- --scenario all
# The cluster's URL is passed in DATABASE_URL and as `--database-url` is NOT added: the bench reads
# DATABASE_URL. initdb into a temp dir, a free port on 127.0.0.1, removed on exit.
# BENCH_PG_CONF may add settings (one per line), e.g. "shared_preload_libraries = 'pg_stat_statements'".
set -euo pipefail
BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
DIR=$(mktemp -d /tmp/jobsmith-bench-pg.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
AS=()
if [ "$(id -u)" = 0 ]; then chown postgres "$DIR"; AS=(runuser -u postgres --); fi
cleanup() { "${AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
"${AS[@]}" "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust >/dev/null
{
  echo "listen_addresses = '127.0.0.1'"
  echo "port = $PORT"
  echo "unix_socket_directories = '$DIR'"
  echo "max_connections = 200"
  echo "autovacuum = on"
  printf '%s\n' "${BENCH_PG_CONF:-}"
} >> "$DIR/data/postgresql.conf"
"${AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w start >/dev/null
export DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/postgres"
echo "# throwaway cluster at $DATABASE_URL (autovacuum on)" >&2
"$@"
