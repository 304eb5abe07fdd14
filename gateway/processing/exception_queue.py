"""The exception queue: every order that waits for a person or was refused, and what a person
can do about it besides approving or rejecting (gateway.processing.review).

    gateway exceptions                 held and quarantined orders, oldest first, with why
    gateway edit ORDER --set PATH=VALUE --by NAME
                                       correct fields; the correction is a new version
    gateway release ORDER --by NAME    read a refused order again after its cause was fixed

An edit never changes what was received. It writes a new version of the order (version + 1,
`supersedes` the edited one, which becomes `superseded`) whose history says who changed what
from what to what; the new version is checked as an arriving order is, and either goes to its
connectors or waits again with the reasons that are left. Paths name fields of the canonical
order (`gateway schema`): `po_number`, `currency`, `ship_to.postal_code`,
`ship_to.address_lines[1]`, `lines[LINE].quantity`, where LINE is the line number the partner
gave (or the line's position when it gave none). Who the order is from (`partner`,
`channel`, `source`) cannot be edited.

A release is for a refusal whose cause lay outside the order (a SKU added to the catalogue,
a duplicate PO that a person judged to be a new order): the order is checked again as it is;
`--override` takes the person's word over the check that refused it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from gateway.errors import GatewayError
from gateway.model import Order
from gateway.states import OrderState
from gateway.store import RawJSON, Store, add_events, new_id, utcnow
from gateway.store import orders as order_repo
from gateway.store import tables as t
from gateway.store.ids import by_prefix
from gateway.validation import Problem, validate
from gateway.versions import Linker, Plan

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = ["Edit", "ExceptionQueue", "parse_assignments"]

Queue = Callable[["Connection", list[tuple[dict[str, Any], Plan | None]], list[dict[str, Any]], dict[str, str]], None]
Check = Callable[[Order], Sequence[Problem]]
Answer = Callable[["Connection", dict[str, Any]], int]
"""Queues the accepted 855/ORDRSP for an order a person's action accepted (Review.answer)."""
Requeue = Callable[["Connection", dict[str, Any], dict[str, Any], str], "Plan | None"]
"""(conn, edited row, new row, who) -> the new version's deliveries in place of linking it
(gateway.processing.dead_letters: an edited dead letter goes where it died, as it was going)."""

_FROZEN = ("partner", "channel", "source", "purpose")
# A refusal that says nothing about the order's own content: nothing to read again.
_NOT_RELEASABLE = {
    "TRUNCATED": "its interchange was cut off; the partner must send the complete file again",
    "REJECTED_BY_PERSON": "a person rejected it",
}
_PATH = re.compile(r"^[a-z_]+(\[[^\]]+\])?(\.[a-z_]+(\[[^\]]+\])?)*$")


@dataclass(frozen=True, slots=True)
class Edit:
    """The outcome of `ExceptionQueue.edit`."""

    order_id: str  # the new version
    version: int
    state: str
    reason: str | None
    error: str | None
    changes: list[str]  # "path: old -> new", as the history shows them


def parse_assignments(items: Sequence[str]) -> list[tuple[str, str]]:
    """`PATH=VALUE` pairs as a person types them; GatewayError naming a bad one."""
    pairs: list[tuple[str, str]] = []
    for item in items:
        path, sep, value = item.partition("=")
        path = path.strip()
        if not sep or not _PATH.match(path):
            raise GatewayError(
                f"cannot read {item!r}: give PATH=VALUE, e.g. lines[2].quantity=10 or ship_to.postal_code=30301 "
                "(paths are the canonical order's fields, see `gateway schema`)"
            )
        pairs.append((path, value))
    if not pairs:
        raise GatewayError("say what to change: --set PATH=VALUE (e.g. --set lines[1].quantity=10)")
    return pairs


class ExceptionQueue:
    """A person's corrections to held and refused orders, written through the store."""

    def __init__(
        self,
        store: Store,
        linker: Linker,
        queue: Queue,
        check: Check = validate,
        answer: Answer | None = None,
        rules: Any = None,
        stock: Any = None,
    ):
        self.store = store
        self.answer = answer  # the partner's 855/ORDRSP once an edit or release accepts the order
        self.linker = linker
        self.queue = queue  # queues an accepted order as processing does
        self.check = check  # what an arriving order must pass before the rules
        self.rules = rules  # conn -> the rules engine (gateway.processing.decide.Decider), when rules are configured
        self.stock = stock  # gateway.processing.stock.StockFollower: reserves for an accepted order, releases a replaced one

    def waiting(self, *, limit: int = 100, partner: str | None = None, reason: str | None = None, team: str | None = None) -> list[dict[str, Any]]:
        """Held and quarantined orders, oldest first, with their team and assignee."""
        with self.store.engine.connect() as conn:
            return order_repo.exceptions(conn, limit=limit, partner=partner, reason=reason, team=team)

    def edit(
        self,
        order_id: str,
        assignments: Sequence[tuple[str, str]],
        *,
        by: str,
        states: Sequence[OrderState] = (OrderState.HELD, OrderState.QUARANTINED),
        requeue: Requeue | None = None,
    ) -> Edit:
        """A corrected new version of a held or quarantined order (see the module docstring);
        `states` and `requeue` let the dead letters reuse it for a dead order."""
        who = _who(by)
        with self.store.begin() as conn:
            row = self._open(conn, order_id, "edit", states)
            if row["data"] is None:
                raise GatewayError(f"order {row['id'][:8]} holds no readable order to edit ({row['reason']}: {row['error']})")
            data = _loads(row["data"])
            changes: list[str] = []
            for path, value in assignments:
                if path.split(".")[0].split("[")[0] in _FROZEN:
                    raise GatewayError(f"{path} says where the order came from and cannot be edited")
                old = _assign(data, path, value)
                changes.append(f"{path}: {_show(old)} -> {value or '(empty)'}")
            try:
                order = Order.model_validate(data)
            except ValidationError as exc:
                raise GatewayError(f"the edited order is not valid: {_first_error(exc)}") from None
            text = order.model_dump_json()
            new = {
                **{k: row[k] for k in ("message_id", "channel", "partner", "purpose", "order_key", "position")},
                "doc_index": order_repo.edited_index(row["doc_index"], row["version"] + 1),
                "id": new_id(),
                "created_at": utcnow(),
                "updated_at": utcnow(),
                "po_number": order.po_number[:100],
                "order_date": order.order_date,
                "content_hash": hashlib.sha256(text[: text.rfind(',"source":{')].encode()).hexdigest(),
                "line_count": len(order.lines),
                "data": RawJSON(text),
                "provenance": None,  # a person's value has no source position
                "version": row["version"] + 1,
                "supersedes": row["id"],
            }
            new.update(self._decide(conn, order))
            if row["order_key"] and order.po_number != row["po_number"]:
                # The PO number names the order: a corrected one is linked under it.
                new["order_key"] = row["order_key"][: -len(row["po_number"]) or None] + order.po_number if row["order_key"].endswith(f"|{row['po_number']}") else row["order_key"]
            events = [
                {"kind": "edited", "order_id": row["id"], "message_id": row["message_id"], "at": utcnow(),
                 "detail": f"edited by {who} as version {new['version']} ({new['id'][:8]}): " + "; ".join(changes)},
            ]
            order_repo.supersede(conn, row["id"], row["state"])
            if requeue is not None:
                plan = requeue(conn, row, new, who)
            else:
                plan = self._link(conn, new, events, override=False)
            order_repo.insert_batch(conn, [new])
            if self.stock is not None:
                self.stock.refused(conn, row["id"])  # whatever the edited version held goes back
            events.append(
                {"kind": "edited", "order_id": new["id"], "message_id": row["message_id"], "at": utcnow(),
                 "detail": f"version {new['version']} of {row['id'][:8]}, edited by {who}: " + "; ".join(changes)}
            )
            self._settle(conn, new, plan, events, f"PO {new['po_number']} edited by {who}")
            add_events(conn, events)
        return Edit(new["id"], new["version"], new["state"], new["reason"], new["error"], changes)

    def release(self, order_id: str, *, by: str, override: bool = False) -> dict[str, Any]:
        """Check a quarantined order again as it is (its cause was fixed elsewhere); with
        `override` a person's judgement replaces the check that refused it. Returns the order
        row with its new state."""
        who = _who(by)
        with self.store.begin() as conn:
            row = self._open(conn, order_id, "release", states=(OrderState.QUARANTINED,))
            why = _NOT_RELEASABLE.get(row["reason"] or "")
            if why or row["data"] is None:
                raise GatewayError(
                    f"order {row['id'][:8]} cannot be released: {why or 'it holds no readable order'}"
                    + ("" if why else f" ({row['reason']}: {row['error']})")
                )
            order = Order.model_validate(_loads(row["data"]))
            was = f"{row['reason']}: {row['error']}"
            events: list[dict[str, Any]] = []
            row.update({"state": OrderState.VALIDATED.value, "reason": None, "error": None} if override else self._decide(conn, order))
            plan = self._link(conn, row, events, override=override)
            if row["state"] == OrderState.QUARANTINED.value:
                raise GatewayError(
                    f"order {row['id'][:8]} is still refused: {row['reason']}: {row['error']} "
                    "(correct it with `gateway edit`, or give --override if you are sure)"
                )
            order_repo.reconsider(conn, row["id"], OrderState.QUARANTINED.value, row["state"], row["reason"], row["error"])
            how = " overriding the check" if override else ""
            events.insert(0, {"kind": "released", "order_id": row["id"], "message_id": row["message_id"], "at": utcnow(),
                              "detail": f"released{how} by {who} (was {was})"})
            self._settle(conn, row, plan, events, f"PO {row['po_number']} released by {who}")
            add_events(conn, events)
        return row

    def _decide(self, conn: Connection, order: Order) -> dict[str, Any]:
        """Decided as an arriving order is: validation, then the configured rules (a corrected
        order must not slip past a rule the original met)."""
        problems = list(self.check(order))
        if problems:
            return {
                "state": OrderState.QUARANTINED.value,
                "reason": problems[0].reason,
                "error": "; ".join(p.message for p in problems),
            }
        if self.rules is not None:
            decision = self.rules(conn).decide([order])[0]
            outcome = decision.outcome.value
            if outcome != "accept":
                why = "; ".join(f.message for f in decision.deciding)
                state = OrderState.QUARANTINED if outcome == "reject" else OrderState.HELD
                return {"state": state.value, "reason": decision.reason, "error": why}
        return {"state": OrderState.VALIDATED.value, "reason": None, "error": None}

    def _link(self, conn: Connection, row: dict[str, Any], events: list[dict[str, Any]], *, override: bool) -> Plan | None:
        """Link an accepted order with the other versions of its PO, as processing does (a
        corrected order equal to one already sent is a duplicate, and so on); the plan of
        its deliveries, or None when it is not to be sent (its state says why)."""
        if row["state"] != OrderState.VALIDATED.value:
            return None
        if override or not row["order_key"]:
            return Plan(self.linker.targets(row["partner"]))
        return self.linker.link(conn, [row], events).get(row["id"])

    def _settle(self, conn: Connection, row: dict[str, Any], plan: Plan | None, events: list[dict[str, Any]], note: str) -> None:
        """Queue an accepted order to its connectors, as an approval does; else say why not."""
        if plan is not None:
            if self.stock is not None:
                # Reserve (and route) as an approval does, before it is queued: a split
                # route gives a per-part connector one delivery per part (gateway.parts).
                self.stock.approved(conn, row)
            self.queue(conn, [(row, plan)], events, {row["id"]: note})
            if self.answer is not None:
                self.answer(conn, row)
        else:
            events.append({"kind": row["state"], "order_id": row["id"], "message_id": row["message_id"], "at": utcnow(),
                           "detail": f"{note}; {row['state']}: {row['reason']}: {row['error']}"})

    @staticmethod
    def _open(conn: Connection, order_id: str, action: str, states: Sequence[OrderState] = (OrderState.HELD, OrderState.QUARANTINED)) -> dict[str, Any]:
        row = by_prefix(conn, t.orders, order_id, "order", "gateway exceptions", "`gateway exceptions` lists the orders waiting for a person")
        if row["state"] not in states:
            allowed = " or ".join(s.value for s in states)
            raise GatewayError(f"order {row['id'][:8]} (PO {row['po_number']}) is {row['state']}; only a {allowed} order can be given to {action}")
        return row


def _who(by: str) -> str:
    name = " ".join(by.split())
    if not name:
        raise GatewayError("say who you are (--by NAME): the order's history records who changed it")
    return name[:100]


def _loads(data: Any) -> dict[str, Any]:
    value = json.loads(data) if isinstance(data, str | bytes) else data
    if not isinstance(value, dict):
        raise GatewayError("the stored order is not readable")
    return dict(value)


def _assign(data: dict[str, Any], path: str, value: str) -> Any:
    """Set `path` in the order's JSON to `value`; the old value. GatewayError for a path that
    names nothing in the order."""
    parts = path.split(".")
    node: Any = data
    for i, part in enumerate(parts):
        name, _, index = part.partition("[")
        last = i == len(parts) - 1 and not index
        if not isinstance(node, dict):
            raise GatewayError(f"{path}: {'.'.join(parts[:i])} is not a group of fields")
        if last:
            old = node.get(name)
            node[name] = None if value == "" and not isinstance(old, str | list) else value
            return old
        if name not in node or node[name] is None:
            if index:
                raise GatewayError(f"{path}: the order has no {name}")
            node[name] = {}
        node = node[name]
        if index:
            key = index.rstrip("]")
            node, item = _item(node, name, key, path)
            if i == len(parts) - 1:
                old = node[item]
                node[item] = value
                return old
            node = node[item]
    raise GatewayError(f"{path}: nothing to set")  # pragma: no cover - the loop returns


def _item(seq: Any, name: str, key: str, path: str) -> tuple[list[Any], int]:
    """Find `[key]` in a list: for `lines` the line whose line_number is key (or, if no line
    has one, the key-th line); for other lists the key-th element (1-based)."""
    if not isinstance(seq, list):
        raise GatewayError(f"{path}: {name} is not a list")
    if name == "lines":
        for n, line in enumerate(seq):
            if isinstance(line, dict) and str(line.get("line_number") or "") == key:
                return seq, n
        if any(isinstance(line, dict) and line.get("line_number") for line in seq):
            numbers = ", ".join(str(line.get("line_number")) for line in seq if isinstance(line, dict))
            raise GatewayError(f"{path}: no line numbered {key} (the order's lines are {numbers})")
    if not key.isdigit() or not 1 <= int(key) <= len(seq):
        raise GatewayError(f"{path}: {name} has {len(seq)} item(s); give a position from 1 to {len(seq)}")
    return seq, int(key) - 1


def _show(value: Any) -> str:
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, Decimal | int | float | str):
        return str(value)
    return json.dumps(value, default=str)[:80]


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err.get('msg')}"
