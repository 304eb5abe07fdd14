"""Which interchanges of a stored X12 or EDIFACT file are complete, found before parsing.

The parsers read a file as a stream and learn that an interchange has no trailer (IEA, UNZ)
only at its end, after its orders went by. A cut-off interchange may be missing orders, and
its acknowledgement is a rejection (TA1 ``R`` 023, CONTRL UCI ``4``); so the pipeline must
decide *before* it writes any order of it that none will be sent. This scan gives that
answer with a few byte searches over the stored body (no decoding, no splitting):

    incomplete_interchanges(body) -> {(interchange index (0-based, in file order), control number)}

The control number (ISA13, UNB 0020) is given with the index so that a caller matching the
parser's events can tell when the two count interchanges differently (an unreadable ISA
the parser skips).

An interchange is incomplete when its trailer is missing before the next header or the end
of the input, or when a functional group in it (GS/UNG) has no trailer (GE/UNE). The parser
reports the same on `InterchangeClosed.complete`; the scan only has to agree with it on the
files the parser can read. It uses the separators of the first interchange; a later
interchange with other separators ends the scan (the parser's own check still applies).
"""

from __future__ import annotations

import codecs
import itertools
import re
from collections.abc import Iterable

__all__ = ["incomplete_interchanges"]

_GAP = b" \t\r\n\x00"


Cut = set[tuple[int, str]]


def incomplete_interchanges(body: bytes) -> Cut:
    """(index, control number) of the interchanges in `body` that lack a trailer (empty for
    other formats). Searches `body` in place: no copy of a large file unless a VAN wrapped it."""
    start = len(codecs.BOM_UTF8) if body.startswith(codecs.BOM_UTF8) else 0
    while start < len(body) and body[start] in _GAP:
        start += 1
    if body.startswith(b"ISA", start) and len(body) > start + 3:
        return _x12(body, start)
    if body.startswith((b"UNA", b"UNB"), start):
        return _edifact(body, start)
    return set()


def _walk(tokens: Iterable[tuple[bytes, str]], header: bytes, trailer: bytes, g_open: bytes, g_close: bytes) -> Cut:
    bad: Cut = set()
    index = -1
    control = ""
    open_ix = group = False
    for tok, ctl in tokens:
        if tok == header:
            if open_ix:
                bad.add((index, control))
            index += 1
            control = ctl
            open_ix, group = True, False
        elif not open_ix:
            continue
        elif tok == g_open:
            if group:
                bad.add((index, control))
            group = True
        elif tok == g_close:
            group = False
        elif tok == trailer:
            if group:
                bad.add((index, control))
            open_ix = False
    if open_ix:
        bad.add((index, control))
    return bad


def _control(data: bytes, start: int, es: bytes, term: bytes, position: int) -> str:
    """The element at `position` of the segment starting at `start` (ISA13, UNB 0020)."""
    head = data[start : start + 400]
    if term.strip():
        head = head.split(term, 1)[0]
    parts = head.split(es)
    return parts[position].decode("latin-1").strip() if len(parts) > position else ""


def _x12(data: bytes, start: int) -> Cut:
    es = data[start + 3 : start + 4]
    if es.isalnum() or es in (b" ", b"\r", b"\n"):
        return set()  # not a usable separator: the parser refuses the file anyway
    parts = data[start : start + 400].split(es, 16)
    if len(parts) == 17 and any(b"\r" in p or b"\n" in p for p in [*parts[1:16], parts[16][:1]]):
        # A VAN wrapped the file at a fixed width: segment ids may be split; joined first.
        data, start = data[start:].replace(b"\r", b"").replace(b"\n", b""), 0
        parts = data[:400].split(es, 16)
    if len(parts) < 17 or len(parts[16]) < 2:
        return {(0, "")}  # the ISA itself is cut off
    term = parts[16][1:2]  # after ISA16; a line break when that is the terminator
    sep = rb"[\r\n]" if term in (b"\r", b"\n") else re.escape(term)
    pattern = re.compile(b"(?:" + sep + rb")[ \t\r\n]*(ISA|IEA|GS|GE)" + re.escape(es))
    first = [(b"ISA", _control(data, start, es, term, 13))]
    # Walked as found, not listed: four tokens per interchange would be ~100 MB for a 50 MB file.
    tokens = (
        (m.group(1), _control(data, m.start(1), es, term, 13) if m.group(1) == b"ISA" else "")
        for m in pattern.finditer(data, start + 3)
    )
    return _walk(itertools.chain(first, tokens), b"ISA", b"IEA", b"GS", b"GE")


def _edifact(data: bytes, start: int) -> Cut:
    tokens: list[tuple[bytes, str]] = []
    if data.startswith(b"UNA", start):
        if len(data) < start + 9:
            return {(0, "")}
        es, release, term = data[start + 4 : start + 5], data[start + 6 : start + 7], data[start + 8 : start + 9]
    else:
        es, release, term = b"+", b"?", b"'"
        tokens.append((b"UNB", _control(data, start, es, term, 5).split(":")[0]))
    if release.strip() and release != term:
        sep = rb"(?<!" + re.escape(release) + rb")" + re.escape(term)
    else:
        sep = re.escape(term)
    pattern = re.compile(b"(?:" + sep + rb")[ \t\r\n]*(?:UNA.{6})?(UNB|UNZ|UNG|UNE)" + re.escape(es), re.S)
    tokens += [
        (m.group(1), _control(data, m.start(1), es, term, 5).split(":")[0] if m.group(1) == b"UNB" else "")
        for m in pattern.finditer(data, start + 3)
    ]
    return _walk(tokens, b"UNB", b"UNZ", b"UNG", b"UNE")
