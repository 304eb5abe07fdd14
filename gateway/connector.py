"""The two plugin surfaces: a Source polls and acknowledges; a Connector sends one order.

Retry, de-duplication, state and logging live in the core, never in a plugin: a source does
not parse, a connector does not retry on its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol

__all__ = [
    "Capabilities",
    "Connector",
    "Delivery",
    "InvoiceFound",
    "RawMessage",
    "Receipt",
    "RenderedRequest",
    "Renderer",
    "ShipmentEvent",
    "ShipmentFound",
    "ShipmentWebhooks",
    "Source",
    "StatusFound",
    "StatusSource",
    "StockSource",
    "WebhookRequest",
    "mask",
]

# stored/duplicate: committed (and, for a source that routes by outcome, processed without a
# problem); review: a person must look at it; rejected: refused, by the source or the pipeline.
AckOutcome = Literal["stored", "duplicate", "review", "rejected"]


@dataclass(slots=True)
class RawMessage:
    """Bytes as a source received them, plus where they came from."""

    body: bytes
    source: str  # configured source name
    source_ref: str  # identity inside the source (relative path, mailbox UID, ...)
    display_name: str  # sanitized name for people; never used as a path
    ack_token: Any = None  # whatever the source needs to acknowledge this message
    rejected: str | None = None  # set by a source that refuses the item itself (symlink, too large)
    # The message's own identity where the source has one (an e-mail's Message-ID): the
    # same identity from the same source again is a duplicate even if the bytes differ.
    dedupe_key: str | None = None


class Source(Protocol):
    name: str

    def poll(self) -> Iterator[RawMessage]:
        """Yield messages that are ready to be stored. Must not acknowledge anything."""
        ...

    def ack(self, message: RawMessage, outcome: AckOutcome, message_id: str) -> None:
        """The source's acknowledging action (move the file, move the mail, advance a cursor).

        gateway.ingest calls it once per offered message, only after the message is committed
        as `message_id`; the single-shot guard lives there. The item may be gone already
        (another poll or node acknowledged it first): that is not an error.
        """
        ...


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a connector promises; declared data, never probed."""

    idempotency_key: bool = False  # the target honours an Idempotency-Key header
    idempotent: bool = False  # sending the same delivery twice has one effect: unknown errors may be retried
    updates: bool = False  # can take a changed version of an order it already has (action "update")
    cancels: bool = False  # can cancel an order it already has (action "cancel")
    stock: bool = False  # offers stock_levels(): the ERP's on-hand quantities for the inventory master data
    # status(reference) reports shipments, with tracking: a shipping service (then it is asked about
    # dispatched orders and a split order's other parts, never for invoices) or an ERP that reads
    # its deliveries. `gateway shipped` asks it, and an order invoiced before anything shipped is
    # still asked about its shipment.
    shipments: bool = False
    shipment_webhooks: bool = False  # offers shipment_events(): its service reports shipments by webhook (configured to)
    status: bool = False  # offers status(reference): what the system did with the order since (shipments, invoices)
    renders: bool = False  # offers render(): the exact request a send would make, without sending (`gateway mapping render`)
    ships: bool = False  # a shipping service: a split order reaches it once per warehouse part (`per_part`, gateway.parts)


class StockSource(Protocol):
    """A connector whose system knows the stock (`Capabilities.stock`): `gateway data pull
    stock --from NAME` refreshes the inventory master data from it."""

    def stock_levels(self, codes: Collection[str] | None = None) -> list[dict[str, Any]]:
        """Rows of the master-data ``stock`` kind: sku, warehouse, on_hand (Decimal)."""
        ...


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """One webhook as the intake received it, for a connector to verify and read."""

    headers: Mapping[str, str]  # names lower-cased
    query: Mapping[str, str]  # the URL's query parameters (a token some services put there)
    body: bytes  # the raw bytes, exactly as received: signatures cover these


@dataclass(frozen=True, slots=True)
class ShipmentEvent:
    """One shipment a service reported by webhook, and how to find the order it belongs to.

    The core finds the order by `order_key` (the idempotency key the connector sent with the
    order, `Delivery.idempotency_key`) or by `reference` (the receipt reference the connector
    returned for it), whichever matches; then records `found` as a poll's answer would be."""

    reference: str | None  # the service's id of the order (the receipt reference), if the event names it
    order_key: str | None  # the key the connector created the order with, if the event names it
    found: StatusFound  # as StatusSource.status answers: shipped, with the shipment reported
    about: str  # for log lines: the service's event and object ids, never secrets or addresses


class ShipmentWebhooks(Protocol):
    """A connector whose service reports shipments by webhook (`Capabilities.shipment_webhooks`):
    the intake's POST /intake/shipments/{connector} hands it each request."""

    def webhook_secrets(self) -> list[bytes]:
        """The webhook secrets accepted now, from the environment: the current one (its
        ``webhook_secret_env``), then the previous one while the service is switched over
        (``webhook_previous_secret_env``). ConfigError when a variable is unset or too short
        (`gateway config check` says so)."""
        ...

    def shipment_events(self, request: WebhookRequest) -> list[ShipmentEvent]:
        """Verify `request` (constant time) and read the shipments it reports; [] for a
        verified event that reports none. WebhookUnauthorized for a bad or missing signature
        or token, WebhookRefused for a body the service does not send, ConfigError without a
        secret, DeliveryError when the service must be asked and does not answer."""
        ...


@dataclass(frozen=True, slots=True)
class ShipmentFound:
    """One shipment a system reports for an order it took."""

    carrier: str | None = None  # None: the system names none (the connector's name is recorded)
    service: str | None = None
    tracking: str | None = None  # None: no tracking number (recorded only on an order not shipped yet)
    ship_date: dt.date | None = None


@dataclass(frozen=True, slots=True)
class InvoiceFound:
    """One posted invoice a system reports for an order it took. Amounts as the system holds
    them (an ERP's float made Decimal with ``Decimal(str(x))``); the core rounds them to the
    currency's places before recording."""

    number: str
    date: dt.date | None = None
    total: Decimal | None = None  # with tax; None: the order's lines plus tax
    tax: Decimal | None = None
    currency: str | None = None  # ISO 4217 code; None: the order's


@dataclass(frozen=True, slots=True)
class StatusFound:
    """What a system did with an order it took, as far as it can tell now."""

    shipped: bool = False  # shipped in full (with or without `shipments` listed)
    shipments: tuple[ShipmentFound, ...] = ()
    invoices: tuple[InvoiceFound, ...] = ()  # posted invoices only; empty while not invoiced


class StatusSource(Protocol):
    """A connector whose system reports back on the orders it took: an ERP
    (`Capabilities.status`: shipments and invoices) or a shipping service
    (`Capabilities.shipments`: shipments only, `gateway shipped` asks it too). The service's
    ``status:<name>`` job asks it about each one (`gateway.tracking`)."""

    def status(self, reference: str) -> StatusFound:
        """The status of the order the system knows as `reference` (its receipt reference).
        Raise TransientError or PermanentError (gateway.errors) when it cannot say."""
        ...


@dataclass(frozen=True, slots=True)
class Delivery:
    outbox_id: int
    order_id: str
    idempotency_key: str
    attempt: int  # 1 for the first attempt
    order: dict[str, Any]  # the canonical order as JSON-ready data (decimals as strings)
    action: str = "create"  # create | update | cancel
    target_reference: str | None = None  # for update/cancel: the target's id of the order (its receipt reference)
    # The steps this one comes after (its connector's `after:`): connector -> the reference in
    # that step's receipt (None: it returned none). Also in `order["steps"]` for payload mappings.
    steps: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(slots=True)
class Receipt:
    status: int | None = None
    reference: str | None = None  # the target's id for the order, if it returned one
    detail: dict[str, Any] = field(default_factory=dict)


class Connector(Protocol):
    name: str
    capabilities: Capabilities

    def send(self, delivery: Delivery) -> Receipt:
        """Deliver one order. Raise TransientError or PermanentError (gateway.errors)."""
        ...

    def close(self) -> None: ...


MASK = "********"


def mask(value: str) -> str:
    """What a rendered request shows in place of a secret."""
    return MASK if value else value


@dataclass(frozen=True, slots=True)
class RenderedRequest:
    """The request a connector would send for a delivery, as `render` builds it: the same code
    path as `send`, with secrets masked and no network I/O (`gateway mapping render`)."""

    method: str  # HTTP method
    url: str
    headers: dict[str, str]  # secret values masked
    body: bytes | None
    # What the connector could not know without asking its target (e.g. a Tryton product's
    # id): placeholder -> what it stands for. Empty when the request is exact.
    placeholders: dict[str, str] = field(default_factory=dict)
    note: str = ""  # e.g. the RPC method, or the calls made before this one


class Renderer(Protocol):
    """A connector that can show the request it would send (`Capabilities.renders`)."""

    def render(self, delivery: Delivery) -> RenderedRequest:
        """The request `send(delivery)` would make, secrets masked, nothing sent or resolved.
        Raises PermanentError for a delivery that send would refuse before sending."""
        ...
