"""The delivery a connector would be handed for a stored order (`gateway mapping render`).

    delivery_for(store, "PO-1001", "erp")   the order's latest version, as a Delivery to "erp"

The order is found as `gateway show` finds it (an id's first characters, or a PO number; the
latest version). When the order already has a delivery to that connector, its idempotency
key, action and target reference are used, so the rendered request is the one a replay sends;
otherwise it is the create a first send would make. A split order's delivery to a per-part
connector is rendered as its first part (gateway.parts), as that part's send makes it.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from gateway.connector import Delivery
from gateway.errors import GatewayError
from gateway.parts import WHOLE, restrict
from gateway.store import Store
from gateway.store import tables as t
from gateway.store.outbox import ORDER, idempotency_key, part_routes
from gateway.store.queries import order_detail

__all__ = ["delivery_for"]


def delivery_for(store: Store, given: str, connector: str) -> Delivery:
    """The Delivery of order `given` (id prefix or PO number) to `connector`."""
    order = order_detail(store, given).order
    data: Any = order["data"]
    if isinstance(data, str | bytes):
        data = json.loads(data)
    if not isinstance(data, dict):
        raise GatewayError(f"order {order['id'][:8]} holds no readable order ({order['reason']}: {order['error']})")
    o, rt = t.outbox, t.order_routes
    with store.engine.connect() as conn:
        row = conn.execute(
            select(o.c.id, o.c.idempotency_key, o.c.action, o.c.target_reference, o.c.attempts, o.c.part, o.c.part_of)
            .where(o.c.order_id == order["id"], o.c.connector == connector, o.c.kind == ORDER)
            .order_by(o.c.part > 1, o.c.id.desc())  # the latest delivery; of a split one, part 1
            .limit(1)
        ).first()
        route = conn.execute(select(rt.c.route).where(rt.c.order_id == order["id"])).scalar_one_or_none()
        if row is not None and row.part:
            route = part_routes(conn, {(order["id"], row.part_of)}).get((order["id"], row.part_of))
    data = restrict(data, route if isinstance(route, dict) else None, row.part if row is not None else WHOLE, row.part_of if row is not None else 0)
    if row is None:
        return Delivery(outbox_id=0, order_id=order["id"], idempotency_key=idempotency_key(order["id"], connector), attempt=1, order=data)
    return Delivery(
        outbox_id=row.id,
        order_id=order["id"],
        idempotency_key=row.idempotency_key,
        attempt=row.attempts + 1,
        order=data,
        action=row.action,
        target_reference=row.target_reference,
    )
