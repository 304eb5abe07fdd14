"""What a connector's answer becomes: a shipping service's `shipped()` dict read as a StatusFound
(gateway.tracking.shipped_status), the shipments and invoices recorded from it."""

from __future__ import annotations

import datetime as dt

from gateway.tracking import shipments_of, shipped_status


def test_each_listed_shipment_with_its_carrier_tracking_and_date() -> None:
    found = {
        "ship_date": "2026-12-04",
        "shipments": [
            {"carrier": "ups", "service": "ups_ground", "tracking": "1Z1", "ship_date": "2026-12-05T00:00:00.0000000"},
            {"carrier": None, "service": None, "tracking": "1Z2", "ship_date": "not a date"},
            "garbage",
        ],
    }
    first, second = shipments_of(shipped_status(found), "shipstation")
    assert (first.carrier, first.service, first.tracking, first.ship_date) == ("ups", "ups_ground", ("1Z1",), dt.date(2026, 12, 5))
    assert (second.carrier, second.service, second.tracking, second.ship_date) == ("shipstation", None, ("1Z2",), None)


def test_a_shipped_order_without_shipments_is_one_shipment_without_tracking() -> None:
    (only,) = shipments_of(shipped_status({"ship_date": "2026-12-05", "shipments": []}), "shipstation")
    assert (only.carrier, only.tracking, only.ship_date) == ("shipstation", (), dt.date(2026, 12, 5))
