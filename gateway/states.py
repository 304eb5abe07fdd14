"""Every state a message, an order and a delivery can be in, and the moves.

A delivery is one outbox row: an order to one connector, or a document we generated (an
acknowledgement or a confirmation e-mail) to one channel; both go the same road.

This module is the one place the states are named. Each kind is a string enum (its values
are what the store's `state` columns hold) with the moves allowed between them; the store's
repositories call :func:`move` before they write a new state, so a move not listed here
raises :class:`IllegalTransition` instead of corrupting an order's history. The README's
state diagram is generated from these tables (:func:`diagram`) and a test keeps the two equal.

``None`` as the source of a move means "created in this state".
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from gateway.errors import GatewayError

__all__ = [
    "DeliveryState",
    "IllegalTransition",
    "MessageState",
    "OrderState",
    "ReservationState",
    "TRANSITIONS",
    "diagram",
    "move",
]


class MessageState(enum.StrEnum):
    """A received message (a file, a mail, a webhook body)."""

    RECEIVED = "received"  # stored, waiting to be read (or being read under a lease)
    PARSED = "parsed"  # read: its orders and refused documents are stored
    QUARANTINED = "quarantined"  # nothing in it could be used; a person sees why


class OrderState(enum.StrEnum):
    """One canonical order (one version of a PO)."""

    VALIDATED = "validated"  # accepted; its deliveries are queued
    HELD = "held"  # waits for a person (low confidence, a change that cannot be applied, a test interchange)
    QUARANTINED = "quarantined"  # refused (bad input, failed validation, duplicate PO, rejected by a person)
    DUPLICATE = "duplicate"  # the same PO with the same content again: nothing sent
    STALE = "stale"  # an older copy of a cart order than the one held: nothing sent
    WAITING = "waiting"  # a change that arrived before its original
    DISPATCHED = "dispatched"  # every delivery sent
    DEAD = "dead"  # a delivery gave up; replay it once the cause is fixed
    SHIPPED = "shipped"  # the ERP or carrier reported it shipped: changes are held
    INVOICED = "invoiced"  # invoiced (after or without a shipment): changes are held as for a shipped order
    SUPERSEDED = "superseded"  # a person's edit replaced it with a new version (`gateway edit`)
    DISCARDED = "discarded"  # a person discarded its dead delivery: never sent there (`gateway dead-letters discard`)


class DeliveryState(enum.StrEnum):
    """One outbox row: an order to one connector, or an acknowledgement / confirmation e-mail
    to one channel."""

    PENDING = "pending"  # due at next_attempt_at (first try or a retry)
    IN_FLIGHT = "in_flight"  # claimed by a worker until lease_until
    SENT = "sent"  # the target took it
    DEAD = "dead"  # permanent failure or retries exhausted; replayable
    HELD = "held"  # a document with no outbound channel configured for its partner: shown, never claimed
    DISCARDED = "discarded"  # a dead letter a person discarded or replaced by an edited version: never sent


class ReservationState(enum.StrEnum):
    """Stock held for one order line in one warehouse (gateway.store.masterdata.StockKeeper)."""

    RESERVED = "reserved"  # counted in the warehouse's `reserved`
    RELEASED = "released"  # given back (the order was cancelled, changed or refused)


M, O, D = MessageState, OrderState, DeliveryState  # noqa: E741 - short names keep the tables readable

TRANSITIONS: dict[type[enum.StrEnum], frozenset[tuple[enum.StrEnum | None, enum.StrEnum]]] = {
    MessageState: frozenset(
        {
            (None, M.RECEIVED),
            (None, M.QUARANTINED),  # the source refused it unread (symlink, too large, empty)
            (M.RECEIVED, M.PARSED),
            (M.RECEIVED, M.QUARANTINED),
            (M.QUARANTINED, M.RECEIVED),  # `gateway reprocess`
            (M.PARSED, M.RECEIVED),  # `gateway reprocess` of its refused documents
        }
    ),
    OrderState: frozenset(
        {
            *((None, s) for s in (O.VALIDATED, O.HELD, O.QUARANTINED, O.DUPLICATE, O.STALE, O.WAITING)),
            *((O.WAITING, s) for s in (O.VALIDATED, O.HELD, O.QUARANTINED, O.DUPLICATE, O.STALE)),
            (O.HELD, O.VALIDATED),  # `gateway approve`
            (O.HELD, O.QUARANTINED),  # `gateway reject`
            (O.HELD, O.SUPERSEDED),  # `gateway edit`: the corrected version replaces it
            (O.QUARANTINED, O.SUPERSEDED),
            # `gateway release`: its cause was fixed elsewhere; decided again as on arrival
            *((O.QUARANTINED, s) for s in (O.VALIDATED, O.HELD, O.DUPLICATE, O.STALE, O.WAITING)),
            (O.VALIDATED, O.DISPATCHED),
            (O.VALIDATED, O.DEAD),
            (O.DISPATCHED, O.DEAD),  # a later delivery of the same order gave up
            (O.DEAD, O.VALIDATED),  # `gateway replay`
            (O.DEAD, O.DISPATCHED),
            (O.DEAD, O.SUPERSEDED),  # `gateway dead-letters edit`: the corrected version is sent instead
            (O.DEAD, O.DISCARDED),  # `gateway dead-letters discard`: a person decided it never goes
            (O.DISCARDED, O.DEAD),  # another delivery of the same order gave up later
            (O.DISPATCHED, O.SHIPPED),
            (O.DISPATCHED, O.INVOICED),  # invoiced before (or without) a ship notice
            (O.SHIPPED, O.INVOICED),  # `gateway invoice`
        }
    ),
    DeliveryState: frozenset(
        {
            (None, D.PENDING),
            (None, D.HELD),  # an acknowledgement for a partner without an outbound channel
            (D.PENDING, D.IN_FLIGHT),
            (D.IN_FLIGHT, D.IN_FLIGHT),  # a lease that ran out, taken up again
            (D.IN_FLIGHT, D.SENT),
            (D.PENDING, D.SENT),  # a sender whose lease ran out reports the send after all
            (D.IN_FLIGHT, D.PENDING),  # a transient failure: retried later
            (D.IN_FLIGHT, D.DEAD),
            (D.PENDING, D.DEAD),  # given up before another try (its order was refused meanwhile)
            (D.DEAD, D.PENDING),  # `gateway replay`
            (D.DEAD, D.DISCARDED),  # `gateway dead-letters discard`, or replaced by `gateway dead-letters edit`
        }
    ),
    ReservationState: frozenset(
        {
            (None, ReservationState.RESERVED),
            (ReservationState.RESERVED, ReservationState.RELEASED),  # cancelled, changed or refused
        }
    ),
}


class IllegalTransition(GatewayError):
    """A state change the tables above do not allow: a bug, never bad input."""


def move(kind: type[enum.StrEnum], old: str | None, new: str) -> enum.StrEnum:
    """Check one move of `kind` from `old` (None: being created) to `new`; returns the new state.

    Raises IllegalTransition for a state that does not exist or a move not allowed.
    """
    try:
        target = kind(new)
        source = None if old is None else kind(old)
    except ValueError as exc:
        raise IllegalTransition(f"{kind.__name__}: {exc}") from None
    if (source, target) not in TRANSITIONS[kind]:
        raise IllegalTransition(f"{kind.__name__}: {old or '(new)'} -> {new} is not an allowed move")
    return target


def diagram(kinds: Mapping[str, type[enum.StrEnum]] | None = None) -> str:
    """The moves as text, one line per state and kind (what the README shows)."""
    kinds = kinds or {"Message": MessageState, "Order": OrderState, "Delivery": DeliveryState, "Reservation": ReservationState}
    lines: list[str] = []
    for title, kind in kinds.items():
        moves = TRANSITIONS[kind]
        lines.append(f"{title}:")
        created = sorted(str(new) for old, new in moves if old is None)
        lines.append(f"  (new)       -> {', '.join(created)}")
        for state in kind:
            targets = [str(new) for old, new in sorted(moves, key=lambda m: list(kind).index(m[1])) if old is state]
            if targets:
                lines.append(f"  {state.value:<11} -> {', '.join(targets)}")
    return "\n".join(lines)
