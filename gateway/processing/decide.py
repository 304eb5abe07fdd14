"""The decide step: the configured rules over a batch's new orders.

New original orders are decided in small chunks as they are read (`decide_chunk`); the
decisions are applied in the batch's transaction after version linking (`apply`: a re-sent
copy is a duplicate, not an order to decide), before the batch's orders are written:

- rejected: the order is quarantined with the deciding reason code and every message; it is
  never queued, and its 855/ORDRSP is the negative acknowledgement (RJ, or RD with IR lines
  when rules named lines);
- held: it waits for a person with its reasons (`gateway approve` / `gateway reject`); its
  855/ORDRSP is not sent while it waits;
- accepted: queued as before; a price a rule corrected shows as IP with our price.

Every finding (also the notes of accepted orders) and the decision are stored
(gateway.store.findings) so `gateway show` lists every reason with its line. Changes and
cancellations are not decided again here (they follow their original's decision).

Stock (issue 10): an accepted order the stock rule gave stock needs to is reserved right after
its decision, in the same transaction (`keeper`, gateway.store.masterdata.StockKeeper, on the
batch's connection: two orders never take the same last unit, also across processes and nodes
on PostgreSQL). The decision and the 855/ORDRSP follow what was really reserved
(:func:`reserve_stock`): a short line is backordered (IB, with the date when known) or, under a
partial fill that cancels the rest, answered IQ with what ships; under ``block`` an order that
could not get everything gives back what it got and is held (STOCK_SHORT).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from gateway.acks.model import LineResult, LineStatus
from gateway.model import Order
from gateway.pickling import by_fields
from gateway.routing import PartLine, Router
from gateway.rules import Decision, Outcome, RulesEngine
from gateway.rules.base import Finding
from gateway.store import findings as findings_repo
from gateway.store import utcnow
from gateway.store.masterdata import ReserveLine, ReserveResult, StockKeeper
from gateway.versions import Plan

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from gateway.acks.outbound import AckCollector

__all__ = ["DECIDE_CHUNK", "Decided", "Decider", "Ship", "StockStep", "StoreHistory", "apply", "decide_chunk", "decide_orders", "line_results", "reserve_stock"]

Decider = Callable[["Connection"], RulesEngine]
"""Builds the rules engine for one chunk of orders (master data and history read through `conn`)."""

DUPLICATE_WINDOW = dt.timedelta(days=14)  # how far back the same content counts as a duplicate
DECIDE_CHUNK = 50  # new orders decided together (one master-data prefetch each)


class StoreHistory:
    """Order history from the store, for the rules (orders per account, content seen)."""

    def __init__(self, conn: Connection, window: dt.timedelta = DUPLICATE_WINDOW):
        self.conn = conn
        self.window = window

    def order_counts(self, accounts: Collection[str]) -> Mapping[str, int]:
        return findings_repo.order_counts(self.conn, accounts)

    def usual_quantities(self, accounts: Collection[str]) -> Mapping[tuple[str, str], Decimal]:
        return {}  # seam: needs order lines by account (the store side's order lines)

    def seen(self, fingerprints: Collection[str]) -> Mapping[str, str]:
        return findings_repo.seen(self.conn, fingerprints, utcnow() - self.window)


Decided = tuple[Decision, list[LineResult], "Ship"]
"""One order's decision, its lines' answers (empty when no 855/ORDRSP is wanted) and where it ships."""


def decide_orders(engine: RulesEngine, orders: list[Order], seen: dict[str, str], *, answers: bool = True) -> list[Decided]:
    """The decisions of a few new orders (in process, or in a decide worker: gateway.processing.decide_worker).
    `answers`: the partner gets an 855/ORDRSP, so each line's answer is worked out too."""
    out: list[Decided] = []
    for order, decision in zip(orders, engine.decide(orders, seen=seen), strict=True):
        ship = order.ship_to
        out.append((decision, line_results(order, decision) if answers else [], Ship(ship.country if ship else None, ship.region if ship else None, order.requested_delivery_date)))
    return out


def decide_chunk(engine: RulesEngine, pending: list[tuple[dict[str, Any], Order]], seen: dict[str, str], *, answers: bool = True) -> None:
    """Decide a few new orders as they are read; each row keeps its decision (``_decision``)
    until its batch is written. Deciding in small chunks, not the whole batch at once, keeps
    few canonical orders alive: a batch of 500 held would make Python's garbage collector
    cost more than the rules (bench/bench_rules.py)."""
    for (row, _), decided in zip(pending, decide_orders(engine, [order for _, order in pending], seen, answers=answers), strict=True):
        row["_decision"] = decided


@by_fields
@dataclass(frozen=True, slots=True)
class Ship:
    """Where and when an order is to go, for routing."""

    country: str | None = None
    region: str | None = None
    requested: dt.date | None = None  # the requested delivery date


@dataclass
class StockStep:
    """What the decide step reserves and routes with, for one batch: the keeper on the batch's
    connection, the router (None: no `routing:` configured); `routes` collects the routes to
    store once the batch's orders are written."""

    keeper: StockKeeper
    conn: Connection
    router: Router | None = None
    today: dt.date = field(default_factory=dt.date.today)
    routes: dict[str, dict[str, Any]] = field(default_factory=dict)
    reserved: dict[str, ReserveResult] = field(default_factory=dict)  # taken ahead for the batch (`reserve_all`)

    def lines(self, decision: Decision, ship: Ship) -> list[ReserveLine]:
        prefer = self.router.warehouses(ship.country, ship.region) if self.router is not None else ()
        return [ReserveLine(n.line, n.sku, n.quantity, prefer=prefer) for n in decision.stock]

    def reserve_all(self, orders: list[tuple[str, Decision, Ship]]) -> None:
        """Reserve the batch's accepted orders together, in a few statements
        (StockKeeper.reserve_many); `reserve_stock` then reads what each got."""
        self.reserved.update(self.keeper.reserve_many(self.conn, [(oid, self.lines(d, ship)) for oid, d, ship in orders]))


def reserve_stock(step: StockStep, order_id: str, decision: Decision, lines: list[LineResult], ship: Ship = Ship()) -> tuple[Decision, list[LineResult]]:
    """Reserve an accepted order's stock needs in the batch's transaction (from the ship-to's
    warehouses in order of preference when routing is configured); returns its decision and
    855 line answers as they follow what was reserved (see the module docstring), and leaves
    its route in `step.routes`."""
    needs = decision.stock
    if not needs:
        return decision, lines
    keeper, conn = step.keeper, step.conn
    prefer = step.router.warehouses(ship.country, ship.region) if step.router is not None else ()
    got: dict[str, Decimal] = {}
    result = step.reserved.pop(order_id, None) or keeper.reserve(order_id, step.lines(decision, ship), partial=True, conn=conn)
    for lr in result.lines:
        got[lr.line] = got.get(lr.line, Decimal(0)) + lr.reserved
    short = [(n, got.get(n.line, Decimal(0))) for n in needs if got.get(n.line, Decimal(0)) < n.quantity]
    if short and needs[0].policy == "block":
        keeper.release(order_id, conn=conn)
        found = [
            Finding("stock", Outcome.HOLD, "STOCK_SHORT", f"line {n.line}: {n.quantity.normalize():f} of {n.sku} ordered, {have.normalize():f} could be reserved{' from ' + ', '.join(prefer) if prefer else ''}; the order waits until there is stock", n.line, {"sku": n.sku})
            for n, have in short
            if not any(f.code == "STOCK_SHORT" and f.line == n.line for f in decision.findings)
        ]
        return Decision.of([*decision.findings, *found], account=decision.account, fingerprint=decision.fingerprint), []
    if step.router is not None:
        weights = {n.line: n.weight_kg for n in needs}
        taken = [PartLine(r.line, r.sku, r.warehouse, r.quantity, weights.get(r.line)) for r in result.reservations]
        route = step.router.route(taken, country=ship.country, requested=ship.requested, today=step.today)
        if route is not None:
            step.routes[order_id] = route
    if not short:
        return decision, lines
    answers = list(lines) if lines else []
    for n, have in short:
        if n.index >= len(answers):
            continue
        per_unit = n.quantity / n.ordered if n.ordered else Decimal(1)
        missing = _in_unit(n.quantity - have, per_unit)
        if n.policy == "partial" and n.rest == "cancel":
            answers[n.index] = LineResult(status=LineStatus.QUANTITY_CHANGED, quantity=_in_unit(have, per_unit)) if have > 0 else LineResult(status=LineStatus.REJECTED)
        else:
            answers[n.index] = LineResult(status=LineStatus.BACKORDERED, quantity=missing, date=n.backorder_date)
    return decision, answers


def _in_unit(base: Decimal, per_unit: Decimal) -> Decimal:
    """Base units back in the line's unit (an 855 answers in the unit ordered)."""
    return (base / per_unit).normalize() if per_unit else base


def apply(
    rows: list[dict[str, Any]],
    plans: dict[str, Plan],
    events: list[dict[str, Any]],
    mapped: dict[str, str],
    acks: AckCollector | None = None,
    stock: StockStep | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Decision]]:
    """Apply the decisions of the batch's new orders (after version linking): changes rows'
    state, plans and events in place; a row that linking found to be a repeat, a change or a
    test is not decided. `stock`: to reserve and route accepted orders (see
    :func:`reserve_stock`; their routes are left in `stock.routes`). Returns (finding rows, decision rows) to insert once the orders are
    written, and the accepted orders' decisions by order id."""
    now = utcnow()
    finding_rows: list[dict[str, Any]] = []
    decision_rows: list[dict[str, Any]] = []
    accepted: dict[str, Decision] = {}
    if stock is not None:  # every accepted order's stock at once, before each is answered
        stock.reserve_all(
            [
                (row["id"], d[0], d[2])
                for row in rows
                if (d := row.get("_decision")) is not None and d[0].outcome is Outcome.ACCEPT and d[0].stock
                and row["state"] == "validated" and (plan := plans.get(row["id"])) is not None and plan.action == "create"
            ]
        )
    for row in rows:
        decided = row.pop("_decision", None)
        plan = plans.get(row["id"])
        if decided is None or row["state"] != "validated" or plan is None or plan.action != "create":
            continue
        decision, lines, ship = decided
        oid = row["id"]
        if stock is not None and decision.outcome is Outcome.ACCEPT and decision.stock:
            decision, lines = reserve_stock(stock, oid, decision, lines, ship)
            if oid in stock.routes:
                events.append({"kind": "routed", "order_id": oid, "message_id": row["message_id"], "at": now, "detail": Router.describe(stock.routes[oid])})
        for seq, fnd in enumerate(decision.findings):
            finding_rows.append(
                {
                    "order_id": oid, "seq": seq, "rule": fnd.rule[:100], "outcome": fnd.outcome.value, "code": fnd.code[:60],
                    "message": fnd.message, "line": (fnd.line or None) and fnd.line[:40], "data": dict(fnd.data) or None, "created_at": now,
                }
            )
        decision_rows.append({"order_id": oid, "outcome": decision.outcome.value, "account": decision.account and decision.account[:100], "fingerprint": decision.fingerprint, "decided_at": now, "decided_by": None})
        if acks is not None:
            acks.decided(oid, None if decision.outcome is Outcome.HOLD else decision.outcome is Outcome.ACCEPT, lines)
        if decision.outcome is Outcome.ACCEPT:
            accepted[oid] = decision
            continue
        plans.pop(oid)
        lead = mapped.pop(oid, "") or f"PO {row['po_number']}"
        row["reason"], row["error"] = decision.reason, decision.summary()
        if decision.outcome is Outcome.REJECT:
            row["state"] = "quarantined"
            events.append({"kind": "quarantined", "order_id": oid, "message_id": row["message_id"], "at": now, "detail": f"{lead}; rejected by the rules: {row['error']}"})
        else:
            row["state"] = "held"
            events.append({"kind": "held", "order_id": oid, "message_id": row["message_id"], "at": now, "detail": f"{lead}; held by the rules for a person: {row['error']}"})
    return finding_rows, decision_rows, accepted


def line_results(order: Order, decision: Decision) -> list[LineResult]:
    """What the 855/ORDRSP says per line, paired with `order.lines` by position.

    Rejected: every line IR when a finding named a line (the order is refused with detail),
    else every line as ordered (the acknowledgement is a plain RJ). Accepted: IP with our price
    where a rule gave one (``price`` in its data), IA otherwise."""
    labels = [ln.line_number or str(i + 1) for i, ln in enumerate(order.lines)]
    if decision.outcome is Outcome.REJECT:
        lined = any(fnd.line for fnd in decision.deciding)
        status = LineStatus.REJECTED if lined else LineStatus.ACCEPTED
        return [LineResult(status=status) for _ in labels]
    prices: dict[str, Decimal] = {}
    for fnd in decision.findings:
        if fnd.line and "price" in fnd.data:
            prices.setdefault(fnd.line, Decimal(fnd.data["price"]))
    return [LineResult(status=LineStatus.PRICE_CHANGED, unit_price=prices[label]) if label in prices else _AS_ORDERED for label in labels]


# One shared answer (it is frozen) for every line accepted as ordered: a decision's lines then
# pickle to and from the decide worker as one object and references to it.
_AS_ORDERED = LineResult()
