"""X12 reader: bytes in, one `Document` per ST..SE transaction set out.

How a file is read, in three layers:

1. **Decode and split** (`_Source`, `_Segmenter`): the binary stream is decoded in chunks
   (a UTF-8 BOM is stripped; text that is not UTF-8 is read as Latin-1, with a warning) and
   split into segments with the separators each ISA declares: the element separator is the
   character after ``ISA``, ISA16 is the component separator and the character after ISA16
   the segment terminator. What real partners get wrong is normalized here, with a warning
   where something changed: ISA fields not padded to fixed width, no-break-space padding,
   a newline, CR or space as terminator, segments indented or wrapped with CR/LF, versions
   pyx12 does not know (00300, 00400, 00040, ...), several interchanges per file, each with
   its own separators. Input written the usual way (each segment followed by its terminator
   and a line break, or by the terminator alone) is split with whole-string operations,
   one interchange's part of the buffer at a time; anything else goes through a
   per-segment loop that fixes and reports it.
2. **Envelope checks** (`_Reader`, a pyx12 ``X12Reader`` per interchange): pyx12 reads the
   (re-padded) ISA itself, with its ``RawX12File``, and its envelope bookkeeping checks every
   segment: SE/GE/IEA counts, control numbers, duplicates, segment ids, reported through
   ``pop_errors()`` / ``cleanup()``. Departures from the stock loop, all for speed and
   pinned by tests/unit/test_x12_parser.py to give the same errors: the segments after the
   ISA come from `_Segmenter` already split (RawX12File splitting them again cost ~10% of a
   translate run and checks nothing); pyx12's checks get a light segment (`_LightSegment`)
   with the interface they use instead of pyx12's ``Segment`` object tree, which cost more
   than parsing and mapping together; and segments are checked a batch at a time
   (`_Reader.checked`), the ordinary ones through one reusable `_LightSegment`, with each
   segment's errors kept on it instead of being popped after every segment.
   `_Reader._check` also keeps pyx12's loop stack in step on broken envelopes (an SE
   without ST made pyx12 raise IndexError).
3. **Events**: `InterchangeOpened`, then per transaction a `Document` (body: a list of
   segments, each ``[segment id, element, ...]``; a composite element is a list of
   components) or a `DocumentRejected`, then `InterchangeClosed` with the sha256 of the
   interchange's normalized text and its group/interchange-level errors. Only envelope
   segments, segments with errors and segments outside a transaction set are looked at one
   by one; the ordinary segments between them go into the body a run at a time.

Memory stays flat: one 64 KiB chunk of input and the transaction set being assembled are
held at a time (45 MB peak RSS for one 100,000-order interchange, bench/bench_x12.py).

Reason codes
    ParseError (the file cannot be read at all):
        NOT_X12          empty, binary, or does not start with an ISA segment
        X12_SEPARATORS   the ISA declares separators that cannot work (equal, letters, digits,
                         blanks)
        X12_ISA          the ISA segment itself is unreadable (cut off, elements missing)
    Problems after the first interchange (junk between interchanges, an unreadable later ISA)
    are reported in InterchangeClosed.errors of the interchange before them instead.
    DocumentRejected (one transaction set; the others go on):
        X12_SE_COUNT           SE01 is not the number of segments from ST to SE
        X12_CONTROL_MISMATCH   SE02 differs from ST02
        X12_DUPLICATE_CONTROL  ST02 repeats another transaction set in the same group
        X12_TRUNCATED          no SE: the transaction set ends at GE, IEA, ISA, ST or end of file
        X12_EMPTY_SEGMENT      an empty segment (two terminators in a row) inside it
        X12_SEGMENT            a segment id that is not 2-3 upper-case letters/digits
        X12_NO_GROUP           ST outside a GS..GE functional group
"""

from __future__ import annotations

import codecs
import dataclasses
import functools
import hashlib
import io
import itertools
import re
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pyx12.errors
import pyx12.x12file

from gateway.errors import ParseError
from gateway.formats.base import (
    Document,
    DocumentRejected,
    Envelope,
    Event,
    InterchangeClosed,
    InterchangeOpened,
)

__all__ = ["X12Parser", "X12Segments", "parse_x12"]

CHUNK_SIZE = 1 << 16
# A segment longer than this without a terminator means the terminator is wrong or the data
# is not X12; stop instead of buffering the rest of a large file.
MAX_SEGMENT_CHARS = 1 << 20
# pyx12 accepts only these two ISA12 values; anything else is presented to it as 00401.
_PYX12_VERSIONS = ("00401", "00501")
# Fixed widths of ISA01..ISA15 (ISA16 is one character).
_ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1)
_BLANKS = " \t\r\n"
# Between interchanges: blanks, NUL padding and a DOS end-of-file mark are ignored.
_GAP = " \t\r\n\x00\x1a"
_ISA_START = re.compile(r"ISA[^A-Za-z0-9\s]")
_INDENTED = re.compile(r"\n[ \t]")  # a segment indented after a line break
_MAX_SEGMENT_WARNINGS = 5
# One batch from _Segmenter.segments: texts, their lines, {index: empty segments before it}.
_Batch = tuple[list[str], list[int], dict[int, int] | None]
# Whether the envelope repairs that guess are allowed: for all, or by (ISA05, ISA06).
Lenient = bool | Callable[[str, str], bool]


class X12Segments(list):  # type: ignore[type-arg]
    """The body of an X12 `Document`: a list of segments, ST first, SE last.

    Each segment is ``[segment id, element, ...]``; an element is a string, or a list of
    strings for a composite. `lines` holds the source line of each segment, in the same order,
    so a mapper can say where a bad value is.
    """

    __slots__ = ("lines",)

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[int] = []


# --------------------------------------------------------------------------------------------
# Layer 1: decode and split


class _Source:
    """Decoded text from a binary stream, a chunk at a time."""

    def __init__(self, stream: BinaryIO, chunk_size: int = CHUNK_SIZE):
        self._stream = stream
        self._chunk_size = chunk_size
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._latin1 = False
        self._first = True
        self._text_seen = False
        self._offset = 0  # bytes read so far
        self.unwrap = False  # a VAN's fixed-width lines: every line break is removed
        self.eof = False
        self.warnings: list[str] = []  # drained by the parser onto the next event

    def read(self) -> str:
        """The next piece of text; "" once the stream is exhausted."""
        while not self.eof:
            data = self._stream.read(self._chunk_size)
            if isinstance(data, str):  # a text stream slipped in: accept it as is
                data = data.encode("utf-8")
            if self._first and data:
                self._first = False
                if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
                    raise ParseError(
                        "the input is UTF-16 text; X12 must be ASCII or UTF-8, ask the sender "
                        "to send it without converting it to UTF-16",
                        reason="NOT_X12",
                        position="byte 0",
                    )
            final = not data
            text = self._decode(data, final)
            self._offset += len(data)
            if final:
                self.eof = True
            if text and not self._text_seen:
                self._text_seen = True
                # Stripped as text, not bytes: the 3 bytes of a BOM may come in two reads.
                if text[0] == "\ufeff":
                    text = text[1:]
                    self.warnings.append("a UTF-8 byte order mark at the start was removed")
            if self.unwrap:
                text = text.replace("\r", "").replace("\n", "")
            if text:
                return text
        return ""

    def _decode(self, data: bytes, final: bool) -> str:
        if self._latin1:
            return data.decode("latin-1")
        pending = self._decoder.getstate()[0]
        try:
            return self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            # Switch for good: a partner that sends one Latin-1 byte sends more. errors="ignore"
            # would silently change names and addresses, so every byte is kept.
            self._latin1 = True
            start = self._offset - len(pending)
            since = f" from byte {start} on" if start else ""
            self.warnings.append(
                f"the input is not valid UTF-8 (byte {start + exc.start} is not); it was read "
                f"as Latin-1{since}"
            )
            return (pending + data).decode("latin-1")


@dataclasses.dataclass(slots=True)
class _Isa:
    """An ISA as sent, and the separators it declares."""

    elements: list[str]  # ISA01..ISA16 as sent (index 0 is ISA01)
    element_sep: str
    component_sep: str
    terminator: str  # what ends segments in the input
    out_terminator: str  # what ends segments in the normalized text pyx12 reads
    line: int
    normalized: str  # the ISA re-padded to 106 characters, terminator included
    text_for_pyx12: str  # the same with ISA12 00401 where pyx12 does not know the version
    version: str  # ISA12 as sent
    warnings: list[str]


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
            # A line break inside the ISA: a VAN wrapped the file at a fixed width (80
            # columns). Unwrapped only for a partner whose profile allows it (reliability E9).
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
            parts = self._buf.split(es, 16)
            self._wrapped_file = True
        if len(parts) < 17 or len(parts[16]) < 2:
            raise ParseError(
                "the ISA segment is cut off: it needs 16 elements followed by a segment terminator",
                reason="X12_ISA",
                position=where,
            )
        rest = parts[16]
        cs, term = rest[0], rest[1]
        elements = parts[1:16] + [cs]
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
            if widths != list(_ISA_WIDTHS) and not any("\n" in v or "\r" in v for v in elements[:15]):
                bad = next(i for i, (w, n) in enumerate(zip(_ISA_WIDTHS, widths, strict=True)) if w != n)
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
        consumed = sum(len(p) + 1 for p in parts[:16]) + 2  # "ISA*...*" + ISA16 + terminator
        self._buf = self._buf[consumed:]
        self._seg_no += 1
        if term == "\n":  # a CR or a space before the line break leaves it in _buf
            self._line += 1

        warnings: list[str] = []
        if self._wrapped_file:
            self._wrapped_file = False
            warnings.append("the file is wrapped at a fixed width (a VAN's lines); the line breaks were removed")
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
            version=version,
            warnings=warnings,
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
        newline_term = term == "\n"
        iea_prefix = "IEA" + isa.element_sep
        # An IEA, or the ISA of a next interchange (checked to start a segment when found).
        t, e = re.escape(term), re.escape(isa.element_sep)
        boundary = re.compile(rf"IEA(?:{e}|{t})|ISA[^A-Za-z0-9\s]")
        line = self._line
        empties = 0
        self.trailing_empties = 0
        warned_indent = warned_wrap = False
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
                more = self._source.read()
                if more:
                    if len(tail) > MAX_SEGMENT_CHARS:
                        self.stop_reason = (
                            f"no segment terminator {term!r} in {len(tail)} characters after "
                            f"line {line}; the rest of the input was not read"
                        )
                        self._buf, self._line = "", line
                        self.trailing_empties = empties
                        return
                    self._buf = tail + more
                    continue
                if not tail.strip(_BLANKS):  # end of input
                    self._buf, self._line = "", line + tail.count("\n")
                    self.trailing_empties = empties
                    return
                # A last segment without its terminator: keep it.
                if not blank_term:
                    self.warnings.append(
                        f"the last segment (near line {line}) has no segment terminator"
                    )
                pieces, tail = [tail], ""
            texts = []
            lines = []
            empty_at: dict[int, int] | None = None
            done = False
            for idx, piece in enumerate(pieces):
                text = piece.lstrip(_BLANKS)
                if len(text) != len(piece):
                    lead = piece[: len(piece) - len(text)]
                    line += lead.count("\n")
                    if not warned_indent and text and (" " in lead or "\t" in lead):
                        warned_indent = True
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
                        if not self.lenient:
                            raise ParseError(
                                f"the segment at line {seg_line} is broken over several lines; "
                                "it is unwrapped only for a partner whose profile sets "
                                "x12: {lenient_envelope: true}",
                                reason="X12_WRAPPED",
                                position=f"line {seg_line}",
                            )
                        if not warned_wrap:
                            warned_wrap = True
                            self.warnings.append(
                                f"a segment at line {seg_line} is wrapped over several lines; "
                                "the line breaks inside segments were removed"
                            )
                        text = text.replace("\r", "").replace("\n", "")
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
                        done = True
                        break
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
            self._seg_no += len(texts)
            if texts:
                yield texts, lines, empty_at
            if done:
                return
            self._buf = tail


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


def _check_separators(es: str, cs: str, term: str, where: str) -> None:
    problems = []
    for sep, what in ((es, "element separator"), (cs, "component separator (ISA16)")):
        if sep.isalnum():
            problems.append(f"the {what} {sep!r} is a letter or digit")
        elif sep in _BLANKS:
            problems.append(f"the {what} {sep!r} is a blank or line break")
    if term.isalnum():
        problems.append(f"the segment terminator {term!r} is a letter or digit")
    if len({es, cs, term}) < 3:
        problems.append(
            f"separators must differ: element {es!r}, component {cs!r}, segment {term!r}"
        )
    if problems:
        raise ParseError(
            "; ".join(problems) + ". The ISA cannot be read unambiguously; ask the sender to fix "
            "its separators",
            reason="X12_SEPARATORS",
            position=where,
        )


def _isa_for_pyx12(
    elements: list[str], es: str, cs: str, term: str, warnings: list[str]
) -> tuple[str, str]:
    """The ISA re-padded to its fixed 106 characters, and the same as pyx12 must see it.

    pyx12 knows only the 00401 and 00501 versions: the second text says 00401 for any other.
    """
    fields = []
    repadded = nbsp = False
    for idx, (value, width) in enumerate(zip(elements[:15], _ISA_WIDTHS, strict=True)):
        if "\xa0" in value:
            nbsp = True
            value = value.replace("\xa0", " ")
        if len(value) != width:
            repadded = True
            stripped = value.strip()
            if idx == 12 and stripped.isdigit():  # ISA13 is numeric: pad with zeros
                value = stripped.zfill(width)
            else:
                value = stripped.ljust(width)
            if len(value) > width:
                warnings.append(
                    f"ISA{idx + 1:02d} {stripped!r} is longer than {width} characters; the "
                    "envelope keeps it in full"
                )
                value = value[:width]
        fields.append(value)
    if nbsp:
        warnings.append("the ISA is padded with no-break spaces; they were read as spaces")
    if repadded:
        warnings.append("the ISA fields are not padded to their fixed widths; re-padded")
    normalized = "ISA" + es + es.join(fields) + es + cs + term
    if len(normalized) != 106:  # pragma: no cover - the widths above add up to 106
        raise AssertionError(f"normalized ISA has {len(normalized)} characters")
    version = fields[11]
    if version not in _PYX12_VERSIONS:
        warnings.append(
            f"ISA12 version {version} is read with the 00401 envelope rules; the envelope "
            "keeps the version as sent"
        )
        fields[11] = "00401"
    return normalized, "ISA" + es + es.join(fields) + es + cs + term


# --------------------------------------------------------------------------------------------
# Layer 2: pyx12 envelope checks


_SEG_ID = re.compile(r"[A-Z][A-Z0-9]{1,2}")


@functools.lru_cache(maxsize=1024)  # real files use a few dozen segment ids
def _seg_id_ok(seg_id: str) -> bool:
    return _SEG_ID.fullmatch(seg_id) is not None


class _LightSegment:
    """What pyx12's envelope checks need from a segment, without pyx12's object tree.

    Mirrors ``pyx12.segment.Segment``: ``get_value`` returns an element with trailing empty
    components dropped, None past the end; ISA elements are never split into components.
    """

    __slots__ = ("line", "elements", "seg_id", "lineno", "errors", "_cs", "_separators")

    def __init__(self, line: str, es: str, cs: str, lineno: int):
        self.line = line
        self.elements = line.split(es)
        self.seg_id = self.elements[0]
        self.lineno = lineno  # in the source file
        self.errors: list[Any] | None = None  # pyx12's errors for it, see _Reader.checked
        self._cs = cs
        self._separators = es + cs

    def __len__(self) -> int:
        return len(self.elements) - 1

    def __str__(self) -> str:
        return self.line

    __repr__ = __str__

    def get_seg_id(self) -> str:
        return self.seg_id

    def is_seg_id_valid(self) -> bool:
        return _seg_id_ok(self.seg_id)

    def is_empty(self) -> bool:
        # Every element is empty or only component separators: nothing but separators
        # follows the segment id. One C call; pyx12 asks this of every segment.
        return len(self.line.rstrip(self._separators)) <= len(self.seg_id)

    def get_value(self, ref_des: str) -> str | None:
        idx = int(ref_des[-2:])
        elements = self.elements
        if idx >= len(elements):
            return None
        value = elements[idx]
        if self.seg_id != "ISA" and self._cs in value:
            value = value.rstrip(self._cs)
        return value


_ENVELOPE_IDS = frozenset(("ISA", "GS", "ST", "SE", "GE", "IEA"))
_LOOP_IDS = frozenset(("GS", "ST", "SE", "GE", "IEA"))
# What pyx12 raises on a segment it cannot check (broken envelopes, see _Reader._check).
_PYX12_FAILURES = (IndexError, KeyError, TypeError, ValueError, pyx12.errors.X12Error)


class _IdSet(set):  # type: ignore[type-arg]
    """pyx12 keeps seen control numbers in lists; `in` on a 100,000-long list is quadratic."""

    append = set.add


@dataclasses.dataclass(slots=True)
class _Checked:
    """A batch of segments of one interchange after pyx12's checks (`_Reader.checked`)."""

    texts: list[str]
    elements: list[list[Any]]  # each segment in body form (see X12Segments)
    lines: list[int]
    # Indexes, ascending, of the segments the event loop must look at one by one: envelope
    # segments, segments pyx12 reported errors on, segments after empty segments.
    special: list[int]
    segments: dict[int, _LightSegment]  # index -> the envelope segments and those with errors
    empty_at: dict[int, int] | None  # index -> empty segments just before it


class _Reader(pyx12.x12file.X12Reader):
    """pyx12's X12Reader over one interchange, checking `_LightSegment`s.

    pyx12 reads the ISA itself (RawX12File: separators, 106 characters, version) and runs
    its own envelope checks on every segment. The segments after the ISA come from
    `_Segmenter`, already split and normalized: letting RawX12File split them a second
    time costs about 10% of a translate run and checks nothing.
    """

    def __init__(self, isa: _Isa, batches: Iterator[_Batch]):
        super().__init__(io.StringIO(isa.text_for_pyx12))
        self._isa = isa
        self._batches = batches
        # sha256 of the interchange's normalized text: each segment and its terminator.
        self.digest = hashlib.sha256(isa.normalized.encode("utf-8"))

    @property  # type: ignore[override]
    def st_ids(self) -> _IdSet:
        return self._st_ids

    @st_ids.setter
    def st_ids(self, value: Iterable[str | None]) -> None:
        self._st_ids = _IdSet(value)

    @property  # type: ignore[override]
    def gs_ids(self) -> _IdSet:
        return self._gs_ids

    @gs_ids.setter
    def gs_ids(self, value: Iterable[str | None]) -> None:
        self._gs_ids = _IdSet(value)

    def __iter__(self) -> Iterator[_LightSegment]:  # type: ignore[override]
        """X12Reader's interface: each segment once checked, its errors in `err_list`."""
        es, cs = self.ele_term, self.subele_term
        assert es is not None and cs is not None
        for batch in self.checked():
            for k, text in enumerate(batch.texts):
                seg = batch.segments.get(k) or _LightSegment(text, es, cs, batch.lines[k])
                if seg.errors:
                    self.err_list.extend(seg.errors)
                yield seg

    def checked(self) -> Iterator[_Checked]:
        """The interchange a batch at a time, each segment checked by pyx12, in order.

        The same steps as X12Reader.__iter__, with _LightSegment for pyx12.segment.Segment.
        pyx12's errors for a segment are moved from `err_list` to the segment's `errors`.
        Leading blanks never reach here: _Segmenter strips them.
        """
        self.err_list = []
        es, cs = self.ele_term, self.subele_term
        assert es is not None and cs is not None
        for text in self.raw:  # just the ISA
            isa = _LightSegment(text, es, cs, self._isa.line)
            self._check(isa)
            isa.errors, self.err_list = self.err_list or None, []
            yield _Checked([text], [isa.elements], [isa.lineno], [0], {0: isa}, None)
        term = self._isa.out_terminator
        digest = self.digest.update
        parse = self._parse_segment
        loop_ids = _LOOP_IDS
        # Ordinary segments (all but ~5 per order) are checked through this one object, aimed
        # at each in turn: pyx12 keeps nothing of a segment it checks, and a _LightSegment
        # per segment, yielded one at a time, cost ~15% of parsing. Only envelope segments
        # and those pyx12 finds fault with get a _LightSegment of their own.
        probe = _LightSegment("", es, cs, 0)
        for texts, lines, empty_at in self._batches:
            joined = term.join(texts) + term
            digest(joined.encode("utf-8"))
            # Asked of the whole batch first, as most batches have no segment that ends with
            # an element separator and no composite element: then no segment is asked.
            trailing_es = es + term in joined
            composites = cs in joined
            elements_of: list[list[Any]] = []
            segments: dict[int, _LightSegment] = {}
            for text in texts:
                if trailing_es and text[-1] == es:
                    self._seg_error(
                        "SEG1",
                        "Segment contains trailing element terminators",
                        None,
                        self.cur_line + 1,
                    )
                elements = text.split(es)
                sid = elements[0]
                if sid in loop_ids:
                    seg = _LightSegment(text, es, cs, lines[len(elements_of)])
                    self._check(seg)
                    if self.err_list:
                        seg.errors, self.err_list = self.err_list, []
                    segments[len(elements_of)] = seg
                else:
                    probe.line, probe.elements, probe.seg_id = text, elements, sid
                    try:
                        parse(probe)  # type: ignore[arg-type]  # _check, for non-loop ids
                    except _PYX12_FAILURES as exc:
                        self._isa_error("pyx12", f"pyx12 could not check segment {sid}: {exc}")
                    if self.err_list:
                        seg = _LightSegment(text, es, cs, lines[len(elements_of)])
                        seg.errors, self.err_list = self.err_list, []
                        segments[len(elements_of)] = seg
                elements_of.append(
                    _body_form(elements, cs) if composites and cs in text else elements
                )
            special = sorted(segments.keys() | empty_at.keys()) if empty_at else list(segments)
            yield _Checked(texts, elements_of, lines, special, segments, empty_at)

    def _check(self, seg: _LightSegment) -> None:
        """pyx12's checks for one segment, kept from tripping over a broken envelope.

        pyx12 assumes ST/SE, GS/GE and ISA/IEA pair up: an SE without ST pops the GS, and a
        GE after that raises IndexError. The event loop reports such structure problems
        itself, so here pyx12's loop stack is kept in step, and a segment pyx12 cannot
        handle is skipped with an interchange-level error instead of ending the file.
        """
        sid = seg.seg_id
        if sid in _LOOP_IDS:
            loops = self.loops
            open_kinds = [kind for kind, _ in loops]
            if sid == "ST" or sid == "GS":
                closing = ("ST",) if sid == "ST" else ("ST", "GS")
                while loops and loops[-1][0] in closing:
                    loops.pop()  # left open: reported as X12_TRUNCATED / a missing GE
            elif sid == "SE":
                if not loops or loops[-1][0] != "ST":
                    return  # SE without ST: reported by the event loop
            elif sid == "GE" or sid == "IEA":
                if ("GS" if sid == "GE" else "ISA") not in open_kinds:
                    return  # GE without GS: reported by the event loop
                while loops[-1][0] == "ST":
                    loops.pop()  # reported as X12_TRUNCATED
        try:
            self._parse_segment(seg)  # type: ignore[arg-type]
        except _PYX12_FAILURES as exc:
            self._isa_error("pyx12", f"pyx12 could not check segment {sid}: {exc}")


# --------------------------------------------------------------------------------------------
# Layer 3: events

# pyx12 error (kind, code) -> our reason code, for errors that reject a transaction set.
_TX_REJECT = {
    ("st", "4"): "X12_SE_COUNT",
    ("st", "3"): "X12_CONTROL_MISMATCH",
    ("st", "23"): "X12_DUPLICATE_CONTROL",
    ("st", "2"): "X12_TRUNCATED",
    ("seg", "1"): "X12_SEGMENT",
}


@dataclasses.dataclass(slots=True)
class _Tx:
    """A transaction set being assembled."""

    envelope: Envelope
    doc_type: str
    control: str | None
    line: int
    seg_no: int
    index: int
    body: X12Segments
    problems: list[tuple[str, str]]  # (reason, message)
    warnings: list[str]


class X12Parser:
    """Reads X12 interchanges; one `Document` per transaction set (850, 810, 997, ...).

    Non-order transaction sets are yielded too, with their `doc_type`; the caller decides.
    """

    name = "x12"

    def __init__(self, lenient: Lenient = False):
        # True, or a function of (ISA05, ISA06) -> bool: whether the repairs that guess
        # (re-padding an ISA, unwrapping lines broken inside segments) are allowed. They are
        # per partner profile (reliability E1, E9); strict otherwise.
        self.lenient = lenient

    def sniff(self, head: bytes) -> bool:
        """True if `head` (the first bytes of an input) starts with an ISA segment."""
        if head.startswith(codecs.BOM_UTF8):
            head = head[len(codecs.BOM_UTF8) :]
        head = head.lstrip(b" \t\r\n\x00")
        return head.startswith(b"ISA") and (len(head) == 3 or not head[3:4].isalnum())

    def parse(self, stream: BinaryIO, *, name: str = "<input>") -> Iterator[Event]:
        """Yield the events of a binary stream, reading it incrementally.

        Raises ParseError (reason NOT_X12, X12_SEPARATORS or X12_ISA) before yielding anything
        if the first interchange cannot be read. Problems in later parts of the file are
        reported on the events instead, so what was read stays usable.
        """
        source = _Source(stream)
        segmenter = _Segmenter(source, self.lenient)
        isa: _Isa | None = segmenter.first_interchange()
        state = _FileState(name)
        while isa is not None:
            closed = yield from self._interchange(isa, segmenter, source, state)
            isa, problems = segmenter.next_interchange()
            closed.errors.extend(problems)
            if segmenter.stop_reason:
                closed.errors.append(segmenter.stop_reason)
            if source.warnings or segmenter.warnings:
                # Found after the interchange's last document: keep them visible here.
                closed.errors.extend(f"warning: {w}" for w in source.warnings + segmenter.warnings)
                source.warnings.clear()
                segmenter.warnings.clear()
            yield closed

    def _interchange(
        self, isa: _Isa, segmenter: _Segmenter, source: _Source, state: _FileState
    ) -> Generator[Event, None, InterchangeClosed]:
        el = isa.elements
        interchange = Envelope(
            standard="x12",
            sender_id=el[5].strip() or None,
            sender_qualifier=el[4].strip() or None,
            receiver_id=el[7].strip() or None,
            receiver_qualifier=el[6].strip() or None,
            interchange_control_number=el[12].strip() or None,
            version=isa.version,
            test_indicator=el[14].strip() or None,
            ack_requested=el[13].strip() == "1",
            interchange_index=state.interchange_index,
        )
        state.interchange_index += 1
        errors: list[str] = []
        key = interchange.interchange_key
        if key in state.interchange_keys:
            errors.append(
                f"ISA13 {interchange.interchange_control_number} from this sender repeats an "
                "earlier interchange in the same file"
            )
        state.interchange_keys.add(key)

        first_seg_no = segmenter._seg_no  # the ISA's number in the file
        batches = segmenter.segments(isa)
        # Split the first chunk now, so what it needed fixing (indentation, ...) is reported
        # on InterchangeOpened rather than on some later document.
        first = next(batches, None)
        if first is not None:
            batches = itertools.chain((first,), batches)
        try:
            reader = _Reader(isa, batches)
        except pyx12.errors.X12Error as exc:  # pragma: no cover - the ISA was built to pass
            raise ParseError(
                f"pyx12 refused the ISA: {exc}", reason="X12_ISA", position=f"line {isa.line}"
            ) from exc
        yield InterchangeOpened(
            envelope=interchange, warnings=source.warnings + segmenter.warnings + isa.warnings
        )
        source.warnings.clear()
        segmenter.warnings.clear()

        group: Envelope | None = None
        tx: _Tx | None = None
        count = 0
        saw_iea = False
        base = 0  # index in this interchange of the batch's first segment; the ISA is 0
        for batch in reader.checked():
            elements_of, lines, segments = batch.elements, batch.lines, batch.segments
            empty_at = batch.empty_at
            n = len(elements_of)
            special = iter(batch.special)
            next_special = next(special, n)
            k = 0
            while k < n:
                if tx is not None and k < next_special:
                    # The common case, kept short: the ordinary segments of a transaction set
                    # up to the next special one go to its body in one step.
                    tx.body.extend(elements_of[k:next_special])
                    tx.body.lines.extend(lines[k:next_special])
                    k = next_special
                    continue
                # One segment at a time: a special one, or one outside a transaction set.
                i = k
                k += 1
                if i == next_special:
                    next_special = next(special, n)
                elements = elements_of[i]
                sid = elements[0]
                line = lines[i]
                seg_no = first_seg_no + base + i
                seg = segments.get(i)  # set for envelope segments and those with errors
                pyx12_errors = seg.errors if seg is not None else None
                empties = empty_at.get(i, 0) if empty_at else 0
                if empties:
                    message = (
                        f"an empty segment (two segment terminators in a row) before line "
                        f"{line}; pyx12 and many translators stop reading there, so the sender "
                        "must remove it"
                    )
                    if tx is not None and sid != "ST":
                        tx.problems.append(("X12_EMPTY_SEGMENT", message))
                    else:
                        errors.append(message)

                if tx is not None:
                    if sid in _ENVELOPE_IDS and sid != "SE":
                        # ST, GE, IEA or GS before the SE: the transaction set is cut off.
                        tx.problems.append(
                            (
                                "X12_TRUNCATED",
                                f"no SE before the {sid} at line {line}; the transaction set is "
                                "incomplete",
                            )
                        )
                        yield self._finish(tx, source, segmenter)
                        tx = None
                    else:
                        tx.body.append(elements)
                        tx.body.lines.append(line)
                        if pyx12_errors:
                            _attach(tx, pyx12_errors, sid, line, errors)
                        if sid == "SE":
                            yield self._finish(tx, source, segmenter)
                            tx = None
                        continue

                if sid == "ST":
                    assert seg is not None  # an envelope segment
                    ctl = seg.get_value("ST02")
                    if group is None:
                        problem = (
                            "X12_NO_GROUP",
                            f"the transaction set at line {line} is not inside a GS..GE functional group",
                        )
                        envelope = interchange
                    else:
                        problem = None
                        envelope = group
                    body = X12Segments()
                    body.append(elements)
                    body.lines.append(line)
                    tx = _Tx(
                        envelope=envelope,
                        doc_type=seg.get_value("ST01") or "",
                        control=ctl or None,
                        line=line,
                        seg_no=seg_no,
                        index=state.doc_index,
                        body=body,
                        problems=[problem] if problem else [],
                        warnings=[],
                    )
                    state.doc_index += 1
                    count += 1
                    if pyx12_errors:
                        _attach(tx, pyx12_errors, sid, line, errors)
                    continue

                if pyx12_errors:
                    assert seg is not None  # errors come with a segment
                    if sid == "IEA":
                        pyx12_errors = _drop_repadded_iea_mismatch(pyx12_errors, seg, interchange)
                    errors.extend(_envelope_message(e, line) for e in pyx12_errors)
                if sid == "GS":
                    assert seg is not None  # an envelope segment
                    if group is not None:
                        errors.append(
                            f"the GS at line {line} opens a group before the GE of group "
                            f"{group.group_control_number}"
                        )
                    gs08 = (seg.get_value("GS08") or "").strip()
                    group = dataclasses.replace(
                        interchange,
                        group_control_number=(seg.get_value("GS06") or "").strip() or None,
                        functional_id=(seg.get_value("GS01") or "").strip() or None,
                        version=gs08 or isa.version,
                    )
                elif sid == "GE":
                    if group is None:
                        errors.append(f"the GE at line {line} closes no functional group (no GS)")
                    group = None
                elif sid == "IEA":
                    saw_iea = True
                elif sid == "ISA":
                    pass
                elif sid == "TA1":
                    errors.append(
                        f"a TA1 interchange acknowledgment at line {line} was ignored (not an order)"
                    )
                else:
                    errors.append(
                        f"segment {sid} at line {line} is outside any transaction set and was ignored"
                    )
            base += n

        trailing = segmenter.trailing_empties
        if trailing:
            message = f"{trailing} empty segment(s) (two segment terminators in a row) at the end of the interchange"
            if tx is not None:
                tx.problems.append(("X12_EMPTY_SEGMENT", message))
            else:
                errors.append(message)
        if tx is not None:
            tx.problems.append(
                (
                    "X12_TRUNCATED",
                    "the interchange ends (end of input or the next ISA) before the SE of this "
                    "transaction set; it is incomplete",
                )
            )
            yield self._finish(tx, source, segmenter)
        reader.cleanup()
        for err in reader.pop_errors():
            if err[0] != "st":  # an open transaction set was rejected above
                errors.append(_envelope_message(err, None))
        return InterchangeClosed(
            envelope=interchange,
            digest=reader.digest.hexdigest(),
            errors=errors,
            document_count=count,
            complete=saw_iea and group is None,
        )

    @staticmethod
    def _finish(tx: _Tx, source: _Source, segmenter: _Segmenter) -> Document | DocumentRejected:
        position = f"line {tx.line}, segment {tx.seg_no}"
        if tx.problems:
            reason = tx.problems[0][0]
            what = f"transaction set {tx.doc_type or '?'} {tx.control or '(no ST02)'}"
            message = f"{what} rejected: " + "; ".join(m for _, m in tx.problems)
            return DocumentRejected(
                envelope=tx.envelope,
                doc_type=tx.doc_type or None,
                control_number=tx.control,
                reason=reason,
                message=message,
                position=position,
                index=tx.index,
            )
        warnings = tx.warnings
        if source.warnings or segmenter.warnings:
            warnings = source.warnings + segmenter.warnings + warnings
            source.warnings.clear()
            segmenter.warnings.clear()
        return Document(
            envelope=tx.envelope,
            doc_type=tx.doc_type,
            control_number=tx.control,
            body=tx.body,
            position=position,
            index=tx.index,
            warnings=warnings,
        )


@dataclasses.dataclass(slots=True)
class _FileState:
    name: str
    interchange_index: int = 0
    doc_index: int = 0
    interchange_keys: set[str | None] = dataclasses.field(default_factory=set)


def _body_form(elements: list[str], cs: str) -> list[Any]:
    """Body form of a segment holding the component separator: composites become lists,
    trailing empty components dropped."""
    out: list[Any] = [elements[0]]
    for value in elements[1:]:
        if cs in value:
            parts = value.rstrip(cs).split(cs)
            out.append(parts if len(parts) > 1 else parts[0])
        else:
            out.append(value)
    return out


def _attach(tx: _Tx, pyx12_errors: list[Any], sid: str, line: int, errors: list[str]) -> None:
    """Sort pyx12's errors for a segment of a transaction set into rejections and warnings."""
    for kind, code, message, _value, _src_line in pyx12_errors:
        reason = _TX_REJECT.get((kind, code))
        if reason == "X12_SE_COUNT":
            se01 = tx.body[-1][1] if len(tx.body[-1]) > 1 else ""
            tx.problems.append(
                (
                    reason,
                    f"SE01 says {se01!s} segments but the transaction set has {len(tx.body)} "
                    "(ST to SE); a wrong count can mean lost segments, so ask the sender to resend it",
                )
            )
        elif reason == "X12_CONTROL_MISMATCH":
            tx.problems.append(
                (reason, f"SE02 at line {line} does not match ST02 {tx.control!r} ({message})")
            )
        elif reason == "X12_DUPLICATE_CONTROL":
            tx.problems.append(
                (reason, f"ST02 {tx.control!r} repeats another transaction set in the same group")
            )
        elif reason is not None:
            tx.problems.append((reason, f"{message} (segment {sid} at line {line})"))
        elif kind == "seg":
            if len(tx.warnings) < _MAX_SEGMENT_WARNINGS:
                tx.warnings.append(f"{message} (segment {sid} at line {line})")
        else:
            errors.append(_envelope_message((kind, code, message, None, None), line))


def _envelope_message(err: tuple[Any, ...], line: int | None) -> str:
    kind, _code, message = err[0], err[1], err[2]
    level = {"isa": "interchange", "gs": "group", "st": "transaction set"}.get(kind, "segment")
    where = f"line {line}" if line is not None else "end of input"
    return f"{level} error at {where}: {message}"


def _drop_repadded_iea_mismatch(
    pyx12_errors: list[Any], iea: _LightSegment, interchange: Envelope
) -> list[Any]:
    """pyx12 compared IEA02 with the ISA13 it was shown, zero-padded by us; recheck as sent."""
    iea02 = (iea.get_value("IEA02") or "").strip()
    isa13 = interchange.interchange_control_number or ""
    same = iea02 == isa13 or (iea02.isascii() and isa13.isascii() and iea02.isdigit() and isa13.isdigit() and int(iea02) == int(isa13))
    if not same:
        return pyx12_errors
    return [e for e in pyx12_errors if (e[0], e[1]) != ("isa", "001")]


def parse_x12(
    source: bytes | str | Path | BinaryIO, *, name: str | None = None, lenient: Lenient = False
) -> Iterator[Event]:
    """Events of X12 input given as bytes, text, a path or a binary stream (convenience)."""
    if isinstance(source, Path):
        with source.open("rb") as stream:
            yield from X12Parser(lenient).parse(stream, name=name or source.name)
        return
    if isinstance(source, str):
        source = source.encode("utf-8")
    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(source)
    yield from X12Parser(lenient).parse(source, name=name or "<input>")
