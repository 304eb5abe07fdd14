"""HttpJsonConnector over real loopback sockets: the total deadline (issue 14 #19, reliability
F12), transport faults (F11), TLS with a `trustme` CA, the pinned SSRF guard (issue 14 #22,
reliability S2) and proxy settings read once (issue 14, per-call cost)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme

from connectors.targets.http_json import transport
from connectors.targets.http_json.config import HttpJsonConfig
from connectors.targets.http_json.connector import HttpJsonConnector, UnsafeTarget
from gateway.connector import Delivery
from gateway.errors import PermanentError, TransientError
from gateway.store.outbox import idempotency_key
from tests.support.fake_erp import FakeERP
from tests.support.tcpfault import TcpFault
from tests.support.tls_server import TlsServer

PUBLIC_IP = "93.184.216.34"
ORDER = {"po_number": "PO-NET-1", "lines": [{"line_number": "1", "sku": "WID-1", "quantity": "10"}]}


def delivery(attempt: int = 1, order_id: str = "o-1") -> Delivery:
    return Delivery(outbox_id=1, order_id=order_id, idempotency_key=idempotency_key(order_id, "erp"),
                    attempt=attempt, order=ORDER)


def connector(url: str, *, connect: float = 1, read: float = 1, **overrides: Any) -> HttpJsonConnector:
    resolver = overrides.pop("resolver", None)
    cfg = HttpJsonConfig.model_validate(
        {"name": "erp", "url": url, "timeout": {"connect": connect, "read": read}, "reference": "id", **overrides}
    )
    return HttpJsonConnector(cfg, resolver=resolver) if resolver else HttpJsonConnector(cfg)


@pytest.fixture
def erp() -> Iterator[FakeERP]:
    with FakeERP() as server:
        yield server


@pytest.fixture
def proxy(erp: FakeERP) -> Iterator[TcpFault]:
    with TcpFault(("127.0.0.1", erp.port)) as p:
        yield p


# -- the total deadline ------------------------------------------------------------------------


def test_a_trickling_erp_cannot_hold_a_worker(erp: FakeERP, proxy: TcpFault) -> None:
    """issue 14 #19, reliability F12: an answer trickling 4 bytes a second (each read well inside
    the 1 s read timeout) ends at the total deadline (connect + read = 2 s), not after the ~45 s
    the whole answer takes; the order was created, so the retry carries the same key."""
    proxy.bandwidth_bps = 4
    conn = connector(proxy.url("/orders"), allow_private_targets=True)
    started = time.monotonic()
    with pytest.raises(TransientError, match="total deadline of 2 s") as info:
        conn.send(delivery())
    elapsed = time.monotonic() - started
    assert 1.9 <= elapsed < 4, elapsed
    assert "same Idempotency-Key" in str(info.value)
    assert len(erp.orders) == 1  # the ERP committed before the answer was cut: ambiguous
    proxy.bandwidth_bps = None
    receipt = conn.send(delivery(attempt=2))
    assert receipt.status == 201 and receipt.reference == erp.orders[0]["id"]
    assert len(erp.orders) == 1  # the retry made no second order
    conn.close()


def test_a_trickle_inside_the_headers_is_cut_too(erp: FakeERP, proxy: TcpFault) -> None:
    """reliability F12 (slowloris answer): latency on every forwarded chunk plus a 1 byte/s answer."""
    proxy.set(bandwidth_bps=2, latency=0.2)
    conn = connector(proxy.url("/orders"), connect=0.5, read=1, allow_private_targets=True)
    started = time.monotonic()
    with pytest.raises(TransientError, match="total deadline"):
        conn.send(delivery())
    assert time.monotonic() - started < 3
    conn.close()


def test_a_blackhole_ends_at_the_read_timeout() -> None:
    """reliability F12: a server that accepts and never answers."""
    with TcpFault(None) as hole:
        hole.blackhole = True
        conn = connector(hole.url("/orders"), read=0.5, allow_private_targets=True)
        started = time.monotonic()
        with pytest.raises(TransientError, match="no answer|total deadline"):
            conn.send(delivery())
        assert time.monotonic() - started < 2
        conn.close()


def test_the_watchdog_leaves_finished_calls_alone(erp: FakeERP) -> None:
    """A kept-alive connection whose call ended is not shut down when that call's deadline passes."""
    conn = connector(erp.url, connect=0.2, read=0.2, allow_private_targets=True)
    conn.send(delivery(order_id="o-1"))
    time.sleep(0.6)  # past the first call's deadline
    conn.send(delivery(order_id="o-2"))  # the same kept-alive connection, still open
    assert len(erp.orders) == 2
    conn.close()


# -- transport faults --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [{"close_after_accept": True}, {"reset_after_bytes": 20}])
def test_a_dropped_or_reset_connection_is_transient(erp: FakeERP, proxy: TcpFault, mode: dict[str, Any]) -> None:
    """reliability F11: connection closed at accept / reset in the middle of the answer."""
    proxy.set(**mode)
    conn = connector(proxy.url("/orders"), allow_private_targets=True)
    with pytest.raises(TransientError, match="failed"):
        conn.send(delivery())
    proxy.set(close_after_accept=False, reset_after_bytes=None)
    conn.send(delivery(attempt=2))
    assert len(erp.orders) == 1
    conn.close()


def test_connection_refused_is_transient() -> None:
    """reliability F11: nothing listens on the port."""
    with TcpFault(None) as gone:
        port = gone.port
    conn = connector(f"http://127.0.0.1:{port}/orders", allow_private_targets=True)
    with pytest.raises(TransientError, match="Connection refused"):
        conn.send(delivery())


# -- TLS ---------------------------------------------------------------------------------------


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def test_a_certificate_the_gateway_does_not_trust_is_permanent(ca: trustme.CA) -> None:
    """reliability F11: a TLS verification failure is a configuration error, not retried."""
    with TlsServer(ca, "localhost") as server:
        conn = connector(f"https://localhost:{server.port}/orders", allow_private_targets=True)
        with pytest.raises(PermanentError, match="TLS failure.*configuration problem") as info:
            conn.send(delivery())
        assert not isinstance(info.value, TransientError)
        assert server.seen == []


# -- the SSRF guard pins the address it checked --------------------------------------------------


@pytest.fixture
def redirect_connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every address the connector connects to, each redirected to 127.0.0.1 (same port)."""
    seen: list[tuple[str, int]] = []
    real = transport._connection.create_connection

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        seen.append(address)
        return real(("127.0.0.1", address[1]), *args, **kwargs)

    monkeypatch.setattr(transport._connection, "create_connection", create_connection)
    return seen


def test_a_dns_rebind_cannot_reach_a_private_address(
    ca: trustme.CA, redirect_connects: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """issue 14 #22, reliability S2: erp.example.test answers a public address to the check and a
    private one afterwards. The send connects to the checked address (no second lookup), with the
    host name kept for the Host header, TLS SNI and certificate verification."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))  # read once, when the connector is built
    lookups: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        lookups.append(host)
        return [PUBLIC_IP] if len(lookups) <= 2 else ["10.0.0.5"]  # start-up check, first send; then private

    with TlsServer(ca, "erp.example.test") as server:
        conn = connector(f"https://erp.example.test:{server.port}/orders", resolver=rebinding)
        monkeypatch.delenv("REQUESTS_CA_BUNDLE")
        receipt = conn.send(delivery())
        assert receipt.status == 201 and receipt.reference == "ERP-1"
        assert redirect_connects == [(PUBLIC_IP, server.port)]  # the checked address, nothing else
        assert lookups == ["erp.example.test", "erp.example.test"]  # one lookup per send: no second one
        assert server.seen[0]["host"] == f"erp.example.test:{server.port}"
        assert server.sni == ["erp.example.test"]
        with pytest.raises(UnsafeTarget, match="10.0.0.5, a private address"):
            conn.send(delivery(order_id="o-2"))
        assert len(server.seen) == 1 and len(redirect_connects) == 1
        conn.close()


def test_a_pinned_connection_refuses_any_other_host(redirect_connects: list[tuple[str, int]]) -> None:
    """issue 14 #22: a connection to a host the call did not check is refused, not resolved."""
    call = transport.Call(5, "erp.example.test", [PUBLIC_IP])
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", transport.GuardedAdapter())
    with call, pytest.raises(requests.exceptions.ConnectionError, match="not the checked host"):
        session.get("http://other.example.test:9/", timeout=1)
    assert redirect_connects == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://[::ffff:10.0.0.1]/orders", "IPv4-mapped"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::ffff:169.254.169.254]/latest/meta-data/", "IPv4-mapped"),
    ],
)
def test_mapped_and_metadata_addresses_are_refused_before_any_connect(
    url: str, why: str, redirect_connects: list[tuple[str, int]]
) -> None:
    """reliability S2: IPv4-mapped IPv6 and the cloud metadata address."""
    with pytest.raises(UnsafeTarget, match=why):
        connector(url)
    assert redirect_connects == []


def test_a_redirect_to_an_internal_host_is_not_followed(redirect_connects: list[tuple[str, int]]) -> None:
    """reliability S2: the ERP answers 302 to the metadata address; the gateway does not go there."""

    class Redirect(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        port = server.server_address[1]
        conn = connector(f"http://erp.example.test:{port}/orders", resolver=lambda h, p: [PUBLIC_IP])
        with pytest.raises(PermanentError, match="redirect to http://169.254.169.254/latest/meta-data/ not followed"):
            conn.send(delivery())
        assert redirect_connects == [(PUBLIC_IP, port)]  # one connection, to the checked address only
    finally:
        server.shutdown()
        server.server_close()


# -- proxy settings are read once ----------------------------------------------------------------


def test_proxy_variables_are_read_when_built_not_per_send(erp: FakeERP, monkeypatch: pytest.MonkeyPatch) -> None:
    """issue 14 (per-call cost): requests scanned the proxy variables on every send."""
    calls = []
    real = requests.utils.get_environ_proxies

    def counting(url: str, no_proxy: str | None = None) -> dict[str, str]:
        calls.append(url)
        return real(url, no_proxy)

    monkeypatch.setattr(requests.utils, "get_environ_proxies", counting)
    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counting, raising=False)
    conn = connector(erp.url, allow_private_targets=True)
    built = len(calls)
    for i in range(5):
        conn.send(delivery(order_id=f"o-{i}"))
    assert built == 1 and len(calls) == 1
    conn.close()


def test_a_proxy_set_in_the_environment_is_honoured(erp: FakeERP, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY at start-up is used (here a black hole, so the send never reaches the ERP)."""
    with TcpFault(None) as hole:
        hole.blackhole = True
        monkeypatch.setenv("HTTP_PROXY", hole.url())
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        conn = connector(f"http://erp.example.test:{erp.port}/orders", read=0.5, allow_private_targets=True)
        with pytest.raises(TransientError):
            conn.send(delivery())
        assert hole.connections == 1 and erp.orders == []
        conn.close()
