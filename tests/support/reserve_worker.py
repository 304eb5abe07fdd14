"""One of several processes reserving the same scarce stock (tests/e2e/test_masterdata_cli.py).

    python -m tests.support.reserve_worker URL WORKER ORDERS GO_FILE

Waits until GO_FILE exists (so every worker starts at once), then places ORDERS orders, each
asking for 1 unit of LAST and 2 of SPARE (odd workers list the lines the other way round, so
rows are requested in both orders), reserves every third order that got stock twice (the second
must change nothing) and releases every seventh after reserving it. Prints one JSON line per order.
"""

from __future__ import annotations

import json
import sys
import time
from decimal import Decimal
from pathlib import Path

from gateway.store import Store
from gateway.store.masterdata import ReserveLine, StockKeeper


def main() -> None:
    url, worker, orders, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    store = Store(url, migrate=False)
    keeper = StockKeeper(store)
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    for n in range(orders):
        order = f"w{worker}-o{n:04d}"
        lines = [ReserveLine("1", "LAST", Decimal(1)), ReserveLine("2", "SPARE", Decimal(2))]
        if worker % 2:
            lines.reverse()
        result = keeper.reserve(order, lines, partial=n % 5 == 0)
        record = {
            "order": order,
            "lines": {x.sku: [x.outcome.value, str(x.reserved)] for x in result.lines},
            "again": None,
            "released": False,
        }
        if n % 3 == 0 and result.reservations:
            again = keeper.reserve(order, lines)
            record["again"] = {"repeated": again.repeated, "held": str(sum(r.quantity for r in again.reservations))}
        if n % 7 == 6:
            keeper.release(order)
            record["released"] = True
        print(json.dumps(record), flush=True)
    store.dispose()


if __name__ == "__main__":
    main()
