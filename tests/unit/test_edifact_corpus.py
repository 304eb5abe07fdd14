"""The shared corpus of real EDIFACT (and TRADACOMS) files, read in place, never copied.

Every file either yields events or raises ParseError, in bounded time; every ORDERS file
(not the TRADACOMS ones) maps to at least one order with a PO number, except those that are
broken, on purpose (see /work/shared/corpus/PROVENANCE.md) or otherwise: the expectations
below name each one and the clear reason it must get instead.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.errors import MappingError, ParseError
from gateway.formats.base import (
    Document,
    DocumentRejected,
    Event,
    InterchangeClosed,
    InterchangeOpened,
)
from gateway.formats.edifact import EdifactParser, parse_edifact
from gateway.mapping.edifact_orders import map_orders
from tests.conftest import CORPUS, corpus_dir

NAMES = (
    sorted(p.name for p in (CORPUS / "edifact").iterdir()) if (CORPUS / "edifact").is_dir() else []
)
ORDER_NAMES = [n for n in NAMES if "ORDERS" in n and "TRADACOMS" not in n]
SECONDS_PER_FILE = 5.0

# Files that cannot be read at all, with the ParseError reason they must get.
EXPECTED_PARSE_ERRORS = {
    # PROVENANCE: MALFORMED, a stray 'UNB+++++4' before the real UNB: no syntax identifier.
    "edinet__APERAK_double_UNB.edi": "EDIFACT_UNB",
    # PROVENANCE: UNB says UNOC but 'Ë' is UTF-8 (C3 8B; 0x8B is no Latin-1 character).
    "php-edifact__DESADV_D96A_utf8.edi": "EDIFACT_CHARSET",
    # UNB says UNOA (ASCII) but the files hold UTF-8 'Ü' / 'ä': read strictly, refused.
    "staedi__INVOIC_D93A_UNA_comma_decimal.edi": "EDIFACT_CHARSET",
    "staedi__INVOIC_D97B_wrapped80.edi": "EDIFACT_CHARSET",
    # Not EDIFACT: TRADACOMS starts with STX.
    "edinet__TRADACOMS_ORDERS9.edi": "NOT_EDIFACT",
    "staedi__TRADACOMS_ORDHDR.edi": "NOT_EDIFACT",
    "staedi__TRADACOMS_ORDHDR_blocked.edi": "NOT_EDIFACT",
    "staedi__TRADACOMS_wrong_tag_delim.edi": "NOT_EDIFACT",
}

# Messages the parser must reject, by file (the others in the file go on).
EXPECTED_REJECTIONS = {
    # UNT counts and references edited by hand in the samples.
    "edinet__IFTMIN_UNA_comma_decimal.edi": {"EDIFACT_UNT_COUNT", "EDIFACT_DUPLICATE_REF"},
    "edinet__ORDRSP_D10A_formatted.edi": {"EDIFACT_UNT_COUNT"},  # UNT+17 and a wrong ref
    "edinet__ORDRSP_D10A_oneline.edi": {"EDIFACT_UNT_COUNT"},
    "edinet__QUOTES_multi_message.edi": {"EDIFACT_UNT_COUNT", "EDIFACT_DUPLICATE_REF"},
    "php-edifact__release_character.edi": {"EDIFACT_UNT_COUNT"},  # UNT+14, 23 segments
    "pydifact__APERAK_accepted.edi": {"EDIFACT_UNT_COUNT"},  # UNT+8, 7 segments
    "pydifact__APERAK_rejected.edi": {"EDIFACT_UNT_COUNT"},
    # UNT+21 around 18 segments: the one ORDERS of the file cannot be trusted.
    "staedi__ORDERS_EANCOM_with_UNG.edi": {"EDIFACT_UNT_COUNT"},
}

# ORDERS files that do not become an order, and the reason they get instead.
EXPECTED_ORDER_FAILURES = {
    # PROVENANCE: INTENTIONALLY INVALID, an unescaped ':' in IMD free text.
    "php-edifact__ORDERS_D01B_EAN010_error.edi": "EDIFACT_COMPONENTS",
    # Lorem ipsum in every element, numbers and dates included (TAX C243 5278 is text).
    "edireader__ORDERS_D01B_EAN008_UNOE_cyrillic.edi": "EDIFACT_BAD_NUMBER",
    # See EXPECTED_REJECTIONS: the message is rejected before mapping.
    "staedi__ORDERS_EANCOM_with_UNG.edi": "EDIFACT_UNT_COUNT",
}


@pytest.fixture(scope="module")
def corpus() -> Path:
    return corpus_dir("edifact")


def _events(path: Path) -> list[Event]:
    start = time.perf_counter()
    try:
        with path.open("rb") as stream:
            return list(EdifactParser().parse(stream, name=path.name))
    finally:
        assert time.perf_counter() - start < SECONDS_PER_FILE


def test_corpus_is_there(corpus: Path):
    assert len(NAMES) >= 30
    assert len(ORDER_NAMES) >= 6


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", NAMES)
def test_every_file_gives_events_or_a_parse_error(corpus: Path, name: str):
    path = corpus / name
    try:
        events = _events(path)
    except ParseError as exc:
        assert exc.reason == EXPECTED_PARSE_ERRORS.get(name), f"{name}: {exc.reason}: {exc}"
        assert exc.position
        return
    assert name not in EXPECTED_PARSE_ERRORS, f"{name} should not be readable"
    assert isinstance(events[0], InterchangeOpened)
    assert isinstance(events[-1], InterchangeClosed)
    messages = [e for e in events if isinstance(e, Document | DocumentRejected)]
    closed = [e for e in events if isinstance(e, InterchangeClosed)]
    assert len(messages) == sum(c.document_count for c in closed) > 0
    assert [m.index for m in messages] == list(range(len(messages)))
    reasons = {e.reason for e in messages if isinstance(e, DocumentRejected)}
    assert reasons == EXPECTED_REJECTIONS.get(name, set()), [
        e.message for e in messages if isinstance(e, DocumentRejected)
    ]
    for doc in messages:
        assert doc.position.startswith("segment ")


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", ORDER_NAMES)
def test_every_orders_file_maps_to_an_order(corpus: Path, name: str):
    events = _events(corpus / name)
    docs = [e for e in events if isinstance(e, Document) and e.doc_type == "ORDERS"]
    failures = {e.reason for e in events if isinstance(e, DocumentRejected)}
    orders = []
    for doc in docs:
        try:
            trace: dict[str, str] = {}
            orders.append(map_orders(doc, trace=trace))
            assert trace["po_number"].startswith("BGM 1004 (segment 2, line ")
        except MappingError as exc:
            failures.add(exc.reason)
    expected = EXPECTED_ORDER_FAILURES.get(name)
    if expected is not None:
        assert expected in failures and not orders
        return
    assert orders, f"{name}: no order ({failures})"
    for order in orders:
        assert order.po_number
        assert order.lines
        order.model_dump_json()


def test_known_values(corpus: Path):
    (doc,) = [
        e
        for e in parse_edifact(corpus / "pydifact__ORDERS_D96A_EAN008.edi")
        if isinstance(e, Document)
    ]
    order = map_orders(doc)
    assert order.po_number == "801715918011"
    assert [line.gtin for line in order.lines] == ["5020436373085", "5020436373108"]
    (doc,) = [
        e
        for e in parse_edifact(corpus / "pydifact__ORDERS_D96A_noUNA.edi")
        if isinstance(e, Document)
    ]
    order = map_orders(doc)
    assert order.lines[0].unit_price is not None and str(order.lines[0].unit_price) == "25.00"
    (doc,) = [
        e
        for e in parse_edifact(corpus / "php-edifact__ORDERS_D01B_EAN010_ok.edi")
        if isinstance(e, Document)
    ]
    order = map_orders(doc)
    assert len(order.lines) == 146
    assert order.totals is not None and order.totals.line_count == 146


def test_cyrillic_interchange_is_decoded_as_declared(corpus: Path):
    events = list(parse_edifact(corpus / "edireader__tiny_UNOE_cyrillic.edi"))
    (doc,) = [e for e in events if isinstance(e, Document)]
    assert doc.body[2] == ["NAD", "SE", ["005435656", "", "16"], "", "Рыба текст"]
    opened = events[0]
    assert isinstance(opened, InterchangeOpened)
    assert (opened.envelope.test_indicator, opened.envelope.ack_requested) == ("t", False)


def test_wrapped_and_unwrapped_copies_have_the_same_digest(corpus: Path):
    wrapped = list(parse_edifact(corpus / "staedi__INVOIC_D97B_wrapped_UNA.edi"))
    flat = list(parse_edifact(corpus / "staedi__INVOIC_D97B_UNA_custom_separators.edi"))
    assert isinstance(wrapped[0], InterchangeOpened)
    assert any("hard-wrapped" in w for w in wrapped[0].warnings)
    assert wrapped[-1].digest == flat[-1].digest  # type: ignore[union-attr]
    assert [list(e.body) for e in wrapped if isinstance(e, Document)] == [
        list(e.body) for e in flat if isinstance(e, Document)
    ]


def test_latin1_and_latin2_twins(corpus: Path):
    latin1 = [
        e
        for e in parse_edifact(corpus / "edireader__ORDRSP_D01B_UNOC_latin1.edi")
        if isinstance(e, Document)
    ]
    latin2 = [
        e
        for e in parse_edifact(corpus / "edireader__ORDRSP_D01B_UNOD_latin2.edi")
        if isinstance(e, Document)
    ]
    # The same bytes above 0x7F read as different letters, each as its UNB declares.
    text1 = repr(list(latin1[0].body))
    text2 = repr(list(latin2[0].body))
    assert {c for c in text1 if ord(c) > 127} == set("àéïöü")
    assert {c for c in text2 if ord(c) > 127} == set("áíłřš")
