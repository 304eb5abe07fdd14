"""An in-process ERPNext behind `responses`: the Frappe REST shapes the ERPNext target uses.

GET/POST /api/resource/<doctype>, GET/PUT/DELETE /api/resource/<doctype>/<name>,
POST /api/method/frappe.client.cancel and .../update_child_qty_rate. Errors have Frappe's
body ({"exc_type", "exception", "_server_messages"}) and status (417 validation, 409
duplicate, 404 missing, 401 authentication).

`invoice()` does what billing a Sales Order leaves behind: a submitted Sales Invoice whose
item rows (Sales Invoice Item) name the order in ``sales_order``, float amounts, and the order's
``per_billed`` 100; `deliver()` likewise a submitted Delivery Note (items naming the order in
``against_sales_order``, transporter_name, lr_no) and ``per_delivered`` 100. A list filter ``[child doctype, field, op, value]`` matches a document once
per matching child row, as Frappe's join does.

Fault knobs: `script` (the next calls answer (status, exc_type) or raise an exception),
`lose_answer_of` ("POST Sales Order": the order is created, the answer is lost).
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import requests
import responses

ERPNEXT_URL = "https://erp.example.com"
TOKEN = "token api-key-1:api-secret-1"


def frappe_error(status: int, exc_type: str, message: str) -> tuple[int, dict[str, str], str]:
    body = {"exc_type": exc_type, "exception": f"frappe.exceptions.{exc_type}: {message}",
            "_server_messages": json.dumps([json.dumps({"message": message, "indicator": "red"})]),
            "exc": json.dumps(["Traceback (most recent call last): ..."])}
    return status, {}, json.dumps(body)


class FakeERPNext:
    def __init__(self, mock: responses.RequestsMock, url: str = ERPNEXT_URL):
        self.url = url
        self.lock = threading.Lock()
        self.docs: dict[str, dict[str, dict[str, Any]]] = {"Customer": {}, "Item": {}, "Sales Order": {}, "Bin": {},
                                                           "Sales Invoice": {}, "Delivery Note": {}}
        self.changes: list[tuple[str, Any]] = []
        self.script: list[Any] = []
        self.lose_answer_of: str | None = None
        self.lose_every = 0  # every Nth Sales Order POST is committed and its answer lost
        self.lost = 0
        self._posts = 0
        self.requests: list[tuple[str, str]] = []
        self.serial = 0
        for code in ("WID-1", "GAD-9"):
            self.docs["Item"][code] = {"name": code, "item_code": code, "disabled": 0, "is_sales_item": 1}
        for method in (responses.GET, responses.POST, responses.PUT, responses.DELETE):
            mock.add_callback(method, re.compile(re.escape(url) + r"/api/.*"), callback=self._handle)

    def orders(self) -> list[dict[str, Any]]:
        return list(self.docs["Sales Order"].values())

    def invoice(self, order: str, total: float, tax: float, *, docstatus: int = 1, per_billed: float = 100.0,
                date: str = "2026-12-05") -> str:
        """Bill Sales Order `order` in one Sales Invoice (one item row per order row); its name."""
        return self._follow_on(order, "Sales Invoice", "ACC-SINV", "sales_order", ("per_billed", per_billed), {
            "docstatus": docstatus, "posting_date": date, "grand_total": total, "total_taxes_and_charges": tax, "currency": "USD",
        })

    def deliver(self, order: str, *, lr_no: str | None = None, transporter: str | None = "DHL Express", docstatus: int = 1,
                per_delivered: float = 100.0, date: str = "2026-12-05") -> str:
        """Deliver Sales Order `order` in one Delivery Note (one item row per order row); its name."""
        return self._follow_on(order, "Delivery Note", "MAT-DN", "against_sales_order", ("per_delivered", per_delivered), {
            "docstatus": docstatus, "posting_date": date, "transporter_name": transporter, "lr_no": lr_no,
        })

    def _follow_on(self, order: str, doctype: str, series: str, link: str, progress: tuple[str, float],
                   values: dict[str, Any]) -> str:
        """A document made from Sales Order `order` (an invoice, a delivery note): one item row
        per order row naming the order in `link`, and the order's `progress` field set; its name."""
        with self.lock:
            so = self.docs["Sales Order"][order]
            self.serial += 1
            name = f"{series}-2026-{self.serial:05d}"
            items = [{"name": f"{series.lower()}-{self.serial}-{i}", "item_code": row["item_code"], "qty": row["qty"], link: order}
                     for i, row in enumerate(so["items"])]
            self.docs[doctype][name] = {"name": name, "is_return": 0, "customer": so["customer"], "items": items, **values}
            so[progress[0]] = progress[1]
            return name

    def _handle(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        with self.lock:
            parts = urlsplit(request.url or "")
            path = unquote(parts.path)
            self.requests.append((request.method or "", path))
            if request.headers.get("Authorization") != TOKEN:
                return frappe_error(401, "AuthenticationError", "Invalid login credentials")
            if self.script:
                step = self.script.pop(0)
                if isinstance(step, Exception):
                    raise step
                return frappe_error(*step, "scripted")
            body = json.loads(request.body) if request.body else {}
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            status, answer = self._route(request.method or "", path, body, query)
            what = f"{request.method} {path.rsplit('/', 1)[-1]}"
            if what == "POST Sales Order" and status < 300 and self.lose_every:
                self._posts += 1
                if self._posts % self.lose_every == 0:
                    self.lose_answer_of = what
            if self.lose_answer_of == what and status < 300:
                self.lose_answer_of = None
                self.lost += 1
                raise requests.exceptions.ReadTimeout("the answer was lost after the commit")
            if isinstance(answer, tuple):
                return answer
            return status, {}, json.dumps(answer)

    def _route(self, method: str, path: str, body: dict[str, Any], query: dict[str, str]) -> tuple[int, Any]:
        if path == "/api/method/frappe.auth.get_logged_user":
            return 200, {"message": "gateway@example.com"}
        if path == "/api/method/frappe.client.cancel":
            doc = self.docs[body["doctype"]][body["name"]]
            if doc["docstatus"] != 1:
                return 0, frappe_error(417, "ValidationError", "Cannot cancel: the document is not submitted")
            doc["docstatus"] = 2
            self.changes.append(("cancel", None))
            return 200, {"message": None}
        if path == "/api/method/erpnext.controllers.accounts_controller.update_child_qty_rate":
            doc = self.docs["Sales Order"][body["parent_doctype_name"]]
            doc["items"] = self._rows(json.loads(body["trans_items"]))
            self.changes.append(("update", {"lines": [(i["item_code"], i["qty"]) for i in doc["items"]]}))
            return 200, {"message": None}
        match = re.fullmatch(r"/api/resource/([^/]+)(?:/(.+))?", path)
        if not match or match.group(1) not in self.docs:
            return 0, frappe_error(404, "DoesNotExistError", f"DocType {path} not found")
        doctype, name = match.groups()
        table = self.docs[doctype]
        if name is None and method == "GET":
            filters, fields = json.loads(query.get("filters", "[]")), json.loads(query.get("fields", "[]"))
            found = [d for d in table.values() for _ in range(self._rows_matching(d, filters))]
            limit = int(query.get("limit_page_length", "20"))
            return 200, {"data": [{f: d.get(f) for f in fields} for d in found[: limit or None]]}
        if name is None and method == "POST":
            return self._insert(doctype, body)
        if name not in table:
            return 0, frappe_error(404, "DoesNotExistError", f"{doctype} {name} not found")
        doc = table[name]
        if method == "GET":
            return 200, {"data": doc}
        if method == "DELETE":
            del table[name]
            self.changes.append(("cancel", None))
            return 202, {"message": "ok"}
        if "items" in body:
            if doc["docstatus"] != 0:
                return 0, frappe_error(417, "ValidationError", "Cannot edit a submitted document")
            doc["items"] = self._rows(body["items"])
            self.changes.append(("update", {"lines": [(i["item_code"], i["qty"]) for i in doc["items"]]}))
        if body.get("docstatus") == 1:
            doc["docstatus"] = 1
        return 200, {"data": doc}

    def _insert(self, doctype: str, body: dict[str, Any]) -> tuple[int, Any]:
        if doctype == "Customer":
            name = body["customer_name"]
            if name in self.docs["Customer"]:
                return 0, frappe_error(409, "DuplicateEntryError", f"Customer {name} already exists")
            self.docs["Customer"][name] = {"name": name, **body}
            return 200, {"data": self.docs["Customer"][name]}
        if body["customer"] not in self.docs["Customer"]:
            return 0, frappe_error(417, "LinkValidationError", f"Could not find Customer: {body['customer']}")
        for item in body["items"]:
            if item["item_code"] not in self.docs["Item"]:
                return 0, frappe_error(417, "LinkValidationError", f"Could not find Item: {item['item_code']}")
        self.serial += 1
        name = f"SAL-ORD-2026-{self.serial:05d}"
        doc = {**body, "name": name, "docstatus": 0, "items": self._rows(body["items"])}
        self.docs["Sales Order"][name] = doc
        return 200, {"data": doc}

    def _rows(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = []
        for item in items:
            self.serial += 1
            row = {k: v for k, v in item.items() if k not in ("docname", "conversion_factor", "delivery_date")}
            rows.append({"name": item.get("docname") or f"row-{self.serial}", "rate": 0.0, **row})
        return rows

    def _rows_matching(self, doc: dict[str, Any], filters: list[list[Any]]) -> int:
        """How often `doc` is listed: 0 or 1, or once per child row a child-table filter matches."""
        times = 1
        for term in filters:
            if len(term) == 4:  # [child doctype, field, op, value]: Frappe joins the child table
                times *= sum(self._match(row, term[1:]) for row in doc.get("items") or [])
            elif not self._match(doc, term):
                return 0
        return times

    @staticmethod
    def _match(doc: dict[str, Any], term: list[Any]) -> bool:
        field, op, value = term
        have = doc.get(field)
        if op == "=":
            return bool(have == value)
        if op == "in":
            return have in value
        raise AssertionError(f"unsupported filter {op}")
