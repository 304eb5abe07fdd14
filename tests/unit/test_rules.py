"""Each built-in rule from the outside: an order in, a decision and its reason codes out."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.masterdata.model import Account, Item, Price
from gateway.model import Order
from gateway.rules import (
    InMemoryHistory,
    InMemoryMasterData,
    Outcome,
    RulesEngine,
    build_rules,
    load_folder,
    validate_rule_configs,
)

DAY = dt.date(2026, 12, 1)

MD = InMemoryMasterData(
    items=[
        Item("W-1", "widget", gtin="00012345678905", uoms={"CA": Decimal(12)}),
        Item("W-OLD", "old widget", discontinued=True),
        Item("W-PACK", "packed widget", pack_size=Decimal(6)),
    ],
    xrefs={("acme", "BP-9"): "W-1"},
    prices=[
        Price("W-1", Decimal("10.00"), "USD"),
        Price("W-1", Decimal("9.00"), "USD", customer="ACME"),
        Price("W-1", Decimal("8.00"), "USD", customer="ACME", min_quantity=Decimal(100)),
        Price("W-PACK", Decimal("2.00"), "USD"),
        Price("W-PACK", Decimal("2.50"), "USD", valid_to=dt.date(2026, 1, 1)),
    ],
    accounts=[
        Account("ACME", partner="acme", credit_limit=Decimal(1000), open_balance=Decimal(800)),
        Account("WEB-1", email="jane@example.com"),
    ],
)


def order(**kw: Any) -> Order:
    data: dict[str, Any] = {
        "po_number": "PO-1",
        "channel": "x12",
        "partner": "acme",
        "currency": "USD",
        "ship_to": {"name": "Store", "address_lines": ["17 Market Square"], "city": "Dayton", "region": "OH", "postal_code": "45402", "country": "US"},
        "lines": [{"line_number": "1", "quantity": "2", "uom": "EA", "unit_price": "9.00", "sku": "W-1"}],
    }
    data.update(kw)
    return Order.model_validate(data)


def decide(rules: list[dict[str, Any]], o: Order, md: Any = MD, history: Any = None) -> Any:
    engine = RulesEngine(build_rules(validate_rule_configs(rules)), md, history)
    return engine.decide([o], DAY)[0]


def codes(decision: Any) -> list[tuple[str, str | None]]:
    return [(f.code, f.line) for f in decision.findings]


# -- required_fields ---------------------------------------------------------------------------


def test_required_fields_per_channel():
    rule = [{"type": "required_fields", "channels": ["shopify"], "fields": ["ship_to", "customer_email", "lines.unit_price"]}]
    cart = order(channel="shopify", partner=None, ship_to=None, lines=[{"quantity": "1", "sku": "W-1"}])
    d = decide(rule, cart)
    assert d.outcome is Outcome.HOLD
    assert codes(d) == [("MISSING_FIELD", None), ("MISSING_FIELD", None), ("MISSING_FIELD", "1")]
    assert decide(rule, order(ship_to=None)).outcome is Outcome.ACCEPT  # an x12 order is not checked


def test_required_fields_unknown_path_is_a_config_error():
    with pytest.raises(ValidationError, match="not a field of the canonical order"):
        validate_rule_configs([{"type": "required_fields", "fields": ["ship_to.zip"]}])


# -- address -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ship_to", "code", "outcome"),
    [
        ({"address_lines": ["1 Main St"], "postal_code": "ABCDE", "country": "US"}, "POSTAL_CODE_FORMAT", Outcome.HOLD),
        ({"address_lines": ["1 Main St"], "postal_code": "10115", "country": "ZZ"}, "COUNTRY_UNKNOWN", Outcome.REJECT),
        ({"address_lines": ["1 Main St"], "region": "XX", "postal_code": "45402", "country": "US"}, "REGION_UNKNOWN", Outcome.HOLD),
        ({"address_lines": ["Market Square"], "postal_code": "45402", "country": "US"}, "HOUSE_NUMBER_MISSING", Outcome.HOLD),
        ({"address_lines": [], "postal_code": "45402", "country": "US"}, "ADDRESS_MISSING", Outcome.HOLD),
        ({"address_lines": ["1 Main St"], "postal_code": "SW1A 1AA", "country": "GB"}, None, Outcome.ACCEPT),
        ({"address_lines": ["Hauptstr. 5"], "postal_code": "10115", "country": "Germany"}, None, Outcome.ACCEPT),
        ({"address_lines": ["1 Main St"], "postal_code": "K1A 0B1", "country": "CAN", "region": "ON"}, None, Outcome.ACCEPT),
    ],
)
def test_address(ship_to: dict[str, Any], code: str | None, outcome: Outcome):
    d = decide([{"type": "address"}], order(ship_to=ship_to))
    assert d.outcome is outcome
    assert [f.code for f in d.findings] == ([code] if code else [])


def test_po_box_only_for_carriers_that_cannot_deliver_there():
    ship = {"address_lines": ["P.O. Box 123"], "postal_code": "45402", "country": "US"}
    rule = [{"type": "address", "po_box_carriers": ["UPSN"]}]
    assert codes(decide(rule, order(ship_to=ship, shipping={"carrier_code": "UPSN"}))) == [("PO_BOX_NOT_DELIVERABLE", None)]
    assert decide(rule, order(ship_to=ship, shipping={"carrier_code": "USPS"})).outcome is Outcome.ACCEPT


def test_phone_numbers():
    ship = {"address_lines": ["1 Main St"], "postal_code": "45402", "country": "US", "contact": {"phone": "12"}}
    assert codes(decide([{"type": "address"}], order(ship_to=ship))) == [("PHONE_INVALID", None)]
    ship["contact"] = {"phone": "+1 916-555-0199"}
    assert decide([{"type": "address"}], order(ship_to=ship, customer_phone="+49 30 901820")).outcome is Outcome.ACCEPT


def test_postal_code_pattern_must_compile():
    with pytest.raises(ValidationError, match="postal code pattern"):
        validate_rule_configs([{"type": "address", "postal_codes": {"US": "([0-9"}}])


# -- catalogue ---------------------------------------------------------------------------------


def test_catalogue_resolves_cross_references_and_gtins():
    lines = [
        {"line_number": "1", "quantity": "2", "buyer_part_number": "BP-9"},
        {"line_number": "2", "quantity": "1", "gtin": "00012345678905"},
        {"line_number": "3", "quantity": "1", "uom": "CA", "sku": "W-1"},
    ]
    assert decide([{"type": "catalogue"}], order(lines=lines)).outcome is Outcome.ACCEPT


def test_catalogue_findings_per_line():
    lines = [
        {"line_number": "10", "quantity": "1", "sku": "NOSUCHSKU-XYZ"},
        {"line_number": "20", "quantity": "1", "sku": "W-OLD"},
        {"line_number": "30", "quantity": "1", "uom": "PL", "sku": "W-1"},
        {"line_number": "40", "quantity": "7", "sku": "W-PACK"},
    ]
    d = decide([{"type": "catalogue"}], order(lines=lines))
    assert d.outcome is Outcome.REJECT
    assert codes(d) == [("UNKNOWN_SKU", "10"), ("DISCONTINUED", "20"), ("UOM_NOT_SOLD", "30"), ("PACK_SIZE_MULTIPLE", "40")]
    assert d.reason == "UNKNOWN_SKU"


def test_outcome_per_code_can_be_changed():
    d = decide([{"type": "catalogue", "outcomes": {"UNKNOWN_SKU": "hold"}}], order(lines=[{"quantity": "1", "sku": "NOPE"}]))
    assert d.outcome is Outcome.HOLD


def test_a_batch_costs_a_few_lookups_not_one_per_line():
    md = InMemoryMasterData(MD._items.values(), MD._xrefs, [p for ps in MD._prices.values() for p in ps], (), MD._accounts)
    orders = [order(po_number=f"PO-{i}", lines=[{"line_number": str(n), "quantity": "1", "sku": "W-1", "unit_price": "9"} for n in range(1, 6)]) for i in range(200)]
    engine = RulesEngine(build_rules(validate_rule_configs([{"type": "catalogue"}, {"type": "price"}, {"type": "credit"}])), md)
    assert all(d.outcome is Outcome.ACCEPT for d in engine.decide(orders, DAY))
    assert md.calls <= 6


# -- price -------------------------------------------------------------------------------------


def test_contract_price_applies_and_off_list_price_is_held_with_ours():
    assert decide([{"type": "price"}], order()).outcome is Outcome.ACCEPT  # 9.00: ACME's contract price
    d = decide([{"type": "price"}], order(lines=[{"line_number": "1", "quantity": "2", "unit_price": "10.00", "sku": "W-1"}]))
    assert codes(d) == [("PRICE_OFF_LIST", "1")]
    assert d.findings[0].data["price"] == "9.00"
    # a break at 100 units, and a case of 12 priced from the base unit
    assert decide([{"type": "price"}], order(lines=[{"quantity": "120", "unit_price": "8.00", "sku": "W-1"}])).outcome is Outcome.ACCEPT
    assert decide([{"type": "price"}], order(lines=[{"quantity": "1", "uom": "CA", "unit_price": "108", "sku": "W-1"}])).outcome is Outcome.ACCEPT


def test_price_tolerance_and_validity_dates():
    line = [{"line_number": "1", "quantity": "6", "unit_price": "2.01", "sku": "W-PACK"}]
    assert decide([{"type": "price"}], order(lines=line)).outcome is Outcome.HOLD  # 2.50 expired in January
    assert decide([{"type": "price", "tolerance_percent": 1}], order(lines=line)).outcome is Outcome.ACCEPT


def test_totals_that_do_not_add_up():
    d = decide([{"type": "price"}], order(totals={"total": "25.00"}))
    assert codes(d) == [("TOTAL_MISMATCH", None)]
    assert decide([{"type": "price"}], order(totals={"total": "20.00", "tax_total": "2.00"})).outcome is Outcome.ACCEPT


# -- payment, credit, risk -----------------------------------------------------------------------


def test_unpaid_cart_order_is_held():
    pending = order(channel="shopify", partner=None, payment={"status": "pending"})
    assert codes(decide([{"type": "payment"}], pending)) == [("PAYMENT_PENDING", None)]
    assert decide([{"type": "payment"}], order(channel="shopify", payment={"status": "paid"})).outcome is Outcome.ACCEPT
    assert decide([{"type": "payment"}], order(payment=None)).outcome is Outcome.ACCEPT  # x12: not a cart


def test_credit():
    assert decide([{"type": "credit"}], order()).outcome is Outcome.ACCEPT  # 18.00 of 200 left
    d = decide([{"type": "credit"}], order(totals={"total": "250.00"}))
    assert codes(d) == [("CREDIT_EXCEEDED", None)] and d.outcome is Outcome.HOLD
    assert codes(decide([{"type": "credit"}], order(partner="other"))) == [("ACCOUNT_UNKNOWN", None)]


def test_risk_value_and_score():
    assert codes(decide([{"type": "risk", "hold_above": 100}], order(totals={"total": "250000"}))) == [("HIGH_VALUE", None)]
    differ = order(bill_to={"country": "NG"}, totals={"total": "5000"})
    history = InMemoryHistory(counts={"ACME": 0}, usual={("ACME", "W-1"): Decimal(2)})
    d = decide([{"type": "risk"}], differ, history=history)
    assert codes(d) == [("RISK_SCORE", None)]
    assert "first order" in d.findings[0].message and "differs" in d.findings[0].message
    # one signal alone stays under the threshold, but not on a stricter channel
    assert decide([{"type": "risk"}], order(bill_to={"country": "NG"})).outcome is Outcome.ACCEPT
    assert decide([{"type": "risk", "thresholds": {"x12": 30}}], order(bill_to={"country": "NG"})).outcome is Outcome.HOLD
    big = order(lines=[{"quantity": "500", "unit_price": "9", "sku": "W-1"}], bill_to={"country": "NG"})
    assert decide([{"type": "risk"}], big, history=InMemoryHistory(counts={"ACME": 3}, usual={("ACME", "W-1"): Decimal(2)})).outcome is Outcome.HOLD


# -- duplicates ----------------------------------------------------------------------------------


def test_same_content_through_two_channels():
    edi = order()
    mail = order(po_number="PO-1-EMAIL", channel="email")
    engine = RulesEngine(build_rules(validate_rule_configs([{"type": "duplicates"}])), MD)
    first, second = engine.decide([edi, mail], DAY)
    assert first.outcome is Outcome.ACCEPT and first.fingerprint
    assert codes(second) == [("DUPLICATE_CONTENT", None)] and "PO PO-1 (x12)" in second.findings[0].message
    # seen in an earlier batch: the order history says so
    history = InMemoryHistory(seen={first.fingerprint: "order abcd PO PO-1 (x12)"})
    assert decide([{"type": "duplicates"}], mail, history=history).outcome is Outcome.HOLD
    assert decide([{"type": "duplicates"}], order(lines=[{"quantity": "3", "sku": "W-1"}]), history=history).outcome is Outcome.ACCEPT


# -- expression ----------------------------------------------------------------------------------


def test_expression_rule_with_registered_function_and_lines():
    rules = [
        {"type": "expression", "name": "free mail", "when": 'email_domain(customer_email) == "mailinator.com" and value > 5', "code": "THROWAWAY_EMAIL", "message": "throw-away address"},
        {"type": "expression", "name": "bulk", "per_line": True, "when": "line['quantity'] > 100", "code": "BULK_LINE", "message": "bulk", "outcome": "reject"},
    ]
    o = order(customer_email="x@mailinator.com", lines=[{"line_number": "1", "quantity": "2", "unit_price": "9", "sku": "W-1"}, {"line_number": "2", "quantity": "101", "unit_price": "1", "sku": "W-1"}])
    d = decide(rules, o)
    assert codes(d) == [("THROWAWAY_EMAIL", None), ("BULK_LINE", "2")]
    assert d.outcome is Outcome.REJECT


@pytest.mark.parametrize(("when", "message"), [("valu > 3", "unknown name 'valu'"), ("value >", "not a valid expression"), ("__import__('os')", "unknown name '__import__'")])
def test_bad_expressions_are_config_errors(when: str, message: str):
    with pytest.raises(ValidationError, match=message):
        validate_rule_configs([{"type": "expression", "when": when, "code": "X_Y", "message": "m"}])


def test_a_failing_rule_holds_the_order_and_the_batch_goes_on(monkeypatch: pytest.MonkeyPatch):
    from gateway.rules.builtin.payment import PaymentRule

    def boom(self: Any, o: Order, ctx: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(PaymentRule, "check", boom)
    d = decide([{"type": "payment", "channels": None}, {"type": "catalogue"}], order())
    assert codes(d) == [("RULE_FAILED", None)] and d.outcome is Outcome.HOLD


# -- configuration -------------------------------------------------------------------------------


def test_config_errors_have_file_and_line(tmp_path: Path):
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text("rules:\n  - type: price\n  - type: pricee\n  - type: address\n    po_box_carier: [UPS]\n")
    with pytest.raises(ConfigError) as exc:
        load_config(cfg)
    text = str(exc.value)
    assert f"{cfg}:3: rules[1].type: unknown rule type 'pricee'; did you mean 'price'?" in text
    assert f"{cfg}:5: rules[2].po_box_carier: unknown key 'po_box_carier'; did you mean 'po_box_carriers'?" in text
    cfg.write_text("rules:\n  - type: payment\n  - type: catalogue\n")
    assert [r.type for r in load_config(cfg).rules] == ["payment", "catalogue"]  # the store's master data
    engine_needs = build_rules(validate_rule_configs([{"type": "catalogue"}]))
    with pytest.raises(ConfigError, match="need master data"):
        RulesEngine(engine_needs, None)


def test_masterdata_folder_and_its_errors(tmp_path: Path):
    (tmp_path / "items.csv").write_text("sku,uoms,pack_size,discontinued\nA,CA=12,6,false\nB,,x,false\nC,CA,,maybe\n")
    (tmp_path / "prices.csv").write_text("sku,unit_price,currency,valid_to\nA,1.50,usd,2026-13-01\n")
    (tmp_path / "accounts.csv").write_text("code,emial\n")
    with pytest.raises(ConfigError) as exc:
        load_folder(tmp_path)
    problems = exc.value.problems
    assert f"{tmp_path / 'items.csv'}:3: column pack_size: 'x' is not a number" in problems
    assert f"{tmp_path / 'items.csv'}:4: column uoms: 'CA' must read UNIT=FACTOR (CA=12)" in problems
    assert any(p.startswith(f"{tmp_path / 'prices.csv'}:2: column valid_to") for p in problems)
    assert any(p.startswith(f"{tmp_path / 'accounts.csv'}:1: unknown column(s) emial") for p in problems)
    (tmp_path / "items.csv").write_text("sku,uoms,pack_size\nA,CA=12,6\n")
    (tmp_path / "prices.csv").write_text("sku,unit_price,currency\nA,1.50,usd\n")
    (tmp_path / "accounts.csv").write_text("code,email,credit_limit\nC1,Jane@Example.com,100\n")
    md, _ = load_folder(tmp_path)
    assert md.items(["A"])["A"].uoms == {"CA": Decimal(12)}
    assert md.prices(["A"], None, DAY)["A"][0].currency == "USD"
    assert md.account(email="jane@example.com") is not None


def test_order_history_is_read_only_for_rules_that_read_it():
    class Strict(InMemoryHistory):
        def seen(self, fingerprints: Any) -> Any:
            raise AssertionError("no rule reads the content seen before")

        def order_counts(self, accounts: Any) -> Any:
            raise AssertionError("no rule reads order counts")

    assert decide([{"type": "catalogue"}, {"type": "price"}], order(), history=Strict()).outcome is Outcome.ACCEPT
    with pytest.raises(AssertionError, match="content seen before"):
        decide([{"type": "duplicates"}], order(), history=Strict())
