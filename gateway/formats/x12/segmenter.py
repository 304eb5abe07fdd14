"""Layer 1 of the X12 reader, splitting: decoded text into the segments of one interchange at
a time, with the separators each ISA declares.

Input written the usual way (each segment followed by its terminator and a line break, or
by the terminator alone) is split with whole-string operations (`_split_one_per_line`,
`_split_clean`), one interchange's part of the buffer at a time; anything else goes through
a per-segment loop that fixes and reports it (newline, CR or space as terminator, segments
indented or wrapped with CR/LF, junk between interchanges). See `gateway.formats.x12`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator

from gateway.errors import ParseError
from gateway.formats.x12.isa import _BLANKS, _ISA_WIDTHS, _check_separators, _Isa, _isa_for_pyx12
from gateway.formats.x12.source import _Source

# A segment longer than this without a terminator means the terminator is wrong or the data
# is not X12; stop instead of buffering the rest of a large file.
MAX_SEGMENT_CHARS = 1 << 20

# Between interchanges: blanks, NUL padding and a DOS end-of-file mark are ignored.
_GAP = " \t\r\n\x00\x1a"
_ISA_START = re.compile(r"ISA[^A-Za-z0-9\s]")
_INDENTED = re.compile(r"\n[ \t]")  # a segment indented after a line break
_MAX_SEGMENT_WARNINGS = 5
# One batch from _Segmenter.segments: texts, their lines, {index: empty segments before it}.
_Batch = tuple[list[str], list[int], dict[int, int] | None]
# Whether the envelope repairs that guess are allowed: for all, or by (ISA05, ISA06).
Lenient = bool | Callable[[str, str], bool]


class _Segmenter:
    """Splits decoded text into the segments of one interchange at a time."""

    def __init__(self, source: _Source, lenient: Lenient = False):
        self._source = source
        self._lenient = lenient
        self.lenient = False  # the repairs that guess are allowed for the current interchange
        self._wrapped_file = False  # set when the first ISA showed fixed-width wrapping
        self._buf = ""
        self._line = 1  # line of the first character of _buf
        self._seg_no = 0  # segments seen in the file so far
        self.warnings: list[str] = []  # found while splitting; drained onto the next document
        self.stop_reason: str | None = None  # set when reading had to stop early
        self.trailing_empties = 0  # empty segments at the end of the last interchange read
        self._warned_indent = False  # said once per interchange: segments are indented
        self._warned_wrap = False  # and segments are wrapped over lines

    # -- between interchanges ---------------------------------------------------------------

    def _fill(self, n: int) -> bool:
        """Make _buf hold at least n characters if the input has them."""
        while len(self._buf) < n:
            more = self._source.read()
            if not more:
                return False
            self._buf += more
        return True

    def _skip_gap(self) -> None:
        while True:
            stripped = self._buf.lstrip(_GAP)
            self._line += self._buf.count("\n", 0, len(self._buf) - len(stripped))
            self._buf = stripped
            if self._buf or not self._fill(1):
                return

    def first_interchange(self) -> _Isa:
        """Read the first ISA of the file, or raise ParseError: the file is not X12."""
        self._skip_gap()
        self._fill(4)
        if not self._buf:
            raise ParseError("the input is empty", reason="NOT_X12", position="byte 0")
        if not _ISA_START.match(self._buf[:4]):
            raise ParseError(
                f"the input does not start with an X12 ISA segment (it starts with "
                f"{self._buf[:20]!r}); check that the file really is X12",
                reason="NOT_X12",
                position=f"line {self._line}",
            )
        return self._read_isa()

    def next_interchange(self) -> tuple[_Isa | None, list[str]]:
        """After an interchange: the next ISA (or None at the end) and problems in between."""
        problems: list[str] = []
        while True:
            self._skip_gap()
            if self.stop_reason or not self._fill(4):
                if self._buf.strip(_GAP) and not self.stop_reason:
                    problems.append(
                        f"{len(self._buf)} characters at line {self._line} after the last "
                        f"interchange were ignored: {self._buf[:40]!r}"
                    )
                return None, problems
            if _ISA_START.match(self._buf[:4]):
                try:
                    return self._read_isa(), problems
                except ParseError as exc:
                    problems.append(
                        f"an ISA at line {self._line} cannot be read ({exc.message}); the data "
                        "up to the next ISA was ignored"
                    )
                    self._discard(3)
            else:
                start_line = self._line
                skipped = self._discard(0)
                problems.append(
                    f"{skipped} characters at line {start_line} after an interchange are not "
                    "part of one and were ignored"
                )

    def _allows(self, qualifier: str, sender: str) -> bool:
        """Whether the repairs that guess are allowed for this ISA05/ISA06 (its partner's profile)."""
        if callable(self._lenient):
            return bool(self._lenient(qualifier.strip(), sender.strip()))
        return bool(self._lenient)

    def _discard(self, at_least: int) -> int:
        """Drop text up to the next ISA start (after `at_least` characters); return the count."""
        dropped = 0
        pos = at_least
        while True:
            match = _ISA_START.search(self._buf, pos)
            if match:
                cut = match.start()
                break
            # None here: drop all but the last 3 characters (an "ISA" may straddle two
            # chunks), then read on.
            cut = max(len(self._buf) - 3, pos)
            dropped += cut
            self._line += self._buf.count("\n", 0, cut)
            self._buf = self._buf[cut:]
            pos = 0
            if not self._fill(len(self._buf) + 1):
                cut = len(self._buf)
                break
        dropped += cut
        self._line += self._buf.count("\n", 0, cut)
        self._buf = self._buf[cut:]
        return dropped

    def _read_isa(self) -> _Isa:
        """Parse the ISA at the start of _buf, consume it, and build the text pyx12 will read."""
        # An ISA is 106 characters when padded; unpadded it is shorter. Ask for plenty.
        self._fill(512)
        line = self._line
        where = f"line {line}"
        es = self._buf[3]
        parts = self._buf.split(es, 16)
        if len(parts) == 17 and any("\n" in v or "\r" in v for v in [*parts[1:16], parts[16][:1]]):
            parts = self._unwrap_isa(es, where)
        if len(parts) < 17 or len(parts[16]) < 2:
            raise ParseError(
                "the ISA segment is cut off: it needs 16 elements followed by a segment terminator",
                reason="X12_ISA",
                position=where,
            )
        rest = parts[16]
        cs, term = rest[0], rest[1]
        elements = parts[1:16] + [cs]
        self._check_isa(elements, es, cs, term, where)
        consumed = sum(len(p) + 1 for p in parts[:16]) + 2  # "ISA*...*" + ISA16 + terminator
        self._buf = self._buf[consumed:]
        self._seg_no += 1
        if term == "\n":  # a CR or a space before the line break leaves it in _buf
            self._line += 1

        warnings: list[str] = []
        if self._wrapped_file:
            self._wrapped_file = False
            warnings.append(
                "the file is wrapped at a fixed width (a VAN's lines); the line breaks were removed"
            )
        out_term = term
        if term == " " and self._buf[:1] in ("\r", "\n"):
            # A space before each line break: the line break is what really ends segments,
            # and names may contain spaces ("SOLD TO Org Name").
            warnings.append(
                "the ISA declares a space as segment terminator, followed by a line break; "
                "read one segment per line"
            )
            term = "\n"
        if term in _BLANKS:
            out_term = "\n"
        normalized, text = _isa_for_pyx12(elements, es, cs, out_term, warnings)
        return _Isa(
            elements=elements,
            element_sep=es,
            component_sep=cs,
            terminator=term,
            out_terminator=out_term,
            line=line,
            normalized=normalized,
            text_for_pyx12=text,
            version=elements[11].strip(),
            warnings=warnings,
        )

    def _unwrap_isa(self, es: str, where: str) -> list[str]:
        """A line break inside the ISA: a VAN wrapped the file at a fixed width (80 columns).
        Unwrapped (the whole file from here) only for a partner whose profile allows it
        (reliability E9); returns the ISA's parts again."""
        flat = self._buf.replace("\r", "").replace("\n", "")
        sender = flat.split(es, 7)
        if len(sender) < 7 or not self._allows(sender[5], sender[6]):
            raise ParseError(
                "the ISA is broken over several lines (a file wrapped at a fixed width, as "
                "some VANs send it); it is read only for a partner whose profile sets "
                "x12: {lenient_envelope: true}",
                reason="X12_WRAPPED",
                position=where,
            )
        self._source.unwrap = True
        self._buf = flat
        self._wrapped_file = True
        return self._buf.split(es, 16)

    def _check_isa(self, elements: list[str], es: str, cs: str, term: str, where: str) -> None:
        """Refuse (ParseError) an ISA whose elements are not where they belong: the version,
        the one-character ISA14 and ISA15, the separators, and (unless the partner's profile
        allows re-padding, which sets `lenient` here) the fixed widths."""
        version = elements[11].strip()
        if not (len(version) == 5 and version.isdigit()):
            raise ParseError(
                f"ISA12 {elements[11]!r} is not a version number such as 00401; the ISA has "
                "an element too few or too many",
                reason="X12_ISA",
                position=where,
            )
        for idx in (13, 14):  # ISA14, ISA15: one character each
            if len(elements[idx].strip()) > 1:
                raise ParseError(
                    f"ISA{idx + 1} {elements[idx]!r} should be one character; the ISA has "
                    "an element too few or too many",
                    reason="X12_ISA",
                    position=where,
                )
        _check_separators(es, cs, term, where)
        self.lenient = self._allows(elements[4], elements[5])
        if not self.lenient:
            widths = [len(v) for v in elements[:15]]
            if widths != list(_ISA_WIDTHS) and not any(
                "\n" in v or "\r" in v for v in elements[:15]
            ):
                bad = next(
                    i for i, (w, n) in enumerate(zip(_ISA_WIDTHS, widths, strict=True)) if w != n
                )
                raise ParseError(
                    f"the ISA is {sum(widths) + 16 + 2} characters, not 106: ISA{bad + 1:02d} "
                    f"{elements[bad]!r} is {widths[bad]} wide instead of {_ISA_WIDTHS[bad]} (the ISA "
                    "is fixed-width); it is re-padded only for a partner whose profile sets "
                    "x12: {lenient_envelope: true}",
                    reason="X12_ISA_LENGTH",
                    position=where,
                )
        for idx, value in enumerate(elements[:15]):
            if (term not in _BLANKS and term in value) or "\n" in value or "\r" in value:
                raise ParseError(
                    f"ISA{idx + 1:02d} {value!r} holds a segment terminator or line break; the "
                    "ISA is cut short or has an element too few",
                    reason="X12_ISA",
                    position=where,
                )

    # -- inside an interchange --------------------------------------------------------------

    def _clean_batch(
        self, term: str, line: int, boundary: re.Pattern[str]
    ) -> tuple[list[str], list[int], int, bool] | None:
        """Split the whole segments buffered with whole-string operations, when they need no
        fixing but line breaks.

        The common case (a terminator and a line break after each segment) costs a fraction
        of the per-segment loop in `segments`. Returns None when there is no whole segment
        or anything else to fix (indentation, empty segments, wrapped segments): `segments`
        handles it then. Otherwise consumes the segments up to the end of the interchange
        (IEA or the next ISA) or of the buffer and returns (texts, their lines, the line
        after them, whether the interchange ended).
        """
        buf = self._buf
        end = buf.rfind(term) + 1
        if not end:
            return None
        pos = 0
        ended = False
        while True:
            match = boundary.search(buf, pos, end)
            if match is None:
                break
            start = match.start()
            previous_end = buf.rfind(term, 0, start) + 1
            if not buf[previous_end:start].strip("\r\n"):
                # At the start of a segment, not inside one ("...*LISA*..."): IEA ends the
                # interchange, an ISA starts the next one without an IEA before it.
                if match.group().startswith("IEA"):
                    end = buf.index(term, start) + 1
                else:
                    end = previous_end
                ended = True
                break
            pos = start + 1
        # Only this interchange's part of the buffer is split: a 64 KiB chunk holds several
        # small interchanges, and splitting all of it for each one was quadratic.
        region = buf[:end]
        split = _split_one_per_line(region, term, line) or _split_clean(region, term, line)
        if split is None:
            return None
        texts, lines, after = split
        self._buf = buf[end:]
        if ended:
            self._line = after
        return texts, lines, after, ended

    def segments(self, isa: _Isa) -> Iterator[_Batch]:
        """Yield the segments of one interchange, a buffered chunk at a time.

        Each batch is (segment texts, their lines, {index in batch: empty segments just
        before it} or None). Stops after IEA, before the next ISA (an interchange without
        IEA), or at the end of the input. Leading blanks and line breaks are stripped; empty
        segments are not passed on (pyx12 would silently stop reading at one) but counted;
        empty segments with nothing after them are left in `trailing_empties`.
        """
        term = isa.terminator
        blank_term = term in _BLANKS
        iea_prefix = "IEA" + isa.element_sep
        # An IEA, or the ISA of a next interchange (checked to start a segment when found).
        t, e = re.escape(term), re.escape(isa.element_sep)
        boundary = re.compile(rf"IEA(?:{e}|{t})|ISA[^A-Za-z0-9\s]")
        line = self._line
        empties = 0
        self.trailing_empties = 0
        self._warned_indent = self._warned_wrap = False
        while True:
            if not blank_term and not empties:
                fast = self._clean_batch(term, line, boundary)
                if fast is not None:
                    texts, lines, line, done = fast
                    self._seg_no += len(texts)
                    if texts:
                        yield texts, lines, None
                    if done:
                        return
                    continue
            pieces = self._buf.split(term)
            tail = pieces.pop()
            if not pieces:  # no whole segment buffered
                last = self._last_piece(tail, term, line, empties)
                if last is None:
                    return
                if not last:  # more input was read
                    continue
                pieces, tail = last, ""
            texts, lines, empty_at, line, empties, done = self._split_pieces(
                pieces, tail, term, line, empties, iea_prefix
            )
            self._seg_no += len(texts)
            if texts:
                yield texts, lines, empty_at
            if done:
                return
            self._buf = tail

    def _last_piece(self, tail: str, term: str, line: int, empties: int) -> list[str] | None:
        """No whole segment is buffered: [] once more input was read, [the last segment]
        when the input ends with one that has no terminator, None when the interchange's
        input ends (or a segment is too long to read on)."""
        more = self._source.read()
        if more:
            if len(tail) > MAX_SEGMENT_CHARS:
                self.stop_reason = (
                    f"no segment terminator {term!r} in {len(tail)} characters after "
                    f"line {line}; the rest of the input was not read"
                )
                self._buf, self._line = "", line
                self.trailing_empties = empties
                return None
            self._buf = tail + more
            return []
        if not tail.strip(_BLANKS):  # end of input
            self._buf, self._line = "", line + tail.count("\n")
            self.trailing_empties = empties
            return None
        # A last segment without its terminator: keep it.
        if term not in _BLANKS:
            self.warnings.append(f"the last segment (near line {line}) has no segment terminator")
        return [tail]

    def _split_pieces(
        self, pieces: list[str], tail: str, term: str, line: int, empties: int, iea_prefix: str
    ) -> tuple[list[str], list[int], dict[int, int] | None, int, int, bool]:
        """The segments of `pieces` (the buffer split at `term`, `tail` the rest), one at a
        time: indentation and wrapping removed, empty segments counted, stopping at the IEA
        or before the next ISA. Returns (texts, their lines, empties before them, the line
        after them, empty segments not yet placed, whether the interchange ended)."""
        blank_term = term in _BLANKS
        newline_term = term == "\n"
        texts: list[str] = []
        lines: list[int] = []
        empty_at: dict[int, int] | None = None
        done = False
        for idx, piece in enumerate(pieces):
            text = piece.lstrip(_BLANKS)
            if len(text) != len(piece):
                lead = piece[: len(piece) - len(text)]
                line += lead.count("\n")
                if not self._warned_indent and text and (" " in lead or "\t" in lead):
                    self._warned_indent = True
                    self.warnings.append(
                        f"segments are indented (first at line {line}); the indentation "
                        "was removed"
                    )
            seg_line = line
            if "\n" in text or "\r" in text:
                line += text.count("\n")
                if newline_term and text[-1] == "\r" and "\r" not in text[:-1]:
                    text = text[:-1]  # CR LF line ends with a LF terminator
                else:
                    text = self._unwrap(text, seg_line)
            if blank_term:
                if newline_term:
                    line += 1
                if text[-1:] in (" ", "\t"):
                    text = text.rstrip(" \t")
            if not text:
                if not blank_term:  # a blank line is not an empty segment
                    empties += 1
                continue
            if text[0] == "I":
                if text[:3] == "ISA" and (len(text) == 3 or not text[3].isalnum()):
                    # The next interchange starts without an IEA before it: give it back.
                    self._buf = text + term + term.join(pieces[idx + 1 :] + [tail])
                    self._line = seg_line
                    self.trailing_empties = empties
                    return texts, lines, empty_at, line, empties, True
                if text.startswith(iea_prefix) or text == "IEA":
                    self._buf = term.join(pieces[idx + 1 :] + [tail])
                    self._line = line
                    done = True
            if empties:
                if empty_at is None:
                    empty_at = {}
                empty_at[len(texts)] = empties
                empties = 0
            texts.append(text)
            lines.append(seg_line)
            if done:
                break
        return texts, lines, empty_at, line, empties, done

    def _unwrap(self, text: str, seg_line: int) -> str:
        """A segment broken over several lines, joined: only for a partner whose profile
        allows the repairs that guess (reliability E9), else X12_WRAPPED."""
        if not self.lenient:
            raise ParseError(
                f"the segment at line {seg_line} is broken over several lines; "
                "it is unwrapped only for a partner whose profile sets "
                "x12: {lenient_envelope: true}",
                reason="X12_WRAPPED",
                position=f"line {seg_line}",
            )
        if not self._warned_wrap:
            self._warned_wrap = True
            self.warnings.append(
                f"a segment at line {seg_line} is wrapped over several lines; "
                "the line breaks inside segments were removed"
            )
        return text.replace("\r", "").replace("\n", "")


def _split_one_per_line(
    region: str, term: str, line: int
) -> tuple[list[str], list[int], int] | None:
    """`region` (whole segments) split when each segment is followed by its terminator and
    one line break ("\n" or "\r\n"), as most senders write X12: (texts, lines, line after).

    None for any other layout; `_split_clean` is the general form. Here the line numbers
    are a range and nothing is done per segment in Python. The tests are searches for one
    character (memchr, nearly free) where possible: counting or searching for two
    characters reads the whole region at a byte per nanosecond.
    """
    body = region.lstrip("\r\n")
    if not body or body[0] in " \t" or body[0] == term:
        return None
    nl = "\r\n" if "\r" in body else "\n"
    texts = body[:-1].split(term + nl)  # body ends with the last segment's terminator
    joined = "".join(texts)
    if (
        term in joined  # a segment without a line break after it
        or "\n" in joined  # blank lines, wrapped segments, a lone CR or LF
        or "\r" in joined
        or "" in texts  # an empty segment
        or _INDENTED.search(body)
    ):
        return None
    first = line + region.count("\n", 0, len(region) - len(body))
    n = len(texts)
    return texts, list(range(first, first + n)), first + n - 1


def _split_clean(region: str, term: str, line: int) -> tuple[list[str], list[int], int] | None:
    """`region` (whole segments) split when nothing but line breaks before segments needs
    removing: (texts, lines, line after), or None."""
    pieces = region.split(term)
    del pieces[-1]  # "" after the last terminator
    texts = [p.lstrip(_BLANKS) for p in pieces]
    joined = "".join(texts)
    if "\n" in joined or "\r" in joined or "" in texts:
        return None
    newlines = region.count("\n")
    if len(region) - len(pieces) - len(joined) != newlines + region.count("\r"):
        return None  # blanks other than line breaks: indentation to report
    lines = list(itertools.accumulate([p.count("\n") for p in pieces], initial=line))
    after = lines[-1]
    del lines[0]
    return texts, lines, after
