"""The body of an EDIFACT `Document` (`EdifactMessage`), where its segments are in the file
(`_Locator`, lines counted lazily), and reading service-segment values (UNH/UNG versions,
components, tags). See `gateway.formats.edifact`.
"""

from __future__ import annotations

from typing import Any

from gateway.formats.edifact.syntax import _SNIPPET, _Patterns, _Syntax


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
