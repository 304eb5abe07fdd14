"""Layer 1 of the EDIFACT reader: split the file into interchanges, decode each in its
declared character set, read each UNA and UNB, before any event is yielded. See the package
docstring (`gateway.formats.edifact`).
"""

from __future__ import annotations

import codecs
import dataclasses
import re
from typing import Any

from pydifact.exceptions import EDISyntaxError

from gateway.errors import ParseError
from gateway.formats.edifact.syntax import (
    _C1,
    _DEFAULT_SYNTAX,
    _GAP,
    _SNIPPET,
    CHARSETS,
    _find_terminator,
    _Patterns,
    _patterns,
    _peek,
    _released,
    _skip_gap,
    _starts_interchange,
    _Syntax,
    _unbreak,
)
from gateway.formats.edifact.tokenizer import _characters, _syntax_message, _tokenize

# --------------------------------------------------------------------------------------------
# Layer 1: split into interchanges, decode, read each UNB


@dataclasses.dataclass(slots=True)
class _Raw:
    """One interchange of the file, decoded, with its UNB read."""

    start: int  # byte offset of its UNA or UNB
    line: int  # line of `start`
    syntax: _Syntax
    text: str  # decoded, from the UNA/UNB to the end of its UNZ (or where it stops)
    unb_start: int  # offset of the UNB in `text`
    unb_end: int  # offset of the UNB's terminator in `text`
    unb: list[Any]  # the UNB segment, tokenized
    unb_norm: str  # the UNB as tokenized (line breaks removed)
    warnings: list[str]
    problems: list[str]  # found after it: bytes up to the next interchange that are not one


def _scan(data: bytes) -> list[_Raw]:
    """Cut the file into interchanges, decode each and read its UNB. Raises ParseError."""
    warnings: list[str] = []
    offset = 0
    if data.startswith(codecs.BOM_UTF8):
        offset = len(codecs.BOM_UTF8)
        warnings.append("a UTF-8 byte order mark at the start was removed")
    elif data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        raise ParseError(
            "the input is UTF-16 text; EDIFACT comes in the character set its UNB declares "
            "(ASCII, ISO 8859 or UTF-8): ask the sender not to convert it to UTF-16",
            reason="NOT_EDIFACT",
            position="byte 0",
        )
    # Latin-1 maps each byte to one character, so offsets in `view` are byte offsets, and the
    # ASCII service characters are found whatever the declared set: ISO 8859 sets are
    # single-byte, and UTF-8 never uses ASCII bytes inside a multi-byte character.
    view = data.decode("latin-1")
    pos = _skip_gap(view, offset)
    if pos >= len(view):
        raise ParseError("the input is empty", reason="NOT_EDIFACT", position="byte 0")
    if not _starts_interchange(view, pos):
        raise ParseError(
            f"the input does not start with an EDIFACT UNA or UNB segment (it starts with "
            f"{view[pos : pos + 20]!r}); check that the file really is EDIFACT",
            reason="NOT_EDIFACT",
            position=f"line {view.count(chr(10), 0, pos) + 1}, byte {pos}",
        )
    raws: list[_Raw] = []
    line, line_pos = 1, 0
    while True:
        line += view.count("\n", line_pos, pos)
        line_pos = pos
        raw, end = _read_interchange(data, view, pos, line)
        raws.append(raw)
        pos = _skip_gap(view, end)
        if pos >= len(view):
            break
        if not _starts_interchange(view, pos):
            nxt = _next_interchange_start(view, pos, raw.syntax.terminator)
            junk = view[pos:nxt].strip(_GAP)
            raw.problems.append(
                f"{nxt - pos} bytes from byte {pos} (line "
                f"{line + view.count(chr(10), line_pos, pos)}) after the interchange are not "
                f"part of one and were ignored: {junk[:_SNIPPET]!r}"
            )
            pos = nxt
            if pos >= len(view):
                break
    _check_dangling_release(view, raws[-1].syntax)
    raws[0].warnings[:0] = warnings
    return raws


def _check_dangling_release(view: str, syntax: _Syntax) -> None:
    """A release character with nothing after it but blanks ends the file: it releases
    nothing, so the file was cut off or mangled (reliability E10). ParseError DANGLING_RELEASE."""
    release = syntax.release
    if release is None:
        return
    end = len(view.rstrip(_GAP))
    if end and view[end - 1] == release and not _released(view, end - 1, release, ""):
        raise ParseError(
            f"the file ends with a lone release character {release!r}: it releases nothing, so "
            "the file is cut off or damaged; ask the sender to send it again",
            reason="DANGLING_RELEASE",
            position=f"line {view.count(chr(10), 0, end - 1) + 1}, byte {end - 1}",
        )


_UNA_UNB = re.compile("UN[AB]")


def _next_interchange_start(view: str, pos: int, term: str) -> int:
    """The next UNA/UNB at the start of a line or after a terminator, else the end."""
    for m in _UNA_UNB.finditer(view, pos):
        i = m.start() - 1
        while i >= pos and view[i] in " \t":
            i -= 1
        if i < pos or view[i] in ("\n", "\r", term):
            return m.start()
    return len(view)


def _read_una(view: str, pos: int, line: int, warnings: list[str]) -> tuple[_Syntax, int]:
    """The separators a UNA at `pos` declares, and the offset after it."""
    _, after_tag = _peek(view, pos, 3)
    # Five service characters, then the terminator. None of the five may be a line break,
    # so line breaks among them come from hard wrapping. A line break in sixth place is the
    # terminator if the UNB follows it, else the wrap is just before the terminator.
    chars, after = _peek(view, after_tag, 5)
    if after < len(view) and view[after] in "\r\n":
        nxt, end = _peek(view, after, 1)
        if _peek(view, after, 3)[0] == "UNB":
            crlf = view.startswith("\r\n", after)
            chars, after = chars + ("\n" if crlf else view[after]), after + (2 if crlf else 1)
        else:
            chars, after = chars + nxt, end
    elif after < len(view):
        chars, after = chars + view[after], after + 1
    where = f"line {line}, byte {pos}"
    if len(chars) < 6:
        raise ParseError(
            f"the UNA segment is cut off: it needs 6 service characters, found {chars!r}",
            reason="EDIFACT_UNA",
            position=where,
        )
    comp, elem, decimal, release, reserved, term = tuple(chars)
    problems = []
    if not chars.isascii():
        problems.append("service characters must be ASCII")
    for c, what in ((comp, "component separator"), (elem, "data element separator")):
        if c.isalnum() or c in " \t\r\n":
            problems.append(f"the {what} {c!r} is a letter, digit or blank")
    if term.isalnum() or term in " \t":
        problems.append(f"the segment terminator {term!r} is a letter, digit or blank")
    if len({comp, elem, term}) < 3:
        problems.append(
            f"separators must differ: component {comp!r}, element {elem!r}, terminator {term!r}"
        )
    rel: str | None = release
    if release == " ":
        rel = None  # syntax version 4: a space says no release character is used
    elif release in (comp, elem, term) or release.isalnum() or release in "\t\r\n":
        problems.append(f"the release character {release!r} clashes with a separator")
    if problems:
        raise ParseError(
            f"the UNA {'UNA' + chars!r} cannot be used: " + "; ".join(problems),
            reason="EDIFACT_UNA",
            position=where,
        )
    if decimal not in ",.":
        warnings.append(
            f"the UNA declares {decimal!r} as decimal mark; numbers are read with ',' or '.'"
        )
        decimal = ","
    return _Syntax(comp, elem, decimal, rel, reserved, term, "UNA" + chars), after


def _read_interchange(data: bytes, view: str, pos: int, line: int) -> tuple[_Raw, int]:
    """The interchange starting at `pos` (a UNA or UNB), and the byte offset after it."""
    warnings: list[str] = []
    start = pos
    if _peek(view, pos, 3)[0] == "UNA":
        syntax, after_una = _read_una(view, pos, line, warnings)
        pos = _skip_gap(view, after_una)
    else:
        syntax = _DEFAULT_SYNTAX
    pats = _patterns(syntax.terminator, syntax.release)
    unb_line = line + view.count("\n", start, pos)
    where_unb = f"line {unb_line}, byte {pos}"
    unb_term, syntax_id = _find_unb(view, pos, syntax, pats.gap, where_unb)
    codec = CHARSETS.get(syntax_id.upper())
    if codec is None:
        codec = "ascii"
        warnings.append(
            f"the UNB syntax identifier {syntax_id!r} is not one the gateway knows; the "
            "interchange was read as ASCII"
        )
    end = _interchange_end(view, unb_term + 1, syntax, pats)
    text = _decode(data, start, end, codec, syntax_id, warnings)
    unb_start, unb_end = pos - start, unb_term - start
    unb, unb_norm = _read_unb(text[unb_start : unb_end + 1], syntax, pats.gap, where_unb)
    if pats.wrapped is not None and pats.wrapped.search(text):
        warnings.append(
            "the interchange is hard-wrapped (line breaks inside segments, as 80-column "
            "mailboxes do); the line breaks were removed"
        )
    elif re.search(f"{re.escape(syntax.terminator)}[\\r\\n]+[ \\t]+\\S", text):
        warnings.append("segments are indented; the indentation was removed")
    raw = _Raw(
        start=start,
        line=line,
        syntax=syntax,
        text=text,
        unb_start=unb_start,
        unb_end=unb_end,
        unb=unb,
        unb_norm=unb_norm,
        warnings=warnings,
        problems=[],
    )
    return raw, end


def _find_unb(view: str, pos: int, syntax: _Syntax, gap: str, where: str) -> tuple[int, str]:
    """(the offset of the UNB's terminator, its syntax identifier, e.g. UNOC) of the UNB at
    `pos`, read before the interchange is decoded; ParseError when there is none."""
    tag, after_tag = _peek(view, pos, 3)
    if tag != "UNB":
        raise ParseError(
            f"the UNA is not followed by a UNB interchange header (found {view[pos : pos + 20]!r})",
            reason="EDIFACT_UNB",
            position=where,
        )
    unb_term = _find_terminator(view, after_tag, syntax, gap)
    if unb_term < 0:
        raise ParseError(
            "the UNB interchange header has no segment terminator: the file is cut off, or its "
            f"terminator is not {syntax.terminator!r}",
            reason="EDIFACT_UNB",
            position=where,
        )
    unb_raw = view[pos : unb_term + 1]
    unb_flat = _unbreak(unb_raw) if gap else unb_raw
    separators = re.escape(syntax.component + syntax.element + syntax.terminator)
    syntax_id = re.split(f"[{separators}]", unb_flat[4:], maxsplit=1)[0].strip()
    if not syntax_id:
        raise ParseError(
            "the UNB has no syntax identifier (S001 0001, e.g. UNOC); the interchange cannot "
            "be read",
            reason="EDIFACT_UNB",
            position=where,
        )
    return unb_term, syntax_id


def _read_unb(unb_text: str, syntax: _Syntax, gap: str, where: str) -> tuple[list[Any], str]:
    """(the UNB segment, its decoded text without line breaks); ParseError when it cannot
    be tokenized as one UNB."""
    unb_norm = _unbreak(unb_text) if gap else unb_text
    try:
        unb = list(_tokenize(unb_norm, _characters(syntax, unb_norm)))
    except EDISyntaxError as exc:
        raise ParseError(
            f"the UNB cannot be tokenized: {_syntax_message(exc)}",
            reason="EDIFACT_SYNTAX",
            position=where,
        ) from exc
    if len(unb) != 1 or unb[0][0] != "UNB":
        raise ParseError(
            "the UNB interchange header cannot be read", reason="EDIFACT_UNB", position=where
        )
    return unb[0], unb_norm


def _interchange_end(view: str, pos: int, syntax: _Syntax, pats: _Patterns) -> int:
    """Where the interchange ends: after its UNZ, before the next UNA/UNB, or at the end."""
    gap = pats.gap
    n = len(view)
    while True:
        m = pats.interchange_end.search(view, pos)
        if m is None:
            break
        if _released(view, m.start(), syntax.release, gap):
            pos = m.start() + 1
            continue
        after = m.end(1)
        while after < n and view[after] in gap:
            after += 1
        follower = view[after : after + 1]
        if m.group(1)[-1] == "Z":
            if follower in (syntax.element, syntax.terminator):
                term = _find_terminator(view, after, syntax, gap)
                return term + 1 if term >= 0 else n
        elif follower and not (follower.isalnum() or follower in " \t\r\n"):
            return m.start() + 1  # the next interchange starts without a UNZ before it
        pos = m.end()
    return len(view.rstrip(_GAP.replace(syntax.terminator, "")))


def _decode(
    data: bytes, start: int, end: int, codec: str, syntax_id: str, warnings: list[str]
) -> str:
    raw = data[start:end]
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as exc:
        at = start + exc.start
        raise ParseError(
            f"byte 0x{raw[exc.start : exc.start + 1].hex()} at byte {at} is not in the "
            f"character set {syntax_id} ({codec}) that the UNB declares{_charset_hint(raw)}; "
            "the interchange cannot be read as sent",
            reason="EDIFACT_CHARSET",
            position=_byte_position(data, at),
        ) from exc
    if codec.startswith("iso-8859"):
        c1 = _C1.search(text)
        if c1 is not None:
            at = start + c1.start()
            raise ParseError(
                f"byte 0x{ord(c1.group()):02x} at byte {at} is a control code that {syntax_id} "
                f"({codec}) does not have{_charset_hint(raw)}; the interchange cannot be read "
                "as sent",
                reason="EDIFACT_CHARSET",
                position=_byte_position(data, at),
            )
        if not raw.isascii() and _is_utf8(raw):
            warnings.append(
                f"the interchange declares {syntax_id} ({codec}) but its non-ASCII bytes are "
                "valid UTF-8; it was read as declared, so an accented letter may show as two "
                "characters (UTF-8 sent under the wrong syntax identifier?)"
            )
    return text


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _charset_hint(raw: bytes) -> str:
    if _is_utf8(raw):
        return " (the bytes are valid UTF-8: the sender probably meant UNOW or UNOY)"
    return " (the bytes look like an ISO 8859 set: UNOC for Latin-1, UNOD for Latin-2, ...)"


def _byte_position(data: bytes, at: int) -> str:
    line = data.count(b"\n", 0, at) + 1
    return f"line {line}, byte {at}"
