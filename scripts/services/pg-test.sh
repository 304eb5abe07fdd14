#!/bin/sh
# A throwaway PostgreSQL for the tests, on its own port and data folder, run as root.
# The server runs as the 'postgres' system user (initdb/postgres refuse root).
#   eval "$(scripts/services/pg-test.sh start)"   exports GATEWAY_TEST_PG_URL
#   scripts/services/pg-test.sh stop | reset | status
# Modelled on ../shared/recipes/test-services/pg-test.sh (verified on Debian 12, PG 15).
set -eu
PG_DIR=${PG_DIR:-/tmp/gateway-test-services/pg}
PGPORT=${PGPORT:-15432}
DB=${PG_TEST_DB:-gateway_test}
DATA=$PG_DIR/data
RUN=$PG_DIR/run
log() { echo "$*" >&2; }

install_if_missing() {
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    log "installing postgresql from Debian"
    [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ] || apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  fi
  id postgres >/dev/null 2>&1 || useradd --system --home-dir "$PG_DIR" postgres
}

bindir() { ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1; }
as_pg() { runuser -u postgres -- "$@"; }

start() {
  install_if_missing
  B=$(bindir)
  mkdir -p "$PG_DIR" "$RUN"
  chown postgres: "$PG_DIR" "$RUN"
  if ! [ -s "$DATA/PG_VERSION" ]; then
    as_pg "$B/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 -N >"$PG_DIR/initdb.log"
  fi
  if ! as_pg "$B/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    # durability off: a throwaway test database, much faster commits
    as_pg "$B/pg_ctl" -D "$DATA" -l "$PG_DIR/server.log" -w -t 30 start -o \
      "-p $PGPORT -k $RUN -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" </dev/null >/dev/null
  fi
  i=0; until "$B/pg_isready" -q -h 127.0.0.1 -p "$PGPORT"; do i=$((i+1)); [ $i -lt 100 ] || { tail "$PG_DIR/server.log" >&2; exit 1; }; sleep 0.1; done
  if [ "$("$B/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -Atc "select 1 from pg_database where datname='$DB'")" != 1 ]; then
    "$B/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres "$DB"
  fi
  echo "export GATEWAY_TEST_PG_URL='postgresql+psycopg://postgres@127.0.0.1:$PGPORT/$DB'"
}

stop() {
  [ -s "$DATA/PG_VERSION" ] || return 0
  B=$(bindir)
  if as_pg "$B/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    as_pg "$B/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  reset) stop; rm -rf "$PG_DIR" ;;
  status) B=$(bindir); as_pg "$B/pg_ctl" -D "$DATA" status ;;
  *) echo "usage: $0 start|stop|reset|status" >&2; exit 2 ;;
esac
