"""gateway.provenance: an order's sources, stored or read again from its message."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import provenance
from gateway.connector import RawMessage
from gateway.model import content_digest
from gateway.pipeline import Pipeline
from gateway.provenance import NOTE, derive, keep_sources, sources_of
from gateway.store import Store
from gateway.store.retention import purge_bodies
from gateway.translate import PartnerDirectory
from tests.support.x12gen import interchange, po

BODY = interchange([po("PO-1", st="0001"), po("PO-2", [("3", "1.00", "A"), ("4", "2.00", "B")], st="0002")]).encode()


def _row(index: int, digest: str | None, provenance: dict[str, str] | None = None, po_number: str = "PO-1") -> dict[str, object]:
    return {"id": "o1", "doc_index": index, "data": {"po_number": po_number}, "po_number": po_number, "content_hash": digest, "provenance": provenance}


def test_the_second_document_is_read_alone_with_its_own_positions() -> None:
    found = derive(BODY, fmt="x12", only=1, partners=PartnerDirectory())
    assert list(found) == [1] and found[1].po_number == "PO-2"
    assert found[1].values["po_number"] == "BEG03 (segment 2, line 10)"
    assert found[1].values["lines[1].sku"].startswith("PO107 (segment 5, line 13)")
    assert derive(BODY, fmt="x12", only=7, partners=PartnerDirectory()) == {}


def test_a_version_that_differs_from_its_message_says_so() -> None:
    found = derive(BODY, fmt="x12", only=0, partners=PartnerDirectory(), name="po.edi")[0]
    assert found.values["source.file_name"] == "the received file's name"
    message = {"id": "m1", "format": None, "partner": None, "display_name": "po.edi"}
    same = sources_of(_row(0, found.digest), message, BODY, PartnerDirectory())
    assert same.values == found.values and same.note is None
    edited = sources_of(_row(0, content_digest('{"po_number":"other","source":{}}')), message, BODY, PartnerDirectory())
    assert edited.values == found.values and edited.note is not None and "a person's edit" in edited.note
    # another order at that index (the file reads differently now): never its sources
    shifted = sources_of(_row(1, found.digest), message, BODY, PartnerDirectory())
    assert shifted.values == {} and shifted.note is not None and "no longer reads as this order" in shifted.note
    gone = sources_of(_row(0, found.digest), message, None, PartnerDirectory())
    assert gone.values == {} and gone.note is not None and "removed by retention" in gone.note
    stored = sources_of(_row(0, None, {"po_number": "message body, line 5", NOTE: "kept with a note"}), message, None, PartnerDirectory())
    assert stored.values == {"po_number": "message body, line 5"} and stored.note == "kept with a note"


def test_other_formats_are_not_read_again() -> None:
    message = {"id": "m1", "format": "csv", "partner": None, "display_name": "po.csv"}
    found = sources_of(_row(0, "x"), message, b"po,sku\n1,A\n", PartnerDirectory())
    assert found.values == {} and found.note is not None and "provenance was off" in found.note


def test_a_message_that_cannot_be_read_again_keeps_its_body(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(f"sqlite:///{tmp_path / 'g.db'}")
    pipe = Pipeline(store, connectors=[])
    ids = []
    for n in range(2):
        body = interchange([po(f"PO-{n}", st="0001")], icn=f"{n + 1:09d}").encode()
        got = pipe.receive(RawMessage(body=body, source="t", source_ref=f"{n}.edi", display_name=f"{n}.edi"))
        pipe.process(got.message_id, body=body)
        ids.append(got.message_id)
    real = provenance.derive

    def broken_for_the_first(body: bytes, **kw: object) -> object:
        if kw.get("message_id") == ids[0]:
            raise RuntimeError("a partner mapping file that no longer loads")
        return real(body, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(provenance, "derive", broken_for_the_first)
    kept = keep_sources(store, ids, PartnerDirectory())
    assert kept.keep_bodies == {ids[0]}
    assert [mid for mid, _ in kept.sources.values()] == [ids[1]]
    (values,) = [v for _, v in kept.sources.values()]
    assert values["po_number"].startswith("BEG03 (segment 2") and NOTE not in values
    with store.begin() as conn:
        conn.exec_driver_sql("UPDATE messages SET received_at = '2000-01-01 00:00:00'")
        conn.exec_driver_sql("UPDATE orders SET state = 'dispatched'")
    done = purge_bodies(store, 30, keep=lambda batch: keep_sources(store, batch, PartnerDirectory()))
    assert done.messages == 1  # the other stays, its body kept, and the purge ended
    store.dispose()
