"""Tryton target: each order becomes a sale in a Tryton ERP (JSON-RPC, Tryton 8.2).

Capabilities
    idempotency_key=True   the delivery's key is written into the sale's comment
                           (``order-gateway delivery <key>``) and looked up before anything is
                           created, so a retry after a timeout finds the sale instead of making
                           a second one
    idempotent=True        for the same reason a repeat of a delivery has one effect
    updates=True           a changed order replaces the lines of its sale while the sale is in
                           draft, quotation or confirmed (moved back to draft, then on to `state`)
    cancels=True           the sale's cancel transition (a confirmed sale goes to draft first);
                           an already cancelled sale is fine
    stock=True             `stock_levels()`: on-hand quantities per warehouse as master-data
                           ``stock`` rows (``product.product`` quantity in the context of each
                           warehouse), read by `gateway data pull stock --from NAME`
    status=True            `status(number)`: the sale's posted invoices once its ``invoice_state``
                           is awaiting payment, partially paid or paid (account.invoice number,
                           invoice_date, total_amount, tax_amount, currency; drafts, cancelled
                           invoices and credit notes left out), and shipped once its
                           ``shipment_state`` is sent (each done customer shipment with its
                           effective date; Tryton's base modules hold no carrier or tracking
                           number). The gateway's ``status:<name>`` job records them once
                           (`gateway.tracking`, config ``poll_status_minutes``).
    shipments=True         its status carries shipments: `gateway shipped ORDER` asks it, and a
                           sale invoiced before it shipped is still asked until its shipment is
                           recorded (once: it has no tracking number to tell two apart)

Config keys (`TrytonConfig`)
    name, url, database, user, password (``${env:NAME}`` only), customer_code_from (bill_to,
    buyer, partner, sender; first present wins), create_customers, state (quotation|confirmed),
    timeout.connect / timeout.read (their sum bounds each RPC call), timeout.total (bounds one
    send, all its calls; the dispatch lease must be longer), retry, verify_tls

What a create does (each step one RPC call, each its own Tryton transaction)
    1. login (``common.db.login``) once per connector; the session travels as
       ``Authorization: Session base64(user:user_id:session)``; the user's preferences
       (``model.res.user.get_preferences``) are the context of every call (company, language)
    2. a sale with this delivery's key? (``sale.sale.search_read`` on reference = PO number and
       the key in the comment) — found: it is finished (moved on to `state` if a crash left it
       in draft) and its number returned; nothing is created
    3. products by code (``product.product.search_read``, code = each line's sku); an unknown
       or missing sku is a PermanentError naming it, before anything is written
    4. the customer party by code (created with the order party's name if missing and
       create_customers), its invoice address (the party's first, created if it has none) and
       the shipment address (the ship-to's street, postal code and city: an equal address of
       the party, or a new one)
    5. ``sale.sale.create`` with reference = PO number, the key in the comment, the lines
       (product, quantity, the product's sale unit, unit price from the order or else the
       product's list price), then ``sale.sale.quote`` and, for state confirmed,
       ``sale.sale.confirm``
    The receipt's reference is the sale's number (set by Tryton when quoted).

What a status call does
    1. ``sale.sale.search_read`` on number = the receipt reference: number, invoice_state,
       shipment_state, invoices, shipments (Function fields: the ids of the account.invoice and
       stock.shipment.out records of the sale's lines); none is a PermanentError
    2. ``account.invoice.read`` of those invoices (number, type, state, invoice_date,
       total_amount, tax_amount, currency.code) when invoiced; ``stock.shipment.out.read``
       (number, state, effective_date) when sent. Amounts arrive as Decimals (Tryton's
       ``{"__class__": "Decimal"}``).
    Sources: trytond-sale 8.2 sale/sale.py (invoice_state: none, pending, awaiting payment,
    partially paid, paid, exception; shipment_state: none, waiting, partially shipped, sent,
    exception; ``get_invoices`` / ``get_shipments``), trytond-account-invoice 8.2
    account_invoice/invoice.py (state: draft, validated, posted, paid, cancelled; type in/out;
    number, invoice_date, total_amount, tax_amount), trytond-stock 8.2 stock/shipment.py
    (effective_date), read from the installed packages (github.com/tryton/tryton, modules/).

Error mapping
    HTTP 401 on a call                    the session expired: log in again, once, and repeat
    login refused (401/403)               PermanentError (wrong user or password: configuration)
    HTTP 404 on login                     Tryton says 404 both for a database it does not have
                                          and for one it could not open (locked, its server
                                          down): ``common.db.list`` decides; PermanentError only
                                          when the list answers without the database
    HTTP 404 on any other call            PermanentError (the database is gone)
    HTTP 408, 429, 5xx                    TransientError
    other HTTP 4xx                        PermanentError (e.g. 403: the user may not call it)
    connection refused/reset, timeouts,   TransientError (an ambiguous timeout is safe: step 2
    the per-call deadline passed          finds the sale on the retry)
    TLS failure                           PermanentError (certificate or verify_tls)
    JSON-RPC error ConcurrencyException,  TransientError
      TimeOutException, RateLimitException,
      a locked or unreachable database
    JSON-RPC error UserError, UserWarning PermanentError with Tryton's message (a validation
      and any other server error            error is not fixed by retrying)
    unknown product, no customer code,    PermanentError naming what is missing
      unknown customer (create_customers off),
      a sale that is processing, done or
      cancelled when an update arrives
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Collection
from decimal import Decimal
from typing import Any, Protocol

import requests

from connectors.targets.http_json.transport import (
    Call,
    GuardedAdapter,
    read_within,
    transport_error,
)
from connectors.targets.keyed_lock import KeyedLocks
from connectors.targets.tryton.config import TrytonConfig
from gateway.connector import (
    Capabilities,
    Delivery,
    InvoiceFound,
    Receipt,
    RenderedRequest,
    ShipmentFound,
    StatusFound,
    mask,
)
from gateway.errors import DeliveryError, PermanentError, TransientError
from gateway.money import decimal_of

__all__ = ["TrytonClient", "TrytonConnector", "TrytonError", "key_marker"]

log = logging.getLogger(__name__)

USER_AGENT = "order-gateway/0.1"
MAX_RESPONSE_BYTES = 5_000_000
TRANSIENT_STATUSES = frozenset({408, 425, 429})
TRANSIENT_RPC_ERRORS = frozenset({"ConcurrencyException", "TimeOutException", "RateLimitException"})
TRANSIENT_SERVER_HINTS = ("database is locked", "DatabaseOperationalError", "could not serialize", "deadlock")
EXCERPT_CHARS = 300
# sale.sale invoice_state values that mean an invoice was posted
INVOICED = frozenset({"awaiting payment", "partially paid", "paid"})


def key_marker(key: str) -> str:
    """The line written into a sale's comment that ties it to one delivery."""
    return f"order-gateway delivery {key}"


class TrytonError(PermanentError):
    """Tryton refused a call (a JSON-RPC error such as UserError); never retried."""


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    raise TypeError(f"cannot send {type(value).__name__} to Tryton")


def _decode(obj: dict[str, Any]) -> Any:
    kind = obj.get("__class__")
    if kind == "Decimal":
        return Decimal(obj["decimal"])
    if kind == "date":
        return dt.date(obj["year"], obj["month"], obj["day"])
    return obj


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class TrytonClient:
    """JSON-RPC to one Tryton database: login, session header, re-login once on a 401."""

    def __init__(self, config: TrytonConfig, session: requests.Session | None = None):
        self.config = config
        self.endpoint = str(config.url).rstrip("/") + f"/{config.database}/rpc/"
        self.server_endpoint = str(config.url).rstrip("/") + "/rpc/"  # calls about the server, not one database
        self._own_session = session is None
        if session is None:
            session = requests.Session()
            session.trust_env = False
            adapter = GuardedAdapter()
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self.session = session
        self._timeout = (config.timeout.connect, config.timeout.read)
        self._total = config.timeout.connect + config.timeout.read
        self._send_deadline: float | None = None  # monotonic time the current send must end by
        self._auth: str | None = None
        self.context: dict[str, Any] = {}
        self._ids = 0

    def start_send(self) -> None:
        """Every call from now on ends by timeout.total seconds from now (one send)."""
        self._send_deadline = time.monotonic() + self.config.timeout.total

    def close(self) -> None:
        self._auth = None
        if self._own_session:
            self.session.close()

    def login(self) -> None:
        password = self.config.password.get_secret_value()
        status, answer = self._post("common.db.login", [self.config.user, {"password": password}, "en"], auth=None)
        if status == 404:
            raise self._login_not_found()
        if status in (401, 403):
            raise PermanentError(
                f"Tryton {self.config.name} refused the login of user {self.config.user!r} (HTTP {status}): "
                "check user and password"
            )
        result = self._result("common.db.login", status, answer)
        user_id, token = result[0], result[1]
        raw = f"{self.config.user}:{user_id}:{token}".encode()
        self._auth = "Session " + base64.b64encode(raw).decode("ascii")
        status, answer = self._post("model.res.user.get_preferences", [True, {}], auth=self._auth)
        self.context = dict(self._result("model.res.user.get_preferences", status, answer))

    def _login_not_found(self) -> DeliveryError:
        """What a 404 to the login means. Tryton's login answers 404 when the database is not
        one it has, and also when opening it failed (DatabaseOperationalError: SQLite locked,
        PostgreSQL restarting or out of connections), which passes: only the server's list of
        databases tells the two apart (it is off when ``[database] list`` is false)."""
        db = self.config.database
        try:
            status, names = self._post("common.db.list", [], auth=None, url=self.server_endpoint)
        except DeliveryError:
            status, names = 0, None
        listed = names.get("result") if status == 200 and isinstance(names, dict) else None
        if isinstance(listed, list) and db not in listed:
            return PermanentError(f"Tryton {self.config.name} has no database {db!r}: check `database:` in the connector's configuration")
        return TransientError(
            f"Tryton {self.config.name} could not open database {db!r} to log in (HTTP 404): it is busy or its "
            "database server is unavailable (if the name is wrong, the retries end in a dead letter)"
        )

    def call(self, method: str, *params: Any, context: dict[str, Any] | None = None) -> Any:
        """``method`` with ``params`` and the user's context (plus `context`) appended; the result."""
        for attempt in (1, 2):
            if self._auth is None:
                self.login()
            status, answer = self._post(method, [*params, {**self.context, **(context or {})}], auth=self._auth)
            if status == 401:
                self._auth = None
                if attempt == 1:
                    log.info("Tryton %s: session expired, logging in again", self.config.name)
                    continue
                break
            return self._result(method, status, answer)
        raise PermanentError(f"Tryton {self.config.name} refused {method} after a fresh login (HTTP 401)")

    def model(self, model: str, method: str, *params: Any, context: dict[str, Any] | None = None) -> Any:
        return self.call(f"model.{model}.{method}", *params, context=context)

    # -- transport ------------------------------------------------------------------------------

    def _post(self, method: str, params: list[Any], *, auth: str | None, url: str | None = None) -> tuple[int, Any]:
        self._ids += 1
        body = json.dumps({"id": self._ids, "method": method, "params": params}, default=_encode).encode()
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if auth:
            headers["Authorization"] = auth
        seconds = self._total
        if self._send_deadline is not None:
            seconds = min(seconds, self._send_deadline - time.monotonic())
            if seconds <= 0:
                raise TransientError(
                    f"Tryton {self.config.name}: the send took longer than timeout.total "
                    f"({self.config.timeout.total:g} s); the retry looks the sale up first"
                )
        call = Call(seconds, self.config.url.host or "", None)
        try:
            with call, self.session.post(
                url or self.endpoint, data=body, headers=headers, timeout=self._timeout, allow_redirects=False,
                verify=self.config.verify_tls, stream=True,
            ) as response:
                content = read_within(response, call, MAX_RESPONSE_BYTES)
            if call.expired:
                raise requests.exceptions.ReadTimeout("total deadline")
        except requests.exceptions.RequestException as exc:
            raise transport_error(exc, f"Tryton {self.config.name} ({method})", call, looked_up="sale") from None
        answer: Any = None
        if response.status_code == 200:
            try:
                answer = json.loads(content, object_hook=_decode)
            except ValueError:
                raise TransientError(f"Tryton {self.config.name} answered {method} with invalid JSON") from None
        else:
            answer = content[:EXCERPT_CHARS].decode("utf-8", "replace")
        return response.status_code, answer

    def _result(self, method: str, status: int, answer: Any) -> Any:
        where = f"Tryton {self.config.name} ({method})"
        if status == 404:
            raise PermanentError(f"{where}: HTTP 404, is the database {self.config.database!r} right?")
        if status in TRANSIENT_STATUSES or 500 <= status < 600:
            raise TransientError(f"{where}: HTTP {status}")
        if status != 200:
            raise PermanentError(f"{where}: HTTP {status} {answer!s:.{EXCERPT_CHARS}}")
        if not isinstance(answer, dict):
            raise TransientError(f"{where}: not a JSON-RPC answer")
        if "error" in answer and answer["error"] is not None:
            raise _rpc_error(where, answer["error"])
        return answer.get("result")


def _rpc_error(where: str, error: Any) -> DeliveryError:
    """A JSON-RPC ``error``: [name, args] for Tryton's own exceptions, [message, traceback] otherwise."""
    name = error[0] if isinstance(error, list) and error else str(error)
    args = error[1] if isinstance(error, list) and len(error) > 1 else None
    if name in TRANSIENT_RPC_ERRORS:
        return TransientError(f"{where}: {name}")
    if name in ("UserError", "UserWarning") and isinstance(args, list) and args:
        message = " ".join(str(a) for a in args[:2] if a and isinstance(a, str))
        return TrytonError(f"{where} refused: {name}: {message[:EXCERPT_CHARS]}")
    text = str(name)
    if any(hint in text for hint in TRANSIENT_SERVER_HINTS):
        return TransientError(f"{where}: {text[:EXCERPT_CHARS]}")
    return TrytonError(f"{where} failed: {text[:EXCERPT_CHARS]}")


class TrytonConnector:
    """Creates, updates and cancels sales; see the module docstring for the contract."""

    capabilities = Capabilities(
        idempotency_key=True, idempotent=True, updates=True, cancels=True, stock=True, renders=True, status=True, shipments=True
    )

    def __init__(self, config: TrytonConfig, session: requests.Session | None = None):
        self.config = config
        self.name = config.name
        self.client = TrytonClient(config, session)
        self._creating = KeyedLocks()  # party addresses have no unique key: one find-or-create at a time

    def __repr__(self) -> str:
        return f"TrytonConnector(name={self.name!r}, database={self.config.database!r})"

    def close(self) -> None:
        self.client.close()

    def send(self, delivery: Delivery) -> Receipt:
        self.client.start_send()
        if delivery.action == "create":
            return self._create(delivery)
        if not delivery.target_reference:
            raise PermanentError(f"{delivery.action} of PO {delivery.order.get('po_number')}: no Tryton sale number recorded")
        sale = self._sale_by_number(delivery.target_reference)
        if delivery.action == "update":
            return self._update(delivery, sale)
        if delivery.action == "cancel":
            return self._cancel(sale)
        raise PermanentError(f"Tryton connector {self.name} cannot {delivery.action!r}")

    # -- stock (master data) ---------------------------------------------------------------------

    def stock_levels(self, codes: Collection[str] | None = None) -> list[dict[str, Any]]:
        """On-hand quantity of each goods product per warehouse, as rows of the master-data
        ``stock`` kind (sku, warehouse = the warehouse's code or name, on_hand in the product's
        default unit); `codes` limits it to those products. `gateway data pull stock --from NAME`."""
        self.client.start_send()
        warehouses = self.client.model("stock.location", "search_read", [("type", "=", "warehouse")], 0, None,
                                       [("id", "ASC")], ["code", "name"])
        domain: list[Any] = [("type", "=", "goods"), ("code", "!=", None)]
        if codes is not None:
            domain.append(("code", "in", sorted(codes)))
        rows = []
        for warehouse in warehouses:
            products = self.client.model("product.product", "search_read", domain, 0, None, [("code", "ASC")],
                                         ["code", "quantity"], context={"locations": [warehouse["id"]]})
            for product in products:
                rows.append({"sku": product["code"], "warehouse": warehouse["code"] or warehouse["name"],
                             "on_hand": Decimal(str(product["quantity"]))})
        return rows

    # -- status (invoices and shipments coming back) ---------------------------------------------

    def status(self, reference: str) -> StatusFound:
        """What Tryton did with sale `reference`: its posted invoices once invoiced, shipped
        once every line was sent."""
        self.client.start_send()
        found = self.client.model("sale.sale", "search_read", [("number", "=", reference)], 0, 2, None,
                                  ["number", "invoice_state", "shipment_state", "invoices", "shipments"])
        if not found:
            raise PermanentError(f"no sale {reference!r} in Tryton {self.name}")
        sale = found[0]
        invoices: tuple[InvoiceFound, ...] = ()
        if sale["invoice_state"] in INVOICED and sale["invoices"]:
            rows = self.client.model("account.invoice", "read", list(sale["invoices"]),
                                     ["number", "type", "state", "invoice_date", "total_amount", "tax_amount", "currency.code"])
            invoices = tuple(
                InvoiceFound(number=str(r["number"]), date=r["invoice_date"], total=decimal_of(r["total_amount"]),
                             tax=decimal_of(r["tax_amount"]), currency=(r.get("currency.") or {}).get("code"))
                # a credit note is an "out" invoice with a negative total: not an invoice of the order
                for r in rows if r["state"] in ("posted", "paid") and r["type"] == "out" and r["number"]
                and (decimal_of(r["total_amount"]) or 0) >= 0
            )
        shipped = sale["shipment_state"] == "sent"
        shipments: tuple[ShipmentFound, ...] = ()
        if shipped and sale["shipments"]:
            rows = self.client.model("stock.shipment.out", "read", list(sale["shipments"]), ["number", "state", "effective_date"])
            shipments = tuple(ShipmentFound(ship_date=r["effective_date"]) for r in rows if r["state"] == "done")
        return StatusFound(shipped=shipped, shipments=shipments, invoices=invoices)

    # -- create ---------------------------------------------------------------------------------

    def _create(self, delivery: Delivery) -> Receipt:
        order = delivery.order
        po = str(order.get("po_number") or "")
        found = self.client.model(
            "sale.sale", "search_read",
            [("reference", "=", po), ("comment", "like", f"%{_like_escape(key_marker(delivery.idempotency_key))}%")],
            0, 2, None, ["number", "state"],
        )
        if found:
            sale = found[0]
            if sale["state"] in ("draft", "quotation"):  # a crash between create and quote or confirm: finish it
                sale = self._advance(sale["id"], sale["state"])
            return Receipt(status=200, reference=sale["number"], detail={"sale_id": sale["id"], "found": True})
        values = self._sale_values(delivery, self)
        (sale_id,) = self.client.model("sale.sale", "create", [values])
        sale = self._advance(sale_id)
        return Receipt(status=200, reference=sale["number"], detail={"sale_id": sale_id, "state": sale["state"]})

    def render(self, delivery: Delivery) -> RenderedRequest:
        """The ``sale.sale.create`` call a create would make (`gateway mapping render`), with
        the ids Tryton would be asked for (products, customer, addresses) as placeholders and
        the session masked; nothing is sent. Updates and cancels look up the sale first, so
        only creates are rendered."""
        if delivery.action != "create":
            raise PermanentError(f"Tryton {self.name}: only a create can be rendered (an {delivery.action} reads the sale first)")
        names = _Placeholders(self)
        values = self._sale_values(delivery, names)
        body = json.dumps(
            {"id": 1, "method": "model.sale.sale.create", "params": [[values], "<the user's preferences>"]},
            default=_encode, indent=2,
        ).encode()
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "Authorization": mask("session")}
        then = "sale.sale.quote" + (", sale.sale.confirm" if self.config.state == "confirmed" else "")
        note = (f"after common.db.login as {self.config.user!r}, a search for this delivery's sale and the lookups of the "
                f"placeholders below; then {then}")
        return RenderedRequest("POST", self.client.endpoint, headers, body, names.seen, note)

    def _sale_values(self, delivery: Delivery, lookup: _Lookup) -> dict[str, Any]:
        """The values of the sale a create writes: what send sends and render shows."""
        order = delivery.order
        po = str(order.get("po_number") or "")
        lines = self._lines(order, lookup.products)
        party = lookup.customer(order)
        invoice_address = lookup.invoice_address(party)
        shipment_address = lookup.shipment_address(party, order.get("ship_to")) or invoice_address
        values: dict[str, Any] = {
            "party": party,
            "invoice_address": invoice_address,
            "shipment_address": shipment_address,
            "reference": po,
            "description": f"PO {po}"[:120],
            "comment": "\n".join([*(str(n) for n in order.get("notes") or []), key_marker(delivery.idempotency_key)]),
            "lines": [["create", lines]],
        }
        if order.get("order_date"):
            values["sale_date"] = dt.date.fromisoformat(order["order_date"])
        return values

    def _advance(self, sale_id: int, state: str = "draft") -> dict[str, Any]:
        """Move a draft (or quoted) sale on to the configured state; the sale's number and state."""
        if state == "draft":
            self.client.model("sale.sale", "quote", [sale_id])
        if self.config.state == "confirmed":
            self.client.model("sale.sale", "confirm", [sale_id])
        (sale,) = self.client.model("sale.sale", "read", [sale_id], ["number", "state"])
        return dict(sale)

    def _lines(
        self, order: dict[str, Any], products_of: Callable[[list[str]], dict[str, dict[str, Any]]] | None = None
    ) -> list[dict[str, Any]]:
        lines = order.get("lines") or []
        missing = [str(line.get("line_number") or i) for i, line in enumerate(lines, 1) if not line.get("sku")]
        if missing:
            raise PermanentError(f"PO {order.get('po_number')}: line(s) {', '.join(missing)} carry no product code (sku)")
        if not lines:
            raise PermanentError(f"PO {order.get('po_number')}: the order has no lines")
        codes = sorted({str(line["sku"]) for line in lines})
        products = (products_of or self.products)(codes)
        unknown = [c for c in codes if c not in products]
        if unknown:
            raise PermanentError(
                f"PO {order.get('po_number')}: unknown product(s) in Tryton {self.name}: {', '.join(unknown)}"
            )
        out = []
        for line in lines:
            product = products[str(line["sku"])]
            price = line.get("unit_price")
            values: dict[str, Any] = {
                "type": "line",
                "product": product["id"],
                "quantity": float(Decimal(str(line["quantity"]))),
                "unit": product["sale_uom"],
                "unit_price": Decimal(str(price)) if price is not None else product["list_price"] or Decimal(0),
            }
            if line.get("description"):
                values["description"] = str(line["description"])
            out.append(values)
        return out

    def products(self, codes: list[str]) -> dict[str, dict[str, Any]]:
        """code -> the salable product (id, sale_uom, list_price) for each known code."""
        found = self.client.model(
            "product.product", "search_read", [("code", "in", codes), ("salable", "=", True)], 0, None, None,
            ["code", "sale_uom", "list_price"],
        )
        return {p["code"]: p for p in found}

    # -- parties and addresses --------------------------------------------------------------------

    def customer(self, order: dict[str, Any]) -> Any:
        return self._customer(order)

    def invoice_address(self, party: Any) -> Any:
        return self._invoice_address(party)

    def shipment_address(self, party: Any, ship_to: dict[str, Any] | None) -> Any:
        return self._shipment_address(party, ship_to)

    def _customer_code(self, order: dict[str, Any]) -> tuple[str, str | None]:
        for source in self.config.customer_code_from:
            if source in ("bill_to", "buyer"):
                party = order.get(source) or {}
                if party.get("code"):
                    return str(party["code"]), party.get("name")
            elif source == "partner" and order.get("partner"):
                return str(order["partner"]), None
            elif source == "sender" and (order.get("source") or {}).get("sender_id"):
                return str(order["source"]["sender_id"]), None
        raise PermanentError(
            f"PO {order.get('po_number')}: no customer code in {', '.join(self.config.customer_code_from)}"
        )

    def _customer(self, order: dict[str, Any]) -> int:
        code, name = self._customer_code(order)
        found = self.client.model("party.party", "search", [("code", "=", code)], 0, 1, None)
        if found:
            return int(found[0])
        if not self.config.create_customers:
            raise PermanentError(f"PO {order.get('po_number')}: no customer with code {code!r} in Tryton {self.name}")
        try:
            (party,) = self.client.model("party.party", "create", [{"code": code, "name": name or code}])
        except TrytonError:
            # another worker created it a moment ago (the code is unique): use that party
            found = self.client.model("party.party", "search", [("code", "=", code)], 0, 1, None)
            if not found:
                raise
            return int(found[0])
        return int(party)

    def _invoice_address(self, party: int) -> int:
        with self._creating(("invoice_address", party)):
            found = self.client.model("party.address", "search", [("party", "=", party)], 0, 1,
                                      [("sequence", "ASC"), ("id", "ASC")])
            if found:
                return int(found[0])
            (address,) = self.client.model("party.address", "create", [{"party": party}])
            return int(address)

    def _shipment_address(self, party: int, ship_to: dict[str, Any] | None) -> int | None:
        if not ship_to or not (ship_to.get("address_lines") or ship_to.get("city") or ship_to.get("postal_code")):
            return None
        street = "\n".join(str(s) for s in ship_to.get("address_lines") or [])
        wanted = {"street_unstructured": street or None, "city": ship_to.get("city") or None,
                  "postal_code": ship_to.get("postal_code") or None}
        domain: list[Any] = [("party", "=", party)] + [(k, "=", v) for k, v in wanted.items()]
        with self._creating(("ship_to", party, *wanted.values())):
            found = self.client.model("party.address", "search", domain, 0, 1, None)
            if found:
                return int(found[0])
            values = {"party": party, **wanted}
            if ship_to.get("name"):
                values["party_name"] = str(ship_to["name"])
            (address,) = self.client.model("party.address", "create", [values])
            return int(address)

    # -- update and cancel ------------------------------------------------------------------------

    def _sale_by_number(self, number: str) -> dict[str, Any]:
        found = self.client.model("sale.sale", "search_read", [("number", "=", number)], 0, 2, None, ["number", "state", "lines"])
        if not found:
            raise PermanentError(f"no sale {number!r} in Tryton {self.name}")
        return dict(found[0])

    def _to_draft(self, sale: dict[str, Any], action: str) -> None:
        if sale["state"] in ("quotation", "confirmed"):
            self.client.model("sale.sale", "draft", [sale["id"]])
        elif sale["state"] != "draft":
            raise PermanentError(
                f"sale {sale['number']} is {sale['state']} in Tryton {self.name}: the {action} must be made there"
            )

    def _update(self, delivery: Delivery, sale: dict[str, Any]) -> Receipt:
        lines = self._lines(delivery.order)
        if sale["state"] == self.config.state and self._same_lines(sale, lines):  # a repeat: nothing to change
            return Receipt(status=200, reference=sale["number"], detail={"sale_id": sale["id"], "state": sale["state"]})
        self._to_draft(sale, "change")
        self.client.model("sale.sale", "write", [sale["id"]], {"lines": [["delete", list(sale["lines"])], ["create", lines]]})
        advanced = self._advance(sale["id"])
        return Receipt(status=200, reference=sale["number"], detail={"sale_id": sale["id"], "state": advanced["state"]})

    def _same_lines(self, sale: dict[str, Any], lines: list[dict[str, Any]]) -> bool:
        have = self.client.model("sale.line", "read", list(sale["lines"]), ["product", "quantity", "unit_price", "unit"])
        def key(line: dict[str, Any]) -> tuple[Any, ...]:
            return (line["product"], float(line["quantity"]), Decimal(line["unit_price"]), line["unit"])
        return sorted(map(key, have)) == sorted(map(key, lines))

    def _cancel(self, sale: dict[str, Any]) -> Receipt:
        if sale["state"] != "cancelled":
            if sale["state"] != "quotation":  # quotation cancels directly; confirmed goes to draft first
                self._to_draft(sale, "cancellation")  # processing or done: refused
            self.client.model("sale.sale", "cancel", [sale["id"]])
        return Receipt(status=200, reference=sale["number"], detail={"sale_id": sale["id"], "state": "cancelled"})



class _Lookup(Protocol):
    """Where a create's ids come from: Tryton itself (send), or placeholders (render)."""

    def products(self, codes: list[str]) -> dict[str, dict[str, Any]]: ...
    def customer(self, order: dict[str, Any]) -> Any: ...
    def invoice_address(self, party: Any) -> Any: ...
    def shipment_address(self, party: Any, ship_to: dict[str, Any] | None) -> Any: ...


class _Placeholders:
    """The lookups of a create, answered with named placeholders instead of asking Tryton."""

    def __init__(self, connector: TrytonConnector):
        self.connector = connector
        self.seen: dict[str, str] = {}

    def _name(self, key: str, what: str) -> str:
        self.seen[key] = what
        return key

    def products(self, codes: list[str]) -> dict[str, dict[str, Any]]:
        return {
            c: {
                "id": self._name(f"<product {c}>", f"the id of the salable product with code {c!r}"),
                "sale_uom": self._name(f"<sale unit of {c}>", f"the sale unit of product {c!r}"),
                "list_price": self._name(f"<list price of {c}>", f"the list price of {c!r} (used when the line has no price)"),
            }
            for c in codes
        }

    def customer(self, order: dict[str, Any]) -> Any:
        code, _ = self.connector._customer_code(order)
        how = " (created if missing)" if self.connector.config.create_customers else ""
        return self._name(f"<customer {code}>", f"the id of the party with code {code!r}{how}")

    def invoice_address(self, party: Any) -> Any:
        return self._name("<invoice address>", f"the first address of {party} (created if it has none)")

    def shipment_address(self, party: Any, ship_to: dict[str, Any] | None) -> Any:
        if not ship_to or not (ship_to.get("address_lines") or ship_to.get("city") or ship_to.get("postal_code")):
            return None
        return self._name("<shipment address>", f"the address of {party} equal to the order's ship-to (created if none is)")
