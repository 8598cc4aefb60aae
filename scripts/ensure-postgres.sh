#!/usr/bin/env bash
# Makes sure a PostgreSQL server is reachable for the tests and exports DATABASE_URL.
#
# 1. DATABASE_URL set: use it (fail loudly if it does not answer).
# 2. Else a server on 127.0.0.1:5432 (user postgres, trust auth, database test).
# 3. Else install PostgreSQL with apt-get (root needed), start it, allow trust auth on loopback,
#    and create the database `test`.
set -euo pipefail

say() { printf 'ensure-postgres: %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

psql_ok() { command -v psql >/dev/null 2>&1 && psql "$1" -qtAc 'SELECT 1' >/dev/null 2>&1; }

if [ -n "${DATABASE_URL:-}" ]; then
  if command -v psql >/dev/null 2>&1 && ! psql_ok "$DATABASE_URL"; then
    say "DATABASE_URL is set but the server does not answer: $DATABASE_URL"
    exit 1
  fi
  say "using DATABASE_URL"
  return 0 2>/dev/null || exit 0
fi

export DATABASE_URL="postgres://postgres@127.0.0.1:5432/test"

if ! port_open 127.0.0.1 5432; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
      say "no PostgreSQL on 127.0.0.1:5432 and not root, so it cannot be installed: install PostgreSQL or set DATABASE_URL"
      exit 1
    fi
    say "installing PostgreSQL through apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq postgresql postgresql-client >/dev/null
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if [ -z "$version" ]; then
    say "PostgreSQL is installed but has no cluster in /etc/postgresql"
    exit 1
  fi
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    # Loopback only, for tests on this machine.
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  say "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster "$version" main start
  for _ in $(seq 1 60); do
    port_open 127.0.0.1 5432 && break
    sleep 0.5
  done
  port_open 127.0.0.1 5432 || { say "PostgreSQL did not start"; exit 1; }
fi

if command -v psql >/dev/null 2>&1; then
  for _ in $(seq 1 30); do
    psql "postgres://postgres@127.0.0.1:5432/postgres" -qtAc 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.5
  done
  if ! psql_ok "$DATABASE_URL"; then
    psql "postgres://postgres@127.0.0.1:5432/postgres" -qc 'CREATE DATABASE test' >/dev/null 2>&1 || true
  fi
  psql_ok "$DATABASE_URL" || { say "cannot connect to $DATABASE_URL (check pg_hba.conf trust for 127.0.0.1)"; exit 1; }
  # Databases left by earlier runs whose process is gone.
  for db in $(psql "$DATABASE_URL" -qtAc "SELECT datname FROM pg_database WHERE datname LIKE 'jobsmith_t_%'"); do
    pid=$(printf '%s' "$db" | cut -d_ -f3)
    if ! kill -0 "$pid" 2>/dev/null; then
      psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
    fi
  done
fi
say "using $DATABASE_URL"
