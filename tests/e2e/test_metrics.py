"""`/health` and `/metrics` of a running `gateway run` (issue 12).

An `intake:` section alone starts the HTTP server (it used to need a shop store or a form).
300 files go through the service to a fake ERP that refuses some orders for good; a
Prometheus scrape then counts every message, order, delivery and dead letter as the store has
them, and says how long the oldest due delivery has waited.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from tests.e2e.helpers import write_config
from tests.e2e.test_service_ops import Service, drop, free_port, wait_for
from tests.support.fake_erp import FakeERP, Scripted
from tests.support.x12gen import interchange, po

pytestmark = pytest.mark.slow


def samples(text: str) -> dict[str, float]:
    """name{labels} -> value of every sample line."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def test_metrics_count_what_the_store_holds(tmp_path: Path) -> None:
    port = free_port()
    with FakeERP() as erp:
        for _ in range(10):
            erp.script(Scripted(400, body={"error": "unknown customer"}))
        cfg = write_config(tmp_path, erp.url, retry="{max_attempts: 2, base_seconds: 0.05, cap_seconds: 0.1}", extra=f"intake:\n  port: {port}\n")
        service = Service(tmp_path, cfg)
        try:
            service.wait_log(r"HTTP intake listening on http://127\.0\.0\.1:\d+")
            base = f"http://127.0.0.1:{port}"
            assert requests.get(f"{base}/health", timeout=10).json() == {"status": "ok"}
            for n in range(300):
                lines = [("0", "1.00", "A")] if n % 50 == 0 else [("2", "9.99", f"SKU-{n}")]
                drop(tmp_path, f"po{n:03d}.edi", interchange([po(f"PO-{n:03d}", lines)], icn=f"{n + 1:09d}").encode())

            def settled() -> bool:
                got = samples(requests.get(f"{base}/metrics", timeout=10).text)
                return got.get('gateway_orders{state="dispatched"}', 0) + got.get('gateway_orders{state="dead"}', 0) == 294

            wait_for(settled, 180, "every order dispatched or dead")
            res = requests.get(f"{base}/metrics", timeout=10)
            assert res.status_code == 200 and res.headers["content-type"].startswith("text/plain; version=0.0.4")
            got = samples(res.text)
            assert got['gateway_messages{state="parsed"}'] == 294 and got['gateway_messages{state="quarantined"}'] == 6
            assert got['gateway_orders{state="dispatched"}'] == 284 and got['gateway_orders{state="dead"}'] == 10
            assert got['gateway_orders{state="quarantined"}'] == 6
            assert got['gateway_outbox{kind="order",connector="erp",state="sent"}'] == 284
            assert got['gateway_outbox{kind="order",connector="erp",state="dead"}'] == 10
            assert got['gateway_exceptions{state="quarantined",reason="VALIDATION"}'] == 6
            assert got["gateway_outbox_oldest_due_seconds"] == 0 and got["gateway_up"] == 1
            assert len(erp.orders) == 284
            # every family is declared once, with its type
            assert len(re.findall(r"^# TYPE gateway_orders gauge$", res.text, re.M)) == 1
        finally:
            assert service.stop() == 0, service.log
