"""An in-process Odoo behind `responses`: POST <url>/jsonrpc with the documented shapes.

Only what the Odoo target calls: common.authenticate, and execute_kw on res.partner,
product.product, sale.order, sale.order.line and account.move (search_read, read, create,
write, action_confirm, action_cancel), with domains of [field, '=' | 'in', value] terms.
`invoice()` does what invoicing a sales order in Odoo leaves behind: an account.move
(out_invoice, posted, float amounts, currency_id as [id, "USD"]) in the order's invoice_ids and
its invoice_status "invoiced"; `deliver()` a stock.picking in its picking_ids. ``fields_get``
answers the fields each model has (``inventory=False``: no picking_ids, as an Odoo without the
Inventory app; ``delivery_app=False``: no carrier fields), and reading a field a model lacks is
Odoo's "Invalid field" error. Errors have
Odoo's JSON-RPC shape ({"code": 200, "message": "Odoo Server Error", "data": {"name": ...}}).

Fault knobs: `script` (the next calls answer these instead: an HTTP status, an error name
for a JSON-RPC error, or an exception to raise), `lose_answer_of` (a method whose next call
is carried out but whose answer is lost: a read timeout after the commit).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import requests
import responses

ODOO_URL = "https://odoo.example.com"


def odoo_error(name: str, message: str) -> dict[str, Any]:
    """The JSON-RPC error body Odoo answers (HTTP 200) when a call raises."""
    return {"code": 200, "message": "Odoo Server Error",
            "data": {"name": name, "debug": f"Traceback ...\n{name}: {message}", "message": message,
                     "arguments": [message], "context": {}}}


class FakeOdoo:
    def __init__(self, mock: responses.RequestsMock, url: str = ODOO_URL, *, database: str = "prod",
                 login: str = "gateway", key: str = "odoo-key-1", inventory: bool = True, delivery_app: bool = True):
        self.url, self.database, self.login, self.key = url, database, login, key
        self.lock = threading.Lock()
        self.records: dict[str, dict[int, dict[str, Any]]] = {
            "res.partner": {}, "product.product": {}, "sale.order": {}, "sale.order.line": {}, "stock.warehouse": {},
            "account.move": {}, "stock.picking": {}}
        # What fields_get answers: the Inventory app adds sale.order.picking_ids, the Delivery
        # app stock.picking's carrier fields.
        self.inventory, self.delivery_app = inventory, delivery_app
        self.on_hand: dict[tuple[int, str], float] = {}  # (warehouse id, default_code) -> qty_available
        self.next_id = 1
        self.calls: list[tuple[str, str]] = []  # (model, method) of every execute_kw
        self.changes: list[tuple[str, Any]] = []  # ("update", {"lines": [...]}) / ("cancel", None)
        self.script: list[Any] = []
        self.lose_answer_of: str | None = None
        self.lose_every = 0  # every Nth sale.order create is committed and its answer lost
        self.lost = 0
        self._sale_creates = 0
        for code, price in (("WID-1", 2.5), ("GAD-9", 19.99)):
            self.add("product.product", {"default_code": code, "list_price": price, "sale_ok": True})
        mock.add_callback(responses.POST, url + "/jsonrpc", callback=self._handle, content_type="application/json")

    # -- state ------------------------------------------------------------------------------

    def add(self, model: str, values: dict[str, Any]) -> int:
        rid = self.next_id
        self.next_id += 1
        self.records[model][rid] = {"id": rid, **values}
        return rid

    def product(self, code: str) -> dict[str, Any]:
        return next(p for p in self.records["product.product"].values() if p["default_code"] == code)

    def orders(self) -> list[dict[str, Any]]:
        return list(self.records["sale.order"].values())

    def invoice(self, name: str, total: float, tax: float, *, state: str = "posted", move_type: str = "out_invoice",
                date: str = "2026-12-05", status: str = "invoiced") -> str:
        """Invoice sales order `name` as Odoo records it; the invoice's name."""
        with self.lock:
            order = next(o for o in self.records["sale.order"].values() if o["name"] == name)
            number = f"INV/2026/{self.next_id:05d}" if state == "posted" else "/"
            mid = self.add("account.move", {"name": number, "move_type": move_type, "state": state, "invoice_date": date if state == "posted" else False,
                                            "amount_total": total, "amount_tax": tax, "currency_id": [2, "USD"]})
            order["invoice_ids"] = [*(order.get("invoice_ids") or []), mid]
            order["invoice_status"] = status
            return number

    def deliver(self, name: str, *, state: str = "done", tracking: str | None = None, carrier: str | None = "UPS",
                code: str = "outgoing", date: str = "2026-12-05 14:30:00") -> int:
        """A picking of sales order `name` as the Inventory app records it; its id."""
        with self.lock:
            order = next(o for o in self.records["sale.order"].values() if o["name"] == name)
            pid = self.add("stock.picking", {"name": f"WH/OUT/{self.next_id:05d}", "state": state, "picking_type_code": code,
                                             "date_done": date if state == "done" else False,
                                             "carrier_id": [9, carrier] if carrier else False, "carrier_tracking_ref": tracking or False})
            order["picking_ids"] = [*(order.get("picking_ids") or []), pid]
            return pid

    def lines_of(self, order: dict[str, Any]) -> list[tuple[str, float]]:
        products = self.records["product.product"]
        lines = [self.records["sale.order.line"][i] for i in order["order_line"]]
        return [(products[line["product_id"]]["default_code"], line["product_uom_qty"]) for line in lines
                if line["product_uom_qty"]]

    # -- the JSON-RPC endpoint --------------------------------------------------------------

    def _handle(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        with self.lock:
            if self.script:
                step = self.script.pop(0)
                if isinstance(step, Exception):
                    raise step
                if isinstance(step, int):
                    return step, {"Retry-After": "7"} if step == 429 else {}, "<html>busy</html>"
                return 200, {}, json.dumps({"jsonrpc": "2.0", "id": 1, "error": odoo_error(step, "scripted")})
            payload = json.loads(request.body or b"{}")
            if payload.get("jsonrpc") != "2.0" or payload.get("method") != "call" or request.headers.get(
                    "Content-Type") != "application/json":
                return 400, {}, "<html>Bad Request: not a JSON-RPC 2.0 call</html>"
            params = payload["params"]
            try:
                result = self._dispatch(params["service"], params["method"], params["args"])
            except LookupError as exc:
                body = {"jsonrpc": "2.0", "id": payload["id"], "error": odoo_error(*exc.args)}
                return 200, {}, json.dumps(body)
            call = tuple(params["args"][3:5]) if params["method"] == "execute_kw" else ()
            lost = self.lose_answer_of is not None and call[1:] == (self.lose_answer_of,)
            if call == ("sale.order", "create") and self.lose_every:
                self._sale_creates += 1
                lost = lost or self._sale_creates % self.lose_every == 0
            if lost:
                self.lose_answer_of = None
                self.lost += 1
                raise requests.exceptions.ReadTimeout("the answer was lost after the commit")
            return 200, {}, json.dumps({"jsonrpc": "2.0", "id": payload["id"], "result": result})

    def _dispatch(self, service: str, method: str, args: list[Any]) -> Any:
        if service == "common" and method == "authenticate":
            db, login, key, _ = args
            return 7 if (db, login, key) == (self.database, self.login, self.key) else False
        db, uid, key, model, method, margs, kwargs = args
        if (db, uid, key) != (self.database, 7, self.key):
            raise LookupError("odoo.exceptions.AccessDenied", "Access Denied")
        self.calls.append((model, method))
        table = self.records[model]
        if method == "search_read":
            found = [r for r in table.values() if all(self._match(r, term) for term in margs[0])]
            warehouse = kwargs.get("context", {}).get("warehouse_id")
            if model == "product.product" and warehouse is not None:
                found = [{**r, "qty_available": self.on_hand.get((warehouse, r["default_code"]), 0.0)} for r in found]
            found = found[: kwargs.get("limit") or None]
            return [self._fields(r, kwargs.get("fields"), model) for r in found]
        if method == "read":
            return [self._fields(table[i], kwargs.get("fields"), model) for i in margs[0]]
        if method == "fields_get":
            return {f: {"type": "char"} for f in self._model_fields(model)}
        if method == "create":
            return self._create(model, margs[0])
        if method == "write":
            ids, values = margs
            for i in ids:
                self._write(model, i, values)
            return True
        if method == "check_access_rights":
            return model == "sale.order" and margs == ["create"] and kwargs == {"raise_exception": False}
        if method == "action_confirm":
            for i in margs[0]:
                table[i]["state"] = "sale"
            return True
        if method == "action_cancel":
            if not kwargs.get("context", {}).get("disable_cancel_warning") and \
                    any(table[i]["state"] != "draft" for i in margs[0]):
                return {"type": "ir.actions.act_window", "res_model": "sale.order.cancel", "target": "new"}
            for i in margs[0]:
                table[i]["state"] = "cancel"
                self.changes.append(("cancel", None))
            return True
        raise LookupError("builtins.AttributeError", f"The method '{method}' does not exist on the model '{model}'")

    def _create(self, model: str, values: dict[str, Any]) -> int:
        values = dict(values)
        if model == "sale.order":
            lines = values.pop("order_line", [])
            for field in ("partner_id", "partner_shipping_id"):
                if values[field] not in self.records["res.partner"]:
                    raise LookupError("odoo.exceptions.ValidationError", f"Record does not exist: {field}")
            values.update(name=f"S{self.next_id:05d}", state="draft", order_line=[])
            sid = self.add(model, values)
            self._lines(sid, lines)
            return sid
        return self.add(model, values)

    def _lines(self, sid: int, commands: list[Any]) -> None:
        order = self.records["sale.order"][sid]
        for command in commands:
            if command[0] == 5:
                order["order_line"] = []
            elif command[0] == 2:
                if order["state"] == "sale":
                    raise LookupError("odoo.exceptions.UserError",
                                      "You can not remove an order line once the sales order is confirmed.")
                order["order_line"].remove(command[1])
            elif command[0] == 1:
                self.records["sale.order.line"][command[1]].update(command[2])
            elif command[0] == 0:
                product = self.records["product.product"].get(command[2]["product_id"])
                if product is None or not product["sale_ok"]:
                    raise LookupError("odoo.exceptions.UserError", "This product cannot be sold")
                order["order_line"].append(self.add("sale.order.line", {"order_id": sid, **command[2]}))

    def _write(self, model: str, rid: int, values: dict[str, Any]) -> None:
        values = dict(values)
        if model == "sale.order" and "order_line" in values:
            self._lines(rid, values.pop("order_line"))
            self.changes.append(("update", {"lines": self.lines_of(self.records[model][rid])}))
        self.records[model][rid].update(values)

    def _model_fields(self, model: str) -> set[str]:
        fields = {f for r in self.records[model].values() for f in r}
        if model == "sale.order":
            fields |= {"name", "state", "invoice_status", "invoice_ids"} | ({"picking_ids"} if self.inventory else set())
        if model == "stock.picking":
            fields |= {"name", "state", "picking_type_code", "date_done"} | (
                {"carrier_id", "carrier_tracking_ref"} if self.delivery_app else set())
        return fields - ({"picking_ids"} if not self.inventory else set())

    @staticmethod
    def _match(record: dict[str, Any], term: list[Any]) -> bool:
        field, op, value = term
        have = record.get(field, False)
        if op == "=":
            return bool(have == value)
        if op == "in":
            return have in value
        if op == "!=":
            return bool(have != value)
        raise LookupError("builtins.ValueError", f"Invalid domain operator {op!r}")

    def _fields(self, record: dict[str, Any], fields: list[str] | None, model: str | None = None) -> dict[str, Any]:
        if not fields:
            return dict(record)
        if model in ("sale.order", "stock.picking") and (unknown := set(fields) - self._model_fields(model)):
            raise LookupError("builtins.ValueError", f"Invalid field {sorted(unknown)[0]!r} on model {model!r}")
        return {"id": record["id"], **{f: record.get(f, False) for f in fields}}
