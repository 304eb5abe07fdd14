"""The outbox: one row per (order, connector), written in the same transaction as the order.

A row is `pending` until a worker claims it (`in_flight`, with a lease), then `sent`, back to
`pending` with a later `next_attempt_at` after a transient failure, or `dead` for a person.
A claim whose lease ran out (the worker crashed) is claimed again, with the same
idempotency key, so the target can recognise the repeat.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

__all__ = ["idempotency_key", "new_deliveries"]

_NAMESPACE = uuid.UUID("6f1c9a52-3c1e-4a57-9d0b-6e0b8f9f2a10")


def idempotency_key(order_id: str, connector: str) -> str:
    """Stable for the life of the delivery: every attempt and every replay sends the same key."""
    return str(uuid.uuid5(_NAMESPACE, f"{order_id}\x1f{connector}"))


def new_deliveries(order_id: str, connectors: Iterable[str], now: dt.datetime) -> list[dict[str, Any]]:
    """Rows for `insert(outbox)`, one per connector, due at once."""
    return [
        {
            "order_id": order_id,
            "connector": name,
            "idempotency_key": idempotency_key(order_id, name),
            "state": "pending",
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
            "next_attempt_at": now,
        }
        for name in connectors
    ]
