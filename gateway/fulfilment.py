"""What happens to an order after it was sent: shipments, invoices, and the documents they earn.

The one entry point for everyone who learns that an order shipped or was invoiced: the
`gateway ship` / `gateway invoice` commands, the operator API (POST /api/orders/{id}/shipment
and /invoice), and connectors reporting back from an ERP or a carrier (ShipStation, EasyPost):

    from gateway.fulfilment import Fulfilment, Invoice, Shipment, ShippedLine

    f = Fulfilment(store, config)
    done = f.record_shipment("PO-1001", Shipment(carrier="UPS", tracking=("1Z999AA10123456784",),
                                                 lines=(ShippedLine("WID-1", Decimal(2)),)))
    done.state          # "shipped"
    done.documents      # ["856 000000007"] when the partner wants ship notices
    f.record_invoice(done.order_id, Invoice(number="INV-1", tax=Decimal("1.50")))
    f.send_stock_report("acme")

Each call is one transaction: the shipment or invoice row (`gateway.store.shipments`), the
order's move (dispatched -> shipped -> invoiced, `gateway.states`), an event in its history
naming the carrier and tracking numbers or the invoice, and the partner's document (856 /
DESADV, 810 / INVOIC) as an outbox row for its channel, with the partner's next control
numbers. Each document is read back (pyx12, pydifact: `gateway.acks.readback`) before it is
queued; the dispatcher sends it like an acknowledgement and the partner's 997/CONTRL to it is
matched like any other (`gateway documents`). A shipped or invoiced order refuses changes
(ALREADY_SHIPPED, `gateway.versions`). With `acks.shipping_email` and `smtp:`, the buyer (the
order's customer e-mail, else its buyer contact's) gets a shipping confirmation e-mail,
queued in the same transaction and sent as an order confirmation is.

Reporting the same thing again has one effect: a shipment with the same tracking numbers, or
an invoice with the same number, as one recorded on the order already is answered with
`Recorded(repeat=True)` and nothing is recorded or sent again (a connector may report twice).

Errors (`GatewayError`, nothing recorded): the order is unknown or ambiguous, it is not in a
state that can ship (it must have been sent: dispatched, or shipped already for a further
shipment), a shipped line names no line of the order, or a document cannot be written (a
value holds an X12 separator). They are the caller's to fix, never retried.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from gateway.acks.edifact import read_edifact_header
from gateway.acks.invoice import Invoice, build_810, build_invoic, invoice_total
from gateway.acks.model import AckValueError
from gateway.acks.outbound import _planned, _starts_interchange
from gateway.acks.readback import check_edifact, check_x12
from gateway.acks.ship_notice import (
    Shipment,
    ShippedLine,
    build_856,
    build_desadv,
    gs08_of,
    shipped_lines,
)
from gateway.acks.stock_report import build_846, build_invrpt
from gateway.acks.x12 import read_isa
from gateway.errors import GatewayError
from gateway.formats.base import Envelope
from gateway.model import Order
from gateway.states import OrderState
from gateway.store import documents, messages
from gateway.store import shipments as repo
from gateway.store.control_numbers import StoredControlNumbers

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from gateway.config import GatewayConfig, PartnerConfig
    from gateway.store import Store

log = logging.getLogger(__name__)

__all__ = ["Fulfilment", "Invoice", "Recorded", "Shipment", "ShippedLine", "buyer_address", "shipping_email"]

# Where a shipment or an invoice may be recorded, and the state it leaves the order in.
_SHIP_FROM = {OrderState.DISPATCHED.value: OrderState.SHIPPED, OrderState.SHIPPED.value: None, OrderState.INVOICED.value: None}
_INVOICE_FROM = {OrderState.DISPATCHED.value: OrderState.INVOICED, OrderState.SHIPPED.value: OrderState.INVOICED, OrderState.INVOICED.value: None}
# What each standard's document of each kind is called, and how it is read back.
_KINDS = {("shipment", "x12"): "856", ("shipment", "edifact"): "DESADV", ("invoice", "x12"): "810", ("invoice", "edifact"): "INVOIC"}


@dataclass(frozen=True, slots=True)
class Recorded:
    """What one call recorded."""

    order_id: str
    po_number: str | None
    state: str  # the order's state afterwards
    documents: list[str] = field(default_factory=list)  # "856 000000007 for acme", ...
    repeat: bool = False  # recorded before (same tracking numbers / invoice number): nothing done again


class Fulfilment:
    """Records shipments and invoices on orders and queues the partners' documents."""

    def __init__(self, store: Store, config: GatewayConfig):
        self.store = store
        self.config = config
        self._partners = {p.name: p for p in config.partners}

    def record_shipment(self, order: str, shipment: Shipment, *, by: str = "", now: dt.datetime | None = None) -> Recorded:
        """Record `shipment` of `order` (an id, id prefix or PO number): the order is shipped,
        its history names the carrier and tracking numbers, the partner gets its 856/DESADV
        where it wants ship notices. GatewayError when it cannot be recorded (nothing is)."""
        if not shipment.carrier.strip():
            raise GatewayError("name the carrier of the shipment (--carrier)")
        with self.store.begin() as conn:
            row = repo.locked_order(conn, order, prefer=tuple(_SHIP_FROM))
            tracking = ", ".join(shipment.tracking)
            if tracking and any(s["tracking"] == tracking[:400] for s in repo.of_order(conn, row["id"], "shipment")):
                return Recorded(row["id"], row["po_number"], row["state"], repeat=True)  # a carrier or connector reporting again
            model = self._order(row)
            new = self._next(row, _SHIP_FROM, "shipped")
            items = self._lines(model, shipment.lines)
            what = ", ".join(f"{line.sku or line.buyer_part_number or line.gtin or i + 1} x {q}" for i, line, q in items)
            detail = f"shipped by {shipment.carrier}{' ' + shipment.service if shipment.service else ''}" + (
                f", tracking {tracking}" if tracking else ""
            ) + f": {what}" + (f" (recorded by {by})" if by else "")
            data = {
                "carrier": shipment.carrier, "service": shipment.service, "tracking": list(shipment.tracking),
                "ship_date": (shipment.ship_date or _today(now)).isoformat(),
                "lines": [{"sku": s.sku, "quantity": str(s.quantity)} for s in shipment.lines],
            }
            number = repo.record(
                conn, row, "shipment", data, new_state=new, detail=detail, carrier=shipment.carrier[:60],
                service=(shipment.service or "")[:60] or None, tracking=tracking[:400] or None, day=shipment.ship_date, by=by,
            )
            cfg = self._partners.get(row["partner"] or "")
            sent = self._document(conn, row, model, cfg, "shipment", shipment, now) if cfg is not None and cfg.acks.ship_notice else []
            if cfg is not None and cfg.acks.shipping_email:
                sent += self._shipping_email(conn, row, model, shipment, items, number)
            return Recorded(row["id"], row["po_number"], (new or OrderState(row["state"])).value, sent)

    def record_invoice(self, order: str, invoice: Invoice, *, by: str = "", now: dt.datetime | None = None) -> Recorded:
        """Record `invoice` of `order`: the order is invoiced, its history names the invoice,
        the partner gets its 810/INVOIC where it wants invoices."""
        if not invoice.number.strip():
            raise GatewayError("give the invoice number (--number)")
        with self.store.begin() as conn:
            row = repo.locked_order(conn, order, prefer=tuple(_INVOICE_FROM))
            if any(s["number"] == invoice.number[:60] for s in repo.of_order(conn, row["id"], "invoice")):
                return Recorded(row["id"], row["po_number"], row["state"], repeat=True)
            model = self._order(row)
            new = self._next(row, _INVOICE_FROM, "invoiced")
            self._lines(model, invoice.lines)
            try:
                total = invoice_total(model, invoice)
            except AckValueError as exc:
                raise GatewayError(str(exc)) from None
            currency = invoice.currency or model.currency or ""
            detail = f"invoiced: invoice {invoice.number}, total {total} {currency}".rstrip() + (f" (recorded by {by})" if by else "")
            data = {
                "number": invoice.number, "date": (invoice.date or _today(now)).isoformat(), "currency": currency or None,
                "tax": None if invoice.tax is None else str(invoice.tax), "freight": None if invoice.freight is None else str(invoice.freight),
                "total": str(total), "lines": [{"sku": s.sku, "quantity": str(s.quantity)} for s in invoice.lines],
            }
            repo.record(conn, row, "invoice", data, new_state=new, detail=detail, number=invoice.number[:60], day=invoice.date, total=total, by=by)
            cfg = self._partners.get(row["partner"] or "")
            sent = self._document(conn, row, model, cfg, "invoice", invoice, now) if cfg is not None and cfg.acks.invoice else []
            return Recorded(row["id"], row["po_number"], (new or OrderState(row["state"])).value, sent)

    def send_stock_report(self, partner: str, *, now: dt.datetime | None = None) -> str:
        """Queue an 846/INVRPT with the stock available for `partner` now (its
        acks.stock_report.skus, else every SKU); returns what was queued."""
        cfg = self._partners.get(partner)
        if cfg is None:
            raise GatewayError(f"no partner named {partner!r}; `gateway partners` lists them")
        skus = cfg.acks.stock_report.skus if cfg.acks.stock_report is not None else None
        with self.store.begin() as conn:
            levels = repo.available_stock(conn, skus)
            envelope, gs08 = self._report_envelope(conn, cfg)
            numbers = StoredControlNumbers(conn)
            try:
                if envelope.standard == "x12":
                    kind, text = "846", build_846(levels, envelope=envelope, control_numbers=numbers, partner=cfg.name, gs08=gs08, now=now)
                    check_x12(text, kind)
                else:
                    kind, text = "INVRPT", build_invrpt(levels, envelope=envelope, control_numbers=numbers, partner=cfg.name, now=now)
                    check_edifact(text, kind)
            except AckValueError as exc:
                raise GatewayError(f"no stock report for {partner}: {exc}") from None
            numbers.save()
            return self._queue(conn, None, None, cfg, kind, text, f"{len(levels)} SKU(s)")

    # -- the pieces ---------------------------------------------------------------------------

    @staticmethod
    def _order(row: dict[str, Any]) -> Order:
        data = row["data"]
        if data is None:
            raise GatewayError(f"order {row['id'][:8]} was refused unread; it has nothing to ship or invoice")
        return Order.model_validate_json(data) if isinstance(data, str | bytes) else Order.model_validate(data)

    @staticmethod
    def _next(row: dict[str, Any], moves: dict[str, OrderState | None], what: str) -> OrderState | None:
        if row["state"] not in moves:
            raise GatewayError(
                f"order {row['id'][:8]} (PO {row['po_number']}) is {row['state']}: only an order sent to its "
                f"connectors (dispatched) can be {what}"
            )
        return moves[row["state"]]

    @staticmethod
    def _lines(order: Order, lines: tuple[ShippedLine, ...]) -> list[Any]:
        try:
            return shipped_lines(order, lines)
        except AckValueError as exc:
            raise GatewayError(str(exc)) from None

    def _document(self, conn: Connection, row: dict[str, Any], order: Order, cfg: PartnerConfig, what: str, fact: Any, now: dt.datetime | None) -> list[str]:
        """Build, read back and queue the partner's document for a shipment or an invoice."""
        standard = str(order.channel)
        kind = _KINDS.get((what, standard))
        if kind is None:
            return []  # an order that did not come by EDI gets no EDI document
        numbers = StoredControlNumbers(conn)
        builders: dict[str, Callable[..., str]] = {"856": build_856, "DESADV": build_desadv, "810": build_810, "INVOIC": build_invoic}
        try:
            text = builders[kind](order, fact, control_numbers=numbers, partner=cfg.name, now=now, **_syntax_of(conn, row, standard))
            if standard == "x12":
                check_x12(text, kind)
            else:
                check_edifact(text, kind)
        except AckValueError as exc:
            raise GatewayError(f"no {kind} for PO {order.po_number}: {exc}") from None
        numbers.save()
        return [self._queue(conn, row["message_id"], row["id"], cfg, kind, text, f"PO {order.po_number}")]

    def _shipping_email(self, conn: Connection, row: dict[str, Any], order: Order, shipment: Shipment, items: list[Any], number: int) -> list[str]:
        """The buyer's shipping confirmation, queued for `smtp:` as a stored e-mail (sent as it
        is by the dispatcher, like an order confirmation); none without smtp: or a usable
        buyer address."""
        smtp = self.config.smtp
        to = buyer_address(order)
        if smtp is None or to is None:
            why = "no smtp: section" if smtp is None else "the order names no usable buyer e-mail"
            log.info("no shipping e-mail for PO %s: %s", order.po_number, why)
            return []
        from email import policy

        from gateway.email_reply import make_message_id

        msg = shipping_email(order, shipment, items, to=to, from_address=smtp.from_address)
        msg["Message-ID"] = make_message_id(f"shipment-{number}", smtp.from_domain)
        doc = documents.NewDocument(
            kind=documents.CONFIRMATION, partner=row["partner"], body=msg.as_bytes(policy=policy.SMTP), channel="smtp", order_id=row["id"]
        )
        said = f"shipping e-mail to {to} (PO {order.po_number})"
        documents.queue(conn, None, [doc], event_detail=said)
        return [said]

    @staticmethod
    def _queue(conn: Connection, message_id: str | None, order_id: str | None, cfg: PartnerConfig, kind: str, text: str, about: str) -> str:
        p = _planned(kind, cfg, text)
        doc = documents.NewDocument(
            kind=kind, partner=cfg.name, body=text.encode("utf-8"), channel=p.channel, control_number=p.control_number, order_id=order_id,
            held_reason=None if p.channel is not None else f"partner {cfg.name} has no outbound channel (acks.outbound, acks.sftp or acks.email) configured",
        )
        said = f"{documents.describe(kind, p.control_number, cfg.name)} ({about})"
        documents.queue(conn, message_id, [doc], event_detail=said)
        return said

    @staticmethod
    def _report_envelope(conn: Connection, cfg: PartnerConfig) -> tuple[Envelope, str]:
        """The envelope a stock report answers: the partner's last EDI order's, else one made
        from its first configured id and ours (acks.x12_id / acks.edifact_id)."""
        for channel in ("x12", "edifact"):
            last = repo.latest_order_of(conn, cfg.name, channel)
            if last is not None:
                data = last["data"]
                order = Order.model_validate_json(data) if isinstance(data, str | bytes) else Order.model_validate(data)
                s = order.source
                env = Envelope(
                    standard=channel, sender_id=s.sender_id, sender_qualifier=s.sender_qualifier, receiver_id=s.receiver_id,
                    receiver_qualifier=s.receiver_qualifier, test_indicator=s.test_indicator,
                )
                return env, gs08_of(order)
        if cfg.x12_ids and cfg.acks.x12_id:
            theirs, ours = _split(cfg.x12_ids[0], qualifier_first=True, default="ZZ"), _split(cfg.acks.x12_id, qualifier_first=True, default="ZZ")
            return Envelope(standard="x12", sender_id=theirs[1], sender_qualifier=theirs[0], receiver_id=ours[1], receiver_qualifier=ours[0]), "004010"
        if cfg.edifact_ids and cfg.acks.edifact_id:
            # edifact_ids are written 'QQ:ID', acks.edifact_id 'ID:QQ' (as config.py describes them)
            theirs, ours = _split(cfg.edifact_ids[0], qualifier_first=True), _split(cfg.acks.edifact_id, qualifier_first=False)
            return Envelope(standard="edifact", sender_id=theirs[1], sender_qualifier=theirs[0], receiver_id=ours[1], receiver_qualifier=ours[0]), ""
        raise GatewayError(
            f"partner {cfg.name} has sent no EDI order yet and its configuration names no ids for the envelope: "
            "set its x12_ids and acks.x12_id (or edifact_ids and acks.edifact_id)"
        )


def _today(now: dt.datetime | None) -> dt.date:
    """The date the documents carry by default (UTC, as their envelopes)."""
    return (now or dt.datetime.now(dt.UTC)).date()


def _syntax_of(conn: Connection, row: dict[str, Any], standard: str) -> dict[str, Any]:
    """The separators (X12) or syntax and separators (EDIFACT) of the interchange the order came
    in, as its 855/ORDRSP copies them; none when the stored message does not start with it (the
    order came inside an e-mail): the standard's defaults are used."""
    head = messages.head(conn, row["message_id"])
    if not _starts_interchange(head, standard):
        return {}
    try:
        return {"separators": read_isa(head).separators} if standard == "x12" else {"header": read_edifact_header(head)}
    except AckValueError:
        return {}


_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+")


def buyer_address(order: Order) -> str | None:
    """The buyer's e-mail (a cart's customer e-mail, else the buyer's contact), only when it is
    one plain address: anything else from the order never becomes a recipient."""
    contact = order.buyer.contact if order.buyer is not None else None
    for value in (order.customer_email, contact.email if contact is not None else None):
        if value and len(value) <= 254 and _ADDRESS.fullmatch(value.strip()):
            return value.strip()
    return None


def _plain(value: object) -> str:
    """A value from the order as one line of mail text: control characters dropped."""
    return "".join(c for c in str(value) if c >= " " and c != "\x7f")[:200]


def shipping_email(order: Order, shipment: Shipment, items: list[Any], *, to: str, from_address: str) -> EmailMessage:
    """The shipping confirmation to the buyer: carrier, service, tracking numbers and lines."""
    msg = EmailMessage()
    msg["From"] = from_address
    msg["To"] = to
    msg["Subject"] = f"Your order {_plain(order.po_number)} has shipped"
    msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    lines = [
        f"Your order {_plain(order.po_number)} has shipped with {_plain(shipment.carrier)}"
        + (f" ({_plain(shipment.service)})" if shipment.service else "") + ".",
        "",
    ]
    if shipment.tracking:
        lines += ["Tracking number(s):", *(f"  {_plain(t)}" for t in shipment.tracking), ""]
    lines.append("Shipped:")
    for i, line, quantity in items:
        name = line.description or line.sku or line.buyer_part_number or line.gtin or f"line {i + 1}"
        lines.append("  " + " ".join(v for v in (str(quantity), _plain(line.uom or ""), _plain(name)) if v))
    msg.set_content("\n".join(lines) + "\n")
    return msg


def _split(value: str, *, qualifier_first: bool, default: str | None = None) -> tuple[str | None, str]:
    """(qualifier, id) of 'QQ:ID' or 'ID:QQ'; without a colon, (`default`, value)."""
    if ":" not in value:
        return default, value
    a, b = value.split(":", 1)
    return (a, b) if qualifier_first else (b, a)
