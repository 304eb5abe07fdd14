"""Dead letters at production depth (issues 11 and 12), through the real CLI.

200 POs in one X12 file go through one `gateway run --once` process to a local ERP that
refuses two kinds of orders: 20 name an unknown SKU, 20 a discontinued one. A person then
works through the 40 dead letters with the CLI (in-process, to keep CI time down): filters
them, corrects the unknown SKU with `dead-letters edit` (a new version sent where it died),
discards 10 discontinued ones with a reason, and replays the other 10 by filter once the ERP
takes them. Every PO but the discarded ones reaches the ERP exactly once, the discarded never
do, and every order's history says who did what.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from gateway.cli import app
from gateway.store import tables as t
from tests.e2e.helpers import http_json, run_cli, write_config
from tests.support.x12gen import interchange, po

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


class _Sink(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.created: list[str] = []  # PO numbers the ERP took, repeats included
        self.refuse = {"BAD-SKU": "unknown SKU BAD-SKU", "OLD-SKU": "SKU OLD-SKU is discontinued"}


class _Handler(BaseHTTPRequestHandler):
    server: _Sink

    def log_message(self, *_: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        skus = {line.get("sku") for line in body.get("lines", [])}
        with self.server.lock:
            why = next((self.server.refuse[s] for s in sorted(skus, key=str) if s in self.server.refuse), None)
            if why is None:
                self.server.created.append(body["po_number"])
        data = json.dumps({"error": why} if why else {"id": f"ERP-{body['po_number']}"}).encode()
        self.send_response(422 if why else 201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def sink() -> Iterator[_Sink]:
    server = _Sink()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_dead_letters_are_filtered_edited_discarded_and_replayed_each_po_once(
    tmp_path: Path, sink: _Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{sink.server_address[1]}/orders"
    monkeypatch.setenv("GW_DL_ERP_KEY", "k3y-" + "Qw9" * 8)
    erp = http_json("erp", url) + "    secret_headers: {X-Api-Key: '${env:GW_DL_ERP_KEY}'}\n"
    cfg = write_config(tmp_path, connectors=erp, service=False)
    txs = []
    for n in range(200):
        sku = "BAD-SKU" if n < 20 else "OLD-SKU" if n < 40 else f"SKU-{n}"
        txs.append(po(f"PO-{n:03d}", [("2", "9.99", sku)], st=f"{n + 1:04d}"))
    (tmp_path / "inbox" / "big.edi").write_text(interchange(txs), encoding="ascii")
    res = run_cli("run", "--once", "--config", str(cfg), timeout=240)
    assert res.returncode == 0, res.stderr
    assert len(sink.created) == 160

    runner = CliRunner()

    def cli(*args: str, ok: bool = True) -> Any:
        result = runner.invoke(app, [*args, "--config", str(cfg)], catch_exceptions=not ok)
        assert (result.exit_code == 0) is ok, (args, result.output)
        return result

    def dead(*args: str) -> list[dict[str, Any]]:
        return [json.loads(x) for x in cli("dead-letters", *args, "--json").stdout.splitlines() if x.strip()]

    everything = dead()
    assert len(everything) == 40
    first = everything[0]
    assert first["connector"] == "erp" and first["po_number"] and first["attempts"] == 1
    assert any(a["kind"] == "dead" and "unknown SKU" in (a["detail"] or "") for a in first["attempt_log"])
    unknown = dead("--error", "unknown SKU")
    old = dead("--error", "discontinued")
    assert len(unknown) == 20 and len(old) == 20
    assert dead("--error", "%") == [] and len(dead("--connector", "erp")) == 40 and dead("--connector", "crm") == []
    assert dead("--partner", "NOBODY") == []  # (a matching partner: tests/unit/test_dead_letter_actions.py)
    assert dead("--until", "2000-01-01") == [] and len(dead("--since", "2000-01-01")) == 40
    assert [r["po_number"] for r in dead("--po", "PO-003")] == ["PO-003"]

    # What the ERP is sent for a dead order, exactly, before correcting it (nothing is sent).
    shown = cli("mapping", "render", "erp", "PO-003").stdout
    head, _, body = shown.partition("\n\n")
    assert head.splitlines()[0] == f"POST {url}" and "X-Api-Key: ********" in head and "Qw9" not in shown
    assert "\nIdempotency-Key: " in head
    assert json.loads(body)["po_number"] == "PO-003" and json.loads(body)["lines"][0]["sku"] == "BAD-SKU"
    cli("mapping", "render", "erpp", "PO-003", ok=False)

    # Correct the unknown SKU: a new version, queued to where the order died, gone from the list.
    for row in unknown:
        res = cli("dead-letters", "edit", str(row["outbox_id"]), "--set", "lines[1].sku=SKU-FIXED", "--by", "ana")
        assert "queued again" in res.stderr
    cli("dead-letters", "edit", str(unknown[0]["outbox_id"]), "--set", "lines[1].sku=X", "--by", "ana", ok=False)
    assert len(dead()) == 20

    # Discard half of the discontinued ones with a reason; the rest wait for the ERP.
    discarded = old[:10]
    cli("dead-letters", "discard", *(str(r["outbox_id"]) for r in discarded), "--by", "bo", ok=False)  # no reason
    cli("dead-letters", "discard", *(str(r["outbox_id"]) for r in discarded), "--reason", "customer cancelled by phone", "--by", "bo")
    assert len(dead()) == 10

    # Replay by filter: more than a handful asks for --yes; --dry-run lists and queues nothing.
    res = cli("replay", "--error", "discontinued", "--dry-run")
    assert len(res.stdout.splitlines()) == 10
    cli("replay", "--error", "discontinued", "--by", "cy", ok=False)
    del sink.refuse["OLD-SKU"]  # the ERP re-activated the SKU
    cli("replay", "--po", str(old[10]["po_number"]), "--by", "cy")
    cli("replay", "--error", "discontinued", "--by", "cy", "--yes")
    assert dead() == []
    cli("run", "--once")

    counts = Counter(sink.created)
    discarded_pos = {r["po_number"] for r in discarded}
    assert set(counts) == {f"PO-{n:03d}" for n in range(200)} - discarded_pos
    assert set(counts.values()) == {1}
    assert dead() == []

    engine = create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    with engine.connect() as conn:
        states = {r.po_number: r.state for r in conn.execute(select(t.orders.c.po_number, t.orders.c.state).where(t.orders.c.version == 1))}
        events = [(r.kind, r.detail or "") for r in conn.execute(select(t.events.c.kind, t.events.c.detail))]
    engine.dispose()
    assert all(states[p] == "discarded" for p in discarded_pos)
    assert all(states[str(r["po_number"])] == "superseded" for r in unknown)
    assert sum(k == "edited" and "edited by ana" in d for k, d in events) == 40  # the old and the new version's
    assert sum(k == "discarded" and "discarded by bo" in d and "customer cancelled by phone" in d for k, d in events) == 10
    assert sum(k == "discarded" and "replaced by edited version 2" in d and "ana" in d for k, d in events) == 20
    assert sum(k == "order_discarded" for k, _ in events) == 10
    assert sum(k == "replayed" and "queued again by cy" in d for k, d in events) == 10
