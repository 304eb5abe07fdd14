"""Status coming back: ask the connectors about the orders they took, and record what their
systems did with them (shipments, invoices) through `gateway.fulfilment` (issue 11).

    poll = StatusPoll(store, config)
    poll.run("erp", connector)        # PollResult(asked=120, shipped=0, invoiced=37, recorded=38, ...)
    poll_configured(store, config)    # one poll of each connector with poll_status_minutes (`gateway run --once`)

Every connector that answers is asked `status(reference) -> StatusFound`; what kind it is
(declared data, `gateway.connector.Capabilities`) decides which orders it is asked about:

    status=True      an ERP (Tryton, Odoo, ERPNext): shipments and posted invoices. Asked about
                     each order it took that is dispatched or shipped (not yet invoiced).
    shipments=True   a shipping service (ShipStation): shipments only. Asked about each
                     dispatched order, and about a split order's other parts after it shipped.

A connector whose answers carry shipments (shipments=True: the shipping services, and Tryton,
which reads its customer shipments) is also asked about an order invoiced with no shipment
recorded (an ERP that bills on order invoices before anything ships), until one is recorded,
for `UNSHIPPED_DAYS` after the order was received.

`StatusPoll.run` is the service's ``status:<connector>`` job, every `poll_status_minutes` of
the connector (old name: `poll_shipments_minutes`); `gateway run --once` runs one poll of each
such connector before its work (the 810s and 856s it queues are sent in the same run); `gateway
shipped ORDER --record` records one order. Each shipment becomes a `Fulfilment.record_shipment`
(the order moves to shipped, its history names carrier and tracking, the partner gets its
856/DESADV); each invoice a `Fulfilment.record_invoice` (the order moves to invoiced, its history
names the invoice and its total, the partner gets its 810/INVOIC). The amounts are rounded to
the currency's places here (`gateway.money`), once for every connector. Reporting the same
tracking number or invoice number again has one effect (the fulfilment's rule), so a poll that
overlaps another, or a person recording by hand, records nothing twice.

Errors: a connector's DeliveryError while asking about one order is logged and that order is
asked again at the next poll; a shipment or invoice the fulfilment refuses (GatewayError) is
logged. Neither stops the poll.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from gateway.connector import InvoiceFound, ShipmentFound, StatusFound
from gateway.errors import DeliveryError, GatewayError
from gateway.fulfilment import Fulfilment, Invoice, Recorded, Shipment
from gateway.money import money
from gateway.states import OrderState
from gateway.store.tracking import awaiting_status, mark_shipped

if TYPE_CHECKING:
    from gateway.config import GatewayConfig
    from gateway.connector import Connector, StatusSource
    from gateway.plugins import TargetConfigBase
    from gateway.store import Store

__all__ = [
    "PollResult", "StatusPoll", "invoice_of", "poll_configured", "poll_connector", "record_found", "shipments_of",
]

log = logging.getLogger(__name__)

# The orders a connector is asked about: sent, and not yet as far as it can report. An order
# the ERP invoiced before anything shipped (billed on order) is invoiced with no shipment: it
# is still asked about its shipment, by the connectors whose status carries shipments
# (Capabilities.shipments), until one is recorded.
_ASKED_SHIPMENTS: tuple[str, ...] = (OrderState.DISPATCHED.value,)
_ASKED_STATUS: tuple[str, ...] = (OrderState.DISPATCHED.value, OrderState.SHIPPED.value)
_UNSHIPPED: tuple[str, ...] = (OrderState.INVOICED.value,)
# How long such an order is asked: one that never ships (a service, a cancelled delivery) must
# not be asked at every poll for ever, taking the places of the orders behind it.
UNSHIPPED_DAYS = 60


@dataclass(slots=True)
class PollResult:
    """What one poll of one connector did."""

    asked: int = 0  # orders asked about
    shipped: int = 0  # of them, reported shipped
    invoiced: int = 0  # of them, reported invoiced
    recorded: int = 0  # shipments and invoices recorded (a repeat is not counted)
    errors: int = 0  # orders the connector could not answer about, or whose news was refused


def shipments_of(found: StatusFound, carrier: str) -> list[Shipment]:
    """The shipments to record for `found`; `carrier` names those whose system names none.
    Shipped without any listed: one shipment without tracking."""
    listed = found.shipments or ((ShipmentFound(),) if found.shipped else ())
    return [
        Shipment(
            carrier=(s.carrier or carrier)[:60], service=s.service[:60] if s.service else None,
            tracking=(s.tracking[:100],) if s.tracking else (), ship_date=s.ship_date,
        )
        for s in listed
    ]


def invoice_of(found: InvoiceFound) -> Invoice:
    """The invoice to record for `found`: its amounts rounded to the currency's places."""
    return Invoice(
        number=found.number.strip()[:60], date=found.date, tax=money(found.tax, found.currency),
        total=money(found.total, found.currency), currency=(found.currency or "").upper()[:3] or None,
    )


def record_found(
    fulfilment: Fulfilment, order_id: str, connector: str, found: StatusFound, state: str, *, unshipped: bool = False
) -> list[Recorded]:
    """Record each shipment, then each invoice, of `found` on the order (in `state` now); what
    was recorded anew. A shipment without a tracking number is recorded only on an order with
    none recorded yet (it cannot be told from one recorded before): a dispatched order, or one
    the caller knows is `unshipped` (invoiced first: `Awaiting.unshipped`)."""
    done = []
    for shipment in shipments_of(found, connector):
        if not shipment.tracking and state != OrderState.DISPATCHED.value and not unshipped:
            continue
        unshipped = False  # one recorded now
        result = fulfilment.record_shipment(order_id, shipment, by=connector)
        state = result.state
        if not result.repeat:
            done.append(result)
    for invoice in found.invoices:
        result = fulfilment.record_invoice(order_id, invoice_of(invoice), by=connector)
        state = result.state
        if not result.repeat:
            done.append(result)
    return done


class StatusPoll:
    """Asks one connector at a time about the orders it took (the service's job)."""

    def __init__(self, store: Store, config: GatewayConfig):
        self.store = store
        self.fulfilment = Fulfilment(store, config)

    def run(self, name: str, connector: Connector) -> PollResult:
        """Ask `connector` (configured as `name`) about each order it took that it may have news
        of; a connector that offers neither status nor shipments is asked nothing."""
        caps = connector.capabilities
        parts_in: tuple[str, ...] = ()
        if caps.status:
            states = _ASKED_STATUS
        elif caps.shipments:
            states = _ASKED_SHIPMENTS
            # A split order is shipped once its first part is: its other parts are still asked.
            parts_in = (OrderState.SHIPPED.value, OrderState.INVOICED.value)
        else:
            log.warning("status: connector %s cannot say what became of an order; poll_status_minutes ignored", name)
            return PollResult()
        ask = cast("StatusSource", connector).status
        result = PollResult()
        reported: list[int] = []
        for order_id, po_number, state, reference, outbox_id, unshipped in awaiting_status(
            self.store, name, states, parts_in=parts_in, unshipped_in=_UNSHIPPED if caps.shipments else (),
            unshipped_since=self.store.db_now() - dt.timedelta(days=UNSHIPPED_DAYS),
        ):
            result.asked += 1
            try:
                found = ask(reference)
            except DeliveryError as exc:
                result.errors += 1
                log.warning("status from %s: order %s (PO %s, %s) not answered: %s", name, order_id[:8], po_number, reference, exc)
                continue
            result.shipped += bool(found.shipped or found.shipments)
            result.invoiced += bool(found.invoices)
            if not (found.shipped or found.shipments or found.invoices):
                continue
            try:
                result.recorded += len(record_found(self.fulfilment, order_id, name, found, state, unshipped=unshipped))
            except GatewayError as exc:
                result.errors += 1
                log.warning("status from %s: news of order %s (PO %s) not recorded: %s", name, order_id[:8], po_number, exc)
                continue
            if parts_in and (found.shipped or found.shipments):
                reported.append(outbox_id)
        mark_shipped(self.store, reported)
        if result.asked:
            log.info("status from %s: %d order(s) asked, %d shipped, %d invoiced, %d recorded, %d error(s)",
                     name, result.asked, result.shipped, result.invoiced, result.recorded, result.errors)
        return result


def poll_connector(store: Store, config: GatewayConfig, target: TargetConfigBase) -> PollResult:
    """One poll of the configured connector `target` (built for it, closed after)."""
    from gateway import plugins

    connector = plugins.build("target", target)
    try:
        return StatusPoll(store, config).run(target.name, connector)
    finally:
        connector.close()


def poll_configured(store: Store, config: GatewayConfig) -> dict[str, PollResult]:
    """One poll of each connector with `poll_status_minutes` (`gateway run --once`)."""
    return {t.name: poll_connector(store, config, t) for t in config.connectors if t.poll_status_minutes}

