"""Regression tests for issue 14 defects found by using the CLI (#4, #7, #9, #15, #22).

Each test drives `python -m gateway.cli` in a subprocess, in a folder of its own, as a user
would; none would pass on b774edf.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.helpers import ROOT

EXAMPLES = ROOT / "gateway" / "examples"
CARTS = ROOT / "tests" / "fixtures" / "carts"
CANARY = "Canary-pw-93f1c7"


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("GATEWAY_CONFIG", "GATEWAY_CRASHPOINT")}
    full["PYTHONPATH"] = str(ROOT)
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=timeout
    )


def _config(tmp: Path, store_url: str, extra: str = "") -> Path:
    cfg = tmp / "gateway.yaml"
    cfg.write_text(
        f"""\
store:
  url: {store_url}
sources:
  - {{type: folder, name: inbox, path: {tmp / 'inbox'}, poll_seconds: 0.2, stable_seconds: 0}}
connectors:
  - {{type: file, name: outbox, path: {tmp / 'outbox'}}}
{extra}"""
    )
    (tmp / "inbox").mkdir(exist_ok=True)
    return cfg


# -- issue 14 #4: no password on screen or in logs ------------------------------------------------


def _with_password(pg_url: str, password: str) -> str:
    scheme, rest = pg_url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{password}@{host}"


@pytest.mark.postgres
def test_store_password_never_printed(tmp_path: Path, pg_url: str) -> None:
    """issue 14 #4: `config check`, the service's start-up log and store errors show the store
    URL without its password, whether it is written in the file or comes from ${env:...}."""
    # The test server trusts local connections, so any password opens it.
    from_env = _config(tmp_path, _with_password(pg_url, "${env:GW_TEST_DB_PASSWORD}"))
    env = {"GW_TEST_DB_PASSWORD": CANARY}
    seen: list[str] = []

    checked = cli("config", "check", "--config", str(from_env), cwd=tmp_path, env=env)
    assert checked.returncode == 0, checked.stderr
    assert "postgres:***@" in checked.stdout
    seen += [checked.stdout, checked.stderr]

    ran = cli("run", "--for", "1.5", "--config", str(from_env), cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr
    assert "gateway running" in ran.stderr  # the start-up message that names the store
    seen += [ran.stdout, ran.stderr]

    literal = _config(tmp_path, _with_password(pg_url, CANARY))
    checked = cli("config", "check", "--config", str(literal), cwd=tmp_path)
    assert checked.returncode == 0 and "***" in checked.stdout
    seen += [checked.stdout, checked.stderr]

    # A store that cannot be reached: the error names it, without the password.
    unreachable = _config(tmp_path, f"postgresql+psycopg://postgres:{CANARY}@127.0.0.1:1/nowhere")
    for args in (("ingest", str(EXAMPLES / "acme-po-4010.edi")), ("run", "--once"), ("orders",)):
        failed = cli(*args, "--config", str(unreachable), cwd=tmp_path)
        assert failed.returncode != 0
        assert "127.0.0.1:1" in failed.stderr and "***" in failed.stderr, failed.stderr
        seen += [failed.stdout, failed.stderr]
    assert not [text for text in seen if CANARY in text]


# -- issue 14 #7: nodes started together on an empty PostgreSQL ------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
def test_three_nodes_migrate_one_empty_database(tmp_path: Path, pg_url: str) -> None:
    """issue 14 #7: three `gateway ingest` started at once on one empty PostgreSQL database all
    succeed: migrations wait for each other under an advisory lock instead of racing."""
    procs = []
    for i in range(3):
        home = tmp_path / f"node{i}"
        home.mkdir()
        cfg = _config(home, pg_url)
        full = {k: v for k, v in os.environ.items() if k != "GATEWAY_CONFIG"}
        full["PYTHONPATH"] = str(ROOT)
        sample = EXAMPLES / ("acme-po-4010.edi" if i != 1 else "northwind-po-5010.edi")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "ingest", str(sample), "--config", str(cfg)],
                cwd=home, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
        )
    results = [(p.communicate(timeout=120)[1], p.returncode) for p in procs]
    assert [rc for _, rc in results] == [0, 0, 0], results
    listed = cli("orders", "--config", str(tmp_path / "node0" / "gateway.yaml"), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "NW-2026-0042" in listed.stdout and "ACME-45001" in listed.stdout


# -- issue 14 #9: read-only commands create nothing -----------------------------------------------


@pytest.mark.parametrize(
    "args",
    [("orders",), ("messages",), ("show", "abcdef12"), ("review",), ("dead-letters",), ("replay", "1"),
     ("approve", "abcdef12"), ("reject", "abcdef12"), ("reprocess", "abcdef12")],
)
def test_commands_on_a_missing_store_create_nothing(tmp_path: Path, args: tuple[str, ...]) -> None:
    """issue 14 #9: in an empty folder (the embedded defaults: SQLite in ./var) a command that
    looks at stored work says there is no store and exits non-zero, creating no var/gateway.db."""
    done = cli(*args, cwd=tmp_path)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "no store at" in done.stderr and "gateway.db" in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.postgres
def test_orders_on_an_empty_postgres_database_migrates_nothing(tmp_path: Path, pg_url: str) -> None:
    """issue 14 #9: on a PostgreSQL database without the gateway's tables `gateway orders` says so
    and leaves the database empty."""
    from sqlalchemy import create_engine, inspect

    done = cli("orders", "--config", str(_config(tmp_path, pg_url)), cwd=tmp_path)
    assert done.returncode == 1 and "holds no gateway data yet" in done.stderr, done.stderr
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == []
    finally:
        engine.dispose()


def test_orders_after_ingest_still_lists(tmp_path: Path) -> None:
    """issue 14 #9, the other side: once a store exists, the read-only commands read it."""
    cfg = _config(tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.db'}")
    assert cli("ingest", str(EXAMPLES / "acme-po-4010.edi"), "--config", str(cfg), cwd=tmp_path).returncode == 0
    listed = cli("orders", "--config", str(cfg), cwd=tmp_path)
    assert listed.returncode == 0 and "ACME-45001" in listed.stdout, listed.stderr


# -- issue 14 #15: smaller ------------------------------------------------------------------------


def test_replay_of_an_unknown_id_is_an_error(tmp_path: Path) -> None:
    """issue 14 #15: `gateway replay 1` with no such dead letter names the id and exits non-zero
    (it printed "0 queued")."""
    cfg = _config(tmp_path, f"sqlite:///{tmp_path / 'gateway.db'}")
    assert cli("ingest", str(EXAMPLES / "acme-po-4010.edi"), "--config", str(cfg), cwd=tmp_path).returncode == 0
    done = cli("replay", "1", "77", "ack:5", "--config", str(cfg), cwd=tmp_path)
    assert done.returncode == 1
    assert "no dead letter with id 1, 77, ack:5" in done.stderr, done.stderr
    assert "queued again" not in done.stderr


def test_translate_needs_no_secrets(tmp_path: Path) -> None:
    """issue 14 #15: `gateway translate` works while the secrets of the store, connectors and
    intake are unset: it uses none of them. `config check` still names every unset one."""
    cfg = _config(
        tmp_path,
        "${env:GW_UNSET_DATABASE_URL}",
        extra="""\
intake:
  stores:
    - {name: acme-shop, platform: shopify, secrets: ["${env:GW_UNSET_SHOPIFY_SECRET}"]}
partners:
  - {name: acme, x12_ids: ["ZZ:ACMEBUYER"]}
""",
    )
    env = {"GW_UNSET_DATABASE_URL": "", "GW_UNSET_SHOPIFY_SECRET": ""}
    clean = {k: v for k, v in os.environ.items() if k not in env}
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "translate", str(EXAMPLES / "acme-po-4010.edi"), "--config", str(cfg)],
        cwd=tmp_path, env={**clean, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    orders = [json.loads(line) for line in done.stdout.splitlines()]
    assert [o["po_number"] for o in orders][:1] == ["ACME-45001"]
    checked = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "config", "check", "--config", str(cfg)],
        cwd=tmp_path, env={**clean, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60,
    )
    assert checked.returncode == 2
    assert "GW_UNSET_DATABASE_URL is not set" in checked.stderr and "GW_UNSET_SHOPIFY_SECRET is not set" in checked.stderr


def test_a_shop_order_update_is_sent_as_a_replacement(tmp_path: Path) -> None:
    """issue 14 #15: an order update (a shop sends the whole order again, changed) was delivered
    with "purpose": "original"; it is sent, and stored, as a replacement."""
    cfg = _config(tmp_path, f"sqlite:///{tmp_path / 'gateway.db'}")
    first = json.loads((CARTS / "shopify_orders_create.json").read_text())
    update = {**first, "updated_at": "2024-03-06T09:00:00-05:00", "note": "Ring twice."}
    update["line_items"] = [{**first["line_items"][0], "quantity": first["line_items"][0]["quantity"] + 1}, *first["line_items"][1:]]
    (tmp_path / "v1.json").write_text(json.dumps(first))
    (tmp_path / "v2.json").write_text(json.dumps(update))
    for name in ("v1.json", "v2.json"):
        done = cli("ingest", str(tmp_path / name), "--format", "shopify", "--partner", "acme-shop", "--config", str(cfg), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    ran = cli("run", "--once", "--config", str(cfg), cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    sent = [json.loads(p.read_text()) for p in sorted((tmp_path / "outbox").rglob("*.json"))]
    assert len(sent) == 2, [p.name for p in (tmp_path / "outbox").rglob("*")]
    purposes = sorted(o["purpose"] for o in sent)
    assert purposes == ["original", "replace"], purposes
    replaced = next(o for o in sent if o["purpose"] == "replace")
    assert replaced["lines"][0]["quantity"] == str(first["line_items"][0]["quantity"] + 1)


# -- issue 14 #22: LIKE wildcards in id prefixes -------------------------------------------------


def test_show_percent_matches_no_order(tmp_path: Path) -> None:
    """issue 14 #22: `gateway show %` (or `_`) matched every order through SQL LIKE; a wildcard
    is a literal character of an id prefix, and no id contains one."""
    cfg = _config(tmp_path, f"sqlite:///{tmp_path / 'gateway.db'}")
    assert cli("ingest", str(EXAMPLES / "acme-po-4010.edi"), "--config", str(cfg), cwd=tmp_path).returncode == 0
    for pattern in ("%", "_", "%%%%%%%%", "________"):
        done = cli("show", pattern, "--config", str(cfg), cwd=tmp_path)
        assert done.returncode == 1, (pattern, done.stdout)
        assert "no order with id or PO number" in done.stderr, done.stderr
    for pattern in ("%%%%%%%%", "________"):
        done = cli("approve", pattern, "--config", str(cfg), cwd=tmp_path)
        assert done.returncode == 1 and "no order has an id starting with" in done.stderr, done.stderr
