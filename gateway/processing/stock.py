"""Stock reservations as an order's life goes on (issue 10), after the accepting decision
(gateway.processing.decide reserves that one):

- a cancellation gives back what the order holds; a change (a new version) gives back what the
  version it changes holds and reserves the new version's lines, in one transaction, so the
  units it gives back count for its new lines;
- a person's approval of a held order reserves what there is (a person decided it goes on;
  what is short is backordered by the warehouse), a person's refusal gives back what it holds.

What to reserve is what the stock rule asks for (`Decision.stock`), worked out by the
configured rules over the order as it stands, on the caller's connection (master data read in
the same transaction). Every call runs in the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from gateway.model import Order
from gateway.rules.base import StockNeed
from gateway.store.masterdata import ReserveLine, StockKeeper

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from gateway.processing.decide import Decider
    from gateway.versions import Plan

__all__ = ["StockFollower"]


class StockFollower:
    def __init__(self, keeper: StockKeeper, decider: Decider):
        self.keeper = keeper
        self.decider = decider

    def needs(self, conn: Connection, row: dict[str, Any]) -> tuple[StockNeed, ...]:
        """What the stock rule asks the stored order (`row["data"]`) to hold; () when unreadable."""
        data = row.get("data")
        if data is None:
            return ()
        value = json.loads(data) if isinstance(data, str | bytes) else data
        order = Order.model_validate(value)
        return self.decider(conn).decide([order])[0].stock

    def reserve(self, conn: Connection, row: dict[str, Any]) -> None:
        needs = self.needs(conn, row)
        if needs:
            self.keeper.reserve(row["id"], [ReserveLine(n.line, n.sku, n.quantity) for n in needs], partial=True, conn=conn)

    def approved(self, conn: Connection, row: dict[str, Any]) -> None:
        self.reserve(conn, row)

    def refused(self, conn: Connection, order_id: str) -> None:
        self.keeper.release(order_id, conn=conn)

    def versions(self, conn: Connection, applied: Iterable[tuple[dict[str, Any], Plan | None]]) -> None:
        """Follow the changes and cancellations about to be queued (their plans name the
        version they apply to)."""
        for row, plan in applied:
            if plan is None or plan.replaces is None or row["state"] != "validated":
                continue
            if plan.action == "cancel":
                self.keeper.release(plan.replaces, conn=conn)
            elif plan.action == "update" and self.keeper.held(plan.replaces, conn=conn):
                self.keeper.release(plan.replaces, conn=conn)
                self.reserve(conn, row)
