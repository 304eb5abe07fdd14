"""End to end (issues 11 and 13): shipments and invoices of 150 X12 orders through the real CLI
and the operator HTTP API, and the 856s and 810s in the partner's outbound folder.

    acme sends 150 X12 850s (15 files)           `gateway run --once`: 150 orders dispatched
    `gateway ship --file` (one process)          140 shipped, one row naming no order refused (exit 1)
    POST /api/orders/{PO}/shipment (x10)         the other 10 shipped over HTTP; 401 without the token
    `gateway invoice --file` (one process)       140 invoiced; one more over HTTP
    `gateway send-stock-report acme`             an 846 with the stock of the master data
    changes (850 BEG01 04) to a shipped and an   held ALREADY_SHIPPED
    invoiced order, `gateway run --once`         every 856, 810 and the 846 written to acme's folder:
                                                 292 interchanges, ISA13 1..292 with no gap, each read
                                                 back by pyx12; tracking numbers in the history
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, select

from gateway.acks.readback import check_x12
from gateway.store import tables as t
from tests.e2e.helpers import run_cli
from tests.support.x12gen import interchange, po

pytestmark = pytest.mark.slow

FILES, PER_FILE = 15, 10  # 150 POs
BY_HTTP = 10
TOKEN = "ship-token-" + "Zq8w" * 6


def config(tmp: Path) -> Path:
    cfg = tmp / "gateway.yaml"
    cfg.write_text(
        f"""\
store:
  url: sqlite:///{tmp / "gateway.db"}
sources:
  - type: folder
    name: inbox
    path: {tmp / "inbox"}
    archive: {tmp / "archive"}
    failed: {tmp / "failed"}
    stable_seconds: 0.05
connectors:
  - type: file
    name: erp
    path: {tmp / "erp"}
partners:
  - name: acme
    x12_ids: ["ZZ:ACMERETAIL"]
    acks: {{outbound: {tmp / "out-acme"}, functional: false, ship_notice: true, invoice: true}}
intake:
  host: 127.0.0.1
  port: 0
  operator_api: {{token_env: GW_SHIP_TOKEN}}
"""
    )
    (tmp / "inbox").mkdir()
    return cfg


def asgi(app: Any, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = TOKEN) -> tuple[int, dict[str, Any]]:
    """One request through the ASGI app, in process (no server, no client library)."""
    raw = json.dumps(body or {}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path, "raw_path": path.encode(),
        "query_string": b"", "headers": headers, "scheme": "http", "server": ("test", 80), "client": ("127.0.0.1", 1), "root_path": "",
    }
    sent: list[dict[str, Any]] = []
    chunks = [{"type": "http.request", "body": raw, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body") or b"{}")


def _run(cfg: Path, *args: str, rc: int = 0) -> str:
    done = run_cli(*args, "--config", str(cfg), env={"COLUMNS": "400", "GW_SHIP_TOKEN": TOKEN}, timeout=300)
    assert done.returncode == rc, done.stderr[-3000:]
    return done.stdout + done.stderr


def test_150_orders_shipped_and_invoiced_through_the_cli_and_http_send_856s_and_810s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config(tmp_path)
    pos = [f"P-{f:02d}-{i:02d}" for f in range(FILES) for i in range(PER_FILE)]
    for f in range(FILES):
        txs = [po(pos[f * PER_FILE + i], [("4", "9.99", "SKU-1"), ("2", "5", "SKU-2")], st=f"{i + 1:04d}") for i in range(PER_FILE)]
        (tmp_path / "inbox" / f"po-{f:02d}.edi").write_text(interchange(txs, icn=f"{f + 1:09d}", gcn=str(100 + f)))
    _run(cfg, "run", "--once", "--for", "240")

    by_cli, by_http = pos[:-BY_HTTP], pos[-BY_HTTP:]
    rows = ["order,carrier,tracking,service,lines"]
    for n, p in enumerate(by_cli):  # every other order ships one line in part
        rows.append(f"{p},UPSN,1Z9999{n:010d},GROUND,{'SKU-1=3' if n % 2 else ''}")
    rows.append("NOPE-1,UPSN,1Z0,GROUND,")
    (tmp_path / "ship.csv").write_text("\n".join(rows) + "\n")
    said = _run(cfg, "ship", "--file", str(tmp_path / "ship.csv"), "--by", "warehouse", rc=1)
    assert "NOPE-1: no order has an id or PO number 'NOPE-1'" in said and "140 shipment(s) recorded, 1 refused" in said

    monkeypatch.setenv("GW_SHIP_TOKEN", TOKEN)
    from fastapi import FastAPI

    from gateway.app import Gateway
    from gateway.cli.common import _config
    from gateway.intake.operator_api import mount_operator_api

    gcfg = _config(cfg)
    gw = Gateway(gcfg)
    app = FastAPI()
    assert gcfg.intake is not None and gcfg.intake.operator_api is not None
    mount_operator_api(app, gw, gcfg.intake.operator_api)
    try:
        assert asgi(app, "POST", f"/api/orders/{by_http[0]}/shipment", {"by": "x", "carrier": "UPSN"}, token=None)[0] == 401
        assert asgi(app, "POST", "/api/orders/NOPE-2/shipment", {"by": "x", "carrier": "UPSN"})[0] == 404
        for n, p in enumerate(by_http):
            status, body = asgi(app, "POST", f"/api/orders/{p}/shipment", {"by": "carrier-hook", "carrier": "FDEG", "tracking": [f"7946{n:08d}"], "lines": {"SKU-2": 2}})
            assert status == 200 and body["state"] == "shipped" and body["documents"][0].startswith("856 "), body
        status, body = asgi(app, "POST", f"/api/orders/{by_http[0]}/invoice", {"by": "erp", "number": "INV-H1", "tax": "1.5"})
        assert status == 200 and body["state"] == "invoiced" and body["documents"][0].startswith("810 "), body
        assert asgi(app, "POST", f"/api/orders/{by_http[1]}/invoice", {"by": "erp", "number": ""})[0] == 400
    finally:
        gw.close()

    (tmp_path / "inv.csv").write_text("order,number,tax\n" + "".join(f"{p},INV-{n:04d},0.{n % 10}\n" for n, p in enumerate(by_cli)))
    said = _run(cfg, "invoice", "--file", str(tmp_path / "inv.csv"))
    assert "140 invoice(s) recorded" in said

    # A stock report now (in process: the same command, without another interpreter start).
    from typer.testing import CliRunner

    from gateway.cli import app as cli

    engine = create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    with engine.begin() as c:
        now = dt.datetime.now(dt.UTC)
        c.execute(insert(t.stock), [{"sku": f"SKU-{k}", "warehouse": "W1", "on_hand": 100 * k, "reserved": 0, "source": "t", "updated_at": now} for k in (1, 2)])
    done = CliRunner().invoke(cli, ["send-stock-report", "acme", "--config", str(cfg)])
    assert done.exit_code == 0 and "queued 846 000000292 for acme (2 SKU(s))" in done.output, done.output

    # Changes to a shipped and an invoiced order wait for a person; the documents go out.
    changes = [po(p, [("9", "9.99", "SKU-1")], st=f"{i + 1:04d}", purpose="04") for i, p in enumerate((by_http[1], by_cli[0]))]
    (tmp_path / "inbox" / "changes.edi").write_text(interchange(changes, icn="000000999", gcn="999"))
    _run(cfg, "run", "--once", "--for", "240")

    files = sorted((tmp_path / "out-acme").iterdir())
    kinds = [f.name.split("-", 1)[0] for f in files]
    assert kinds.count("856") == len(pos) and kinds.count("810") == len(by_cli) + 1 and kinds.count("846") == 1
    isa13 = []
    for f in files:
        text = f.read_text()
        check_x12(text, f.name.split("-", 1)[0])  # pyx12 reads each back
        if not f.name.startswith("846"):  # an answer to an order: the order's separators and line ends
            assert text[104:107] == ">~\n", text[:110]
        isa13.append(int(text[90:99]))
    assert sorted(isa13) == list(range(1, len(files) + 1))  # consecutive, per partner, no gap
    shipped = {re.search(r"PRF\*([^*~]+)", f.read_text()).group(1) for f in files if f.name.startswith("856")}  # type: ignore[union-attr]
    assert shipped == set(pos)

    with engine.connect() as c:
        o = t.orders
        states = {(r.po_number, r.version): (r.state, r.reason) for r in c.execute(select(o.c.po_number, o.c.version, o.c.state, o.c.reason))}
        first = c.execute(select(o.c.id).where(o.c.po_number == by_cli[1], o.c.version == 1)).scalar_one()
        history = [e.detail for e in c.execute(select(t.events.c.detail).where(t.events.c.order_id == first, t.events.c.kind == "shipment"))]
    engine.dispose()
    assert sum(1 for (p, v), (s, _) in states.items() if v == 1 and s == "invoiced") == len(by_cli) + 1
    assert sum(1 for (p, v), (s, _) in states.items() if v == 1 and s == "shipped") == BY_HTTP - 1
    assert states[(by_http[1], 2)] == ("held", "ALREADY_SHIPPED") and states[(by_cli[0], 2)] == ("held", "ALREADY_SHIPPED")
    assert history == ["shipped by UPSN GROUND, tracking 1Z99990000000001: SKU-1 x 3 (recorded by warehouse)"]
