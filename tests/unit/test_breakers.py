"""Circuit breaker and rate limit per connector (issue 11), on SQLite and PostgreSQL: a breaker
opens after N transient failures in a row, claims nothing while open (rows stay pending, no
attempt used), lets one probe through, closes on its success and reopens on its failure; two
dispatchers on one store share it. The rate limit spaces sends on an injected clock."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

from sqlalchemy import func, select

from gateway.config import DispatchConfig
from gateway.connector import Capabilities, Delivery, Receipt
from gateway.dispatch.worker import Dispatcher
from gateway.errors import PermanentError, TransientError
from gateway.intake.metrics import exposition
from gateway.plugins import BreakerConfig
from gateway.retry import RetryPolicy
from gateway.store import breakers
from gateway.store import tables as t
from tests.unit.test_dispatcher import T0, FakeClock, seed


class Flaky:
    """A connector that fails transiently while `down`, and records what it took (and when)."""

    name = "erp"
    capabilities = Capabilities()

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.down = True
        self.permanent = False
        self.calls = 0
        self.sent: list[str] = []
        self.at: list[float] = []
        self.clock = clock
        self._lock = threading.Lock()

    def send(self, delivery: Delivery) -> Receipt:
        with self._lock:
            self.calls += 1
            if self.clock is not None:
                self.at.append((self.clock() - T0).total_seconds())
            if self.permanent:
                raise PermanentError("400 the ERP refuses this order", status=400)
            if self.down:
                raise TransientError("503 the ERP is down", status=503)
            self.sent.append(delivery.order_id)
            return Receipt(reference=f"SO-{len(self.sent)}")

    def close(self) -> None:
        pass


def node(store: Any, connector: Flaky, clock: FakeClock, *, batch: int = 3, failures: int = 3) -> Dispatcher:
    return Dispatcher(
        store, {"erp": connector}, {"erp": RetryPolicy(max_attempts=50)},
        DispatchConfig(workers=1, batch=batch, lease_seconds=60, poll_seconds=3600),
        clock=clock, sleep=clock.sleep, rand=lambda: 0.5,
        breakers={"erp": BreakerConfig(failures=failures, open_seconds=60)},
    )


def attempts(store: Any) -> int:
    with store.engine.connect() as c:
        return int(c.execute(select(func.coalesce(func.sum(t.outbox.c.attempts), 0))).scalar_one())


def breaker_events(store: Any) -> list[str]:
    with store.engine.connect() as c:
        return list(c.execute(select(t.events.c.detail).where(t.events.c.kind == "breaker").order_by(t.events.c.id)).scalars())


def test_breaker_opens_holds_probes_reopens_and_closes(store: Any, caplog: Any) -> None:
    seed(store, 12)
    clock = FakeClock()
    erp = Flaky()
    d = node(store, erp, clock)
    caplog.set_level(logging.WARNING, logger="gateway.dispatch.worker")

    assert d.run_once().claimed == 3  # three transient failures in a row: it opens
    assert breakers.states(store)["erp"].state == "open"
    clock.advance(30)  # the retries are due, the breaker is not: nothing claimed, no attempt used
    assert d.run_once().claimed == 0
    assert attempts(store) == 3 and erp.calls == 3
    assert d._next_due() == T0 + dt.timedelta(seconds=60)  # it waits for the probe, it does not spin

    clock.advance(31)  # open_seconds passed: exactly one probe, which fails: open again
    assert d.run_once().claimed == 1
    assert erp.calls == 4 and attempts(store) == 4
    assert breakers.states(store)["erp"].state == "open"
    assert d.run_once().claimed == 0

    clock.advance(61)
    erp.down = False  # the probe succeeds: closed, and then everything goes
    assert d.run_once().claimed == 1
    closed = breakers.states(store)["erp"]
    assert (closed.state, closed.failures, closed.retry_at) == ("closed", 0, None)
    d.drain()
    assert sorted(erp.sent) == sorted(set(erp.sent)) and len(erp.sent) == 12
    assert attempts(store) == 4 + 12
    history = breaker_events(store)
    assert [h.split(":")[0] for h in history] == [
        "breaker of erp opened after 3 transient failures in a row; no sends for 60 s",
        "breaker of erp opened again",
        "breaker of erp closed",
    ]
    assert [r.getMessage() for r in caplog.records if r.name == "gateway.dispatch.worker"] == history


def test_only_transient_failures_in_a_row_count(store: Any) -> None:
    seed(store, 8)
    clock = FakeClock()
    erp = Flaky()
    d = node(store, erp, clock, batch=2)
    d.run_once()  # two failures
    erp.permanent = True  # the target answers (400): it is up, the count starts again
    d.run_once()
    erp.permanent = False
    d.run_once()  # two failures again: still closed (3 needed in a row)
    b = breakers.states(store)["erp"]
    assert (b.state, b.failures) == ("closed", 2)


def test_two_nodes_share_one_breaker(store: Any) -> None:
    """Failures seen by either node add up; an open breaker stops both; one node probes."""
    seed(store, 10)
    clock = FakeClock()
    erp = Flaky()
    a, b = node(store, erp, clock, batch=2), node(store, erp, clock, batch=1)
    a.run_once()
    assert breakers.states(store)["erp"].state == "closed"
    b.run_once()  # the third failure in a row, seen by the other node: open for both
    assert breakers.states(store)["erp"].state == "open"
    clock.advance(30)
    assert a.run_once().claimed == 0 and b.run_once().claimed == 0
    clock.advance(31)
    now = clock()
    assert breakers.take_probe(store, "erp", now=now, hold_seconds=60)
    assert not breakers.take_probe(store, "erp", now=now, hold_seconds=60)  # the other node does not probe too
    assert a.run_once().claimed == 0  # the probe is out (held by "another node"): nothing claimed
    clock.advance(61)  # that node died: the probe is taken again once its hold ended
    erp.down = False
    assert b.run_once().claimed == 1
    a.drain()
    assert len(erp.sent) == 10 and breakers.states(store)["erp"].state == "closed"
    snapshot = {"messages": {}, "orders": {}, "outbox": [], "oldest_due_seconds": 0, "exceptions": [], "breakers": {"erp": 0}}
    assert 'gateway_connector_breaker_open{connector="erp"} 0' in exposition(snapshot, {})


def test_rate_limit_spaces_sends_across_threads(store: Any) -> None:
    seed(store, 100)
    clock = FakeClock()
    erp = Flaky(clock)
    erp.down = False
    d = Dispatcher(
        store, {"erp": erp}, {"erp": RetryPolicy()}, DispatchConfig(workers=4, lease_seconds=600, poll_seconds=3600),
        clock=clock, sleep=clock.sleep, rand=lambda: 0.5, rates={"erp": 20.0},
        monotonic=lambda: (clock() - T0).total_seconds(),
    )
    d.drain()
    assert len(set(erp.sent)) == 100
    # The n-th send starts no earlier than n / 20 s after the first one (4 threads share the limit).
    for n, at in enumerate(sorted(erp.at)):
        assert at >= n / 20 - 1e-6, (n, at)
    assert sorted(erp.at)[-1] >= 99 / 20
