"""Layer 2 of the EDIFACT reader, tokenizing: a message's text into segments, each
``[tag, element, ...]`` with composites as lists of components.

Text with no release character in it is split with whole-string operations
(`_split_segments`); anything else goes through pydifact's ``Tokenizer`` and
``Parser.convert_tokens_to_raw_segments`` (`_pydifact_tokenize`). Both give exactly the same
segments and the same syntax errors (tests/unit/test_edifact_tokenizer.py). See
`gateway.formats.edifact`.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterator
from typing import Any

from pydifact.control.characters import Characters
from pydifact.exceptions import EDISyntaxError
from pydifact.parser import Parser as _PydifactParser
from pydifact.tokenizer import Tokenizer

from gateway.formats.edifact.syntax import _NO_RELEASE_CANDIDATES, _Syntax

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
        if (
            r is not None
            and pos < n
            and text[pos] == r
            and (pos + 1 == n or text[pos + 1] in _SKIP)
        ):
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
