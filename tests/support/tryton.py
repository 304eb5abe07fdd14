"""The real Tryton server the tests use (scripts/services/tryton-test.sh starts it)."""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from connectors.targets.tryton.config import TrytonConfig
from connectors.targets.tryton.connector import TrytonConnector

DATABASE, USER, PASSWORD = "erp", "admin", "admin"  # what tryton-test.sh builds (a throwaway test server)


def tryton_url() -> str:
    url = os.environ.get("GATEWAY_TEST_TRYTON_URL")
    if not url:
        if os.environ.get("GATEWAY_REQUIRE_SERVICES"):
            pytest.fail("GATEWAY_TEST_TRYTON_URL is not set: scripts/test starts Tryton and sets it")
        pytest.skip("Tryton not running (GATEWAY_TEST_TRYTON_URL unset); eval \"$(scripts/services/tryton-test.sh start)\"")
    return url


@contextmanager
def exclusive() -> Iterator[None]:
    """The one Tryton database for this test alone, until it ends. Tests against it read "the
    sales made since", switch products off and on and reuse PO numbers, so two at once (the
    suite runs on two xdist workers) would see each other's. A lock file per server, not xdist's
    test groups: pytest 9 ignores the node ids xdist 3.8's loadgroup rewrites, silently."""
    port = urlsplit(tryton_url()).port or 80
    with (Path(tempfile.gettempdir()) / f"gateway-test-tryton-{port}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def inspecting() -> Iterator[Inspector]:
    """An Inspector, with the Tryton database to this test alone (`exclusive`) until it ends."""
    with exclusive():
        found = Inspector()
        try:
            yield found
        finally:
            found.close()


def connector(name: str = "erp", **options: Any) -> TrytonConnector:
    cfg = TrytonConfig(name=name, url=tryton_url(), database=DATABASE, user=USER, password=PASSWORD, **options)  # type: ignore[arg-type]
    return TrytonConnector(cfg)


class Inspector:
    """Reads what the ERP holds, through the same JSON-RPC client (a separate session)."""

    def __init__(self) -> None:
        self.conn = connector("inspector")
        self.rpc = self.conn.client.model

    def last_sale_id(self) -> int:
        found = self.rpc("sale.sale", "search", [], 0, 1, [("id", "DESC")])
        return int(found[0]) if found else 0

    def sales(self, domain: list[Any]) -> list[dict[str, Any]]:
        sales = self.rpc("sale.sale", "search_read", domain, 0, None, [("id", "ASC")],
                         ["number", "state", "reference", "party.code", "lines", "comment", "shipment_address"])
        for sale in sales:
            sale["customer"] = (sale.get("party.") or {}).get("code")
        return list(sales)

    def lines(self, sale: dict[str, Any]) -> list[tuple[str, Decimal, Decimal]]:
        rows = self.rpc("sale.line", "read", list(sale["lines"]), ["product.code", "quantity", "unit_price"])
        return sorted((r["product."]["code"], Decimal(str(r["quantity"])).normalize(), Decimal(r["unit_price"]).normalize()) for r in rows)

    def log(self, sale_id: int) -> list[dict[str, Any]]:
        return list(self.rpc("ir.model.log", "search_read", [("resource", "=", f"sale.sale,{sale_id}")], 0, None,
                             [("id", "ASC")], ["event", "target"]))

    def set_salable(self, code: str, salable: bool) -> None:
        ids = self.rpc("product.template", "search", [("code", "=", code)], 0, None, None)
        self.rpc("product.template", "write", ids, {"salable": salable})

    def forget_deliveries(self, domain: list[Any]) -> None:
        """Clear the delivery keys of these sales (a test reusing keys starts clean)."""
        ids = self.rpc("sale.sale", "search", domain, 0, None, None)
        if ids:
            self.rpc("sale.sale", "write", ids, {"comment": None})

    def invoice(self, sale_id: int) -> dict[str, Any]:
        """Invoice a processing sale as a person does in Tryton: "Create Invoice" (manual invoice
        method), the fixture's 10 % tax on its lines, post. The posted invoice: number, total, tax."""
        self.rpc("sale.sale", "manual_invoice", [sale_id])
        (sale,) = self.rpc("sale.sale", "read", [sale_id], ["invoices"])
        tax = self.rpc("account.tax", "search", [("name", "=", "Tax 0.10")], 0, 1, None)
        invoices = list(sale["invoices"])
        for invoice in self.rpc("account.invoice", "read", invoices, ["lines"]):
            self.rpc("account.invoice.line", "write", list(invoice["lines"]), {"taxes": [["add", tax]]})
        self.rpc("account.invoice", "post", invoices)
        (posted,) = self.rpc("account.invoice", "read", invoices, ["number", "state", "total_amount", "tax_amount"])
        return dict(posted)

    def ship(self, sale_id: int) -> None:
        """Send a sale's customer shipments (reserved, picked, packed, done). What they take
        from the warehouse is received from a supplier first, so the stock levels other tests
        read stay as they were (and never go negative)."""
        (sale,) = self.rpc("sale.sale", "read", [sale_id], ["shipments"])
        shipments = list(sale["shipments"])
        moves = [m for s in self.rpc("stock.shipment.out", "read", shipments, ["inventory_moves"]) for m in s["inventory_moves"]]
        (supplier,) = self.rpc("stock.location", "search", [("type", "=", "supplier")], 0, 1, None)
        received = self.rpc("stock.move", "create", [
            {"product": m["product"], "quantity": m["quantity"], "unit": m["unit"], "from_location": supplier,
             "to_location": m["from_location"], "unit_price": Decimal(1), "currency": m["currency"] or 1, "company": m["company"]}
            for m in self.rpc("stock.move", "read", moves, ["product", "quantity", "unit", "from_location", "currency", "company"])
        ])
        self.rpc("stock.move", "do", received)
        for step in ("assign_force", "pick", "pack", "do"):  # assign_force: other tests' sales may hold the stock
            self.rpc("stock.shipment.out", step, shipments)

    def close(self) -> None:
        self.conn.close()


def order_lines(order: dict[str, Any]) -> list[tuple[str, Decimal, Decimal]]:
    return sorted((str(line["sku"]), Decimal(str(line["quantity"])).normalize(), Decimal(str(line["unit_price"])).normalize())
                  for line in order["lines"])
