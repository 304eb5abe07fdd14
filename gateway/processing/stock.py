"""Stock reservations as an order's life goes on (issue 10), after the accepting decision
(gateway.processing.decide reserves that one):

- a cancellation gives back what the order holds; a change (a new version) gives back what the
  version it changes holds and reserves the new version's lines, in one transaction, so the
  units it gives back count for its new lines;
- a person's approval of a held order reserves what there is (a person decided it goes on;
  what is short is backordered by the warehouse), a person's refusal gives back what it holds.

Both reserve along the order's route when `routing:` is configured, and store the new route.

What to reserve is what the stock rule asks for (`Decision.stock`), worked out by the
configured rules over the order as it stands, on the caller's connection (master data read in
the same transaction). Every call runs in the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from gateway.model import Order
from gateway.processing.decide import Ship, StockStep, reserve_stock
from gateway.routing import Router
from gateway.rules.base import Decision, Outcome, StockNeed
from gateway.store import add_event
from gateway.store.masterdata import StockKeeper, save_routes

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from gateway.processing.decide import Decider
    from gateway.versions import Plan

__all__ = ["StockFollower"]


class StockFollower:
    def __init__(self, keeper: StockKeeper, decider: Decider, router: Router | None = None):
        self.keeper = keeper
        self.decider = decider
        self.router = router

    def needs(self, conn: Connection, order: Order) -> tuple[StockNeed, ...]:
        """What the stock rule asks the order to hold, as a backorder: whoever calls this has
        decided the order goes on, so nothing it gets is given back for being short."""
        return tuple(replace(n, policy="backorder") for n in self.decider(conn).decide([order])[0].stock)

    def reserve(self, conn: Connection, row: dict[str, Any]) -> None:
        """Reserve (and route) the stored order `row` as it stands; nothing when it holds no
        readable order."""
        data = row.get("data")
        if data is None:
            return
        order = Order.model_validate(json.loads(data) if isinstance(data, str | bytes) else data)
        needs = self.needs(conn, order)
        if not needs:
            return
        step = StockStep(self.keeper, conn, self.router)
        ship = order.ship_to
        reserve_stock(step, row["id"], Decision(Outcome.ACCEPT, stock=needs), [], Ship(ship.country if ship else None, ship.region if ship else None, order.requested_delivery_date))
        save_routes(conn, step.routes)
        for oid, route in step.routes.items():
            add_event(conn, "routed", Router.describe(route), order_id=oid, message_id=row.get("message_id"))

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
