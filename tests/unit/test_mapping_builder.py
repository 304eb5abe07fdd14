"""The base the mapping builders share (gateway/mapping/builder.py): how a run ends."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.errors import MappingError
from gateway.formats.base import Document, Envelope
from gateway.formats.safexml import XmlPicker, XPaths
from gateway.mapping.builder import XmlOrder, not_an_order, validated_order

DOC = Document(Envelope("cxml"), "OrderRequest", None, None, "/cXML", 0)
LINES = [{"line_number": "1", "quantity": Decimal(2)}]


def test_refused_values_name_the_first_field_and_where_it_came_from() -> None:
    asked: list[tuple[int | str, ...]] = []

    def locate(loc: tuple[int | str, ...]) -> tuple[str, str]:
        asked.append(loc)
        return "lines[0].quantity", "line_items[0].quantity"

    values = {"po_number": "PO-1", "channel": "shopify", "lines": [{"quantity": "many"}]}
    with pytest.raises(MappingError) as info:
        validated_order(values, "order 1", locate=locate)
    err = info.value
    assert asked == [("lines", 0, "quantity")]
    assert err.reason == "INVALID_ORDER"
    assert err.position == "line_items[0].quantity"
    assert str(err).startswith("the mapped values do not make a valid order: lines[0].quantity: ")


def test_without_locate_the_error_is_at_the_document_brief_or_whole() -> None:
    values = {"po_number": None, "lines": [{"quantity": "many"}]}
    with pytest.raises(MappingError) as brief:
        validated_order(values, "order 1", brief=True)
    with pytest.raises(MappingError) as whole:
        validated_order(values, "order 1")
    assert brief.value.position == whole.value.position == "order 1"
    assert "validation errors" not in str(brief.value)
    assert "validation errors" in str(whole.value)


def test_xml_order_sets_only_collections_that_were_filled() -> None:
    run = XmlOrder(DOC, None, XmlPicker(XPaths()))
    run.order.update(po_number="PO-7", channel="cxml", lines=LINES)
    run.references.append({"qualifier": "payloadID", "value": "p-1", "role": "original_order"})
    order = run.assemble(["/cXML/Request/X=1"])
    assert order.po_number == "PO-7"
    assert [r.value for r in order.references] == ["p-1"]
    assert order.unmapped == ["/cXML/Request/X=1"]
    assert order.dates == [] and order.other_parties == {} and order.extensions == {}
    assert "dates" not in run.order and "extensions" not in run.order


def test_xml_order_refusal_is_brief_and_at_the_document() -> None:
    run = XmlOrder(DOC, None, XmlPicker(XPaths()))
    run.order.update(po_number="PO-7", lines=[{"quantity": "x"}, {"quantity": "y"}])
    with pytest.raises(MappingError) as info:
        run.assemble([])
    assert info.value.position == "/cXML" and info.value.reason == "INVALID_ORDER"
    assert "validation error" not in str(info.value)


def test_not_an_order_is_at_the_document() -> None:
    err = not_an_order(DOC, "cXML ProfileRequest is not an OrderRequest")
    assert (err.reason, err.position) == ("NOT_AN_ORDER", "/cXML")
