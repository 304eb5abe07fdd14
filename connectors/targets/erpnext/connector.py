"""ERPNext target: each order becomes a Sales Order through the Frappe REST API.

Capabilities
    idempotency_key=True   before creating, the Sales Order is looked up by ``po_no`` = PO
                           number and ``customer`` (and, with ``key_field``, the delivery's key
                           written into that field); found, it is returned instead of a second one
    idempotent=True        for the same reason a repeat of a delivery has one effect
    updates=True           a draft gets its items replaced (PUT); a submitted order goes through
                           ERPNext's "Update Items" (``update_child_qty_rate``); a repeat with the
                           same items changes nothing
    cancels=True           a submitted order through ``frappe.client.cancel``; a draft is
                           deleted; an already cancelled (or deleted) order is fine
    stock_levels()         ``actual_qty`` of each ``Bin`` (one per item and warehouse) as
                           master-data ``stock`` rows; `gateway data pull stock --from NAME`
    status=True            `status(name)`: once the Sales Order is billed in full (``per_billed``
                           100), its submitted Sales Invoices (name, posting_date, grand_total,
                           total_taxes_and_charges, currency; returns left out). The gateway's
                           ``status:<name>`` job records each once (`gateway.tracking`, config
                           ``poll_status_minutes``).
    shipments=True         and once it is delivered in full (``per_delivered`` 100), shipped with
                           its submitted Delivery Notes (returns left out): posting_date, the
                           transporter_name as carrier, the transport receipt number ``lr_no``
                           as tracking (`gateway shipped ORDER` asks it too)

Config keys (`ERPNextConfig`)
    name, url, auth (see connectors/targets/auth.py; ERPNext's ``Authorization: token
    key:secret`` is ``{type: api_key, header: Authorization, prefix: "token ", value_env: NAME}``),
    company, customer_code_from, create_customers, customer_group, territory, submit,
    delivery_days, key_field, timeout.connect / timeout.read / timeout.total, retry, verify_tls

What a create does
    1. ``GET /api/resource/Sales Order?filters=[[po_no,=,PO],[customer,=,C]]`` — found: it
       is submitted if a crash left it a draft, and its name returned; nothing is created
    2. ``GET /api/resource/Item`` with item_code in the skus, enabled and a sales item; an
       unknown sku is a PermanentError naming it, before anything is written
    3. ``GET /api/resource/Customer`` by name = the customer code; created (``POST``, named by
       the code, customer_details = the party's name) when missing and create_customers
    4. ``POST /api/resource/Sales Order`` with customer, po_no, po_date, transaction_date,
       delivery_date (requested delivery date, else order date + delivery_days), company,
       items (item_code, qty, rate when the order has a price, else the price list's) and
       key_field; then ``PUT {"docstatus": 1}`` to submit. The receipt's reference is the
       Sales Order's name (``SAL-ORD-2026-00001``).

What a status call does
    1. ``GET /api/resource/Sales Order?filters=[["name","=",NAME]]&fields=["name","docstatus",
       "per_billed","per_delivered"]`` (none: PermanentError)
    2. only when per_delivered >= 100: ``GET /api/resource/Delivery Note?filters=[["Delivery
       Note Item","against_sales_order","=",NAME],["docstatus","=",1],["is_return","=",0]]``
       with name, posting_date, transporter_name and lr_no, read once per name
    3. only when per_billed >= 100: ``GET /api/resource/Sales Invoice?filters=[["Sales Invoice
       Item","sales_order","=",NAME],["docstatus","=",1],["is_return","=",0]]`` with the fields
       above: a filter on the child table (Sales Invoice Item.sales_order links each invoiced row
       to its order) matches an invoice once per row, so the answer is read once per name.
       Amounts are floats, made Decimal here and rounded to the currency's places by the core.
    Sources: Frappe's REST API (frappeframework.com/docs/user/en/api/rest: ``filters`` and
    ``fields`` as JSON, ``[doctype, field, operator, value]`` for a child table's field),
    ERPNext's Sales Order ``per_billed`` and Sales Invoice / Sales Invoice Item fields
    (erpnext/selling/doctype/sales_order/sales_order.json, erpnext/accounts/doctype/
    sales_invoice/sales_invoice.json, sales_invoice_item.json), ``per_delivered`` and Delivery
    Note / Delivery Note Item fields (erpnext/stock/doctype/delivery_note/delivery_note.json:
    lr_no "Transport Receipt (LR) No", transporter_name; delivery_note_item.json:
    against_sales_order).

Error mapping (Frappe answers ``{"exc_type": ..., "exception": ..., "_server_messages": ...}``)
    HTTP 408, 429, 5xx                       TransientError (Retry-After honoured)
    exc_type TimestampMismatchError,         TransientError (the document or database was busy)
      QueryDeadlockError, QueryTimeoutError
    HTTP 409 DuplicateEntryError             on a Customer create: another worker made it, it
                                             is looked up again; elsewhere PermanentError
    HTTP 401 AuthenticationError, 403        PermanentError (credentials or the user's roles);
      PermissionError                        an OAuth2 token is refreshed once first
    HTTP 404 DoesNotExistError               PermanentError (a cancel of a deleted draft: done)
    HTTP 417 ValidationError,                PermanentError with ERPNext's message
      LinkValidationError, MandatoryError,
      any other 4xx
    connection errors, timeouts              TransientError (connectors/targets/rest.py)
    unknown item, no customer code, unknown  PermanentError naming what is missing
      customer (create_customers off), an
      update of a cancelled order
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection
from decimal import Decimal
from typing import Any

import requests

from connectors.targets.erpnext.config import ERPNextConfig
from connectors.targets.rest import (
    Answer,
    RestClient,
    customer_code,
    excerpt,
    iso_date,
    key_marker,
    order_lines,
    segment,
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

__all__ = ["ERPNextConnector", "ERPNextError", "frappe_message"]

TRANSIENT_EXC_TYPES = frozenset({"TimestampMismatchError", "QueryDeadlockError", "QueryTimeoutError"})
SALES_ORDER = "/api/resource/" + segment("Sales Order", "doctype")


class ERPNextError(PermanentError):
    """ERPNext refused a call (ValidationError, LinkValidationError, ...); never retried."""

    def __init__(self, message: str, *, status: int | None = None, exc_type: str = ""):
        super().__init__(message, status=status)
        self.exc_type = exc_type


def frappe_message(body: Any) -> str:
    """The user-facing message of a Frappe error body: _server_messages, else exception, else exc_type."""
    if not isinstance(body, dict):
        return str(body or "")
    raw = body.get("_server_messages")
    if isinstance(raw, str):
        try:
            texts = []
            for item in json.loads(raw):
                entry = json.loads(item) if isinstance(item, str) else item
                texts.append(str(entry.get("message") if isinstance(entry, dict) else entry))
            if texts:
                return " ".join(texts)
        except (ValueError, TypeError, AttributeError):
            pass
    return str(body.get("exception") or body.get("exc_type") or body.get("message") or "")


class ERPNextConnector:
    """Creates, updates and cancels Sales Orders; see the module docstring for the contract."""

    capabilities = Capabilities(idempotency_key=True, idempotent=True, updates=True, cancels=True, stock=True, status=True, shipments=True)

    def __init__(self, config: ERPNextConfig, session: requests.Session | None = None):
        self.config = config
        self.name = config.name
        self.client = RestClient.for_target(config, session)

    def __repr__(self) -> str:
        return f"ERPNextConnector(name={self.name!r}, url={self.client.base_url!r})"

    def close(self) -> None:
        self.client.close()

    # -- REST ---------------------------------------------------------------------------------------

    def call(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        """The answer's ``data`` (resources) or ``message`` (methods); errors mapped as documented."""
        answer = self.client.call(method, path, body=body, params=params)
        if 200 <= answer.status < 300:
            data = answer.body if isinstance(answer.body, dict) else {}
            return data.get("data", data.get("message"))
        raise self._error(method, path, answer)

    def _error(self, method: str, path: str, answer: Answer) -> DeliveryError:
        where = f"ERPNext {self.name} ({method} {path})"
        body = answer.body if isinstance(answer.body, dict) else {}
        exc_type = str(body.get("exc_type") or "")
        if exc_type in TRANSIENT_EXC_TYPES:
            return TransientError(f"{where}: {exc_type}", status=answer.status)
        failure = transient_status(answer, where)
        if failure:
            return failure
        message = excerpt(frappe_message(answer.body), self.client.secrets())
        hint = "; check auth and the user's roles" if answer.status in (401, 403) else ""
        return ERPNextError(f"{where} refused: HTTP {answer.status} {exc_type}: {message}{hint}",
                            status=answer.status, exc_type=exc_type)

    def _list(self, doctype: str, filters: list[Any], fields: list[str], limit: int = 0) -> list[dict[str, Any]]:
        params = {"filters": json.dumps(filters), "fields": json.dumps(fields), "limit_page_length": str(limit)}
        found = self.call("GET", "/api/resource/" + segment(doctype, "doctype"), params=params)
        return list(found or [])

    def verify(self) -> str:
        """Who the credentials log in as (``frappe.auth.get_logged_user``); writes nothing."""
        self.client.start_send()
        user = self.call("GET", "/api/method/frappe.auth.get_logged_user")
        self._list("Sales Order", [], ["name"], limit=1)  # the user may read Sales Orders
        return f"authenticated as {user}; may read Sales Orders"

    def stock_levels(self, codes: Collection[str] | None = None) -> list[dict[str, Any]]:
        """Rows of the master-data ``stock`` kind from ERPNext's Bins: sku (item_code),
        warehouse (the Warehouse's name), on_hand (actual_qty); `codes` limits it to those items."""
        self.client.start_send()
        filters: list[Any] = [["item_code", "in", sorted(codes)]] if codes is not None else []
        bins = self._list("Bin", filters, ["item_code", "warehouse", "actual_qty"])
        return [{"sku": b["item_code"], "warehouse": b["warehouse"], "on_hand": Decimal(str(b["actual_qty"]))}
                for b in sorted(bins, key=lambda b: (b["warehouse"], b["item_code"]))]

    def status(self, reference: str) -> StatusFound:
        """Sales Order `reference`'s submitted Delivery Notes once it is delivered in full
        (per_delivered 100) and its submitted Sales Invoices once it is billed in full
        (per_billed 100); nothing before."""
        self.client.start_send()
        found = self._list("Sales Order", [["name", "=", reference]], ["name", "docstatus", "per_billed", "per_delivered"], limit=1)
        if not found:
            raise PermanentError(f"no Sales Order {reference!r} in ERPNext {self.name}")
        delivered = (decimal_of(found[0].get("per_delivered")) or Decimal(0)) >= 100
        shipments = self._deliveries(reference) if delivered else ()
        billed = decimal_of(found[0].get("per_billed")) or Decimal(0)
        if billed < 100:
            return StatusFound(shipped=delivered, shipments=shipments)
        rows = self._submitted("Sales Invoice", "Sales Invoice Item", "sales_order", reference,
                               ["posting_date", "grand_total", "total_taxes_and_charges", "currency"])
        invoices = tuple(
            InvoiceFound(
                number=str(r["name"]), date=iso_date(r.get("posting_date")), total=decimal_of(r.get("grand_total")),
                tax=decimal_of(r.get("total_taxes_and_charges")), currency=str(r["currency"]) if r.get("currency") else None,
            )
            for r in rows
        )
        return StatusFound(shipped=delivered, shipments=shipments, invoices=invoices)

    def _deliveries(self, reference: str) -> tuple[ShipmentFound, ...]:
        """The submitted Delivery Notes of Sales Order `reference` (not returns), one shipment
        each: the transporter as carrier, the transport receipt (LR) number as tracking."""
        rows = self._submitted("Delivery Note", "Delivery Note Item", "against_sales_order", reference,
                               ["posting_date", "transporter_name", "lr_no"])
        return tuple(
            ShipmentFound(
                carrier=str(r["transporter_name"]) if r.get("transporter_name") else None,
                tracking=str(r.get("lr_no") or "").strip() or None,
                ship_date=iso_date(r.get("posting_date")),
            )
            for r in rows
        )

    def _submitted(self, doctype: str, child: str, link: str, reference: str, fields: list[str]) -> list[dict[str, Any]]:
        """The submitted `doctype` documents (not returns) whose `child` rows name Sales Order
        `reference` in `link`, each once: Frappe's child-table filter lists a document once
        per matching row."""
        filters = [[child, link, "=", reference], ["docstatus", "=", 1], ["is_return", "=", 0]]
        once = {str(r["name"]): r for r in self._list(doctype, filters, ["name", *fields]) if r.get("name")}
        return list(once.values())

    # -- the Connector protocol ---------------------------------------------------------------------

    def send(self, delivery: Delivery) -> Receipt:
        self.client.start_send()
        if delivery.action == "create":
            return self._create(delivery)
        if not delivery.target_reference:
            raise PermanentError(f"{delivery.action} of PO {delivery.order.get('po_number')}: no Sales Order name recorded")
        path = f"{SALES_ORDER}/{segment(delivery.target_reference, 'Sales Order name')}"
        try:
            doc = self.call("GET", path)
        except ERPNextError as exc:
            if delivery.action == "cancel" and exc.status == 404:  # a draft deleted by an earlier cancel
                return Receipt(status=200, reference=delivery.target_reference, detail={"docstatus": 2, "deleted": True})
            raise
        if delivery.action == "update":
            return self._update(delivery, path, doc)
        if delivery.action == "cancel":
            return self._cancel(path, doc)
        raise PermanentError(f"ERPNext connector {self.name} cannot {delivery.action!r}")

    def _create(self, delivery: Delivery) -> Receipt:
        order = delivery.order
        po = str(order.get("po_number") or "")
        code, party_name = customer_code(order, self.config.customer_code_from)
        filters: list[Any] = [["po_no", "=", po], ["customer", "=", code]]
        if self.config.key_field:
            filters.append([self.config.key_field, "=", key_marker(delivery.idempotency_key)])
        found = self._list("Sales Order", filters, ["name", "docstatus"], limit=1)
        if found:
            doc = found[0]
            if self.config.submit and doc["docstatus"] == 0:  # a crash between create and submit: finish it
                self.call("PUT", f"{SALES_ORDER}/{segment(doc['name'], 'Sales Order name')}", {"docstatus": 1})
            return Receipt(status=200, reference=doc["name"], detail={"found": True})
        items = self._items(order)
        self._customer(order, code, party_name)
        today = dt.date.fromisoformat(order["order_date"]) if order.get("order_date") else dt.date.today()
        wanted = order.get("requested_delivery_date")
        # ERPNext refuses a delivery date before the order date
        delivery_date = max(dt.date.fromisoformat(wanted), today) if wanted else today + dt.timedelta(days=self.config.delivery_days)
        values: dict[str, Any] = {
            "customer": code,
            "po_no": po,
            "po_date": today.isoformat(),
            "transaction_date": today.isoformat(),
            "delivery_date": delivery_date.isoformat(),
            "items": items,
        }
        if self.config.company:
            values["company"] = self.config.company
        if self.config.key_field:
            values[self.config.key_field] = key_marker(delivery.idempotency_key)
        doc = self.call("POST", SALES_ORDER, values)
        name = str(doc["name"])
        if self.config.submit:
            doc = self.call("PUT", f"{SALES_ORDER}/{segment(name, 'Sales Order name')}", {"docstatus": 1})
        return Receipt(status=200, reference=name, detail={"docstatus": doc.get("docstatus", 0)})

    def _items(self, order: dict[str, Any]) -> list[dict[str, Any]]:
        lines = order_lines(order)
        codes = sorted({str(line["sku"]) for line in lines})
        found = self._list("Item", [["item_code", "in", codes], ["disabled", "=", 0], ["is_sales_item", "=", 1]],
                           ["item_code"])
        known = {item["item_code"] for item in found}
        unknown = [c for c in codes if c not in known]
        if unknown:
            raise unknown_products(order, f"ERPNext {self.name}", unknown)
        items = []
        for line in lines:
            item: dict[str, Any] = {"item_code": str(line["sku"]), "qty": float(Decimal(str(line["quantity"])))}
            if line.get("unit_price") is not None:
                item["rate"] = float(Decimal(str(line["unit_price"])))
            if line.get("description"):
                item["description"] = str(line["description"])
            items.append(item)
        return items

    def _customer(self, order: dict[str, Any], code: str, party_name: str | None) -> None:
        if self._list("Customer", [["name", "=", code]], ["name"], limit=1):
            return
        if not self.config.create_customers:
            raise PermanentError(f"PO {order.get('po_number')}: no Customer {code!r} in ERPNext {self.name}")
        values = {"customer_name": code, "customer_type": "Company", "customer_group": self.config.customer_group,
                  "territory": self.config.territory, "customer_details": party_name or code}
        try:
            self.call("POST", "/api/resource/Customer", values)
        except ERPNextError as exc:
            if exc.exc_type != "DuplicateEntryError":
                raise  # else another worker created it a moment ago: it is there now

    # -- update and cancel --------------------------------------------------------------------------

    def _update(self, delivery: Delivery, path: str, doc: dict[str, Any]) -> Receipt:
        if doc.get("docstatus") == 2:
            raise PermanentError(f"Sales Order {doc['name']} is cancelled in ERPNext {self.name}: change it there")
        items = self._items(delivery.order)
        have = list(doc.get("items") or [])

        with_rate = all("rate" in i for i in items)  # else the price list's rate: compare codes and quantities

        def key(item: dict[str, Any]) -> tuple[str, float, float]:
            return (str(item["item_code"]), float(item["qty"]), float(item.get("rate") or 0) if with_rate else 0.0)

        if sorted(map(key, have)) == sorted(map(key, items)):  # a repeat: nothing to change
            return Receipt(status=200, reference=doc["name"], detail={"docstatus": doc.get("docstatus")})
        if doc.get("docstatus") == 0:
            self.call("PUT", path, {"items": items})
        else:
            rows = {str(i["item_code"]): i.get("name") for i in have}
            trans = [{**i, "docname": rows.get(i["item_code"]), "conversion_factor": 1,
                      "delivery_date": doc.get("delivery_date")} for i in items]
            self.call("POST", "/api/method/erpnext.controllers.accounts_controller.update_child_qty_rate",
                      {"parent_doctype": "Sales Order", "trans_items": json.dumps(trans), "parent_doctype_name": doc["name"]})
        return Receipt(status=200, reference=doc["name"], detail={"docstatus": doc.get("docstatus")})

    def _cancel(self, path: str, doc: dict[str, Any]) -> Receipt:
        if doc.get("docstatus") == 1:
            self.call("POST", "/api/method/frappe.client.cancel", {"doctype": "Sales Order", "name": doc["name"]})
        elif doc.get("docstatus") == 0:
            self.call("DELETE", path)
        return Receipt(status=200, reference=doc["name"], detail={"docstatus": 2})
