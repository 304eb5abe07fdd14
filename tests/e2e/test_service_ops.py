"""`gateway run` as an operator runs it: a subprocess, its log, signals, the HTTP intake.

Covers issue 14 #5 (web forms alone get a server), #8 (SIGHUP reloads; reprocess tells when
the running service has an older configuration), #15 (no scheduler warnings flooding the log)
and reliability rows F21 (SIGTERM mid-batch) and F23 (a bad configuration on reload).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

from tests.e2e.helpers import ROOT, gateway_cmd, run_cli, write_config
from tests.support.fake_erp import FakeERP, Scripted
from tests.support.x12gen import file_with_orders

pytestmark = pytest.mark.slow

EXAMPLES = ROOT / "gateway" / "examples"
ACME = "partners:\n  - name: acme\n    x12_ids: [\"ZZ:ACMERETAIL\"]\n"
NORTHWIND = "  - name: northwind\n    x12_ids: [\"01:123456789\"]\n"


@pytest.fixture
def erp() -> Iterator[FakeERP]:
    with FakeERP() as server:
        yield server


class Service:
    """`gateway run` in a subprocess whose log goes to a file the test reads."""

    def __init__(self, tmp: Path, cfg: Path, *args: str, env: dict[str, str] | None = None):
        self.log_path = tmp / "service.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            gateway_cmd("run", "--config", str(cfg), *args), cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, **(env or {})},
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def wait_log(self, pattern: str, *, count: int = 1, timeout: float = 30) -> None:
        wait_for(lambda: len(re.findall(pattern, self.log)) >= count, timeout, f"{pattern!r} in the log:\n{self.log}")

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()


def wait_for(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def drop(tmp: Path, name: str, body: bytes) -> None:
    part = tmp / "inbox" / f".{name}.part"
    part.write_bytes(body)
    os.replace(part, tmp / "inbox" / name)


def messages(tmp: Path) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(tmp / "gateway.db") as db:
        return db.execute("SELECT id, state, reason FROM messages ORDER BY received_at").fetchall()


def test_web_forms_alone_get_an_http_server(tmp_path, erp):
    """issue 14 #5: with only intake.forms (no shop store) `gateway run` serves the form."""
    port = free_port()
    cfg = write_config(tmp_path, erp.url, extra=f"intake:\n  port: {port}\n  forms:\n    - name: order\n      partner: web-shop\n")
    check = run_cli("config", "check", "--config", str(cfg))
    assert check.returncode == 0, check.stderr
    service = Service(tmp_path, cfg)
    try:
        service.wait_log(r"HTTP intake listening on http://127\.0\.0\.1:\d+")
        fields = {
            "customer[name]": "Jane Doe", "customer[email]": "jane@example.com", "po_number": "WEB-4711",
            "ship_to[address1]": "1 Main St", "ship_to[city]": "Springfield", "ship_to[postal_code]": "62701",
            "ship_to[country]": "US", "items[0][sku]": "SKU-1", "items[0][quantity]": "2", "items[0][price]": "9.99",
        }
        res = requests.post(
            f"http://127.0.0.1:{port}/intake/forms/order", data=urlencode(fields),
            headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10,
        )
        assert res.status_code == 201, res.text
        wait_for(lambda: erp.orders, 30, "the form's order at the ERP")
        assert [o["body"]["po_number"] for o in erp.orders] == ["WEB-4711"]
    finally:
        assert service.stop() == 0, service.log


def test_sighup_reloads_the_configuration_and_a_bad_file_keeps_the_old_one(tmp_path, erp):
    """issue 14 #8, reliability F23: SIGHUP reloads atomically; reprocess says when to reload."""
    cfg = write_config(tmp_path, erp.url, extra=ACME)
    service = Service(tmp_path, cfg)
    try:
        service.wait_log("gateway running")
        # A partner not configured yet: refused as UNKNOWN_PARTNER.
        drop(tmp_path, "nw.edi", (EXAMPLES / "northwind-po-5010.edi").read_bytes())
        wait_for(lambda: [m for m in messages(tmp_path) if m[1] == "quarantined"], 30, "the refused file")
        [(mid, _, reason)] = messages(tmp_path)
        assert reason == "ALL_REJECTED"  # its one document: UNKNOWN_PARTNER

        cfg.write_text(cfg.read_text() + NORTHWIND)
        early = run_cli("reprocess", mid, "--config", str(cfg))
        assert early.returncode == 1
        assert f"kill -HUP {service.proc.pid}" in early.stderr
        assert erp.orders == []

        service.proc.send_signal(signal.SIGHUP)
        service.wait_log("configuration reloaded")
        assert service.proc.poll() is None, service.log
        again = run_cli("reprocess", mid, "--config", str(cfg))
        assert again.returncode == 0, again.stderr
        wait_for(lambda: erp.orders, 30, "the new partner's order at the ERP")
        assert [o["body"]["po_number"] for o in erp.orders] == ["NW-2026-0042"]

        # A broken file: the reload is refused with its reason, the running configuration stays.
        good = cfg.read_text()
        cfg.write_text(good + "connectors: [\n")
        service.proc.send_signal(signal.SIGHUP)
        service.wait_log(r"configuration reload refused, the running configuration stays: .*not valid YAML")
        assert service.proc.poll() is None, service.log
        drop(tmp_path, "acme.edi", (EXAMPLES / "acme-po-4010.edi").read_bytes())
        wait_for(lambda: len(erp.orders) == 3, 30, "acme's two orders after the refused reload")
        # A file that is YAML but not a valid configuration is refused too.
        cfg.write_text(good.replace("poll_seconds: 0.2", "poll_seconds: -1", 1))
        service.proc.send_signal(signal.SIGHUP)
        service.wait_log(r"reload refused.*poll_seconds")
        assert service.proc.poll() is None
    finally:
        rc = service.stop()
    assert rc == 0, service.log
    assert service.log.count("configuration reloaded") == 1
    assert "Traceback" not in service.log


def test_a_reload_keeps_the_intake_listening_and_serves_a_new_shop(tmp_path, erp):
    """issue 14 #8: a shop added to intake.stores is served after SIGHUP, on the same port,
    and the intake answers all along (no refused connection while the jobs are swapped)."""
    from gateway.intake import sign_hmac_base64

    secret = "shpss_0123456789abcdef0123456789abcdef"
    port = free_port()
    intake = f"intake:\n  port: {port}\n  forms:\n    - name: order\n"
    cfg = write_config(tmp_path, erp.url, extra=intake)
    service = Service(tmp_path, cfg, env={"ACME_SHOP_SECRET": secret})
    url = f"http://127.0.0.1:{port}"
    body = b'{"id": 1, "line_items": []}'
    headers = {
        "Content-Type": "application/json", "X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": "w-1",
        "X-Shopify-Hmac-Sha256": sign_hmac_base64(body, secret.encode()),
    }
    answers: list[int | str] = []
    done = threading.Event()

    def probe() -> None:
        with requests.Session() as session:
            while not done.is_set():
                try:
                    answers.append(session.get(f"{url}/health", timeout=5).status_code)
                except requests.RequestException as exc:
                    answers.append(type(exc).__name__)
                time.sleep(0.02)

    try:
        service.wait_log("HTTP intake listening")
        assert requests.post(f"{url}/intake/shopify/acme", data=body, headers=headers, timeout=5).status_code == 404
        cfg.write_text(cfg.read_text() + '  stores:\n    - {name: acme, platform: shopify, secrets: ["${env:ACME_SHOP_SECRET}"]}\n')
        prober = threading.Thread(target=probe)
        prober.start()
        time.sleep(0.5)
        service.proc.send_signal(signal.SIGHUP)
        service.wait_log("configuration reloaded")
        time.sleep(0.5)
        done.set()
        prober.join(10)
        assert answers and set(answers) == {200}, answers
        res = requests.post(f"{url}/intake/shopify/acme", data=body, headers=headers, timeout=5)
        assert res.status_code == 200, res.text
    finally:
        done.set()
        rc = service.stop()
    assert rc == 0, service.log
    assert service.log.count("HTTP intake listening") == 1  # the same server all along


def test_busy_jobs_do_not_flood_the_log_with_skipped_runs(tmp_path, erp):
    """issue 14 #15: a slow ERP and a poll of a hundred files log no "maximum number of
    running instances reached" warnings; everything is still delivered."""
    erp.script(*[Scripted(201, delay=0.4) for _ in range(6)])
    cfg = write_config(tmp_path, erp.url)
    cfg.write_text(cfg.read_text().replace("poll_seconds: 0.2", "poll_seconds: 0.05"))
    for i in range(100):
        drop(tmp_path, f"po{i:03}.edi", file_with_orders([f"PO-{i:03}"], icn=f"{i + 1:09d}"))
    service = Service(tmp_path, cfg, "--for", "60")
    try:
        wait_for(lambda: len(erp.orders) == 100, 60, "100 orders at the ERP")
    finally:
        service.stop()
    assert "maximum number of running instances" not in service.log
    assert sorted(o["body"]["po_number"] for o in erp.orders) == [f"PO-{i:03}" for i in range(100)]


def test_sigterm_mid_batch_finishes_in_flight_work_and_leaves_nothing_half_done(tmp_path, erp):
    """reliability F21: SIGTERM while deliveries are in flight: claiming stops, the send in
    flight completes and is recorded, no claim is left; a restart delivers the rest once."""
    erp.script(*[Scripted(201, delay=0.5) for _ in range(40)])
    cfg = write_config(tmp_path, erp.url)
    drop(tmp_path, "batch.edi", file_with_orders([f"PO-{i:02}" for i in range(40)]))
    service = Service(tmp_path, cfg)
    try:
        wait_for(lambda: len(erp.requests) >= 2, 60, "deliveries in flight")
    finally:
        service.proc.send_signal(signal.SIGTERM)
        rc = service.stop()
    assert rc == 0, service.log
    with sqlite3.connect(tmp_path / "gateway.db") as db:
        states = dict(db.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall())
        sent = db.execute("SELECT count(*) FROM outbox WHERE state = 'sent'").fetchone()[0]
    assert "in_flight" not in states, states  # nothing claimed and left
    assert sent == len(erp.orders) < 40  # every order the ERP created is recorded as sent
    done = run_cli("run", "--once", "--config", str(cfg), timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(o["body"]["po_number"] for o in erp.orders) == [f"PO-{i:02}" for i in range(40)]
    assert len({r.idempotency_key for r in erp.requests}) == 40
