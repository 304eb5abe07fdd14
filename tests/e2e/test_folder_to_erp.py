"""End to end: a file dropped into the inbox reaches a real HTTP ERP on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from gateway.app import Gateway
from gateway.config import load_config
from tests.e2e.helpers import ROOT, gateway_cmd, run_cli, write_config
from tests.support.fake_erp import FakeERP, Scripted
from tests.support.x12gen import file_with_orders

pytestmark = pytest.mark.slow


@pytest.fixture
def erp():
    with FakeERP() as server:
        yield server


def drop(tmp_path, name: str, body: bytes) -> None:
    # Written under a hidden name, then renamed: how a careful partner (or SFTP server) drops.
    tmp = tmp_path / "inbox" / f".{name}.part"
    tmp.write_bytes(body)
    os.replace(tmp, tmp_path / "inbox" / name)


def pos(erp: FakeERP) -> list[str]:
    return sorted(o["body"]["po_number"] for o in erp.orders)


def test_dropped_file_reaches_the_erp_exactly_once(tmp_path, erp):
    gw = Gateway(load_config(write_config(tmp_path, erp.url)))
    try:
        drop(tmp_path, "po.edi", file_with_orders(["PO-1", "PO-2"]))
        gw.run_until_idle(20)
        assert pos(erp) == ["PO-1", "PO-2"]
        keys = {r.idempotency_key for r in erp.requests}
        assert len(keys) == 2 and None not in keys
        assert os.listdir(tmp_path / "inbox") == []
        assert len(os.listdir(tmp_path / "archive")) == 1
        # The partner sends the same file again: nothing reaches the ERP twice.
        drop(tmp_path, "po-again.edi", file_with_orders(["PO-1", "PO-2"]))
        gw.run_until_idle(20)
        assert pos(erp) == ["PO-1", "PO-2"]
        assert len(erp.requests) == 2
    finally:
        gw.close()


def test_erp_503_then_201_is_retried_with_the_same_key(tmp_path, erp):
    erp.script(Scripted(503, headers={"Retry-After": "0"}), 201)
    gw = Gateway(load_config(write_config(tmp_path, erp.url)))
    try:
        drop(tmp_path, "po.edi", file_with_orders(["PO-7"]))
        gw.run_until_idle(20)
    finally:
        gw.close()
    assert pos(erp) == ["PO-7"]
    assert [r.idempotency_key for r in erp.requests][0] == [r.idempotency_key for r in erp.requests][1]
    assert len(erp.requests) == 2
    show = run_cli("show", "PO-7", "--config", str(tmp_path / "gateway.yaml"))
    assert show.returncode == 0, show.stderr
    assert "retry_scheduled" in show.stdout and "HTTP 503" in show.stdout
    assert "dispatched" in show.stdout


def test_400_goes_to_dead_letters_and_replays_after_the_fix(tmp_path, erp):
    erp.script(Scripted(400, body={"error": "unknown customer ACME01"}))
    cfg = write_config(tmp_path, erp.url)
    gw = Gateway(load_config(cfg))
    try:
        drop(tmp_path, "po.edi", file_with_orders(["PO-9"]))
        gw.run_until_idle(20)
    finally:
        gw.close()
    assert erp.orders == []
    dead = run_cli("dead-letters", "--config", str(cfg))
    assert dead.returncode == 0, dead.stderr
    assert "PO-9" in dead.stdout and "400" in dead.stdout and "unknown customer" in dead.stdout
    orders = run_cli("orders", "--config", str(cfg), "--state", "dead")
    assert "PO-9" in orders.stdout
    # The customer is set up in the ERP now; replay.
    replay = run_cli("replay", "--all", "--config", str(cfg))
    assert replay.returncode == 0 and "1 delivery" in replay.stderr
    done = run_cli("run", "--once", "--for", "20", "--config", str(cfg))
    assert done.returncode == 0, done.stderr
    assert pos(erp) == ["PO-9"]
    assert "0 dead letter" in run_cli("dead-letters", "--config", str(cfg)).stdout


def test_gateway_run_stops_cleanly_on_sigterm(tmp_path, erp):
    cfg = write_config(tmp_path, erp.url)
    proc = subprocess.Popen(gateway_cmd("run", "--config", str(cfg)), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        drop(tmp_path, "po.edi", file_with_orders(["PO-11", "PO-12"]))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(erp.orders) < 2:
            time.sleep(0.1)
        assert pos(erp) == ["PO-11", "PO-12"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped" in err
    assert "Traceback" not in err


def test_translate_cli_prints_json_lines_and_names_bad_input(tmp_path):
    good = tmp_path / "good.edi"
    good.write_bytes(file_with_orders(["PO-1", "PO-2"]))
    res = run_cli("translate", str(good))
    assert res.returncode == 0, res.stderr
    import json

    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert [o["po_number"] for o in lines] == ["PO-1", "PO-2"]
    assert lines[0]["lines"][0]["quantity"] == "2" and lines[0]["lines"][0]["unit_price"] == "9.99"
    bad = tmp_path / "bad.edi"
    bad.write_bytes(b"\x00\x01garbage")
    res = run_cli("translate", str(bad))
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and str(bad) in res.stderr and "Traceback" not in res.stderr


def test_schema_describes_every_field():
    import json

    res = run_cli("schema")
    assert res.returncode == 0
    schema = json.loads(res.stdout)

    def walk(node):
        for name, prop in node.get("properties", {}).items():
            assert prop.get("description"), f"{name} has no description"

    walk(schema)
    for d in schema["$defs"].values():
        walk(d)
    assert schema["$defs"]["OrderLine"]["properties"]["quantity"]["type"] == "string"
    for field in ("po_number", "order_date", "purpose", "currency", "requested_delivery_date", "channel", "partner", "notes", "buyer", "seller", "ship_to", "bill_to", "lines", "source"):
        assert field in schema["properties"]


def test_config_check_reports_problems_and_ok(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("sources:\n  - {type: folder, name: a, path: x, pol_seconds: 1}\n")
    res = run_cli("config", "check", "--config", str(cfg))
    assert res.returncode == 2
    assert "did you mean 'poll_seconds'" in res.stderr and f"{cfg}:2" in res.stderr
    ok = run_cli("config", "check", "--config", str(ROOT / "config" / "gateway.yaml"))
    assert ok.returncode == 0 and "configuration OK" in ok.stdout


def test_cancel_of_a_delivered_order_reaches_the_erp_as_a_cancel(tmp_path, erp):
    from tests.support.x12gen import interchange, po

    base = erp.url.rsplit("/", 1)[0]
    extra = """\
"""
    cfg = write_config(tmp_path, erp.url, extra=extra)
    text = cfg.read_text().replace(
        "    reference: id\n",
        f"    reference: id\n    update_url: {base}/orders/{{reference}}\n    cancel_url: {base}/orders/{{reference}}\n    cancel_method: DELETE\n",
    )
    cfg.write_text(text)
    gw = Gateway(load_config(cfg))
    try:
        drop(tmp_path, "po.edi", interchange([po("PO-5", [("2", "9.99", "SKU-1")])], icn="000000001").encode())
        gw.run_until_idle(20)
        drop(tmp_path, "a-change.edi", interchange([po("PO-5", [("6", "9.99", "SKU-1")], purpose="04")], icn="000000002").encode())
        drop(tmp_path, "b-cancel.edi", interchange([po("PO-5", [("6", "9.99", "SKU-1")], purpose="01")], icn="000000003").encode())
        gw.run_until_idle(20)
    finally:
        gw.close()
    assert pos(erp) == ["PO-5"]  # one order at the ERP, never a second
    [created] = erp.orders
    assert [(c["action"], c["id"]) for c in erp.changes] == [("update", created["id"]), ("cancel", created["id"])]
    show = run_cli("show", "PO-5", "--config", str(cfg))
    assert show.returncode == 0, show.stderr
    assert "version 3" in show.stdout and "v1 " in show.stdout and "v2 " in show.stdout  # the latest, and the others
    assert "changed" in show.stdout and "quantity 2 -> 6" not in show.stdout  # v3's own change: a cancel
    listing = run_cli("orders", "--config", str(cfg))
    assert listing.stdout.count("PO-5") == 3 and listing.stdout.count("dispatched") == 3
