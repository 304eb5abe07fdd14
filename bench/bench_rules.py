"""What the rules add to ingest: 10,000 X12 orders into SQLite, without and with every built-in
rule over a 50,000-item catalogue (in memory, as `masterdata: {folder: ...}` loads it).

Same path as `gateway ingest` (Pipeline.receive + process). Prints CPU ms per order of each
run and the overhead of the rules (target: at most 20%). On a shared VM these figures move by
30-50% between runs; bench_rules_instructions.py counts the same runs in instructions. The
catalogue holds every SKU the orders name, each with a list price; the price tolerance is wide
so most orders are accepted and both runs write the same outbox rows (a held order would write
less and flatter the rules).

    .venv/bin/python bench/bench_rules.py [--orders 10000] [--items 50000] [--stock]
    valgrind --tool=callgrind .venv/bin/python bench/bench_rules.py --workers 0 --orders 1000 --once with   # and 2000, and --once without (bench_rules_instructions.py runs all four)

`--stock` adds the stock rule (policy backorder) and `routing:` (two warehouses per region, a
carrier table): every accepted order's lines are reserved in the store (two warehouses hold
each SKU, imported as `gateway data import stock` would) and routed, in the batch transaction.
"""

from __future__ import annotations

import argparse
import functools
import gc
import re
import resource
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_x12 import generate  # noqa: E402
from gateway.connector import RawMessage  # noqa: E402
from gateway.gctune import tune_for_batches  # noqa: E402
from gateway.masterdata.model import Account, Item, Price, StockLevel  # noqa: E402
from gateway.pipeline import Pipeline  # noqa: E402
from gateway.processing.decide import StoreHistory  # noqa: E402
from gateway.processing.decide_worker import DecidePool  # noqa: E402
from gateway.routing import Router, RoutingConfig  # noqa: E402
from gateway.rules import InMemoryMasterData, RulesEngine, build_rules, validate_rule_configs  # noqa: E402
from gateway.store import Store  # noqa: E402
from gateway.store.masterdata import loading  # noqa: E402

RULES = [
    {"type": "required_fields", "fields": ["po_number", "ship_to"]},
    {"type": "address"},
    {"type": "catalogue"},
    {"type": "price", "tolerance_percent": 100000},
    {"type": "payment"},
    {"type": "credit"},
    {"type": "risk", "hold_above": 10_000_000},
    {"type": "duplicates"},
    {"type": "expression", "when": 'ship_region == "AK" and value > 500', "code": "REMOTE_REGION", "message": "check the carrier"},
]


STOCK_RULE = {"type": "stock", "policy": "backorder"}
ROUTING = RoutingConfig.model_validate(
    {
        "regions": {"US": ["EAST", "WEST"], "*": ["WEST", "EAST"]},
        "carriers": [{"countries": ["US"], "max_weight_kg": 30, "carrier": "UPSN", "service": "GND"}, {"carrier": "FXFE", "service": "LTL"}],
    }
)
ON_HAND = Decimal(10**9)


def catalogue(items: int, stock: bool = False) -> InMemoryMasterData:
    skus = [f"SKU{n:06d}" for n in range(items)]
    return InMemoryMasterData(
        items=[Item(s, f"widget {s}", uoms={"CA": Decimal(12)}, weight_kg=Decimal("0.5")) for s in skus],
        stock=[StockLevel(s, wh, ON_HAND) for s in skus for wh in ("EAST", "WEST")] if stock else (),
        prices=[Price(s, Decimal("10.00"), "USD") for s in skus],
        # every buyer the orders name (N1*BY*...*92*NNNN) has an account with a credit limit
        accounts=[Account(f"{n:04d}", credit_limit=Decimal(10**9)) for n in range(10_000)],
    )


def seed_stock(store: Store, items: int) -> None:
    """The store's stock, as `gateway data import stock` leaves it (not timed)."""
    with loading(store, "stock", source="bench", fields=["sku", "warehouse", "on_hand"]) as loader:
        rows = [{"sku": f"SKU{n:06d}", "warehouse": wh, "on_hand": ON_HAND} for n in range(items) for wh in ("EAST", "WEST")]
        for i in range(0, len(rows), 5000):
            loader.write(rows[i : i + 5000])


def _decider(md: InMemoryMasterData, stock: bool) -> Any:
    configs = build_rules(validate_rule_configs([*RULES, STOCK_RULE] if stock else RULES))
    return lambda conn: RulesEngine(configs, md, StoreHistory(conn))


def worker_decider(url: str, items: int, stock: bool) -> tuple[str, Any]:
    """The decide worker's rules (gateway.processing.decide_worker): the same catalogue, built in
    the worker as a master-data folder would be read there (gateway.app.decide_in_worker)."""
    md = catalogue(items, stock=stock)
    gc.collect()
    gc.freeze()
    return url, _decider(md, stock)


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def run(
    url: str, body: bytes, md: InMemoryMasterData | None, *, stock: int = 0, workers: int = 0, items: int = 0, warm: bool = False
) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds of this process, CPU seconds of decide workers, orders).
    `warm`: the worker is started and ready before the clock starts, as in a running service."""
    store = Store(url)
    rules = _decider(md, bool(stock)) if md is not None else None
    pool = DecidePool(functools.partial(worker_decider, url, items, bool(stock)), size=workers) if md is not None and workers else None
    if stock:
        seed_stock(store, stock)
    pipe = Pipeline(
        store, connectors=["erp"], batch_orders=500, rules=rules, reserve_stock=bool(stock), router=Router(ROUTING) if stock else None, decide_pool=pool
    )
    if pool is not None and warm and not pool.warm(wait=60):
        raise SystemExit("the decide worker did not start")
    started, cpu, child = time.perf_counter(), time.process_time(), _children_cpu()
    result = pipe.receive(RawMessage(body=body, source="bench", source_ref="orders.edi", display_name="orders.edi"))
    stats = pipe.process(result.message_id, body=body)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if pool is not None:
        pool.close()  # a worker's CPU time is counted once it has ended
    store.dispose()
    return elapsed, cpu, _children_cpu() - child, stats.orders + stats.quarantined


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=10_000)
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts")
    ap.add_argument("--workers", type=int, default=1, help="decide workers (processing.decide_workers; 0: rules in process)")
    ap.add_argument("--stock", action="store_true", help="add the stock rule, reservations and routing")
    ap.add_argument("--once", choices=["without", "with"], help="one run of one kind, printing nothing: for callgrind (see README; --workers 0 decides in process, else the worker is started before the clock)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        edi = Path(tmp) / "orders.edi"
        generate(edi, interchanges=max(1, args.orders // 10), per_interchange=10)
        # Every SKU the orders name is in the catalogue.
        body = re.sub(rb"VP\*SKU(\d{6})", lambda m: b"VP*SKU%06d" % (int(m.group(1)) % args.items), edi.read_bytes())
        t0 = time.process_time()
        md = catalogue(args.items, stock=args.stock)
        gc.collect()
        gc.freeze()  # as the gateway does once it has read a master-data folder (gateway.app.RulesSetup)
        tune_for_batches()  # as gateway.app.Gateway does when it builds its pipeline
        if args.once:
            # Instruction counts do not depend on what else the machine runs: run this under
            # callgrind for N and 2N orders of each kind; the differences are per-order costs.
            with_rules = args.once == "with"
            run(f"sqlite:///{tmp}/once.db", body, md if with_rules else None, stock=args.items if args.stock and with_rules else 0,
                workers=args.workers if with_rules else 0, items=args.items, warm=True)
            return
        print(f"catalogue of {args.items:,} items with prices built in {time.process_time() - t0:.2f} s CPU")
        wall: dict[str, float] = {}
        cpu_best: dict[str, float] = {}
        ruled = "with 10 rules, stock reserved and routed" if args.stock else "with 9 rules"
        kinds = [("without rules", None, 0, False), (f"{ruled}, in process", md, 0, False)]
        if args.workers:
            kinds.append((f"{ruled}, decide worker started by the file", md, args.workers, False))
            kinds.append((f"{ruled}, decide worker running (a service)", md, args.workers, True))
        for i in range(args.repeat):
            for j, (label, data, workers, warm) in enumerate(kinds):
                url = f"sqlite:///{tmp}/run-{i}-{j}.db"
                stock = args.items if args.stock and data is not None else 0
                secs, cpu, child, n = run(url, body, data, stock=stock, workers=workers, items=args.items, warm=warm)
                print(f"{label}: {n} orders in {secs:.2f} s ({n / secs:,.0f} orders/s), CPU {cpu / n * 1e3:.3f} ms/order here + {child / n * 1e3:.3f} in workers")
                wall[label] = min(wall.get(label, secs), secs)
                cpu_best[label] = min(cpu_best.get(label, cpu + child), cpu + child)
        base = "without rules"
        for label, *_ in kinds[1:]:
            print(
                f"{label}: rules add {100 * (wall[label] / wall[base] - 1):.1f}% to ingest time (target <= 20%), "
                f"{100 * (cpu_best[label] / cpu_best[base] - 1):.1f}% to CPU time (this process and its workers)"
            )


if __name__ == "__main__":
    main()
