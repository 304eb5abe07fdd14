"""Linking an incoming order to the orders already received with the same partner and PO.

Decided inside the transaction that writes the new order rows:

    nothing known, purpose original        a new order (version 1), queued for every connector
    nothing known, change/replace/cancel   `waiting`: applied as soon as its original arrives
    same content as the current version    `duplicate`: never sent again
    original again, different content      `quarantined` DUPLICATE_PO: a person decides
    change/replace/cancel of a version     version n+1, superseding it; the difference goes
                                           into both histories; queued as an `update` or a
                                           `cancel` to connectors that can take one, each
                                           after the previous version's delivery was sent;
                                           `held` for a person if a connector cannot, or if
                                           the order has already shipped
    cart copy last changed before the held one `stale`: webhooks and polls arrive out of
                                           order; the platform's updated_at decides
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.connector import Capabilities
from gateway.diff import order_diff
from gateway.store import RawJSON
from gateway.store import orders as order_repo

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = ["CHANGES", "Linker", "Plan", "merge_changes"]

CHANGES = {"change", "replace", "cancel"}
# Channels whose every delivery is the whole current state of an order (a cart webhook or a
# polled copy): a copy that differs from what we hold is a newer version, not a second order.
STATEFUL_CHANNELS = {"shopify", "woocommerce"}
# States of orders a new version can be linked to (the others were never accepted).
LIVE = ("validated", "dispatched", "dead", "held", "shipped", "invoiced")


@dataclass
class _Version:
    id: str
    version: int
    state: str
    content_hash: str | None
    raw: Any  # the stored order: a dict, or JSON text not parsed until a change needs it
    # connector -> (outbox id, the target's reference from its receipt)
    deliveries: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    # A connector that got it in parts: connector -> part -> (outbox id, reference, parts)
    parts: dict[str, dict[int, tuple[int, str | None, int]]] = field(default_factory=dict)
    unwritten: bool = False  # accepted earlier in this same batch: its deliveries have no ids yet

    @property
    def data(self) -> dict[str, Any]:
        # Parsed lazily: most orders are never changed, and ingest should not pay for it.
        if isinstance(self.raw, str):
            self.raw = json.loads(self.raw)
        return dict(self.raw or {})


@dataclass
class Plan:
    """What to queue for one accepted order row."""

    connectors: list[str]
    action: str = "create"
    after: dict[str, int] = field(default_factory=dict)
    references: dict[str, str | None] = field(default_factory=dict)
    replaces: str | None = None  # a change or cancellation: the id of the version it applies to
    # A split order (gateway.parts): connector -> number of parts it gets, one row each; for a
    # change, each part after the previous version's part with its reference, by (connector, part).
    parts: dict[str, int] = field(default_factory=dict)
    part_numbers: dict[str, list[int]] = field(default_factory=dict)  # only these parts (default: all)
    part_after: dict[tuple[str, int], int] = field(default_factory=dict)
    part_references: dict[tuple[str, int], str | None] = field(default_factory=dict)


class Linker:
    def __init__(
        self, capabilities: Mapping[str, Capabilities], targets: Callable[[str | None], list[str]]
    ):
        self.capabilities = capabilities
        self.targets = targets

    def link(
        self, conn: Connection, rows: list[dict[str, Any]], events: list[dict[str, Any]]
    ) -> dict[str, Plan]:
        """Decide each validated row's fate (mutating it); returns the delivery plan by order id."""
        keys = sorted(
            {r["order_key"] for r in rows if r["order_key"] and r["state"] == "validated"}
        )
        current = self._current(conn, keys)
        plans: dict[str, Plan] = {}
        for row in rows:
            if row["state"] != "validated" or not row["order_key"]:
                continue
            plan = self.decide(row, current.get(row["order_key"]), events)
            if plan is not None:
                plans[row["id"]] = plan
            if row["state"] in ("validated", "held"):
                current[row["order_key"]] = _Version(
                    row["id"],
                    row["version"],
                    row["state"],
                    row["content_hash"],
                    row.get("data"),
                    unwritten=True,
                )
        return plans

    def release_waiting(
        self, conn: Connection, keys: list[str], events: list[dict[str, Any]]
    ) -> list[tuple[dict[str, Any], Plan | None]]:
        """Link changes that were waiting for an order now written. Returns (row, plan) to apply."""
        if not keys:
            return []
        waiting = order_repo.waiting_for(conn, keys)
        if not waiting:
            return []
        current = self._current(conn, sorted({w["order_key"] for w in waiting}))
        results = []
        for row in waiting:
            row["state"], row["reason"], row["error"] = "validated", None, None
            plan = self.decide(row, current.get(row["order_key"]), events)
            if row["state"] == "waiting":  # still nothing to apply it to
                continue
            results.append((row, plan))
            if row["state"] in ("validated", "held"):
                current[row["order_key"]] = _Version(
                    row["id"],
                    row["version"],
                    row["state"],
                    row["content_hash"],
                    row.get("data"),
                    unwritten=True,
                )
        return results

    def decide(
        self, row: dict[str, Any], cur: _Version | None, events: list[dict[str, Any]]
    ) -> Plan | None:
        """What to do with the new order `row` given the current version `cur` of its PO:
        a Plan of deliveries, or None with the row's state, reason and error set (and an
        event for it) when it waits, repeats or needs a person."""
        po, purpose = row["po_number"], row["purpose"]
        mark = _Marker(row, events)
        if cur is None or (cur.unwritten and purpose in CHANGES):
            if purpose not in CHANGES:
                return Plan(self.targets(row["partner"]))
            if cur is not None:  # its original is in this same batch: applied once written
                error = f"a {purpose} of PO {po} in the same input as the PO; applied right after it"
            else:
                error = f"a {purpose} of PO {po} arrived before the PO itself; it is applied when the PO arrives"
            mark("waiting", "WAITING_FOR_ORIGINAL", error)
            return None
        if not _is_change(row, cur, mark):
            return None
        problem = _new_version(row, cur, events)
        if problem is not None:
            mark("quarantined", *problem)
            return None
        return self._change_plan(row, cur, mark)

    def _change_plan(self, row: dict[str, Any], cur: _Version, mark: _Marker) -> Plan | None:
        """The deliveries of a change or cancellation: to the targets the current version went
        to, after its delivery and with its reference; held when the order has shipped or a
        target cannot take the change."""
        po, purpose = row["po_number"], row["purpose"]
        if cur.state in ("shipped", "invoiced"):  # gateway.fulfilment
            mark(
                "held",
                "ALREADY_SHIPPED",
                f"PO {po} has already shipped; a person must handle this {purpose}",
            )
            return None
        action = "cancel" if purpose == "cancel" else "update"
        targets = self.targets(row["partner"])
        unable = [c for c in targets if not self._can(c, action)]
        if unable:
            mark(
                "held",
                "CHANGE_NEEDS_REVIEW",
                f"{', '.join(unable)} cannot take an order {action}; apply it there by hand",
            )
            return None
        # A connector that got the current version in parts gets the change once per part,
        # each after that part's delivery with its reference: a cancellation cancels every
        # part, a change reaches every shipment (the split stays the one delivered).
        split = {c: cur.parts[c] for c in targets if c in cur.parts}
        return Plan(
            targets,
            action,
            after={c: cur.deliveries[c][0] for c in targets if c in cur.deliveries},
            references={c: cur.deliveries[c][1] for c in targets if c in cur.deliveries},
            replaces=cur.id,
            parts={c: max(v[2] for v in by_part.values()) for c, by_part in split.items()},
            part_after={(c, n): v[0] for c, by_part in split.items() for n, v in by_part.items()},
            part_references={(c, n): v[1] for c, by_part in split.items() for n, v in by_part.items()},
        )

    def _can(self, connector: str, action: str) -> bool:
        caps = self.capabilities.get(connector)
        if caps is None:
            return False
        return caps.cancels if action == "cancel" else caps.updates

    def _current(self, conn: Connection, keys: list[str]) -> dict[str, _Version]:
        found: dict[str, _Version] = {}
        for r in order_repo.current_versions(conn, keys, LIVE):
            found[r.order_key] = _Version(
                r.id, r.version, r.state, r.content_hash, r.data
            )  # last = highest version
        if found:
            by_id = {v.id: v for v in found.values()}
            for d in order_repo.deliveries_of(conn, list(by_id)):
                ref = (
                    (d.receipt or {}).get("reference") if isinstance(d.receipt, dict) else None
                )
                if d.part:
                    by_id[d.order_id].parts.setdefault(d.connector, {})[d.part] = (d.id, ref, d.part_of)
                else:
                    by_id[d.order_id].deliveries[d.connector] = (d.id, ref)
        return found


# Not copied from a change document onto the merged order: its lines are applied one by one,
# its totals describe only the changed lines, its extensions are merged key by key.
_KEEP = {"lines", "source", "lines_are_changes", "unmapped", "extensions", "totals"}
_DELETE = {"delete", "DI", "2"}
_ADD = {"add", "AI", "1"}



class _Marker:
    """Sets a row's state, reason and error, and records the event that says so."""

    def __init__(self, row: dict[str, Any], events: list[dict[str, Any]]):
        self.row = row
        self.events = events

    def __call__(self, state: str, reason: str, error: str, kind: str | None = None) -> None:
        row = self.row
        row["state"], row["reason"], row["error"] = state, reason, error
        self.events.append(
            {"kind": kind or state, "order_id": row["id"], "detail": f"{reason}: {error}"}
        )


def _is_change(row: dict[str, Any], cur: _Version, mark: _Marker) -> bool:
    """Whether `row`, a PO already held as `cur`, is a new version of it. Not when it is the
    same content again (duplicate), an older copy from a shop (stale), or a second original
    with other content (quarantined: a person decides). A shop's whole order sent again is
    a replacement, and the order sent says so."""
    po, purpose = row["po_number"], row["purpose"]
    if cur.content_hash == row["content_hash"]:
        mark(
            "duplicate",
            "DUPLICATE_ORDER",
            f"PO {po} was already received with the same content (order {cur.id}); not sent again",
        )
        return False
    if row.get("channel") in STATEFUL_CHANNELS and _older(_data(row), cur.data):
        mark(
            "stale",
            "OLDER_COPY",
            f"this copy of PO {po} was last changed before the one held (order {cur.id}); "
            "a late webhook or poll, not a change: not sent",
            kind="duplicate",
        )
        return False
    if purpose not in CHANGES and row.get("channel") in STATEFUL_CHANNELS:
        row["purpose"] = purpose = "replace"
        row["data"] = RawJSON(json.dumps({**_data(row), "purpose": purpose}, separators=(",", ":")))
    if purpose not in CHANGES:
        mark(
            "quarantined",
            "DUPLICATE_PO",
            f"PO {po} was already received (order {cur.id}) with different content; a person must decide which one stands",
        )
        return False
    return True


def _new_version(
    row: dict[str, Any], cur: _Version, events: list[dict[str, Any]]
) -> tuple[str, str] | None:
    """Make `row` the version after `cur`: numbered, superseding it, line changes applied
    to it, and the changed/superseded events with what differs. Returns (reason, error)
    when the merged order is not a valid one."""
    po, purpose = row["po_number"], row["purpose"]
    row["version"], row["supersedes"] = cur.version + 1, cur.id
    if _data(row).get("lines_are_changes"):
        # X12 860 / EDIFACT ORDCHG list only what changes: the new version is the current
        # one with those changes applied, so every version stays a complete order.
        merged = merge_changes(cur.data, _data(row))
        row["data"] = RawJSON(json.dumps(merged, separators=(",", ":")))
        row["line_count"] = len(merged.get("lines") or [])
        # content_hash stays the change document's own: a repeat of it is a duplicate.
        problem = _problems(merged)
        if problem:
            return problem
    diff = order_diff(cur.data, _data(row))
    summary = "; ".join(diff) if diff else "no field differs"
    events.append(
        {
            "kind": "changed",
            "order_id": row["id"],
            "detail": f"version {row['version']} ({purpose}) of PO {po} supersedes order {cur.id[:8]}: {summary}",
        }
    )
    events.append(
        {
            "kind": "superseded",
            "order_id": cur.id,
            "detail": f"{purpose} received as version {row['version']} (order {row['id'][:8]}): {summary}",
        }
    )
    return None

def merge_changes(current: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """The current version with a partial change document applied (header values it sets,
    lines it adds, changes or deletes, matched by line number)."""
    merged: dict[str, Any] = json.loads(json.dumps(current))  # a deep copy of plain JSON data
    for key, value in change.items():
        if key in _KEEP or value in (None, "", [], {}):
            continue
        before = merged.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            # A party or shipping block sent with only some fields keeps the others.
            merged[key] = {**before, **{k: v for k, v in value.items() if v not in (None, "", [], {})}}
        elif isinstance(value, list) and isinstance(before, list):
            # References, dates, notes ...: what the change adds, after what the order had.
            merged[key] = before + [v for v in value if v not in before]
        else:
            merged[key] = value
    merged["source"] = change.get("source", merged.get("source"))
    merged["unmapped"] = list(change.get("unmapped") or [])
    merged["lines_are_changes"] = False
    merged["extensions"] = {**(merged.get("extensions") or {}), **(change.get("extensions") or {})}
    lines: list[dict[str, Any]] = merged.get("lines") or []
    for cl in change.get("lines") or []:
        how = cl.get("change") or cl.get("change_code")
        at = next((i for i, ln in enumerate(lines) if cl.get("line_number") and ln.get("line_number") == cl.get("line_number")), None)
        if how in _DELETE:
            if at is not None:
                lines.pop(at)
            continue
        fresh = {k: v for k, v in cl.items() if k not in ("change", "change_code")}
        if at is None or how in _ADD:
            lines.append(fresh)
        else:
            lines[at].update({k: v for k, v in fresh.items() if v not in (None, "", [], {})})
    merged["lines"] = lines
    return merged


def _problems(merged: dict[str, Any]) -> tuple[str, str] | None:
    """Validation of the order as it stands after a change: (reason, message) or None."""
    from pydantic import ValidationError

    from gateway.model import Order
    from gateway.validation import validate

    try:
        found = validate(Order.model_validate(merged))
    except ValidationError as exc:
        return "INVALID_ORDER", f"the change does not make a valid order: {exc.errors()[0]['msg']}"
    if not found:
        return None
    return found[0].reason, "after the change: " + "; ".join(p.message for p in found)


def _older(new: dict[str, Any], current: dict[str, Any]) -> bool:
    """True when both copies say when they were last changed and `new` is strictly older."""
    a = (new.get("source") or {}).get("updated_at")
    b = (current.get("source") or {}).get("updated_at")
    if not a or not b:
        return False
    try:
        return dt.datetime.fromisoformat(a) < dt.datetime.fromisoformat(b)
    except (TypeError, ValueError):
        return False


def _data(row: dict[str, Any]) -> dict[str, Any]:
    data = row.get("data")
    if isinstance(data, str):
        parsed: dict[str, Any] = json.loads(data)
        return parsed
    return data or {}
