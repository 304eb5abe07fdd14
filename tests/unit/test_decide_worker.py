"""The decide worker pool (gateway.processing.decide_worker) when its workers cannot start."""

from __future__ import annotations

import time

from gateway.processing.decide_worker import DecidePool
from tests.support.decide_specs import unreadable_masterdata


def test_workers_that_keep_dying_before_they_are_ready_close_the_pool(caplog) -> None:
    pool = DecidePool(unreadable_masterdata)
    deadline = time.monotonic() + 120
    try:
        while not pool._closed and time.monotonic() < deadline:  # noqa: SLF001 - the state under test
            assert pool.lend() is None  # never a worker that is not ready
            time.sleep(0.05)
        assert pool._closed, "the pool kept starting workers that die"  # noqa: SLF001
        assert pool.lend() is None and pool._all == []  # noqa: SLF001 - decided in process from now on
        assert "keep failing before they are ready" in caplog.text
    finally:
        pool.close()
