"""gateway.provenance: an order's sources, stored or read again from its message."""

from __future__ import annotations

from gateway.model import content_digest
from gateway.provenance import derive, sources_of
from gateway.translate import PartnerDirectory
from tests.support.x12gen import interchange, po

BODY = interchange([po("PO-1", st="0001"), po("PO-2", [("3", "1.00", "A"), ("4", "2.00", "B")], st="0002")]).encode()


def _row(index: int, digest: str | None, provenance: dict[str, str] | None = None) -> dict[str, object]:
    return {"id": "o1", "doc_index": index, "data": {"po_number": "x"}, "content_hash": digest, "provenance": provenance}


def test_the_second_document_is_read_alone_with_its_own_positions() -> None:
    found = derive(BODY, fmt="x12", doc_index=1, partners=PartnerDirectory())
    assert found is not None
    values, digest = found
    assert values["po_number"] == "BEG03 (segment 2, line 10)"
    assert values["lines[1].sku"].startswith("PO107 (segment 5, line 13)")
    assert derive(BODY, fmt="x12", doc_index=7, partners=PartnerDirectory()) is None


def test_a_version_that_differs_from_its_message_says_so() -> None:
    found = derive(BODY, fmt="x12", doc_index=0, partners=PartnerDirectory(), name="po.edi")
    assert found is not None and found[0]["source.file_name"] == "the received file's name"
    message = {"id": "m1", "format": None, "partner": None, "display_name": "po.edi"}
    same = sources_of(_row(0, found[1]), message, BODY, PartnerDirectory())
    assert same.values == found[0] and same.note is None
    edited = sources_of(_row(0, content_digest('{"po_number":"other","source":{}}')), message, BODY, PartnerDirectory())
    assert edited.values == found[0] and edited.note is not None and "a person's edit" in edited.note
    gone = sources_of(_row(0, found[1]), message, None, PartnerDirectory())
    assert gone.values == {} and gone.note is not None and "removed by retention" in gone.note
    stored = sources_of(_row(0, None, {"po_number": "message body, line 5"}), message, None, PartnerDirectory())
    assert stored.values == {"po_number": "message body, line 5"} and stored.note is None


def test_other_formats_are_not_read_again() -> None:
    message = {"id": "m1", "format": "csv", "partner": None, "display_name": "po.csv"}
    found = sources_of(_row(0, "x"), message, b"po,sku\n1,A\n", PartnerDirectory())
    assert found.values == {} and found.note is not None and "provenance was off" in found.note
