"""The assembled gateway: acknowledgement order, store outages, one node per SQLite store."""

from __future__ import annotations

import os
from contextlib import contextmanager

import pytest

from gateway.app import Gateway
from gateway.config import load_config
from gateway.errors import GatewayError, StoreUnavailable
from gateway.gctune import YOUNG_THRESHOLD
from tests.support.x12gen import file_with_orders


def config(tmp_path):
    p = tmp_path / "gateway.yaml"
    p.write_text(
        f"""\
store: {{url: "sqlite:///{tmp_path / 'gw.db'}"}}
sources:
  - {{type: folder, name: inbox, path: {tmp_path / 'inbox'}, stable_seconds: 0, poll_seconds: 0.1}}
connectors:
  - {{type: file, name: outbox, path: {tmp_path / 'out'}}}
"""
    )
    return load_config(p)


def test_store_unavailable_acknowledges_nothing_then_recovers(tmp_path, monkeypatch):
    gw = Gateway(config(tmp_path))
    try:
        (tmp_path / "inbox").mkdir(exist_ok=True)
        (tmp_path / "inbox" / "po.edi").write_bytes(file_with_orders(["PO-1"]))

        @contextmanager
        def down():
            raise StoreUnavailable("the store is unavailable: disk I/O error")
            yield  # pragma: no cover

        monkeypatch.setattr(gw.store, "begin", down)
        received, _ = gw.poll_sources()  # logs, does not raise
        assert received == 0
        assert os.listdir(tmp_path / "inbox") == ["po.edi"]  # not acknowledged
        assert os.listdir(tmp_path / "archive") == []
        monkeypatch.undo()
        gw.run_until_idle(10)
        assert os.listdir(tmp_path / "inbox") == []
        assert len(os.listdir(tmp_path / "out")) == 1
    finally:
        gw.close()


def test_second_node_on_one_sqlite_store_is_refused(tmp_path):
    first, second = Gateway(config(tmp_path)), Gateway(config(tmp_path))
    try:
        first.start_node()
        with pytest.raises(GatewayError, match="another gateway is already running"):
            second.start_node()
    finally:
        first.close()
        second.close()
    third = Gateway(config(tmp_path))
    try:
        third.start_node()  # the lock went with the first node
    finally:
        third.close()


def test_leases_of_a_dead_node_are_released_at_start(tmp_path):
    from sqlalchemy import select

    from gateway.store import tables as t
    from gateway.store import utcnow

    gw = Gateway(config(tmp_path))
    (tmp_path / "inbox").mkdir(exist_ok=True)
    (tmp_path / "inbox" / "po.edi").write_bytes(file_with_orders(["PO-1"]))
    gw.poll_sources()
    with gw.store.begin() as c:  # as if a node died mid-processing
        import datetime as dt

        c.execute(t.messages.update().values(lease_until=utcnow() + dt.timedelta(hours=1)))
    gw.close()
    gw = Gateway(config(tmp_path))
    try:
        gw.start_node()
        assert gw.process().messages == 1
        with gw.store.engine.connect() as c:
            assert c.execute(select(t.events.c.kind).where(t.events.c.kind == "recovered")).scalar() == "recovered"
    finally:
        gw.close()


@pytest.fixture
def gc_threshold():
    import gc

    saved = gc.get_threshold()
    yield gc
    gc.set_threshold(*saved)


def test_the_pipeline_collects_young_garbage_less_often(tmp_path, gc_threshold):
    """gateway.gctune: the default young threshold (700) rescans chunks of orders waiting for the
    rules; a gateway reading orders raises it, and keeps a higher one a deployment chose."""
    gc_threshold.set_threshold(700, 10, 10)
    gw = Gateway(config(tmp_path))
    try:
        assert gw.pipeline is not None
        assert gc_threshold.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
        gc_threshold.set_threshold(50_000, 10, 10)
        from gateway.gctune import tune_for_batches

        tune_for_batches()
        assert gc_threshold.get_threshold()[0] == 50_000
        gc_threshold.set_threshold(0)  # turned off by the operator (PYTHON... or a wrapper): stays off
        tune_for_batches()
        assert gc_threshold.get_threshold()[0] == 0
    finally:
        gw.close()
