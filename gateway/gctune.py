"""The garbage collector set for reading orders in batches.

CPython collects its youngest generation every 700 container allocations by default. Reading
an order allocates thousands (segments, values, their provenance, the pydantic model), and a
chunk of orders waiting for the rules lives through several young collections, so it is
promoted and then rescanned by middle and full collections it never needed: measured with
`bench/bench_rules.py` (3,000 orders, 9 rules), collection took 0.11 ms of the 0.94 ms CPU per
order, nine tenths of the rules' extra cost apart from deciding.

The threshold has to be above what one chunk of orders waiting for the rules keeps alive
(gateway.processing.decide.DECIDE_CHUNK: 50 bench orders of 5-20 lines are about 11,500 tracked
objects), or every chunk still pays a few collections that find nothing to free. Measured again
on 2026-12-07 (5,000 bench orders with the nine rules, gc.callbacks): at 5,000 there were 227
young, 21 middle and 2 full collections costing 0.10 ms per order; at 20,000, 5 young and no
other, 0.006 ms per order (callgrind: 74,000 fewer instructions per order). The cyclic garbage
left waiting is at most those 20,000 objects; `bench/bench_memory.py` showed peak RSS of
`gateway ingest` at most 6 MB higher for a 15 MB file (124 MB against 118 MB).

Called once by `gateway.app.Gateway` when it builds the pipeline (and by the benchmarks, which
build a pipeline of their own).
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "tune_for_batches"]

YOUNG_THRESHOLD = 20_000


def tune_for_batches() -> None:
    """Collect the young generation every YOUNG_THRESHOLD allocations; a process that already
    set a higher threshold (or turned the collector off) keeps its choice."""
    young, middle, old = gc.get_threshold()
    if 0 < young < YOUNG_THRESHOLD:
        gc.set_threshold(YOUNG_THRESHOLD, middle, old)
