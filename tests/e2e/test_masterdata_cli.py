"""Master data end to end (issue 10): `gateway data import|list|status` as a user runs them, and
stock reservations from several processes at once.

- a 50,000-item catalogue, prices, stock and accounts imported through the real CLI, then
  `data status` and `data list` show them;
- a file with bad rows: every problem with its row and column, exit 1, nothing stored;
- four processes reserving the same last units never oversell, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from bench.bench_masterdata import gtin13, write_items_csv
from tests.e2e.helpers import ROOT, run_cli

pytestmark = pytest.mark.slow


def _config(tmp: Path, url: str) -> Path:
    cfg = tmp / "gateway.yaml"
    cfg.write_text(f"store:\n  url: {url}\n")
    return cfg


def _cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, "--config", str(cfg), timeout=240)


def _csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _status(cfg: Path) -> dict[tuple[str, str], int]:
    done = _cli(cfg, "data", "status")
    assert done.returncode == 0, done.stderr
    found = {}
    for line in done.stdout.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 4 and cells[2].isdigit():
            found[(cells[0], cells[1])] = int(cells[2])
    return found


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_50000_item_catalogue_and_its_prices_stock_and_accounts_through_the_cli(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    url = f"sqlite:///{tmp_path / 'gw.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    cfg = _config(tmp_path, url)
    items = write_items_csv(tmp_path / "catalogue.csv", 50_000)

    started = time.perf_counter()
    done = _cli(cfg, "data", "import", "items", str(items))
    took = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-3000:]
    assert "items: 50000 stored from catalogue.csv (50000 row(s)" in done.stdout
    assert took < 60, f"50,000 items took {took:.1f} s through the CLI"  # measured: ~3.5 s SQLite, ~6 s PostgreSQL

    warehouses = ["BER", "HAM", "MUC"]
    stock = _csv(tmp_path / "stock.csv", "Item Number;WH;Qty on hand;Reorder point",
                 [f"SKU-{n:06d};{wh};{(n * 7) % 500};{n % 50}" for n in range(0, 900, 3) for wh in warehouses])
    prices = _csv(tmp_path / "prices.csv", "SKU,Price,Cur,Account,Unit,Min Qty,From,To",
                  [f"SKU-{n:06d},{n % 90 + 1}.25,EUR,,EA,0,2026-01-01,2026-12-31" for n in range(400)]
                  + [f"SKU-{n:06d},{n % 90}.99,EUR,C-{n % 40:04d},EA,10,," for n in range(400)])
    accounts = _csv(tmp_path / "accounts.csv", "Customer Number,Company,Credit Limit,Open Balance,Terms,Ship-To City,Ship-To Zip,Ship-To Country",
                    [f"C-{n // 2:04d},Customer {n // 2},{10_000 + n},{n},NET30,City {n},{10000 + n},DE" for n in range(600)])
    for kind, path, stored in (("stock", stock, 900), ("prices", prices, 800), ("accounts", accounts, 300)):
        done = _cli(cfg, "data", "import", kind, str(path))
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"{kind}: {stored} stored from {path.name}" in done.stdout
        assert "not in the catalogue" not in done.stderr

    status = _status(cfg)
    assert status[("items", "catalogue.csv")] == 50_000
    assert status[("stock", "stock.csv")] == 900 and status[("prices", "prices.csv")] == 800
    assert status[("accounts", "accounts.csv")] == 300 and status[("xrefs", "-")] == 0

    shown = _cli(cfg, "data", "list", "items", "--sku", "SKU-012345")
    assert shown.returncode == 0 and "SKU-012345" in shown.stdout and f"gtin            {gtin13(12345)}" in shown.stdout, shown.stdout
    shown = _cli(cfg, "data", "list", "stock", "--sku", "SKU-000003")
    assert shown.returncode == 0 and "stock: 3 of 3 row(s) for SKU-000003" in shown.stdout
    assert re.search(r"warehouse +BER\n +on hand +21\n +reserved +0\n +reorder point +3\n +source +stock.csv", shown.stdout), shown.stdout
    listed = _cli(cfg, "data", "list", "prices", "--json", "--limit", "1000")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(rows) == 800 and {"sku": "SKU-000041", "customer": "C-0001", "unit_price": "41.99", "min_quantity": "10"}.items() <= rows[83].items(), rows[83]
    assert rows[82]["sku"] == "SKU-000041" and rows[82]["customer"] == "" and rows[82]["valid_to"] == "2026-12-31"
    shown = _cli(cfg, "data", "list", "accounts", "--sku", "C-0007")
    assert "2 address(es)" in shown.stdout and "10014" in shown.stdout, shown.stdout
    missing = _cli(cfg, "data", "list", "items", "--sku", "NOPE")
    assert missing.returncode == 1 and "items: 0 of 0 row(s)" in missing.stdout

    # The same catalogue again, with --replace and 10 items fewer: updates, and 10 removed.
    lines = items.read_text().splitlines()
    items.write_text("\n".join(lines[:-10]) + "\n")
    done = _cli(cfg, "data", "import", "items", str(items), "--replace")
    assert done.returncode == 0 and "49990 stored" in done.stdout and "10 removed (--replace)" in done.stdout, done.stdout


def test_a_bad_file_names_every_bad_row_and_column_and_stores_nothing(tmp_path: Path) -> None:
    cfg = _config(tmp_path, f"sqlite:///{tmp_path / 'gw.db'}")
    rows = [f"SKU-{n:05d},{n % 7}.50,EUR,,{'2026-01-01'},{'2026-06-30'}" for n in range(400)]
    bad = {
        37: ("SKU-00036,abc,EUR,,2026-01-01,2026-06-30", 'column "price" (B)', "'abc' is not a number"),
        101: ("SKU-00100,1.00,EURO,,2026-01-01,2026-06-30", 'column "currency" (C)', "not an ISO 4217 currency code"),
        202: ("SKU-00201,1.00,EUR,,2026-13-01,2026-06-30", 'column "valid from" (E)', "write it as YYYY-MM-DD"),
        303: ("SKU-00302,1.00,EUR,,2026-07-01,2026-06-30", 'column "valid to" (F)', "is before valid_from"),
        350: (",1.00,EUR,,,", 'column "sku" (A)', "sku is empty"),
        399: ("SKU-00398,-2,EUR,,,", 'column "price" (B)', "is negative"),
    }
    for row, (text, _, _) in bad.items():
        rows[row - 2] = text  # row 1 is the header
    path = _csv(tmp_path / "prices.csv", "sku,price,currency,customer,valid from,valid to", rows)

    done = _cli(cfg, "data", "import", "prices", str(path))
    assert done.returncode == 1
    for row, (_, column, message) in bad.items():
        assert re.search(rf"prices.csv: row {row}, {re.escape(column)}: .*{re.escape(message)}", done.stderr), (row, done.stderr)
    assert "6 of 400 row(s) are bad: nothing was stored" in done.stderr
    assert _status(cfg)[("prices", "-")] == 0

    done = _cli(cfg, "data", "import", "prices", str(path), "--skip-bad")
    assert done.returncode == 0, done.stderr
    assert "prices: 394 stored from prices.csv" in done.stdout and "6 bad row(s) skipped" in done.stdout
    assert "warning: 394 SKU(s) are not in the catalogue: SKU-00000, SKU-00001, SKU-00002, SKU-00003, SKU-00004, ..." in done.stderr
    assert _status(cfg)[("prices", "prices.csv")] == 394

    refused = _cli(cfg, "data", "import", "stock", str(path))
    assert refused.returncode == 1 and "no column for warehouse" in refused.stderr and "on_hand" in refused.stderr
    unknown = _cli(cfg, "data", "import", "colours", str(path))
    assert unknown.returncode == 2 and "unknown master data kind 'colours'" in unknown.stderr


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_four_processes_never_take_the_same_last_unit(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    """100 orders from 4 processes want 1 of LAST each (30 on hand) and 2 of SPARE (150):
    every unit of LAST goes to exactly one order, none is held twice, nothing goes negative."""
    url = f"sqlite:///{tmp_path / 'gw.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    cfg = _config(tmp_path, url)
    stock = _csv(tmp_path / "stock.csv", "sku,warehouse,on_hand", ["LAST,BER,30", "SPARE,BER,100", "SPARE,HAM,50"])
    assert _cli(cfg, "data", "import", "stock", str(stock)).returncode == 0

    go = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.support.reserve_worker", url, str(w), "25", str(go)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for w in range(4)
    ]
    time.sleep(1.5)  # every worker has imported the gateway and waits for the start
    go.touch()
    records = []
    for w in workers:
        out, err = w.communicate(timeout=180)
        assert w.returncode == 0, err[-3000:]
        records.extend(json.loads(line) for line in out.splitlines())
    assert len(records) == 100

    from sqlalchemy import text

    from gateway.store import Store

    store = Store(url, migrate=False)
    try:
        with store.engine.connect() as conn:
            levels = {(r.sku, r.warehouse): (Decimal(r.on_hand), Decimal(r.reserved)) for r in conn.execute(text("SELECT * FROM stock"))}
            held = list(conn.execute(text("SELECT order_id, line, sku, warehouse, quantity FROM stock_reservations WHERE state = 'reserved'")))
    finally:
        store.dispose()

    last_holders = [r.order_id for r in held if r.sku == "LAST"]
    assert len(last_holders) == len(set(last_holders)), "an order holds LAST twice"
    assert all(Decimal(r.quantity) == (1 if r.sku == "LAST" else 2) for r in held)
    # Nothing oversold, and the stock's own count is exactly what the reservations hold.
    for key, (on_hand, reserved) in levels.items():
        mine = sum((Decimal(r.quantity) for r in held if (r.sku, r.warehouse) == key), Decimal(0))
        assert Decimal(0) <= reserved <= on_hand and reserved == mine, (key, on_hand, reserved, mine)
    # Every LAST unit that an order was told it got is held by that order, and by no other.
    told = {r["order"] for r in records if Decimal(r["lines"]["LAST"][1]) == 1 and not r["released"]}
    assert told == set(last_holders)
    released_with_last = [r for r in records if r["released"] and Decimal(r["lines"]["LAST"][1]) == 1]
    # 30 units: all taken, less those released late with no order after them to take them.
    assert len(told) + len(released_with_last) >= 30 and len(told) <= 30
    assert levels[("LAST", "BER")][1] == len(told)
    shown = _cli(cfg, "data", "reservations", "--sku", "LAST", "--limit", "100")
    assert shown.returncode == 0 and f"{len(told)} reservation(s) of LAST" in shown.stdout, shown.stdout
    assert {o for o in told if o in shown.stdout} == told
    one = sorted(told)[0]
    shown = _cli(cfg, "data", "reservations", "--order", one)
    assert f"reservation(s) of order {one}" in shown.stdout and "LAST" in shown.stdout
    # Reserving an order twice never held anything twice.
    for r in records:
        if r["again"] is not None:
            reserved_first = sum(Decimal(q) for _, q in r["lines"].values())
            assert r["again"]["repeated"] and Decimal(r["again"]["held"]) == reserved_first > 0, r


@pytest.mark.parametrize("args", [("data", "status"), ("data", "list", "items"), ("data", "list", "stock", "--sku", "A"), ("data", "reservations")])
def test_looking_at_master_data_without_a_store_creates_nothing(tmp_path: Path, args: tuple[str, ...]) -> None:
    """`data status` and `data list` only read: on a missing store they say so, exit 1, create nothing."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_CONFIG"}
    done = subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**env, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 1 and "no store at" in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_xlsx_export_with_its_own_mapping_and_sheet(tmp_path: Path) -> None:
    """An ERP's XLSX export (German headers, the data on its second sheet) read with a mapping
    file given by path: 500 contract prices with date cells and numeric cells."""
    import datetime as dt

    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "Info"
    book.active.append(["Export vom", dt.date(2026, 12, 1)])
    sheet = book.create_sheet("Preise")
    sheet.append(["Artikelnummer", "Kunde", "Preis", "Währung", "Gültig ab", "Gültig bis", "Bemerkung"])
    for n in range(500):
        sheet.append([f"SKU-{n:05d}", f"K{n % 25:03d}", 1.5 + n, "EUR", dt.datetime(2026, 1, 1), dt.date(2026, 12, 31) if n % 2 else None, "x"])
    book.save(tmp_path / "preise.xlsx")
    mapping = tmp_path / "erp-preise.yaml"
    mapping.write_text(
        "kind: prices\nsheet: Preise\ncolumns:\n  sku: [Artikelnummer]\n  customer: [Kunde]\n  unit_price: [Preis]\n"
        "  currency: [Währung]\n  valid_from: [Gültig ab]\n  valid_to: [Gültig bis]\n",
        encoding="utf-8",
    )
    cfg = _config(tmp_path, f"sqlite:///{tmp_path / 'gw.db'}")
    done = _cli(cfg, "data", "import", "prices", str(tmp_path / "preise.xlsx"), "--mapping", str(mapping))
    assert done.returncode == 0, done.stderr
    assert "prices: 500 stored from preise.xlsx" in done.stdout and "columns not in the mapping, ignored: Bemerkung" in done.stderr
    listed = _cli(cfg, "data", "list", "prices", "--sku", "SKU-00007", "--json")
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {"customer": "K007", "unit_price": "8.5", "currency": "EUR", "valid_from": "2026-01-01", "valid_to": "2026-12-31"}.items() <= row.items(), row

    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("kind: prices\nsheet: Preise\ncolumns:\n  sku: [Artikelnummer]\n  rabatt: [Rabatt]\n")
    done = _cli(cfg, "data", "import", "prices", str(tmp_path / "preise.xlsx"), "--mapping", str(wrong))
    assert done.returncode == 2 and f"{wrong}:5: prices has no field 'rabatt'" in done.stderr, done.stderr
