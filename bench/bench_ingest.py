"""Ingest throughput: orders/s from raw X12 bytes to stored, validated, queued orders.

Runs the same path as `gateway ingest` (Pipeline.receive + Pipeline.process: parse, map,
validate, de-duplicate, write orders + outbox rows + history events in batches) into a fresh
SQLite store (WAL, synchronous=FULL) and, with --pg URL, into PostgreSQL. Prints the
default-settings figure (field provenance on) next to the target, the provenance-off figure
after it, and the CPU time per order of each run: on a shared machine the wall-clock rate
says as much about the neighbours as about the gateway, the CPU time does not. Each is the
best of --repeat runs (the first run of a process also pays for first-time imports and
allocations).

X12 orders' sources are not stored with them but read again from the message when asked
(gateway.provenance), so for this input "provenance on" and "off" write the same rows.

    .venv/bin/python bench/bench_ingest.py [--orders 10000] [--pg postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_x12 import generate  # noqa: E402
from gateway.connector import RawMessage  # noqa: E402
from gateway.gctune import tune_for_batches  # noqa: E402
from gateway.pipeline import Pipeline  # noqa: E402
from gateway.store import Store  # noqa: E402


def run(url: str, edi: Path, connectors: int, provenance: bool = True) -> tuple[float, float, int]:
    store = Store(url)
    pipe = Pipeline(store, connectors=[f"c{i}" for i in range(connectors)], batch_orders=500, provenance=provenance)
    body = edi.read_bytes()
    started, cpu = time.perf_counter(), time.process_time()
    result = pipe.receive(RawMessage(body=body, source="bench", source_ref=str(edi), display_name=edi.name))
    stats = pipe.process(result.message_id, body=body)  # as `gateway ingest` does
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    store.dispose()
    return elapsed, cpu, stats.orders


def line(label: str, secs: float, cpu: float, n: int, target: str = "") -> str:
    return (
        f"{label}: {n} orders in {secs:.2f} s = {n / secs:,.0f} orders/s{target}; "
        f"CPU {cpu / n * 1e3:.3f} ms/order (= {n / cpu:,.0f} orders per CPU-second)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=10_000)
    ap.add_argument("--connectors", type=int, default=1, help="outbox rows per order")
    ap.add_argument("--pg", default=None, help="also measure this PostgreSQL URL (an empty database)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each SQLite figure; the fastest counts")
    args = ap.parse_args()
    tune_for_batches()  # as gateway.app.Gateway does when it builds its pipeline
    with tempfile.TemporaryDirectory() as tmp:
        edi = Path(tmp) / "orders.edi"
        generate(edi, interchanges=max(1, args.orders // 10), per_interchange=10)
        for label, provenance, target in (
            ("ingest sqlite, default settings (field provenance on)", True, " (target >= 2,000 on a quiet machine)"),
            ("ingest sqlite, processing.provenance off", False, ""),
        ):
            runs = [run(f"sqlite:///{tmp}/bench-{provenance}-{i}.db", edi, args.connectors, provenance=provenance) for i in range(args.repeat)]
            secs, cpu, n = min(runs)
            print(line(label, secs, cpu, n, target) + f"; slowest of {len(runs)}: {n / max(r[0] for r in runs):,.0f} orders/s")
        if args.pg:
            secs, cpu, n = run(args.pg, edi, args.connectors)
            print(line("ingest postgresql, default settings", secs, cpu, n, " (target >= 2,000 on a quiet machine)"))


if __name__ == "__main__":
    main()
