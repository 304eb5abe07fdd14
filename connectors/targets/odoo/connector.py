"""Odoo target: each order becomes a sales order (``sale.order``) over Odoo's external JSON-RPC API.

Capabilities
    idempotency_key=True   the delivery's key is written into the order's ``origin``
                           (``order-gateway delivery <key>``) and looked up together with
                           ``client_order_ref`` = PO number before anything is created, so a
                           retry after an ambiguous timeout finds the order instead of making a
                           second one
    idempotent=True        for the same reason a repeat of a delivery has one effect
    updates=True           a changed order's lines are matched by product and changed in place
                           (draft, sent or confirmed; a line no longer wanted is removed, or set
                           to quantity 0 on a confirmed order, whose lines Odoo keeps); a repeat
                           with the same lines writes nothing
    cancels=True           ``action_cancel`` with ``disable_cancel_warning`` (else Odoo answers a
                           confirmed order with its wizard); an already cancelled order is fine
    stock_levels()         on-hand quantity (``qty_available``) of each product with an internal
                           reference per warehouse (``stock.warehouse``), read in the context of
                           that warehouse; services are left out. `gateway data pull stock --from NAME`
    status=True            `status(name)`: once the sales order's ``invoice_status`` is ``invoiced``
                           (or ``upselling``: invoiced in full, more could be sold), its posted
                           customer invoices (``invoice_ids``: account.move name, invoice_date,
                           amount_total, amount_tax, currency_id; drafts, cancelled ones and credit
                           notes left out). The gateway's ``status:<name>`` job records each once
                           (`gateway.tracking`, config ``poll_status_minutes``).
    shipments=True         with the Inventory app: once every outgoing picking of the order is
                           done or cancelled, shipped with each done one (date_done; with the
                           Delivery app carrier_id and carrier_tracking_ref as carrier and
                           tracking). Without Inventory it reports no shipments.

Config keys (`OdooConfig`)
    name, url, database, username, password_env (the NAME of the variable holding the user's
    API key or password), customer_code_from (bill_to, buyer, partner, sender; first present
    wins), create_customers, state (quotation|confirmed), auth (extra HTTP auth for a proxy
    in front, see connectors/targets/auth.py), timeout.connect / timeout.read / timeout.total,
    retry, verify_tls

What a create does (each step one ``POST <url>/jsonrpc``)
    1. ``common.authenticate(db, login, key, {})`` once per connector: the user id
    2. ``object.execute_kw(db, uid, key, 'sale.order', 'search_read', [[client_order_ref = PO,
       origin = key marker]])`` — found: its name is returned, confirmed first when a crash
       left it a quotation; nothing is created
    3. ``product.product`` search_read on ``default_code in skus`` and ``sale_ok``; an unknown
       sku is a PermanentError naming it, before anything is written
    4. the customer: ``res.partner`` search_read on ``ref`` (created with the order party's
       name if missing and create_customers); the ship-to as a child contact of type
       ``delivery`` (an equal one is reused)
    5. ``sale.order.create`` with partner_id, partner_shipping_id, client_order_ref, origin,
       date_order and ``order_line: [(0, 0, {product_id, product_uom_qty, price_unit})]``
       (the order's price, else the product's list price), then ``action_confirm`` for
       state confirmed. The receipt's reference is the order's name (``S00042``).

What a status call does
    0. once per connector and model: ``fields_get`` of sale.order and stock.picking (attributes
       type): whether picking_ids, carrier_id and carrier_tracking_ref exist in this database
    1. ``sale.order`` search_read on name = the receipt reference, fields name, state,
       invoice_status, invoice_ids, and picking_ids with Inventory (an unknown name is a
       PermanentError)
    2. when it has pickings: ``stock.picking`` read of picking_ids, fields name, state,
       picking_type_code, date_done (and carrier_id, carrier_tracking_ref where they exist)
    3. only when invoice_status is invoiced or upselling: ``account.move`` read of invoice_ids,
       fields name, move_type, state, invoice_date, amount_total, amount_tax, currency_id
       (a many2one: ``[id, "USD"]``); amounts are floats, made Decimal here and rounded to the
       currency's places by the core
    Sources: Odoo's external API (odoo/documentation, content/developer/reference/external_api.rst:
    execute_kw with search_read / read and ``fields``), ``sale.order.invoice_status`` (selection
    upselling, invoiced, to invoice, no) and ``invoice_ids`` (addons/sale/models/sale_order.py),
    ``account.move`` name, state (draft, posted, cancel), move_type (out_invoice, out_refund, ...),
    invoice_date, amount_total, amount_tax, currency_id (addons/account/models/account_move.py),
    ``sale.order.picking_ids`` (addons/sale_stock), ``stock.picking`` state (draft, waiting,
    confirmed, assigned, done, cancel), picking_type_code, date_done (addons/stock), carrier_id and
    carrier_tracking_ref (addons/stock_delivery, ``delivery`` before 17).

Error mapping
    HTTP 408, 429, 5xx                    TransientError (Retry-After honoured)
    HTTP 404                              PermanentError (is url right?)
    other HTTP 4xx                        PermanentError
    authenticate answers false, or        PermanentError (wrong login or key: configuration)
      ``odoo.exceptions.AccessDenied``
    JSON-RPC error whose data.name is a   TransientError (the database was busy; the retry
      serialization failure or             looks the order up first)
      OperationalError (psycopg2 / psycopg)
    JSON-RPC error ValidationError,       PermanentError with Odoo's message
      UserError, AccessError, MissingError,
      any other server error
    connection errors, timeouts           TransientError (see connectors/targets/rest.py)
    unknown product, no customer ref,     PermanentError naming what is missing
      unknown customer (create_customers off),
      an update of a cancelled or locked order
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from typing import Any

import requests

from connectors.targets.auth import env_secret
from connectors.targets.keyed_lock import KeyedLocks
from connectors.targets.odoo.config import OdooConfig
from connectors.targets.rest import (
    RestClient,
    customer_code,
    excerpt,
    iso_date,
    key_marker,
    order_lines,
    transient_status,
    unknown_products,
)
from gateway.connector import (
    Capabilities,
    Delivery,
    InvoiceFound,
    Receipt,
    ShipmentFound,
    StatusFound,
)
from gateway.errors import DeliveryError, PermanentError, TransientError
from gateway.money import decimal_of

__all__ = ["OdooConnector", "OdooError", "rpc_error"]

# sale.order invoice_status values meaning invoiced in full ("upselling": and more could be sold)
INVOICED = frozenset({"invoiced", "upselling"})
TRANSIENT_ERROR_HINTS = (
    "SerializationFailure", "TransactionRollbackError", "OperationalError", "LockNotAvailable", "could not serialize",
)


class OdooError(PermanentError):
    """Odoo refused a call (ValidationError, UserError, ...); never retried."""


def rpc_error(where: str, error: Any) -> DeliveryError:
    """A JSON-RPC ``error`` object: {code, message, data: {name, message, debug, ...}}."""
    data = error.get("data") if isinstance(error, dict) else None
    data = data if isinstance(data, dict) else {}
    name = str(data.get("name") or (error.get("message") if isinstance(error, dict) else error) or "error")
    message = str(data.get("message") or (error.get("message") if isinstance(error, dict) else "") or "")
    text = f"{name}: {message}"[:300]
    if any(hint in name or hint in message for hint in TRANSIENT_ERROR_HINTS):
        return TransientError(f"{where}: {text}")
    if name.endswith("AccessDenied"):
        return PermanentError(f"{where}: {text}; check username and password_env")
    return OdooError(f"{where} refused: {text}")


class OdooConnector:
    """Creates, updates and cancels sales orders; see the module docstring for the contract."""

    capabilities = Capabilities(idempotency_key=True, idempotent=True, updates=True, cancels=True, stock=True, status=True, shipments=True)

    def __init__(self, config: OdooConfig, session: requests.Session | None = None):
        self.config = config
        self.name = config.name
        self._password = env_secret(config.password_env, "password_env")
        self.client = RestClient.for_target(config, session)
        self._uid: int | None = None
        self._ids = 0
        self._creating = KeyedLocks()  # res.partner has no unique ref: one find-or-create per customer
        self._known: dict[str, frozenset[str]] = {}  # model -> its fields (`_fields_of`)

    def __repr__(self) -> str:
        return f"OdooConnector(name={self.name!r}, database={self.config.database!r})"

    def close(self) -> None:
        self.client.close()

    # -- JSON-RPC -----------------------------------------------------------------------------------

    def rpc(self, service: str, method: str, *args: Any) -> Any:
        self._ids += 1
        body = {"jsonrpc": "2.0", "method": "call", "params": {"service": service, "method": method, "args": list(args)},
                "id": self._ids}
        where = f"Odoo {self.name} ({service}.{method}{'' if service != 'object' else ' ' + str(args[3]) + '.' + str(args[4])})"
        answer = self.client.call("POST", "/jsonrpc", body=body)
        failure = transient_status(answer, where)
        if failure:
            raise failure
        secrets = [self._password, *self.client.secrets()]
        if answer.status == 404:
            raise PermanentError(f"{where}: HTTP 404, is url right?", status=404)
        if answer.status != 200:
            raise PermanentError(f"{where}: HTTP {answer.status} {excerpt(answer.body, secrets)}", status=answer.status)
        if not isinstance(answer.body, dict):
            raise TransientError(f"{where}: not a JSON-RPC answer")
        if answer.body.get("error") is not None:
            raise rpc_error(where, answer.body["error"])
        return answer.body.get("result")

    def execute(self, model: str, method: str, args: list[Any], **kwargs: Any) -> Any:
        if self._uid is None:
            uid = self.rpc("common", "authenticate", self.config.database, self.config.username, self._password, {})
            if not isinstance(uid, int) or isinstance(uid, bool):
                raise PermanentError(
                    f"Odoo {self.name} refused the login of {self.config.username!r}: check username and password_env"
                )
            self._uid = uid
        return self.rpc("object", "execute_kw", self.config.database, self._uid, self._password, model, method, args, kwargs)

    def verify(self) -> str:
        """Log in and ask Odoo whether this user may create sales orders; writes nothing."""
        self.client.start_send()
        allowed = self.execute("sale.order", "check_access_rights", ["create"], raise_exception=False)
        if not allowed:
            raise PermanentError(f"Odoo {self.name}: user {self.config.username!r} may not create sales orders")
        return f"logged in to {self.config.database} as {self.config.username} (uid {self._uid}); may create sale.order"

    def stock_levels(self, codes: Collection[str] | None = None) -> list[dict[str, Any]]:
        """Rows of the master-data ``stock`` kind: sku (default_code), warehouse (its code),
        on_hand; `codes` limits it to those products."""
        self.client.start_send()
        warehouses = self.execute("stock.warehouse", "search_read", [[]], fields=["code", "name"], order="id")
        domain: list[Any] = [["default_code", "!=", False], ["type", "!=", "service"]]
        if codes is not None:
            domain.append(["default_code", "in", sorted(codes)])
        rows = []
        for warehouse in warehouses:
            # "warehouse" (up to Odoo 16) and "warehouse_id" (17 on) name it in the context
            context = {"warehouse": warehouse["id"], "warehouse_id": warehouse["id"]}
            found = self.execute("product.product", "search_read", [domain], fields=["default_code", "qty_available"],
                                 order="default_code", context=context)
            for product in found:
                rows.append({"sku": product["default_code"], "warehouse": warehouse["code"] or warehouse["name"],
                             "on_hand": Decimal(str(product["qty_available"]))})
        return rows

    def status(self, reference: str) -> StatusFound:
        """Sales order `reference`'s deliveries once every outgoing one is done or cancelled
        (with Odoo's Inventory app), and its posted customer invoices once Odoo counts it
        invoiced in full (invoice_status invoiced or upselling); nothing before."""
        self.client.start_send()
        inventory = "picking_ids" in self._fields_of("sale.order")
        fields = ["name", "state", "invoice_status", "invoice_ids", *(["picking_ids"] if inventory else [])]
        found = self.execute("sale.order", "search_read", [[["name", "=", reference]]], fields=fields, limit=1)
        if not found:
            raise PermanentError(f"no sales order {reference!r} in Odoo {self.name}")
        sale = dict(found[0])
        shipments = self._deliveries(sale.get("picking_ids") or [])
        if sale.get("invoice_status") not in INVOICED or not sale.get("invoice_ids"):
            return StatusFound(shipped=bool(shipments), shipments=shipments)
        moves = self.execute("account.move", "read", [list(sale["invoice_ids"])],
                             fields=["name", "move_type", "state", "invoice_date", "amount_total", "amount_tax", "currency_id"])
        invoices = tuple(
            InvoiceFound(
                number=str(m["name"]), date=iso_date(m.get("invoice_date")), total=decimal_of(m.get("amount_total")),
                tax=decimal_of(m.get("amount_tax")),
                currency=_name_of(m.get("currency_id")),
            )
            for m in moves
            if m.get("state") == "posted" and m.get("move_type") == "out_invoice" and m.get("name") not in (None, False, "/")
        )
        return StatusFound(shipped=bool(shipments), shipments=shipments, invoices=invoices)

    def _deliveries(self, picking_ids: list[int]) -> tuple[ShipmentFound, ...]:
        """The done outgoing pickings, one shipment each, once none is still open (waiting,
        assigned, ...); () before. Carrier and tracking reference where Odoo's Delivery app
        adds them (carrier_id, carrier_tracking_ref)."""
        if not picking_ids:
            return ()
        extra = [f for f in ("carrier_id", "carrier_tracking_ref") if f in self._fields_of("stock.picking")]
        picks = self.execute("stock.picking", "read", [list(picking_ids)], fields=["name", "state", "picking_type_code", "date_done", *extra])
        outgoing = [p for p in picks if p.get("picking_type_code") == "outgoing"]
        done = [p for p in outgoing if p.get("state") == "done"]
        if not done or any(p.get("state") not in ("done", "cancel") for p in outgoing):
            return ()
        return tuple(
            ShipmentFound(
                carrier=_name_of(p.get("carrier_id")),
                tracking=str(p.get("carrier_tracking_ref") or "").strip() or None,
                ship_date=iso_date(p.get("date_done")),
            )
            for p in done
        )

    def _fields_of(self, model: str) -> frozenset[str]:
        """The fields `model` has in this database (``fields_get``, once per connector): the
        Inventory and Delivery apps add the ones deliveries are read from, and asking for a
        field a model lacks is an error."""
        known = self._known.get(model)
        if known is None:
            known = frozenset(self.execute(model, "fields_get", [], attributes=["type"]) or {})
            self._known[model] = known
        return known

    # -- the Connector protocol ---------------------------------------------------------------------

    def send(self, delivery: Delivery) -> Receipt:
        self.client.start_send()
        if delivery.action == "create":
            return self._create(delivery)
        if not delivery.target_reference:
            raise PermanentError(f"{delivery.action} of PO {delivery.order.get('po_number')}: no Odoo order name recorded")
        found = self.execute("sale.order", "search_read", [[["name", "=", delivery.target_reference]]],
                             fields=["name", "state", "order_line"], limit=1)
        if not found:
            raise PermanentError(f"no sales order {delivery.target_reference!r} in Odoo {self.name}")
        sale = dict(found[0])
        if delivery.action == "update":
            return self._update(delivery, sale)
        if delivery.action == "cancel":
            return self._cancel(sale)
        raise PermanentError(f"Odoo connector {self.name} cannot {delivery.action!r}")

    def _create(self, delivery: Delivery) -> Receipt:
        order = delivery.order
        po = str(order.get("po_number") or "")
        marker = key_marker(delivery.idempotency_key)
        found = self.execute("sale.order", "search_read", [[["client_order_ref", "=", po], ["origin", "=", marker]]],
                             fields=["name", "state"], limit=1)
        if found:
            sale = dict(found[0])
            if self.config.state == "confirmed" and sale["state"] in ("draft", "sent"):  # a crash before confirming
                self.execute("sale.order", "action_confirm", [[sale["id"]]])
            return Receipt(status=200, reference=sale["name"], detail={"order_id": sale["id"], "found": True})
        lines = self._lines(order)
        partner = self._customer(order)
        values: dict[str, Any] = {
            "partner_id": partner,
            "partner_shipping_id": self._shipping(partner, order.get("ship_to")) or partner,
            "client_order_ref": po,
            "origin": marker,
            "order_line": [[0, 0, line] for line in lines],
        }
        if order.get("order_date"):
            values["date_order"] = f"{order['order_date']} 00:00:00"
        if order.get("notes"):
            values["note"] = "\n".join(str(n) for n in order["notes"])
        sale_id = self.execute("sale.order", "create", [values])
        if self.config.state == "confirmed":
            self.execute("sale.order", "action_confirm", [[sale_id]])
        (sale,) = self.execute("sale.order", "read", [[sale_id]], fields=["name", "state"])
        return Receipt(status=200, reference=sale["name"], detail={"order_id": sale_id, "state": sale["state"]})

    def _lines(self, order: dict[str, Any]) -> list[dict[str, Any]]:
        lines = order_lines(order)
        codes = sorted({str(line["sku"]) for line in lines})
        found = self.execute("product.product", "search_read", [[["default_code", "in", codes], ["sale_ok", "=", True]]],
                             fields=["default_code", "list_price"])
        products = {p["default_code"]: p for p in found}
        unknown = [c for c in codes if c not in products]
        if unknown:
            raise unknown_products(order, f"Odoo {self.name}", unknown)
        out = []
        for line in lines:
            product = products[str(line["sku"])]
            price = line.get("unit_price")
            values: dict[str, Any] = {
                "product_id": product["id"],
                "product_uom_qty": float(Decimal(str(line["quantity"]))),
                "price_unit": float(Decimal(str(price))) if price is not None else float(product.get("list_price") or 0),
            }
            if line.get("description"):
                values["name"] = str(line["description"])
            out.append(values)
        return out

    def _customer(self, order: dict[str, Any]) -> int:
        code, name = customer_code(order, self.config.customer_code_from)
        with self._creating(("customer", code)):
            found = self.execute("res.partner", "search_read", [[["ref", "=", code]]], fields=["id"], limit=1)
            if found:
                return int(found[0]["id"])
            if not self.config.create_customers:
                raise PermanentError(f"PO {order.get('po_number')}: no customer with ref {code!r} in Odoo {self.name}")
            return int(self.execute("res.partner", "create", [{"name": name or code, "ref": code, "is_company": True}]))

    def _shipping(self, partner: int, ship_to: dict[str, Any] | None) -> int | None:
        if not ship_to or not (ship_to.get("address_lines") or ship_to.get("city") or ship_to.get("postal_code")):
            return None
        street = list(ship_to.get("address_lines") or [])
        wanted = {"street": street[0] if street else False, "street2": " ".join(street[1:]) or False,
                  "zip": ship_to.get("postal_code") or False, "city": ship_to.get("city") or False}
        domain = [["parent_id", "=", partner], ["type", "=", "delivery"], *([k, "=", v] for k, v in wanted.items())]
        with self._creating(("ship_to", partner, *wanted.values())):
            found = self.execute("res.partner", "search_read", [domain], fields=["id"], limit=1)
            if found:
                return int(found[0]["id"])
            values = {"parent_id": partner, "type": "delivery", **wanted}
            if ship_to.get("name"):
                values["name"] = str(ship_to["name"])
            return int(self.execute("res.partner", "create", [values]))

    # -- update and cancel --------------------------------------------------------------------------

    def _update(self, delivery: Delivery, sale: dict[str, Any]) -> Receipt:
        if sale["state"] in ("cancel", "done"):
            raise PermanentError(f"sales order {sale['name']} is {sale['state']} in Odoo {self.name}: change it there")
        lines = self._lines(delivery.order)
        have = self.execute("sale.order.line", "read", [list(sale["order_line"])],
                            fields=["product_id", "product_uom_qty", "price_unit"])
        commands = _line_commands(have, lines, confirmed=sale["state"] == "sale")
        if commands:  # else a repeat: nothing to change
            self.execute("sale.order", "write", [[sale["id"]], {"order_line": commands}])
        return Receipt(status=200, reference=sale["name"], detail={"order_id": sale["id"], "state": sale["state"]})

    def _cancel(self, sale: dict[str, Any]) -> Receipt:
        if sale["state"] != "cancel":
            # without the flag Odoo answers a confirmed order's cancel with a wizard and cancels nothing
            self.execute("sale.order", "action_cancel", [[sale["id"]]], context={"disable_cancel_warning": True})
            (after,) = self.execute("sale.order", "read", [[sale["id"]]], fields=["state"])
            if after["state"] != "cancel":
                raise PermanentError(
                    f"Odoo {self.name} did not cancel sales order {sale['name']} (it is {after['state']}): cancel it there"
                )
        return Receipt(status=200, reference=sale["name"], detail={"order_id": sale["id"], "state": "cancel"})



def _name_of(many2one: Any) -> str | None:
    """The display name of a many2one as Odoo reads it (``[id, "USD"]``); None for False."""
    return str(many2one[1]) if isinstance(many2one, list) and len(many2one) > 1 else None


def _line_commands(have: list[dict[str, Any]], wanted: list[dict[str, Any]], *, confirmed: bool) -> list[list[Any]]:
    """The ``order_line`` commands that turn the lines `have` into `wanted`, in place.

    A line of the same product is changed with ``(1, id, {...})``; a new product is added with
    ``(0, 0, {...})``; a line no longer wanted is removed with ``(2, id, 0)``, or, on a confirmed
    order (whose lines Odoo will not delete), set to quantity 0. Empty: nothing differs.
    """
    def product(line: dict[str, Any]) -> Any:
        value = line["product_id"]
        return value[0] if isinstance(value, list) else value

    unmatched = list(have)
    commands: list[list[Any]] = []
    for values in wanted:
        match = next((line for line in unmatched if product(line) == values["product_id"]), None)
        if match is None:
            commands.append([0, 0, values])
            continue
        unmatched.remove(match)
        if (float(match["product_uom_qty"]), float(match["price_unit"])) != (values["product_uom_qty"], values["price_unit"]):
            commands.append([1, match["id"], {"product_uom_qty": values["product_uom_qty"], "price_unit": values["price_unit"]}])
    for line in unmatched:
        if not confirmed:
            commands.append([2, line["id"], 0])
        elif float(line["product_uom_qty"]):
            commands.append([1, line["id"], {"product_uom_qty": 0}])
    return commands
