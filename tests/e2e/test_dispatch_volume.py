"""From drop folder to a loopback ERP under volume, on SQLite and on two PostgreSQL nodes, run
from the CLI: each PO delivered exactly once, every order's state agreeing with its deliveries,
every attempt written once in the history.

Guards issue 14 #16 (orders stuck in `validated` on PostgreSQL: settling an order raced with
concurrent dispatch), #17 (a node whose clock ran fast rescued and dead-lettered deliveries
another node was sending; reliability F19), #11 (one send shown twice as "attempt 1 of 8")
and the throughput rework (the dispatcher wakes on queued orders and keeps going while rows
are due). Speed is measured by bench/bench_throughput.py, not here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from gateway.store import tables as t
from tests.e2e.helpers import ROOT, gateway_cmd, http_json, run_cli, write_config
from tests.support.fake_erp import FakeERP, Scripted
from tests.support.x12gen import file_with_orders

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

FILES = 1000


@pytest.fixture
def erp() -> Iterator[FakeERP]:
    with FakeERP() as server:
        yield server


def erp_config(tmp: Path, store_url: str, erp: FakeERP, *, connectors: int = 1, extra: str = "") -> Path:
    """Defaults everywhere except paths, the ERP (`connectors` endpoints of it) and short
    test back-offs."""
    targets = "".join(http_json(f"erp{i or ''}", f"{erp.base_url}/orders{i or ''}", timeout=None) for i in range(connectors))
    return write_config(tmp, store_url=store_url, connectors=targets, stable=0.2, poll=None, service=False, extra=extra)


def drop_files(inbox: Path, n: int, prefix: str = "PO") -> list[str]:
    """n files of one PO each, written under a hidden name and renamed, as partners do."""
    inbox.mkdir(exist_ok=True)
    pos = []
    for i in range(n):
        po = f"{prefix}-{i:05d}"
        part = inbox / f".{po}.part"
        part.write_bytes(file_with_orders([po], icn=f"{i + 1:09d}"))
        os.replace(part, inbox / f"{po}.edi")
        pos.append(po)
    return pos


def posted(erp: FakeERP) -> Counter[str]:
    """PO number -> how many order POSTs the ERP received for it (repeats included)."""
    return Counter(r.body["po_number"] for r in erp.requests if r.method == "POST" and isinstance(r.body, dict))


def assert_settled(store_url: str, pos: list[str], connectors: int = 1) -> None:
    """Every order dispatched, every delivery sent once, every attempt in the history once."""
    engine = create_engine(store_url)
    try:
        with engine.connect() as c:
            states = Counter(c.execute(select(t.orders.c.state)).scalars())
            assert states == {"dispatched": len(pos)}, states
            rows = Counter(c.execute(select(t.outbox.c.state)).scalars())
            assert rows == {"sent": len(pos) * connectors}, rows
            # An order's state agrees with its deliveries: no order with all rows sent left behind.
            stuck = c.execute(
                select(func.count()).select_from(t.orders).where(
                    t.orders.c.state != "dispatched",
                    ~select(t.outbox.c.id).where(t.outbox.c.order_id == t.orders.c.id, t.outbox.c.state != "sent").exists(),
                )
            ).scalar_one()
            assert stuck == 0
            attempts = Counter(
                (r.outbox_id, r.detail)
                for r in c.execute(select(t.events.c.outbox_id, t.events.c.detail).where(t.events.c.kind == "attempt"))
            )
            doubled = {k: n for k, n in attempts.items() if n > 1}
            assert not doubled, f"an attempt written twice (issue 14 #11): {list(doubled.items())[:3]}"
            assert sum(attempts.values()) == len(pos) * connectors  # one attempt per delivery, no rescue
    finally:
        engine.dispose()


def start_node(cfg: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """`gateway run` in its own process; its log goes to `log` (a pipe nobody reads would fill)."""
    with log.open("wb") as out:  # the child keeps its own descriptor
        return subprocess.Popen(gateway_cmd("run", *args, "-c", str(cfg)), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=out)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_until(predicate: object, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def test_a_thousand_files_with_run_once_on_sqlite(tmp_path: Path, erp: FakeERP) -> None:
    """Volume (issue 14): 1,000 one-PO files, `gateway run --once`: each PO reaches the ERP once."""
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    cfg = erp_config(tmp_path, url, erp)
    pos = drop_files(tmp_path / "inbox", FILES)
    result = run_cli("run", "--once", "-c", str(cfg), timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert posted(erp) == dict.fromkeys(pos, 1)
    assert os.listdir(tmp_path / "inbox") == []
    assert_settled(url, pos)


def test_a_thousand_files_with_the_service_on_sqlite(tmp_path: Path, erp: FakeERP) -> None:
    """Volume (issue 14): 1,000 one-PO files dropped while `gateway run` serves."""
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    cfg = erp_config(tmp_path, url, erp)
    node = start_node(cfg, tmp_path / "node.log")
    try:
        pos = drop_files(tmp_path / "inbox", FILES)
        assert wait_until(lambda: len(posted(erp)) >= FILES, 240), (tmp_path / "node.log").read_text()[-3000:]
        time.sleep(0.5)  # the last results are recorded
    finally:
        stop([node])
    assert node.returncode == 0
    assert posted(erp) == dict.fromkeys(pos, 1)
    assert_settled(url, pos)
    log = (tmp_path / "node.log").read_text()
    assert "maximum number of running instances" not in log  # issue 14 #15
    assert "Traceback" not in log


@pytest.mark.postgres
def test_a_thousand_files_with_two_postgres_nodes(tmp_path: Path, erp: FakeERP, pg_url: str) -> None:
    """Volume (issue 14) on two `gateway run` nodes sharing one inbox and one PostgreSQL: each
    PO once, and no order left `validated` with all its deliveries sent (issue 14 #16)."""
    cfg = erp_config(tmp_path, pg_url, erp)
    assert run_cli("config", "check", "-c", str(cfg)).returncode == 0  # migrated before both start
    nodes = [start_node(cfg, tmp_path / f"node{i}.log") for i in range(2)]
    try:
        pos = drop_files(tmp_path / "inbox", FILES)
        assert wait_until(lambda: len(posted(erp)) >= FILES, 240), (tmp_path / "node0.log").read_text()[-3000:]
        assert wait_until(lambda: _states(pg_url) == {"dispatched": FILES}, 30), _states(pg_url)
    finally:
        stop(nodes)
    assert posted(erp) == dict.fromkeys(pos, 1)
    assert_settled(pg_url, pos)


@pytest.mark.postgres
def test_orders_with_two_deliveries_settle_when_two_postgres_nodes_finish_them(tmp_path: Path, erp: FakeERP, pg_url: str) -> None:
    """Issue 14 #16: two nodes (processes) finish the two deliveries of one order at the same
    time. Each counted the other's row as still in flight and neither settled the order, which
    stayed `validated` with every delivery sent. Now every order ends `dispatched`."""
    cfg = erp_config(tmp_path, pg_url, erp, connectors=2)
    pos = drop_files(tmp_path / "staged", 300)
    # Stored and queued first (no dispatch), so both nodes start on a full outbox at once.
    ingest = run_cli("ingest", "-c", str(cfg), *[str(p) for p in sorted((tmp_path / "staged").glob("*.edi"))], timeout=300)
    assert ingest.returncode == 0, ingest.stderr[-2000:]
    nodes = [
        subprocess.Popen(gateway_cmd("run", "--once", "-c", str(cfg)), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for node in nodes:
        _, errors = node.communicate(timeout=300)
        assert node.returncode == 0, errors[-2000:]
    both = Counter(r.path for r in erp.requests)
    assert both == {"/orders": 300, "/orders1": 300}
    assert posted(erp) == dict.fromkeys(pos, 2)
    assert_settled(pg_url, pos, connectors=2)


@pytest.mark.postgres
def test_a_node_whose_clock_runs_ten_minutes_fast_takes_over_nothing(tmp_path: Path, erp: FakeERP, pg_url: str) -> None:
    """Issue 14 #17, reliability F19: node A sends to a slow ERP; node B, whose clock runs 10
    minutes fast, runs meanwhile. Leases and ages are measured on the database's clock, so B
    neither rescues A's deliveries (sending them twice) nor dead-letters them as too old."""
    n = 24
    cfg = erp_config(
        tmp_path, pg_url, erp,
        extra="dispatch:\n  lease_seconds: 60\n  workers: 4\n",
    )
    cfg.write_text(cfg.read_text().replace("retry: {max_attempts: 5,", "retry: {max_age_seconds: 300, max_attempts: 5,"))
    pos = drop_files(tmp_path / "staged", n)
    ingest = run_cli("ingest", "-c", str(cfg), *[str(p) for p in sorted((tmp_path / "staged").glob("*.edi"))], timeout=120)
    assert ingest.returncode == 0, ingest.stderr[-2000:]
    erp.script(*[Scripted(201, delay=1.0) for _ in range(n)])  # each answer takes a second
    a = subprocess.Popen(gateway_cmd("run", "--once", "-c", str(cfg)), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert wait_until(lambda: len(erp.requests) >= 4, 30)  # A holds deliveries in flight
    b = subprocess.run(
        [sys.executable, "-m", "tests.support.skewed_clock", "600", "run", "--once", "-c", str(cfg)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert b.returncode == 0, b.stderr[-2000:]
    _, errors = a.communicate(timeout=120)
    assert a.returncode == 0, errors[-2000:]
    assert posted(erp) == dict.fromkeys(pos, 1)  # nothing rescued and sent twice
    engine = create_engine(pg_url)
    try:
        with engine.connect() as c:
            kinds = Counter(c.execute(select(t.events.c.kind)).scalars())
            never = c.execute(select(func.count()).select_from(t.events).where(t.events.c.detail.like("%never finished%"))).scalar_one()
    finally:
        engine.dispose()
    assert kinds["dead"] == 0 and never == 0, kinds
    assert_settled(pg_url, pos)


def _states(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            return dict(Counter(c.execute(select(t.orders.c.state)).scalars()))
    finally:
        engine.dispose()


def test_a_replayed_delivery_does_not_show_attempt_one_twice(tmp_path: Path, erp: FakeERP) -> None:
    """Issue 14 #11: an order's history showed "attempt 1 of N" twice for one delivery. A
    replay from dead letters starts the attempt count afresh (so the retry policy does), and
    its attempts looked like the first ones; now they say which replay they belong to."""
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    cfg = erp_config(tmp_path, url, erp)
    erp.script(Scripted(400, body={"error": "unknown customer ACME01"}))
    drop_files(tmp_path / "inbox", 1)
    assert run_cli("run", "--once", "-c", str(cfg)).returncode == 0
    assert "1 delivery" in run_cli("replay", "--all", "-c", str(cfg)).stderr
    assert run_cli("run", "--once", "-c", str(cfg)).returncode == 0
    assert posted(erp) == {"PO-00000": 2}  # refused once, accepted after the replay
    show = run_cli("show", "PO-00000", "-c", str(cfg), env={"COLUMNS": "250"})
    assert show.returncode == 0, show.stderr
    attempts = [
        cells[2].strip() for line in show.stdout.splitlines() if len(cells := line.split("│")) >= 3 and cells[1].strip() == "attempt"
    ]
    assert attempts == ["attempt 1 of 5 to erp", "attempt 1 of 5 to erp after replay 1"], show.stdout
