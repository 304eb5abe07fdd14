"""The ERPNext target against Frappe's documented REST shapes and error bodies (responses)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import responses

from connectors.targets.auth import ApiKeyAuth
from connectors.targets.erpnext.config import ERPNextConfig
from connectors.targets.erpnext.connector import ERPNextConnector, ERPNextError, frappe_message
from gateway.connector import Delivery, InvoiceFound, ShipmentFound, StatusFound
from gateway.errors import PermanentError, TransientError
from gateway.tracking import invoice_of
from tests.support.fake_erpnext import ERPNEXT_URL, FakeERPNext, frappe_error
from tests.unit.test_target_contract import GOLDEN


@pytest.fixture
def erpnext(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeERPNext, ERPNextConnector]]:
    monkeypatch.setenv("ERPNEXT_TOKEN", "api-key-1:api-secret-1")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeERPNext(mock)
        auth = ApiKeyAuth(header="Authorization", prefix="token ", value_env="ERPNEXT_TOKEN")
        connector = ERPNextConnector(ERPNextConfig(name="erpnext", url=ERPNEXT_URL, auth=auth,  # type: ignore[arg-type]
                                                   company="Acme Ltd"))
        yield fake, connector
        connector.close()


def delivery(order: dict[str, Any] = GOLDEN, key: str = "key-1", action: str = "create", ref: str | None = None) -> Delivery:
    return Delivery(outbox_id=1, order_id="o-1", idempotency_key=key, attempt=1, order=order, action=action,
                    target_reference=ref)


def test_create_posts_a_sales_order_and_submits_it(erpnext: tuple[FakeERPNext, ERPNextConnector]) -> None:
    fake, connector = erpnext
    receipt = connector.send(delivery())
    (doc,) = fake.orders()
    assert receipt.reference == doc["name"] == "SAL-ORD-2026-00001" and doc["docstatus"] == 1
    assert (doc["customer"], doc["po_no"], doc["company"]) == ("ACME", "PO-GOLD-1", "Acme Ltd")
    assert (doc["transaction_date"], doc["delivery_date"]) == ("2026-11-27", "2026-12-04")  # + delivery_days
    assert [(i["item_code"], i["qty"], i["rate"]) for i in doc["items"]] == [("WID-1", 10.0, 2.5), ("GAD-9", 0.5, 19.99)]
    assert fake.docs["Customer"]["ACME"]["customer_details"] == "Acme Retail"
    assert ("POST", "/api/resource/Sales Order") in fake.requests and ("PUT", "/api/resource/Sales Order/SAL-ORD-2026-00001") in fake.requests


def test_a_lost_answer_then_the_retry_finds_the_draft_and_submits_it(erpnext: tuple[FakeERPNext, ERPNextConnector]) -> None:
    fake, connector = erpnext
    fake.lose_answer_of = "POST Sales Order"
    with pytest.raises(TransientError):
        connector.send(delivery())
    assert fake.orders()[0]["docstatus"] == 0
    receipt = connector.send(delivery())  # po_no + customer finds it
    assert len(fake.orders()) == 1 and receipt.detail["found"] and fake.orders()[0]["docstatus"] == 1


def test_a_customer_made_meanwhile_by_another_worker_is_used(erpnext: tuple[FakeERPNext, ERPNextConnector]) -> None:
    fake, connector = erpnext
    real = fake._route

    def racing(method: str, path: str, body: dict[str, Any], query: dict[str, str]) -> tuple[int, Any]:
        if (method, path) == ("POST", "/api/resource/Customer"):
            fake.docs["Customer"]["ACME"] = {"name": "ACME"}  # the other worker wins: 409 DuplicateEntryError
        return real(method, path, body, query)

    fake._route = racing  # type: ignore[method-assign]
    connector.send(delivery())
    assert len(fake.orders()) == 1


@pytest.mark.parametrize(
    ("script", "error", "text"),
    [
        ((417, "ValidationError"), ERPNextError, "HTTP 417 ValidationError: scripted"),
        ((417, "LinkValidationError"), ERPNextError, "LinkValidationError"),
        ((417, "TimestampMismatchError"), TransientError, "TimestampMismatchError"),
        ((500, "QueryDeadlockError"), TransientError, "QueryDeadlockError"),
        ((403, "PermissionError"), ERPNextError, "roles"),
        ((429, "RateLimitExceededError"), TransientError, "HTTP 429"),
        ((502, ""), TransientError, "HTTP 502"),
    ],
)
def test_frappe_errors_map_to_transient_or_permanent(erpnext: tuple[FakeERPNext, ERPNextConnector], script: Any,
                                                     error: type[Exception], text: str) -> None:
    fake, connector = erpnext
    fake.script = [script]
    with pytest.raises(error, match=text) as info:
        connector.send(delivery())
    assert isinstance(info.value, TransientError) == (error is TransientError)
    assert "api-secret-1" not in str(info.value)


def test_wrong_credentials_and_unknown_items_are_permanent(erpnext: tuple[FakeERPNext, ERPNextConnector],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    fake, connector = erpnext
    order = {**GOLDEN, "lines": [{**GOLDEN["lines"][0], "sku": "GONE-1"}]}
    with pytest.raises(PermanentError, match="unknown product.*GONE-1"):
        connector.send(delivery(order))
    assert fake.orders() == [] and fake.docs["Customer"] == {}
    monkeypatch.setenv("ERPNEXT_TOKEN", "api-key-1:wrong")
    auth = ApiKeyAuth(header="Authorization", prefix="token ", value_env="ERPNEXT_TOKEN")
    wrong = ERPNextConnector(ERPNextConfig(name="erpnext", url=ERPNEXT_URL, auth=auth))  # type: ignore[arg-type]
    with pytest.raises(ERPNextError, match="HTTP 401 AuthenticationError: Invalid login credentials"):
        wrong.send(delivery())


def test_a_draft_is_updated_in_place_and_its_cancel_deletes_it_once(erpnext: tuple[FakeERPNext, ERPNextConnector]) -> None:
    fake, connector = erpnext
    connector.config.submit = False
    ref = connector.send(delivery()).reference
    changed = {**GOLDEN, "lines": [{**GOLDEN["lines"][0], "quantity": "12"}]}
    for _ in range(2):
        connector.send(delivery(changed, "key-2", "update", ref))
    for _ in range(2):
        assert connector.send(delivery(changed, "key-3", "cancel", ref)).reference == ref
    assert fake.changes == [("update", {"lines": [("WID-1", 12.0)]}), ("cancel", None)]


def test_the_message_comes_from_server_messages() -> None:
    status, _, body = frappe_error(417, "MandatoryError", "Delivery Date is mandatory")
    assert frappe_message(json.loads(body)) == "Delivery Date is mandatory"
    assert frappe_message({"exc_type": "ValidationError", "exception": "frappe.ValidationError: x"}) == "frappe.ValidationError: x"
    assert frappe_message("<html>") == "<html>"


# -- status: invoices coming back (gateway.tracking) ------------------------------------------------


def test_status_reports_submitted_invoices_once_the_order_is_billed_in_full(erpnext: tuple[FakeERPNext, ERPNextConnector]) -> None:
    fake, connector = erpnext
    name = str(connector.send(delivery()).reference)
    assert connector.status(name) == StatusFound()  # per_billed 0: not asked for invoices at all
    assert ("GET", "/api/resource/Sales Invoice") not in fake.requests
    first = fake.invoice(name, 40.0, 3.0, per_billed=50.0)  # half billed: not yet
    assert connector.status(name) == StatusFound()
    fake.invoice(name, 1.0, 0.0, docstatus=0)  # a draft invoice: left out by the filter
    second = fake.invoice(name, 35.980000000000004, 2.99)  # the rest: billed in full now
    found = connector.status(name).invoices  # each invoice has two item rows: listed twice by the join, read once
    assert [f.number for f in found] == [first, second]
    assert found[1] == InvoiceFound(number=second, date=dt.date(2026, 12, 5), total=Decimal("35.980000000000004"),
                                    tax=Decimal("2.99"), currency="USD")
    assert invoice_of(found[1]).total == Decimal("35.98")


def test_status_reports_delivery_notes_once_the_order_is_delivered_in_full(erpnext: tuple[FakeERPNext, ERPNextConnector]) -> None:
    """ERPNext's deliveries come back as shipments: nothing while per_delivered < 100, then
    each submitted Delivery Note once (the item join lists it once per row), the transporter
    as carrier and the transport receipt number as tracking; a draft note is left out."""
    fake, connector = erpnext
    name = str(connector.send(delivery()).reference)
    fake.deliver(name, lr_no="LR-1", per_delivered=60.0)  # part delivered: not yet
    found = connector.status(name)
    assert found == StatusFound() and ("GET", "/api/resource/Delivery Note") not in fake.requests
    fake.deliver(name, lr_no="LR-DRAFT", docstatus=0)
    fake.deliver(name, lr_no=" 1Z999AA10123456784 ", transporter=None, date="2026-12-06")
    found = connector.status(name)
    assert found.shipped and not found.invoices
    assert found.shipments == (
        ShipmentFound(carrier="DHL Express", tracking="LR-1", ship_date=dt.date(2026, 12, 5)),
        ShipmentFound(carrier=None, tracking="1Z999AA10123456784", ship_date=dt.date(2026, 12, 6)),
    )
    fake.invoice(name, 10.0, 0.0)  # billed too: both come back in one answer
    both = connector.status(name)
    assert both.shipments == found.shipments and len(both.invoices) == 1
    assert connector.capabilities.shipments  # invoiced first, it is still asked about its delivery


@pytest.mark.parametrize(
    ("script", "error"),
    [((417, "PermissionError"), ERPNextError), ((500, "QueryTimeoutError"), TransientError), ((503, ""), TransientError)],
)
def test_a_status_call_maps_frappe_errors_like_a_send(erpnext: tuple[FakeERPNext, ERPNextConnector], script: Any,
                                                      error: type[Exception]) -> None:
    fake, connector = erpnext
    name = str(connector.send(delivery()).reference)
    fake.invoice(name, 10.0, 0.0)
    fake.script = [script]  # Frappe's error body, as the Sales Order lookup's answer
    with pytest.raises(error) as info:
        connector.status(name)
    assert isinstance(info.value, TransientError) == (error is TransientError)
    assert "api-secret-1" not in str(info.value)
    assert connector.status(name).invoices  # the next poll asks again
    with pytest.raises(PermanentError, match="no Sales Order 'SAL-ORD-2026-99999'"):
        connector.status("SAL-ORD-2026-99999")
