"""X12Parser: envelopes, normalization of imperfect input, rejections, streaming."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyx12.x12file import X12Reader

from gateway.errors import MappingError, ParseError
from gateway.formats import x12 as x12mod
from gateway.formats.base import (
    Document,
    DocumentRejected,
    Event,
    InterchangeClosed,
    InterchangeOpened,
)
from gateway.formats.x12 import X12Parser as _X12Parser
from gateway.formats.x12 import X12Segments
from gateway.formats.x12 import parse_x12 as _parse_x12
from gateway.formats.x12.reader import _Reader
from gateway.formats.x12.segmenter import _Segmenter, _split_one_per_line
from gateway.formats.x12.source import _Source
from gateway.mapping.x12_850 import map_850


# These inputs exercise the envelope repairs that guess (unpadded ISA, wrapped segments), which
# run only for a partner whose profile allows them (issue 14 #22); read here as for such a partner.
def parse_x12(source, **kw):  # type: ignore[no-untyped-def]
    return _parse_x12(source, lenient=True, **kw)


def X12Parser():  # type: ignore[no-untyped-def]  # noqa: N802
    return _X12Parser(lenient=True)


FIXTURES = Path(__file__).parents[1] / "fixtures" / "x12"


def events(name: str) -> list[Event]:
    return list(parse_x12(FIXTURES / name))


def of(kind: type, evs: list[Event]) -> list:
    return [e for e in evs if isinstance(e, kind)]


def test_parser_protocol_surface():
    parser = X12Parser()
    assert parser.name == "x12"
    assert parser.sniff(b"ISA*00*")
    assert parser.sniff(b"\xef\xbb\xbf  \r\nISA|00|")
    assert not parser.sniff(b"UNA:+.? 'UNB+UNOC")
    assert not parser.sniff(b"ISAAC NEWTON")
    assert not parser.sniff(b"")


def test_clean_4010_envelope_and_document():
    evs = events("clean_4010_850.edi")
    assert [type(e).__name__ for e in evs] == ["InterchangeOpened", "Document", "InterchangeClosed"]
    opened, doc, closed = evs
    assert opened.warnings == []
    env = doc.envelope
    assert env.standard == "x12"
    assert (env.sender_qualifier, env.sender_id) == ("ZZ", "BUYERCO")
    assert (env.receiver_qualifier, env.receiver_id) == ("ZZ", "SELLERCO")
    assert env.interchange_control_number == "000000101"
    assert env.group_control_number == "101"
    assert env.functional_id == "PO"
    assert env.version == "004010"
    assert env.test_indicator == "T"
    assert env.ack_requested is True
    assert env.interchange_index == 0
    assert opened.envelope.version == "00401"  # interchange level: ISA12
    assert doc.doc_type == "850"
    assert doc.control_number == "0001"
    assert doc.position == "line 3, segment 3"
    assert doc.index == 0
    assert isinstance(doc.body, X12Segments)
    assert doc.body[0] == ["ST", "850", "0001"]
    assert doc.body[-1] == ["SE", "55", "0001"]
    assert doc.body[1] == ["BEG", "00", "SA", "PO-4010-1", "R2", "20240115", "CT-77"]
    assert len(doc.body.lines) == len(doc.body) == 55
    assert doc.body.lines[:3] == [3, 4, 5]
    assert closed.errors == []
    assert closed.document_count == 1
    assert len(closed.digest) == 64


def test_5010_composite_elements_become_lists():
    (doc,) = of(Document, events("clean_5010_850.edi"))
    assert doc.envelope.version == "005010"
    assert doc.envelope.test_indicator == "P"
    assert doc.envelope.ack_requested is False
    assert doc.body[0] == ["ST", "850", "0001", "005010"]
    po1 = next(s for s in doc.body if s[0] == "PO1")
    assert po1[7] == ["X1", "A"]  # PO107 sent as X1:A
    assert po1[9] == "4006381333931"


def test_two_interchanges_two_groups_one_bad_count():
    evs = events("multi_interchange.edi")
    kinds = [type(e).__name__ for e in evs]
    assert kinds == [
        "InterchangeOpened",
        "Document",
        "DocumentRejected",
        "Document",
        "InterchangeClosed",
        "InterchangeOpened",
        "Document",
        "Document",
        "Document",
        "InterchangeClosed",
    ]
    docs = of(Document, evs)
    assert [(d.doc_type, d.control_number, d.envelope.group_control_number) for d in docs] == [
        ("850", "0001", "1"),
        ("850", "0003", "2"),
        ("850", "0001", "3"),
        ("850", "0002", "3"),
        ("810", "0004", "4"),  # not an order, still yielded: the caller decides
    ]
    assert [d.envelope.interchange_index for d in docs] == [0, 0, 1, 1, 1]
    assert [d.index for d in docs] == [0, 2, 3, 4, 5]
    (rejected,) = of(DocumentRejected, evs)
    assert rejected.reason == "X12_SE_COUNT"
    assert rejected.control_number == "0002"
    assert rejected.index == 1
    assert "SE01 says 7 segments but the transaction set has 6" in rejected.message
    assert rejected.position == "line 9, segment 9"
    # the second interchange has its own separators: '|' and '^', newline as terminator
    assert docs[2].body[1] == ["BEG", "00", "SA", "PO-B1", "", "20240115"]
    assert docs[4].envelope.functional_id == "IN"
    closed = of(InterchangeClosed, evs)
    assert [c.errors for c in closed] == [[], []]
    assert [c.document_count for c in closed] == [3, 3]
    assert closed[0].digest != closed[1].digest


def test_unpadded_isa_is_repadded_with_a_warning():
    opened, doc, closed = events("unpadded_isa.edi")
    assert opened.warnings == ["the ISA fields are not padded to their fixed widths; re-padded"]
    assert doc.envelope.sender_id == "BUYERCO"
    assert doc.envelope.interchange_control_number == "1"
    assert closed.errors == []  # IEA02 "1" matches ISA13 "1" as sent


def test_newline_terminator():
    opened, doc, closed = events("newline_terminator.edi")
    assert opened.warnings == []
    assert doc.body[1] == ["BEG", "00", "SA", "PO-NEWLINE", "", "20240115"]
    assert doc.position == "line 3, segment 3"
    assert closed.errors == []


def test_bom_indentation_and_crlf_are_normalized():
    opened, doc, closed = events("bom_indented_crlf.edi")
    assert opened.warnings == [
        "a UTF-8 byte order mark at the start was removed",
        "segments are indented (first at line 2); the indentation was removed",
    ]
    assert doc.body[1] == ["BEG", "00", "SA", "PO-INDENTED", "", "20240115"]
    assert doc.body.lines == [3, 4, 5, 6, 7, 8]
    assert closed.errors == []


def test_digest_is_of_the_normalized_text():
    """The same interchange sent with BOM, CRLF and indentation has the same digest."""
    plain = (FIXTURES / "bom_indented_crlf.edi").read_bytes()[3:].decode()
    plain = "".join(line.strip() + "\n" for line in plain.splitlines())
    a = list(parse_x12(plain.encode()))[-1]
    b = events("bom_indented_crlf.edi")[-1]
    assert a.digest == b.digest


def test_isa12_00300_is_read_and_kept():
    opened, doc, closed = events("isa12_00300.edi")
    assert opened.warnings == [
        "ISA12 version 00300 is read with the 00401 envelope rules; the envelope keeps the "
        "version as sent"
    ]
    assert opened.envelope.version == "00300"
    assert doc.envelope.version == "003040"
    assert closed.errors == []


def test_empty_segment_rejects_its_transaction_only():
    evs = events("empty_segment.edi")
    (rejected,) = of(DocumentRejected, evs)
    assert rejected.reason == "X12_EMPTY_SEGMENT"
    assert rejected.control_number == "0001"
    assert "empty segment" in rejected.message and "line 7" in rejected.message
    (doc,) = of(Document, evs)  # reading did not stop at the empty segment
    assert doc.control_number == "0002"
    assert of(InterchangeClosed, evs)[0].errors == []


def test_truncated_file():
    evs = events("truncated.edi")
    (doc,) = of(Document, evs)
    assert doc.control_number == "0001"
    (rejected,) = of(DocumentRejected, evs)
    assert rejected.reason == "X12_TRUNCATED"
    assert rejected.control_number == "0002"
    (closed,) = of(InterchangeClosed, evs)
    assert any("IEA=000000009) missing" in e for e in closed.errors)
    assert any("GE=9) missing" in e for e in closed.errors)


def test_missing_iea_before_next_isa():
    evs = events("missing_iea_then_isa.edi")
    closed = of(InterchangeClosed, evs)
    assert len(closed) == 2
    assert any("IEA=000000011) missing" in e for e in closed[0].errors)
    assert closed[1].errors == []
    assert [d.envelope.interchange_control_number for d in of(Document, evs)] == [
        "000000011",
        "000000012",
    ]


def test_latin1_input_is_decoded_with_a_warning():
    opened, doc, _ = events("latin1.edi")
    assert opened.warnings == [
        "the input is not valid UTF-8 (byte 210 is not); it was read as Latin-1"
    ]
    n1 = next(s for s in doc.body if s[0] == "N1")
    assert n1[2] == "Café Müller"


def test_envelope_errors():
    evs = events("envelope_errors.edi")
    assert [(d.control_number, d.reason) for d in of(DocumentRejected, evs)] == [
        ("0001", "X12_DUPLICATE_CONTROL"),
        ("0002", "X12_CONTROL_MISMATCH"),
        ("0003", "X12_SEGMENT"),
    ]
    docs = of(Document, evs)
    assert [d.control_number for d in docs] == ["0001", "0004"]
    assert docs[1].warnings == [
        "Segment contains trailing element terminators (segment REF at line 33)"
    ]
    (closed,) = of(InterchangeClosed, evs)
    assert closed.errors == [
        "group error at line 35: GE count of 4 for GE02=13 is wrong. I count 5",
        "interchange error at line 36: IEA id=000000099 does not match ISA id=000000013",
    ]


def _pyx12_errors(reader, segments) -> list[tuple[str, str, str]]:
    found = []
    for _ in segments:
        found += [(k, c, m) for k, c, m, _v, _l in reader.pop_errors()]
    reader.cleanup()
    found += [(k, c, m) for k, c, m, _v, _l in reader.pop_errors()]
    return found


@pytest.mark.parametrize(
    "name", ["envelope_errors.edi", "clean_4010_850.edi", "truncated.edi", "multi_interchange.edi"]
)
def test_light_segments_give_the_same_envelope_errors_as_pyx12(name):
    """_Reader swaps pyx12's Segment for _LightSegment; pyx12's checks must not notice."""
    data = (FIXTURES / name).read_bytes()
    iea = data.find(b"\nIEA")
    first = data if iea < 0 else data[: data.index(b"\n", iea + 1) + 1]  # first interchange
    stock = X12Reader(io.StringIO(first.decode()))
    expected = _pyx12_errors(stock, stock)

    segmenter = _Segmenter(_Source(io.BytesIO(first)))
    isa = segmenter.first_interchange()
    ours = _Reader(isa, segmenter.segments(isa))
    assert _pyx12_errors(ours, ours) == expected


def test_trailing_junk_after_the_last_interchange_is_reported():
    data = (FIXTURES / "newline_terminator.edi").read_bytes() + b"THIS IS NOT EDI\n"
    evs = list(parse_x12(data))
    assert len(of(Document, evs)) == 1
    (closed,) = of(InterchangeClosed, evs)
    assert closed.errors == [
        "16 characters at line 11 after an interchange are not part of one and were ignored"
    ]


def test_control_number_bookkeeping_is_a_set():
    """pyx12 keeps seen ST02s in a list: `in` on 100,000 of them is quadratic. Ours is a set."""
    data = (FIXTURES / "clean_4010_850.edi").read_bytes()
    segmenter = _Segmenter(_Source(io.BytesIO(data)))
    isa = segmenter.first_interchange()
    reader = _Reader(isa, segmenter.segments(isa))
    reader.st_ids = []  # what pyx12 does at every GS
    assert isinstance(reader.st_ids, set)
    reader.st_ids.append("0001")
    assert "0001" in reader.st_ids
    assert list(reader)[-1].seg_id == "IEA"


# -- unreadable input: ParseError with a reason and a position --------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "NOT_X12"),
        (b"   \r\n\t", "NOT_X12"),
        (bytes(range(256)) * 4, "NOT_X12"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "NOT_X12"),
        (b"UNB+UNOC:3+SENDER+RECEIVER+240115:1200+1'", "NOT_X12"),
        (b"\xff\xfeI\x00S\x00A\x00", "NOT_X12"),
        (b"ISA*00*          *00*", "X12_ISA"),
        (
            b"ISA*00*          *00*          *ZZ*A              *ZZ*B              "
            b"*240115*1200*U*00401*000000001*0*P**~GS*PO~",
            "X12_SEPARATORS",
        ),
        (
            b"ISA*00*          *00*          *ZZ*A              *ZZ*B              "
            b"*240115*1200*U*00401*000000001*0*P*A~GS*PO~",
            "X12_SEPARATORS",
        ),
        (
            b"ISA*00*          *00*          *ZZ*A              *ZZ*B              "
            b"*240115*1200*U*00401*000000001*0*P*>>GS*PO~",
            "X12_SEPARATORS",
        ),
        (
            b"ISA*00*          *00*          *ZZ*A              *ZZ*B              "
            b"*240115*1200*U*00401*000000001*0*>~GS*PO~",
            "X12_ISA",
        ),
    ],
)
def test_unreadable_input_raises_parse_error(data, reason):
    with pytest.raises(ParseError) as info:
        list(parse_x12(data))
    assert info.value.reason == reason
    assert info.value.position


def test_parse_reads_incrementally():
    """The parser pulls the stream a chunk at a time and yields before the end."""

    class Counting(io.BytesIO):
        reads = 0

        def read(self, n=-1):
            Counting.reads += 1
            return super().read(min(n, 64) if n and n > 0 else 64)

    data = (FIXTURES / "multi_interchange.edi").read_bytes()
    stream = Counting(data)
    it = X12Parser().parse(stream, name="multi")
    first = next(it)
    assert isinstance(first, InterchangeOpened)
    assert stream.tell() < len(data)
    rest = list(it)
    assert len(of(Document, rest)) == 5


def test_small_chunks_give_the_same_events():
    data = (FIXTURES / "bom_indented_crlf.edi").read_bytes()

    class Trickle(io.BytesIO):
        def read(self, n=-1):
            return super().read(3)

    whole = list(parse_x12(data))
    trickled = list(X12Parser().parse(Trickle(data)))
    assert [type(e) for e in whole] == [type(e) for e in trickled]
    assert whole[1].body == trickled[1].body
    assert whole[-1].digest == trickled[-1].digest


def _summary(evs: list[Event]) -> list[tuple]:
    out = []
    for e in evs:
        if isinstance(e, Document):
            out.append(
                (
                    "doc",
                    e.doc_type,
                    e.control_number,
                    e.position,
                    e.index,
                    e.warnings,
                    list(e.body),
                    list(e.body.lines),
                    e.envelope,
                )
            )
        elif isinstance(e, DocumentRejected):
            out.append(("rej", e.reason, e.message, e.position, e.index, e.envelope))
        elif isinstance(e, InterchangeClosed):
            out.append(("closed", e.digest, e.errors, e.document_count, e.envelope))
        else:
            out.append(("opened", e.warnings, e.envelope))
    return out


LOOKALIKES = (
    b"ISA*00*          *00*          *ZZ*A              *ZZ*B              "
    b"*240115*1200*U*00401*000000001*0*P*>~\n"
    b"GS*PO*A*B*20240115*1200*1*X*004010~\n"
    b"ST*850*0001~\nBEG*00*SA*LISA*IEA*20240115~\nN1*ST*MISA*92*IEA~\nREF*ZZ*ISA*IEA*~\n"
    b"PO1*1*1*EA*1~\nCTT*1~\nSE*7*0001~\nGE*1*1~\nIEA*1*000000001~\n"
    b"ISA*00*          *00*          *ZZ*A              *ZZ*B              "
    b"*240115*1200*U*00401*000000002*0*P*>~\n"
    b"GS*PO*A*B*20240115*1200*2*X*004010~\n"
    b"ST*850*0001~\nBEG*00*SA*P2**20240115~\nSE*3*0001~\nGE*1*2~\n"
)


@pytest.mark.parametrize("chunk", [5, 64, 300, 1 << 16])
@pytest.mark.parametrize("name", [*sorted(p.name for p in FIXTURES.glob("*.edi")), "<lookalikes>"])
def test_whole_chunk_fast_path_matches_the_segment_loop(name, chunk, monkeypatch):
    """_Segmenter._clean_batch (whole-list operations) must not change a single event."""
    data = LOOKALIKES if name == "<lookalikes>" else (FIXTURES / name).read_bytes()

    class Chunked(io.BytesIO):
        def read(self, n=-1):
            return super().read(chunk)

    fast = _summary(list(X12Parser().parse(Chunked(data))))
    monkeypatch.setattr(_Segmenter, "_clean_batch", lambda *args: None)
    slow = _summary(list(X12Parser().parse(Chunked(data))))
    assert fast == slow


def _layouts() -> dict[str, bytes]:
    """One clean 850 interchange written the ways senders write segments, and variations
    that each fast path must refuse (then the per-segment loop reports what it fixed)."""
    base = (FIXTURES / "clean_4010_850.edi").read_bytes()
    segs = [s.strip() for s in base.split(b"~") if s.strip()]
    first = LOOKALIKES.split(b"~\n")[:11]  # ISA .. IEA
    small = b"".join(  # small interchanges, every other one without its IEA
        b"~\n".join([*first[: 11 - i % 2], b""]).replace(b"000000001", b"%09d" % i)
        for i in range(1, 7)
    )

    def join(sep: bytes, items: list[bytes] = segs) -> bytes:
        return sep.join(items) + sep

    indented = list(segs)
    indented[5] = b"  " + indented[5]
    tabbed = list(segs)
    tabbed[7] = b"\t" + tabbed[7]
    wrapped = list(segs)
    wrapped[6] = wrapped[6][:4] + b"\n" + wrapped[6][4:]
    lone_cr = list(segs)
    lone_cr[6] = wrapped[6].replace(b"\n", b"\r")
    return {
        "lf": join(b"~\n"),
        "crlf": join(b"~\r\n"),
        "one line": join(b"~"),
        "blank lines first": b"\n\r\n\n" + join(b"~\n"),
        "mixed lf and crlf": join(b"~\n", segs[:9]) + join(b"~\r\n", segs[9:]),
        "some without line break": join(b"~\n", segs[:9]) + join(b"~", segs[9:]),
        "blank line inside": join(b"~\n", segs[:9]) + b"\n" + join(b"~\n", segs[9:]),
        "empty segment": join(b"~\n", segs[:9]) + b"~\n" + join(b"~\n", segs[9:]),
        "indented": join(b"~\n", indented),
        "tab indented": join(b"~\n", tabbed),
        "wrapped": join(b"~\n", wrapped),
        "lone cr": join(b"~\n", lone_cr),
        "crlf, lone cr": join(b"~\r\n", lone_cr),
        "trailing element separator": join(b"~\n", [*segs[:8], segs[8] + b"*", *segs[9:]]),
        "small interchanges": small,
    }


@pytest.mark.parametrize("chunk", [7, 100, 1 << 16])
@pytest.mark.parametrize("layout", sorted(_layouts()))
def test_split_fast_paths_match_the_segment_loop(layout, chunk, monkeypatch):
    """_split_one_per_line and _split_clean must give what the per-segment loop gives."""
    data = _layouts()[layout]

    class Chunked(io.BytesIO):
        def read(self, n=-1):
            return super().read(chunk)

    fast = _summary(list(X12Parser().parse(Chunked(data))))
    monkeypatch.setattr(_Segmenter, "_clean_batch", lambda *args: None)
    slow = _summary(list(X12Parser().parse(Chunked(data))))
    assert fast == slow


def test_one_segment_per_line_split():
    split = _split_one_per_line
    assert split("\nA*1~\nB*2~\nC~", "~", 10) == (["A*1", "B*2", "C"], [11, 12, 13], 13)
    assert split("A*1~\r\nB*2~", "~", 1) == (["A*1", "B*2"], [1, 2], 2)
    refused = ["A~B~", "A~\n\nB~", "A~\n~\nB~", "A~\n B~", "A~\n\tB~", " A~", "~", "A~\nB\rC~"]
    refused += ["A~\r\nB\rC~\r\nD~", "A~\r\nB\nC~\r\nD~"]
    for layout in refused:
        assert split(layout, "~", 1) is None, layout


def test_checked_batches_mark_what_the_event_loop_must_see():
    """Envelope segments and segments with pyx12 errors come with a _LightSegment; the other
    segments only in body form, composites split."""
    data = (FIXTURES / "envelope_errors.edi").read_bytes()
    segmenter = _Segmenter(_Source(io.BytesIO(data)))
    isa = segmenter.first_interchange()
    reader = _Reader(isa, segmenter.segments(isa))
    batches = list(reader.checked())
    assert batches[0].elements[0][0] == "ISA" and batches[0].special == [0]
    elements = [e for b in batches for e in b.elements]
    special = {
        (b.elements[k][0], b.lines[k]): b.segments.get(k) for b in batches for k in b.special
    }
    assert {"GS", "ST", "SE", "GE", "IEA"} <= {sid for sid, _ in special}
    assert all(seg is not None for seg in special.values())  # no empty segments in this file
    errors = [e for seg in special.values() if seg and seg.errors for e in seg.errors]
    assert ("seg", "SEG1") in {(k, c) for k, c, *_ in errors}  # REF*...*~ at line 33
    assert len(elements) == sum(len(b.texts) for b in batches)
    assert reader.err_list == []  # every error went onto its segment


def test_lookalikes_inside_segments_are_data():
    evs = list(parse_x12(LOOKALIKES))
    docs = of(Document, evs)
    assert docs[0].body[1] == ["BEG", "00", "SA", "LISA", "IEA", "20240115"]
    assert len(of(InterchangeOpened, evs)) == 2
    assert "IEA=000000002) missing" in of(InterchangeClosed, evs)[1].errors[0]


_FUZZ_SOURCES = [p.read_bytes() for p in sorted(FIXTURES.glob("*.edi"))]
_FUZZ_BYTES = b"*~>:^|\n\r \t\x00ISAGEIEASTSE0123456789\xa0\xc3\xff"


@settings(max_examples=300, deadline=None, database=None)
@given(
    source=st.sampled_from(_FUZZ_SOURCES),
    edits=st.lists(
        st.tuples(
            st.sampled_from(["delete", "insert", "cut"]),
            st.floats(min_value=0, max_value=1),
            st.binary(min_size=1, max_size=3).map(
                lambda b: bytes(_FUZZ_BYTES[x % len(_FUZZ_BYTES)] for x in b)
            ),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_damaged_input_gives_events_or_parse_error_only(source, edits):
    """Whatever the damage: events or ParseError, and mapping errors are MappingErrors."""
    data = bytearray(source)
    for op, where, chunk in edits:
        pos = int(where * len(data))
        if op == "delete":
            del data[pos : pos + len(chunk)]
        elif op == "insert":
            data[pos:pos] = chunk
        else:
            del data[pos:]
    try:
        for event in parse_x12(bytes(data)):
            if isinstance(event, Document) and event.doc_type == "850":
                with contextlib.suppress(MappingError):
                    map_850(event).model_dump_json()
    except ParseError as exc:
        assert exc.reason in {"NOT_X12", "X12_ISA", "X12_SEPARATORS"}


def test_digest_keeps_the_version_as_sent():
    """pyx12 is shown 00401 for 00300, but the digest is of the interchange as sent."""
    data = (FIXTURES / "isa12_00300.edi").read_bytes()
    as_00401 = data.replace(b"*00300*", b"*00401*", 1)
    assert list(parse_x12(data))[-1].digest != list(parse_x12(as_00401))[-1].digest


def test_public_names():
    assert sorted(x12mod.__all__) == ["X12Parser", "X12Segments", "parse_x12"]
    from gateway.mapping import x12_850

    assert sorted(x12_850.__all__) == [
        "DEFAULT_TABLES_PATH",
        "X12Tables",
        "default_tables",
        "load_x12_tables",
        "map_850",
    ]
