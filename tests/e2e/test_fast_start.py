"""Fast start (issue 9): the commands people run by hand load no more than they use.

`gateway translate` and `gateway --help` used to import FastAPI (through the web-form
configuration) and more, about 1.2 s before any work. These are behaviour tests: they list
the modules a real process imported (``python -X importtime``), not how long it took;
bench/bench_startup.py prints the times.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.helpers import ROOT

WEB_AND_DB = ("fastapi", "starlette", "uvicorn", "alembic", "sqlalchemy", "apscheduler")


def _imported(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    full = {k: v for k, v in os.environ.items() if k != "GATEWAY_CONFIG"}
    full.update({"PYTHONPATH": str(ROOT), **(env or {})})
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "gateway.cli", *args],
        cwd=cwd, env=full, capture_output=True, text=True, timeout=60,
    )
    names = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "gateway.cli" in names or "typer" in names, done.stderr[-2000:]
    return done, names


def _top(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


def test_translate_imports_no_web_stack_and_no_database(tmp_path: Path) -> None:
    """issue 9 Fast start: `gateway translate` with a configuration that has an HTTP intake with
    shops and web forms, a store, connectors and partners imports neither FastAPI, Starlette,
    uvicorn nor Alembic, SQLAlchemy or the scheduler."""
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(
        f"""\
store:
  url: postgresql+psycopg://gateway:${{env:GW_FAST_DB_PASSWORD}}@127.0.0.1:1/gateway
sources:
  - {{type: folder, name: inbox, path: {tmp_path / 'inbox'}}}
connectors:
  - {{type: http_json, name: erp, url: "https://erp.example.com/orders"}}
  - {{type: file, name: outbox, path: {tmp_path / 'outbox'}}}
intake:
  stores:
    - {{name: acme-shop, platform: shopify, secrets: ["${{env:GW_FAST_SHOP_SECRET}}"]}}
  forms:
    - {{name: order, partner: web-shop}}
partners:
  - {{name: acme, x12_ids: ["ZZ:ACMEBUYER"]}}
"""
    )
    done, names = _imported(
        ["translate", str(ROOT / "gateway" / "examples" / "northwind-po-5010.edi"), "--config", str(cfg)],
        tmp_path,
        {"GW_FAST_DB_PASSWORD": "x", "GW_FAST_SHOP_SECRET": "s" * 32},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"po_number":"NW-2026-0042"' in done.stdout
    assert "gateway.config" in names and "gateway.translate" in names
    assert not _top(names) & set(WEB_AND_DB), sorted(_top(names) & set(WEB_AND_DB))
    # Reading an order builds no acknowledgement: the 855/997/CONTRL builders' tables are not loaded.
    assert not names & {"gateway.acks.x12", "gateway.acks.edifact"}, sorted(names & {"gateway.acks.x12", "gateway.acks.edifact"})


def test_help_loads_no_configuration(tmp_path: Path) -> None:
    """issue 9 Fast start: `gateway --help` reads no configuration and loads no web stack,
    database layer or parser."""
    done, names = _imported(["--help"], tmp_path)
    assert done.returncode == 0 and "translate" in done.stdout
    assert not _top(names) & {*WEB_AND_DB, "pyx12", "lxml", "yaml"}, sorted(_top(names) & {*WEB_AND_DB, "pyx12", "lxml", "yaml"})
    assert not {n for n in names if n.startswith(("gateway.config", "gateway.model", "connectors."))}
