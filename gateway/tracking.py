"""Shipments coming back: ask the shipping connectors (`Capabilities.shipments`) about the orders
they took and record what shipped through `gateway.fulfilment` (issue 11).

    poll = ShipmentPoll(store, config)
    poll.run("shipstation", connector)        # PollResult(asked=120, shipped=37, recorded=38, ...)
    record_found(fulfilment, order_id, "shipstation", connector.shipped(reference), state)

`ShipmentPoll.run` is the service's ``shipments:<connector>`` job, every
`poll_shipments_minutes` of the connector; `gateway shipped ORDER --record` records one order.
Each shipment the service reports becomes a `Fulfilment.record_shipment`: the order moves to
shipped, its history names the carrier and tracking number, the partner gets its 856/DESADV.
Reporting the same tracking number again has one effect (the fulfilment's rule), so a poll
that overlaps another, or a person recording by hand, records nothing twice.

Errors: a connector's DeliveryError while asking about one order is logged and that order
is asked again at the next poll; a shipment the fulfilment refuses (GatewayError) is logged.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.errors import DeliveryError, GatewayError
from gateway.fulfilment import Fulfilment, Recorded, Shipment
from gateway.store.tracking import awaiting_shipment

if TYPE_CHECKING:
    from gateway.config import GatewayConfig
    from gateway.connector import ShipmentSource
    from gateway.store import Store

__all__ = ["PollResult", "ShipmentPoll", "record_found", "shipments_of"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PollResult:
    """What one poll of one connector did."""

    asked: int = 0  # orders asked about
    shipped: int = 0  # of them, reported shipped
    recorded: int = 0  # shipments recorded (a repeat is not counted)
    errors: int = 0  # orders the connector could not answer about, or whose shipment was refused


def shipments_of(found: dict[str, Any], carrier: str) -> list[Shipment]:
    """The shipments in a `ShipmentSource.shipped` answer; `carrier` names one that gives none.
    A shipped order with no shipment listed gives one shipment without tracking."""
    listed = [s for s in found.get("shipments") or [] if isinstance(s, dict)]
    if not listed:
        return [Shipment(carrier=carrier, ship_date=_date(found.get("ship_date")))]
    return [
        Shipment(
            carrier=str(s.get("carrier") or carrier)[:60], service=str(s["service"])[:60] if s.get("service") else None,
            tracking=(str(s["tracking"])[:100],) if s.get("tracking") else (), ship_date=_date(s.get("ship_date") or found.get("ship_date")),
        )
        for s in listed
    ]


def record_found(fulfilment: Fulfilment, order_id: str, connector: str, found: dict[str, Any], state: str) -> list[Recorded]:
    """Record each shipment of `found` on the order (in `state` now); what was recorded anew.
    A shipment without a tracking number is recorded only on an order not shipped yet (it
    cannot be told from one recorded before)."""
    done = []
    for shipment in shipments_of(found, connector):
        if not shipment.tracking and state != "dispatched":
            continue
        result = fulfilment.record_shipment(order_id, shipment, by=connector)
        state = result.state
        if not result.repeat:
            done.append(result)
    return done


class ShipmentPoll:
    """Asks one connector at a time about the orders it took (the service's job)."""

    def __init__(self, store: Store, config: GatewayConfig):
        self.store = store
        self.fulfilment = Fulfilment(store, config)

    def run(self, name: str, connector: ShipmentSource) -> PollResult:
        """Ask `connector` (configured as `name`) about each dispatched order it took."""
        result = PollResult()
        for order_id, po_number, reference in awaiting_shipment(self.store, name):
            result.asked += 1
            try:
                found = connector.shipped(reference)
            except DeliveryError as exc:
                result.errors += 1
                log.warning("shipments from %s: order %s (PO %s, %s) not answered: %s", name, order_id[:8], po_number, reference, exc)
                continue
            if found is None:
                continue
            result.shipped += 1
            try:
                result.recorded += len(record_found(self.fulfilment, order_id, name, found, "dispatched"))
            except GatewayError as exc:
                result.errors += 1
                log.warning("shipments from %s: shipment of order %s (PO %s) not recorded: %s", name, order_id[:8], po_number, exc)
        if result.asked:
            log.info("shipments from %s: %d order(s) asked, %d shipped, %d shipment(s) recorded, %d error(s)",
                     name, result.asked, result.shipped, result.recorded, result.errors)
        return result


def _date(value: object) -> dt.date | None:
    """The date of an ISO date or timestamp ("2026-12-05", "2026-12-05T00:00:00.0000000"); None if not one."""
    try:
        return dt.date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None
