#!/bin/sh
# A real Tryton 8.2 server for the tests (connectors/targets/tryton), on SQLite, on a free port.
#   eval "$(scripts/services/tryton-test.sh start)"   exports GATEWAY_TEST_TRYTON_URL (http://127.0.0.1:PORT; database erp, user admin, password admin)
#   scripts/services/tryton-test.sh stop | reset | status
# The venv and the database with its fixture data (company, currency, warehouse, products WID-1,
# GAD-9, a party ACME) are built once and cached under $TRYTON_DIR by the installed versions and
# the fixture script; each start copies the cached database, so every test session begins clean.
# Recipe: ../shared/recipes/test-services/tryton.md (Tryton 8.2 on SQLite).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
TRYTON_DIR=${TRYTON_DIR:-/tmp/gateway-test-services/tryton}
SERIES=8.2
VENV=$TRYTON_DIR/venv-$SERIES
# One run folder per server: scripts/test sets TRYTON_RUN per invocation, so two runs on one
# machine (CI and a developer) never stop each other's server.
RUN=${TRYTON_RUN:-$TRYTON_DIR/run}
PY=${PYTHON:-python3}
log() { echo "$*" >&2; }

install_if_missing() {
  if ! [ -x "$VENV/bin/trytond" ] || ! ls -d "$VENV"/lib/python*/site-packages/trytond/modules/sale "$VENV"/lib/python*/site-packages/proteus >/dev/null 2>&1; then
    log "installing Tryton $SERIES into $VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "trytond>=$SERIES,<8.3" "trytond-sale>=$SERIES,<8.3" \
      "trytond-stock>=$SERIES,<8.3" "trytond-party>=$SERIES,<8.3" "trytond-product>=$SERIES,<8.3" "proteus>=$SERIES,<8.3" \
      2>&1 | grep -v "^WARNING: Location" >&2 || true
  fi
}

# The cache key: the installed Tryton versions and this folder's fixture script.
cache_key() {
  { ls "$VENV"/lib/python*/site-packages/ | grep -i "^trytond.*dist-info\|^proteus.*dist-info"; cat "$HERE/tryton_fixture.py" "$0"; } \
    | sha256sum | cut -c1-16
}

write_conf() {  # $1: conf file, $2: db folder, $3: port
  cat >"$1" <<CONF
[database]
uri = sqlite://
path = $2
[web]
listen = 127.0.0.1:$3
[session]
timeout = 3600
CONF
}

build_db() {  # $1: the cache folder; built once, atomically (a half-built database is never used)
  dest=$1
  tmp=$dest.tmp.$$
  rm -rf "$tmp"; mkdir -p "$tmp/db"
  write_conf "$tmp/trytond.conf" "$tmp/db" 0
  touch "$tmp/db/erp.sqlite"
  echo admin >"$tmp/pass"
  log "building the Tryton test database (once per version; ~30 s)"
  TRYTONPASSFILE=$tmp/pass "$VENV/bin/trytond-admin" -c "$tmp/trytond.conf" -d erp --all --email admin@example.com >"$tmp/admin.log" 2>&1
  "$VENV/bin/trytond-admin" -c "$tmp/trytond.conf" -d erp -u sale stock --activate-dependencies >>"$tmp/admin.log" 2>&1
  "$VENV/bin/python" "$HERE/tryton_fixture.py" "$tmp/trytond.conf" >>"$tmp/admin.log" 2>&1
  rm -f "$tmp/pass" "$tmp/trytond.conf"
  mkdir -p "$(dirname "$dest")"
  mv "$tmp" "$dest" 2>/dev/null || rm -rf "$tmp"  # another start won the race: use its copy
  # databases built for other versions are stale (a running server uses its own copy)
  find "$TRYTON_DIR" -maxdepth 1 -name 'db-*' ! -name "$(basename "$dest")" ! -name '*.tmp.*' -exec rm -rf {} +
}

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() {
  install_if_missing
  cache=$TRYTON_DIR/db-$(cache_key)
  [ -s "$cache/db/erp.sqlite" ] || build_db "$cache"
  stop
  rm -rf "$RUN"; mkdir -p "$RUN/db"
  cp "$cache/db/erp.sqlite" "$RUN/db/erp.sqlite"
  port=$(free_port)
  write_conf "$RUN/trytond.conf" "$RUN/db" "$port"
  "$VENV/bin/trytond" -c "$RUN/trytond.conf" -d erp >"$RUN/server.log" 2>&1 </dev/null &
  echo $! >"$RUN/pid"
  url="http://127.0.0.1:$port"
  i=0
  until "$PY" - "$url" <<'PYEOF' 2>/dev/null
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/erp/rpc/", json.dumps({"id": 1, "method": "common.db.login", "params": ["admin", {"password": "admin"}, "en"]}).encode(), {"Content-Type": "application/json"})
assert "result" in json.load(urllib.request.urlopen(req, timeout=2))
PYEOF
  do
    i=$((i+1)); [ $i -lt 150 ] || { tail -20 "$RUN/server.log" >&2; exit 1; }; sleep 0.2
  done
  echo "export GATEWAY_TEST_TRYTON_URL='$url'"
}

stop() {
  if [ -s "$RUN/pid" ]; then
    pid=$(cat "$RUN/pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"; i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do i=$((i+1)); sleep 0.1; done
    fi
    rm -f "$RUN/pid"
  fi
  [ "$RUN" = "$TRYTON_DIR/run" ] || rm -rf "$RUN"  # a per-invocation copy: nothing to keep
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  reset) stop; rm -rf "$TRYTON_DIR" ;;
  status) [ -s "$RUN/pid" ] && kill -0 "$(cat "$RUN/pid")" && echo running || { echo stopped; exit 1; } ;;
  *) echo "usage: $0 start|stop|reset|status" >&2; exit 2 ;;
esac
