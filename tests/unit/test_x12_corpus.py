"""The shared corpus of real X12 files, read in place (never copied into the repo).

Every file either parses (yielding documents and rejections) or raises ParseError, in time;
every 850 maps to at least one order with a PO number. Some files are broken on purpose
(see /work/shared/corpus/PROVENANCE.md); the expectations below name them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import MappingError, ParseError
from gateway.formats.base import Document, DocumentRejected, InterchangeClosed, InterchangeOpened
from gateway.formats.x12 import parse_x12 as _parse_x12
from gateway.mapping.x12_850 import map_850


# These inputs exercise the envelope repairs that guess (unpadded ISA, wrapped segments), which
# run only for a partner whose profile allows them (issue 14 #22); read here as for such a partner.
def parse_x12(source, **kw):  # type: ignore[no-untyped-def]
    return _parse_x12(source, lenient=True, **kw)

CORPUS = Path(__file__).parents[2].parent / "shared" / "corpus" / "x12"
FILES = sorted(p.name for p in CORPUS.iterdir()) if CORPUS.is_dir() else []
ORDER_FILES = [n for n in FILES if "850" in n and n != "staedi__invoice810_po850_dual.edi"]
ORDER_FILES.append("staedi__invoice810_po850_dual.edi")

# Broken on purpose or by accident, with what the parser must say about them.
EXPECTED_REJECTIONS = {
    "edinet__x12.Issue172.edi": "X12_SE_COUNT",  # PROVENANCE: SE count 50 is wrong on purpose
    "edinet__x12.Issue101.edi": "X12_SE_COUNT",  # SE*50 around a 3-segment body
    "edinet__x12.810.mandatory-conditions.edi": "X12_SE_COUNT",
    "edinet__x12.850.issue135.edi": "X12_DUPLICATE_CONTROL",  # two STs numbered 0001
    "oopfactory__860_Example1.txt": "X12_SE_COUNT",  # N1 without terminator swallows N3
    "staedi__invalid999.edi": "X12_SE_COUNT",
}

pytestmark = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"the shared X12 corpus is not at {CORPUS}"
)


def test_corpus_is_there():
    assert len(FILES) >= 40


@pytest.mark.timeout(10)
@pytest.mark.parametrize("name", FILES)
def test_every_file_parses_or_raises_parse_error(name: str):
    try:
        events = list(parse_x12(CORPUS / name))
    except ParseError as exc:
        assert exc.reason and exc.position
        return
    assert isinstance(events[0], InterchangeOpened)
    assert isinstance(events[-1], InterchangeClosed)
    transactions = [e for e in events if isinstance(e, Document | DocumentRejected)]
    closed = [e for e in events if isinstance(e, InterchangeClosed)]
    assert len(transactions) == sum(c.document_count for c in closed)
    rejected = {e.reason for e in transactions if isinstance(e, DocumentRejected)}
    if name in EXPECTED_REJECTIONS:
        assert EXPECTED_REJECTIONS[name] in rejected
    else:
        assert rejected == set(), [
            e.message for e in transactions if isinstance(e, DocumentRejected)
        ]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("name", ORDER_FILES)
def test_every_850_maps_to_an_order(name: str):
    docs = [e for e in parse_x12(CORPUS / name) if isinstance(e, Document) and e.doc_type == "850"]
    assert docs, "no 850 transaction set came through"
    orders = []
    for doc in docs:
        try:
            orders.append(map_850(doc))
        except MappingError as exc:  # pragma: no cover - the message says which file and why
            pytest.fail(f"{name}: {exc.reason}: {exc}")
    assert all(o.po_number for o in orders)
    for order in orders:
        order.model_dump_json()


def test_corpus_details():
    """A few values checked by hand against the files."""

    def first_order(name: str):
        doc = next(
            e for e in parse_x12(CORPUS / name) if isinstance(e, Document) and e.doc_type == "850"
        )
        return doc, map_850(doc)

    doc, order = first_order("oopfactory__850_Adobe_CLP.txt")  # '~' elements, '*' ends, 00300
    assert order.po_number == "ANSI-X12-CLP"
    assert doc.envelope.version == "004010"
    assert order.source.sender_id == "00000000"

    doc, order = first_order("oopfactory__850_Adobe_ShrinkWrapped.txt")  # space terminator
    assert order.po_number == "MH80312"
    assert order.buyer is not None and order.buyer.name == "SOLD TO Org Name"

    doc, order = first_order("oopfactory__850_PGWGlass.txt")  # '|' terminator, '~' components
    assert order.po_number == "S41000439"
    assert order.purpose.value == "replace"

    doc, order = first_order("edinet__x12.850.edi")  # BOM, NBSP padding
    assert order.source.receiver_id == "PARTNERID"
    assert order.ship_to is not None and order.ship_to.postal_code == "11788-1234"

    doc, order = first_order("edinet__x12.850.issue135.edi")  # '~' is ISA16, newline ends
    assert order.order_date is not None and order.order_date.isoformat() == "2019-10-01"
    assert len(order.lines) == 10

    events = list(parse_x12(CORPUS / "node-x12__850_fat.edi"))  # two interchanges
    assert sum(isinstance(e, InterchangeOpened) for e in events) == 2
