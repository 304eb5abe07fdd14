"""EDIFACT acknowledgements: CONTRL and ORDRSP (gateway.acks.edifact).

Golden files under tests/fixtures/acks/ are compared segment by segment with the clock and
control numbers injected. Every acknowledgement is read back with pydifact
(`Interchange.from_str`), and the UNT and UNZ counts are counted here, since pydifact does
not check them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydifact.control.characters import Characters
from pydifact.parser import Parser
from pydifact.segmentcollection import Interchange

from gateway.acks import (
    EDIFACT_ACK_CODES,
    AckError,
    AckValueError,
    EdifactSeparators,
    GroupAck,
    InMemoryControlNumbers,
    InterchangeAck,
    LineResult,
    LineStatus,
    PoDecision,
    TransactionAck,
    build_contrl,
    build_ordrsp,
    edifact_ack_code,
    edifact_interchange_reasons,
    read_edifact_header,
)
from gateway.formats.base import Envelope
from gateway.model import Order, OrderLine, Party, Source

pytestmark = pytest.mark.filterwarnings(
    # pydifact's wheel has no directories: reading emits this for every service segment.
    "ignore::pydifact.exceptions.MissingImplementationWarning"
)

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "fixtures" / "acks"
NOW = dt.datetime(2024, 1, 16, 8, 30, tzinfo=dt.UTC)
D = Decimal

INBOUND = Envelope(
    standard="edifact",
    sender_id="5412345000013",
    sender_qualifier="14",
    receiver_id="4012345000009",
    receiver_qualifier="14",
    interchange_control_number="IC0042",
)
ORDERS = ("D", "96A", "UN", "EAN008")


# -- helpers ---------------------------------------------------------------------------------


def raw_segments(text: str) -> list[tuple[str, list[Any]]]:
    """(tag, elements) of every segment, UNA/UNB/UNZ included, as pydifact reads them."""
    return [(s.tag, s.elements) for s in Parser().parse(text)]


def read_back(text: str) -> Interchange:
    """Read with pydifact; check UNT and UNZ counts and references by counting here."""
    interchange = Interchange.from_str(text)
    segs = [s for s in raw_segments(text) if s[0] != "UNA"]
    assert segs[0][0] == "UNB" and segs[-1][0] == "UNZ"
    messages = 0
    start = 0
    for i, (tag, elements) in enumerate(segs):
        if tag == "UNH":
            messages += 1
            start = i
            reference = elements[0]
        elif tag == "UNT":
            assert int(elements[0]) == i - start + 1
            assert elements[1] == reference
    unz = segs[-1][1]
    assert int(unz[0]) == messages
    assert unz[1] == segs[0][1][4]
    assert len(list(interchange.get_messages())) == messages
    return interchange


def golden(name: str, text: str) -> None:
    got = raw_segments(text)
    want = raw_segments((GOLDEN / name).read_text())
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        assert g == w, f"segment {i + 1}: {g} != {w}"
    assert len(got) == len(want)


def body(text: str, *tags: str) -> list[tuple[str, list[Any]]]:
    return [s for s in raw_segments(text) if not tags or s[0] in tags]


def cn() -> InMemoryControlNumbers:
    return InMemoryControlNumbers(start=7)


def msg(reference: str, *errors: AckError, accepted: bool | None = None) -> TransactionAck:
    return TransactionAck(
        "ORDERS",
        reference,
        accepted=not errors if accepted is None else accepted,
        errors=errors,
        message_version=ORDERS,
    )


def ack_of(*groups: GroupAck, errors: tuple[str, ...] = (), **kw: Any) -> InterchangeAck:
    kw.setdefault("syntax_identifier", "UNOC")
    kw.setdefault("syntax_version", "3")
    return InterchangeAck(INBOUND, groups, errors=errors, **kw)


def lone(*messages: TransactionAck) -> GroupAck:
    return GroupAck("", None, transactions=messages)


def order(**update: Any) -> Order:
    o = Order(
        po_number="PO-77",
        order_date=dt.date(2024, 1, 15),
        channel="edifact",
        currency="EUR",
        buyer=Party(name="Buyer GmbH", code="5412345000013", code_qualifier="9"),
        seller=Party(name="Seller AG", code="4012345000009", code_qualifier="9"),
        lines=[
            OrderLine(
                line_number="1",
                quantity=D("10"),
                uom="PCE",
                unit_price=D("3.50"),
                gtin="4000862141404",
                sku="A-1",
            ),
            OrderLine(
                line_number="2",
                quantity=D("2.5"),
                uom="KGM",
                unit_price=D("12.00"),
                buyer_part_number="BP-2",
            ),
        ],
        source=Source(
            sender_id="5412345000013",
            sender_qualifier="14",
            receiver_id="4012345000009",
            receiver_qualifier="14",
            interchange_control_number="IC0042",
        ),
    )
    return o.model_copy(update=update)


# -- golden cases ----------------------------------------------------------------------------


def case_contrl_rejected() -> str:
    messages = lone(
        msg("M1"),
        msg("M2", AckError("EDIFACT_UNT_COUNT")),
        msg(
            "M3",
            AckError("EDIFACT_BAD_NUMBER", "QTY", 6, 1, 2),
            AckError("EDIFACT_SEGMENT", "XYZ", 9),
        ),
        msg("M4", AckError("EDIFACT_CNT_COUNT"), accepted=False),
    )
    return build_contrl(ack_of(messages, has_una=True), control_numbers=cn(), now=NOW)


def case_ordrsp_accepted() -> str:
    return build_ordrsp(
        order(), PoDecision.ACCEPTED_WITH_DETAIL, control_numbers=cn(), now=NOW, una=True
    )


CASES: dict[str, Callable[[], str]] = {
    "contrl_rejected.edi": case_contrl_rejected,
    "ordrsp_accepted.edi": case_ordrsp_accepted,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str):
    golden(name, CASES[name]())


@pytest.mark.parametrize("name", sorted(CASES))
def test_reads_back_with_pydifact(name: str):
    read_back(CASES[name]())


def test_contrl_in_detail():
    text = case_contrl_rejected()
    assert text.startswith("UNA:+.? '")
    segs = body(text)
    unb = segs[1][1]
    assert unb[:5] == [
        ["UNOC", "3"],
        ["4012345000009", "14"],
        ["5412345000013", "14"],
        ["240116", "0830"],
        "7",
    ]
    assert body(text, "UNH")[0][1] == ["1", ["CONTRL", "D", "3", "UN"]]
    assert body(text, "UCI", "UCM", "UCS", "UCD") == [
        ("UCI", ["IC0042", ["5412345000013", "14"], ["4012345000009", "14"], "7"]),
        ("UCM", ["M1", ["ORDERS", "D", "96A", "UN", "EAN008"], "7"]),
        ("UCM", ["M2", ["ORDERS", "D", "96A", "UN", "EAN008"], "4", "29", "UNT", "2"]),
        ("UCM", ["M3", ["ORDERS", "D", "96A", "UN", "EAN008"], "4"]),
        ("UCS", ["6"]),
        ("UCD", ["12", ["2", "2"]]),
        ("UCS", ["9", "15"]),
        (
            "UCM",
            ["M4", ["ORDERS", "D", "96A", "UN", "EAN008"], "7"],
        ),  # business: the ORDRSP says it
    ]


# -- CONTRL rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("errors", "uci", "ucm"),
    [
        ((), ["7"], 1),
        (("EDIFACT_DUPLICATE_INTERCHANGE",), ["4", "26", "UNB", "6"], 0),
        (("CONTROL_NUMBER_REUSED",), ["4", "26", "UNB", "6"], 0),
        (("EDIFACT_UNZ_COUNT",), ["7", "29", "UNZ", "2"], 1),
        (("EDIFACT_UNZ_COUNT", "EDIFACT_UNZ_MISSING"), ["4", "13", "UNZ"], 0),
        (("EDIFACT_INTERCHANGE_MISMATCH",), ["7", "28", "UNZ", "3"], 1),
        (("EDIFACT_CNT_COUNT", "VALIDATION:no_lines"), ["7"], 1),
    ],
)
def test_uci_action_and_error(errors: tuple[str, ...], uci: list[str], ucm: int):
    text = build_contrl(ack_of(lone(msg("M1")), errors=errors), control_numbers=cn(), now=NOW)
    assert body(text, "UCI")[0][1][3:] == uci
    assert len(body(text, "UCM")) == ucm
    read_back(text)


def test_receipt_only():
    text = build_contrl(
        ack_of(lone(msg("M1", AckError("EDIFACT_UNT_COUNT")))),
        control_numbers=cn(),
        now=NOW,
        receipt_only=True,
    )
    assert body(text, "UCI")[0][1][3:] == ["8"]
    assert body(text, "UCM") == []


def test_message_actions():
    messages = lone(
        msg("A", AckError("EDIFACT_UNT_REF"), accepted=True),  # accepted anyway: 7, error noted
        msg("B", AckError("EDIFACT_DUPLICATE_REF")),
        msg("C", AckError("EDIFACT_MISSING_SEGMENT")),  # no position: the code moves to UCM
        msg("D", AckError("SOMETHING_NEW")),
        msg("E", AckError("MISSING_PO_NUMBER")),  # BGM 1004: UCS 2, UCD 13 3:1
        TransactionAck(
            "ORDERS", "F", accepted=False, errors=[AckError("EDIFACT_SYNTAX")], ack_code="A"
        ),
        TransactionAck("ORDERS", None, accepted=False, errors=[AckError("EDIFACT_TRUNCATED")]),
    )
    text = build_contrl(ack_of(messages), control_numbers=cn(), now=NOW)
    assert [
        (t, e[0], e[2:]) if t == "UCM" else (t, e) for t, e in body(text, "UCM", "UCS", "UCD")
    ] == [
        ("UCM", "A", ["7", "28", "UNT", "3"]),
        ("UCM", "B", ["4", "26", "UNH", "2"]),
        ("UCM", "C", ["4", "13"]),
        ("UCM", "D", ["4", "18"]),
        ("UCM", "E", ["4"]),
        ("UCS", ["2"]),
        ("UCD", ["13", ["3", "1"]]),
        ("UCM", "F", ["7", "18"]),
    ]
    read_back(text)


def test_groups_get_ucf():
    groups = (
        GroupAck(
            "ORDERS",
            "G1",
            transactions=[msg("M1")],
            application_sender="BUYDEPT",
            application_receiver="SALES",
        ),
        GroupAck(
            "ORDERS",
            "G2",
            transactions=[msg("M2")],
            errors=["EDIFACT_UNE_COUNT"],
            application_sender="BUYDEPT",
            application_receiver="SALES",
        ),
        GroupAck(
            "ORDERS",
            "G3",
            transactions=[msg("M3")],
            errors=["EDIFACT_GROUP_NOT_SUPPORTED"],
            application_sender="BUYDEPT",
            application_receiver="SALES",
        ),
    )
    text = build_contrl(ack_of(*groups), control_numbers=cn(), now=NOW)
    assert [(t, e[0], e[3:]) if t == "UCF" else (t, e[0]) for t, e in body(text, "UCF", "UCM")] == [
        ("UCF", "G1", ["7"]),
        ("UCM", "M1"),
        ("UCF", "G2", ["7", "29", "UNE", "2"]),
        ("UCM", "M2"),
        ("UCF", "G3", ["4", "17", "UNG", "2"]),
    ]
    read_back(text)
    with pytest.raises(AckValueError, match="either"):
        build_contrl(ack_of(groups[0], lone(msg("M9"))), control_numbers=cn(), now=NOW)
    with pytest.raises(AckValueError, match="UNG sender"):
        build_contrl(
            ack_of(GroupAck("ORDERS", "G1", transactions=[msg("M1")])),
            control_numbers=cn(),
            now=NOW,
        )


def test_syntax_4_and_una_rules():
    text = build_contrl(
        ack_of(lone(msg("M1")), syntax_version="4", syntax_identifier="UNOY"),
        control_numbers=cn(),
        now=NOW,
    )
    assert not text.startswith("UNA")  # the syntax 4 defaults, no inbound UNA
    unb = body(text, "UNB")[0][1]
    assert unb[0] == ["UNOY", "4"] and unb[3] == ["20240116", "0830"]
    assert body(text, "UNH")[0][1][1] == ["CONTRL", "4", "1", "UN"]
    text = build_contrl(ack_of(lone(msg("M1"))), control_numbers=cn(), now=NOW)
    assert not text.startswith("UNA")
    custom = EdifactSeparators(
        component="|", element="*", decimal=",", release="#", segment="~", line_ending="\n"
    )
    text = build_contrl(ack_of(lone(msg("M1")), separators=custom), control_numbers=cn(), now=NOW)
    assert text.startswith("UNA|*,# ~\nUNB*UNOC|3*")
    read_back(text)


def test_test_indicator_and_refusals():
    env = dataclasses.replace(INBOUND, test_indicator="1")
    text = build_contrl(InterchangeAck(env, [lone(msg("M1"))]), control_numbers=cn(), now=NOW)
    assert body(text, "UNB")[0][1][5:] == ["", "", "", "", "", "1"]
    with pytest.raises(AckValueError):
        build_contrl(
            InterchangeAck(dataclasses.replace(INBOUND, standard="x12"), [lone()]),
            control_numbers=cn(),
            now=NOW,
        )
    with pytest.raises(AckValueError, match="0020"):
        build_contrl(
            InterchangeAck(dataclasses.replace(INBOUND, interchange_control_number=None)),
            control_numbers=cn(),
            now=NOW,
        )
    with pytest.raises(AckValueError, match="0020"):
        build_contrl(
            ack_of(lone(msg("M1"))), control_numbers=InMemoryControlNumbers(start=10**14), now=NOW
        )
    with pytest.raises(AckValueError):
        EdifactSeparators(component="+")
    with pytest.raises(AckValueError):
        EdifactSeparators(decimal=";")


def test_every_message_reason_of_the_reader_has_an_entry():
    import gateway.formats.edifact as reader

    section = (reader.__doc__ or "").split("Reason codes", 1)[1]
    reasons = {r for r in section.split() if r.startswith("EDIFACT_") and r.isupper()}
    assert {"EDIFACT_UNT_COUNT", "EDIFACT_UNT_REF", "EDIFACT_TRUNCATED"} <= reasons
    assert sorted(r for r in reasons if r not in EDIFACT_ACK_CODES) == []
    assert edifact_ack_code("NEVER_SEEN").code == "18"
    assert edifact_ack_code("VALIDATION:x").level == "business"


def test_interchange_reasons_from_the_reader():
    from gateway.formats.base import InterchangeClosed
    from gateway.formats.edifact import parse_edifact

    text = (
        "UNA:+.? 'UNB+UNOC:3+BUYER:14+SELLER:14+240115:1200+IC1'"
        "UNH+M1+ORDERS:D:96A:UN'BGM+220+PO1+9'UNT+3+M1'UNZ+5+IC2'"
    )
    (closed,) = [e for e in parse_edifact(text.encode()) if isinstance(e, InterchangeClosed)]
    r = edifact_interchange_reasons(closed.errors)
    assert r.interchange == ["EDIFACT_UNZ_COUNT", "EDIFACT_INTERCHANGE_MISMATCH"]
    assert r.unclassified == []
    r = edifact_interchange_reasons(
        [
            "the interchange has no UNZ trailer: the file may be cut off, so messages may be missing",
            "UNB 0020 IC1 from this sender repeats an earlier interchange in the same file",
            "the group G7 opened at segment 3 (line 1) has no UNE",
            "UNE 0048 'G8' at segment 9 (line 1) does not match UNG 0048 'G7'",
            "something else",
        ]
    )
    assert r.interchange == ["EDIFACT_UNZ_MISSING", "EDIFACT_DUPLICATE_INTERCHANGE"]
    assert r.groups == {"G7": ["EDIFACT_UNE_MISSING", "EDIFACT_GROUP_MISMATCH"]}
    assert r.unclassified == ["something else"]


# -- reading the inbound UNA/UNB -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("UNA:+.? 'UNB+UNOC:3+A+B+240101:1200+1'", (":+.? '", True, "UNOC", "3", "")),
        ("\ufeffUNA:+,?*'\r\nUNB+UNOY:4+A+B", (":+,?*'", True, "UNOY", "4", "\r\n")),
        ("UNB+UNOA:2+A+B+240101:1200+1'\nUNH", (":+.? '", False, "UNOA", "2", "\n")),
        ("UNA|*.# ~UNB*UNOB|3*A*B", ("|*.# ~", True, "UNOB", "3", "")),
    ],
)
def test_read_edifact_header(text: str, expected: tuple[Any, ...]):
    h = read_edifact_header(text.encode("utf-8"))
    s = h.separators
    assert (s.una[3:], h.has_una, h.syntax_identifier, h.syntax_version, s.line_ending) == expected


@pytest.mark.parametrize("text", ["", "UNA:+", "ISA*00", "UNB+UNOC", "UNB+X+A"])
def test_read_edifact_header_refuses(text: str):
    with pytest.raises(AckValueError):
        read_edifact_header(text)


# -- ORDRSP ----------------------------------------------------------------------------------


def test_ordrsp_accepted_in_detail():
    text = case_ordrsp_accepted()
    assert text.startswith("UNA:+.? '")
    assert body(text, "UNH")[0][1] == ["1", ["ORDRSP", "D", "96A", "UN"]]
    segs = [s for s in body(text) if s[0] not in ("UNA", "UNB", "UNH", "UNT", "UNZ")]
    assert segs == [
        ("BGM", ["231", "PO-77", "29"]),
        ("DTM", [["137", "20240116", "102"]]),
        ("RFF", [["ON", "PO-77"]]),
        ("DTM", [["171", "20240115", "102"]]),
        ("NAD", ["BY", ["5412345000013", "", "9"]]),
        ("NAD", ["SU", ["4012345000009", "", "9"]]),
        ("CUX", [["2", "EUR", "9"]]),
        ("LIN", ["1", "5", ["4000862141404", "EN"]]),
        ("PIA", ["1", ["A-1", "SA"]]),
        ("QTY", [["21", "10", "PCE"]]),
        ("PRI", [["AAA", "3.5"]]),
        ("LIN", ["2", "5"]),
        ("PIA", ["1", ["BP-2", "IN"]]),
        ("QTY", [["21", "2.5", "KGM"]]),
        ("PRI", [["AAA", "12"]]),
        ("UNS", ["S"]),
        ("CNT", [["2", "2"]]),
    ]


def test_ordrsp_changes_and_rejection():
    results = [
        LineResult(
            LineStatus.BACKORDERED, quantity=D("4"), date=dt.date(2024, 2, 1), date_kind="delivery"
        ),
        LineResult(
            LineStatus.QUANTITY_CHANGED,
            quantity=D("2"),
            unit_price=D("11.5"),
            date=dt.date(2024, 1, 20),
        ),
    ]
    comma = EdifactSeparators(decimal=",")
    text = build_ordrsp(
        order(),
        PoDecision.from_lines(results),
        results,
        control_numbers=cn(),
        now=NOW,
        separators=comma,
    )
    assert text.startswith("UNA:+,? '")
    assert body(text, "BGM")[0][1] == ["231", "PO-77", "4"]
    lines = [
        s
        for s in body(text, "LIN", "QTY", "DTM", "PRI")
        if s[0] != "DTM" or s[1][0][0] in ("11", "69")
    ]
    assert lines == [
        ("LIN", ["1", "3", ["4000862141404", "EN"]]),
        ("QTY", [["21", "10", "PCE"]]),
        ("QTY", [["83", "4", "PCE"]]),
        ("DTM", [["69", "20240201", "102"]]),
        ("PRI", [["AAA", "3,5"]]),
        ("LIN", ["2", "3"]),
        ("QTY", [["21", "2,5", "KGM"]]),
        ("QTY", [["113", "2", "KGM"]]),
        ("DTM", [["11", "20240120", "102"]]),
        ("PRI", [["AAA", "11,5"]]),
    ]
    read_back(text)
    text = build_ordrsp(order(), PoDecision.REJECTED, control_numbers=cn(), now=NOW)
    assert body(text, "BGM")[0][1] == ["231", "PO-77", "27"]
    assert body(text, "LIN") == [] and body(text, "CNT")[0][1] == [["2", "0"]]
    refused = [LineResult(), LineResult(LineStatus.REJECTED)]
    text = build_ordrsp(
        order(), PoDecision.ACCEPTED_EXCEPTIONS_ONLY, refused, control_numbers=cn(), now=NOW
    )
    assert [s[1][:2] for s in body(text, "LIN")] == [["2", "7"]]
    with pytest.raises(AckValueError, match="use AC"):
        build_ordrsp(order(), "AD", results, control_numbers=cn(), now=NOW)
    with pytest.raises(AckValueError, match="pair them"):
        build_ordrsp(order(), "AC", results[:1], control_numbers=cn(), now=NOW)


def test_ordrsp_envelope_and_parties():
    x12_order = order(
        channel="x12",
        buyer=Party(name="Buyer", code="0042", code_qualifier="92"),
        seller=Party(name="A " * 40),
    )
    text = build_ordrsp(
        x12_order,
        "AD",
        control_numbers=cn(),
        now=NOW,
        syntax_identifier="UNOB",
        message_version=("D", "01B", "UN", "EAN010"),
    )
    nads = body(text, "NAD")
    assert nads[0] == ("NAD", ["BY", ["0042", "", "92"]])
    assert nads[1][1][0] == "SU" and "".join(nads[1][1][3]) == ("A " * 40)[:175]
    assert body(text, "UNB")[0][1][:3] == [
        ["UNOB", "3"],
        ["4012345000009", "14"],
        ["5412345000013", "14"],
    ]
    assert body(text, "UNH")[0][1][1] == ["ORDRSP", "D", "01B", "UN", "EAN010"]
    read_back(text)
    with pytest.raises(AckValueError, match="not in UNOB"):
        build_ordrsp(
            order(po_number="Bestellung Nr. 5 für Müller"),
            "AD",
            control_numbers=cn(),
            now=NOW,
            syntax_identifier="UNOB",
        )
    with pytest.raises(AckValueError, match="not in UNOA"):
        build_ordrsp(
            order(po_number="po-5"), "AD", control_numbers=cn(), now=NOW, syntax_identifier="UNOA"
        )
    with pytest.raises(AckValueError, match="UNOC"):
        build_ordrsp(order(po_number="Заказ"), "AD", control_numbers=cn(), now=NOW)
    with pytest.raises(AckValueError, match="sender and recipient"):
        build_ordrsp(order(source=Source()), "AD", control_numbers=cn(), now=NOW)


# -- escaping: the property ------------------------------------------------------------------

SEPARATORS = [
    EdifactSeparators(),
    EdifactSeparators(repetition="*"),
    EdifactSeparators(
        component="|", element="*", decimal=",", release="#", segment="~", line_ending="\r\n"
    ),
]
VALUES = st.text(
    alphabet=st.one_of(st.sampled_from("+:'?*|#~ \n\x00.,"), st.characters(codec="utf-8")),
    max_size=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    po_number=VALUES,
    name=VALUES,
    sku=VALUES,
    sep=st.sampled_from(SEPARATORS),
    syntax=st.sampled_from(["UNOC", "UNOY"]),
)
def test_values_are_escaped_or_refused(
    po_number: str, name: str, sku: str, sep: EdifactSeparators, syntax: str
):
    o = order(
        po_number=po_number,
        buyer=Party(name=name),
        lines=[OrderLine(line_number="1", quantity=D("1"), uom="PCE", sku=sku)],
    )
    version = "4" if sep.repetition != " " else "3"
    try:
        text = build_ordrsp(
            o,
            "AD",
            control_numbers=cn(),
            now=NOW,
            separators=sep,
            syntax_identifier=syntax,
            syntax_version=version,
        )
    except AckValueError:
        event("refused")
        values = po_number + name + sku
        assert any(c < " " or c == "\x7f" for c in values) or (
            syntax == "UNOC" and any(ord(c) > 0xFF for c in values)
        )
        return
    chars = Characters.from_str(sep.una)
    interchange = Interchange.from_str(text, characters=chars)
    (message,) = interchange.get_messages()
    segs = [(s.tag, s.elements) for s in message.segments]
    bgm = next(e for t, e in segs if t == "BGM")
    rff = next(e for t, e in segs if t == "RFF")
    assert bgm[1] == po_number
    assert components(rff[0]) == ["ON", po_number] if po_number else components(rff[0]) == ["ON"]
    if name:
        nad = next(e for t, e in segs if t == "NAD" and e[0] == "BY")
        assert "".join(components(nad[3])) == name
    if sku:
        pia = next(e for t, e in segs if t == "PIA")
        assert components(pia[1]) == [sku, "SA"]
    read_back(text)


def components(element: Any) -> list[str]:
    return element if isinstance(element, list) else [element]
