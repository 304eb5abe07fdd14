"""map_ordchg and its code tables: exact field values and provenance, errors with positions,
table loading, and changes merged through the real pipeline and linker."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import gateway.translate
from gateway.connector import Capabilities, RawMessage
from gateway.errors import ConfigError, MappingError
from gateway.formats.base import Document
from gateway.formats.edifact import parse_edifact
from gateway.mapping.edifact_ordchg import (
    DEFAULT_ORDCHG_TABLES_PATH,
    EdifactChangeTables,
    default_ordchg_tables,
    load_ordchg_tables,
    map_ordchg,
)
from gateway.mapping.edifact_orders import DEFAULT_TABLES_PATH as ORDERS_TABLES_PATH
from gateway.model import Order, Purpose
from gateway.pipeline import Pipeline
from gateway.store import Store
from gateway.store import tables as t
from gateway.translate import MapperSpec

FIXTURES = Path(__file__).parents[1] / "fixtures" / "edifact"
D = Decimal


def documents(data: bytes | Path) -> list[Document]:
    return [e for e in parse_edifact(data) if isinstance(e, Document)]


def _doc(*segments: str) -> Document:
    """One ORDCHG whose UNH..UNT wraps `segments` (UNT counted); UNA on line 1, UNH on 3."""
    body = ["UNH+1+ORDCHG:D:96A:UN:EAN008", *segments]
    body.append(f"UNT+{len(body) + 1}+1")
    segs = ["UNB+UNOC:3+SENDER:14+RECEIVER:14+240115:1200+IC1", *body, "UNZ+1+IC1"]
    (doc,) = documents(("UNA:+.? '\n" + "'\n".join(segs) + "'\n").encode("latin-1"))
    return doc


def change_from(*segments: str, trace: dict[str, str] | None = None) -> Order:
    return map_ordchg(_doc(*segments), trace=trace)


BGM = "BGM+230+CHG-1+4"
ON = "RFF+ON:PO-1"
LINE = ("LIN+1+3+4000862141404:EN", "QTY+21:2")


@pytest.fixture(scope="module")
def change_trace() -> dict[str, str]:
    return {}


@pytest.fixture(scope="module")
def change(change_trace: dict[str, str]) -> Order:
    (doc,) = documents(FIXTURES / "ordchg_change.edi")
    return map_ordchg(doc, trace=change_trace)


# -- the change fixture: line 1 changed (1229 3), line 2 deleted (2), line 3 added (1) -----------


def test_header(change: Order):
    assert change.channel == "edifact"
    assert change.lines_are_changes is True
    assert change.purpose is Purpose.CHANGE
    assert change.po_number == "PO-5000"  # RFF+ON: the order being changed
    assert change.order_type is None  # BGM 1001 230 names the message, not the order type
    assert change.order_date is None  # DTM+137 is the date of the change request
    assert change.requested_delivery_date == dt.date(2024, 1, 26)
    assert change.currency == "EUR"
    assert change.extensions == {"document_name_code": "230"}
    assert [(r.qualifier, r.value, r.role) for r in change.references] == [
        ("ON", "PO-5000", "order_number"),
        ("BGM", "CHG-0001", "order_change"),  # the change request's own number
    ]
    assert [(d.role, d.qualifier, d.date) for d in change.dates] == [
        ("change_request", "137", dt.date(2024, 1, 20)),
        ("requested_delivery", "2", dt.date(2024, 1, 26)),
        ("order_number_date", "171", dt.date(2024, 1, 15)),
    ]
    assert change.buyer is not None and change.seller is not None
    assert (change.buyer.code, change.buyer.code_qualifier) == ("5412345000013", "9")
    assert change.seller.code == "8712345000004"
    assert change.totals is not None and change.totals.line_count == 3
    assert change.unmapped == []
    src = change.source
    assert (src.sender_id, src.sender_qualifier) == ("5412345000013", "14")
    assert (src.interchange_control_number, src.transaction_control_number) == ("IC0101", "MC0001")
    assert src.version == "D:96A:UN:EAN008"


def test_lines(change: Order):
    more, gone, new = change.lines
    assert (more.line_number, more.change_code, more.change) == ("1", "3", "change")
    assert (more.quantity, more.uom, more.unit_price, more.gtin) == (
        D("20"),
        "PCE",
        D("9.5"),
        "5412345678908",
    )

    assert (gone.line_number, gone.change_code, gone.change) == ("2", "2", "delete")
    assert gone.quantity == 0  # no QTY: fine on a delete
    assert (gone.uom, gone.unit_price, gone.gtin) == (None, None, "4000862141404")

    assert (new.line_number, new.change_code, new.change) == ("3", "1", "add")
    assert (new.quantity, new.uom, new.unit_price) == (D("5"), "PCE", D("4.25"))
    assert (new.gtin, new.sku, new.description) == ("4006381333931", "ART-3", "Red widget")
    assert [(i.qualifier, i.value) for i in new.item_ids] == [
        ("EN", "4006381333931"),
        ("SA", "ART-3"),
    ]


def test_json_round_trip(change: Order):
    assert Order.model_validate_json(change.model_dump_json()) == change


def _resolve(data: Any, path: str) -> Any:
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        data = data[int(part[1:-1])] if part.startswith("[") else data[part]
    return data


def test_trace(change: Order, change_trace: dict[str, str]):
    tr = change_trace
    assert tr["po_number"] == "RFF C506 1154 (segment 5, line 7)"
    assert tr["purpose"] == "BGM 1225 (segment 2, line 4)"
    assert tr["extensions.document_name_code"] == "BGM C002 1001 (segment 2, line 4)"
    assert tr["references[1].value"] == "BGM 1004 (segment 2, line 4)"
    assert tr["references[1].role"] == "BGM 1004 (segment 2, line 4)"
    assert tr["lines_are_changes"] == "UNH S009 0065 (segment 1, line 3)"
    assert tr["dates[0].role"] == "DTM 2005 (segment 3, line 5)"
    assert tr["requested_delivery_date"] == "DTM 2380 (segment 4, line 6)"
    assert tr["currency"] == "CUX C504 6345 (segment 9, line 11)"
    assert tr["lines[0].change_code"] == "LIN 1229 (segment 10, line 12)"
    assert tr["lines[0].change"] == "LIN 1229 (segment 10, line 12)"
    assert tr["lines[0].quantity"] == "QTY C186 6060 (segment 11, line 13)"
    assert tr["lines[1].change"] == "LIN 1229 (segment 13, line 15)"
    assert tr["lines[1].quantity"] == "LIN 1229 (segment 13, line 15)"  # a delete's 0
    assert tr["lines[2].line_number"] == "LIN 1082 (segment 14, line 16)"
    assert tr["lines[2].gtin"] == "LIN C212 7140 (segment 14, line 16)"
    assert tr["lines[2].sku"] == "PIA C212 7140 (segment 15, line 17)"
    assert tr["lines[2].description"] == "IMD C273 7008 (segment 16, line 18)"
    assert tr["lines[2].unit_price"] == "PRI C509 5118 (segment 18, line 20)"
    assert tr["totals.line_count"] == "CNT C270 6066 (segment 20, line 22)"
    assert tr["source.interchange_control_number"] == "UNB 0020"
    assert "order_date" not in tr and "order_type" not in tr
    # Every traced path is in the order ...
    data = json.loads(change.model_dump_json())
    for path in tr:
        assert _resolve(data, path) not in (None, [], {}), path
    # ... and every value set is traced, itself or as the entry or object it belongs to.
    dumped = change.model_dump(exclude_defaults=True, exclude={"channel"})

    def leaves(value: object, path: str) -> list[str]:
        if isinstance(value, dict):
            return [p for k, v in value.items() for p in leaves(v, f"{path}.{k}" if path else k)]
        if isinstance(value, list):
            return [p for i, v in enumerate(value) for p in leaves(v, f"{path}[{i}]")]
        return [path]

    missing = [
        path
        for path in leaves(dumped, "")
        if not any(
            p in tr for p in [path] + [path[:i] for i in range(len(path)) if path[i] in ".["]
        )
    ]
    assert missing == []


def test_no_trace_maps_the_same(change: Order):
    (doc,) = documents(FIXTURES / "ordchg_change.edi")
    assert map_ordchg(doc) == change


def test_cancel_without_lines_is_a_header_only_cancel():
    (doc,) = documents(FIXTURES / "ordchg_cancel.edi")
    trace: dict[str, str] = {}
    order = map_ordchg(doc, trace=trace)
    assert order.purpose is Purpose.CANCEL
    assert order.po_number == "PO-5000"
    assert order.lines == [] and order.lines_are_changes is False
    assert order.notes == ["Store closed: cancel the whole order"]
    assert [(r.qualifier, r.value, r.role) for r in order.references] == [
        ("ON", "PO-5000", "order_number"),
        ("BGM", "CHG-0002", "order_change"),
    ]
    assert [(d.role, d.date) for d in order.dates] == [("change_request", dt.date(2024, 1, 21))]
    assert order.totals is not None and order.totals.line_count == 0
    assert order.unmapped == []
    assert trace["purpose"] == "BGM 1225 (segment 2, line 4)"
    assert trace["po_number"] == "RFF C506 1154 (segment 5, line 7)"
    assert "lines_are_changes" not in trace


def test_cancel_with_lines_stays_a_list_of_changes():
    order = change_from("BGM+230+CHG-1+1", ON, "LIN+2+2+4000862141404:EN")
    assert order.purpose is Purpose.CANCEL
    assert order.lines_are_changes is True
    (line,) = order.lines
    assert (line.line_number, line.change, line.quantity) == ("2", "delete", 0)


def test_change_without_lines_is_still_a_change():
    order = change_from(BGM, "DTM+2:20240301:102", ON)
    assert (order.purpose, order.lines, order.lines_are_changes) == (Purpose.CHANGE, [], True)
    assert order.requested_delivery_date == dt.date(2024, 3, 1)


def test_bad_cnt():
    (doc,) = documents(FIXTURES / "ordchg_bad_cnt.edi")
    with pytest.raises(MappingError) as info:
        map_ordchg(doc)
    assert info.value.reason == "EDIFACT_CNT_COUNT"
    assert "CNT+2 says 3 line items but the message has 2 LIN segments" in info.value.message
    assert info.value.position == "segment 8 (line 10) of message MC0003 (CNT), element C270 6066"


# -- BGM and the order number ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bgm", "purpose", "kept"),
    [
        ("BGM+230+CHG-1+1", Purpose.CANCEL, None),
        ("BGM+230+CHG-1+3", Purpose.CANCEL, None),  # deletion
        ("BGM+230+CHG-1+4", Purpose.CHANGE, None),
        ("BGM+230+CHG-1+5", Purpose.REPLACE, None),
        ("BGM+230+CHG-1+9", Purpose.CHANGE, "9"),  # "original": still a change, the code kept
        ("BGM+230+CHG-1+31", Purpose.CHANGE, "31"),
        ("BGM+230+CHG-1", Purpose.CHANGE, None),  # no 1225
    ],
)
def test_purpose_table(bgm: str, purpose: Purpose, kept: str | None):
    order = change_from(bgm, ON, *LINE)
    assert order.purpose is purpose
    assert order.extensions.get("purpose_code") == kept


def test_bgm_number_is_the_order_number_without_rff_on():
    trace: dict[str, str] = {}
    order = change_from("BGM+230+PO-9+4+AB", *LINE, trace=trace)
    assert order.po_number == "PO-9"
    assert order.references == []
    assert order.extensions == {"document_name_code": "230", "response_type": "AB"}
    assert trace["po_number"] == "BGM 1004 (segment 2, line 4)"
    assert trace["extensions.response_type"] == "BGM 4343 (segment 2, line 4)"


def test_rff_on_equal_to_the_bgm_number_adds_no_reference():
    order = change_from("BGM+230+PO-1+4", ON, *LINE)
    assert order.po_number == "PO-1"
    assert [(r.qualifier, r.value) for r in order.references] == [("ON", "PO-1")]


def test_only_the_first_header_rff_on_names_the_order():
    order = change_from(
        BGM,
        "RFF+ON",  # no value
        "RFF+ON:PO-7",
        "RFF+ON:PO-8",
        "NAD+BY+1::9",
        "RFF+ON:PARTY-REF",  # a reference of the party (SG3), not of the message
        "LIN+1+3+4000862141404:EN",
        "QTY+21:2",
        "RFF+ON:LINE-REF",  # a line reference
    )
    assert order.po_number == "PO-7"
    assert [(r.value, r.role) for r in order.references] == [
        (None, "order_number"),
        ("PO-7", "order_number"),
        ("PO-8", "order_number"),
        ("CHG-1", "order_change"),
    ]
    assert order.buyer is not None
    assert [r.value for r in order.buyer.references] == ["PARTY-REF"]
    assert [r.value for r in order.lines[0].references] == ["LINE-REF"]


def test_rff_on_without_bgm_is_not_guessed_to_be_a_change():
    with pytest.raises(MappingError) as info:
        change_from("DTM+137:20240120:102", ON, *LINE)
    assert info.value.reason == "EDIFACT_MISSING_SEGMENT"
    assert "has no BGM segment" in info.value.message
    assert info.value.position == "segment 3 (line 3)"


@pytest.mark.parametrize(
    ("segments", "says"),
    [
        (("DTM+137:20240115:102", *LINE), "BGM 1004 is missing (no BGM segment)"),
        (("BGM+230++4", *LINE), "BGM 1004 is empty"),
        (("BGM+230++4", "RFF+ON", *LINE), "BGM 1004 is empty"),
    ],
)
def test_missing_order_number(segments: tuple[str, ...], says: str):
    with pytest.raises(MappingError) as info:
        change_from(*segments)
    assert info.value.reason == "MISSING_PO_NUMBER"
    assert "there is no RFF+ON" in info.value.message and says in info.value.message
    assert info.value.position == "segment 3 (line 3)"  # the message (its UNH)


def test_dates_of_a_change():
    order = change_from(BGM, "DTM+137:20240120:102", "DTM+4:20240110:102", ON, *LINE)
    assert order.order_date == dt.date(2024, 1, 10)  # DTM+4, the order date, still sets it
    assert [d.role for d in order.dates] == ["change_request", "order_date"]


def test_bgm_elements_not_mapped_keep_it_whole():
    order = change_from("BGM+230:9:9+CHG-1:2+4", ON, *LINE)  # C106 1056 version
    assert order.unmapped == ["BGM+230:9:9+CHG-1:2+4"]
    assert order.references[-1].value == "CHG-1"


def test_not_an_ordchg():
    (doc,) = documents(FIXTURES / "orders_full_d96a.edi")
    with pytest.raises(MappingError) as info:
        map_ordchg(doc)
    assert info.value.reason == "EDIFACT_NOT_ORDCHG"


# -- LIN 1229, line numbers and quantities --------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "change"),
    [
        ("1", "add"),
        ("2", "delete"),
        ("3", "change"),
        ("4", "change"),  # no action
        ("5", "change"),  # accepted without amendment
        ("ZZ", "change"),  # not a code at all: a change, kept as sent
    ],
)
def test_change_codes(code: str, change: str):
    (line,) = change_from(BGM, ON, f"LIN+1+{code}+4000862141404:EN", "QTY+21:2").lines
    assert (line.change_code, line.change) == (code, change)


def test_every_change_code_in_the_table():
    assert dict(default_ordchg_tables().change_codes) == {"1": "add", "2": "delete", "3": "change"}


def test_no_action_code_is_a_change_without_a_code():
    trace: dict[str, str] = {}
    order = change_from(BGM, ON, "LIN+1++4000862141404:EN", "QTY+21:2", trace=trace)
    (line,) = order.lines
    assert (line.change_code, line.change) == (None, "change")
    assert trace["lines[0].change"] == "LIN 1229 (segment 4, line 6)"
    assert "lines[0].change_code" not in trace
    assert order.unmapped == []


def test_1229_is_read_and_the_lin_kept_as_sent_when_kept():
    # An item number without its type keeps the LIN whole, as ORDERS does: with its 1229.
    order = change_from(BGM, ON, "LIN+1+3+4000862141404", "QTY+21:2")
    assert order.unmapped == ["LIN+1+3+4000862141404"]
    assert order.lines[0].change == "change"
    order = change_from(BGM, ON, "LIN+1+3:X+4000862141404:EN", "QTY+21:2")
    assert order.unmapped == ["LIN+1+3:X+4000862141404:EN"]  # 1229 is a simple element


def test_lin_after_the_summary_is_kept_raw():
    order = change_from(BGM, ON, *LINE, "UNS+S", "LIN+2+1+4000862141404:EN")
    assert len(order.lines) == 1 and order.unmapped == ["LIN+2+1+4000862141404:EN"]


def test_line_number_is_needed_except_on_an_add():
    (line,) = change_from(BGM, ON, "LIN++1+4000862141404:EN", "QTY+21:2").lines
    assert (line.line_number, line.change, line.gtin) == (None, "add", "4000862141404")
    with pytest.raises(MappingError) as info:
        change_from(BGM, ON, *LINE, "LIN++3+4000862141404:EN", "QTY+21:2")
    assert info.value.reason == "EDIFACT_MISSING_LINE_NUMBER"
    assert "LIN 2 (1229 3) has no line number (1082)" in info.value.message
    assert info.value.position == "segment 6 (line 8) of message 1 (LIN), element 1082"
    with pytest.raises(MappingError) as info:
        change_from(BGM, ON, "LIN+++4000862141404:EN", "QTY+21:2")
    assert info.value.reason == "EDIFACT_MISSING_LINE_NUMBER"


def test_quantity_may_be_missing_only_on_a_delete():
    (line,) = change_from(BGM, ON, "LIN+7+2+4000862141404:EN", "QTY+21:4").lines
    assert line.quantity == D("4")  # sent anyway: kept
    with pytest.raises(MappingError) as info:
        change_from(BGM, ON, "LIN+1+3+4000862141404:EN", "PRI+AAA:2.5", *LINE)
    assert info.value.reason == "EDIFACT_MISSING_QUANTITY"
    assert "line 1 (LIN 1229 3) has no quantity (QTY+21 or QTY+1)" in info.value.message
    assert info.value.position == "segment 4 (line 6) of message 1 (LIN)"
    with pytest.raises(MappingError) as info:
        change_from(BGM, ON, "LIN+1+1+4000862141404:EN")  # the last line, closed by finish
    assert info.value.reason == "EDIFACT_MISSING_QUANTITY"


def test_other_line_segments_as_in_orders():
    order = change_from(
        BGM,
        ON,
        "LIN+1+3+4000862141404:EN",
        "PIA+5+111:SA+222:BP",
        "IMD+F++:::Blue widget",
        "QTY+21:12,5:KGM",
        "DTM+2:20240121:102",
        "PRI+AAB:110",
        "PRI+AAA:102.88:::1:PCE",
        "LOC+7+5412345000051::9",
        "QTY+11:5",
    )
    (line,) = order.lines
    assert (line.sku, line.buyer_part_number, line.description) == ("111", "222", "Blue widget")
    assert (line.quantity, line.uom) == (D("12.5"), "KGM")
    assert (line.unit_price, line.price_basis) == (D("102.88"), "1 PCE")
    assert [(p.qualifier, p.value) for p in line.prices] == [("AAB", "110")]
    assert [(d.role, d.date) for d in line.dates] == [("requested_delivery", dt.date(2024, 1, 21))]
    assert [(d.location, d.quantity) for d in line.destinations] == [("5412345000051", D("5"))]


# -- code tables ---------------------------------------------------------------------------------


def test_default_tables():
    tables = default_ordchg_tables()
    assert isinstance(tables, EdifactChangeTables)
    assert tables is default_ordchg_tables()  # loaded once
    assert tables.purpose == {
        "1": Purpose.CANCEL,
        "3": Purpose.CANCEL,
        "4": Purpose.CHANGE,
        "5": Purpose.REPLACE,
    }
    assert tables.edifact.product_ids["EN"] == "gtin"  # shared with ORDERS
    assert tables.edifact.date_roles["137"] == "change_request"  # changed for ORDCHG
    assert tables.edifact.date_roles["4"] == "order_date"
    assert tables.sources == (str(ORDERS_TABLES_PATH), str(DEFAULT_ORDCHG_TABLES_PATH))


def test_partner_override(tmp_path: Path):
    partner = tmp_path / "edifact_ordchg.yaml"
    partner.write_text(
        'change_codes:\n  "7": delete\n  "3": null\n'
        'purpose:\n  "9": replace\n'
        'product_ids:\n  "IN": sku\n  "EN": null\n'
        'date_roles:\n  "137": order_date\n'
    )
    tables = load_ordchg_tables(overrides=[partner])
    assert tables.change_codes == {"1": "add", "2": "delete", "7": "delete"}
    assert tables.purpose["9"] is Purpose.REPLACE and tables.purpose["1"] is Purpose.CANCEL
    assert tables.edifact.product_ids["IN"] == "sku" and "EN" not in tables.edifact.product_ids
    assert tables.edifact.date_roles["137"] == "order_date"
    assert default_ordchg_tables().change_codes["3"] == "change"  # the defaults are untouched
    assert tables.sources[-1] == str(partner)
    doc = _doc(
        "BGM+230+CHG-1+9", "DTM+137:20240120:102", ON, "LIN+1+7+X:IN", "LIN+2+3+Y:EN", "QTY+21:1"
    )
    order = map_ordchg(doc, tables)
    assert order.purpose is Purpose.REPLACE
    assert order.order_date == dt.date(2024, 1, 20)
    first, second = order.lines
    assert (first.change, first.sku, first.quantity) == ("delete", "X", 0)
    # "3" removed: still a change (unknown codes are), the code kept
    assert (second.change_code, second.change, second.gtin) == ("3", "change", None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("change_codes:\n  1: add\n", "change_codes[1]: the code must be a quoted string"),
        (
            'change_codes:\n  "3": remove\n',
            "change_codes['3']: 'remove' is not one of add, change, delete",
        ),
        ('purpose:\n  "9": original\n', "purpose['9']: 'original' is not one of cancel, change"),
        ('change_codes:\n  "1234": add\n', "1 to 3 upper-case letters or digits"),
        ("change_codes: [1, 2]\n", "table 'change_codes' must map"),
        (
            'change_codes:\n  "3": [x]\n',
            "change_codes['3']: ['x'] is not one of add, change, delete",
        ),
        (
            'colours:\n  "R": red\n',
            "unknown table 'colours'; known tables: allowance_charge, amount_roles, change_codes",
        ),
        ('date_roles:\n  "137": Change Date\n', "must be a snake_case name"),
        ('product_ids:\n  "EN": ean\n', "'ean' is not one of buyer_part_number, gtin, sku"),
        ("change_codes:\n  '2': [x\n", "not valid YAML"),
        ("- a list\n", "expected a mapping"),
        ("version: 2\n", "version 2 is not supported"),
    ],
)
def test_bad_override_is_a_config_error_naming_the_key(tmp_path: Path, text: str, expected: str):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_ordchg_tables(overrides=[bad])
    assert any(expected in p and str(bad) in p for p in info.value.problems), info.value.problems


def test_base_file_must_have_both_tables_and_no_nulls(tmp_path: Path):
    base = tmp_path / "base.yaml"
    base.write_text('purpose:\n  "4": change\n  "1": null\n')
    with pytest.raises(ConfigError) as info:
        load_ordchg_tables(base)
    problems = info.value.problems
    assert any(
        "purpose['1']: null removes an entry, only in an override file" in p for p in problems
    )
    assert any("table 'change_codes' is missing" in p for p in problems)


def test_missing_files_are_config_errors(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        load_ordchg_tables(tmp_path / "nope.yaml", shared=tmp_path / "nope_orders.yaml")
    assert len(info.value.problems) == 2
    assert all("cannot read the mapping tables" in p for p in info.value.problems)


# -- end to end: an ORDERS, then the ORDCHG for the same order, through the pipeline and linker ---


@pytest.fixture
def with_ordchg(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    spec = MapperSpec(
        "gateway.mapping.edifact_ordchg:map_ordchg",
        "edifact_ordchg",
        "gateway.mapping.edifact_ordchg:load_ordchg_tables",
    )
    monkeypatch.setitem(gateway.translate.MAPPERS, ("edifact", "ORDCHG"), spec)
    gateway.translate._mapper.cache_clear()
    yield
    gateway.translate._mapper.cache_clear()


def ingest(tmp_path: Path, *bodies: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Receive and process each body in turn; the order rows as written, and the outbox."""
    store = Store(f"sqlite:///{tmp_path}/g.db")
    try:
        p = Pipeline(
            store,
            connectors=["erp"],
            capabilities={"erp": Capabilities(updates=True, cancels=True)},
        )
        for n, body in enumerate(bodies):
            r = p.receive(
                RawMessage(body=body, source="t", source_ref=str(n), display_name=f"{n}.edi")
            )
            p.process(r.message_id)
        with store.engine.connect() as c:
            rows = [
                dict(o)
                for o in c.execute(
                    select(t.orders).order_by(t.orders.c.version, t.orders.c.created_at)
                ).mappings()
            ]
            outbox = [
                dict(r) for r in c.execute(select(t.outbox).order_by(t.outbox.c.id)).mappings()
            ]
    finally:
        store.dispose()
    return rows, outbox


# The order the fixtures change: same UNB sender, PO-5000, lines 1 and 2.
ORIGINAL = "".join(
    f"{s}'\n"
    for s in [
        "UNA:+.? ",
        "UNB+UNOC:3+5412345000013:14+8712345000004:14+240115:1200+IC0100",
        "UNH+MO0001+ORDERS:D:96A:UN:EAN008",
        "BGM+220+PO-5000+9",
        "DTM+137:20240115:102",
        "NAD+BY+5412345000013::9",
        "NAD+SU+8712345000004::9",
        "CUX+2:EUR:9",
        "LIN+1++5412345678908:EN",
        "IMD+F++:::Blue widget",
        "QTY+21:12:PCE",
        "PRI+AAA:9.5",
        "LIN+2++4000862141404:EN",
        "QTY+21:4:PCE",
        "PRI+AAA:20",
        "UNS+S",
        "CNT+2:2",
        "UNT+16+MO0001",
        "UNZ+1+IC0100",
    ]
).encode()


def _stored(row: dict[str, Any]) -> Order:
    data = row["data"]
    return Order.model_validate(data if isinstance(data, dict) else json.loads(data))


def test_change_is_merged_onto_the_order_and_sent_as_an_update(tmp_path: Path, with_ordchg: None):
    rows, outbox = ingest(tmp_path, ORIGINAL, (FIXTURES / "ordchg_change.edi").read_bytes())
    v1, v2 = rows
    assert (v1["version"], v1["purpose"], v1["state"]) == (1, "original", "validated")
    assert (v2["version"], v2["purpose"], v2["state"], v2["reason"]) == (
        2,
        "change",
        "validated",
        None,
    ), v2["error"]
    assert v2["supersedes"] == v1["id"]
    assert v1["order_key"] == v2["order_key"] == "edifact|14:5412345000013|PO-5000"
    merged = _stored(v2)  # every version is a complete, valid order
    assert merged.lines_are_changes is False
    assert (merged.po_number, merged.purpose, merged.order_type) == (
        "PO-5000",
        Purpose.CHANGE,
        "220",  # the ORDERS' order type: BGM 230 of the change does not overwrite it
    )
    assert merged.order_date == dt.date(2024, 1, 15)  # the order's, not the change's date
    assert merged.requested_delivery_date == dt.date(2024, 1, 26)  # set by the change
    assert [
        (ln.line_number, ln.quantity, ln.gtin, ln.unit_price, ln.description, ln.change)
        for ln in merged.lines
    ] == [
        ("1", D("20"), "5412345678908", D("9.5"), "Blue widget", None),  # quantity updated
        ("3", D("5"), "4006381333931", D("4.25"), "Red widget", None),  # added; 2 is gone
    ]
    assert merged.lines[1].sku == "ART-3"
    assert merged.source.interchange_control_number == "IC0101"
    assert v2["line_count"] == 2
    assert [(r["action"], r["order_id"]) for r in outbox] == [
        ("create", v1["id"]),
        ("update", v2["id"]),
    ]
    assert outbox[1]["after_id"] == outbox[0]["id"]


def test_cancel_is_a_version_sent_as_a_cancel(tmp_path: Path, with_ordchg: None):
    rows, outbox = ingest(tmp_path, ORIGINAL, (FIXTURES / "ordchg_cancel.edi").read_bytes())
    v1, v2 = rows
    assert (v2["version"], v2["purpose"], v2["state"], v2["supersedes"]) == (
        2,
        "cancel",
        "validated",
        v1["id"],
    ), v2["error"]
    cancelled = _stored(v2)
    assert cancelled.purpose is Purpose.CANCEL
    assert cancelled.lines == []  # a header-only cancel is stored as sent, not merged
    assert cancelled.notes == ["Store closed: cancel the whole order"]
    assert v2["line_count"] == 0
    assert [(r["action"], r["order_id"]) for r in outbox] == [
        ("create", v1["id"]),
        ("cancel", v2["id"]),
    ]
    assert outbox[1]["after_id"] == outbox[0]["id"]


# A change linked when its order is written (it came first, or in the same input) goes
# through Linker.release_waiting, which merges it (versions.decide sets row["data"] and
# row["line_count"]), but the pipeline's UPDATE of the released row writes only state,
# reason, error, version and supersedes: the stored version 2, which the connectors are sent,
# is the partial change document. Not ORDCHG's: the X12 860 takes the same path.
@pytest.mark.parametrize("together", [False, True], ids=["change_first", "same_input"])
def test_change_that_waited_for_its_order_is_merged(
    tmp_path: Path, with_ordchg: None, together: bool
):
    change = (FIXTURES / "ordchg_change.edi").read_bytes()
    if together:  # one file: the ORDERS interchange, then the ORDCHG one
        rows, outbox = ingest(tmp_path, ORIGINAL + change.split(b"\n", 1)[1])
    else:
        rows, outbox = ingest(tmp_path, change, ORIGINAL)
    v1, v2 = rows
    assert (v1["purpose"], v2["purpose"], v2["version"], v2["state"]) == (
        "original",
        "change",
        2,
        "validated",
    ), v2["error"]
    assert [r["action"] for r in outbox] == ["create", "update"]
    merged = _stored(v2)
    assert merged.lines_are_changes is False
    assert [ln.line_number for ln in merged.lines] == ["1", "3"]
    assert v2["line_count"] == 2


def test_bad_cnt_is_rejected_by_the_pipeline(tmp_path: Path, with_ordchg: None):
    rows, outbox = ingest(tmp_path, ORIGINAL, (FIXTURES / "ordchg_bad_cnt.edi").read_bytes())
    assert [(r["version"], r["state"]) for r in rows][0] == (1, "validated")
    assert rows[1]["reason"] == "EDIFACT_CNT_COUNT" and rows[1]["state"] != "validated"
    assert [r["action"] for r in outbox] == ["create"]
