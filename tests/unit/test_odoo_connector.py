"""The Odoo target against Odoo's documented JSON-RPC shapes and error bodies (responses)."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
import requests
import responses

from connectors.targets.odoo.config import OdooConfig
from connectors.targets.odoo.connector import OdooConnector, OdooError
from gateway.connector import Delivery, InvoiceFound, ShipmentFound, StatusFound
from gateway.errors import ConfigError, PermanentError, TransientError
from gateway.tracking import invoice_of
from tests.support.fake_odoo import ODOO_URL, FakeOdoo
from tests.unit.test_target_contract import GOLDEN


@pytest.fixture
def odoo(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeOdoo, OdooConnector]]:
    monkeypatch.setenv("ODOO_KEY", "odoo-key-1")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeOdoo(mock)
        connector = OdooConnector(OdooConfig(name="odoo", url=ODOO_URL, database="prod",  # type: ignore[arg-type]
                                             username="gateway", password_env="ODOO_KEY"))
        yield fake, connector
        connector.close()


def delivery(order: dict[str, Any] = GOLDEN, key: str = "key-1") -> Delivery:
    return Delivery(outbox_id=1, order_id="o-1", idempotency_key=key, attempt=1, order=order)


def test_create_follows_the_documented_execute_kw_shapes(odoo: tuple[FakeOdoo, OdooConnector]) -> None:
    fake, connector = odoo
    order = {**GOLDEN, "ship_to": {"name": "Dock 4", "address_lines": ["1 Quay St"], "city": "Leeds", "postal_code": "LS1"}}
    receipt = connector.send(delivery(order))
    (sale,) = fake.orders()
    assert receipt.reference == sale["name"] and sale["state"] == "sale"  # confirmed (the default state)
    assert sale["client_order_ref"] == "PO-GOLD-1" and sale["origin"] == "order-gateway delivery key-1"
    assert fake.lines_of(sale) == [("WID-1", 10.0), ("GAD-9", 0.5)]
    customer = fake.records["res.partner"][sale["partner_id"]]
    shipping = fake.records["res.partner"][sale["partner_shipping_id"]]
    assert (customer["ref"], customer["name"]) == ("ACME", "Acme Retail")
    assert (shipping["parent_id"], shipping["type"], shipping["city"]) == (customer["id"], "delivery", "Leeds")
    assert ("sale.order", "action_confirm") in fake.calls
    connector.send(delivery(order, key="key-2"))  # the same customer and ship-to are reused
    assert len(fake.records["res.partner"]) == 2 and len(fake.orders()) == 2


def test_a_lost_answer_then_the_retry_makes_one_sale(odoo: tuple[FakeOdoo, OdooConnector]) -> None:
    fake, connector = odoo
    fake.lose_answer_of = "create"  # the customer's create: committed, answer lost
    with pytest.raises(TransientError, match="retry looks the order up"):
        connector.send(delivery())
    fake.lose_answer_of = "create"  # now the sale's create: a quotation exists, its answer is lost
    with pytest.raises(TransientError):
        connector.send(delivery())
    assert fake.orders()[0]["state"] == "draft"
    first = connector.send(delivery())  # found by client_order_ref + origin, confirmed, not created again
    assert len(fake.orders()) == 1 and first.detail["found"] and fake.orders()[0]["state"] == "sale"


def test_an_unknown_product_is_permanent_and_named_before_anything_is_written(odoo: tuple[FakeOdoo, OdooConnector]) -> None:
    fake, connector = odoo
    order = {**GOLDEN, "lines": [*GOLDEN["lines"], {**GOLDEN["lines"][0], "sku": "NOPE-7"}]}
    with pytest.raises(PermanentError, match="unknown product.*NOPE-7"):
        connector.send(delivery(order))
    assert fake.orders() == [] and fake.records["res.partner"] == {}


@pytest.mark.parametrize(
    ("script", "error", "text"),
    [
        ("odoo.exceptions.ValidationError", OdooError, "ValidationError: scripted"),
        ("odoo.exceptions.UserError", OdooError, "UserError"),
        ("psycopg2.errors.SerializationFailure", TransientError, "SerializationFailure"),
        ("odoo.exceptions.AccessDenied", PermanentError, "check username and password_env"),
        (429, TransientError, "HTTP 429"),
        (502, TransientError, "HTTP 502"),
        (404, PermanentError, "is url right"),
        (requests.exceptions.ConnectionError("refused"), TransientError, "ConnectionError"),
    ],
)
def test_odoo_errors_map_to_transient_or_permanent(odoo: tuple[FakeOdoo, OdooConnector], script: Any,
                                                   error: type[Exception], text: str) -> None:
    fake, connector = odoo
    connector.send(delivery(key="warm-up"))  # logged in
    fake.script = [script]
    with pytest.raises(error, match=text) as info:
        connector.send(delivery(key="key-9"))
    assert isinstance(info.value, TransientError) == (error is TransientError)
    if script == 429:
        assert info.value.retry_after == 7  # type: ignore[attr-defined]
    assert "odoo-key-1" not in str(info.value)


def test_a_refused_login_and_a_missing_key_are_configuration_problems(
    odoo: tuple[FakeOdoo, OdooConnector], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, connector = odoo
    fake.key = "rotated"  # authenticate answers false
    with pytest.raises(PermanentError, match="refused the login of 'gateway'"):
        connector.send(delivery())
    monkeypatch.delenv("ODOO_KEY")
    with pytest.raises(ConfigError, match="ODOO_KEY is not set"):
        OdooConnector(OdooConfig(name="odoo", url=ODOO_URL, database="prod", username="gateway",  # type: ignore[arg-type]
                                 password_env="ODOO_KEY"))


def test_a_confirmed_order_is_changed_in_place_and_cancelled_without_the_wizard(
    odoo: tuple[FakeOdoo, OdooConnector]
) -> None:
    """Odoo will not delete a confirmed order's lines: they are changed in place (one set to 0),
    a new product is added; a confirmed order's cancel passes disable_cancel_warning."""
    fake, connector = odoo
    ref = connector.send(delivery()).reference
    changed = {**GOLDEN, "lines": [{**GOLDEN["lines"][0], "quantity": "12"}, {**GOLDEN["lines"][0], "sku": "NEW-3"}]}
    fake.add("product.product", {"default_code": "NEW-3", "list_price": 4.0, "sale_ok": True})
    for key in ("u-1", "u-2"):  # the repeat finds nothing to change
        connector.send(Delivery(outbox_id=2, order_id="o-2", idempotency_key=key, attempt=1, order=changed,
                                action="update", target_reference=ref))
    (sale,) = fake.orders()
    assert fake.lines_of(sale) == [("WID-1", 12.0), ("NEW-3", 10.0)] and len(sale["order_line"]) == 3
    assert [c[0] for c in fake.changes] == ["update"]
    connector.send(Delivery(outbox_id=3, order_id="o-3", idempotency_key="c-1", attempt=1, order=changed,
                            action="cancel", target_reference=ref))
    assert sale["state"] == "cancel"


class SlowSearchOdoo(FakeOdoo):
    """Answers an empty partner search slowly, as a busy Odoo does: the window in which a
    second worker searching for the same new customer also finds nothing."""

    def _handle(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        answer = super()._handle(request)
        args = json.loads(request.body or b"{}").get("params", {}).get("args", [])
        if args[3:5] == ["res.partner", "search_read"] and json.loads(answer[2]).get("result") == []:
            time.sleep(0.05)
        return answer


def test_concurrent_orders_of_a_new_customer_create_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # found by CI: the dispatcher's threads created one ISA sender as two res.partner records
    monkeypatch.setenv("ODOO_KEY", "odoo-key-1")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = SlowSearchOdoo(mock)
        connector = OdooConnector(OdooConfig(name="odoo", url=ODOO_URL, database="prod",  # type: ignore[arg-type]
                                             username="gateway", password_env="ODOO_KEY"))
        order = {**GOLDEN, "ship_to": {"name": "Dock 4", "address_lines": ["1 Quay St"], "city": "Leeds"}}
        with ThreadPoolExecutor(8) as pool:
            receipts = list(pool.map(lambda i: connector.send(delivery(order, key=f"key-{i}")), range(16)))
        connector.close()
    assert len({r.reference for r in receipts}) == 16 and len(fake.orders()) == 16
    partners = list(fake.records["res.partner"].values())
    assert sorted(p.get("type", "company") for p in partners) == ["company", "delivery"]  # one customer, one ship-to
    assert {s["partner_id"] for s in fake.orders()} == {p["id"] for p in partners if p.get("ref") == "ACME"}


# -- status: invoices coming back (gateway.tracking) ------------------------------------------------


def test_status_reports_posted_invoices_only_once_the_order_is_invoiced(odoo: tuple[FakeOdoo, OdooConnector]) -> None:
    fake, connector = odoo
    name = str(connector.send(delivery()).reference)
    assert connector.status(name) == StatusFound()  # confirmed, nothing invoiced: invoice_ids is false
    fake.invoice(name, 35.98, 3.27, state="draft", status="to invoice")  # a draft: not yet
    assert connector.status(name) == StatusFound()
    number = fake.invoice(name, 107.91000000000001, 9.81)  # Odoo's float, as JSON carries it
    fake.invoice(name, -10.0, 0.0, move_type="out_refund")  # a credit note is not an invoice of the order
    (found,) = connector.status(name).invoices
    assert found == InvoiceFound(number=number, date=dt.date(2026, 12, 5), total=Decimal("107.91000000000001"),
                                 tax=Decimal("9.81"), currency="USD")
    assert invoice_of(found).total == Decimal("107.91")  # rounded to the currency's places by the core
    assert fake.calls[-2:] == [("sale.order", "search_read"), ("account.move", "read")]


def test_status_reports_the_done_deliveries_once_none_is_open(odoo: tuple[FakeOdoo, OdooConnector]) -> None:
    """With the Inventory app: nothing while an outgoing picking is still open; then each done
    one is a shipment (date_done, carrier_id and carrier_tracking_ref); a cancelled one and an
    incoming one (a return) are not; fields_get is asked once per model."""
    fake, connector = odoo
    name = str(connector.send(delivery()).reference)
    fake.deliver(name, tracking="1Z999AA10123456784", date="2026-12-05 14:30:00")
    fake.deliver(name, state="assigned")  # the backorder, still waiting
    assert connector.status(name) == StatusFound()
    fake.deliver(name, state="cancel")
    fake.deliver(name, code="incoming", tracking="RETURN-1")
    fake.records["stock.picking"][max(fake.records["stock.picking"]) - 2]["state"] = "done"  # the backorder leaves
    fake.records["stock.picking"][max(fake.records["stock.picking"]) - 2]["date_done"] = "2026-12-07 09:00:00"
    found = connector.status(name)
    assert found.shipped and not found.invoices
    assert found.shipments == (
        ShipmentFound(carrier="UPS", tracking="1Z999AA10123456784", ship_date=dt.date(2026, 12, 5)),
        ShipmentFound(carrier="UPS", tracking=None, ship_date=dt.date(2026, 12, 7)),
    )
    fake.invoice(name, 10.0, 0.0)
    assert connector.status(name).shipments == found.shipments
    assert fake.calls.count(("sale.order", "fields_get")) == fake.calls.count(("stock.picking", "fields_get")) == 1


def test_an_odoo_without_inventory_reports_invoices_and_no_deliveries(monkeypatch: pytest.MonkeyPatch) -> None:
    """sale.order has no picking_ids without the Inventory app, and asking for it would be
    Odoo's "Invalid field" error: the connector asks fields_get first and leaves it out."""
    monkeypatch.setenv("ODOO_KEY", "odoo-key-1")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeOdoo(mock, inventory=False, delivery_app=False)
        connector = OdooConnector(OdooConfig(name="odoo", url=ODOO_URL, database="prod",  # type: ignore[arg-type]
                                             username="gateway", password_env="ODOO_KEY"))
        name = str(connector.send(delivery()).reference)
        fake.invoice(name, 10.0, 0.0)
        found = connector.status(name)
        assert not found.shipped and found.shipments == () and len(found.invoices) == 1
        assert ("stock.picking", "read") not in fake.calls
        connector.close()


def test_upselling_counts_as_invoiced_and_an_unknown_order_is_permanent(odoo: tuple[FakeOdoo, OdooConnector]) -> None:
    fake, connector = odoo
    name = str(connector.send(delivery()).reference)
    fake.invoice(name, 10.0, 0.0, status="upselling")
    assert len(connector.status(name).invoices) == 1
    with pytest.raises(PermanentError, match="no sales order 'S99999'"):
        connector.status("S99999")


@pytest.mark.parametrize(
    ("script", "error"),
    [("odoo.exceptions.AccessError", OdooError), ("psycopg2.errors.SerializationFailure", TransientError), (503, TransientError)],
)
def test_a_status_call_maps_odoo_errors_like_a_send(odoo: tuple[FakeOdoo, OdooConnector], script: Any, error: type[Exception]) -> None:
    fake, connector = odoo
    name = str(connector.send(delivery()).reference)
    fake.invoice(name, 10.0, 0.0)
    fake.script = [script]
    with pytest.raises(error) as info:
        connector.status(name)
    assert isinstance(info.value, TransientError) == (error is TransientError)
    assert connector.status(name).invoices  # the next poll asks again and gets its answer
