"""Reliability rows F7..F12 end to end: a file dropped into the inbox, `gateway run --once` as a
user runs it, and a loopback ERP that fails the way real ones do (tests/support/fake_erp.py,
tcpfault.py in front of it for network faults, tls_server.py for TLS)."""

from __future__ import annotations

import email.utils
import os
import sqlite3
import time
from pathlib import Path

import pytest
import trustme
from sqlalchemy import select

from gateway.store import Store, as_utc
from gateway.store import tables as t
from tests.e2e.helpers import run_cli, write_config
from tests.support.fake_erp import FakeERP, Scripted
from tests.support.tcpfault import TcpFault
from tests.support.tls_server import TlsServer
from tests.support.x12gen import file_with_orders

pytestmark = pytest.mark.slow


@pytest.fixture
def erp(tmp_path: Path):
    with FakeERP(db=tmp_path / "erp.db") as server:
        yield server


def setup(tmp_path: Path, url: str, pos: list[str], *, timeout: str = "{connect: 2, read: 5}", retry: str | None = None) -> Path:
    cfg = write_config(tmp_path, url, timeout=timeout, **({"retry": retry} if retry else {}))
    body = file_with_orders(pos)
    part = tmp_path / "inbox" / ".po.edi.part"
    part.write_bytes(body)
    os.replace(part, tmp_path / "inbox" / "po.edi")
    return cfg


def run_once(cfg: Path, seconds: int = 40) -> float:
    started = time.monotonic()
    done = run_cli("run", "--once", "--for", str(seconds), "--config", str(cfg), timeout=seconds + 30)
    assert done.returncode == 0, done.stderr
    return time.monotonic() - started


def request_times(tmp_path: Path) -> list[float]:
    with sqlite3.connect(tmp_path / "erp.db") as db:
        return [row[0] for row in db.execute("SELECT at FROM erp_requests ORDER BY n")]


def outbox_rows(tmp_path: Path) -> list[tuple[str, float, str | None]]:
    """(state, next attempt as a Unix time, last error) of each delivery, from the gateway's database."""
    store = Store(f"sqlite:///{tmp_path / 'gateway.db'}")
    try:
        with store.engine.connect() as c:
            rows = c.execute(select(t.outbox.c.state, t.outbox.c.next_attempt_at, t.outbox.c.last_error)).all()
    finally:
        store.dispose()
    return [(state, as_utc(due).timestamp(), error) for state, due, error in rows]


def dead_letters(cfg: Path) -> str:
    out = run_cli("dead-letters", "--config", str(cfg), env={"COLUMNS": "500"})
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_f7_500_502_503_then_success_is_one_order(tmp_path: Path, erp: FakeERP) -> None:
    """reliability F7: three server errors, then the ERP takes it: one order, one key."""
    erp.script(500, 502, 503)
    cfg = setup(tmp_path, erp.url, ["PO-F7"])
    run_once(cfg)
    assert [o["body"]["po_number"] for o in erp.orders] == ["PO-F7"]
    keys = [r.idempotency_key for r in erp.requests]
    assert len(keys) == 4 and len(set(keys)) == 1 and keys[0]


@pytest.mark.parametrize("kind", ["seconds", "http-date"])
def test_f8_retry_after_is_waited_for(tmp_path: Path, erp: FakeERP, kind: str) -> None:
    """reliability F8: 429 with Retry-After (seconds, or an HTTP-date) waits at least that long,
    although the policy's own back-off is at most 0.2 s."""
    value = "3" if kind == "seconds" else email.utils.formatdate(time.time() + 10, usegmt=True)
    erp.script(Scripted(429, headers={"Retry-After": value}))
    cfg = setup(tmp_path, erp.url, ["PO-F8"])
    run_once(cfg)  # one attempt; the retry is not due yet, so `--once` ends
    [first] = request_times(tmp_path)
    [(state, due, _)] = outbox_rows(tmp_path)
    assert state == "pending" and due - first >= (2.9 if kind == "seconds" else 2.0)
    time.sleep(max(0.0, due - time.time()) + 0.1)
    run_once(cfg)
    first, second = request_times(tmp_path)
    assert second >= due and len(erp.orders) == 1


@pytest.mark.parametrize("value", ["Wed, 21 Oct 2015 07:28:00 GMT", "soon", "-5"])
def test_f8_retry_after_in_the_past_or_unparsable_falls_back_to_back_off(tmp_path: Path, erp: FakeERP, value: str) -> None:
    """reliability F8: a Retry-After in the past or not understood: the policy's back-off (≤ 0.2 s)."""
    erp.script(Scripted(503, headers={"Retry-After": value}))
    cfg = setup(tmp_path, erp.url, ["PO-F8B"])
    run_once(cfg)
    first, second = request_times(tmp_path)
    assert second - first < 1.0
    assert len(erp.orders) == 1


def test_f9_422_is_dead_with_a_redacted_body_and_others_go_through(tmp_path: Path, erp: FakeERP) -> None:
    """reliability F9: no retry; dead with the status and the ERP's answer, e-mail and token masked."""
    erp.script(Scripted(422, body={"error": "customer jane.doe@acme.example unknown", "auth": "Bearer abcdef0123456789"}))
    cfg = setup(tmp_path, erp.url, ["PO-F9A", "PO-F9B"], retry="{max_attempts: 5, base_seconds: 0.05, cap_seconds: 0.2}")
    run_once(cfg)
    assert len(erp.requests) == 2  # the refused one was not retried
    assert len(erp.orders) == 1  # the other order is unaffected
    dead = dead_letters(cfg)
    assert "422" in dead and "jane.doe@acme.example" not in dead
    [error] = [e for state, _, e in outbox_rows(tmp_path) if state == "dead"]
    assert "customer <email> unknown" in (error or "")
    assert "jane.doe@acme.example" not in (error or "") and "abcdef0123456789" not in (error or "")


def test_f10_read_timeout_after_the_erp_committed_is_one_order(tmp_path: Path, erp: FakeERP) -> None:
    """reliability F10: the ERP creates the order but answers after the client gave up; the retry
    carries the same key and the ERP answers with the order it already has."""
    erp.script(Scripted(201, delay=1.5))
    cfg = setup(tmp_path, erp.url, ["PO-F10"], timeout="{connect: 1, read: 0.5}")
    run_once(cfg)
    assert len(erp.orders) == 1
    keys = [r.idempotency_key for r in erp.requests]
    assert len(keys) == 2 and keys[0] == keys[1]


@pytest.mark.parametrize("fault", [{"close_after_accept": True}, {"reset_after_bytes": 10}])
def test_f11_dropped_or_reset_connections_are_retried(tmp_path: Path, erp: FakeERP, fault: dict[str, object]) -> None:
    """reliability F11: the connection is closed at once / reset mid-answer: retried, then dead
    after max_attempts; after the network is fixed a replay delivers it once."""
    with TcpFault(("127.0.0.1", erp.port)) as proxy:
        proxy.set(**fault)
        cfg = setup(tmp_path, proxy.url("/orders"), ["PO-F11"], retry="{max_attempts: 3, base_seconds: 0.05, cap_seconds: 0.2}")
        run_once(cfg)
        assert proxy.connections == 3  # three attempts
        assert "failed" in dead_letters(cfg)
        proxy.set(close_after_accept=False, reset_after_bytes=None)
        assert run_cli("replay", "--all", "--config", str(cfg)).returncode == 0
        run_once(cfg)
    assert len(erp.orders) == 1  # a reset after the ERP committed was deduplicated by the key


def test_f11_an_untrusted_certificate_is_dead_at_once_as_a_config_error(tmp_path: Path) -> None:
    """reliability F11: a TLS verification failure is not retried: dead after one attempt,
    naming it a configuration problem."""
    with TlsServer(trustme.CA(), "localhost") as server:
        cfg = setup(tmp_path, f"https://localhost:{server.port}/orders", ["PO-TLS"])
        run_once(cfg)
        assert server.seen == []
    assert "PO-TLS" in dead_letters(cfg)
    [(state, _, error)] = outbox_rows(tmp_path)
    assert state == "dead" and "TLS failure" in (error or "") and "configuration problem" in (error or "")
    show = run_cli("show", "PO-TLS", "--config", str(cfg), env={"COLUMNS": "500"})
    assert "retry_scheduled" not in show.stdout and "dead" in show.stdout


def test_f12_a_trickling_erp_is_cut_at_the_total_deadline(tmp_path: Path, erp: FakeERP) -> None:
    """issue 14 #19, reliability F12: the ERP answers 4 bytes a second (about 45 s for its
    answer, each read well inside the read timeout). Each call ends at connect + read = 2 s,
    the worker is free again, and the order ends dead after 2 attempts, not after minutes."""
    with TcpFault(("127.0.0.1", erp.port)) as proxy:
        proxy.bandwidth_bps = 4
        cfg = setup(tmp_path, proxy.url("/orders"), ["PO-F12"], timeout="{connect: 1, read: 1}",
                    retry="{max_attempts: 2, base_seconds: 0.05, cap_seconds: 0.2}")
        elapsed = run_once(cfg)
    assert elapsed < 20, elapsed
    [(state, _, error)] = outbox_rows(tmp_path)
    assert state == "dead" and "total deadline of 2 s" in (error or "")
    assert len(erp.orders) == 1 and len({r.idempotency_key for r in erp.requests}) == 1


def test_f12_a_blackhole_erp_ends_at_the_read_timeout(tmp_path: Path) -> None:
    """reliability F12: a server that accepts and never answers."""
    with TcpFault(None) as hole:
        hole.blackhole = True
        cfg = setup(tmp_path, hole.url("/orders"), ["PO-HOLE"], timeout="{connect: 1, read: 1}",
                    retry="{max_attempts: 2, base_seconds: 0.05, cap_seconds: 0.2}")
        elapsed = run_once(cfg)
        assert hole.connections == 2
    assert elapsed < 20
    assert "PO-HOLE" in dead_letters(cfg)
