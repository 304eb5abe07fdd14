"""Acknowledgements and confirmation e-mails are outbox rows sent by the one dispatcher, on
both databases: a row is claimed once, leases run on the database clock, failures follow the
retry policy, then `dead`, then replay; channels declare whether an unknown error may be
retried (issue 9; issue 14 #12, reliability F18, F19)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.acks.channels import ChannelSet, FolderChannel
from gateway.connector import Receipt
from gateway.retry import RetryPolicy
from gateway.states import DeliveryState
from gateway.store import documents as document_repo
from gateway.store import tables as t
from gateway.store.dead_letters import list_dead, list_dead_documents, replay
from gateway.store.outbox import claim_due, due_count, mark_failed, mark_sent, next_due
from tests.support.documents import documents, send_documents

FAST = RetryPolicy(max_attempts=3, base_seconds=0.001, cap_seconds=0.001)


def add_ack(store: Any, channel: str | None, kind: str = "997", body: bytes = b"ISA*...~", message_id: str = "m-1") -> int:
    with store.begin() as c:
        document_repo.queue(c, message_id, [document_repo.NewDocument(kind, "acme", body, channel, "000000001", held_reason="no channel")])
    return int(documents(store)[-1]["id"])


def row(store: Any, ack_id: int) -> dict[str, Any]:
    return next(r for r in documents(store) if r["id"] == ack_id)


def event_kinds(store: Any) -> list[str]:
    with store.engine.connect() as c:
        return list(c.execute(select(t.events.c.kind).order_by(t.events.c.id)).scalars())


def claim(store: Any, lease: float, policy: RetryPolicy | None = None) -> list[Any]:
    return claim_due(store, lease_seconds=lease, limit=10, connectors=set(), documents=True, document_policy=policy)


def test_a_claimed_row_is_not_claimed_again_until_its_lease_runs_out(store, tmp_path):
    ack_id = add_ack(store, f"folder:{tmp_path}")
    (first,) = claim(store, 0.3)
    assert first.outbox_id == ack_id and first.attempts == 1 and first.is_document and first.body == b"ISA*...~"
    assert claim(store, 0.3) == []
    assert row(store, ack_id)["state"] == "in_flight"
    time.sleep(0.5)
    (rescued,) = claim(store, 30)
    assert rescued.attempts == 2 and "ack_rescued" in event_kinds(store)
    # the first sender's late failure does not undo the second's claim
    assert mark_failed(store, first, error="too late", policy=FAST) == "lost"
    assert mark_sent(store, rescued, Receipt(detail={"sent": "written to x"}))
    assert row(store, ack_id)["state"] == "sent"
    assert not mark_sent(store, first, Receipt(detail={"sent": "written to x"}))  # recorded once


def test_orders_only_dispatchers_leave_documents_alone(store, tmp_path):
    """A node without the ack channels never claims a document (nor waits for one)."""
    add_ack(store, f"folder:{tmp_path}")
    assert claim_due(store, lease_seconds=30, limit=10, connectors={"erp"}) == []
    assert next_due(store, connectors={"erp"}) is None
    assert next_due(store, connectors={"erp"}, documents=True) is not None


def test_a_held_document_is_shown_never_claimed(store):
    ack_id = add_ack(store, None)
    r = row(store, ack_id)
    assert r["state"] == DeliveryState.HELD and r["channel"] == document_repo.NO_CHANNEL and r["error"] == "no channel"
    assert claim(store, 30) == [] and due_count(store) == 0
    assert "ack_held" in event_kinds(store)


def test_leases_follow_the_database_clock_not_the_node_clock(store, tmp_path, monkeypatch):
    """reliability F19: a node whose clock runs an hour ahead takes over nothing early."""
    add_ack(store, f"folder:{tmp_path}")
    claim(store, 60)
    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    monkeypatch.setattr("gateway.store.db.utcnow", lambda: ahead)
    monkeypatch.setattr("gateway.store.utcnow", lambda: ahead)
    assert claim(store, 60) == []
    # the lease ends a minute after the claim, by the database's clock
    lease_end = next_due(store, connectors=set(), documents=True)
    assert lease_end is not None and lease_end < ahead - dt.timedelta(minutes=55)


def test_a_document_queued_by_a_node_whose_clock_runs_ahead_is_due_at_once(store, tmp_path, monkeypatch):
    """reliability F19: the document is due by the database's clock, not the queueing node's
    (whose hour ahead would have held it back an hour)."""
    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    monkeypatch.setattr("gateway.store.db.utcnow", lambda: ahead)
    monkeypatch.setattr("gateway.store.utcnow", lambda: ahead)
    ack_id = add_ack(store, f"folder:{tmp_path}")
    monkeypatch.undo()
    (got,) = claim(store, 60)
    assert got.outbox_id == ack_id


def test_a_crash_loop_ends_dead_not_resent_forever(store, tmp_path):
    ack_id = add_ack(store, f"folder:{tmp_path}")
    policy = RetryPolicy(max_attempts=2)
    for _ in range(2):
        assert claim(store, 0.05, policy)
        time.sleep(0.1)  # the sender "dies" holding the claim
    assert claim(store, 0.05, policy) == []
    r = row(store, ack_id)
    assert r["state"] == "dead" and "never finished" in r["error"]


def test_transient_failures_retry_then_dead_then_replay_sends_it(store, tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the outbound folder should be")
    ack_id = add_ack(store, f"folder:{blocked}")
    retried = dead = 0
    for _ in range(10):
        got = send_documents(store, policy=FAST)
        retried += got.retried
        dead += got.dead
        if got.dead:
            break
        time.sleep(0.01)
    assert (retried, dead) == (2, 1)  # an unknown OSError: retried (a folder write is idempotent)
    r = row(store, ack_id)
    assert r["state"] == "dead" and r["attempts"] == 3 and "gave up after 3" in r["error"]
    (dead_doc,) = list_dead_documents(store)
    assert dead_doc.outbox_id == ack_id and dead_doc.kind == "997" and dead_doc.what == "997 000000001 for acme"
    assert list_dead(store) == []  # not an order's dead letter

    blocked.unlink()
    assert replay(store, [ack_id]) == 1
    assert send_documents(store, policy=FAST).sent == 1
    r = row(store, ack_id)
    assert r["state"] == "sent" and r["attempts"] == 1
    assert [f.name for f in blocked.iterdir()] == [f"997-000000001-{ack_id}.x12"]
    assert list_dead_documents(store) == []
    kinds = event_kinds(store)
    assert kinds.count("ack_retry") == 2 and "ack_dead" in kinds and "ack_replayed" in kinds and kinds[-1] == "ack_sent"


def test_a_channel_no_longer_configured_is_a_dead_letter_at_once(store):
    ack_id = add_ack(store, "sftp:gone")
    got = send_documents(store, policy=FAST)
    assert (got.claimed, got.dead, got.retried) == (1, 1, 0)
    assert "not configured" in row(store, ack_id)["error"]


def test_an_unknown_error_from_a_mail_channel_is_not_retried(store, tmp_path, monkeypatch):
    """A second e-mail cannot be taken back: an unknown failure dead-letters it."""
    ack_id = add_ack(store, "mail:edi@partner.example")

    def boom(self: Any, ack: Any) -> str:
        raise RuntimeError("the library broke")

    monkeypatch.setattr("gateway.acks.channels.MailAckChannel.send", boom)
    smtp = type("Smtp", (), {"from_address": "x@y.example", "from_domain": "y.example", "envelope_from": ""})()
    got = send_documents(store, smtp=smtp, policy=FAST)
    assert (got.dead, got.retried) == (1, 0)
    assert "RuntimeError" in row(store, ack_id)["error"]


def test_channels_are_built_from_the_row_and_refuse_unknown_ones(tmp_path: Path):
    channels = ChannelSet([], smtp=None)
    assert isinstance(channels.get(f"folder:{tmp_path}"), FolderChannel)
    assert channels.idempotent(f"folder:{tmp_path}") and not channels.idempotent("smtp")
    from gateway.errors import ConfigError

    for bad in ("smtp", "mail:a@b.example", "sftp:nobody", "ftp:x", "-"):
        with pytest.raises(ConfigError):
            channels.get(bad)


def test_a_document_never_moves_its_orders_state(store, tmp_path):
    """An 855 that dies is the 855's dead letter: its order stays as its own deliveries left it."""
    import uuid

    from sqlalchemy import insert

    mid, oid = str(uuid.uuid4()), str(uuid.uuid4())
    now = dt.datetime.now(dt.UTC)
    with store.begin() as c:
        c.execute(insert(t.messages).values(id=mid, received_at=now, updated_at=now, source="t", sha256=uuid.uuid4().hex * 2, size=1, state="parsed", warnings=[], attempts=1, order_count=1, rejected_count=0))
        c.execute(insert(t.orders).values(id=oid, message_id=mid, doc_index=0, created_at=now, updated_at=now, channel="x12", state="dispatched", line_count=1, data={}))
        document_repo.queue(c, mid, [document_repo.NewDocument("855", "acme", b"ISA~", "sftp:gone", "000000007", order_id=oid)])
    assert send_documents(store, policy=FAST).dead == 1
    with store.engine.connect() as c:
        assert c.execute(select(t.orders.c.state).where(t.orders.c.id == oid)).scalar_one() == "dispatched"
    (dead_doc,) = list_dead_documents(store)
    assert replay(store, [dead_doc.outbox_id]) == 1
    with store.engine.connect() as c:
        assert c.execute(select(t.orders.c.state).where(t.orders.c.id == oid)).scalar_one() == "dispatched"


def test_one_pass_sends_orders_and_documents_each_once_and_settles_only_orders(store, tmp_path):
    """One dispatcher, one pass: 40 orders to an in-memory target (every 7th send fails for now)
    and 40 acknowledgements to a folder; each order is delivered once and `dispatched`, each
    acknowledgement written once; documents never count towards an order's state."""
    import uuid

    from sqlalchemy import insert

    from connectors.targets.memory.config import MemoryTargetConfig
    from connectors.targets.memory.connector import MemoryConnector
    from gateway.config import DispatchConfig
    from gateway.dispatch.worker import Dispatcher
    from gateway.store.outbox import new_deliveries

    now = dt.datetime.now(dt.UTC)
    order_ids = []
    with store.begin() as c:
        for i in range(40):
            mid, oid = str(uuid.uuid4()), str(uuid.uuid4())
            c.execute(insert(t.messages).values(id=mid, received_at=now, updated_at=now, source="t", sha256=uuid.uuid4().hex * 2, size=1, state="parsed", warnings=[], attempts=1, order_count=1, rejected_count=0))
            c.execute(insert(t.orders).values(id=oid, message_id=mid, doc_index=0, created_at=now, updated_at=now, channel="x12", po_number=f"PO-{i}", state="validated", line_count=1, data={"po_number": f"PO-{i}", "lines": [{"sku": "W", "quantity": "1"}]}))
            c.execute(insert(t.outbox), new_deliveries(oid, ["erp"], now))
            document_repo.queue(c, mid, [document_repo.NewDocument("855", "acme", f"ISA*855*{i}~".encode(), f"folder:{tmp_path / 'out'}", f"{i + 1:09d}", order_id=oid)])
            order_ids.append(oid)
    target = MemoryConnector(MemoryTargetConfig(name="erp", fail_every=7))
    d = Dispatcher(
        store, {"erp": target}, {"erp": FAST}, DispatchConfig(workers=4, poll_seconds=0.01),
        channels=ChannelSet([], None), document_policy=FAST,
    )
    try:
        stats = d.run_until_idle(timeout=30)
    finally:
        d.close()
    assert stats.idle and stats.dead == 0 and stats.retried >= 5
    assert len(target.orders) == 40 and target.duplicates() == {}
    files = sorted((tmp_path / "out").iterdir())
    assert len(files) == 40 and sorted(f.read_bytes() for f in files) == sorted(f"ISA*855*{i}~".encode() for i in range(40))
    with store.engine.connect() as c:
        states = c.execute(select(t.orders.c.state)).scalars().all()
        rows = c.execute(select(t.outbox.c.kind, t.outbox.c.state)).all()
    assert set(states) == {"dispatched"}
    assert sorted(r.kind for r in rows) == ["855"] * 40 + ["order"] * 40 and {r.state for r in rows} == {"sent"}
