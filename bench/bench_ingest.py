"""Ingest throughput: orders/s from raw X12 bytes to stored, validated, queued orders.

Runs the same path as `gateway ingest` (Pipeline.receive + Pipeline.process: parse, map,
validate, de-duplicate, write orders + outbox rows + history events in batches) into a fresh
SQLite store (WAL, synchronous=FULL) and, with --pg URL, into PostgreSQL.

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
from gateway.pipeline import Pipeline  # noqa: E402
from gateway.store import Store  # noqa: E402


def run(url: str, edi: Path, connectors: int, provenance: bool = True) -> tuple[float, int]:
    store = Store(url)
    pipe = Pipeline(store, connectors=[f"c{i}" for i in range(connectors)], batch_orders=500, provenance=provenance)
    body = edi.read_bytes()
    started = time.perf_counter()
    result = pipe.receive(RawMessage(body=body, source="bench", source_ref=str(edi), display_name=edi.name))
    stats = pipe.process(result.message_id)
    elapsed = time.perf_counter() - started
    store.dispose()
    return elapsed, stats.orders


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=10_000)
    ap.add_argument("--connectors", type=int, default=1, help="outbox rows per order")
    ap.add_argument("--pg", default=None, help="also measure this PostgreSQL URL (an empty database)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        edi = Path(tmp) / "orders.edi"
        generate(edi, interchanges=max(1, args.orders // 10), per_interchange=10)
        secs, n = run(f"sqlite:///{tmp}/bench.db", edi, args.connectors)
        print(f"ingest sqlite, field provenance on (default): {n} orders in {secs:.2f} s = {n / secs:,.0f} orders/s")
        secs, n = run(f"sqlite:///{tmp}/bench2.db", edi, args.connectors, provenance=False)
        print(f"ingest sqlite, processing.provenance off: {n} orders in {secs:.2f} s = {n / secs:,.0f} orders/s (target >= 2,000)")
        if args.pg:
            secs, n = run(args.pg, edi, args.connectors)
            print(f"ingest postgresql: {n} orders in {secs:.2f} s = {n / secs:,.0f} orders/s")


if __name__ == "__main__":
    main()
