"""Pushing our available stock to the shops configured under `stock_push:` (issue 13): the
levels come from the inventory master data, the diff from what each shop last confirmed, the
calls from connectors/shopstock. Run by `gateway data push stock --to SHOP` and, every
`every_minutes`, by `gateway run`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from connectors.shopstock.push import PushReport, ShopStockPusher
from gateway.store import shop_stock as shop_stock_repo

if TYPE_CHECKING:
    from connectors.shopstock.config import ShopStockConfig
    from gateway.store import Store

log = logging.getLogger(__name__)

__all__ = ["push_stock"]


def push_stock(store: Store, shop: ShopStockConfig, *, dry_run: bool = False, everything: bool = False, **pusher: Any) -> PushReport:
    """Tell `shop` what changed since it last confirmed (`everything`: every level); the
    levels it confirms are recorded, so a push cut short resumes where it stopped."""
    levels = shop_stock_repo.available(store, shop.warehouses or None)
    previous = {} if everything else shop_stock_repo.pushed(store, shop.name)
    report = ShopStockPusher(shop, **pusher).push(levels, previous, dry_run=dry_run)
    if not dry_run:
        shop_stock_repo.record(store, shop.name, report.sent, store.db_now())
    if report.failed or report.stopped:
        log.warning(
            "stock push %s: %d of %d sent, %d failed%s",
            shop.name, len(report.sent), report.changed, len(report.failed), f"; stopped: {report.stopped}" if report.stopped else "",
        )  # fmt: skip
    return report
