"""EdifactParser: separators, release characters, character sets, envelopes, control counts,
wrapped and cut-off files, positions, digests, and robustness against arbitrary bytes."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import MappingError, ParseError
from gateway.formats.base import (
    Document,
    DocumentRejected,
    Event,
    InterchangeClosed,
    InterchangeOpened,
)
from gateway.formats.edifact import EdifactMessage, EdifactParser, parse_edifact
from gateway.mapping.edifact_orders import map_orders

FIXTURES = Path(__file__).parents[1] / "fixtures" / "edifact"
UNB = "UNB+UNOA:3+SENDER:14+RECEIVER:14+240115:1200+IC1"


def events(data: bytes | str | Path) -> list[Event]:
    return list(parse_edifact(data))


def docs(data: bytes | str | Path) -> list[Document]:
    return [e for e in events(data) if isinstance(e, Document)]


def rejected(evs: list[Event]) -> list[DocumentRejected]:
    return [e for e in evs if isinstance(e, DocumentRejected)]


def closed(evs: list[Event]) -> list[InterchangeClosed]:
    return [e for e in evs if isinstance(e, InterchangeClosed)]


def opened(evs: list[Event]) -> list[InterchangeOpened]:
    return [e for e in evs if isinstance(e, InterchangeOpened)]


def message(
    ref: str, *body: str, count: int | None = None, unt_ref: str | None = None
) -> list[str]:
    """UNH..UNT around `body`; UNT counts the segments unless `count` says otherwise."""
    segs = [f"UNH+{ref}+ORDERS:D:96A:UN:EAN008", *body]
    segs.append(f"UNT+{count if count is not None else len(segs) + 1}+{unt_ref or ref}")
    return segs


def order(ref: str, po: str) -> list[str]:
    return message(
        ref, f"BGM+220+{po}+9", "LIN+1++4000862141404:EN", "QTY+21:1", "UNS+S", "CNT+2:1"
    )


def interchange(
    *segments: str, una: str | None = "UNA:+.? '", unb: str = UNB, unz: str | None = "UNZ+1+IC1"
) -> bytes:
    segs = [unb, *segments] + ([unz] if unz else [])
    return ((una + "\n" if una else "") + "'\n".join(segs) + "'\n").encode("ascii")


# -- sniffing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"UNA:+.? 'UNB+UNOC:3+X+Y+240101:1200+1'", True),
        (b"UNB+UNOC:3+X+Y+240101:1200+1'", True),
        (b"\xef\xbb\xbf\r\n  UNA:+.? '", True),
        (b"\n\nUNB+UNOA:1", True),
        (b"STX=ANA:1+5000000000000:SOME STORES LTD", False),  # TRADACOMS
        (b"ISA*00*          *00*", False),
        (b"UNBX+", False),
        (b"UNB ", False),
        (b"", False),
        (b"<?xml version='1.0'?>", False),
    ],
)
def test_sniff(head: bytes, expected: bool):
    assert EdifactParser().sniff(head) is expected


def test_tradacoms_is_not_edifact():
    with pytest.raises(ParseError) as info:
        events(b"STX=ANA:1+5000000000000:SOME STORES+5010000000000:SUPPLIER+070315:130233+7'\n")
    assert info.value.reason == "NOT_EDIFACT"
    assert "STX" in info.value.message


@pytest.mark.parametrize("data", [b"", b"   \r\n", b"\x00\x00"])
def test_empty_input(data: bytes):
    with pytest.raises(ParseError) as info:
        events(data)
    assert info.value.reason == "NOT_EDIFACT"


def test_utf16_input_is_refused():
    with pytest.raises(ParseError) as info:
        events("UNB+UNOC:3+X+Y+240101:1200+1'".encode("utf-16"))
    assert info.value.reason == "NOT_EDIFACT"
    assert "UTF-16" in info.value.message


# -- separators, release characters, decimal mark ------------------------------------------


def test_without_una_the_defaults_apply():
    (doc,) = docs(interchange(*order("1", "PO-1"), una=None))
    assert isinstance(doc.body, EdifactMessage)
    assert doc.body[1] == ["BGM", "220", "PO-1", "9"]
    assert doc.body.decimal_mark == ","  # ISO 9735 default without a UNA


def test_una_declares_the_decimal_mark():
    (doc,) = docs(interchange(*order("1", "PO-1"), una="UNA:+.? '"))
    assert doc.body.decimal_mark == "."
    (doc,) = docs(interchange(*order("1", "PO-1"), una="UNA:+,? '"))
    assert doc.body.decimal_mark == ","


def test_custom_separators_from_una():
    segs = [
        "UNB*UNOA=3*SENDER*RECEIVER*240115=1200*IC7",
        "UNH*1*ORDERS=D=96A=UN",
        "BGM*220*PO=7*9",
        "NAD*BY*123==9",
        "UNT*4*1",
        "UNZ*1*IC7",
    ]
    data = ("UNA=*.! ~" + "~\r\n".join(segs) + "~\r\n").encode()
    (doc,) = docs(data)
    assert doc.body[1] == ["BGM", "220", ["PO", "7"], "9"]
    assert doc.body[2] == ["NAD", "BY", ["123", "", "9"]]
    assert doc.body.decimal_mark == "."


def test_release_characters():
    body = (
        "BGM+220+PO?+1?:A+9",
        "FTX+AAI+++it?'s 50?+50?:x ??:second line",
        "FTX+AAI+++ends with release ??",
        "RFF+CT:CONTRACT?+967",
    )
    (doc,) = docs(interchange(*message("1", *body)))
    assert doc.body[1] == ["BGM", "220", "PO+1:A", "9"]
    assert doc.body[2] == ["FTX", "AAI", "", "", ["it's 50+50:x ?", "second line"]]
    assert doc.body[3] == ["FTX", "AAI", "", "", "ends with release ?"]
    assert doc.body[4] == ["RFF", ["CT", "CONTRACT+967"]]


def test_released_terminator_before_a_service_tag_does_not_cut_the_message():
    # "?'UNZ+" inside free text is data, not the end of the interchange.
    (doc,) = docs(
        interchange(*message("1", "BGM+220+PO-1+9", "FTX+AAI+++look?'UNZ?+1?+IC1?'UNH?+2"))
    )
    assert doc.body[2][4] == "look'UNZ+1+IC1'UNH+2"


def test_una_with_no_release_character():
    # A space in UNA4 (syntax 4) says there is no release character: '?' is data.
    segs = [UNB, *message("1", "BGM+220+WHAT?+9", "FTX+AAI+++ACME CORP  LTD"), "UNZ+1+IC1"]
    data = ("UNA:+.  '" + "'".join(segs) + "'").encode()
    (doc,) = docs(data)
    assert doc.body[1] == ["BGM", "220", "WHAT?", "9"]
    assert doc.body[2][4] == "ACME CORP  LTD"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ("UNA:+.", "cut off"),
        ("UNA::.? '" + UNB + "'", "must differ"),
        ("UNA:A.? '" + UNB + "'", "letter"),
        ("UNA:+.:''" + UNB + "'", "clashes"),
        ("UNA:+.? \xe9" + UNB + "\xe9", "ASCII"),
    ],
)
def test_unusable_una(data: str, fragment: str):
    with pytest.raises(ParseError) as info:
        events(data.encode("latin-1"))
    assert info.value.reason == "EDIFACT_UNA"
    assert fragment in info.value.message
    assert info.value.position


def test_una_without_unb():
    with pytest.raises(ParseError) as info:
        events(b"UNA:+.? 'UNH+1+ORDERS:D:96A:UN'")
    assert info.value.reason == "EDIFACT_UNB"


def test_unb_without_syntax_identifier():
    with pytest.raises(ParseError) as info:
        events(b"UNA:+.? '\nUNB+++++4'\nUNB+UNOA:3+A+B+210504:1310'\nUNZ+0+4'\n")
    assert info.value.reason == "EDIFACT_UNB"
    assert info.value.position == "line 2, byte 10"


def test_unb_without_terminator():
    with pytest.raises(ParseError) as info:
        events(b"UNB+UNOA:3+SENDER+RECEIVER+240115:1200+IC1")
    assert info.value.reason == "EDIFACT_UNB"


# -- character sets -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "name", "city"),
    [
        ("unoc_latin1.edi", "Müller & Söhne GmbH", "Köln"),
        ("unod_latin2.edi", "Zakład Łódź", "Gdańsk"),
        ("unoe_cyrillic.edi", "ООО Ромашка", "Москва"),
    ],
)
def test_declared_iso_8859_sets(fixture: str, name: str, city: str):
    evs = events(FIXTURES / fixture)
    assert opened(evs)[0].warnings == []
    (doc,) = [e for e in evs if isinstance(e, Document)]
    nad = doc.body[3]
    assert nad[4] == name and nad[6] == city


@pytest.mark.parametrize(
    ("syntax", "encoding", "text"),
    [
        ("UNOF", "iso-8859-7", "Αθήνα Ελλάδα"),
        ("UNOW", "utf-8", "Zürich 東京 Αθήνα"),
        ("UNOY", "utf-8", "Łódź"),
        ("UNOB", "ascii", "lower case ascii"),
    ],
)
def test_more_syntax_identifiers(syntax: str, encoding: str, text: str):
    unb = f"UNB+{syntax}:3+SENDER+RECEIVER+240115:1200+IC1"
    segs = [unb, *message("1", "BGM+220+PO-1+9", f"FTX+AAI+++{text}"), "UNZ+1+IC1"]
    data = ("UNA:+.? '" + "'".join(segs) + "'").encode(encoding)
    (doc,) = docs(data)
    assert doc.body[2][4] == text


def test_unoa_with_a_latin1_byte_is_a_charset_error_with_its_offset():
    data = (FIXTURES / "unoa_with_latin1_byte.edi").read_bytes()
    with pytest.raises(ParseError) as info:
        events(data)
    exc = info.value
    assert exc.reason == "EDIFACT_CHARSET"
    offset = data.index(b"\xfc")
    assert exc.position == f"line 6, byte {offset}"
    assert "0xfc" in exc.message and "UNOA" in exc.message and "UNOC" in exc.message


def test_utf8_bytes_under_unoc_with_a_c1_code_are_refused():
    # 'Ë' in UTF-8 is C3 8B; 0x8B is a C1 control code, in no ISO 8859 set.
    unb = "UNB+UNOC:3+SENDER+RECEIVER+240115:1200+IC1"
    data = interchange(*message("1", "BGM+220+PO-1+9"), unb=unb).replace(b"PO-1", "PO-Ë".encode())
    with pytest.raises(ParseError) as info:
        events(data)
    assert info.value.reason == "EDIFACT_CHARSET"
    assert "UNOW" in info.value.message  # the hint: the bytes are UTF-8


def test_utf8_bytes_under_unoc_are_read_as_declared_with_a_warning():
    unb = "UNB+UNOC:3+SENDER+RECEIVER+240115:1200+IC1"
    data = interchange(*message("1", "BGM+220+PO-1+9"), unb=unb).replace(b"PO-1", "PO-é".encode())
    evs = events(data)
    assert any("valid UTF-8" in w for w in opened(evs)[0].warnings)
    (doc,) = [e for e in evs if isinstance(e, Document)]
    assert doc.body[1][2] == "PO-Ã©"  # as declared: never guessed, never dropped


def test_unknown_syntax_identifier_is_read_as_ascii_with_a_warning():
    unb = "UNB+KECA:3+SENDER+RECEIVER+240115:1200+IC1"
    evs = events(interchange(*order("1", "PO-1"), unb=unb))
    assert any("'KECA'" in w for w in opened(evs)[0].warnings)
    assert len(docs(interchange(*order("1", "PO-1"), unb=unb))) == 1


def test_bom_is_stripped_with_a_warning():
    evs = events(b"\xef\xbb\xbf" + interchange(*order("1", "PO-1")))
    assert opened(evs)[0].warnings == ["a UTF-8 byte order mark at the start was removed"]
    assert len([e for e in evs if isinstance(e, Document)]) == 1


def test_charset_offsets_count_the_bom():
    unb = "UNB+UNOA:3+SENDER+RECEIVER+240115:1200+IC1"
    data = b"\xef\xbb\xbf" + interchange(*message("1", "BGM+220+PO-1+9"), unb=unb)
    data = data.replace(b"PO-1", b"PO-\xe9")
    offset = data.index(b"\xe9")
    with pytest.raises(ParseError) as info:
        events(data)
    assert info.value.position == f"line 4, byte {offset}"


# -- envelopes ------------------------------------------------------------------------------


def test_envelope_from_unb_and_unh():
    evs = events(FIXTURES / "orders_full_d96a.edi")
    env = opened(evs)[0].envelope
    assert env.standard == "edifact"
    assert (env.sender_id, env.sender_qualifier) == ("5412345000013", "14")
    assert (env.receiver_id, env.receiver_qualifier) == ("8712345000004", "14")
    assert env.interchange_control_number == "IC0001"
    assert env.test_indicator == "1"
    assert env.ack_requested is True
    assert env.interchange_index == 0
    assert env.interchange_key == "edifact|14:5412345000013|IC0001"
    (doc,) = [e for e in evs if isinstance(e, Document)]
    assert doc.doc_type == "ORDERS"
    assert doc.control_number == "ME0001"
    assert doc.envelope.version == "D:96A:UN:EAN008"
    assert doc.position == "segment 3 (line 3)"
    assert doc.index == 0
    (end,) = closed(evs)
    assert end.errors == [] and end.document_count == 1
    assert len(end.digest) == 64


def test_ung_groups():
    evs = events(FIXTURES / "groups_ung.edi")
    found = [e for e in evs if isinstance(e, Document)]
    assert [d.body[1][2] for d in found] == ["PO-G1-1", "PO-G1-2", "PO-G2-1"]
    assert [d.envelope.group_control_number for d in found] == ["G1", "G1", "G2"]
    assert {d.envelope.functional_id for d in found} == {"ORDERS"}
    assert [d.index for d in found] == [0, 1, 2]
    assert [d.position for d in found] == [
        "segment 3 (line 3)",
        "segment 10 (line 10)",
        "segment 19 (line 19)",
    ]
    (end,) = closed(evs)
    assert end.errors == [] and end.document_count == 3


def test_group_counts_and_references_are_checked():
    data = (FIXTURES / "groups_ung.edi").read_bytes()
    data = data.replace(b"UNE+2+G1", b"UNE+3+GX").replace(b"UNZ+2+IC77", b"UNZ+5+IC77")
    (end,) = closed(events(data))
    assert any("UNE 0060" in e and "'3'" in e and "2 messages in group G1" in e for e in end.errors)
    assert any("UNE 0048 'GX'" in e and "'G1'" in e for e in end.errors)
    assert any("UNZ 0036" in e and "'5'" in e and "2 groups" in e for e in end.errors)


def test_missing_une_and_stray_une():
    segs = [
        "UNG+ORDERS+S+R+240115:1200+G1+UN+D:96A",
        *order("1", "PO-1"),
        "UNE+1+G9",
        "UNE+1+G1",
        "UNG+ORDERS+S+R+240115:1200+G2+UN+D:96A",
        *order("2", "PO-2"),
    ]
    (end,) = closed(events(interchange(*segs, unz="UNZ+2+IC1")))
    assert any("UNE 0048 'G9'" in e for e in end.errors)
    assert any("closes no group" in e for e in end.errors)
    assert any("group G2" in e and "has no UNE" in e for e in end.errors)


def test_several_messages_in_one_interchange():
    evs = events(
        interchange(*order("1", "PO-1"), *order("2", "PO-2"), *order("3", "PO-3"), unz="UNZ+3+IC1")
    )
    assert [d.body[1][2] for d in evs if isinstance(d, Document)] == ["PO-1", "PO-2", "PO-3"]
    assert closed(evs)[0].errors == []
    assert closed(evs)[0].document_count == 3


def test_several_interchanges_each_with_its_own_una():
    evs = events(FIXTURES / "two_interchanges.edi")
    assert [type(e).__name__ for e in evs] == [
        "InterchangeOpened", "Document", "InterchangeClosed",
        "InterchangeOpened", "Document", "InterchangeClosed",
    ]  # fmt: skip
    first, second = opened(evs)
    assert (first.envelope.interchange_control_number, first.envelope.interchange_index) == (
        "IC1",
        0,
    )
    assert (second.envelope.interchange_control_number, second.envelope.interchange_index) == (
        "IC2",
        1,
    )
    a, b = [e for e in evs if isinstance(e, Document)]
    assert a.envelope.interchange_control_number == "IC1" and a.body.decimal_mark == ","
    assert b.envelope.interchange_control_number == "IC2" and b.body.decimal_mark == "."
    assert b.body[4] == ["FTX", "AAI", "", "", "50*50=half"]
    assert (a.index, b.index) == (0, 1)
    assert b.position == "segment 13 (line 13)"
    assert all(c.errors == [] for c in closed(evs))


def test_interchange_without_unz_followed_by_another():
    data = interchange(*order("1", "PO-1"), unz=None) + interchange(
        *order("2", "PO-2"), unb=UNB.replace("IC1", "IC2"), unz="UNZ+1+IC2"
    )
    evs = events(data)
    assert [d.body[1][2] for d in evs if isinstance(d, Document)] == ["PO-1", "PO-2"]
    c1, c2 = closed(evs)
    assert any("no UNZ" in e for e in c1.errors)
    assert c2.errors == []


def test_junk_between_interchanges_is_reported_on_the_one_before():
    data = (
        interchange(*order("1", "PO-1"))
        + b"GARBAGE GARBAGE\n"
        + interchange(*order("2", "PO-2"), unb=UNB.replace("IC1", "IC2"), unz="UNZ+1+IC2")
    )
    evs = events(data)
    assert len([e for e in evs if isinstance(e, Document)]) == 2
    c1, c2 = closed(evs)
    assert any("not part of one" in e and "GARBAGE" in e for e in c1.errors)
    assert c2.errors == []


def test_repeated_interchange_control_number_in_one_file():
    data = interchange(*order("1", "PO-1")) + interchange(*order("1", "PO-1"))
    c1, c2 = closed(events(data))
    assert c1.errors == []
    assert any("repeats an earlier interchange" in e for e in c2.errors)
    assert c1.digest == c2.digest


# -- control counts (pydifact checks none of these) -----------------------------------------


def test_wrong_unt_count_rejects_that_message_only():
    segs = [*order("1", "PO-1"), *message("2", "BGM+220+PO-2+9", count=9), *order("3", "PO-3")]
    evs = events(interchange(*segs, unz="UNZ+3+IC1"))
    assert [d.body[1][2] for d in evs if isinstance(d, Document)] == ["PO-1", "PO-3"]
    (bad,) = rejected(evs)
    assert bad.reason == "EDIFACT_UNT_COUNT"
    assert bad.control_number == "2" and bad.doc_type == "ORDERS"
    assert "'9'" in bad.message and "has 3" in bad.message
    assert bad.position == "segment 10 (line 10)"
    assert bad.index == 1
    assert closed(evs)[0].document_count == 3
    assert closed(evs)[0].errors == []


def test_unt_reference_mismatch():
    evs = events(interchange(*message("7", "BGM+220+PO-1+9", unt_ref="8")))
    (bad,) = rejected(evs)
    assert bad.reason == "EDIFACT_UNT_REF"
    assert "'8'" in bad.message and "'7'" in bad.message


def test_message_without_unt_is_truncated_and_the_next_goes_on():
    segs = ["UNH+1+ORDERS:D:96A:UN", "BGM+220+PO-1+9", *order("2", "PO-2")]
    evs = events(interchange(*segs, unz="UNZ+2+IC1"))
    (bad,) = rejected(evs)
    assert bad.reason == "EDIFACT_TRUNCATED" and bad.control_number == "1"
    assert [d.body[1][2] for d in evs if isinstance(d, Document)] == ["PO-2"]


def test_duplicate_message_reference():
    evs = events(interchange(*order("1", "PO-1"), *order("1", "PO-2"), unz="UNZ+2+IC1"))
    (bad,) = rejected(evs)
    assert bad.reason == "EDIFACT_DUPLICATE_REF"
    assert bad.index == 1


def test_unh_without_message_type():
    evs = events(interchange("UNH+1", "BGM+220+PO-1+9", "UNT+3+1"))
    (bad,) = rejected(evs)
    assert bad.reason == "EDIFACT_UNH"


def test_unz_count_and_reference():
    (end,) = closed(events(interchange(*order("1", "PO-1"), unz="UNZ+2+IC9")))
    assert any("UNZ 0036" in e and "'2'" in e and "1 messages" in e for e in end.errors)
    assert any("UNZ 0020 'IC9'" in e and "'IC1'" in e for e in end.errors)


def test_missing_unz():
    evs = events(interchange(*order("1", "PO-1"), unz=None))
    assert len([e for e in evs if isinstance(e, Document)]) == 1
    (end,) = closed(evs)
    assert any("no UNZ" in e for e in end.errors)


def test_truncated_file_rejects_the_incomplete_message():
    evs = events(FIXTURES / "truncated.edi")
    assert [d.body[1][2] for d in evs if isinstance(d, Document)] == ["PO-T1"]
    (bad,) = rejected(evs)
    assert bad.reason == "EDIFACT_TRUNCATED"
    assert "cut off" in bad.message
    assert bad.position == "segment 9 (line 9)"
    (end,) = closed(evs)
    assert any("no UNZ" in e for e in end.errors)
    assert end.document_count == 2


def test_file_ending_with_a_lone_release_character():
    """reliability E10: a release that releases nothing ends a damaged file: the whole file is
    quarantined (DANGLING_RELEASE), not read up to the damage."""
    data = interchange(*order("1", "PO-1"), unz=None) + b"UNH+2+ORDERS:D:96A:UN'BGM+220+PO?"
    with pytest.raises(ParseError) as info:
        events(data)
    assert info.value.reason == "DANGLING_RELEASE"
    assert events(data[:-1] + b"??'UNT+3+2'UNZ+2+IC1'")  # a released release is a literal


def test_segments_between_messages_are_reported():
    evs = events(
        interchange(*order("1", "PO-1"), "FTX+AAI+++stray", *order("2", "PO-2"), unz="UNZ+2+IC1")
    )
    assert len([e for e in evs if isinstance(e, Document)]) == 2
    (end,) = closed(evs)
    assert any("FTX" in e and "outside any message" in e for e in end.errors)


def test_segments_between_unb_and_first_message_are_reported():
    (end,) = closed(events(interchange("DTM+137:20240101:102", *order("1", "PO-1"))))
    assert any("DTM" in e and "outside any message" in e for e in end.errors)


# -- syntax errors --------------------------------------------------------------------------


def test_bad_segment_tag_rejects_that_message_with_its_position():
    segs = [*order("1", "PO-1"), *message("2", "BGM+220+PO-2+9", "nad+BY+1"), *order("3", "PO-3")]
    evs = events(interchange(*segs, unz="UNZ+3+IC1"))
    (bad,) = rejected(evs)
    assert bad.reason == "EDIFACT_SYNTAX"
    assert "'nad'" in bad.message and "segment 12 (line 12)" in bad.message
    assert bad.position == "segment 10 (line 10)"
    assert [d.body[1][2] for d in evs if isinstance(d, Document)] == ["PO-1", "PO-3"]


def test_empty_segment_is_a_syntax_error():
    (bad,) = rejected(events(interchange(*message("1", "BGM+220+PO-1+9'", "DTM+137:20240101:102"))))
    assert bad.reason == "EDIFACT_SYNTAX"
    assert "empty segment" in bad.message


def test_pydifact_syntax_error_becomes_a_rejection_with_our_position():
    # Line break as terminator: "?" before it is a release of a line break, which pydifact
    # refuses ("Newlines after escape characters are not allowed").
    segs = [
        UNB,
        "UNH+1+ORDERS:D:96A:UN",
        "BGM+220+PO-1+9",
        "FTX+AAI+++broken?",
        "UNT+4+1",
        "UNZ+1+IC1",
    ]
    data = ("UNA:+.? \n" + "\n".join(segs) + "\n").encode()
    evs = events(data)
    (bad,) = rejected(evs)
    assert bad.reason == "EDIFACT_SYNTAX"
    assert "Newlines after escape" in bad.message
    assert "line 0" not in bad.message  # pydifact's wrong line numbers are dropped
    assert bad.position == "segment 3 (line 3)"


# -- line breaks: formatting, wrapping, indentation ----------------------------------------


def test_one_line_and_formatted_files_have_the_same_digest_and_body():
    segs = [UNB, *order("1", "PO-1"), "UNZ+1+IC1"]
    one_line = ("UNA:+.? '" + "'".join(segs) + "'").encode()
    crlf = ("UNA:+.? '\r\n" + "'\r\n".join(segs) + "'\r\n").encode()
    indented = ("UNA:+.? '\n" + "'\n\t".join(segs) + "'\n").encode()
    results = [events(d) for d in (one_line, crlf, indented)]
    digests = {closed(r)[0].digest for r in results}
    assert len(digests) == 1
    bodies = [list(next(e for e in r if isinstance(e, Document)).body) for r in results]
    assert bodies[0] == bodies[1] == bodies[2]
    assert opened(results[1])[0].warnings == []
    assert opened(results[2])[0].warnings == ["segments are indented; the indentation was removed"]


def test_hard_wrapped_fixture():
    evs = events(FIXTURES / "wrapped_40.edi")
    assert any("hard-wrapped" in w for w in opened(evs)[0].warnings)
    (doc,) = [e for e in evs if isinstance(e, Document)]
    flat = events(FIXTURES / "wrapped_40_flat.edi")
    (flat_doc,) = [e for e in flat if isinstance(e, Document)]
    assert list(doc.body) == list(flat_doc.body)
    assert doc.body[2] == ["NAD", "BY", "", "", "Wrapped Buyer Name", "Long Street 12"]
    assert closed(evs)[0].digest == closed(flat)[0].digest
    assert closed(evs)[0].errors == []
    # Lines are those of the wrapped file: the UNH starts on line 2, the NAD on line 3.
    assert doc.position == "segment 3 (line 2)"
    assert doc.body.line(2) == 3


@pytest.mark.parametrize("width", [1, 2, 3, 5, 7, 13, 40, 79])
def test_wrapped_at_any_width_reads_like_the_flat_file(width: int):
    flat = (FIXTURES / "orders_full_d96a.edi").read_bytes().replace(b"\n", b"")
    wrapped = b"\n".join(flat[i : i + width] for i in range(0, len(flat), width)) + b"\n"
    want, got = events(flat), events(wrapped)
    assert [list(e.body) for e in got if isinstance(e, Document)] == [
        list(e.body) for e in want if isinstance(e, Document)
    ]
    assert closed(got)[0].digest == closed(want)[0].digest
    assert closed(got)[0].errors == []


def test_segment_lines_and_where():
    (doc,) = docs(FIXTURES / "orders_full_d96a.edi")
    body = doc.body
    assert body.where(0) == "segment 1 (line 3)"
    assert body.where(1) == "segment 2 (line 4)"
    assert body.line(len(body) - 1) == len(body) + 2
    assert body.first_segment == 3


def test_text_stream_and_path_inputs():
    data = interchange(*order("1", "PO-1"))
    from_stream = list(EdifactParser().parse(io.BytesIO(data)))
    from_text = list(EdifactParser().parse(io.StringIO(data.decode())))  # type: ignore[arg-type]
    assert len(from_stream) == len(from_text) == 3


def test_no_pydifact_warnings_escape():
    # pytest turns warnings into errors: parsing must not emit MissingImplementationWarning.
    assert docs(FIXTURES / "orders_full_d96a.edi")


# -- robustness: arbitrary bytes give events or ParseError, never anything else ------------


def _consume(data: bytes) -> None:
    start = time.perf_counter()
    try:
        for ev in EdifactParser().parse(io.BytesIO(data)):
            if isinstance(ev, Document) and ev.doc_type == "ORDERS":
                try:
                    map_orders(ev).model_dump_json()
                except MappingError as exc:
                    assert exc.reason
    except ParseError as exc:
        assert exc.reason and exc.position is not None
    assert time.perf_counter() - start < 5


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes(data: bytes):
    _consume(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["UNA:+.? 'UNB+UNOA:3+S+R+240101:1200+1'", "UNB+UNOC:3+S+R+240101:1200+1'"]),
    st.binary(max_size=500),
)
def test_random_bytes_after_a_valid_header(header: str, tail: bytes):
    _consume(header.encode() + tail)


_VALID = (FIXTURES / "orders_full_d96a.edi").read_bytes()
_ALPHABET = b"UNAZBHTGE+:'?,. \r\n\x00\xfc\xc3\x8b0123456789"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=len(_VALID)),
            st.sampled_from(["insert", "delete", "replace"]),
            st.binary(min_size=1, max_size=4) | st.sampled_from([bytes([c]) for c in _ALPHABET]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_mutated_valid_interchange(mutations: list[tuple[int, str, bytes]]):
    data = bytearray(_VALID)
    for pos, kind, chunk in mutations:
        pos = min(pos, len(data))
        if kind == "insert":
            data[pos:pos] = chunk
        elif kind == "delete":
            del data[pos : pos + len(chunk)]
        else:
            data[pos : pos + len(chunk)] = chunk
    _consume(bytes(data))
