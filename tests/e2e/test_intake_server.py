"""The HTTP intake's real uvicorn server on 127.0.0.1 against hostile and unlucky conditions.

Covers issue 14 #10 (/docs without internet) and #20 (slow header senders; a locked store),
and reliability rows F5 (store locked: 503 quickly), F22 (one webhook three times at once)
and W1-W3 (forged, replayed and malformed deliveries) over real sockets.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from gateway.app import Gateway
from gateway.config import load_config
from gateway.intake import IntakeServer
from gateway.store import tables as t
from tests.e2e.helpers import write_config
from tests.e2e.test_webhook_to_erp import deliver, intake_config, shopify_order

pytestmark = pytest.mark.slow


@pytest.fixture
def gw(tmp_path) -> Iterator[Gateway]:
    gateway = Gateway(load_config(write_config(tmp_path, "http://127.0.0.1:9/orders")))
    yield gateway
    gateway.close()


def stored(gw: Gateway) -> int:
    with gw.store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.messages)).scalar_one())


def order_body(n: int = 1042) -> bytes:
    return json.dumps({**shopify_order(), "id": 5_123_456_789_000 + n, "name": f"#{n}", "order_number": n}).encode()


def test_docs_load_their_assets_from_the_gateway_not_a_cdn(gw):
    """issue 14 #10: /docs references only local URLs, and each of them is served."""
    with IntakeServer(gw, intake_config()) as server:
        page = requests.get(f"{server.url}/docs", timeout=5)
        assert page.status_code == 200
        urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page.text)
        urls += re.findall(r"""url:\s*['"]([^'"]+)['"]""", page.text)  # the OpenAPI document
        assert urls, page.text
        assert not [u for u in urls if "//" in u], f"external URLs in /docs: {urls}"
        kinds = {}
        for url in urls:
            res = requests.get(f"{server.url}{url}", timeout=5)
            assert res.status_code == 200, url
            kinds[url.rsplit(".", 1)[-1]] = res.headers["content-type"]
        assert "javascript" in kinds["js"] and "css" in kinds["css"]
        assert requests.get(f"{server.url}/openapi.json", timeout=5).json()["paths"]


class _SlowHeaders:
    """`count` connections that send a request line, then one header line every `every` s."""

    def __init__(self, port: int, count: int, every: float = 0.5):
        self.socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]
        for sock in self.socks:
            sock.sendall(b"POST /intake/shopify/acme HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        self.closed_by_server = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, args=(every,), daemon=True)
        self._thread.start()

    def _trickle(self, every: float) -> None:
        n = 0
        while not self._stop.wait(every):
            n += 1
            for sock in list(self.socks):
                try:
                    sock.sendall(f"X-Slow-{n}: {n}\r\n".encode())
                except OSError:
                    self.socks.remove(sock)
                    sock.close()
                    self.closed_by_server += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in self.socks:
            sock.close()


def test_slow_header_senders_do_not_starve_signed_webhooks(gw):
    """issue 14 #20: 200 connections trickling header lines, then signed webhooks: every
    webhook is answered 200 (not 503), and the slow connections are closed in time."""
    config = intake_config(header_timeout_seconds=3)
    with IntakeServer(gw, config) as server:
        slow = _SlowHeaders(server.port, 200)
        try:
            time.sleep(1.0)  # they are all open and trickling
            with requests.Session() as session:
                answers = [deliver(session, server.url, order_body(n), f"wh-{n}").status_code for n in range(10)]
            assert answers == [200] * 10
            assert stored(gw) == 10
            deadline = time.monotonic() + 30  # generous: the head timeout is 3 s
            while slow.closed_by_server < 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert slow.closed_by_server == 200
        finally:
            slow.close()


def test_more_slow_connections_than_the_limit_still_let_a_prompt_request_in(gw):
    """issue 14 #20: with every connection slot held by a slow header sender, a new prompt
    request takes the place of the one that waited longest and is answered."""
    with IntakeServer(gw, intake_config(max_connections=50)) as server:
        slow = _SlowHeaders(server.port, 60)
        try:
            time.sleep(0.5)
            with requests.Session() as session:
                assert deliver(session, server.url, order_body(), "wh-1").status_code == 200
            assert requests.get(f"{server.url}/health", timeout=5).status_code == 200
        finally:
            slow.close()


def test_a_locked_store_answers_503_with_retry_after_within_shopifys_budget(tmp_path, gw):
    """issue 14 #20, reliability F5: another process holds the SQLite write lock (BEGIN
    IMMEDIATE): the webhook gets 503 + Retry-After well before Shopify's 5 s, nothing is
    stored, and the shop's retry after the lock is gone is stored."""
    locker = subprocess.Popen(
        [
            sys.executable, "-c",
            "import sqlite3, sys, time\n"
            "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "db.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n",
            str(tmp_path / "gateway.db"),
        ],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        with IntakeServer(gw, intake_config()) as server, requests.Session() as session:
            started = time.monotonic()
            res = deliver(session, server.url, order_body(), "wh-locked")
            took = time.monotonic() - started
            assert res.status_code == 503, res.text
            assert int(res.headers["Retry-After"]) > 0
            assert took < 5, f"answered after {took:.1f} s"
            assert locker.stdin is not None
            locker.stdin.write("\n")
            locker.stdin.flush()
            locker.wait(10)
            assert deliver(session, server.url, order_body(), "wh-locked").status_code == 200
        assert stored(gw) == 1
    finally:
        locker.kill()
        locker.communicate()  # reaps it and closes its pipes


def test_one_webhook_three_times_at_once_is_one_order(tmp_path):
    """reliability F22: the same delivery (body and id) from three threads at once over real
    sockets: all three get 2xx, one message is stored, one order reaches the ERP."""
    from tests.support.fake_erp import FakeERP

    with FakeERP() as erp:
        gw = Gateway(load_config(write_config(tmp_path, erp.url)))
        try:
            with IntakeServer(gw, intake_config()) as server:
                body = order_body(7)
                barrier = threading.Barrier(3)

                def post(_: int) -> int:
                    with requests.Session() as session:
                        barrier.wait(5)
                        return deliver(session, server.url, body, "same-delivery-id").status_code

                with ThreadPoolExecutor(3) as pool:
                    assert sorted(pool.map(post, range(3))) == [200, 200, 200]
            assert stored(gw) == 1
            gw.run_until_idle(20)
            assert len(erp.orders) == 1
        finally:
            gw.close()


def test_forged_replayed_and_malformed_deliveries_over_real_sockets(gw):
    """reliability W1 (bad HMAC: 401, nothing stored), W2 (a replay with the same or a fresh
    id: 200 no-op) and W3 (over 1 MB: 413, nested 10^5 deep: 400, wrong Content-Type: 415,
    a slow POST body: 408)."""
    with IntakeServer(gw, intake_config(body_timeout_seconds=1)) as server, requests.Session() as s:
        body = order_body()
        # W1: signed over other bytes, a truncated signature, none at all.
        assert deliver(s, server.url, body, "w1", signed=body + b" ").status_code == 401
        res = s.post(f"{server.url}/intake/shopify/acme", data=body, timeout=5, headers={
            "Content-Type": "application/json", "X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": "abc"})
        assert res.status_code == 401
        assert stored(gw) == 0
        # W2: the delivery, then the same again, then a fresh id: one message.
        first = deliver(s, server.url, body, "w2")
        assert first.status_code == 200 and first.json()["duplicate"] is False
        assert deliver(s, server.url, body, "w2").json()["duplicate"] is True
        assert deliver(s, server.url, body, "w2-fresh").json()["duplicate"] is True
        assert stored(gw) == 1
        # W3: too big, too deep, not JSON.
        assert deliver(s, server.url, b'{"a": "' + b"x" * 1_000_001 + b'"}', "w3-big").status_code == 413
        assert deliver(s, server.url, b"[" * 100_000 + b"]" * 100_000, "w3-deep").status_code == 400
        res = s.post(f"{server.url}/intake/shopify/acme", data=body, timeout=5, headers={"Content-Type": "text/plain"})
        assert res.status_code == 415
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(
                b"POST /intake/shopify/acme HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{"
            )
            assert sock.recv(200).startswith(b"HTTP/1.1 408")
        assert stored(gw) == 1
