"""EDIFACT reader: bytes in, one `Document` per UNH..UNT message out.

How a file is read, in three layers:

1. **Split and decode** (`_scan`, before anything is yielded): a UTF-8 BOM is stripped
   (warning) and the file is cut into interchanges (UNA/UNB .. UNZ) by a release-aware scan
   for the service segments only, with each interchange's own separators (its UNA, or the
   defaults ``:+,? '``); pydifact would silently merge two interchanges in one string. Each
   interchange is then decoded strictly in the character set its UNB syntax identifier
   declares (`CHARSETS`: UNOA/UNOB ASCII, UNOC Latin-1, UNOD Latin-2, UNOE Cyrillic, UNOF
   Greek, UNOW/UNOY UTF-8, ...). An undecodable byte is a ParseError naming its offset, never
   ``errors="ignore"``, which silently changes names and addresses. Each UNB is read here
   too, so a file whose envelopes cannot be read fails before any event is yielded.
2. **Tokenize** (`_Interchange`): the interchange text is cut at its UNH/UNG/UNE/UNZ segments
   (the same cheap scan) and each piece is tokenized by pydifact (its ``Tokenizer`` and
   ``Parser.convert_tokens_to_raw_segments``: release characters, composites, custom
   separators), once. pydifact's ``Segment`` objects and directory validation are skipped:
   the wheel has no directories, so validation only emits ``MissingImplementationWarning``,
   and building the objects cost more than tokenizing. Line breaks right after a segment
   terminator are formatting; any other line break means the file was hard-wrapped (80-column
   VAN mailboxes). Both are removed before tokenizing, with a warning for wrapping. pydifact
   stops at the first syntax error, so each message is tokenized on its own: a syntax error
   rejects that message only.
3. **Checks and events**: what pydifact does not check is checked here: UNT segment count
   and reference, UNE and UNZ counts and references, a missing UNE or UNZ, segments outside
   any message, a message or file cut off. Events: `InterchangeOpened`, per message a
   `Document` (body: `EdifactMessage`) or a `DocumentRejected`, then `InterchangeClosed`
   with the sha256 of the interchange's normalized text (the UNA, then every segment with
   its terminator, line breaks removed) and its envelope-level errors.

Positions read ``segment N (line L)``. For documents and parse errors N counts the segments of
the file, UNA included; inside an `EdifactMessage` (mapping positions) N counts from UNH = 1,
as UNT does. pydifact's own line numbers are wrong ("line 0"), so lines are counted here,
lazily: only errors and traces need them.

The whole input is held in memory (pydifact tokenizes a string; EDIFACT files are small), and
one interchange's text plus the message being tokenized are worked on at a time.

Reason codes
    ParseError (the file cannot be read; raised before any event):
        NOT_EDIFACT       empty, UTF-16, or not starting with UNA or UNB (TRADACOMS STX files
                          among them)
        EDIFACT_UNA       a UNA is cut off or declares separators that cannot work
        EDIFACT_UNB       a UNB is missing, cut off, or has no syntax identifier
        EDIFACT_CHARSET   a byte that the declared character set does not have
        EDIFACT_SYNTAX    pydifact cannot tokenize a UNB segment
        DANGLING_RELEASE  the file ends with a release character that releases nothing
    DocumentRejected (one message; the others go on):
        EDIFACT_UNT_COUNT       UNT 0074 is not the number of segments from UNH to UNT
        EDIFACT_UNT_REF         UNT 0062 differs from UNH 0062
        EDIFACT_TRUNCATED       no UNT: the message ends at UNH/UNG/UNE/UNZ, at the next
                                interchange or at the end of the file, or its last segment
                                has no terminator
        EDIFACT_SYNTAX          pydifact cannot tokenize the message, or a segment tag is not
                                three upper-case letters/digits (an empty segment, ...)
        EDIFACT_UNH             UNH without message reference (0062) or message type (0065)
        EDIFACT_DUPLICATE_REF   UNH 0062 repeats an earlier message of the same interchange
    InterchangeClosed.errors (sentences): UNZ/UNE counts and references, a missing UNZ or UNE,
    segments outside any message, bytes between interchanges that are not EDIFACT, an
    interchange control reference repeated in the file.
"""

from __future__ import annotations

import codecs
import dataclasses
import functools
import hashlib
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from pydifact.control.characters import Characters
from pydifact.exceptions import EDISyntaxError
from pydifact.parser import Parser as _PydifactParser
from pydifact.tokenizer import Tokenizer

from gateway.errors import ParseError
from gateway.formats.base import (
    Document,
    DocumentRejected,
    Envelope,
    Event,
    InterchangeClosed,
    InterchangeOpened,
)

__all__ = ["CHARSETS", "EdifactMessage", "EdifactParser", "parse_edifact"]

# UNB S001 0001 syntax identifier -> Python codec. Decoding is strict. For the ISO 8859 sets
# the C1 control range 0x80-0x9F (in none of them) is refused too: it is what UTF-8 sent
# under a Latin-1 label usually holds. Unknown identifiers are read as ASCII, with a warning.
CHARSETS: dict[str, str] = {
    "UNOA": "ascii",
    "UNOB": "ascii",
    "UNOC": "iso-8859-1",
    "UNOD": "iso-8859-2",
    "UNOE": "iso-8859-5",
    "UNOF": "iso-8859-7",
    "UNOG": "iso-8859-3",
    "UNOH": "iso-8859-4",
    "UNOI": "iso-8859-6",
    "UNOJ": "iso-8859-8",
    "UNOK": "iso-8859-9",
    "UNOW": "utf-8",
    "UNOY": "utf-8",
    "IATA": "ascii",  # IATA syntax (airline messages), ASCII based
    "IATB": "ascii",
}
_C1 = re.compile("[\x80-\x9f]")
# Between interchanges: blanks, NUL padding and a DOS end-of-file mark are ignored.
_GAP = " \t\r\n\x00\x1a"
_TAG = re.compile(r"[A-Z][A-Z0-9]{2}")
# pydifact always has a release character; with none declared, one the text does not hold.
_NO_RELEASE_CANDIDATES = ("\uffff", "\ufffe", "\ue000", "\x00")
_SNIPPET = 40


@functools.lru_cache(maxsize=256)
def _tag_ok(tag: str) -> bool:
    return _TAG.fullmatch(tag) is not None


@dataclasses.dataclass(frozen=True, slots=True)
class _Syntax:
    """The service characters of one interchange (its UNA, or the defaults)."""

    component: str
    element: str
    decimal: str
    release: str | None  # None: the UNA has a space there, no release character is used
    reserved: str
    terminator: str
    una: str | None  # the UNA segment as sent: "UNA" and its 6 characters

    @property
    def blank_terminator(self) -> bool:
        return self.terminator in "\r\n"


# No UNA: ISO 9735 defaults, with a decimal comma.
_DEFAULT_SYNTAX = _Syntax(":", "+", ",", "?", " ", "'", None)


@dataclasses.dataclass(frozen=True, slots=True)
class _Patterns:
    """Regular expressions for one terminator and release character (cached)."""

    interchange_end: re.Pattern[str]  # a terminator, then UNZ / UNA / UNB
    chunk: re.Pattern[str]  # a terminator, then UNH / UNG / UNE / UNZ
    after_terminator: re.Pattern[str]  # line breaks (and blanks around them) after a terminator
    wrapped: re.Pattern[str] | None  # a line break that does not follow a terminator
    locator: re.Pattern[str]  # a release pair or a terminator, for finding segments
    gap: str  # characters that may interrupt a tag in a hard-wrapped file


@functools.lru_cache(maxsize=32)
def _patterns(terminator: str, release: str | None) -> _Patterns:
    t = re.escape(terminator)
    if terminator in "\r\n":
        ws, gap, gap_chars = "[ \\t]*", "", ""
    else:
        # A tag may itself be wrapped ("U\nNH"): line breaks are allowed between its letters.
        ws, gap, gap_chars = "[ \\t\\r\\n]*", "[\\r\\n]*", "\r\n"
    if release is None:
        locator = re.compile(t)
    elif terminator in "\r\n":
        locator = re.compile(f"{re.escape(release)}[\\s\\S]|{t}")
    else:
        locator = re.compile(f"{re.escape(release)}[\\r\\n]*[^\\r\\n]|{t}")
    return _Patterns(
        interchange_end=re.compile(f"{t}{ws}(U{gap}N{gap}[ZAB])"),
        chunk=re.compile(f"{t}{ws}(U{gap}N{gap}[HGEZ])"),
        after_terminator=re.compile(f"(?<={t})[ \\t]*[\\r\\n][ \\t\\r\\n]*"),
        wrapped=re.compile(f"[^{t}\\r\\n \\t][ \\t]*[\\r\\n]") if gap else None,
        locator=locator,
        gap=gap_chars,
    )


def _released(text: str, pos: int, release: str | None, gap: str) -> bool:
    """True if the character at `pos` is escaped: an odd run of release characters before it.

    Characters in `gap` (line breaks of a hard-wrapped file) inside the run are skipped.
    """
    if release is None:
        return False
    n = 0
    i = pos - 1
    while i >= 0:
        c = text[i]
        if c == release:
            n += 1
        elif not gap or c not in gap:
            break
        i -= 1
    return n % 2 == 1


def _find_terminator(text: str, start: int, syntax: _Syntax, gap: str) -> int:
    """Offset of the first unreleased terminator at or after `start`, or -1."""
    t = syntax.terminator
    pos = text.find(t, start)
    while pos >= 0 and _released(text, pos, syntax.release, gap):
        pos = text.find(t, pos + 1)
    return pos


def _find_last_terminator(text: str, syntax: _Syntax) -> int:
    """Offset of the last unreleased terminator in a normalized text, or -1."""
    pos = text.rfind(syntax.terminator)
    while pos >= 0 and _released(text, pos, syntax.release, ""):
        pos = text.rfind(syntax.terminator, 0, pos)
    return pos


def _unbreak(s: str) -> str:
    return s.replace("\r", "").replace("\n", "")


def _peek(view: str, pos: int, n: int) -> tuple[str, int]:
    """The next `n` characters from `pos`, line breaks skipped (a hard-wrapped tag), and the
    offset after them."""
    out = ""
    i, end = pos, len(view)
    while len(out) < n and i < end:
        if view[i] not in "\r\n":
            out += view[i]
        i += 1
    return out, i


def _starts_interchange(view: str, pos: int) -> bool:
    return _peek(view, pos, 3)[0] in ("UNA", "UNB")


def _skip_gap(view: str, pos: int) -> int:
    n = len(view)
    while pos < n and view[pos] in _GAP:
        pos += 1
    return pos


def _normalize(piece: str, syntax: _Syntax, pats: _Patterns) -> str:
    """The text pydifact reads: line breaks and indentation removed, wrapped lines joined."""
    if syntax.blank_terminator:
        if "\r\n" in piece:
            piece = piece.replace("\r\n", syntax.terminator)
    elif "\n" in piece or "\r" in piece:
        piece = pats.after_terminator.sub("", piece)
        if "\n" in piece or "\r" in piece:
            piece = _unbreak(piece)
    # A piece ends with its last terminator, or with blanks before the next piece's tag.
    return piece.rstrip(" \t") if piece[-1:] in (" ", "\t") else piece


_PARSER = _PydifactParser()


def _tokenize(text: str, chars: Characters) -> Iterator[list[Any]]:
    """``[tag, element, ...]`` per segment, exactly as pydifact's tokenizer gives them.

    `_split_segments` cuts the text with `str.find`/`str.split` (a regular expression only
    around release characters); where the text holds one of pydifact's oddities (a release
    before a line break or at the very end, content after the last terminator, a segment that
    starts with a terminator, clashing separators) pydifact itself reads it, so errors and
    their positions stay the same.
    """
    segments = _split_segments(text, chars)
    if segments is None:
        return _pydifact_tokenize(text, chars)
    return iter(segments)


def _pydifact_tokenize(text: str, chars: Characters) -> Iterator[list[Any]]:
    """pydifact's character-by-character tokenizer and raw-segment builder (the reference)."""
    tokens = Tokenizer().get_tokens(text, chars)
    return _PARSER.convert_tokens_to_raw_segments(tokens)


@dataclasses.dataclass(frozen=True, slots=True)
class _Splitter:
    """Compiled patterns for one set of separators (see `_split_segments`)."""

    segment: re.Pattern[str]  # a segment's content up to its terminator, release pairs included
    pieces: re.Pattern[str] | None  # release pairs and separators, for a segment holding releases
    unrelease: re.Pattern[str] | None


@functools.lru_cache(maxsize=32)
def _splitter(component: str, element: str, terminator: str, release: str | None) -> _Splitter:
    t = re.escape(terminator)
    if release is None:
        return _Splitter(re.compile(f"[^{t}]*"), None, None)
    r, c, e = re.escape(release), re.escape(component), re.escape(element)
    return _Splitter(
        # pydifact refuses a release before a line feed: such a pair ends the match.
        re.compile(f"(?:{r}[^\\n]|[^{r}{t}])*"),
        re.compile(f"(?:{r}[\\s\\S]|[^{r}{c}{e}])+|[{c}{e}]"),
        re.compile(f"{r}([\\s\\S])"),
    )


_SKIP = " \r\n"  # pydifact skips these after a terminator (its "line terminators")


def _split_segments(text: str, chars: Characters) -> list[list[Any]] | None:
    """The raw segments of `text`, or None when pydifact must read it (see `_tokenize`)."""
    c, e, t = chars.component_separator, chars.data_separator, chars.segment_terminator
    r: str | None = chars.escape_character
    if len({c, e, t, r}) < 4:
        return None
    if r is not None and r not in text:
        r = None
    sp = _splitter(c, e, t, r)
    match = sp.segment.match  # never None: the pattern matches the empty string
    n = len(text)
    pos = 0
    out: list[list[Any]] = []
    append = out.append
    while pos < n:
        if text[pos] == t:
            return None  # pydifact reads a terminator that opens a segment as content
        end = match(text, pos).end()  # type: ignore[union-attr]
        if end >= n or text[end] != t:
            return None  # content at the end, a release at the end or before a line feed
        raw = text[pos:end]
        if r is None or r not in raw:
            append([_element(el.split(c)) for el in raw.split(e)])
        else:
            append(_released_segment(raw, sp, c, e))
        pos = end + 1
        while pos < n and text[pos] in _SKIP:
            pos += 1
        if r is not None and pos < n and text[pos] == r and (pos + 1 == n or text[pos + 1] in _SKIP):
            return None  # pydifact skips (or stops at) a released blank after a terminator
    return out


def _element(parts: list[str]) -> Any:
    """pydifact's element: trailing empty components dropped; one component is a str."""
    while parts and not parts[-1]:
        parts.pop()
    if not parts:
        return ""
    if len(parts) == 1:
        return parts[0]
    return parts


def _released_segment(raw: str, sp: _Splitter, c: str, e: str) -> list[Any]:
    """A segment holding release characters: separators found by `sp.pieces`, pairs undone."""
    assert sp.pieces is not None and sp.unrelease is not None
    unrelease = sp.unrelease.sub
    segment: list[Any] = []
    parts: list[str] = [""]
    for m in sp.pieces.finditer(raw):
        piece = m.group()
        if piece == e:
            segment.append(_element(parts))
            parts = [""]
        elif piece == c:
            parts.append("")
        else:
            parts[-1] = unrelease(r"\1", piece)
    segment.append(_element(parts))
    return segment


def _characters(syntax: _Syntax, text: str) -> Characters:
    release = syntax.release
    if release is None:
        release = next((c for c in _NO_RELEASE_CANDIDATES if c not in text), "\uffff")
    return Characters(  # type: ignore[no-untyped-call]
        component_separator=syntax.component,
        data_separator=syntax.element,
        decimal_point=syntax.decimal,
        escape_character=release,
        reserved=syntax.reserved,
        segment_terminator=syntax.terminator,
    )


def _syntax_message(exc: EDISyntaxError) -> str:
    # pydifact's message carries wrong line numbers ("line 0"): keep only its text.
    msg = str(exc).removeprefix("EDIFACT Syntax Error: ")
    return re.sub(r" \(line \d+, column \d+\)$", "", msg)


def _component(seg: list[Any], i: int, j: int) -> str | None:
    """Component j of element i (simple elements are component 0), stripped, or None."""
    if i >= len(seg):
        return None
    v = seg[i]
    if v.__class__ is not str:
        v = v[j] if j < len(v) else ""
    elif j:
        return None
    return v.strip() or None


def _unh_version(s009: Any) -> str | None:
    """'D:96A:UN:EAN008': UNH S009 after the message type (0052:0054:0051:0057...)."""
    if s009.__class__ is str or len(s009) < 2:
        return None
    parts = list(s009[1:])
    while parts and not parts[-1]:
        parts.pop()
    return ":".join(parts) or None


def _ung_version(s008: Any) -> str | None:
    """UNG S008 (0052:0054:0057) as sent."""
    if not s008:
        return None
    parts = [s008] if s008.__class__ is str else list(s008)
    while parts and not parts[-1]:
        parts.pop()
    return ":".join(parts) or None


def _bad_tag(tag: Any, syntax: _Syntax) -> str:
    if tag.__class__ is not str:
        joined = syntax.component.join(tag)
        if joined.startswith(syntax.terminator):
            return "an empty segment (two segment terminators in a row)"
        return f"segment tag {joined[:_SNIPPET]!r} holds a component separator"
    if not tag:
        return "a segment without a tag (an empty segment or a stray separator)"
    return f"{tag[:_SNIPPET]!r} is not a segment tag (three upper-case letters or digits)"


class _Locator:
    """Finds where each segment of a piece of text starts, lazily (errors and traces only).

    `text[start:end]` is the piece as sent (line breaks and all); `line` is the line of its
    first character.
    """

    __slots__ = ("text", "start", "end", "line", "locator", "terminator", "_lines")

    def __init__(self, text: str, start: int, end: int, line: int, pats: _Patterns, term: str):
        self.text = text
        self.start = start
        self.end = end
        self.line = line
        self.locator = pats.locator
        self.terminator = term
        self._lines: list[int] | None = None

    def lines(self) -> list[int]:
        """The line each segment starts on, in order (and one for text after the last)."""
        if self._lines is not None:
            return self._lines
        text, end, t = self.text, self.end, self.terminator
        blank = t in " \t\r\n"
        line, pos = self.line, self.start
        lines = [line]
        for m in self.locator.finditer(text, self.start, end):
            if m.group() != t:
                continue
            nxt = m.end()
            while not blank and nxt < end and text[nxt] in " \t\r\n":
                nxt += 1
            line += text.count("\n", pos, nxt)
            pos = nxt
            lines.append(line)
        self._lines = lines
        return lines

    def line_of(self, k: int) -> int:
        lines = self.lines()
        return lines[k] if k < len(lines) else lines[-1]

    def count(self) -> int:
        """Complete segments (terminators) in the piece."""
        t = self.terminator
        return sum(
            1 for m in self.locator.finditer(self.text, self.start, self.end) if m.group() == t
        )


class EdifactMessage(list[list[Any]]):
    """The body of an EDIFACT `Document`: the segments of one message, UNH first, UNT last.

    Each segment is ``[tag, element, ...]``; a simple element is a string, a composite a list
    of strings (trailing empty components dropped, as pydifact gives them). Release
    characters are already resolved. `decimal_mark` is the one the UNA declares (``,``
    without a UNA). `where(k)` says where segment k (0-based, UNH = 0) is in the file, as
    ``segment k+1 (line L)``; `line(k)` is that line.
    """

    __slots__ = ("decimal_mark", "first_segment", "_locator")

    def __init__(
        self, segments: list[list[Any]], decimal_mark: str, first_segment: int, locator: _Locator
    ) -> None:
        super().__init__(segments)
        self.decimal_mark = decimal_mark
        self.first_segment = first_segment  # number of the UNH among the file's segments
        self._locator = locator

    def line(self, k: int) -> int:
        return self._locator.line_of(k)

    def where(self, k: int) -> str:
        return f"segment {k + 1} (line {self._locator.line_of(k)})"


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
    gap = pats.gap
    unb_line = line + view.count("\n", start, pos)
    where_unb = f"line {unb_line}, byte {pos}"
    tag, after_tag = _peek(view, pos, 3)
    if tag != "UNB":
        raise ParseError(
            f"the UNA is not followed by a UNB interchange header (found {view[pos : pos + 20]!r})",
            reason="EDIFACT_UNB",
            position=where_unb,
        )
    unb_term = _find_terminator(view, after_tag, syntax, gap)
    if unb_term < 0:
        raise ParseError(
            "the UNB interchange header has no segment terminator: the file is cut off, or its "
            f"terminator is not {syntax.terminator!r}",
            reason="EDIFACT_UNB",
            position=where_unb,
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
            position=where_unb,
        )
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
    unb_norm = text[unb_start : unb_end + 1]
    if gap:
        unb_norm = _unbreak(unb_norm)
    try:
        unb = list(_tokenize(unb_norm, _characters(syntax, unb_norm)))
    except EDISyntaxError as exc:
        raise ParseError(
            f"the UNB cannot be tokenized: {_syntax_message(exc)}",
            reason="EDIFACT_SYNTAX",
            position=where_unb,
        ) from exc
    if len(unb) != 1 or unb[0][0] != "UNB":
        raise ParseError(
            "the UNB interchange header cannot be read", reason="EDIFACT_UNB", position=where_unb
        )
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
        unb=unb[0],
        unb_norm=unb_norm,
        warnings=warnings,
        problems=[],
    )
    return raw, end


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


# --------------------------------------------------------------------------------------------
# Layers 2 and 3: tokenize and check one interchange


@dataclasses.dataclass(slots=True)
class _FileState:
    name: str
    doc_index: int = 0  # of the next message in the file
    segments: int = 0  # segments of the file read so far
    interchange_keys: set[str] = dataclasses.field(default_factory=set)


@dataclasses.dataclass(slots=True)
class _Group:
    envelope: Envelope
    reference: str | None
    where: str
    messages: int = 0


class _Interchange:
    """Reads the messages of one interchange and yields its events, closing event last."""

    def __init__(self, raw: _Raw, index: int, state: _FileState):
        self.raw = raw
        self.text = raw.text
        self.state = state
        self.syntax = raw.syntax
        self.pats = _patterns(raw.syntax.terminator, raw.syntax.release)
        self.chars = _characters(raw.syntax, raw.text)
        self.errors: list[str] = []
        self.digest = hashlib.sha256()
        unb = raw.unb
        self.envelope = Envelope(
            standard="edifact",
            sender_id=_component(unb, 2, 0),
            sender_qualifier=_component(unb, 2, 1),
            receiver_id=_component(unb, 3, 0),
            receiver_qualifier=_component(unb, 3, 1),
            interchange_control_number=_component(unb, 5, 0),
            test_indicator=_component(unb, 11, 0),
            ack_requested=_component(unb, 9, 0) == "1",
            interchange_index=index,
        )
        self._envelopes: dict[tuple[Envelope, str | None], Envelope] = {}
        self.refs: set[str] = set()

    # -- the walk ---------------------------------------------------------------------------

    def events(self) -> Iterator[Event]:
        raw, text, syntax, pats = self.raw, self.text, self.syntax, self.pats
        env = self.envelope
        state = self.state
        if env.interchange_control_number is None:
            self.errors.append("the UNB has no interchange control reference (0020)")
        key = env.interchange_key
        if key is not None:
            if key in state.interchange_keys:
                self.errors.append(
                    f"UNB 0020 {env.interchange_control_number} from this sender repeats an "
                    "earlier interchange in the same file"
                )
            state.interchange_keys.add(key)
        yield InterchangeOpened(envelope=env, warnings=list(raw.warnings))

        digest = self.digest
        if syntax.una is not None:
            digest.update(syntax.una.encode("utf-8"))
            state.segments += 1
        digest.update(raw.unb_norm.encode("utf-8"))
        state.segments += 1

        # Cut the rest at its UNH / UNG / UNE / UNZ segments: (offset of the tag, end).
        cuts: list[int] = []
        search = raw.unb_end
        chunk_re, release, gap = pats.chunk, syntax.release, pats.gap
        while True:
            m = chunk_re.search(text, search)
            if m is None:
                break
            if release is not None and _released(text, m.start(), release, gap):
                search = m.start() + 1
                continue
            cuts.append(m.start(1))
            search = m.end()
        line = raw.line + text.count("\n", 0, raw.unb_start)
        line_pos = raw.unb_start
        first = cuts[0] if cuts else len(text)
        lead = _skip_gap(text, raw.unb_end + 1)
        if lead < first:
            line += text.count("\n", line_pos, lead)
            line_pos = lead
            self._outside(lead, first, line, "UNB")

        group: _Group | None = None
        groups = messages = 0
        unz: list[Any] | None = None
        unz_where = ""
        for k, at in enumerate(cuts):
            end = cuts[k + 1] if k + 1 < len(cuts) else len(text)
            line += text.count("\n", line_pos, at)
            line_pos = at
            tag = text[at : at + 3]
            if not tag.isalpha():  # a hard-wrapped tag ("U\nNH")
                tag = _unbreak(text[at : at + 8])[:3]
            if tag == "UNH":
                messages += 1
                if group is not None:
                    group.messages += 1
                yield self._message(at, end, line, group)
                continue
            where = f"segment {state.segments + 1} (line {line})"
            segs = self._outside(at, end, line, tag, service=True)
            head = segs[0] if segs else [tag]
            if tag == "UNG":
                if group is not None:
                    self.errors.append(
                        f"the UNG at {where} opens a group before the UNE of group "
                        f"{group.reference}"
                    )
                groups += 1
                reference = _component(head, 5, 0)
                group = _Group(
                    envelope=dataclasses.replace(
                        env,
                        group_control_number=reference,
                        functional_id=_component(head, 1, 0),
                        version=_ung_version(head[7] if len(head) > 7 else None),
                    ),
                    reference=reference,
                    where=where,
                )
            elif tag == "UNE":
                if group is None:
                    self.errors.append(f"the UNE at {where} closes no group (no UNG before it)")
                else:
                    self._check_count(
                        head,
                        group.messages,
                        f"UNE 0060 at {where}",
                        f"messages in group {group.reference}",
                    )
                    ref = _component(head, 2, 0)
                    if ref != group.reference:
                        self.errors.append(
                            f"UNE 0048 {ref!r} at {where} does not match UNG 0048 "
                            f"{group.reference!r}"
                        )
                group = None
            elif unz is None:  # UNZ
                unz, unz_where = head, where

        if group is not None:
            self.errors.append(f"the group {group.reference} opened at {group.where} has no UNE")
        if unz is None:
            self.errors.append(
                "the interchange has no UNZ trailer: the file may be cut off, so messages may "
                "be missing"
            )
        else:
            if groups:
                self._check_count(unz, groups, f"UNZ 0036 at {unz_where}", "groups")
            else:
                self._check_count(unz, messages, f"UNZ 0036 at {unz_where}", "messages")
            ref = _component(unz, 2, 0)
            if ref != env.interchange_control_number:
                self.errors.append(
                    f"UNZ 0020 {ref!r} at {unz_where} does not match UNB 0020 "
                    f"{env.interchange_control_number!r}"
                )
        yield InterchangeClosed(
            envelope=env,
            digest=digest.hexdigest(),
            errors=self.errors + raw.problems,
            document_count=messages,
            complete=unz is not None and group is None,
        )

    def _check_count(self, seg: list[Any], actual: int, label: str, what: str) -> None:
        value = _component(seg, 1, 0)
        if value is None or not (value.isascii() and value.isdigit()) or int(value) != actual:
            self.errors.append(f"{label} says {value!r} but there are {actual} {what}")

    # -- pieces outside messages ------------------------------------------------------------

    def _tokenize_piece(
        self, start: int, end: int, line: int
    ) -> tuple[list[list[Any]], str | None, _Locator, int]:
        """Tokenize text[start:end]: (segments, problem or None, locator, segments counted)."""
        syntax = self.syntax
        locator = _Locator(self.text, start, end, line, self.pats, syntax.terminator)
        norm = _normalize(self.text[start:end], syntax, self.pats)
        self.digest.update(norm.encode("utf-8"))
        problem: str | None = None
        body = norm
        if body[-1:] != syntax.terminator or _released(body, len(body) - 1, syntax.release, ""):
            body = body[: _find_last_terminator(body, syntax) + 1]
            problem = "the last segment has no segment terminator (the input is cut off)"
        segs: list[list[Any]] = []
        try:
            for seg in _tokenize(body, self.chars):
                segs.append(seg)
        except EDISyntaxError as exc:
            bad = len(segs)
            return (
                segs,
                f"{_syntax_message(exc)} (line {locator.line_of(bad)})",
                locator,
                max(locator.count(), bad + 1),
            )
        for k, seg in enumerate(segs):
            if seg[0].__class__ is not str or not _tag_ok(seg[0]):
                problem = f"{_bad_tag(seg[0], syntax)} (line {locator.line_of(k)})"
                return segs[:k], problem, locator, max(locator.count(), len(segs))
        return segs, problem, locator, len(segs) + (1 if problem else 0)

    def _outside(
        self, start: int, end: int, line: int, after: str, *, service: bool = False
    ) -> list[list[Any]]:
        """A UNG/UNE/UNZ piece, or segments between the UNB and the first message.

        Returns the segments; anything that is not the service segment itself is reported.
        """
        state = self.state
        where = f"segment {state.segments + 1} (line {line})"
        segs, problem, locator, n = self._tokenize_piece(start, end, line)
        if problem is not None:
            self.errors.append(f"the {after} at {where} cannot be read: {problem}")
        for k, seg in enumerate(segs):
            if service and k == 0 and seg[0] == after:
                continue
            self.errors.append(
                f"segment {seg[0]} at segment {state.segments + 1 + k} (line "
                f"{locator.line_of(k)}) is outside any message and was ignored"
            )
        state.segments += n
        return segs if service and segs and segs[0][0] == after else []

    # -- messages ---------------------------------------------------------------------------

    def _message(
        self, start: int, end: int, line: int, group: _Group | None
    ) -> Document | DocumentRejected:
        """One UNH..UNT message: a Document, or a DocumentRejected saying why not."""
        syntax, state = self.syntax, self.state
        seg_no = state.segments + 1
        locator = _Locator(self.text, start, end, line, self.pats, syntax.terminator)
        norm = _normalize(self.text[start:end], syntax, self.pats)
        self.digest.update(norm.encode("utf-8"))
        index = state.doc_index
        state.doc_index += 1
        position = f"segment {seg_no} (line {line})"
        envelope = group.envelope if group is not None else self.envelope

        truncated = False
        body = norm
        term = syntax.terminator
        if body[-1:] != term or _released(body, len(body) - 1, syntax.release, ""):
            body = body[: _find_last_terminator(body, syntax) + 1]
            truncated = True
        segs: list[list[Any]] = []
        try:
            for seg in _tokenize(body, self.chars):
                segs.append(seg)
        except EDISyntaxError as exc:
            bad = len(segs)
            state.segments += max(locator.count(), bad + 1)
            return self._reject(
                envelope,
                segs,
                index,
                position,
                "EDIFACT_SYNTAX",
                f"{_syntax_message(exc)} at segment {seg_no + bad} (line {locator.line_of(bad)})",
            )
        n_segs = len(segs) + (1 if truncated else 0)
        for k, seg in enumerate(segs):
            tag = seg[0]
            if tag.__class__ is not str or not _tag_ok(tag):
                state.segments += max(locator.count(), n_segs)
                return self._reject(
                    envelope,
                    segs[:k],
                    index,
                    position,
                    "EDIFACT_SYNTAX",
                    f"{_bad_tag(tag, syntax)} at segment {seg_no + k} (line {locator.line_of(k)})",
                )
        state.segments += n_segs
        if not segs:
            return self._reject(
                envelope,
                segs,
                index,
                position,
                "EDIFACT_TRUNCATED",
                "the input ends inside the UNH segment",
            )

        unh = segs[0]
        ref = _component(unh, 1, 0)
        s009 = unh[2] if len(unh) > 2 else ""
        doc_type = (s009 if s009.__class__ is str else s009[0]).strip()
        problems: list[tuple[str, str]] = []
        if ref is None or not doc_type:
            problems.append(
                ("EDIFACT_UNH", "the UNH has no message reference (0062) or no message type (0065)")
            )
        elif ref in self.refs:
            problems.append(
                (
                    "EDIFACT_DUPLICATE_REF",
                    f"UNH 0062 {ref!r} repeats an earlier message of this interchange",
                )
            )
        if ref is not None:
            self.refs.add(ref)

        # The UNT; what follows it up to the next UNH/UNG/UNE/UNZ is outside any message.
        unt_at = next((k for k in range(len(segs) - 1, 0, -1) if segs[k][0] == "UNT"), -1)
        if unt_at < 0:
            cause = (
                "its last segment has no terminator, the input is cut off"
                if truncated
                else "it ends at the next UNH/UNG/UNE/UNZ or at the end of the interchange"
            )
            problems.insert(0, ("EDIFACT_TRUNCATED", f"the message has no UNT trailer ({cause})"))
        else:
            for k in range(unt_at + 1, len(segs)):
                self.errors.append(
                    f"segment {segs[k][0]} at segment {seg_no + k} (line {locator.line_of(k)}) "
                    "after a UNT is outside any message and was ignored"
                )
            if truncated:
                self.errors.append(
                    f"the input ends inside a segment after the UNT of message {ref} (line "
                    f"{locator.line_of(len(segs))})"
                )
            del segs[unt_at + 1 :]
            unt = segs[unt_at]
            count = _component(unt, 1, 0)
            if count is None or not (count.isascii() and count.isdigit()) or int(count) != len(segs):
                problems.append(
                    (
                        "EDIFACT_UNT_COUNT",
                        f"UNT 0074 says {count!r} segments but the message has {len(segs)} "
                        "(UNH to UNT); a wrong count can mean lost segments, so ask the sender "
                        "to resend it",
                    )
                )
            unt_ref = _component(unt, 2, 0)
            if unt_ref != ref:
                problems.append(
                    ("EDIFACT_UNT_REF", f"UNT 0062 {unt_ref!r} does not match UNH 0062 {ref!r}")
                )
        if problems:
            return self._reject(
                envelope,
                segs,
                index,
                position,
                problems[0][0],
                "; ".join(m for _, m in problems),
            )
        return Document(
            envelope=self._doc_envelope(envelope, _unh_version(s009)),
            doc_type=doc_type,
            control_number=ref,
            body=EdifactMessage(segs, syntax.decimal, seg_no, locator),
            position=position,
            index=index,
        )

    def _doc_envelope(self, envelope: Envelope, version: str | None) -> Envelope:
        # Keyed by the envelope itself, not id(): a group's envelope freed at its UNE can be
        # reallocated at the same address for the next group's, and would match wrongly.
        key = (envelope, version)
        cached = self._envelopes.get(key)
        if cached is None:
            cached = dataclasses.replace(envelope, version=version)
            self._envelopes[key] = cached
        return cached

    def _reject(
        self,
        envelope: Envelope,
        segs: list[list[Any]],
        index: int,
        position: str,
        reason: str,
        message: str,
    ) -> DocumentRejected:
        unh = segs[0] if segs and segs[0][0] == "UNH" else ["UNH"]
        ref = _component(unh, 1, 0)
        s009 = unh[2] if len(unh) > 2 else ""
        doc_type = (s009 if s009.__class__ is str else s009[0]).strip() or None
        return DocumentRejected(
            envelope=self._doc_envelope(envelope, _unh_version(s009)),
            doc_type=doc_type,
            control_number=ref,
            reason=reason,
            message=f"message {doc_type or '?'} {ref or '(no reference)'} rejected: {message}",
            position=position,
            index=index,
        )


class EdifactParser:
    """Reads EDIFACT interchanges; one `Document` per UNH..UNT message (ORDERS, INVOIC, ...).

    Messages of every type are yielded, with their `doc_type`; the caller decides.
    """

    name = "edifact"

    def sniff(self, head: bytes) -> bool:
        """True if `head` starts with a UNA or UNB segment (after a UTF-8 BOM and blanks)."""
        if head.startswith(codecs.BOM_UTF8):
            head = head[len(codecs.BOM_UTF8) :]
        head = head.lstrip(b" \t\r\n\x00")
        if not (head.startswith(b"UNA") or head.startswith(b"UNB")):
            return False
        nxt = head[3:4]
        return not nxt or not (nxt.isalnum() or nxt in b" \t\r\n")

    def parse(self, stream: BinaryIO, *, name: str = "<input>") -> Iterator[Event]:
        """Yield the events of a binary stream.

        Raises ParseError (NOT_EDIFACT, EDIFACT_UNA, EDIFACT_UNB, EDIFACT_CHARSET or
        EDIFACT_SYNTAX) before yielding anything if an interchange envelope cannot be read or
        decoded; problems inside interchanges are reported on the events instead.
        """
        data = stream.read()
        if isinstance(data, str):  # a text stream slipped in: take it as UTF-8
            data = data.encode("utf-8")
        raws = _scan(bytes(data))
        state = _FileState(name)
        for index, raw in enumerate(raws):
            yield from _Interchange(raw, index, state).events()


def parse_edifact(
    source: bytes | str | Path | BinaryIO, *, name: str | None = None
) -> Iterator[Event]:
    """Events of EDIFACT input given as bytes, text, a path or a binary stream (convenience)."""
    if isinstance(source, Path):
        with source.open("rb") as stream:
            yield from EdifactParser().parse(stream, name=name or source.name)
        return
    if isinstance(source, str):
        source = source.encode("utf-8")
    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(source)
    yield from EdifactParser().parse(source, name=name or "<input>")
