"""What the shops were last told of our stock (connectors/shopstock pushes it): the available
quantity per SKU as the inventory master data gives it, and what each shop last received."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from decimal import ROUND_FLOOR, Decimal

from sqlalchemy import delete, func, insert, select

from gateway.store import Store
from gateway.store import tables as t

__all__ = ["available", "forget", "pushed", "record"]

_CHUNK = 500


def available(store: Store, warehouses: Collection[str] | None = None) -> dict[str, int]:
    """SKU -> what can be sold now: on hand less reserved, summed over `warehouses` (all when
    None), in whole units, never below 0 (a shop cannot sell a fraction or a debt)."""
    s = t.stock
    query = select(s.c.sku, func.sum(s.c.on_hand - s.c.reserved)).group_by(s.c.sku)
    if warehouses:
        query = query.where(s.c.warehouse.in_(sorted(warehouses)))
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return {sku: max(0, int(Decimal(str(q or 0)).to_integral_value(ROUND_FLOOR))) for sku, q in rows}


def pushed(store: Store, shop: str) -> dict[str, int]:
    """SKU -> the quantity `shop` last received."""
    ss = t.shop_stock
    with store.engine.connect() as conn:
        return {r.sku: r.quantity for r in conn.execute(select(ss.c.sku, ss.c.quantity).where(ss.c.shop == shop))}


def record(store: Store, shop: str, sent: Mapping[str, int], at: dt.datetime) -> None:
    """`shop` now holds `sent` (SKU -> quantity); written after the shop confirmed each."""
    if not sent:
        return
    ss = t.shop_stock
    skus = sorted(sent)
    with store.begin() as conn:
        for i in range(0, len(skus), _CHUNK):
            part = skus[i : i + _CHUNK]
            conn.execute(delete(ss).where(ss.c.shop == shop, ss.c.sku.in_(part)))
            conn.execute(insert(ss), [{"shop": shop, "sku": k, "quantity": sent[k], "pushed_at": at} for k in part])


def forget(store: Store, shop: str) -> int:
    """Forget what `shop` was told (the next push sends everything); how many rows."""
    ss = t.shop_stock
    with store.begin() as conn:
        return conn.execute(delete(ss).where(ss.c.shop == shop)).rowcount or 0
