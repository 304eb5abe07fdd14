"""Issue 11, shipments by webhook, over real HTTP: 240 purchase orders of two partners through
the real CLI (in process) to ShipStation and EasyPost (behind `responses`,
tests/support/shipping_apis.py), then the real intake server on 127.0.0.1 takes what the
services post:

    a store locked by another process      503 + Retry-After within 5 s, nothing recorded
    ShipStation SHIP_NOTIFY (?token=)      half the orders shipped there, notified in batches of 30
                                           (the resource_url paged by 25, fetched with the API's
                                           credentials), one batch posted twice, one with a wrong token
    EasyPost tracker events (signed)       the other half: in_transit, then out_for_delivery and
                                           delivered of the same parcel, some posted twice, forged
                                           ones (wrong secret) for orders that never shipped, and
                                           for shipped orders with another tracking number
    an event of a label we never bought    200, counted unknown; nothing recorded

Then `gateway orders --json`, `gateway show --json` and `gateway documents --json` show each
order shipped once with its own tracking number, the forged ones still dispatched, and one 856
queued per shipped order of the partner that wants ship notices (none for the other); and
`gateway config check` names a webhook secret's variable that is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from gateway.app import Gateway
from gateway.cli import app
from gateway.config import load_config
from gateway.intake import IntakeServer
from gateway.store import tables as t
from gateway.store.outbox import idempotency_key
from tests.e2e.helpers import ROOT, gateway_cmd, shipping_connector
from tests.support.shipping_apis import (
    EASYPOST_URL,
    SHIPSTATION_URL,
    FakeEasyPost,
    FakeShipStation,
    easypost_event,
    easypost_signature,
)
from tests.support.x12gen import interchange, po

pytestmark = pytest.mark.slow

PER_PARTNER = 120
EP_SECRET = "ep-webhook-secret-" + "k3Y9" * 6
SS_TOKEN = "ss-webhook-token-" + "Qw7z" * 6
ENV = {"SS_KEY": "ss-key", "SS_SECRET": "ss-secret", "EP_KEY": "EZTK-e2e", "EP_HOOK": EP_SECRET, "SS_HOOK": SS_TOKEN}
QUICK = "{max_attempts: 20, base_seconds: 0.01, cap_seconds: 0.05}"


def cli(*args: str) -> str:
    done = CliRunner().invoke(app, list(args), env=ENV, terminal_width=300)
    assert done.exit_code == 0, done.output
    return done.output


def config(tmp: Path) -> Path:
    shipping = shipping_connector("shipstation", "shipstation", SHIPSTATION_URL, webhook_secret_env="SS_HOOK", retry=QUICK) + shipping_connector(
        "easypost", "labels", EASYPOST_URL, default_weight_oz="12", default_carrier="UPS", default_service="Ground", webhook_secret_env="EP_HOOK", retry=QUICK
    )
    cfg = tmp / "gateway.yaml"
    cfg.write_text(
        f"""\
store: {{url: "sqlite:///{tmp / 'gateway.db'}"}}
connectors:
{shipping}partners:
  - name: acme
    x12_ids: ["ZZ:ACMERETAIL"]
    acks: {{outbound: {tmp / 'out-acme'}, functional: false, ship_notice: true}}
  - name: bolt
    x12_ids: ["ZZ:BOLTRETAIL"]
    acks: {{functional: false}}
intake:
  host: 127.0.0.1
  port: 0
"""
    )
    return cfg


def test_shipments_by_webhook_from_shipstation_and_easypost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    cfg = config(tmp_path)
    pos = {"acme": [f"A{i:04d}" for i in range(PER_PARTNER)], "bolt": [f"B{i:04d}" for i in range(PER_PARTNER)]}
    for partner, sender in (("acme", "ACMERETAIL"), ("bolt", "BOLTRETAIL")):
        edi = tmp_path / f"{partner}.edi"
        edi.write_text(interchange([po(n, [("2", "9.99", "SKU-1")], st=f"{i + 1:04d}") for i, n in enumerate(pos[partner])], sender=sender))
        cli("ingest", str(edi), "-c", str(cfg))
    everything = pos["acme"] + pos["bolt"]
    # Even positions ship through ShipStation, odd ones through EasyPost; every tenth EasyPost
    # order only ever gets forged events (it never shipped).
    by_ss = everything[0::2]
    by_ep = everything[1::2]
    forged_only = set(by_ep[::10])

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        ss, ep = FakeShipStation(rsps), FakeEasyPost(rsps)
        cli("run", "--once", "--for", "120", "-c", str(cfg))
        assert len(ss.orders) == len(everything) == len(ep.shipments)
        ss.page_size = 25
        order_ids = {o["po_number"]: o["id"] for o in map(json.loads, cli("orders", "--json", "-n", "1000", "-c", str(cfg)).splitlines())}

        gw = Gateway(load_config(cfg))
        assert gw.config.intake is not None
        server = IntakeServer(gw, gw.config.intake).start()
        rsps.add_passthru(server.url)  # our own requests reach the intake; the connectors' go to the fakes
        try:
            _locked_store_answers_503(tmp_path, server.url, ep, idempotency_key(order_ids[by_ep[1]], "labels"))
            answers = _post_everything(server.url, ss, ep, order_ids, by_ss, by_ep, forged_only)
        finally:
            server.stop()
            gw.close()

    # What the services were answered.
    statuses = Counter(status for status, _ in answers["ss"] + answers["ep"])
    assert statuses[401] == answers["forged"] > 0
    assert all(status in (200, 401) for status, _ in answers["ss"] + answers["ep"]), statuses
    totals: Counter[str] = Counter()
    for status, body in answers["ss"] + answers["ep"]:
        if status == 200:
            totals.update({k: v for k, v in body.items() if k != "events"})
    assert totals["recorded"] == len(by_ss) + len(by_ep) - len(forged_only)
    assert totals["unknown"] == 1 and totals["refused"] == 0 and totals["repeats"] > 0

    # What a person sees: each order shipped once, with its own tracking number.
    listed = [json.loads(line) for line in cli("orders", "--json", "-n", "1000", "-c", str(cfg)).splitlines()]
    states = {o["po_number"]: o["state"] for o in listed}
    assert {p for p, s in states.items() if s == "dispatched"} == forged_only
    assert {p for p, s in states.items() if s == "shipped"} == set(everything) - forged_only
    db = create_engine(load_config(cfg).store.url)
    with db.connect() as conn:
        rows = conn.execute(select(t.orders.c.po_number, t.shipments.c.tracking).join(t.shipments, t.shipments.c.order_id == t.orders.c.id)).all()
    db.dispose()
    tracking = Counter(p for p, _ in rows)
    assert set(tracking.values()) == {1}, [p for p, n in tracking.items() if n > 1]
    assert dict(rows) == answers["expected"]
    for po_number in (by_ss[0], by_ep[1], sorted(forged_only)[0]):
        shown = json.loads(cli("show", po_number, "--json", "-c", str(cfg)))
        details = " ".join(str(e.get("detail")) for e in shown["history"])
        if po_number in forged_only:
            assert shown["state"] == "dispatched" and "shipped by" not in details
        else:
            assert shown["state"] == "shipped" and answers["expected"][po_number] in details
            assert ("recorded by shipstation" if po_number in by_ss else "recorded by labels") in details

    # One 856 per shipped order of acme, which wants ship notices; none for bolt.
    docs = [json.loads(line) for line in cli("documents", "--json", "-c", str(cfg)).splitlines()]
    ids = {o["id"]: o["po_number"] for o in listed}
    notices = Counter(ids[d["order_id"]] for d in docs if d["kind"] == "856")
    assert set(notices.values()) == {1}
    assert set(notices) == {p for p in pos["acme"] if p not in forged_only}
    assert not [d for d in docs if d["partner"] == "bolt"]

    # `gateway config check` says when a webhook secret's variable is missing.
    assert "configuration OK" in cli("config", "check", "-c", str(cfg))
    env = {k: v for k, v in os.environ.items() if k != "SS_HOOK"}
    done = subprocess.run(gateway_cmd("config", "check", "-c", str(cfg)), capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
    assert done.returncode != 0 and "connector shipstation: webhook_secret_env: environment variable SS_HOOK is not set" in done.stderr, done.stderr


def _locked_store_answers_503(tmp: Path, url: str, ep: FakeEasyPost, reference: str) -> None:
    """Another process holds SQLite's write lock: a signed event is answered 503 with
    Retry-After within EasyPost's patience, and records nothing (the final counts show it)."""
    label = next(s for s in ep.shipments.values() if s["reference"] == reference)
    body = easypost_event(label["tracking_code"], label["id"], n=77_777)
    locker = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys\ndb = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
         "db.execute('BEGIN IMMEDIATE')\nprint('locked', flush=True)\nsys.stdin.readline()\n", str(tmp / "gateway.db")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        started = time.monotonic()
        res = requests.post(f"{url}/intake/shipments/labels", data=body, headers={"X-Hmac-Signature": easypost_signature(body, EP_SECRET)}, timeout=30)
        assert res.status_code == 503 and int(res.headers["Retry-After"]) > 0 and res.json()["error"] == "store unavailable, retry later", res.text
        assert time.monotonic() - started < 5
    finally:
        locker.kill()
        locker.communicate()


def _post_everything(
    url: str, ss: FakeShipStation, ep: FakeEasyPost, order_ids: dict[str, str], by_ss: list[str], by_ep: list[str], forged_only: set[str]
) -> dict[str, Any]:
    """Ship the orders in the fakes and post what the services would, 8 at a time."""
    expected: dict[str, str] = {}
    ss_ids = {o["orderNumber"]: o["orderId"] for o in ss.orders.values()}
    ss_bodies: list[tuple[bytes, str]] = []
    batch: list[dict[str, Any]] = []
    for n, po_number in enumerate(by_ss):
        expected[po_number] = f"1ZSS{n:06d}"
        batch.append(ss.ship(ss_ids[po_number], expected[po_number]))
        if len(batch) == 30 or n == len(by_ss) - 1:
            ss_bodies.append((ss.notify(batch), SS_TOKEN))
            batch = []
    ss_bodies.append(ss_bodies[0])  # ShipStation notifies twice
    ss_bodies.append((ss_bodies[1][0], SS_TOKEN[:-1] + "x"))  # a guessed token
    forged = 1

    # EasyPost holds each label under the delivery's idempotency key (its reference); the
    # gateway's receipt of it, and the tracker, under the shipment id.
    label_of = {s["reference"]: s for s in ep.shipments.values()}
    ep_bodies: list[tuple[bytes, str]] = []
    for n, po_number in enumerate(by_ep):
        shipment = label_of[idempotency_key(order_ids[po_number], "labels")]
        if po_number in forged_only:
            body = easypost_event(f"1ZFORGED{n:04d}", shipment["id"], n=10_000 + n)
            ep_bodies.append((body, easypost_signature(body, "not-the-" + EP_SECRET)))
            forged += 1
            continue
        expected[po_number] = shipment["tracking_code"]
        for k, status in enumerate(("in_transit", "out_for_delivery", "delivered")[: 1 + n % 3]):
            body = easypost_event(shipment["tracking_code"], shipment["id"], status, n=n * 10 + k)
            ep_bodies.append((body, easypost_signature(body, EP_SECRET)))
        if n % 7 == 0:
            ep_bodies.append(ep_bodies[-1])  # the same event delivered again
        if n % 11 == 0:  # a forged event for a shipped order, with another parcel
            body = easypost_event(f"1ZEVIL{n:04d}", shipment["id"], n=20_000 + n)
            ep_bodies.append((body, easypost_signature(body, EP_SECRET[:-1])))
            forged += 1
    unknown = easypost_event("1ZNOBODY", "shp_99999999", n=99_999)
    ep_bodies.append((unknown, easypost_signature(unknown, EP_SECRET)))

    def post_ss(item: tuple[bytes, str]) -> tuple[int, dict[str, Any]]:
        res = requests.post(f"{url}/intake/shipments/shipstation", params={"token": item[1]}, data=item[0],
                            headers={"Content-Type": "application/json"}, timeout=30)
        return res.status_code, res.json()

    def post_ep(item: tuple[bytes, str]) -> tuple[int, dict[str, Any]]:
        res = requests.post(f"{url}/intake/shipments/labels", data=item[0], timeout=30,
                            headers={"Content-Type": "application/json", "X-Hmac-Signature": item[1], "User-Agent": "EasyPost WebHook Agent 1.0"})
        return res.status_code, res.json()

    with ThreadPoolExecutor(8) as pool:
        ss_answers = list(pool.map(post_ss, ss_bodies))
        ep_answers = list(pool.map(post_ep, ep_bodies))
    assert len(ep_bodies) > 200
    return {"ss": ss_answers, "ep": ep_answers, "forged": forged, "expected": expected}
