"""The outbox state machine on both backends: claim, lease, sent, retry, dead, replay, events."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from gateway.connector import Receipt
from gateway.retry import RetryPolicy
from gateway.store import as_utc
from gateway.store import tables as t
from gateway.store.dead_letters import list_dead, replay
from gateway.store.outbox import (
    Sent,
    claim_due,
    idempotency_key,
    mark_dead,
    mark_failed,
    mark_sent,
    new_deliveries,
    next_due,
    record,
)

T0 = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
LEASE = 60.0


def seed(store: Any, *, connectors: tuple[str, ...] = ("erp",), po: str = "PO-1", at: dt.datetime = T0) -> str:
    """A message, a validated order and its outbox rows, written the way the pipeline does."""
    mid, oid = str(uuid.uuid4()), str(uuid.uuid4())
    with store.begin() as conn:
        conn.execute(
            insert(t.messages).values(
                id=mid, received_at=at, updated_at=at, source="test", sha256=uuid.uuid4().hex * 2,
                size=10, state="parsed", warnings=[], attempts=1, order_count=1, rejected_count=0,
            )
        )
        conn.execute(
            insert(t.orders).values(
                id=oid, message_id=mid, doc_index=0, created_at=at, updated_at=at, channel="x12",
                partner="acme", po_number=po, state="validated", line_count=1,
                data={"po_number": po, "lines": [{"sku": "A-1", "quantity": "2"}]},
            )
        )
        conn.execute(insert(t.outbox), new_deliveries(oid, connectors, at))
    return oid


def rows(store: Any, order_id: str | None = None) -> list[Any]:
    q = select(t.outbox).order_by(t.outbox.c.id)
    if order_id:
        q = q.where(t.outbox.c.order_id == order_id)
    with store.engine.connect() as conn:
        return conn.execute(q).all()


def order_state(store: Any, order_id: str) -> str:
    with store.engine.connect() as conn:
        return conn.execute(select(t.orders.c.state).where(t.orders.c.id == order_id)).scalar_one()


def events(store: Any, order_id: str) -> list[tuple[str, str]]:
    with store.engine.connect() as conn:
        return [
            (r.kind, r.detail)
            for r in conn.execute(select(t.events).where(t.events.c.order_id == order_id).order_by(t.events.c.id))
        ]


def kinds(store: Any, order_id: str) -> list[str]:
    return [k for k, _ in events(store, order_id)]


def claim(store: Any, now: dt.datetime = T0, **kw: Any) -> list[Any]:
    kw.setdefault("lease_seconds", LEASE)
    kw.setdefault("limit", 10)
    return claim_due(store, now=now, **kw)


# -- claiming ----------------------------------------------------------------------------------


def test_claim_marks_in_flight_counts_the_attempt_and_commits(store: Any) -> None:
    oid = seed(store)
    [c] = claim(store)
    assert c.order_id == oid and c.connector == "erp" and c.attempts == 1
    assert c.idempotency_key == idempotency_key(oid, "erp")
    assert c.order["po_number"] == "PO-1"
    assert c.lease_until == T0 + dt.timedelta(seconds=LEASE)
    d = c.delivery()
    assert (d.outbox_id, d.order_id, d.attempt, d.idempotency_key) == (c.outbox_id, oid, 1, c.idempotency_key)
    [r] = rows(store)  # read on a fresh connection: the claim is committed before any send
    assert r.state == "in_flight" and r.attempts == 1
    assert as_utc(r.first_attempt_at) == T0
    assert as_utc(r.lease_until) == T0 + dt.timedelta(seconds=LEASE)
    assert kinds(store, oid) == ["attempt"]
    assert "attempt 1 of 8 to erp" in events(store, oid)[0][1]


def test_claim_skips_rows_not_yet_due_and_live_leases(store: Any) -> None:
    seed(store, at=T0 + dt.timedelta(seconds=30))
    assert claim(store) == []
    assert len(claim(store, T0 + dt.timedelta(seconds=30))) == 1
    # held by a live lease: nobody else takes it
    assert claim(store, T0 + dt.timedelta(seconds=60)) == []
    assert next_due(store) == T0 + dt.timedelta(seconds=30 + LEASE)


def test_expired_lease_is_rescued_with_the_same_key(store: Any) -> None:
    oid = seed(store)
    [first] = claim(store)
    later = T0 + dt.timedelta(seconds=LEASE + 1)
    [again] = claim(store, later)
    assert again.outbox_id == first.outbox_id
    assert again.idempotency_key == first.idempotency_key
    assert again.attempts == 2 and again.rescued
    assert again.first_attempt_at == T0  # the age bound counts from the very first attempt
    assert "never finished: its lease expired" in events(store, oid)[-1][1]


def test_rescued_row_whose_attempts_are_used_up_goes_dead(store: Any) -> None:
    """A delivery that kills the worker every time stops after max_attempts (crash loop)."""
    oid = seed(store)
    policy = RetryPolicy(max_attempts=2)
    now = T0
    for _ in range(2):
        assert len(claim(store, now, policies={"erp": policy})) == 1
        now += dt.timedelta(seconds=LEASE + 1)  # the worker died; the lease runs out
    assert claim(store, now, policies={"erp": policy}) == []
    [r] = rows(store)
    assert r.state == "dead" and r.attempts == 2
    assert "never finished" in r.last_error
    assert order_state(store, oid) == "dead"


def test_claim_respects_limit_and_connector_filter(store: Any) -> None:
    for i in range(3):
        seed(store, connectors=("erp", "shipping"), po=f"PO-{i}")
    assert claim(store, connectors=set()) == []
    got = claim(store, limit=2, connectors={"shipping"})
    assert [c.connector for c in got] == ["shipping", "shipping"]
    rest = claim(store, connectors={"shipping", "erp"})
    assert sorted(c.connector for c in rest) == ["erp", "erp", "erp", "shipping"]
    assert claim(store) == []


def test_naive_datetimes_are_refused(store: Any) -> None:
    with pytest.raises(ValueError, match="timezone"):
        claim_due(store, now=dt.datetime(2026, 1, 1), lease_seconds=1, limit=1)


# -- results -----------------------------------------------------------------------------------


def test_sent_stores_the_receipt_and_dispatches_the_order(store: Any) -> None:
    oid = seed(store)
    [c] = claim(store)
    assert mark_sent(store, c, Receipt(status=201, reference="ERP-7"), now=T0 + dt.timedelta(seconds=1))
    [r] = rows(store)
    assert r.state == "sent" and r.lease_until is None and r.last_status == 201
    assert r.receipt == {"status": 201, "reference": "ERP-7", "detail": {}}
    assert order_state(store, oid) == "dispatched"
    assert kinds(store, oid) == ["attempt", "sent", "dispatched"]
    assert events(store, oid)[1][1] == "HTTP 201 by erp as ERP-7 (attempt 1)"
    assert not mark_sent(store, c, Receipt(status=201), now=T0)  # single shot


def test_order_is_dispatched_only_when_every_row_is_sent(store: Any) -> None:
    oid = seed(store, connectors=("erp", "shipping"))
    erp, ship = sorted(claim(store), key=lambda c: c.connector)
    mark_sent(store, erp, Receipt(status=201), now=T0)
    assert order_state(store, oid) == "validated"
    mark_failed(store, ship, error="HTTP 503 from shipping", status=503, policy=RetryPolicy(), now=T0, rand=lambda: 0.5)
    assert order_state(store, oid) == "validated"
    [again] = claim(store, T0 + dt.timedelta(seconds=5))
    assert again.connector == "shipping"  # only the failed row is retried (F13)
    mark_sent(store, again, Receipt(status=200), now=T0 + dt.timedelta(seconds=5))
    assert order_state(store, oid) == "dispatched"


def test_transient_failure_schedules_a_retry_with_a_readable_event(store: Any) -> None:
    oid = seed(store)
    for _ in range(2):  # two failed attempts, then look at the third
        [c] = claim(store, max(T0, *(as_utc(r.next_attempt_at) for r in rows(store))))
        verdict = mark_failed(
            store, c, error="HTTP 503 from erp", status=503, policy=RetryPolicy(), now=T0, rand=lambda: 1.0
        )
        assert verdict == "retry"
    [r] = rows(store)
    assert r.state == "pending" and r.attempts == 2 and r.last_status == 503
    assert as_utc(r.next_attempt_at) == T0 + dt.timedelta(seconds=4)  # base 2 * 2**1, full jitter at 1.0
    assert events(store, oid)[-1] == ("retry_scheduled", "HTTP 503 from erp; retry 2 of 7 in 4.0 s")


def test_retry_after_is_honoured(store: Any) -> None:
    oid = seed(store)
    [c] = claim(store)
    mark_failed(store, c, error="HTTP 429 from erp", status=429, retry_after=7, policy=RetryPolicy(), now=T0, rand=lambda: 0.0)
    [r] = rows(store)
    assert as_utc(r.next_attempt_at) >= T0 + dt.timedelta(seconds=7)
    assert claim(store, T0 + dt.timedelta(seconds=6.9)) == []
    assert "server asked for 7 s" in events(store, oid)[-1][1]


def test_max_attempts_dead_letters(store: Any) -> None:
    oid = seed(store)
    policy = RetryPolicy(max_attempts=3)
    now = T0
    verdicts = []
    for _ in range(3):
        [c] = claim(store, now)
        verdicts.append(mark_failed(store, c, error="HTTP 502 from erp", status=502, policy=policy, now=now, rand=lambda: 0.0))
    assert verdicts == ["retry", "retry", "dead"]
    [r] = rows(store)
    assert r.state == "dead" and r.attempts == 3
    assert "gave up after 3 attempts (max_attempts 3)" in r.last_error
    assert order_state(store, oid) == "dead"
    assert kinds(store, oid)[-2:] == ["dead", "order_dead"]


def test_max_age_dead_letters(store: Any) -> None:
    oid = seed(store)
    policy = RetryPolicy(max_attempts=100, max_age_seconds=3600)
    [c] = claim(store)
    assert mark_failed(store, c, error="timeout", policy=policy, now=T0, rand=lambda: 0.0) == "retry"
    later = T0 + dt.timedelta(hours=2)
    [c] = claim(store, later)
    assert mark_failed(store, c, error="timeout", policy=policy, now=later, rand=lambda: 0.0) == "dead"
    [r] = rows(store)
    assert "gave up after 2 attempts over 2.0 h (max_age_seconds 3600)" in r.last_error
    assert order_state(store, oid) == "dead"


def test_permanent_failure_is_dead_at_once(store: Any) -> None:
    oid = seed(store)
    [c] = claim(store)
    assert mark_dead(store, c, error="HTTP 400 from erp: unknown SKU A-1", status=400, now=T0)
    [r] = rows(store)
    assert (r.state, r.last_status) == ("dead", 400)
    assert "unknown SKU A-1" in r.last_error and "not retried" in r.last_error
    assert order_state(store, oid) == "dead"
    assert claim(store, T0 + dt.timedelta(days=1)) == []


def test_a_late_worker_cannot_undo_the_worker_that_took_over(store: Any) -> None:
    oid = seed(store)
    [stale] = claim(store)
    [fresh] = claim(store, T0 + dt.timedelta(seconds=LEASE + 1))
    assert mark_failed(store, stale, error="x", policy=RetryPolicy(), now=T0) == "lost"
    assert not mark_dead(store, stale, error="x", now=T0)
    assert rows(store)[0].state == "in_flight"
    assert mark_sent(store, fresh, Receipt(status=201), now=T0)
    assert order_state(store, oid) == "dispatched"


def test_a_late_success_is_still_recorded(store: Any) -> None:
    """The target holds the order: record it even if the lease ran out meanwhile."""
    oid = seed(store)
    [stale] = claim(store)
    claim(store, T0 + dt.timedelta(seconds=LEASE + 1))
    assert mark_sent(store, stale, Receipt(status=201), now=T0)
    assert order_state(store, oid) == "dispatched"



def test_a_group_with_a_row_settled_meanwhile_records_the_others(store: Any) -> None:
    """Results are recorded a group at a time, optimistically: when one row of the group was
    settled by the worker that took it over, the others are still recorded, and the settled
    one keeps its first result (one 'sent' event, not two)."""
    first, second, third = (seed(store, po=f"PO-{i}") for i in range(3))
    stale = {c.order_id: c for c in claim(store)}
    [fresh] = claim(store, T0 + dt.timedelta(seconds=LEASE + 1), limit=1)
    assert mark_sent(store, fresh, Receipt(status=201, reference="taken-over"), now=T0)
    group = [(stale[oid], Sent(Receipt(status=201, reference=f"late-{oid[:4]}"))) for oid in (first, second, third)]
    verdicts = record(store, group, now=T0 + dt.timedelta(seconds=LEASE + 2))
    settled = fresh.order_id
    assert verdicts == ["lost" if oid == settled else "sent" for oid in (first, second, third)]
    for oid in (first, second, third):
        [r] = rows(store, oid)
        assert r.state == "sent" and order_state(store, oid) == "dispatched"
        assert r.receipt["reference"] == ("taken-over" if oid == settled else f"late-{oid[:4]}")
        assert kinds(store, oid).count("sent") == 1


# -- dead letters and replay -------------------------------------------------------------------


def test_list_dead_and_replay(store: Any) -> None:
    dead_oid = seed(store, po="PO-DEAD")
    ok_oid = seed(store, po="PO-OK")
    claims = {c.order_id: c for c in claim(store)}
    mark_dead(store, claims[dead_oid], error="HTTP 400 from erp: bad", status=400, now=T0)
    mark_sent(store, claims[ok_oid], Receipt(status=201), now=T0)

    [dl] = list_dead(store)
    assert (dl.order_id, dl.po_number, dl.partner, dl.connector, dl.attempts, dl.last_status) == (
        dead_oid, "PO-DEAD", "acme", "erp", 1, 400
    )
    assert list_dead(store, connector="other") == []

    later = T0 + dt.timedelta(hours=1)
    assert replay(store, [dl.outbox_id, rows(store, ok_oid)[0].id, 999_999], now=later) == 1  # only dead rows
    [r] = rows(store, dead_oid)
    assert r.state == "pending" and r.attempts == 0 and r.first_attempt_at is None
    assert as_utc(r.next_attempt_at) == later
    assert order_state(store, dead_oid) == "validated"
    assert rows(store, ok_oid)[0].state == "sent"
    assert kinds(store, dead_oid)[-1] == "replayed"
    assert "last error: HTTP 400 from erp: bad" in events(store, dead_oid)[-1][1]

    [c] = claim(store, later)
    assert c.attempts == 1 and c.idempotency_key == idempotency_key(dead_oid, "erp")
    mark_sent(store, c, Receipt(status=201), now=later)
    assert order_state(store, dead_oid) == "dispatched"


def test_replay_all_and_order_stays_dead_while_a_row_is_dead(store: Any) -> None:
    oid = seed(store, connectors=("erp", "shipping"))
    other = seed(store, po="PO-2")
    for c in claim(store):
        mark_dead(store, c, error="nope", now=T0)
    assert order_state(store, oid) == "dead"
    erp_row = next(r for r in rows(store, oid) if r.connector == "erp")
    assert replay(store, [erp_row.id], now=T0) == 1
    assert order_state(store, oid) == "dead"  # shipping is still dead
    assert replay(store, "all", now=T0) == 2
    assert order_state(store, oid) == "validated" and order_state(store, other) == "validated"
    assert list_dead(store) == []
    assert replay(store, "all", now=T0) == 0
    assert replay(store, [], now=T0) == 0


def test_next_due(store: Any) -> None:
    assert next_due(store) is None
    seed(store, at=T0 + dt.timedelta(minutes=5))
    assert next_due(store) == T0 + dt.timedelta(minutes=5)
    assert next_due(store, connectors={"other"}) is None
    with store.begin() as conn:
        conn.execute(update(t.outbox).values(state="sent"))
    assert next_due(store) is None


# -- updates and cancels: ordering behind the previous version ---------------------------------


def seed_change(
    store: Any,
    previous: str,
    *,
    action: str = "update",
    connectors: tuple[str, ...] = ("erp",),
    references: dict[str, str | None] | None = None,
    at: dt.datetime = T0,
) -> str:
    """The next version of `previous` (a change or cancel), queued behind its deliveries."""
    oid = str(uuid.uuid4())
    with store.begin() as conn:
        v1 = conn.execute(select(t.orders).where(t.orders.c.id == previous)).one()
        after = {
            r.connector: r.id
            for r in conn.execute(select(t.outbox).where(t.outbox.c.order_id == previous))
        }
        conn.execute(
            insert(t.orders).values(
                id=oid, message_id=v1.message_id, doc_index=v1.doc_index + 1, created_at=at, updated_at=at,
                channel="x12", partner="acme", po_number=v1.po_number, state="validated", line_count=1,
                version=v1.version + 1,
                supersedes=previous, data={**v1.data, "purpose": action, "lines": [{"sku": "A-1", "quantity": "5"}]},
            )
        )
        conn.execute(
            insert(t.outbox),
            new_deliveries(oid, connectors, at, action=action, after=after, references=references),
        )
    return oid


def test_new_deliveries_carries_action_predecessor_and_reference() -> None:
    now = T0
    [plain] = new_deliveries("o-1", ["erp"], now)
    assert (plain["action"], plain["after_id"], plain["target_reference"]) == ("create", None, None)
    got = new_deliveries(
        "o-2", ["erp", "files", "crm"], now, action="cancel", after={"erp": 7, "files": 8}, references={"erp": "ERP-7"}
    )
    assert [(r["connector"], r["action"], r["after_id"], r["target_reference"]) for r in got] == [
        ("erp", "cancel", 7, "ERP-7"),
        ("files", "cancel", 8, None),
        ("crm", "cancel", None, None),
    ]
    assert {r["idempotency_key"] for r in got} == {idempotency_key("o-2", n) for n in ("erp", "files", "crm")}
    with pytest.raises(ValueError, match="unknown outbox action 'delete'"):
        new_deliveries("o-3", ["erp"], now, action="delete")


def test_update_waits_until_its_predecessor_is_sent_then_takes_its_reference(store: Any) -> None:
    v1 = seed(store)
    v2 = seed_change(store, v1)
    [first] = claim(store)
    assert first.order_id == v1 and first.action == "create"  # the update is not claimed with it
    assert claim(store) == []  # v1 is in flight: v2 still waits
    assert next_due(store) == T0 + dt.timedelta(seconds=LEASE)  # only v1's lease counts
    assert mark_sent(store, first, Receipt(status=201, reference="ERP-7"), now=T0)

    [c] = claim(store, T0 + dt.timedelta(seconds=1))
    assert (c.order_id, c.action, c.target_reference) == (v2, "update", "ERP-7")
    d = c.delivery()
    assert (d.action, d.target_reference, d.order["lines"][0]["quantity"]) == ("update", "ERP-7", "5")
    assert d.idempotency_key == idempotency_key(v2, "erp") != first.idempotency_key  # its own key
    r = rows(store, v2)[0]
    assert (r.state, r.target_reference, r.after_id) == ("in_flight", "ERP-7", first.outbox_id)
    assert events(store, v2)[0] == ("attempt", "update attempt 1 of 8 to erp (target reference ERP-7)")

    assert mark_sent(store, c, Receipt(status=200, reference="ERP-7"), now=T0)
    assert order_state(store, v2) == "dispatched"
    assert events(store, v2)[1] == ("sent", "update: HTTP 200 by erp as ERP-7 (attempt 1)")


def test_a_rescued_update_keeps_its_reference(store: Any) -> None:
    v1 = seed(store)
    [c1] = claim(store)
    mark_sent(store, c1, Receipt(status=201, reference="ERP-1"), now=T0)
    v2 = seed_change(store, v1, action="cancel")
    [c2] = claim(store)
    [again] = claim(store, T0 + dt.timedelta(seconds=LEASE + 1))
    assert (again.order_id, again.action, again.target_reference, again.rescued) == (v2, "cancel", "ERP-1", True)
    assert again.attempts == 2 and again.outbox_id == c2.outbox_id


def test_a_known_reference_is_kept_and_a_missing_one_stays_none(store: Any) -> None:
    v1 = seed(store, connectors=("erp", "files"))
    for c in claim(store):
        mark_sent(store, c, Receipt(status=None, reference=None if c.connector == "files" else "ERP-1"), now=T0)
    v2 = seed_change(store, v1, connectors=("erp", "files"), references={"erp": "ERP-KNOWN"})
    got = {c.connector: c for c in claim(store)}
    assert got["erp"].target_reference == "ERP-KNOWN"  # given by the pipeline: not replaced
    assert got["files"].target_reference is None  # the predecessor's receipt had none
    assert {r.connector: r.target_reference for r in rows(store, v2)} == {"erp": "ERP-KNOWN", "files": None}
    assert sorted(d for k, d in events(store, v2) if k == "attempt") == [
        "update attempt 1 of 8 to erp (target reference ERP-KNOWN)",
        "update attempt 1 of 8 to files",
    ]


def test_versions_reach_a_target_one_after_the_other(store: Any) -> None:
    """v1 create, v2 update, v3 cancel: each waits for the one before, the reference travels on."""
    v1 = seed(store)
    v2 = seed_change(store, v1)
    v3 = seed_change(store, v2, action="cancel")
    order = []
    now = T0
    while True:
        got = claim(store, now)
        if not got:
            break
        assert len(got) == 1  # never two versions of one order in flight at once
        [c] = got
        order.append((c.order_id, c.action, c.target_reference))
        mark_sent(store, c, Receipt(status=200, reference="ERP-1" if c.action == "create" else None), now=now)
        now += dt.timedelta(seconds=1)
    assert order == [(v1, "create", None), (v2, "update", "ERP-1"), (v3, "cancel", None)]


def test_a_dead_predecessor_keeps_the_update_waiting_until_it_is_replayed(store: Any) -> None:
    v1 = seed(store)
    v2 = seed_change(store, v1)
    [c1] = claim(store)
    mark_dead(store, c1, error="HTTP 400 from erp: unknown SKU", status=400, now=T0)
    later = T0 + dt.timedelta(days=1)
    assert claim(store, later) == []
    [r2] = rows(store, v2)
    assert r2.state == "pending" and r2.attempts == 0  # waiting, not a dead letter
    assert [dl.order_id for dl in list_dead(store)] == [v1]
    assert next_due(store) is None  # nothing a dispatcher could do now
    assert order_state(store, v2) == "validated"

    assert replay(store, [c1.outbox_id], now=later) == 1
    [again] = claim(store, later)
    assert again.order_id == v1  # the replayed v1 first, the update still waits
    mark_sent(store, again, Receipt(status=201, reference="ERP-3"), now=later)
    [c2] = claim(store, later)
    assert (c2.order_id, c2.target_reference) == (v2, "ERP-3")


def test_a_predecessor_for_another_connector_does_not_block(store: Any) -> None:
    v1 = seed(store, connectors=("erp", "files"))
    got = {c.connector: c for c in claim(store)}
    mark_sent(store, got["files"], Receipt(status=None, reference="f.json"), now=T0)
    v2 = seed_change(store, v1, connectors=("erp", "files"))
    [c] = claim(store)  # files' v1 is sent, erp's is still in flight
    assert (c.order_id, c.connector, c.target_reference) == (v2, "files", "f.json")


@pytest.mark.postgres
def test_claim_locks_only_outbox_rows_and_skips_locked_ones_on_postgres(pg_url: str) -> None:
    from sqlalchemy import event

    from gateway.store import Store

    store = Store(pg_url)
    try:
        v1 = seed(store)
        seed_change(store, v1)
        seen: list[str] = []
        event.listen(store.engine, "before_cursor_execute", lambda conn, cur, stmt, *a: seen.append(stmt))
        claim(store)
        claims = [s for s in seen if "FOR UPDATE" in s]
        assert len(claims) == 2  # one indexed query per claimable state (in flight, pending)
        for sql in claims:
            assert "FOR UPDATE OF outbox SKIP LOCKED" in sql
            assert "NOT (EXISTS (SELECT" in sql and "FROM outbox AS prev" in sql
    finally:
        store.dispose()
