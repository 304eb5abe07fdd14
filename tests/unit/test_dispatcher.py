"""The Dispatcher end to end against the fake ERP on 127.0.0.1, on SQLite and PostgreSQL:
retries, dead letters, replay, bounds, lease rescue, crashes, and several nodes at once."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from connectors.targets.http_json.config import HttpJsonConfig
from connectors.targets.http_json.connector import HttpJsonConnector
from connectors.targets.memory.config import MemoryTargetConfig
from connectors.targets.memory.connector import MemoryConnector
from gateway import crashpoints
from gateway.config import DispatchConfig
from gateway.connector import Capabilities, Delivery, Receipt
from gateway.dispatch.worker import Dispatcher
from gateway.retry import RetryPolicy
from gateway.store import Store, as_utc
from gateway.store import tables as t
from gateway.store.dead_letters import list_dead, replay
from gateway.store.outbox import (
    claim_due,
    idempotency_key,
    mark_sent,
    new_deliveries,
)
from tests.support.fake_erp import FakeERP, Scripted, fake_erp_fixture

ROOT = Path(__file__).resolve().parents[2]
T0 = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)

fake_erp = fake_erp_fixture()


# -- helpers -----------------------------------------------------------------------------------


def seed(store: Any, n: int = 1, *, connectors: tuple[str, ...] = ("erp",), at: dt.datetime = T0) -> list[str]:
    """n validated orders with their outbox rows, inserted straight into the tables."""
    ids = []
    with store.begin() as conn:
        for i in range(n):
            mid, oid = str(uuid.uuid4()), str(uuid.uuid4())
            conn.execute(insert(t.messages).values(
                id=mid, received_at=at, updated_at=at, source="test", sha256=uuid.uuid4().hex * 2, size=1,
                state="parsed", warnings=[], attempts=1, order_count=1, rejected_count=0))
            conn.execute(insert(t.orders).values(
                id=oid, message_id=mid, doc_index=0, created_at=at, updated_at=at, channel="x12",
                po_number=f"PO-{i + 1}", state="validated", line_count=1,
                data={"po_number": f"PO-{i + 1}", "lines": [{"sku": "WID-1", "quantity": "1"}]}))
            conn.execute(insert(t.outbox), new_deliveries(oid, connectors, at))
            ids.append(oid)
    return ids


class FakeClock:
    def __init__(self, start: dt.datetime = T0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += dt.timedelta(seconds=seconds)

    def advance(self, seconds: float) -> None:
        self.sleep(seconds)


_open: list[HttpJsonConnector] = []


@pytest.fixture(autouse=True)
def _close_connectors() -> Any:
    yield
    while _open:
        _open.pop().close()


def http(erp: FakeERP, **kw: Any) -> HttpJsonConnector:
    conn = HttpJsonConnector(
        HttpJsonConfig(name="erp", url=erp.url, allow_private_targets=True, reference="id", **kw)
    )
    _open.append(conn)
    return conn


def make_dispatcher(
    store: Any, connector: Any, clock: FakeClock | None = None, *, policy: RetryPolicy | None = None, **cfg: Any
) -> Dispatcher:
    clock = clock or FakeClock()
    cfg.setdefault("poll_seconds", 3600)  # with the fake sleep, wait straight until the next row is due
    cfg.setdefault("lease_seconds", 60)
    return Dispatcher(
        store, {"erp": connector}, {"erp": policy or RetryPolicy()}, DispatchConfig(**cfg),
        clock=clock, sleep=clock.sleep, rand=lambda: 0.5,
    )


def outbox(store: Any) -> list[Any]:
    with store.engine.connect() as c:
        return c.execute(select(t.outbox).order_by(t.outbox.c.id)).all()


def order_states(store: Any) -> list[str]:
    with store.engine.connect() as c:
        return [r.state for r in c.execute(select(t.orders.c.state).order_by(t.orders.c.po_number))]


def event_kinds(store: Any, order_id: str) -> list[str]:
    with store.engine.connect() as c:
        q = select(t.events.c.kind).where(t.events.c.order_id == order_id).order_by(t.events.c.id)
        return list(c.execute(q).scalars())


# -- retries, dead letters, replay -------------------------------------------------------------


def test_503_then_201_is_retried_and_creates_one_order(store: Any, fake_erp: FakeERP) -> None:
    [oid] = seed(store)
    fake_erp.script(503, 201)
    stats = make_dispatcher(store, http(fake_erp)).run_until_idle(timeout=3600)
    assert (stats.sent, stats.retried, stats.dead, stats.idle) == (1, 1, 0, True)
    assert len(fake_erp.orders) == 1
    assert [r.idempotency_key for r in fake_erp.requests] == [idempotency_key(oid, "erp")] * 2
    [row] = outbox(store)
    assert (row.state, row.attempts, row.last_status) == ("sent", 2, 201)
    assert row.receipt["reference"] == fake_erp.orders[0]["id"]
    assert order_states(store) == ["dispatched"]
    assert event_kinds(store, oid) == ["attempt", "retry_scheduled", "attempt", "sent", "dispatched"]


def test_400_is_dead_and_replay_after_the_fix_sends_exactly_once(store: Any, fake_erp: FakeERP) -> None:
    [oid] = seed(store)
    fake_erp.script(Scripted(400, body={"error": "unknown SKU WID-1"}))
    clock = FakeClock()
    d = make_dispatcher(store, http(fake_erp), clock)
    stats = d.run_until_idle(timeout=60)
    assert (stats.sent, stats.dead) == (0, 1)
    assert fake_erp.orders == []
    [dead] = list_dead(store)
    assert dead.last_status == 400 and "unknown SKU WID-1" in (dead.last_error or "")
    assert order_states(store) == ["dead"]

    # the ERP team fixed the item master; a person replays the dead letter
    assert replay(store, [dead.outbox_id], now=clock()) == 1
    assert order_states(store) == ["validated"]
    stats = d.run_until_idle(timeout=60)
    assert stats.sent == 1
    assert len(fake_erp.orders) == 1
    assert len(fake_erp.requests) == 2
    assert order_states(store) == ["dispatched"]
    assert event_kinds(store, oid)[-4:] == ["replayed", "attempt", "sent", "dispatched"]


def test_max_attempts_bound(store: Any, fake_erp: FakeERP) -> None:
    seed(store)
    fake_erp.script(*[503] * 10)
    stats = make_dispatcher(store, http(fake_erp), policy=RetryPolicy(max_attempts=4)).run_until_idle(timeout=86_400)
    assert (stats.retried, stats.dead, stats.sent) == (3, 1, 0)
    assert len(fake_erp.requests) == 4 and fake_erp.orders == []
    [row] = outbox(store)
    assert row.state == "dead" and "gave up after 4 attempts" in row.last_error


def test_max_age_bound(store: Any, fake_erp: FakeERP) -> None:
    seed(store)
    fake_erp.script(*[503] * 10)
    policy = RetryPolicy(max_attempts=100, max_age_seconds=120, base_seconds=100, cap_seconds=1000)
    clock = FakeClock()
    stats = make_dispatcher(store, http(fake_erp), clock, policy=policy).run_until_idle(timeout=86_400)
    assert stats.dead == 1
    # attempts at T0, T0+50, T0+150: the third is past the 120 s age bound
    assert len(fake_erp.requests) == 3
    [row] = outbox(store)
    assert "max_age_seconds 120" in row.last_error
    assert as_utc(row.first_attempt_at) == T0


def test_read_timeout_after_the_erp_committed_is_retried_without_a_duplicate(store: Any, fake_erp: FakeERP) -> None:
    """F10: the ERP created the order but answered too late; the retry carries the same key."""
    seed(store)
    fake_erp.script(Scripted(201, delay=0.3))
    stats = make_dispatcher(store, http(fake_erp, timeout={"connect": 1, "read": 0.1})).run_until_idle(timeout=3600)
    assert (stats.retried, stats.sent) == (1, 1)
    assert len(fake_erp.orders) == 1
    assert len(fake_erp.requests) == 2


def test_connection_refused_is_retried(store: Any) -> None:
    seed(store)
    with FakeERP() as erp:
        url = erp.url
    # nothing listens there any more
    conn = HttpJsonConnector(HttpJsonConfig(name="erp", url=url, allow_private_targets=True))
    _open.append(conn)
    d = make_dispatcher(store, conn, policy=RetryPolicy(max_attempts=2))
    stats = d.run_until_idle(timeout=3600)
    assert (stats.retried, stats.dead) == (1, 1)
    assert "failed" in outbox(store)[0].last_error


# -- errors a connector did not classify -------------------------------------------------------


class Exploding:
    name = "erp"

    def __init__(self, idempotent: bool, fail_times: int = 1) -> None:
        self.capabilities = Capabilities(idempotent=idempotent)
        self.fail_times = fail_times
        self.calls = 0

    def send(self, delivery: Delivery) -> Receipt:
        self.calls += 1
        if self.calls <= self.fail_times:
            raise KeyError("surprise")
        return Receipt(status=None, reference="ok")

    def close(self) -> None:
        pass


def test_unknown_error_is_permanent_for_a_non_idempotent_connector(store: Any) -> None:
    seed(store)
    target = Exploding(idempotent=False)
    stats = make_dispatcher(store, target).run_until_idle(timeout=3600)
    assert (stats.dead, target.calls) == (1, 1)
    assert "unexpected KeyError from erp" in outbox(store)[0].last_error
    assert "could deliver the order twice" in outbox(store)[0].last_error


def test_unknown_error_is_retried_for_an_idempotent_connector(store: Any) -> None:
    seed(store)
    target = Exploding(idempotent=True)
    stats = make_dispatcher(store, target).run_until_idle(timeout=3600)
    assert (stats.retried, stats.sent, target.calls) == (1, 1, 2)


# -- crashes and leases ------------------------------------------------------------------------


def test_expired_lease_rescues_an_in_flight_row(store: Any, fake_erp: FakeERP) -> None:
    """F2 in one process: a worker sent, the ERP created the order, the worker died."""
    [oid] = seed(store)
    conn = http(fake_erp)
    [claim] = claim_due(store, now=T0, lease_seconds=60, limit=10)
    conn.send(claim.delivery())  # ... and the process died before recording the result
    assert len(fake_erp.orders) == 1

    clock = FakeClock()
    d = make_dispatcher(store, conn, clock)
    assert d.run_once().claimed == 0  # the lease still holds
    stats = d.run_until_idle(timeout=3600)  # sleeps until the lease ends, then rescues
    assert stats.sent == 1
    assert clock.now >= T0 + dt.timedelta(seconds=60)
    assert len(fake_erp.orders) == 1  # the repeat carried the same key: no second order
    assert {r.idempotency_key for r in fake_erp.requests} == {idempotency_key(oid, "erp")}
    [row] = outbox(store)
    assert (row.state, row.attempts) == ("sent", 2)


def test_crash_point_sits_between_the_answer_and_the_commit(
    store: Any, fake_erp: FakeERP, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(store)
    seen: list[tuple[str, str, int]] = []

    def hit(name: str) -> None:
        [row] = outbox(store)
        seen.append((name, row.state, len(fake_erp.orders)))

    monkeypatch.setattr(crashpoints, "hit", hit)
    make_dispatcher(store, http(fake_erp)).run_once()
    assert seen == [("after_http_before_commit", "in_flight", 1)]


CRASHING_WORKER = """
import sys
from connectors.targets.http_json.config import HttpJsonConfig
from connectors.targets.http_json.connector import HttpJsonConnector
from connectors.targets.memory.config import MemoryTargetConfig
from connectors.targets.memory.connector import MemoryConnector
from gateway.config import DispatchConfig
from gateway.retry import RetryPolicy
from gateway.dispatch.worker import Dispatcher
from gateway.store import Store

store = Store(sys.argv[1])
conn = HttpJsonConnector(HttpJsonConfig(name="erp", url=sys.argv[2], allow_private_targets=True))
Dispatcher(store, {"erp": conn}, {"erp": RetryPolicy()}, DispatchConfig(lease_seconds=30)).run_once()
print("survived")
"""


def test_sigkill_after_the_erp_answered_gives_exactly_one_order(store: Any, fake_erp: FakeERP) -> None:
    """F2 for real: the gateway process is SIGKILLed at after_http_before_commit, then restarted."""
    [oid] = seed(store, at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    env = {**os.environ, "GATEWAY_CRASHPOINT": "after_http_before_commit", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CRASHING_WORKER), store.url, fake_erp.url],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "survived" not in proc.stdout
    assert len(fake_erp.orders) == 1
    [row] = outbox(store)
    assert (row.state, row.attempts) == ("in_flight", 1)  # the claim was committed before sending

    # "restart": a new dispatcher picks the row up once the dead worker's lease has ended
    clock = FakeClock(as_utc(row.lease_until) + dt.timedelta(seconds=1))
    stats = make_dispatcher(store, http(fake_erp), clock).run_until_idle(timeout=60)
    assert stats.sent == 1
    assert len(fake_erp.orders) == 1
    assert [r.idempotency_key for r in fake_erp.requests] == [idempotency_key(oid, "erp")] * 2
    assert order_states(store) == ["dispatched"]


# -- throughput and several nodes --------------------------------------------------------------


def memory(**knobs: Any) -> MemoryConnector:
    return MemoryConnector(MemoryTargetConfig(name="erp", **knobs))


def test_a_batch_is_sent_in_parallel(store: Any) -> None:
    seed(store, 30)
    target = memory(delay_seconds=0.01)
    stats = make_dispatcher(store, target, batch=10, workers=4).run_until_idle(timeout=60)
    assert (stats.claimed, stats.sent) == (30, 30)
    assert len(target.orders) == 30 and target.attempts == 30 and target.duplicates() == {}
    assert set(order_states(store)) == {"dispatched"}


def test_run_once_claims_at_most_a_batch_a_few_at_a_time(store: Any) -> None:
    seed(store, 7)
    target = memory()
    d = make_dispatcher(store, target, batch=5, workers=2)
    assert (d.run_once().sent, d.run_once().sent, d.run_once().claimed) == (5, 2, 0)
    assert len(target.orders) == 7


def test_faults_on_some_orders_leave_the_others_alone(store: Any) -> None:
    """Every 3rd send fails transiently and PO-4 is refused: PO-4 is dead, every other order
    arrives exactly once (in-memory target with fault knobs, issue 9)."""
    seed(store, 12)
    target = memory(fail_every=3, permanent_po_numbers=["PO-4"])
    stats = make_dispatcher(store, target, batch=4, workers=2).run_until_idle(timeout=86_400)
    assert (stats.sent, stats.dead, stats.idle) == (11, 1, True) and stats.retried >= 3
    assert sorted(o["po_number"] for o in target.orders) == sorted(f"PO-{i}" for i in range(1, 13) if i != 4)
    assert target.duplicates() == {}
    [dead] = list_dead(store)
    assert dead.last_status == 422 and "PO-4" in (dead.last_error or "")


def test_an_order_without_data_is_dead_not_sent_empty(store: Any) -> None:
    [oid] = seed(store)
    with store.begin() as c:
        c.execute(update(t.orders).where(t.orders.c.id == oid).values(data=None))
    target = memory()
    stats = make_dispatcher(store, target).run_until_idle(timeout=60)
    assert stats.dead == 1 and target.attempts == 0
    assert "no canonical data" in outbox(store)[0].last_error


def test_rows_for_connectors_this_node_lacks_are_left_alone(store: Any, fake_erp: FakeERP) -> None:
    seed(store, connectors=("erp", "shipping"))
    stats = make_dispatcher(store, http(fake_erp)).run_until_idle(timeout=60)
    assert stats.sent == 1 and stats.idle
    assert sorted((r.connector, r.state) for r in outbox(store)) == [("erp", "sent"), ("shipping", "pending")]
    assert order_states(store) == ["validated"]  # not dispatched until shipping is sent too


def test_run_until_idle_gives_up_at_the_timeout(store: Any, fake_erp: FakeERP) -> None:
    seed(store)
    fake_erp.script(*[503] * 20)
    policy = RetryPolicy(max_attempts=50, base_seconds=100)
    stats = make_dispatcher(store, http(fake_erp), policy=policy).run_until_idle(timeout=300)
    assert not stats.idle and stats.sent == 0
    assert outbox(store)[0].state == "pending"


@pytest.mark.postgres
def test_concurrent_claims_on_postgres_never_double_claim(pg_url: str) -> None:
    store = Store(pg_url)
    try:
        seed(store, 120, connectors=("erp", "shipping"))
        claimed: list[list[int]] = [[] for _ in range(6)]
        barrier = threading.Barrier(6)

        def node(i: int) -> None:
            barrier.wait()
            while True:
                got = claim_due(store, now=T0, lease_seconds=60, limit=7)
                if not got:
                    return
                claimed[i].extend(c.outbox_id for c in got)

        threads = [threading.Thread(target=node, args=(i,)) for i in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=60)
        every = [x for ids in claimed for x in ids]
        assert len(every) == 240
        assert len(set(every)) == 240  # no row claimed twice
        assert sum(1 for ids in claimed if ids) > 1  # the work really was shared
        assert {r.attempts for r in outbox(store)} == {1}
    finally:
        store.dispose()


def test_two_dispatchers_share_one_outbox(store: Any, fake_erp: FakeERP) -> None:
    """Two nodes (two Dispatchers with their own connectors) on one store: every order once."""
    seed(store, 40, at=dt.datetime.now(dt.UTC))
    # real clocks here: a fake clock that one node advances would expire the other's leases
    nodes = [
        Dispatcher(store, {"erp": http(fake_erp)}, {}, DispatchConfig(batch=5, workers=2, poll_seconds=0.05))
        for _ in range(2)
    ]
    results: list[Any] = []
    threads = [threading.Thread(target=lambda d=d: results.append(d.run_until_idle(timeout=60))) for d in nodes]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert sum(r.sent for r in results) == 40
    assert len(fake_erp.orders) == 40
    assert len(fake_erp.requests) == 40  # nobody sent a row another node held
    assert max(Counter(r.idempotency_key for r in fake_erp.requests).values()) == 1


def test_store_outage_while_recording_leaves_the_row_for_the_lease(
    store: Any, fake_erp: FakeERP, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.dispatch import worker
    from gateway.errors import StoreUnavailable

    seed(store)

    def down(*a: Any, **kw: Any) -> bool:
        raise StoreUnavailable("database is locked")

    monkeypatch.setattr(worker, "record", down)
    stats = make_dispatcher(store, http(fake_erp)).run_once()
    assert stats.lost == 1
    assert outbox(store)[0].state == "in_flight"  # claimed again when the lease ends


def test_serve_runs_until_stopped_and_finishes_what_it_claimed(store: Any, fake_erp: FakeERP) -> None:
    seed(store, 3, at=dt.datetime.now(dt.UTC))
    d = Dispatcher(store, {"erp": http(fake_erp)}, {}, DispatchConfig(poll_seconds=0.02, workers=2))
    stop = threading.Event()
    result: list[Any] = []
    runner = threading.Thread(target=lambda: result.append(d.serve(stop)))
    runner.start()
    try:
        for _ in range(200):
            if len(fake_erp.orders) == 3:
                break
            threading.Event().wait(0.01)
    finally:
        stop.set()
        runner.join(timeout=10)
    assert not runner.is_alive()
    assert result[0].sent == 3
    assert {r.state for r in outbox(store)} == {"sent"}


# -- updates and cancels -----------------------------------------------------------------------


def seed_change(store: Any, previous: str, *, action: str = "update", at: dt.datetime = T0, qty: str = "5") -> str:
    """The next version of `previous`, queued behind its deliveries as the pipeline does."""
    oid = str(uuid.uuid4())
    with store.begin() as conn:
        v1 = conn.execute(select(t.orders).where(t.orders.c.id == previous)).one()
        after = {r.connector: r.id for r in conn.execute(select(t.outbox).where(t.outbox.c.order_id == previous))}
        conn.execute(insert(t.orders).values(
            id=oid, message_id=v1.message_id, doc_index=v1.doc_index + 1, created_at=at, updated_at=at,
            channel="x12", po_number=v1.po_number, state="validated", line_count=1, version=v1.version + 1,
            supersedes=previous, data={"po_number": v1.po_number, "lines": [{"sku": "WID-1", "quantity": qty}]}))
        conn.execute(insert(t.outbox), new_deliveries(oid, list(after), at, action=action, after=after))
    return oid


def http_changes(erp: FakeERP, **kw: Any) -> HttpJsonConnector:
    kw.setdefault("update_url", erp.base_url + "/orders/{reference}")
    kw.setdefault("cancel_url", erp.base_url + "/orders/{reference}")
    kw.setdefault("cancel_method", "DELETE")
    return http(erp, **kw)


def test_create_update_cancel_reach_the_erp_in_order(store: Any, fake_erp: FakeERP) -> None:
    """All three versions are queued at once; each waits for the one before it."""
    [v1] = seed(store)
    v2 = seed_change(store, v1)
    v3 = seed_change(store, v2, action="cancel")
    stats = make_dispatcher(store, http_changes(fake_erp), workers=4).run_until_idle(timeout=3600)
    assert (stats.sent, stats.dead, stats.idle) == (3, 0, True)
    [created] = fake_erp.orders
    assert [(c["id"], c["action"]) for c in fake_erp.changes] == [(created["id"], "update"), (created["id"], "cancel")]
    assert fake_erp.changes[0]["body"]["lines"][0]["quantity"] == "5"
    assert [(r.method, r.path) for r in fake_erp.requests] == [
        ("POST", "/orders"), ("PUT", f"/orders/{created['id']}"), ("DELETE", f"/orders/{created['id']}")
    ]
    assert fake_erp.requests[2].body is None  # a DELETE carries no body
    assert [r.idempotency_key for r in fake_erp.requests] == [idempotency_key(o, "erp") for o in (v1, v2, v3)]
    rows = outbox(store)
    assert [(r.action, r.target_reference, r.after_id) for r in rows] == [
        ("create", None, None), ("update", created["id"], rows[0].id), ("cancel", created["id"], rows[1].id)
    ]
    assert [r.receipt["reference"] for r in rows] == [created["id"]] * 3
    assert order_states(store) == ["dispatched"] * 3


def test_an_update_retried_after_a_timeout_changes_the_order_once(store: Any, fake_erp: FakeERP) -> None:
    [v1] = seed(store)
    seed_change(store, v1)
    fake_erp.script(201, Scripted(200, delay=0.3))  # the create; the update applied but answered late
    stats = make_dispatcher(store, http_changes(fake_erp, timeout={"connect": 1, "read": 0.1})).run_until_idle(
        timeout=3600
    )
    assert (stats.sent, stats.retried) == (2, 1)
    assert len(fake_erp.changes) == 1  # the repeat carried the same key
    assert len([r for r in fake_erp.requests if r.method == "PUT"]) == 2


def test_update_without_a_reference_is_dead_with_a_clear_error(store: Any, fake_erp: FakeERP) -> None:
    """v1 was delivered before `reference:` was configured: its receipt names no ERP id."""
    [v1] = seed(store)
    with store.begin() as c:
        c.execute(update(t.outbox).values(state="sent", attempts=1, receipt={"status": 201, "reference": None, "detail": {}}))
        c.execute(update(t.orders).values(state="dispatched"))
    v2 = seed_change(store, v1)
    stats = make_dispatcher(store, http_changes(fake_erp)).run_until_idle(timeout=60)
    assert stats.dead == 1 and fake_erp.requests == []
    [dead] = list_dead(store)
    assert dead.order_id == v2
    error = dead.last_error or ""
    assert "update of order PO-1" in error and v2 in error
    assert "the original delivery returned no reference" in error and "configure `reference:`" in error


def test_a_hostile_reference_stays_one_path_segment(store: Any, fake_erp: FakeERP) -> None:
    [v1] = seed(store)
    with store.begin() as c:
        c.execute(update(t.outbox).values(
            state="sent", attempts=1, receipt={"status": 201, "reference": "../admin?x=1#", "detail": {}}))
    seed_change(store, v1)
    stats = make_dispatcher(store, http_changes(fake_erp)).run_until_idle(timeout=60)
    assert stats.dead == 1  # the ERP knows no such order: 404
    [req] = fake_erp.requests
    assert (req.method, req.path) == ("PUT", "/orders/..%2Fadmin%3Fx%3D1%23")
    assert fake_erp.changes == [] and outbox(store)[1].last_status == 404


def test_a_dead_create_holds_its_update_until_replayed(store: Any, fake_erp: FakeERP) -> None:
    [v1] = seed(store)
    v2 = seed_change(store, v1)
    fake_erp.script(Scripted(400, body={"error": "unknown SKU WID-1"}))
    clock = FakeClock()
    d = make_dispatcher(store, http_changes(fake_erp), clock)
    stats = d.run_until_idle(timeout=3600)
    assert (stats.dead, stats.sent, stats.idle) == (1, 0, True)  # the waiting update is not busy work
    assert clock.now == T0  # it did not sleep through the timeout waiting for it
    assert [r.state for r in outbox(store)] == ["dead", "pending"]
    assert [dl.order_id for dl in list_dead(store)] == [v1]

    assert replay(store, "all", now=clock()) == 1
    stats = d.run_until_idle(timeout=3600)
    assert stats.sent == 2
    [created] = fake_erp.orders
    assert [(c["id"], c["action"]) for c in fake_erp.changes] == [(created["id"], "update")]
    assert order_states(store) == ["dispatched", "dispatched"]
    assert event_kinds(store, v2) == ["attempt", "sent", "dispatched"]


def test_an_update_to_a_connector_without_update_url_is_dead(store: Any, fake_erp: FakeERP) -> None:
    [v1] = seed(store)
    seed_change(store, v1)
    stats = make_dispatcher(store, http(fake_erp)).run_until_idle(timeout=60)
    assert (stats.sent, stats.dead) == (1, 1)
    assert "erp does not declare that it can take an order update" in outbox(store)[1].last_error
    assert len(fake_erp.requests) == 1


@pytest.mark.postgres
def test_concurrent_claims_on_postgres_keep_versions_in_order(pg_url: str) -> None:
    """Six nodes claim v1 creates and v2 updates at once: no row twice, no update before its create."""
    store = Store(pg_url)
    try:
        firsts = seed(store, 40, connectors=("erp", "shipping"))
        for oid in firsts:
            seed_change(store, oid)
        total = len(outbox(store))
        log: list[tuple[str, int, str | None]] = []
        lock = threading.Lock()
        barrier = threading.Barrier(6)
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)

        def node() -> None:
            barrier.wait()
            while dt.datetime.now(dt.UTC) < deadline:
                got = claim_due(store, now=T0, lease_seconds=3600, limit=5)
                with lock:
                    log.extend(("claimed", c.outbox_id, c.target_reference) for c in got)
                    if not got and sum(1 for e in log if e[0] == "sent") == total:
                        return
                for c in got:
                    with lock:  # logged before the commit, so before anyone can claim a successor
                        log.append(("sent", c.outbox_id, None))
                    mark_sent(store, c, Receipt(status=201, reference=f"R-{c.outbox_id}"), now=T0)
                if not got:
                    threading.Event().wait(0.005)

        threads = [threading.Thread(target=node) for _ in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=90)
        claimed = [e[1] for e in log if e[0] == "claimed"]
        assert len(claimed) == total == 160 and len(set(claimed)) == total  # no row claimed twice
        position = {(kind, oid): i for i, (kind, oid, _) in enumerate(log)}
        rows = outbox(store)
        updates = [r for r in rows if r.action == "update"]
        assert len(updates) == 80
        for r in updates:
            assert position[("sent", r.after_id)] < position[("claimed", r.id)]  # never before its create
            assert r.target_reference == f"R-{r.after_id}"
        assert {r.state for r in rows} == {"sent"} and {r.attempts for r in rows} == {1}
    finally:
        store.dispose()


# -- durability of results -----------------------------------------------------------------------


class _NoKey:
    """A target that can recognise no repeat (like an e-mail): neither key nor idempotent."""

    capabilities = Capabilities(idempotency_key=False, idempotent=False)

    def send(self, delivery: Delivery) -> Receipt:
        return Receipt(status=250)

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("connector", "redoable"),
    [
        (MemoryConnector(MemoryTargetConfig(name="erp")), True),  # idempotent
        (_NoKey(), False),
    ],
    ids=["repeat-safe-target", "no-key-target"],
)
def test_results_are_recorded_redoably_only_where_a_repeat_is_recognised(
    store: Any, connector: Any, redoable: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lost result commit means a repeat send: fine with a key the target knows, not for a
    target that would take the repeat as a second order (its result stays fully durable)."""
    import gateway.dispatch.worker as worker
    from gateway.store import db

    seen: list[bool] = []
    real = worker.record

    def spy(*args: Any, **kw: Any) -> Any:
        seen.append(db._REDOABLE.get())
        return real(*args, **kw)

    monkeypatch.setattr(worker, "record", spy)
    seed(store, 5)
    stats = make_dispatcher(store, connector).drain()
    assert stats.sent == 5
    assert seen and set(seen) == {redoable}
    assert order_states(store) == ["dispatched"] * 5
