"""What a connector's answer becomes: the shipments and invoices recorded from a StatusFound
(gateway.tracking), and a shipping service's dates and shipments as its connector reads them
(connectors.targets._shipping)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from connectors.targets._shipping import shipment_found
from connectors.targets.rest import iso_date as service_date  # the date parser every connector uses
from gateway.connector import InvoiceFound, ShipmentFound, StatusFound
from gateway.money import decimal_of, money
from gateway.tracking import invoice_of, shipments_of


def test_a_service_date_is_the_day_of_its_date_or_timestamp() -> None:
    assert service_date("2026-12-05") == dt.date(2026, 12, 5)
    assert service_date("2026-12-05T00:00:00.0000000") == dt.date(2026, 12, 5)  # ShipStation
    assert service_date("2026-12-05T08:00:00Z") == dt.date(2026, 12, 5)  # EasyPost
    assert [service_date(v) for v in (None, "", "not a date", "2026-13-01")] == [None] * 4


def test_each_listed_shipment_with_its_carrier_tracking_and_date() -> None:
    found = StatusFound(shipped=True, shipments=(
        shipment_found(carrier="ups", service="ups_ground", tracking="1Z1", ship_date="2026-12-05T00:00:00.0000000"),
        shipment_found(carrier=None, service="", tracking=12345, ship_date="not a date"),
    ))
    first, second = shipments_of(found, "shipstation")
    assert (first.carrier, first.service, first.tracking, first.ship_date) == ("ups", "ups_ground", ("1Z1",), dt.date(2026, 12, 5))
    assert (second.carrier, second.service, second.tracking, second.ship_date) == ("shipstation", None, ("12345",), None)


def test_a_shipped_order_without_shipments_is_one_shipment_without_tracking() -> None:
    (only,) = shipments_of(StatusFound(shipped=True), "shipstation")
    assert (only.carrier, only.tracking, only.ship_date) == ("shipstation", (), None)
    assert shipments_of(StatusFound(), "shipstation") == []  # not shipped yet


def test_invoice_amounts_are_rounded_half_up_to_the_currency_places() -> None:
    found = InvoiceFound(number=" INV-7 ", total=Decimal("107.905"), tax=Decimal("0.30000000000000004"), currency="usd")
    invoice = invoice_of(found)
    assert (invoice.number, invoice.total, invoice.tax, invoice.currency) == ("INV-7", Decimal("107.91"), Decimal("0.30"), "USD")
    assert invoice_of(InvoiceFound(number="1", total=Decimal("1500.5"), currency="JPY")).total == Decimal("1501")
    assert invoice_of(InvoiceFound(number="1", total=Decimal("2.0005"), currency="KWD")).total == Decimal("2.001")
    assert invoice_of(InvoiceFound(number="1")).total is None  # the fulfilment then adds up the order's lines


def test_numbers_from_an_api_become_decimals_or_nothing() -> None:
    assert decimal_of(0.1 + 0.2) == Decimal("0.30000000000000004") and decimal_of(3) == Decimal(3)
    assert [decimal_of(v) for v in (None, False, "n/a", float("nan"), float("inf"))] == [None] * 5
    assert money(None, "USD") is None


def test_an_erp_status_lists_shipments_with_the_connector_named_where_it_names_no_carrier() -> None:
    found = StatusFound(shipped=True, shipments=(ShipmentFound(ship_date=dt.date(2026, 12, 4)), ShipmentFound(carrier="DHL", tracking="JD01")))
    first, second = shipments_of(found, "erp")
    assert (first.carrier, first.tracking, first.ship_date) == ("erp", (), dt.date(2026, 12, 4))
    assert (second.carrier, second.tracking) == ("DHL", ("JD01",))
    assert shipments_of(StatusFound(invoices=(InvoiceFound(number="1"),)), "erp") == []  # invoiced, not shipped
