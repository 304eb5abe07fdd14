"""gateway.formats.envelope: the scan that finds cut-off interchanges before any of their
orders is written (issue 14 #21, reliability E5) agrees with the parsers."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.formats.base import InterchangeClosed
from gateway.formats.edifact import parse_edifact
from gateway.formats.envelope import incomplete_interchanges
from gateway.formats.x12 import parse_x12
from tests.support.x12gen import interchange, po

FIX = Path(__file__).resolve().parents[1] / "fixtures"


def x12(n: int, *pos: str) -> bytes:
    return interchange([po(p, st=f"{i + 1:04d}") for i, p in enumerate(pos)], icn=f"{n:09d}", gcn=str(n)).encode()


def parser_view(body: bytes, lenient: bool = False) -> set[tuple[int, str]]:
    events = parse_x12(body, lenient=lenient) if body.lstrip(b"\xef\xbb\xbf \r\n").startswith(b"ISA") else parse_edifact(body)
    return {
        (e.envelope.interchange_index, e.envelope.interchange_control_number or "")
        for e in events
        if isinstance(e, InterchangeClosed) and not e.complete
    }


CASES = {
    "complete": x12(1, "A", "B") + x12(2, "C"),
    "second cut before IEA": x12(1, "A") + x12(2, "B")[:-20],
    "first without IEA, then another ISA": x12(1, "A").replace(b"IEA*1*000000001~\n", b"") + x12(2, "B"),
    "group without GE": x12(1, "A").replace(b"GE*1*1~\n", b""),
    "no GE, no IEA": x12(1, "A").split(b"GE*")[0],
    "crlf and bom": b"\xef\xbb\xbf" + x12(1, "A").replace(b"~\n", b"~\r\n") + x12(2, "B").replace(b"~\n", b"~\r\n")[:-30],
    "newline terminator": (FIX / "x12" / "newline_terminator.edi").read_bytes(),
    "x12 truncated fixture": (FIX / "x12" / "truncated.edi").read_bytes(),
    "edifact two interchanges": (FIX / "edifact" / "two_interchanges.edi").read_bytes(),
    "edifact truncated": (FIX / "edifact" / "truncated.edi").read_bytes(),
    "edifact released terminator before UNZ text": b"UNA:+.? 'UNB+UNOC:3+S:14+R:14+261127:0930+IC1'UNH+1+ORDERS:D:96A:UN'FTX+AAI+++a?'UNZ+1+IC1'UNT+3+1'",
    "edifact complete": b"UNA:+.? 'UNB+UNOC:3+S:14+R:14+261127:0930+IC1'UNH+1+ORDERS:D:96A:UN'BGM+220+P+9'UNT+3+1'UNZ+1+IC1'",
}


@pytest.mark.parametrize("body", CASES.values(), ids=CASES.keys())
def test_scan_agrees_with_the_parser(body: bytes):
    """reliability E5: what the scan calls cut off is what the parser reports incomplete."""
    assert incomplete_interchanges(body) == parser_view(body)


def test_scan_reads_a_file_wrapped_at_80_columns():
    """issue 14 #22: a VAN's 80-column lines may split a segment id; the scan still finds IEA."""
    flat = (x12(1, "A") + x12(2, "B")[:-25]).replace(b"\n", b"")
    wrapped = b"\r\n".join(flat[i : i + 80] for i in range(0, len(flat), 80))
    assert incomplete_interchanges(wrapped) == {(1, "000000002")} == parser_view(wrapped, lenient=True)


def test_other_formats_are_not_scanned():
    assert incomplete_interchanges(b"<?xml version='1.0'?><cXML/>") == set()
    assert incomplete_interchanges(b"") == set()
