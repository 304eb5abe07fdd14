"""Layer 3 of the X12 reader: events. `X12Parser` turns each interchange into
`InterchangeOpened`, a `Document` or `DocumentRejected` per transaction set, and
`InterchangeClosed`; `parse_x12` is the convenience form. Reason codes: see the package
docstring (`gateway.formats.x12`).
"""

from __future__ import annotations

import codecs
import dataclasses
import io
import itertools
from collections.abc import Generator, Iterator
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
from gateway.formats.x12.isa import _Isa
from gateway.formats.x12.reader import _ENVELOPE_IDS, _LightSegment, _Reader
from gateway.formats.x12.segmenter import _MAX_SEGMENT_WARNINGS, Lenient, _Segmenter
from gateway.formats.x12.source import _Source


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
    So is a TA1 segment (doc_type "TA1", its one segment as the body, no group).
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
        run = _Interchange(isa, state, source, segmenter)
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
            envelope=run.envelope, warnings=source.warnings + segmenter.warnings + isa.warnings
        )
        source.warnings.clear()
        segmenter.warnings.clear()

        base = 0  # index in this interchange of the batch's first segment; the ISA is 0
        for batch in reader.checked():
            elements_of, lines, segments = batch.elements, batch.lines, batch.segments
            empty_at = batch.empty_at
            n = len(elements_of)
            special = iter(batch.special)
            next_special = next(special, n)
            k = 0
            while k < n:
                tx = run.tx
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
                finished = run.segment(
                    elements_of[i],
                    lines[i],
                    first_seg_no + base + i,
                    segments.get(i),  # set for envelope segments and those with errors
                    empty_at.get(i, 0) if empty_at else 0,
                )
                if finished is not None:
                    yield finished
            base += n

        last = run.end(segmenter.trailing_empties)
        if last is not None:
            yield last
        return run.closed(reader)

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


class _Interchange:
    """One interchange being read, segment by segment where the fast path of
    `X12Parser._interchange` stops: its envelope, the functional group and the transaction
    set open, the documents finished and the interchange's own errors."""

    __slots__ = (
        "count",
        "envelope",
        "errors",
        "group",
        "isa",
        "saw_iea",
        "segmenter",
        "source",
        "state",
        "tx",
    )

    def __init__(self, isa: _Isa, state: _FileState, source: _Source, segmenter: _Segmenter):
        el = isa.elements
        self.envelope = Envelope(
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
        self.isa = isa
        self.state = state
        self.source = source
        self.segmenter = segmenter
        self.errors: list[str] = []
        self.group: Envelope | None = None
        self.tx: _Tx | None = None
        self.count = 0
        self.saw_iea = False
        key = self.envelope.interchange_key
        if key in state.interchange_keys:
            self.errors.append(
                f"ISA13 {self.envelope.interchange_control_number} from this sender repeats an "
                "earlier interchange in the same file"
            )
        state.interchange_keys.add(key)

    def _finish(self, tx: _Tx) -> Document | DocumentRejected:
        self.tx = None
        return X12Parser._finish(tx, self.source, self.segmenter)

    def segment(
        self,
        elements: list[Any],
        line: int,
        seg_no: int,
        seg: _LightSegment | None,
        empties: int,
    ) -> Document | DocumentRejected | None:
        """Read one special segment (envelope, error) or one outside a transaction set; the
        transaction set it finishes, if any."""
        sid = elements[0]
        pyx12_errors = seg.errors if seg is not None else None
        if empties:
            message = (
                f"an empty segment (two segment terminators in a row) before line "
                f"{line}; pyx12 and many translators stop reading there, so the sender "
                "must remove it"
            )
            if self.tx is not None and sid != "ST":
                self.tx.problems.append(("X12_EMPTY_SEGMENT", message))
            else:
                self.errors.append(message)
        finished: Document | DocumentRejected | None = None
        tx = self.tx
        if tx is not None:
            if sid not in _ENVELOPE_IDS or sid == "SE":
                tx.body.append(elements)
                tx.body.lines.append(line)
                if pyx12_errors:
                    _attach(tx, pyx12_errors, sid, line, self.errors)
                return self._finish(tx) if sid == "SE" else None
            # ST, GE, IEA or GS before the SE: the transaction set is cut off.
            tx.problems.append(
                (
                    "X12_TRUNCATED",
                    f"no SE before the {sid} at line {line}; the transaction set is incomplete",
                )
            )
            finished = self._finish(tx)
        if sid == "ST":
            assert seg is not None
            self._open_transaction(elements, line, seg_no, seg)
        elif sid == "TA1" and finished is None and not pyx12_errors:
            # A partner's interchange acknowledgement: a document of its own (the caller reads
            # it as an acknowledgement, gateway.acks.inbound), outside any group.
            index = self.state.doc_index
            self.state.doc_index += 1
            self.count += 1
            body = X12Segments()
            body.append(elements)
            body.lines.append(line)
            ta101 = elements[1] if len(elements) > 1 and isinstance(elements[1], str) else ""
            return Document(self.envelope, "TA1", ta101.strip() or None, body, f"line {line}, segment {seg_no}", index)
        else:
            self._outside_transaction(sid, line, seg, pyx12_errors)
        return finished

    def _open_transaction(
        self, elements: list[Any], line: int, seg_no: int, seg: _LightSegment
    ) -> None:
        problem: tuple[str, str] | None = None
        envelope = self.group
        if envelope is None:
            problem = (
                "X12_NO_GROUP",
                f"the transaction set at line {line} is not inside a GS..GE functional group",
            )
            envelope = self.envelope
        body = X12Segments()
        body.append(elements)
        body.lines.append(line)
        tx = self.tx = _Tx(
            envelope=envelope,
            doc_type=seg.get_value("ST01") or "",
            control=seg.get_value("ST02") or None,
            line=line,
            seg_no=seg_no,
            index=self.state.doc_index,
            body=body,
            problems=[problem] if problem else [],
            warnings=[],
        )
        self.state.doc_index += 1
        self.count += 1
        if seg.errors:
            _attach(tx, seg.errors, "ST", line, self.errors)

    def _outside_transaction(
        self, sid: str, line: int, seg: _LightSegment | None, pyx12_errors: list[Any] | None
    ) -> None:
        """An envelope segment (GS, GE, ISA, IEA) or one that belongs to no transaction set."""
        errors = self.errors
        if pyx12_errors:
            assert seg is not None  # errors come with a segment
            if sid == "IEA":
                pyx12_errors = _drop_repadded_iea_mismatch(pyx12_errors, seg, self.envelope)
            errors.extend(_envelope_message(e, line) for e in pyx12_errors)
        if sid == "GS":
            assert seg is not None  # an envelope segment
            if self.group is not None:
                errors.append(
                    f"the GS at line {line} opens a group before the GE of group "
                    f"{self.group.group_control_number}"
                )
            gs08 = (seg.get_value("GS08") or "").strip()
            self.group = dataclasses.replace(
                self.envelope,
                group_control_number=(seg.get_value("GS06") or "").strip() or None,
                functional_id=(seg.get_value("GS01") or "").strip() or None,
                version=gs08 or self.isa.version,
            )
        elif sid == "GE":
            if self.group is None:
                errors.append(f"the GE at line {line} closes no functional group (no GS)")
            self.group = None
        elif sid == "IEA":
            self.saw_iea = True
        elif sid == "TA1":
            errors.append(
                f"the TA1 interchange acknowledgment at line {line} is malformed and was ignored"
            )
        elif sid != "ISA":
            errors.append(
                f"segment {sid} at line {line} is outside any transaction set and was ignored"
            )

    def end(self, trailing_empties: int) -> Document | DocumentRejected | None:
        """The end of the interchange's segments: a transaction set still open is cut off."""
        tx = self.tx
        if trailing_empties:
            message = (
                f"{trailing_empties} empty segment(s) (two segment terminators in a row) at "
                "the end of the interchange"
            )
            if tx is not None:
                tx.problems.append(("X12_EMPTY_SEGMENT", message))
            else:
                self.errors.append(message)
        if tx is None:
            return None
        tx.problems.append(
            (
                "X12_TRUNCATED",
                "the interchange ends (end of input or the next ISA) before the SE of this "
                "transaction set; it is incomplete",
            )
        )
        return self._finish(tx)

    def closed(self, reader: _Reader) -> InterchangeClosed:
        reader.cleanup()
        for err in reader.pop_errors():
            if err[0] != "st":  # an open transaction set was rejected above
                self.errors.append(_envelope_message(err, None))
        return InterchangeClosed(
            envelope=self.envelope,
            digest=reader.digest.hexdigest(),
            errors=self.errors,
            document_count=self.count,
            complete=self.saw_iea and self.group is None,
        )


@dataclasses.dataclass(slots=True)
class _FileState:
    name: str
    interchange_index: int = 0
    doc_index: int = 0
    interchange_keys: set[str | None] = dataclasses.field(default_factory=set)


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
    same = iea02 == isa13 or (
        iea02.isascii()
        and isa13.isascii()
        and iea02.isdigit()
        and isa13.isdigit()
        and int(iea02) == int(isa13)
    )
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
