"""The acknowledgement queue and sender on both databases: a row is claimed once, leases run
on the database clock, failures follow the retry policy, then `dead`, then replay; channels
declare whether an unknown error may be retried (issue 14 #12, reliability F18, F19)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from gateway.acks.channels import ChannelSet, FolderChannel
from gateway.acks.delivery import AckSender, AckStats
from gateway.retry import RetryPolicy
from gateway.store import ack_queue as queue
from gateway.store import tables as t
from gateway.store import utcnow

FAST = RetryPolicy(max_attempts=3, base_seconds=0.001, cap_seconds=0.001)


def add_ack(store: Any, channel: str, kind: str = "997", body: str = "ISA*...~") -> int:
    with store.begin() as c:
        return int(
            c.execute(
                insert(t.acks).values(created_at=utcnow(), partner="acme", kind=kind, control_number="000000001", body=body, state="pending", channel=channel)
            ).inserted_primary_key[0]
        )


def row(store: Any, ack_id: int) -> dict[str, Any]:
    with store.engine.connect() as c:
        return dict(c.execute(select(t.acks).where(t.acks.c.id == ack_id)).mappings().one())


def event_kinds(store: Any) -> list[str]:
    with store.engine.connect() as c:
        return list(c.execute(select(t.events.c.kind).order_by(t.events.c.id)).scalars())


def test_a_claimed_row_is_not_claimed_again_until_its_lease_runs_out(store, tmp_path):
    ack_id = add_ack(store, f"folder:{tmp_path}")
    (first,) = queue.claim_due(store, lease_seconds=0.3, limit=10)
    assert first.id == ack_id and first.attempts == 1
    assert queue.claim_due(store, lease_seconds=0.3, limit=10) == []
    assert row(store, ack_id)["state"] == "in_flight"
    time.sleep(0.5)
    (rescued,) = queue.claim_due(store, lease_seconds=30, limit=10)
    assert rescued.attempts == 2 and "ack_rescued" in event_kinds(store)
    # the first sender's late failure does not undo the second's claim
    assert queue.mark_failed(store, first, "too late", permanent=False) == "stale"
    assert queue.mark_sent(store, rescued, "written to x")
    assert row(store, ack_id)["state"] == "sent"
    assert not queue.mark_sent(store, first, "written to x")  # recorded once


def test_leases_follow_the_database_clock_not_the_node_clock(store, tmp_path, monkeypatch):
    """reliability F19: a node whose clock runs an hour ahead takes over nothing early."""
    add_ack(store, f"folder:{tmp_path}")
    queue.claim_due(store, lease_seconds=60, limit=10)
    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    monkeypatch.setattr("gateway.store.db.utcnow", lambda: ahead)
    monkeypatch.setattr("gateway.store.utcnow", lambda: ahead)
    assert queue.claim_due(store, lease_seconds=60, limit=10) == []
    assert queue.due_count(store) == 0


def test_a_crash_loop_ends_dead_not_resent_forever(store, tmp_path):
    ack_id = add_ack(store, f"folder:{tmp_path}")
    policy = RetryPolicy(max_attempts=2)
    for _ in range(2):
        assert queue.claim_due(store, lease_seconds=0.05, limit=10, policy=policy)
        time.sleep(0.1)  # the sender "dies" holding the claim
    assert queue.claim_due(store, lease_seconds=0.05, limit=10, policy=policy) == []
    r = row(store, ack_id)
    assert r["state"] == "dead" and "never finished" in r["error"]


def test_transient_failures_retry_then_dead_then_replay_sends_it(store, tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the outbound folder should be")
    ack_id = add_ack(store, f"folder:{blocked}")
    sender = AckSender(store, policy=FAST)
    stats = AckStats()
    for _ in range(10):
        got = sender.run_once()
        stats.retried += got.retried
        stats.dead += got.dead
        if got.dead:
            break
        time.sleep(0.01)
    assert (stats.retried, stats.dead) == (2, 1)  # an unknown OSError: retried (a folder write is idempotent)
    r = row(store, ack_id)
    assert r["state"] == "dead" and r["attempts"] == 3 and "gave up after 3" in r["error"]
    (dead,) = queue.list_dead(store)
    assert dead.id == ack_id and dead.kind == "997"

    blocked.unlink()
    assert queue.replay(store, [ack_id]) == 1
    assert sender.run_once().sent == 1
    r = row(store, ack_id)
    assert r["state"] == "sent" and r["attempts"] == 1
    assert [f.name for f in blocked.iterdir()] == [f"997-000000001-{ack_id}.x12"]
    assert queue.list_dead(store) == []
    kinds = event_kinds(store)
    assert kinds.count("ack_retry") == 2 and "ack_dead" in kinds and "ack_replayed" in kinds and kinds[-1] == "ack_sent"


def test_a_channel_no_longer_configured_is_a_dead_letter_at_once(store):
    ack_id = add_ack(store, "sftp:gone")
    assert AckSender(store, policy=FAST).run_once() == AckStats(dead=1)
    assert "not configured" in row(store, ack_id)["error"]


def test_an_unknown_error_from_a_mail_channel_is_not_retried(store, tmp_path, monkeypatch):
    """A second e-mail cannot be taken back: an unknown failure dead-letters it."""
    ack_id = add_ack(store, "mail:edi@partner.example")

    def boom(self: Any, ack: Any) -> str:
        raise RuntimeError("the library broke")

    monkeypatch.setattr("gateway.acks.channels.MailAckChannel.send", boom)
    smtp = type("Smtp", (), {"from_address": "x@y.example", "from_domain": "y.example", "envelope_from": ""})()
    assert AckSender(store, smtp=smtp, policy=FAST).run_once() == AckStats(dead=1)
    assert "RuntimeError" in row(store, ack_id)["error"]


def test_channels_are_built_from_the_row_and_refuse_unknown_ones(tmp_path: Path):
    channels = ChannelSet([], smtp=None)
    assert isinstance(channels.get(f"folder:{tmp_path}"), FolderChannel)
    from gateway.errors import ConfigError

    for bad in ("smtp", "mail:a@b.example", "sftp:nobody", "ftp:x"):
        with pytest.raises(ConfigError):
            channels.get(bad)
