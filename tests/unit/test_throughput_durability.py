"""Issue 14 throughput: fewer fsyncs and commits without weakening the promises.

- Only processing runs with relaxed durability (Store.redoable); every commit that comes
  before an acknowledgement to the outside world stays synchronous=FULL, also on a pooled
  connection that just served a relaxed transaction (reliability P1).
- Files of one poll are committed in groups; none is acknowledged before its group's commit,
  and a failed commit acknowledges none of the group (reliability P1, F-rows on store faults).
- process_pending claims several messages per transaction and gives back what it did not
  process when it stops early.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors.sources.folder.config import FolderSourceConfig
from connectors.sources.folder.source import FolderSource
from gateway.connector import RawMessage
from gateway.errors import StoreUnavailable
from gateway.ingest import Stored, ingest
from gateway.pipeline import Pipeline
from gateway.store import Store
from gateway.store import tables as t
from tests.support.x12gen import file_with_orders


def _sync_level(store: Store) -> int:
    with store.begin() as conn:
        return int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())


def test_only_redoable_transactions_relax_durability_and_a_pooled_connection_returns_to_full(tmp_path):
    """issue 14 throughput, reliability P1: the commit before an ack is never NORMAL."""
    store = Store(f"sqlite:///{tmp_path / 'g.db'}")
    try:
        assert _sync_level(store) == 2  # FULL
        with store.redoable():
            assert _sync_level(store) == 1  # NORMAL, processing only
        assert _sync_level(store) == 2  # the same pooled connection, FULL again
        with store.redoable(), store.begin() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"  # NORMAL is safe only in WAL
    finally:
        store.dispose()


def test_receiving_and_claiming_run_full_while_processing_runs_normal(tmp_path):
    """issue 14 throughput: receive (before the source ack) is FULL; process is NORMAL."""
    store = Store(f"sqlite:///{tmp_path / 'g.db'}")
    seen: list[tuple[str, int]] = []
    from sqlalchemy import event

    @event.listens_for(store.engine, "commit")
    def _on_commit(conn):  # type: ignore[no-untyped-def]
        seen.append(("commit", int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())))

    try:
        p = Pipeline(store, connectors=["erp"])
        r = p.receive(RawMessage(body=file_with_orders(["PO-1"]), source="t", source_ref="/in/a", display_name="a.edi"))
        assert [lvl for _, lvl in seen] == [2]
        seen.clear()
        p.process(r.message_id)
        assert seen and all(lvl == 1 for _, lvl in seen)
        seen.clear()
        assert _sync_level(store) == 2
        # A mailbox routes the mail by the outcome right after: that processing is FULL.
        r2 = p.receive(RawMessage(body=file_with_orders(["PO-2"], icn="000000002"), source="t", source_ref="/in/b", display_name="b.edi"))
        seen.clear()
        p.process(r2.message_id, durable=True)
        assert seen and all(lvl == 2 for _, lvl in seen)
    finally:
        store.dispose()


def _folder(tmp_path: Path) -> FolderSource:
    cfg = FolderSourceConfig(name="drop", path=tmp_path / "inbox", archive=tmp_path / "archive", failed=tmp_path / "failed", stable_seconds=0)
    return FolderSource(cfg)


def test_a_group_is_acknowledged_only_after_its_commit_and_not_at_all_when_it_fails(tmp_path):
    """issue 14 throughput, reliability P1: grouped commits keep ack-after-commit."""
    src = _folder(tmp_path)
    for i in range(40):
        (tmp_path / "inbox" / f"f{i:02d}.edi").write_bytes(b"ISA %d" % i)
    list(src.poll())  # first sight (a file is taken at the second look with stable_seconds 0 only when non-empty: already so)
    committed: list[list[str]] = []
    moved_at_commit: list[int] = []

    def single(raw: RawMessage) -> Stored:
        raise AssertionError("a folder source commits in groups")

    def many(raws: list[RawMessage]) -> list[Stored]:
        moved_at_commit.append(len(os.listdir(tmp_path / "archive")))
        committed.append([r.display_name for r in raws])
        if len(committed) == 2:
            raise StoreUnavailable("disk full")
        return [Stored(f"id-{r.display_name}") for r in raws]

    with pytest.raises(StoreUnavailable):
        ingest(src, single, store_many=many)
    assert [len(g) for g in committed] == [32, 8]
    assert moved_at_commit == [0, 32]  # nothing moved before its own group's commit
    assert sorted(os.listdir(tmp_path / "inbox")) == [f"f{i:02d}.edi" for i in range(32, 40)]  # the failed group: none acked
    committed.clear()
    stats = ingest(src, single, store_many=lambda raws: [Stored(f"id-{r.display_name}") for r in raws])
    assert stats.received == 8 and os.listdir(tmp_path / "inbox") == []


def test_process_pending_claims_a_group_and_releases_what_it_did_not_process(tmp_path, monkeypatch):
    """issue 14 throughput: one claim for several messages; none left leased when it stops."""
    store = Store(f"sqlite:///{tmp_path / 'g.db'}")
    try:
        p = Pipeline(store, connectors=["erp"])
        ids = [
            p.receive(RawMessage(body=file_with_orders([f"PO-{i}"], icn=f"{i + 1:09d}"), source="t", source_ref=f"/in/{i}", display_name=f"{i}.edi")).message_id
            for i in range(5)
        ]
        real = p.process
        calls: list[str] = []

        def failing(mid: str, **kw):  # type: ignore[no-untyped-def]
            calls.append(mid)
            if len(calls) == 3:
                raise StoreUnavailable("lost the store")
            return real(mid, **kw)

        monkeypatch.setattr(p, "process", failing)
        with pytest.raises(StoreUnavailable):
            p.process_pending()
        with store.engine.connect() as c:
            state = {r.id: (r.state, r.lease_until) for r in c.execute(select(t.messages.c.id, t.messages.c.state, t.messages.c.lease_until))}
        assert [state[i][0] for i in ids[:2]] == ["parsed", "parsed"]
        assert state[ids[2]] == ("received", state[ids[2]][1]) and state[ids[2]][1] is not None  # its own lease, as before
        assert [state[i] for i in ids[3:]] == [("received", None), ("received", None)]  # released at once
        monkeypatch.setattr(p, "process", real)
        assert p.process_pending().messages == 2
    finally:
        store.dispose()
