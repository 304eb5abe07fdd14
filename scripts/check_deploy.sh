#!/usr/bin/env bash
# Checks the deployment files without a Docker daemon (README "Deployment"): does what the
# Dockerfile does, step by step, on this machine, then checks compose and the systemd unit.
#
#   1. builds the gateway's wheel (the Dockerfile's build stage: `pip wheel`);
#   2. installs it into a fresh virtual environment (the runtime stage: from the wheel only);
#   3. runs the entry point: `gateway --version`, then, with the shipped deploy/gateway.yaml
#      (store: $GATEWAY_TEST_PG_URL's server if set, else SQLite), `config check`,
#      `db upgrade` (the compose `migrate` service), and `gateway run` until /healthz and
#      /readyz answer on the admin port; a file dropped in the inbox reaches the outbox;
#   4. reads docker-compose.yml, the Dockerfile and deploy/gateway.yaml for their essentials,
#   5. and runs `systemd-analyze verify` on deploy/gateway.service (tests/e2e/test_deploy_files.py);
#   6. `docker build` when a Docker daemon answers (else says it was skipped).
#
# Usage: scripts/check_deploy.sh            (about a minute; needs the package index pip uses)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
WORK=$(mktemp -d)
PID=
DROP=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null
    [ -n "$DROP" ] && "$PY" - "$GATEWAY_TEST_PG_URL" "$DROP" <<'PYEOF'
import sys
from sqlalchemy import create_engine, text
with create_engine(sys.argv[1], isolation_level="AUTOCOMMIT").connect() as c:
    c.execute(text(f'DROP DATABASE IF EXISTS "{sys.argv[2]}" WITH (FORCE)'))
PYEOF
    rm -rf "$WORK"
}
trap cleanup EXIT
say() { printf '== %s\n' "$*"; }

say "1. wheel"
"$PY" -m pip wheel -q --no-deps -w "$WORK/wheels" "$ROOT"
WHEEL=$(ls "$WORK"/wheels/order_gateway-*.whl)

say "2. fresh virtual environment from the wheel"
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q "$WHEEL[postgres]"
GW="$WORK/venv/bin/gateway"

say "3. entry point"
want=$("$PY" -c "import tomllib; print(tomllib.load(open('$ROOT/pyproject.toml','rb'))['project']['version'])")
got=$(cd "$WORK" && "$GW" --version)
[ "$got" = "gateway $want" ] || { echo "gateway --version said '$got', expected 'gateway $want'"; exit 1; }
echo "$got"
mkdir -p "$WORK/home"
sed -e "s#^home: /var/lib/gateway#home: $WORK/home#" -e "s#host: 0.0.0.0 #host: 127.0.0.1#" -e "s#port: 9464#port: 0#" \
    "$ROOT/deploy/gateway.yaml" > "$WORK/gateway.yaml"
if [ -n "${GATEWAY_TEST_PG_URL:-}" ]; then
    db="deploy_$$"
    "$PY" - "$GATEWAY_TEST_PG_URL" "$db" <<'PYEOF'
import sys
from sqlalchemy import create_engine, text
with create_engine(sys.argv[1], isolation_level="AUTOCOMMIT").connect() as c:
    c.execute(text(f'DROP DATABASE IF EXISTS "{sys.argv[2]}"'))
    c.execute(text(f'CREATE DATABASE "{sys.argv[2]}"'))
PYEOF
    DROP=$db
    export GATEWAY_DATABASE_URL="${GATEWAY_TEST_PG_URL%/*}/$db"
else
    export GATEWAY_DATABASE_URL="sqlite:///$WORK/home/gateway.db"
fi
export GATEWAY_CONFIG="$WORK/gateway.yaml"
cd "$WORK"
"$GW" config check
if "$GW" status >/dev/null 2>&1; then echo "status ran on a store that was never upgraded"; exit 1; fi
"$GW" db upgrade
"$GW" db current
mkdir -p "$WORK/home/inbox"
"$GW" run --for 120 2> "$WORK/run.log" &
PID=$!
url=
for _ in $(seq 600); do  # the service logs the admin address once it listens
    url=$(sed -n 's/.*"admin port listening on \(http:[^ ]*\) .*/\1/p' "$WORK/run.log" | head -1)
    [ -n "$url" ] && break
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/run.log"; exit 1; }
    sleep 0.1
done
[ -n "$url" ] || { echo "the admin port never started"; cat "$WORK/run.log"; exit 1; }
curl -fsS "$url/healthz"; echo
curl -fsS "$url/readyz"; echo
curl -fsS "$url/metrics" | grep -q '^gateway_up 1$'
cp "$ROOT/gateway/examples/northwind-po-5010.edi" "$WORK/home/inbox/"
for _ in $(seq 600); do ls "$WORK"/home/outbox/*.json >/dev/null 2>&1 && break; sleep 0.1; done
ls "$WORK"/home/outbox/*.json >/dev/null
kill -TERM "$PID"; wait "$PID"; PID=
"$GW" status
grep -q '"level": "INFO"' "$WORK/run.log" || { echo "the log is not JSON lines"; exit 1; }

say "4-5. Dockerfile and compose essentials, shipped configuration, systemd-analyze verify"
(cd "$ROOT" && GATEWAY_REQUIRE_SERVICES=1 "$PY" -m pytest -q -p no:cacheprovider tests/e2e/test_deploy_files.py)

say "6. docker build"
if docker info >/dev/null 2>&1; then
    docker build -t order-gateway:check "$ROOT"
    docker run --rm order-gateway:check --version
else
    echo "skipped: no Docker daemon answers here (docker info failed)"
fi
say "deployment checks passed"
