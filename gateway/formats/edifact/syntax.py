"""EDIFACT syntax: the character sets UNB may declare, the separators a UNA declares (or the
ISO 9735 defaults ``:+,? '``), and release-aware searches for terminators and line breaks.

Shared by the scan for interchanges (`scan`) and the tokenizer (`tokenizer`); see the
package docstring (`gateway.formats.edifact`) for how a file is read.
"""

from __future__ import annotations

import dataclasses
import functools
import re

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
