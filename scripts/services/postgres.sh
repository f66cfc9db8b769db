#!/usr/bin/env bash
# PostgreSQL 15 for tests and benchmarks: a scratch cluster in .services/postgres/ on
# 127.0.0.1 (no other interface, socket in the cluster's folder), trust auth for the local
# superuser `postgres`, database `vellum`. Installs Debian's `postgresql` when missing (as root).
# Usage: scripts/services/postgres.sh start|stop   (writes .services/postgres.env)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD/.services
dir=$root/postgres
port=${VELLUM_PG_PORT:-55432}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-start}" in
  start)
    if [ -z "$bin" ]; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >/dev/null
        bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
      else
        echo "postgres: not installed (Debian: apt-get install postgresql)" >&2
        exit 1
      fi
    fi
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir" && chmod 700 "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
      as_postgres "$bin/initdb" -D "$dir" -A trust -U postgres -E UTF8 >/dev/null
    fi
    if ! as_postgres "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
      as_postgres "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c synchronous_commit=on -c fsync=on" start >/dev/null
    fi
    as_postgres "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = 'vellum'" | grep -q 1 ||
      as_postgres "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE vellum"
    echo "VELLUM_PG_URL=postgres://postgres@127.0.0.1:$port/vellum" > "$root/postgres.env"
    echo "postgres: $("$bin/postgres" --version) on 127.0.0.1:$port" >&2
    ;;
  stop)
    if [ -n "$bin" ] && [ -f "$dir/PG_VERSION" ]; then
      as_postgres "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -f "$root/postgres.env"
    ;;
  *) echo "usage: $0 start|stop" >&2 && exit 2 ;;
esac
