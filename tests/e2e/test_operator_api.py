"""The operators' HTTP API and the answers after a decision, end to end.

`gateway run --once` decides 160 X12 orders by the rules; then a real `gateway run` serves the
intake with the operator API on 127.0.0.1, and a person approves half of the held orders and
rejects the other half over HTTP. The running gateway's dispatcher sends each decided order's
855 exactly once: BAK02 AT after approval, RJ after rejection; every action is recorded with
who did it. Without the right bearer token nothing is answered but 401.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select

from gateway.store import tables as t
from tests.e2e.helpers import ROOT, gateway_cmd, run_cli
from tests.support import rulesgen as gen

pytestmark = pytest.mark.slow

TOKEN = "op-token-" + "x7Qk2" * 6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def count_855s(folder: Path) -> Counter[str]:
    """How many 855s each PO number got."""
    seen: Counter[str] = Counter()
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            for tx in f.read_text(errors="replace").split("ST*855*")[1:]:
                bak = next(s.strip().split("*") for s in tx.split("~") if s.strip().startswith("BAK*"))
                seen[bak[3]] += 1
    return seen


def test_operators_decide_hundreds_of_held_orders_over_http_and_partners_get_855s(tmp_path: Path):
    acks = tmp_path / "acks"
    cfg = gen.config(tmp_path, outbound=acks)
    port = free_port()
    with cfg.open("a") as f:
        f.write(f"intake:\n  host: 127.0.0.1\n  port: {port}\n  operator_api:\n    token_env: GW_OPERATOR_TOKEN\n")
    cases = gen.x12_mix(10)
    for c in cases:
        (tmp_path / "inbox" / c.file).write_bytes(c.body)
    assert len(cases) >= 150
    r = run_cli("run", "--once", "-c", str(cfg), timeout=600, env={"GW_OPERATOR_TOKEN": TOKEN})
    assert r.returncode == 0, r.stderr[-3000:]
    before = count_855s(acks)
    held = [c for c in cases if c.outcome == "hold"]
    assert len(held) == 90 and not any(c.po in before for c in held)  # no answer while they wait

    env = {**os.environ, "GW_OPERATOR_TOKEN": TOKEN}
    log = tmp_path / "run.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(gateway_cmd("run", "-c", str(cfg)), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)

        # no token, a wrong token, a token of another length: 401, nothing listed
        assert requests.get(f"{base}/api/exceptions", timeout=5).status_code == 401
        assert requests.get(f"{base}/api/exceptions", headers={"Authorization": f"Bearer {TOKEN[:-1]}Y"}, timeout=5).status_code == 401
        denied = requests.post(f"{base}/api/orders/abcdef12/approve", json={"by": "eve"}, headers={"Authorization": "Bearer x"}, timeout=5)
        assert denied.status_code == 401 and "Bearer" in denied.json()["error"]

        listed = requests.get(f"{base}/api/exceptions", params={"limit": 1000}, headers=auth, timeout=10)
        assert listed.status_code == 200, listed.text
        waiting = {o["po_number"]: o for o in listed.json()["orders"]}
        assert {c.po for c in held} <= set(waiting)
        assert all(waiting[c.po]["state"] == "held" and waiting[c.po]["reason"] == c.codes[0] for c in held)
        only = requests.get(f"{base}/api/exceptions", params={"reason": "UNKNOWN_SKU", "limit": 1000}, headers=auth, timeout=10).json()["orders"]
        assert only and all(o["reason"].startswith("UNKNOWN_SKU") for o in only)

        approve, reject = held[::2], held[1::2]

        def decide(i_case: tuple[int, gen.Case]) -> int:
            i, c = i_case
            oid = waiting[c.po]["id"]
            with requests.Session() as s:
                if c in approve:
                    res = s.post(f"{base}/api/orders/{oid[:12]}/approve", json={"by": f"ops-{i % 3}"}, headers=auth, timeout=30)
                else:
                    res = s.post(f"{base}/api/orders/{oid[:12]}/reject", json={"by": f"ops-{i % 3}", "reason": "not for us"}, headers=auth, timeout=30)
            return res.status_code

        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(decide, enumerate(held)))
        assert codes == [200] * len(held)

        # what the API refuses says why, as JSON
        first = waiting[approve[0].po]["id"]
        again = requests.post(f"{base}/api/orders/{first}/approve", json={"by": "ops-0"}, headers=auth, timeout=10)
        assert again.status_code == 409 and "not held" in again.json()["error"]
        nobody = requests.post(f"{base}/api/orders/{first}/approve", json={}, headers=auth, timeout=10)
        assert nobody.status_code == 400 and "by" in nobody.json()["error"]
        unknown = requests.post(f"{base}/api/orders/ffffffffffff/reject", json={"by": "ops-0", "reason": "x"}, headers=auth, timeout=10)
        assert unknown.status_code == 404 and "GET /api/exceptions" in unknown.json()["error"]
        shown = requests.get(f"{base}/api/orders/{first}", headers=auth, timeout=10).json()
        assert shown["order"]["state"] in ("validated", "dispatched")
        assert shown["decision"]["outcome"] == "accept" and shown["decision"]["decided_by"] == "ops-0"
        assert any("approved by ops-0" in (h["detail"] or "") for h in shown["history"])
        assert shown["findings"] and shown["findings"][0]["code"] == approve[0].codes[0]
        # a refused order corrected over HTTP, another released, a third given to a person
        refused = [c for c in cases if c.codes == ["UNKNOWN_SKU"]]
        fixed, released, taken = (waiting[c.po]["id"] for c in refused[:3])
        edit = requests.post(f"{base}/api/orders/{fixed}/edit", json={"by": "ana", "set": {"lines[2].sku": "W-1", "lines[2].unit_price": "10.00"}}, headers=auth, timeout=30)
        assert edit.status_code == 200, edit.text
        # the rules decide a correction too: the right item at its list price passes them
        assert edit.json()["state"] == "validated" and edit.json()["version"] == 2, edit.json()
        assert edit.json()["changes"] == ["lines[2].sku: NOSUCHSKU-XYZ -> W-1", "lines[2].unit_price: 3.00 -> 10.00"]
        rel = requests.post(f"{base}/api/orders/{released}/release", json={"by": "bo", "override": True}, headers=auth, timeout=30)
        assert rel.status_code == 200 and rel.json()["state"] == "validated", rel.text
        bad_path = requests.post(f"{base}/api/orders/{taken}/edit", json={"by": "ana", "set": {"partner": "x"}}, headers=auth, timeout=30)
        assert bad_path.status_code == 409 and "cannot be edited" in bad_path.json()["error"]
        took = requests.post(f"{base}/api/orders/{taken}/assign", json={"by": "lee", "to": "maria"}, headers=auth, timeout=30)
        assert took.status_code == 200 and took.json()["assignee"] == "maria", took.text
        detail = requests.get(f"{base}/api/orders/{taken}", headers=auth, timeout=10).json()
        assert detail["assignment"]["assignee"] == "maria" and detail["assignment"]["assigned_by"] == "lee"
        assert any(h["detail"] == "assigned to maria by lee" for h in detail["history"])
        history = requests.get(f"{base}/api/orders/{released}", headers=auth, timeout=10).json()["history"]
        assert any("released overriding the check by bo" in (h["detail"] or "") for h in history)

        spec = requests.get(f"{base}/openapi.json", timeout=5).json()
        assert {"/api/exceptions", "/api/orders/{order_id}/approve", "/api/orders/{order_id}/edit"} <= set(spec["paths"])

        # the running dispatcher answers every decided order once
        deadline = time.monotonic() + 120
        while not {c.po for c in held} <= set(count_855s(acks)) or count_855s(acks)[refused[1].po] < 2 or count_855s(acks)[refused[0].po] < 2:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"{len({c.po for c in held} - set(count_855s(acks)))} orders not answered"
            time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    answered = gen.read_855s(acks)
    assert {c.po: answered[c.po][0] for c in approve} == {c.po: "AT" for c in approve}
    assert {c.po: answered[c.po][0] for c in reject} == {c.po: "RJ" for c in reject}
    # the corrected and the released order: refused on arrival (RD), then accepted (AT)
    assert answered[refused[0].po][0] == answered[refused[1].po][0] == "AT"
    counts = count_855s(acks)
    assert counts[refused[0].po] == counts[refused[1].po] == 2 and counts[refused[2].po] == 1
    assert all(counts[c.po] == 1 for c in held), [c.po for c in held if counts[c.po] != 1]
    engine = create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    with engine.connect() as conn:
        states = dict(conn.execute(select(t.orders.c.po_number, t.orders.c.state)).all())
        by = Counter(conn.execute(select(t.rule_decisions.c.decided_by).where(t.rule_decisions.c.decided_by.is_not(None))).scalars())
    engine.dispose()
    assert all(states[c.po] in ("validated", "dispatched") for c in approve)
    assert all(states[c.po] == "quarantined" for c in reject)
    assert sum(by.values()) == 90 and set(by) == {"ops-0", "ops-1", "ops-2"}
    assert len(list((tmp_path / "outbox").glob("*.json"))) == sum(1 for c in cases if c.outcome == "accept") + len(approve) + 2
