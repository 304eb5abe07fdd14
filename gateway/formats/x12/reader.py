"""Layer 2 of the X12 reader: pyx12's envelope checks over segments already split.

A pyx12 ``X12Reader`` per interchange checks SE/GE/IEA counts, control numbers, duplicates
and segment ids, on light segments (`_LightSegment`) a batch at a time; see the package
docstring (`gateway.formats.x12`) for why and for what the tests pin.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import re
from collections.abc import Iterable, Iterator
from typing import Any

import pyx12.errors
import pyx12.x12file

from gateway.formats.x12.isa import _Isa
from gateway.formats.x12.segmenter import _Batch

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
