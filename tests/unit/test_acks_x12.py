"""X12 acknowledgements: TA1, 997, 999 and 855 (gateway.acks.x12).

Golden files under tests/fixtures/acks/ are compared segment by segment, with the clock and
the control numbers injected. Every acknowledgement is read back with pyx12's X12Reader (no
envelope errors), and 997/999 structures are validated against pyx12's shipped 997.4010 and
999.5010X231A1 maps. Those maps only know HIPAA functional groups (AK101 HC, AK201 837, ...),
so the map check acknowledges an HC/837 group: the builder writes the same structure for PO/850.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pyx12.params
import pyx12.x12file
import pyx12.x12n_document
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import gateway.acks as acks
from gateway.acks import (
    X12_ACK_CODES,
    AckError,
    AckValueError,
    GroupAck,
    InMemoryControlNumbers,
    InterchangeAck,
    LineResult,
    LineStatus,
    PoDecision,
    TransactionAck,
    X12Separators,
    build_855,
    build_997,
    build_999,
    build_ta1,
    interchange_reasons,
    read_isa,
    x12_ack_code,
    x12_ack_error,
)
from gateway.errors import MappingError
from gateway.formats.base import (
    Document,
    DocumentRejected,
    Envelope,
    InterchangeClosed,
    InterchangeOpened,
)
from gateway.formats.x12 import parse_x12 as _parse_x12
from gateway.mapping.x12_850 import map_850
from gateway.model import ItemId, Order, OrderLine, Party, Source


# These inputs exercise the envelope repairs that guess (unpadded ISA, wrapped segments), which
# run only for a partner whose profile allows them (issue 14 #22); read here as for such a partner.
def parse_x12(source, **kw):  # type: ignore[no-untyped-def]
    return _parse_x12(source, lenient=True, **kw)

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "fixtures" / "acks"
X12_FIXTURES = ROOT / "tests" / "fixtures" / "x12"
NOW = dt.datetime(2024, 1, 16, 8, 30, tzinfo=dt.UTC)
D = Decimal

INBOUND = Envelope(
    standard="x12",
    sender_id="BUYERCO",
    sender_qualifier="ZZ",
    receiver_id="SELLERCO",
    receiver_qualifier="ZZ",
    interchange_control_number="000000013",
    version="00401",
    test_indicator="T",
    ack_requested=True,
)


# -- helpers ---------------------------------------------------------------------------------


def segments(text: str, sep: X12Separators | None = None) -> list[list[str]]:
    """The segments of an X12 text, each split into elements (line endings dropped)."""
    sep = sep or X12Separators()
    return [s.lstrip("\r\n").split(sep.element) for s in text.split(sep.segment) if s.strip("\r\n")]


def read_back(text: str) -> list[Any]:
    """Read with pyx12's X12Reader and fail on any envelope error it reports."""
    reader = pyx12.x12file.X12Reader(io.StringIO(text))
    segs = list(reader)
    errors = reader.pop_errors()
    reader.cleanup()
    errors += reader.pop_errors()
    assert errors == [], errors
    return segs


def check_counts(text: str, sep: X12Separators | None = None) -> None:
    """SE01, GE01 and IEA01 counted by hand; ISA exactly 106 characters."""
    sep = sep or X12Separators()
    assert len(text.split(sep.segment, 1)[0]) + 1 == 106
    segs = segments(text, sep)
    groups = sets = 0
    st_at = 0
    for i, seg in enumerate(segs):
        if seg[0] == "GS":
            groups += 1
            sets = 0
        elif seg[0] == "ST":
            sets += 1
            st_at = i
        elif seg[0] == "SE":
            assert int(seg[1]) == i - st_at + 1
        elif seg[0] == "GE":
            assert int(seg[1]) == sets
        elif seg[0] == "IEA":
            assert int(seg[1]) == groups


def map_errors(text: str) -> list[str]:
    """Errors pyx12 finds validating `text` against its shipped map (997.4010 / 999.5010)."""
    fd_json = io.StringIO()
    logging.getLogger("pyx12").setLevel(logging.CRITICAL)  # it also logs every error
    valid = pyx12.x12n_document.x12n_document(
        pyx12.params.params(), io.StringIO(text), io.StringIO(), None, None, fd_json
    )

    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for err in node.get("errors", []):
                found.append(err["err_str"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(fd_json.getvalue()))
    assert valid or found
    return found


def golden(name: str, text: str) -> None:
    expected = (GOLDEN / name).read_text()
    got, want = segments(text), segments(expected)
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        assert g == w, f"segment {i + 1}: {g} != {w}"
    assert len(got) == len(want)


def tx(control: str, *errors: AckError, accepted: bool | None = None, **kw: Any) -> TransactionAck:
    return TransactionAck(
        "850",
        control,
        accepted=not errors if accepted is None else accepted,
        errors=errors,
        **kw,
    )


def ack_of(*groups: GroupAck, errors: tuple[str, ...] = (), **kw: Any) -> InterchangeAck:
    return InterchangeAck(
        INBOUND,
        groups,
        errors=errors,
        interchange_date="240115",
        interchange_time="1200",
        **kw,
    )


def cn() -> InMemoryControlNumbers:
    return InMemoryControlNumbers(start=41)


def seg_of(text: str, sid: str) -> list[list[str]]:
    return [s for s in segments(text) if s[0] == sid]


# -- golden cases ----------------------------------------------------------------------------


def case_997_accepted() -> str:
    group = GroupAck("PO", "101", "004010", [tx("0001"), tx("0002")], declared_count=2)
    return build_997(ack_of(group), control_numbers=cn(), now=NOW)


def case_997_rejected_se_count() -> str:
    group = GroupAck(
        "PO", "101", "004010", [tx("0002", AckError("X12_SE_COUNT"))], declared_count=1
    )
    return build_997(ack_of(group), control_numbers=cn(), now=NOW)


def case_999_partial() -> str:
    group = GroupAck(
        "PO",
        "202",
        "005010",
        [
            tx("0001", implementation_reference="005010X999"),
            tx(
                "0002",
                AckError("X12_BAD_NUMBER", "PO1", 5, 2, bad_value="1O"),
                AckError("X12_BAD_DATE", "DTM", 3, 2, bad_value="20241399"),
            ),
            tx("0003", AckError("X12_CONTROL_MISMATCH")),
        ],
        declared_count=3,
    )
    ack = InterchangeAck(
        dataclass_replace(INBOUND, version="00501", test_indicator="P"),
        [group],
        separators=X12Separators(repetition="^", line_ending="\n"),
    )
    return build_999(ack, control_numbers=cn(), now=NOW)


def case_ta1_duplicate() -> str:
    ack = ack_of(errors=("X12_DUPLICATE_INTERCHANGE",), separators=X12Separators(component=">"))
    return build_ta1(ack, control_numbers=cn(), now=NOW)


def order() -> Order:
    return Order(
        po_number="PO-4010-1",
        order_date=dt.date(2024, 1, 15),
        release_number="R2",
        channel="x12",
        currency="USD",
        buyer=Party(name="Buyer Company", code="0042", code_qualifier="92"),
        ship_to=Party(name="Store 12", code="0012", code_qualifier="92"),
        seller=Party(name="Seller Co", code="5012345000009", code_qualifier="UL"),
        lines=[
            OrderLine(
                line_number="1",
                quantity=D("10"),
                uom="EA",
                unit_price=D("3.50"),
                price_basis="PE",
                sku="A-1",
                item_ids=[
                    ItemId(qualifier="VP", value="A-1"),
                    ItemId(qualifier="UP", value="012345678905"),
                ],
            ),
            OrderLine(
                line_number="2",
                quantity=D("5"),
                uom="CA",
                unit_price=D("12.00"),
                sku="B-2",
                item_ids=[ItemId(qualifier="VP", value="B-2")],
            ),
            OrderLine(
                line_number="3",
                quantity=D("1"),
                uom="EA",
                sku="C-3",
                item_ids=[ItemId(qualifier="VP", value="C-3")],
            ),
        ],
        source=Source(
            sender_id="BUYERCO",
            sender_qualifier="ZZ",
            receiver_id="SELLERCO",
            receiver_qualifier="ZZ",
            interchange_control_number="000000101",
            version="004010",
            test_indicator="T",
        ),
    )


CHANGES = [
    LineResult(),
    LineResult(LineStatus.QUANTITY_CHANGED, quantity=D("3"), date=dt.date(2024, 1, 20)),
    LineResult(
        LineStatus.PRICE_CHANGED,
        unit_price=D("1.25"),
        date=dt.date(2024, 1, 22),
        date_kind="delivery",
    ),
]


def case_855_accepted_with_changes() -> str:
    return build_855(
        order(),
        PoDecision.from_lines(CHANGES),
        CHANGES,
        control_numbers=cn(),
        now=NOW,
        separators=X12Separators(component=">", line_ending="\n"),
        seller_order_number="SO-77",
    )


def dataclass_replace(env: Envelope, **kw: Any) -> Envelope:
    import dataclasses

    return dataclasses.replace(env, **kw)


CASES: dict[str, Callable[[], str]] = {
    "997_accepted.x12": case_997_accepted,
    "997_rejected_se_count.x12": case_997_rejected_se_count,
    "999_partial.x12": case_999_partial,
    "ta1_duplicate.x12": case_ta1_duplicate,
    "855_accepted_with_changes.x12": case_855_accepted_with_changes,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str):
    golden(name, CASES[name]())


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_ack_reads_back_with_pyx12(name: str):
    text = CASES[name]()
    sep = read_isa(text).separators
    read_back(text)
    check_counts(text, sep)


def test_golden_997_accepted_in_detail():
    text = case_997_accepted()
    isa = segments(text)[0]
    # Sender and receiver swapped; ISA13 from the allocator, zero-padded; ISA14 0; ISA15 copied.
    assert isa[5:9] == ["ZZ", "SELLERCO       ", "ZZ", "BUYERCO        "]
    assert isa[9:11] == ["240116", "0830"]
    assert isa[12:16] == ["00401", "000000041", "0", "T"]
    assert seg_of(text, "GS") == [
        ["GS", "FA", "SELLERCO", "BUYERCO", "20240116", "0830", "41", "X", "004010"]
    ]
    assert seg_of(text, "AK1") == [["AK1", "PO", "101"]]
    assert seg_of(text, "AK9") == [["AK9", "A", "2", "2", "2"]]


# -- reading the inbound ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("clean_4010_850.edi", ("*", ">", "~", None, "\n", "240115", "1200", "00401")),
        ("unpadded_isa.edi", None),
        ("newline_terminator.edi", None),
        ("clean_5010_850.edi", None),
    ],
)
def test_read_isa(name: str, expected: tuple[Any, ...] | None):
    raw = (X12_FIXTURES / name).read_bytes()
    header = read_isa(raw)
    opened = next(e for e in parse_x12(raw) if isinstance(e, InterchangeOpened))
    assert header.version == opened.envelope.version
    assert header.control_number.lstrip("0") == (
        opened.envelope.interchange_control_number or ""
    ).lstrip("0")
    if expected is not None:
        s = header.separators
        assert (s.element, s.component, s.segment, s.repetition, s.line_ending) == expected[:5]
        assert (header.date, header.time, header.version) == expected[5:]


def test_read_isa_5010_repetition_and_refusals():
    isa = "ISA*00*          *00*          *ZZ*A              *ZZ*B              *240115*1200*^*00501*000000001*0*P*:~GS"
    assert read_isa(isa).separators.repetition == "^"
    assert read_isa("\ufeff  " + isa).separators.segment == "~"
    with pytest.raises(AckValueError):
        read_isa("UNB+UNOC:3")
    with pytest.raises(AckValueError):
        read_isa("ISA*00*  *00")


def test_interchange_reasons_from_the_parser():
    def closed_errors(name: str) -> list[list[str]]:
        return [
            e.errors
            for e in parse_x12((X12_FIXTURES / name).read_bytes())
            if isinstance(e, InterchangeClosed)
        ]

    (errs,) = closed_errors("envelope_errors.edi")
    r = interchange_reasons(errs)
    assert r.interchange == ["X12_IEA_CONTROL_MISMATCH"]
    assert r.groups == {"13": ["X12_GE_COUNT"]}
    assert r.unclassified == []

    (errs,) = closed_errors("truncated.edi")
    r = interchange_reasons(errs)
    assert r.interchange == ["X12_IEA_MISSING"]
    assert r.groups == {"9": ["X12_GE_MISSING"]}

    first, second = closed_errors("missing_iea_then_isa.edi")
    assert interchange_reasons(first).interchange == ["X12_IEA_MISSING"]
    assert interchange_reasons(second) == interchange_reasons([])


def test_interchange_reasons_other_sentences():
    r = interchange_reasons(
        [
            "interchange error at line 9: IEA count for IEA02=000000001 is wrong",
            "ISA13 000000001 from this sender repeats an earlier interchange in the same file",
            "group error at line 4: GE id=7 does not match GS id=6",
            "group error at line 4: GS Interchange Control Number 6 not unique within file",
            "the GE at line 12 closes no functional group (no GS)",
            "segment REF at line 3 is outside any transaction set and was ignored",
            "warning: a UTF-8 byte order mark was removed",
            "something new",
        ]
    )
    assert r.interchange == [
        "X12_IEA_COUNT",
        "X12_DUPLICATE_INTERCHANGE",
        "X12_CONTROL_STRUCTURE",
        "X12_INTERCHANGE_CONTENT",
    ]
    assert r.groups == {"6": ["X12_GROUP_CONTROL_MISMATCH", "X12_DUPLICATE_GROUP"]}
    assert r.unclassified == ["something new"]


def _doc(*body: str) -> Document:
    isa = "ISA*00*          *00*          *ZZ*BUYERCO        *ZZ*SELLERCO       *240115*1200*U*00401*000000001*0*P*>"
    segs = ["ST*850*0001", *body]
    segs.append(f"SE*{len(segs) + 1}*0001")
    text = (
        "~".join(
            [
                isa,
                "GS*PO*BUYERCO*SELLERCO*20240115*1200*1*X*004010",
                *segs,
                "GE*1*1",
                "IEA*1*000000001",
            ]
        )
        + "~"
    )
    (doc,) = [e for e in parse_x12(text.encode()) if isinstance(e, Document)]
    return doc


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (("BEG*00*SA*PO1**20240115", "PO1*1*x1*EA*2"), ("X12_BAD_NUMBER", "PO1", 3, 2, "x1")),
        (("BEG*00*SA*PO1**20241399", "PO1*1*1*EA*2"), ("X12_BAD_DATE", "BEG", 2, 5, "20241399")),
        (("BEG*00*SA*PO1**20240115", "PO1*1**EA*2"), ("X12_MISSING_QUANTITY", "PO1", 3, 2, None)),
        (("BEG*00*SA***20240115", "PO1*1*1*EA*2"), ("MISSING_PO_NUMBER", None, None, None, None)),
        (("PO1*1*1*EA*2",), ("X12_MISSING_SEGMENT", "BEG", 2, None, None)),
        (
            ("BEG*00*SA*PO1**20240115", "PO1*1*1*EA*2", "CTT*2"),
            ("X12_CTT_COUNT", "CTT", 4, 1, None),
        ),
    ],
)
def test_x12_ack_error_from_mapping_errors(body: tuple[str, ...], expected: tuple[Any, ...]):
    with pytest.raises(MappingError) as info:
        map_850(_doc(*body))
    e = x12_ack_error(info.value.reason, info.value.message, info.value.position)
    assert (e.reason, e.segment_id, e.segment_position, e.element_position, e.bad_value) == expected


def test_ack_errors_from_mapping_show_as_ak3_ak4():
    with pytest.raises(MappingError) as info:
        map_850(_doc("BEG*00*SA***20240115", "PO1*1*1*EA*2"))
    missing_po = x12_ack_error(info.value.reason, info.value.message, info.value.position)
    with pytest.raises(MappingError) as info:
        map_850(_doc("BEG*00*SA*PO1**20240115", "PO1*1*x1*EA*2"))
    bad_qty = x12_ack_error(info.value.reason, info.value.message, info.value.position)
    text = build_997(
        ack_of(GroupAck("PO", "1", "004010", [tx("0001", missing_po, bad_qty)])),
        control_numbers=cn(),
        now=NOW,
    )
    assert [s for s in segments(text) if s[0] in ("AK3", "AK4", "AK5")] == [
        ["AK3", "BEG", "2", "", "8"],
        ["AK4", "3", "324", "1"],
        ["AK3", "PO1", "3", "", "8"],
        ["AK4", "2", "330", "6", "x1"],
        ["AK5", "R", "5"],
    ]


# -- the reason-code table -------------------------------------------------------------------


def _documented_reasons(module_doc: str) -> set[str]:
    section = module_doc.split("Reason codes", 1)[1]
    return set(re.findall(r"^\s+((?:X12|MISSING|INVALID)_[A-Z0-9_]+)\s", section, re.M))


def test_every_reason_the_parser_and_mapping_emit_has_an_entry():
    import gateway.formats.x12 as parser
    import gateway.mapping.x12_850 as mapping

    reasons = _documented_reasons(parser.__doc__ or "") | _documented_reasons(mapping.__doc__ or "")
    assert {"X12_SE_COUNT", "X12_CTT_COUNT", "MISSING_PO_NUMBER", "X12_NO_GROUP"} <= reasons
    missing = sorted(r for r in reasons if r not in X12_ACK_CODES)
    assert missing == []


@pytest.mark.parametrize(
    ("reason", "ak5"),
    [
        ("X12_SE_COUNT", ["R", "4"]),
        ("X12_CONTROL_MISMATCH", ["R", "3"]),
        ("X12_DUPLICATE_CONTROL", ["R", "23"]),
        ("X12_TRUNCATED", ["R", "2"]),
        ("X12_NOT_850", ["R", "1"]),
        ("X12_EMPTY_SEGMENT", ["R", "5"]),
        ("X12_SEGMENT", ["R", "5"]),
        ("X12_BAD_NUMBER", ["R", "5"]),
        ("X12_CTT_COUNT", ["A"]),
        ("INVALID_ORDER", ["A"]),
        ("VALIDATION:no_lines", ["A"]),
        ("DUPLICATE_PO", ["A"]),
        ("SOMETHING_NEW", ["R", "5"]),
    ],
)
def test_transaction_reason_to_ak5(reason: str, ak5: list[str]):
    text = build_997(
        ack_of(GroupAck("PO", "1", "004010", [tx("0001", AckError(reason))])),
        control_numbers=cn(),
        now=NOW,
    )
    assert seg_of(text, "AK5") == [["AK5", *ak5]]
    assert seg_of(text, "AK3") == []  # no position known: no AK3
    assert seg_of(text, "AK9")[0][1] == ("A" if ak5 == ["A"] else "R")


def test_segment_errors_with_positions():
    errors = (
        AckError("X12_SEGMENT", "P1O", 6),
        AckError("X12_EMPTY_SEGMENT", segment_position=4),  # no id: no AK3
        AckError("X12_UNEXPECTED_SEGMENT", "REF", 9),
        AckError("X12_INVALID_CODE", "REF", 9, 1, bad_value="Q*"),  # a copy with "*" is left out
        AckError(
            "X12_ELEMENT_TOO_LONG", "N1", 7, 2, 1, bad_value="X" * 100, element_reference="93"
        ),
    )
    text = build_997(
        ack_of(GroupAck("PO", "1", "004010", [tx("0001", *errors)])), control_numbers=cn(), now=NOW
    )
    assert [s for s in segments(text) if s[0] in ("AK3", "AK4", "AK5")] == [
        ["AK3", "P1O", "6", "", "1"],
        ["AK3", "N1", "7", "", "8"],
        ["AK4", "2:1", "93", "5"],
        ["AK3", "REF", "9", "", "2"],
        ["AK4", "1", "", "7"],
        ["AK5", "R", "5"],
    ]
    read_back(text)


def test_accepted_with_errors_noted_is_e():
    group = GroupAck(
        "PO", "1", "004010", [tx("0001", AckError("X12_SE_COUNT"), accepted=True), tx("0002")]
    )
    text = build_997(ack_of(group), control_numbers=cn(), now=NOW)
    assert seg_of(text, "AK5") == [["AK5", "E", "4"], ["AK5", "A"]]
    assert seg_of(text, "AK9") == [["AK9", "E", "2", "2", "2"]]


def test_forced_ack_code():
    group = GroupAck("PO", "1", "004010", [tx("0001", AckError("X12_SE_COUNT"), ack_code="X")])
    assert seg_of(build_997(ack_of(group), control_numbers=cn(), now=NOW), "AK5") == [
        ["AK5", "X", "4"]
    ]
    with pytest.raises(AckValueError):
        TransactionAck("850", "1", ack_code="Q")
    with pytest.raises(AckValueError):
        TransactionAck("850", "1", accepted=False)  # refused, but no error says why


def test_group_counts_and_errors():
    group = GroupAck(
        "PO",
        "13",
        "004010",
        [tx("0001"), tx("0002", AckError("X12_SE_COUNT"))],
        declared_count=4,
        errors=["X12_GE_COUNT", "X12_DUPLICATE_GROUP", "X12_CTT_COUNT"],
    )
    text = build_997(ack_of(group), control_numbers=cn(), now=NOW)
    assert seg_of(text, "AK9") == [["AK9", "P", "4", "2", "1", "5", "6"]]
    group5010 = GroupAck("PO", "13", "005010", group.transactions, 4, group.errors)
    assert seg_of(build_999(ack_of(group5010), control_numbers=cn(), now=NOW), "AK9") == [
        ["AK9", "P", "4", "2", "1", "5", "19"]
    ]


def test_group_errors_alone_make_e_and_rejecting_ones_r():
    noted = GroupAck("PO", "13", "004010", [tx("0001")], errors=["X12_GE_MISSING"])
    assert seg_of(build_997(ack_of(noted), control_numbers=cn(), now=NOW), "AK9") == [
        ["AK9", "E", "1", "1", "1", "3"]
    ]
    refused = GroupAck("PO", "13", "004010", [tx("0001"), tx("0002")], errors=["X12_GROUP_VERSION"])
    text = build_997(ack_of(refused), control_numbers=cn(), now=NOW)
    assert seg_of(text, "AK2") == []
    assert seg_of(text, "AK9") == [["AK9", "R", "2", "2", "0", "2"]]
    empty = GroupAck("PO", "13", "004010", [], declared_count=2)
    assert seg_of(build_997(ack_of(empty), control_numbers=cn(), now=NOW), "AK9") == [
        ["AK9", "R", "2", "0", "0"]
    ]


def test_set_without_st02_is_counted_but_not_listed():
    group = GroupAck(
        "PO",
        "1",
        "004010",
        [
            tx("0001"),
            TransactionAck("850", None, accepted=False, errors=[AckError("X12_TRUNCATED")]),
        ],
    )
    text = build_997(ack_of(group), control_numbers=cn(), now=NOW)
    assert [s[2] for s in seg_of(text, "AK2")] == ["0001"]
    assert seg_of(text, "AK9") == [["AK9", "P", "2", "2", "1"]]


def test_one_fa_group_per_inbound_group_and_control_numbers():
    numbers = InMemoryControlNumbers(start=999_999_998)
    groups = [
        GroupAck(
            "PO",
            "1",
            "004010",
            [tx("0001")],
            application_sender="BUYDEPT",
            application_receiver="SALES",
        ),
        GroupAck("IN", "2", "004010", [TransactionAck("810", "0001")]),
    ]
    text = build_997(ack_of(*groups), control_numbers=numbers, now=NOW)
    assert [s[1:4] + [s[6]] for s in seg_of(text, "GS")] == [
        ["FA", "SALES", "BUYDEPT", "999999998"],
        ["FA", "SELLERCO", "BUYERCO", "999999999"],
    ]
    assert [s[1:3] for s in seg_of(text, "ST")] == [["997", "0001"], ["997", "0001"]]
    assert numbers.issued[0] == ("x12|ZZ:BUYERCO", "interchange", 999_999_998)
    assert seg_of(text, "IEA") == [["IEA", "2", "999999998"]]
    check_counts(text)
    read_back(text)
    with pytest.raises(AckValueError, match="GS06"):
        build_997(ack_of(*groups), control_numbers=numbers, now=NOW)  # next GS06 is 10**9
    with pytest.raises(AckValueError, match="ISA13"):
        build_997(ack_of(*groups), control_numbers=numbers, now=NOW)  # and now ISA13 too


def test_997_in_5010_and_999_versions():
    group = GroupAck("PO", "7", "005010", [tx("0001", implementation_reference="X")])
    text = build_997(ack_of(group), control_numbers=cn(), now=NOW, version="005010")
    isa = segments(text)[0]
    assert isa[11:13] == ["^", "00501"]
    assert seg_of(text, "ST") == [["ST", "997", "0001"]]
    assert seg_of(text, "AK2") == [["AK2", "850", "0001"]]  # ST03 only in a 999
    text = build_999(ack_of(group), control_numbers=cn(), now=NOW)
    assert seg_of(text, "ST") == [["ST", "999", "0001", "005010X231A1"]]
    assert seg_of(text, "GS")[0][8] == "005010X231A1"
    assert seg_of(text, "AK1") == [["AK1", "PO", "7", "005010"]]
    assert seg_of(text, "AK2") == [["AK2", "850", "0001", "X"]]
    with pytest.raises(AckValueError, match="AK103"):
        build_999(ack_of(GroupAck("PO", "7", None, [tx("1")])), control_numbers=cn(), now=NOW)


def test_refusals():
    with pytest.raises(AckValueError, match="at least one"):
        build_997(ack_of(), control_numbers=cn(), now=NOW)
    edifact = InterchangeAck(Envelope("edifact", "A", None, "B", None, "1"), [GroupAck("", None)])
    with pytest.raises(AckValueError):
        build_997(edifact, control_numbers=cn(), now=NOW)
    no_receiver = InterchangeAck(
        dataclass_replace(INBOUND, receiver_id=None), [GroupAck("PO", "1", "004010", [tx("1")])]
    )
    with pytest.raises(AckValueError, match="ISA06"):
        build_997(no_receiver, control_numbers=cn(), now=NOW)
    long_id = InterchangeAck(
        dataclass_replace(INBOUND, sender_id="X" * 16), [GroupAck("PO", "1", "004010", [tx("1")])]
    )
    with pytest.raises(AckValueError, match="longer than 15"):
        build_997(long_id, control_numbers=cn(), now=NOW)
    star = GroupAck("PO", "1*2", "004010", [tx("1")])
    with pytest.raises(AckValueError, match="no release character"):
        build_997(ack_of(star), control_numbers=cn(), now=NOW)
    with pytest.raises(AckValueError):
        X12Separators(element="*", component="*")
    with pytest.raises(AckValueError):
        X12Separators(element="A")
    with pytest.raises(AckValueError):
        AckError("X12_SEGMENT", "PO1", 0)


# -- TA1 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("errors", "ta1"),
    [
        ((), ["A", "000"]),
        (("X12_IEA_CONTROL_MISMATCH",), ["E", "001"]),
        (("X12_IEA_COUNT", "X12_IEA_MISSING"), ["R", "023"]),
        (("X12_DUPLICATE_INTERCHANGE",), ["R", "025"]),
        (("X12_NO_GROUP",), ["E", "024"]),
        (("SOMETHING_NEW",), ["E", "024"]),
        (("X12_CTT_COUNT",), ["A", "000"]),
    ],
)
def test_ta1_codes(errors: tuple[str, ...], ta1: list[str]):
    text = build_ta1(ack_of(errors=errors), control_numbers=cn(), now=NOW)
    assert seg_of(text, "TA1") == [["TA1", "000000013", "240115", "1200", *ta1]]
    assert seg_of(text, "IEA") == [["IEA", "0", "000000041"]]
    read_back(text)


def test_ta1_overrides_versions_and_refusals():
    text = build_ta1(
        ack_of(), control_numbers=cn(), now=NOW, ack_code="R", note_code="022", version="00501"
    )
    assert seg_of(text, "TA1")[0][4:] == ["R", "022"]
    assert segments(text)[0][11:13] == ["^", "00501"]
    read_back(text)
    with pytest.raises(AckValueError, match="ISA09"):
        build_ta1(InterchangeAck(INBOUND), control_numbers=cn(), now=NOW)
    with pytest.raises(AckValueError, match="TA105"):
        build_ta1(ack_of(), control_numbers=cn(), now=NOW, note_code="22")
    unpadded = InterchangeAck(
        dataclass_replace(INBOUND, interchange_control_number="7"),
        interchange_date="240115",
        interchange_time="1200",
    )
    assert seg_of(build_ta1(unpadded, control_numbers=cn(), now=NOW), "TA1")[0][1] == "000000007"


def test_997_with_ta1():
    group = GroupAck("PO", "13", "004010", [tx("0001")])
    text = build_997(
        ack_of(group, errors=("X12_IEA_CONTROL_MISMATCH",)),
        control_numbers=cn(),
        now=NOW,
        with_ta1=True,
    )
    assert [s[0] for s in segments(text)][:3] == ["ISA", "TA1", "GS"]
    read_back(text)
    check_counts(text)


# -- validation against pyx12's shipped 997/999 maps -------------------------------------------


def _hipaa_group(version: str) -> GroupAck:
    return GroupAck(
        "HC",
        "13",
        version,
        [
            TransactionAck("837", "0001"),
            TransactionAck("837", "0002", accepted=False, errors=[AckError("X12_SE_COUNT")]),
            TransactionAck(
                "837",
                "0003",
                accepted=False,
                errors=[
                    AckError("X12_BAD_NUMBER", "SV1", 5, 2, 1, bad_value="1O"),
                    AckError("X12_MISSING_SEGMENT", "BEG", 2),
                    AckError("X12_BAD_DATE", "DTP", 3, 3, bad_value="20241399"),
                ],
            ),
            TransactionAck(
                "837", "0004", accepted=True, errors=[AckError("X12_DUPLICATE_CONTROL")]
            ),
        ],
        declared_count=5,
        errors=["X12_GE_COUNT"],
    )


def test_997_validates_against_pyx12_997_map():
    text = build_997(ack_of(_hipaa_group("004010X098A1")), control_numbers=cn(), now=NOW)
    assert map_errors(text) == []


def test_999_validates_against_pyx12_999_map():
    ack = ack_of(
        _hipaa_group("005010X222A1"), separators=X12Separators(repetition="|", line_ending="\r\n")
    )
    text = build_999(ack, control_numbers=cn(), now=NOW)
    assert map_errors(text) == []


# -- 855 -------------------------------------------------------------------------------------


def test_855_structure():
    text = case_855_accepted_with_changes()
    sep = X12Separators(component=">", line_ending="\n")
    segs = {s[0]: s for s in segments(text, sep)}
    assert segs["GS"][1] == "PR" and segs["GS"][8] == "004010"
    assert segs["BAK"] == [
        "BAK",
        "00",
        "AC",
        "PO-4010-1",
        "20240115",
        "R2",
        "",
        "",
        "SO-77",
        "20240116",
    ]
    body = [s for s in segments(text, sep) if s[0] in ("PO1", "ACK", "CTT")]
    assert body == [
        ["PO1", "1", "10", "EA", "3.5", "PE", "VP", "A-1", "UP", "012345678905"],
        ["ACK", "IA", "10", "EA"],
        ["PO1", "2", "5", "CA", "12", "", "VP", "B-2"],
        ["ACK", "IQ", "3", "CA", "068", "20240120"],
        ["PO1", "3", "1", "EA", "1.25", "", "VP", "C-3"],
        ["ACK", "IP", "1", "EA", "067", "20240122"],
        ["CTT", "3", "16"],
    ]


@pytest.mark.parametrize(
    ("decision", "results", "statuses"),
    [
        (PoDecision.ACCEPTED_WITH_DETAIL, (), ["IA", "IA", "IA"]),
        (PoDecision.ACCEPTED, (), ["IA", "IA", "IA"]),
        (PoDecision.ACCEPTED_NO_DETAIL, (), []),
        (PoDecision.REJECTED, (), []),
        (PoDecision.REJECTED_WITH_DETAIL, (), ["IR", "IR", "IR"]),
        (PoDecision.ACCEPTED_EXCEPTIONS_ONLY, CHANGES, ["IQ", "IP"]),
        (
            PoDecision.REJECTED_EXCEPTIONS_ONLY,
            (LineResult(), LineResult(LineStatus.REJECTED), LineResult(LineStatus.DELETED)),
            ["IR", "ID"],
        ),
        (
            PoDecision.ACCEPTED_WITH_CHANGES,
            (LineResult(), LineResult(LineStatus.BACKORDERED, quantity=D("2")), LineResult()),
            ["IA", "IB", "IA"],
        ),
    ],
)
def test_855_decisions(decision: PoDecision, results: tuple[LineResult, ...], statuses: list[str]):
    text = build_855(order(), decision, results, control_numbers=cn(), now=NOW)
    assert seg_of(text, "BAK")[0][2] == decision.value
    assert [s[1] for s in seg_of(text, "ACK")] == statuses
    assert len(seg_of(text, "PO1")) == len(statuses)
    # CTT01 counts the PO1 segments listed; CTT02 is the hash total of their PO102.
    listed = seg_of(text, "PO1")
    expected_ctt = [["CTT", str(len(listed)), str(sum(int(s[2]) for s in listed))]]
    assert seg_of(text, "CTT") == (expected_ctt if statuses else [])
    read_back(text)
    check_counts(text)


def test_855_refusals_and_5010():
    with pytest.raises(AckValueError, match="pair them by position"):
        build_855(order(), "AC", [LineResult()], control_numbers=cn(), now=NOW)
    with pytest.raises(AckValueError, match="use AC"):
        build_855(order(), "AD", CHANGES, control_numbers=cn(), now=NOW)
    with pytest.raises(ValueError):
        build_855(order(), "XX", control_numbers=cn(), now=NOW)
    no_source = order().model_copy(update={"source": Source()})
    with pytest.raises(AckValueError):
        build_855(no_source, "AD", control_numbers=cn(), now=NOW)
    o5010 = order().model_copy(
        update={"source": order().source.model_copy(update={"version": "005010"})}
    )
    text = build_855(o5010, "AD", control_numbers=cn(), now=NOW)
    assert segments(text)[0][11:13] == ["^", "00501"]
    assert seg_of(text, "GS")[0][8] == "005010"
    read_back(text)


def test_decision_from_lines():
    assert PoDecision.from_lines([LineResult(), LineResult()]) is PoDecision.ACCEPTED_WITH_DETAIL
    assert (
        PoDecision.from_lines([LineResult(LineStatus.REJECTED), LineResult(LineStatus.DELETED)])
        is PoDecision.REJECTED_WITH_DETAIL
    )
    assert PoDecision.from_lines(CHANGES) is PoDecision.ACCEPTED_WITH_CHANGES


def test_855_from_a_mapped_order():
    (doc,) = [
        e
        for e in parse_x12((X12_FIXTURES / "clean_4010_850.edi").read_bytes())
        if isinstance(e, Document)
    ]
    mapped = map_850(doc)
    mapped = mapped.model_copy(
        update={
            "source": Source(
                sender_id=doc.envelope.sender_id,
                sender_qualifier=doc.envelope.sender_qualifier,
                receiver_id=doc.envelope.receiver_id,
                receiver_qualifier=doc.envelope.receiver_qualifier,
                version=doc.envelope.version,
                test_indicator=doc.envelope.test_indicator,
            )
        }
    )
    sep = read_isa((X12_FIXTURES / "clean_4010_850.edi").read_bytes()).separators
    text = build_855(mapped, "AD", control_numbers=cn(), now=NOW, separators=sep)
    assert len(seg_of_sep(text, sep, "PO1")) == len(mapped.lines)
    read_back(text)


def seg_of_sep(text: str, sep: X12Separators, sid: str) -> list[list[str]]:
    return [s for s in segments(text, sep) if s[0] == sid]


# -- separators and values -------------------------------------------------------------------

SEPARATORS = [
    X12Separators(),
    X12Separators(element="|", component="^", segment="\n"),
    X12Separators(element="!", component=">", segment="'", repetition="{", line_ending="\r\n"),
    X12Separators(element="\x1d", component="\x1f", segment="\x1c"),
]


@pytest.mark.parametrize("sep", SEPARATORS, ids=range(len(SEPARATORS)))
def test_separators_follow_the_inbound(sep: X12Separators):
    group = GroupAck(
        "PO",
        "1",
        "004010",
        [tx("0001", AckError("X12_BAD_NUMBER", "PO1", 3, 2, 1, bad_value="1,5"))],
    )
    for text in (
        build_997(ack_of(group, separators=sep), control_numbers=cn(), now=NOW),
        build_999(ack_of(group, separators=sep), control_numbers=cn(), now=NOW),
        build_ta1(ack_of(separators=sep), control_numbers=cn(), now=NOW),
        build_855(order(), "AC", CHANGES, separators=sep, control_numbers=cn(), now=NOW),
    ):
        header = read_isa(text)
        assert (
            header.separators.element,
            header.separators.component,
            header.separators.segment,
        ) == (
            sep.element,
            sep.component,
            sep.segment,
        )
        read_back(text)
        check_counts(text, sep)


# Values from the whole of Unicode, with separators and control characters made likely.
VALUES = st.text(
    alphabet=st.one_of(st.sampled_from("*:~^|>\n\r\t\x1d\x00 -.'?+"), st.characters(codec="utf-8")),
    max_size=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(po_number=VALUES, name=VALUES, sku=VALUES, sep=st.sampled_from(SEPARATORS[:3]))
def test_values_are_refused_or_read_back_unchanged(
    po_number: str, name: str, sku: str, sep: X12Separators
):
    o = order().model_copy(
        update={
            "po_number": po_number,
            "buyer": Party(name=name, code="1", code_qualifier="92"),
            "lines": [
                OrderLine(
                    line_number="1",
                    quantity=D("1"),
                    uom="EA",
                    item_ids=[ItemId(qualifier="VP", value=sku)],
                )
            ],
        }
    )
    try:
        text = build_855(o, "AD", control_numbers=cn(), now=NOW, separators=sep)
    except AckValueError:
        event("refused")
        forbidden = {sep.element, sep.component, sep.segment}
        assert any(c in forbidden or c < " " or c == "\x7f" for c in po_number + name + sku)
        return
    got = {(s.get_seg_id(), s.get_value("01")): s for s in read_back(text)}
    assert got[("BAK", "00")].get_value("BAK03") == po_number
    assert got[("N1", "BY")].get_value("N102") == name
    expected_sku = sku if sku else None
    assert (got[("PO1", "1")].get_value("PO107") or None) == expected_sku


@settings(max_examples=200, deadline=None)
@given(value=VALUES)
def test_bad_value_copies_are_left_out_not_altered(value: str):
    group = GroupAck(
        "PO", "1", "004010", [tx("0001", AckError("X12_INVALID_CODE", "N1", 2, 1, bad_value=value))]
    )
    text = build_997(ack_of(group), control_numbers=cn(), now=NOW)
    (ak4,) = [s for s in read_back(text) if s.get_seg_id() == "AK4"]
    copy = ak4.get_value("AK404")
    assert copy in (value, None, "")
    if copy:
        assert copy == value


# -- public surface ----------------------------------------------------------------------------


def test_exported_members():
    assert sorted(acks.__all__) == sorted(
        [
            "BUSINESS_REASONS",
            "EDIFACT_ACK_CODES",
            "GROUP",
            "INTERCHANGE",
            "X12_ACK_CODES",
            "AckError",
            "AckValueError",
            "ControlNumbers",
            "EdifactAckCode",
            "EdifactHeader",
            "EdifactSeparators",
            "EnvelopeReasons",
            "GroupAck",
            "InMemoryControlNumbers",
            "InterchangeAck",
            "IsaHeader",
            "LineResult",
            "LineStatus",
            "PoDecision",
            "TransactionAck",
            "X12AckCode",
            "X12Separators",
            "build_855",
            "build_997",
            "build_999",
            "build_contrl",
            "build_ordrsp",
            "build_ta1",
            "edifact_ack_code",
            "edifact_interchange_reasons",
            "interchange_reasons",
            "is_business_reason",
            "partner_key",
            "read_edifact_header",
            "read_isa",
            "x12_ack_code",
            "x12_ack_error",
        ]
    )
    for name in acks.__all__:
        assert getattr(acks, name) is not None


def test_control_numbers_are_per_partner_and_kind():
    numbers = InMemoryControlNumbers()
    assert [
        numbers.next("a", "interchange"),
        numbers.next("a", "interchange"),
        numbers.next("b", "interchange"),
        numbers.next("a", "group"),
    ] == [1, 2, 1, 1]


def test_x12_ack_code_fallbacks():
    assert x12_ack_code("VALIDATION:anything").level == "business"
    assert x12_ack_code("NEVER_SEEN").code == "5"
    assert x12_ack_code("X12_DUPLICATE_GROUP").code_for(True) == "19"


def _events(name: str) -> Iterator[Any]:
    yield from parse_x12((X12_FIXTURES / name).read_bytes())


def test_end_to_end_from_parser_events():
    """The way the pipeline will use it: events in, a 997 out that pyx12 reads."""
    raw = (X12_FIXTURES / "envelope_errors.edi").read_bytes()
    header = read_isa(raw)
    groups: dict[str | None, list[TransactionAck]] = {}
    versions: dict[str | None, str | None] = {}
    opened = closed = None
    for ev in parse_x12(raw):
        if isinstance(ev, InterchangeOpened):
            opened = ev
        elif isinstance(ev, Document):
            groups.setdefault(ev.envelope.group_control_number, []).append(
                TransactionAck(ev.doc_type, ev.control_number)
            )
            versions[ev.envelope.group_control_number] = ev.envelope.version
        elif isinstance(ev, DocumentRejected):
            error = x12_ack_error(ev.reason, ev.message, ev.position)
            groups.setdefault(ev.envelope.group_control_number, []).append(
                TransactionAck(ev.doc_type or "", ev.control_number, accepted=False, errors=[error])
            )
        elif isinstance(ev, InterchangeClosed):
            closed = ev
    assert opened is not None and closed is not None
    reasons = interchange_reasons(closed.errors)
    ack = InterchangeAck(
        opened.envelope,
        [
            GroupAck("PO", g, versions.get(g), txs, errors=reasons.groups.get(g or "", []))
            for g, txs in groups.items()
        ],
        errors=reasons.interchange,
        separators=header.separators,
        interchange_date=header.date,
        interchange_time=header.time,
    )
    text = build_997(ack, control_numbers=cn(), now=NOW, with_ta1=True)
    read_back(text)
    assert seg_of_sep(text, header.separators, "TA1")[0][4:] == ["E", "001"]
    assert [s[1:] for s in seg_of_sep(text, header.separators, "AK5")] == [
        ["A"],
        ["R", "23"],
        ["R", "3"],
        ["R", "5"],
        ["A"],
    ]
    assert seg_of_sep(text, header.separators, "AK9") == [["AK9", "P", "5", "5", "2", "5"]]
