"""The garbage collector set for reading orders in batches.

CPython collects its youngest generation every 700 container allocations by default. Reading
an order allocates thousands (segments, values, their provenance, the pydantic model), and a
chunk of orders waiting for the rules lives through several young collections, so it is
promoted and then rescanned by middle and full collections it never needed: measured with
`bench/bench_rules.py` (3,000 orders, 9 rules), collection took 0.11 ms of the 0.94 ms CPU per
order, nine tenths of the rules' extra cost apart from deciding. With young collections every
5,000 allocations it took 0.003-0.03 ms; the cyclic garbage left waiting is at most those
5,000 objects.

Called once by `gateway.app.Gateway` when it builds the pipeline (and by the benchmarks, which
build a pipeline of their own).
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "tune_for_batches"]

YOUNG_THRESHOLD = 5000


def tune_for_batches() -> None:
    """Collect the young generation every YOUNG_THRESHOLD allocations; a process that already
    set a higher threshold (or turned the collector off) keeps its choice."""
    young, middle, old = gc.get_threshold()
    if 0 < young < YOUNG_THRESHOLD:
        gc.set_threshold(YOUNG_THRESHOLD, middle, old)
