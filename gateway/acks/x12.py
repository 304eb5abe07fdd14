"""X12 acknowledgements: TA1, 997 (4010), 999 (5010) and the 855 purchase order acknowledgement.

Every builder returns the complete text of one outbound interchange (``ISA`` .. ``IEA``):

    build_ta1(ack)                       ISA, TA1, IEA*0 (a standalone interchange acknowledgment)
    build_997(ack)                       ISA, [TA1], one GS*FA group per inbound group, each
                                         with one 997 (AK1, AK2..AK5 per set, AK9), IEA
    build_999(ack)                       the same with 999 (5010, 005010X231A1): IK3/IK4/IK5
    build_855(order, decision, results)  ISA, GS*PR, one 855 (BAK, CUR, N1, PO1+ACK, CTT), IEA

pyx12's own 997 writer hard-codes its separators, takes ISA13 from the clock and writes ISA12
into GS08, so these are written here. The output follows the inbound interchange:

- separators are those of the inbound ISA (`read_isa`), default ``*`` ``:`` ``~``; X12 has no
  release character, so a value that contains a separator cannot be written: identifying
  values raise `AckValueError`, diagnostic copies (AK404/IK404) are left out instead;
- ISA05/06 and ISA07/08 are the inbound receiver and sender, swapped; GS02/GS03 likewise
  (the inbound GS03/GS02 when the caller knows them, else the ISA ids);
- ISA13 and GS06 come from `ControlNumbers` (ISA13 nine digits, zero-padded), ST02 counts
  from 0001 in each group; ISA14 is 0 (acknowledgements are never acknowledged); ISA15 is
  the inbound test indicator; GS08 is 004010 or 005010 (005010X231A1 for the 999, with ST03);
- ISA12 is 00401 or 00501, so pyx12 can read every acknowledgement back.

How a reason code shows (`X12_ACK_CODES`, one table for TA1/997/999; `x12_ack_code`):

    interchange  TA1 TA105 note code; TA104 is R if any of the reasons is marked R, else E
    group        AK905..AK909 (AK9); "rejects group" reasons make AK901 R and list no sets
    transaction  AK502..AK506 / IK502.. (AK5 / IK5)
    segment      AK3/IK3 with AK304/IK304, plus AK502 5 on the set
    element      AK3/IK3 with code 8 and AK4/IK4 with AK403/IK403, plus AK502 5 on the set
    business     not reported: the 997/999 says the set was read (A); the 855 answers the order

An AK3 needs the segment id and its position in the set, an AK4 the element position; when
an `AckError` lacks them (the parser's rejections carry file lines, not positions in the
set) the loop is left out and the set still shows AK502 5. Codes that the caller did not
give, or that this table does not know, fall back to AK502 5 (a transaction-level problem)
so that a refused document never looks accepted.

Choices the standard leaves open (see the test module for the pinned behaviour):

- X12_BAD_NUMBER is AK403 6 (invalid character: R/N elements allow digits, sign, point);
  X12_MISSING_QUANTITY is AK403 2 (PO102 is conditional on PO103 in the 850);
  MISSING_PO_NUMBER is BEG03 (ref 324) mandatory missing, or the BEG segment missing (AK304 3)
  when `x12_ack_error` sees that there is no BEG.
- X12_CTT_COUNT (and every VALIDATION:* or duplicate reason) is business: the 997 stays A.
- AK9: A when every set is A and the group has no error; E when every set is A or E and
  something was noted; P when some but not all sets are accepted; R when none is.
  AK902 is GE01 as sent (the received count when unknown), AK903 the sets received,
  AK904 the sets accepted (A or E).
- A duplicate GS06 is AK905 6 in 4010 (as pyx12 reports it; 4010 has no "not unique" code)
  and 19 in 5010.
- TA105: the first reason marked R, else the first reason; one TA1 reports one note.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Literal

from gateway.acks.model import (
    BUSINESS_REASONS,
    GROUP,
    INTERCHANGE,
    AckError,
    AckValueError,
    ControlNumbers,
    EnvelopeReasons,
    GroupAck,
    InterchangeAck,
    LineResult,
    LineStatus,
    PoDecision,
    TransactionAck,
    X12Separators,
    is_business_reason,
    partner_key,
)
from gateway.formats.base import Envelope
from gateway.model import Order, OrderLine, Party

__all__ = [
    "X12_ACK_CODES",
    "IsaHeader",
    "X12AckCode",
    "X12Writer",
    "build_855",
    "build_997",
    "build_999",
    "build_ta1",
    "interchange_reasons",
    "read_isa",
    "x12_ack_code",
    "x12_ack_error",
    "x12_number",
    "x12_order_envelope",
    "x12_writer",
]

Level = Literal["interchange", "group", "transaction", "segment", "element", "business"]


@dataclass(frozen=True, slots=True)
class X12AckCode:
    """How one reason code shows in TA1/997/999.

    `code` is the code of the level: TA105, AK905, AK502, AK304 or AK403 (the same in 999
    unless `code_5010` says otherwise). The other fields are defaults for an `AckError` that
    does not say where the problem is.
    """

    level: Level
    code: str | None = None
    code_5010: str | None = None
    ta104: Literal["E", "R"] = "R"  # interchange level: accepted with errors, or rejected
    rejects_group: bool = False  # group level: the whole group is rejected
    segment_id: str | None = None
    segment_position: int | None = None
    element_position: int | None = None
    element_reference: str | None = None

    def code_for(self, v5010: bool) -> str | None:
        return self.code_5010 if v5010 and self.code_5010 else self.code


_BUSINESS = X12AckCode("business")
_UNKNOWN = X12AckCode("transaction", "5")
_UNKNOWN_INTERCHANGE = X12AckCode("interchange", "024", ta104="E")

X12_ACK_CODES: Mapping[str, X12AckCode] = MappingProxyType(
    {
        # interchange: TA105 (TA104 R unless marked E)
        "X12_IEA_CONTROL_MISMATCH": X12AckCode("interchange", "001", ta104="E"),
        "X12_IEA_COUNT": X12AckCode("interchange", "021", ta104="E"),
        "X12_CONTROL_STRUCTURE": X12AckCode("interchange", "022"),
        "X12_ISA": X12AckCode("interchange", "022"),
        "X12_IEA_MISSING": X12AckCode("interchange", "023"),
        "X12_INTERCHANGE_CONTENT": X12AckCode("interchange", "024", ta104="E"),
        "X12_NO_GROUP": X12AckCode("interchange", "024", ta104="E"),
        "X12_DUPLICATE_INTERCHANGE": X12AckCode("interchange", "025"),
        "CONTROL_NUMBER_REUSED": X12AckCode("interchange", "025"),
        "X12_SEPARATORS": X12AckCode("interchange", "026"),
        # group: AK905
        "X12_GROUP_NOT_SUPPORTED": X12AckCode("group", "1", rejects_group=True),
        "X12_GROUP_VERSION": X12AckCode("group", "2", rejects_group=True),
        "X12_GE_MISSING": X12AckCode("group", "3"),
        "X12_GROUP_CONTROL_MISMATCH": X12AckCode("group", "4"),
        "X12_GE_COUNT": X12AckCode("group", "5"),
        "X12_DUPLICATE_GROUP": X12AckCode("group", "6", code_5010="19"),
        # transaction set: AK502 / IK502
        "X12_NOT_SUPPORTED": X12AckCode("transaction", "1"),
        "X12_NOT_850": X12AckCode("transaction", "1"),
        "X12_TRUNCATED": X12AckCode("transaction", "2"),
        "X12_CONTROL_MISMATCH": X12AckCode("transaction", "3"),
        "X12_SE_COUNT": X12AckCode("transaction", "4"),
        "X12_DUPLICATE_CONTROL": X12AckCode("transaction", "23"),
        # segment: AK304 / IK304 (and AK502 5)
        "X12_SEGMENT": X12AckCode("segment", "1"),
        "X12_EMPTY_SEGMENT": X12AckCode("segment", "1"),
        "X12_UNEXPECTED_SEGMENT": X12AckCode("segment", "2"),
        "X12_MISSING_SEGMENT": X12AckCode("segment", "3"),
        "X12_LOOP_MAX": X12AckCode("segment", "4"),
        "X12_SEGMENT_MAX_USE": X12AckCode("segment", "5"),
        "X12_SEGMENT_NOT_IN_SET": X12AckCode("segment", "6"),
        "X12_SEGMENT_ORDER": X12AckCode("segment", "7"),
        # element: AK403 / IK403 (under AK304 8, and AK502 5)
        "X12_MISSING_ELEMENT": X12AckCode("element", "1"),
        "MISSING_PO_NUMBER": X12AckCode(
            "element",
            "1",
            segment_id="BEG",
            segment_position=2,
            element_position=3,
            element_reference="324",
        ),
        "X12_CONDITIONAL_MISSING": X12AckCode("element", "2"),
        "X12_MISSING_QUANTITY": X12AckCode(
            "element", "2", segment_id="PO1", element_position=2, element_reference="330"
        ),
        "X12_TOO_MANY_ELEMENTS": X12AckCode("element", "3"),
        "X12_ELEMENT_TOO_SHORT": X12AckCode("element", "4"),
        "X12_ELEMENT_TOO_LONG": X12AckCode("element", "5"),
        "X12_INVALID_CHARACTER": X12AckCode("element", "6"),
        "X12_BAD_NUMBER": X12AckCode("element", "6"),
        "X12_INVALID_CODE": X12AckCode("element", "7"),
        "X12_BAD_DATE": X12AckCode("element", "8"),
        "X12_BAD_TIME": X12AckCode("element", "9"),
        # business: not in a 997/999 (the 855 answers)
        **dict.fromkeys(sorted(BUSINESS_REASONS), _BUSINESS),
    }
)
"""Reason code -> how it shows in X12 acknowledgements. VALIDATION:* reasons are business."""

# Data element reference numbers (AK402) of the 850 elements our mapping reports.
_ELEMENT_REFS: Mapping[tuple[str, int], str] = MappingProxyType(
    {
        ("BEG", 3): "324",
        ("BEG", 5): "373",
        ("DTM", 2): "373",
        ("PO1", 2): "330",
        ("PO1", 3): "355",
        ("PO1", 4): "212",
        ("PO4", 1): "356",
        ("PO4", 2): "357",
        ("SAC", 5): "610",
        ("SDQ", 4): "380",
        ("CTT", 1): "354",
        ("CTT", 2): "347",
        ("ITD", 3): "338",
    }
)


def x12_ack_code(reason: str) -> X12AckCode:
    """The table entry for a reason; business for VALIDATION:*, AK502 5 for unknown codes."""
    if is_business_reason(reason):
        return _BUSINESS
    return X12_ACK_CODES.get(reason, _UNKNOWN)


# -- reading what the builders need from the inbound interchange -----------------------------


@dataclass(frozen=True, slots=True)
class IsaHeader:
    """What an acknowledgement needs from the inbound ISA that `Envelope` does not carry."""

    separators: X12Separators
    date: str  # ISA09 as sent (YYMMDD)
    time: str  # ISA10 as sent (HHMM)
    version: str  # ISA12
    control_number: str  # ISA13 as sent
    test_indicator: str  # ISA15
    ack_requested: bool  # ISA14 == "1"


def read_isa(text: str | bytes) -> IsaHeader:
    """Separators, date and time of the first ISA in `text` (padded to 106 characters or not).

    A BOM and leading whitespace are skipped. Raises AckValueError if there is no readable ISA.
    """
    if isinstance(text, bytes):
        text = text[:4096].removeprefix(b"\xef\xbb\xbf").decode("latin-1")
    text = text.lstrip("\ufeff \t\r\n\x00")
    if not text.startswith("ISA") or len(text) < 4:
        raise AckValueError("the input does not start with an ISA segment")
    es = text[3]
    pos = 3
    try:
        for _ in range(15):
            pos = text.index(es, pos + 1)
        component, terminator = text[pos + 1], text[pos + 2]
    except (ValueError, IndexError) as exc:
        raise AckValueError("the ISA segment is cut off (fewer than 16 elements)") from exc
    elements = text[4:pos].split(es)
    after = text[pos + 3 : pos + 5]
    line_ending = ""
    if terminator not in "\r\n":
        line_ending = "\r\n" if after.startswith("\r\n") else "\n" if after.startswith("\n") else ""
    version = elements[11].strip()
    isa11 = elements[10]
    repetition = None
    if (
        version >= "00402"
        and len(isa11) == 1
        and not isa11.isalnum()
        and isa11 not in (es, component, terminator, " ")
    ):
        repetition = isa11
    return IsaHeader(
        separators=X12Separators(
            element=es,
            component=component,
            segment=terminator,
            repetition=repetition,
            line_ending=line_ending,
        ),
        date=elements[8].strip(),
        time=elements[9].strip(),
        version=version,
        control_number=elements[12].strip(),
        test_indicator=elements[14].strip(),
        ack_requested=elements[13].strip() == "1",
    )


# (pattern, reason); a named group "group" puts the reason on that functional group.
# The messages are pyx12 4.0's (x12file.X12Reader) and gateway.formats.x12's own;
# tests/unit/test_acks_x12.py runs the parser to pin them.
_ENVELOPE_MESSAGES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"IEA id=\S* does not match ISA id="), "X12_IEA_CONTROL_MISMATCH"),
    (re.compile(r"IEA count for IEA02=\S* is wrong"), "X12_IEA_COUNT"),
    (re.compile(r'"Interchange Control Trailer" \(IEA=[^)]*\) missing'), "X12_IEA_MISSING"),
    (re.compile(r"Unterminated Loop"), "X12_INTERCHANGE_CONTENT"),
    (re.compile(r"ISA Interchange Control Number \S* not unique"), "X12_DUPLICATE_INTERCHANGE"),
    (re.compile(r"ISA13 \S* from this sender repeats an earlier"), "X12_DUPLICATE_INTERCHANGE"),
    (re.compile(r"GE count of \S* for GE02=(?P<group>\S*) is wrong"), "X12_GE_COUNT"),
    (re.compile(r"GE id=\S* does not match GS id=(?P<group>\S*)"), "X12_GROUP_CONTROL_MISMATCH"),
    (re.compile(r'"Functional Group Trailer" \(GE=(?P<group>[^)]*)\) missing'), "X12_GE_MISSING"),
    (re.compile(r"GS Interchange Control Number (?P<group>\S*) not unique"), "X12_DUPLICATE_GROUP"),
    (re.compile(r"opens a group before the GE of group"), "X12_CONTROL_STRUCTURE"),
    (re.compile(r"closes no functional group"), "X12_CONTROL_STRUCTURE"),
    (re.compile(r"is outside any transaction set and was ignored"), "X12_INTERCHANGE_CONTENT"),
    (re.compile(r"empty segment"), "X12_INTERCHANGE_CONTENT"),
)


def interchange_reasons(errors: Iterable[str]) -> EnvelopeReasons:
    """Sort the readable `InterchangeClosed.errors` of the X12 parser into reason codes."""
    return EnvelopeReasons.classify(errors, _ENVELOPE_MESSAGES)


_WHERE_SEGMENT = re.compile(r"segment (\d+) of transaction .*?\(([A-Za-z0-9]{2,3})\)")
_WHERE_ELEMENT = re.compile(r"element ([A-Z0-9]{2,3}?)(\d{2})\b")
_QUOTED_VALUE = re.compile(r"^[A-Z0-9]{2,3}\d{2} '([^']*)'")


def x12_ack_error(reason: str, message: str = "", position: str | None = None) -> AckError:
    """An `AckError` from a rejection (`DocumentRejected` or `MappingError` fields).

    Reads the segment and element from the mapping's positions (``line 14, segment 5 of
    transaction 0001 (PO1), element PO102``). A PO without any BEG becomes a missing BEG
    segment (X12_MISSING_SEGMENT at position 2).
    """
    if reason == "MISSING_PO_NUMBER" and "no BEG segment" in message:
        return AckError("X12_MISSING_SEGMENT", "BEG", 2, message=message)
    segment_id = segment_position = element_position = None
    where = position or ""
    m = _WHERE_SEGMENT.search(where)
    if m:
        segment_position, segment_id = int(m.group(1)), m.group(2)
    e = _WHERE_ELEMENT.search(where)
    if e and (segment_id is None or e.group(1) == segment_id):
        segment_id = e.group(1)
        element_position = int(e.group(2)) or None
    bad = _QUOTED_VALUE.match(message)
    return AckError(
        reason,
        segment_id=segment_id,
        segment_position=segment_position,
        element_position=element_position,
        bad_value=bad.group(1) if bad else None,
        message=message,
    )


# -- writing ---------------------------------------------------------------------------------

Element = str | tuple[str | None, ...] | None


class _Writer:
    """The segments of one outbound interchange, checked and counted as they are added."""

    def __init__(self, separators: X12Separators, repetition: str | None) -> None:
        self.sep = separators
        self.repetition = repetition
        self.forbidden = frozenset(
            c
            for c in (separators.element, separators.component, separators.segment, repetition)
            if c
        )
        self.segments: list[str] = []
        self.group_count = 0
        self.group_control = ""
        self.set_count = 0
        self.st_control = ""
        self.st_index = -1

    def fits(self, value: str) -> bool:
        return not any(c in self.forbidden or c < " " or c == "\x7f" for c in value)

    def value(self, value: str, what: str) -> str:
        for c in value:
            if c in self.forbidden or c < " " or c == "\x7f":
                raise AckValueError(
                    f"{what} {value!r} contains {c!r}, which cannot be written with these X12 "
                    "separators (X12 has no release character)"
                )
        return value

    def seg(self, sid: str, *elements: Element) -> None:
        parts: list[str] = []
        for i, el in enumerate(elements, 1):
            what = f"{sid}{i:02d}"
            if el is None:
                parts.append("")
            elif isinstance(el, tuple):
                comps = [self.value(c or "", what) for c in el]
                while comps and comps[-1] == "":
                    comps.pop()
                parts.append(self.sep.component.join(comps))
            else:
                parts.append(self.value(el, what))
        while parts and parts[-1] == "":
            parts.pop()
        self.segments.append(self.sep.element.join([sid, *parts]))

    def isa(
        self,
        envelope: Envelope,
        *,
        control: int,
        now: dt.datetime,
        version: str,
    ) -> None:
        """ISA with the inbound sender and receiver swapped."""
        if not 1 <= control <= 999_999_999:
            raise AckValueError(f"ISA13 must be 1..999999999, the allocator gave {control}")
        test = envelope.test_indicator if envelope.test_indicator in ("P", "T", "I") else "P"
        isa11 = "U" if version < "00402" else self.repetition
        if isa11 is None:  # pragma: no cover - _repetition always picks one for 5010
            raise AckValueError("a 5010 ISA needs a repetition separator")
        fields = [
            "ISA",
            "00",
            " " * 10,
            "00",
            " " * 10,
            self._fixed(envelope.receiver_qualifier, 2, "ISA05 (inbound ISA07)"),
            self._fixed(envelope.receiver_id, 15, "ISA06 (inbound ISA08)"),
            self._fixed(envelope.sender_qualifier, 2, "ISA07 (inbound ISA05)"),
            self._fixed(envelope.sender_id, 15, "ISA08 (inbound ISA06)"),
            f"{now:%y%m%d}",
            f"{now:%H%M}",
            isa11,
            version,
            f"{control:09d}",
            "0",
            test,
            self.sep.component,
        ]
        self.segments.append(self.sep.element.join(fields))

    def _fixed(self, value: str | None, width: int, what: str) -> str:
        if not value:
            raise AckValueError(f"{what} is unknown: the inbound envelope does not name it")
        self.value(value, what)
        if len(value) > width:
            raise AckValueError(f"{what} {value!r} is longer than {width} characters")
        return value.ljust(width)

    def gs(
        self,
        functional_id: str,
        sender: str,
        receiver: str,
        *,
        control: int,
        now: dt.datetime,
        version: str,
    ) -> None:
        if not 1 <= control <= 999_999_999:
            raise AckValueError(f"GS06 must be 1..999999999, the allocator gave {control}")
        for what, code in (("GS02", sender), ("GS03", receiver)):
            if not 2 <= len(code) <= 15:
                raise AckValueError(f"{what} {code!r} must be 2 to 15 characters")
        self.seg(
            "GS",
            functional_id,
            sender,
            receiver,
            f"{now:%Y%m%d}",
            f"{now:%H%M}",
            str(control),
            "X",
            version,
        )
        self.group_count += 1
        self.set_count = 0
        self.group_control = str(control)

    def st(self, doc_type: str, implementation: str | None = None) -> None:
        self.set_count += 1
        self.st_control = f"{self.set_count:04d}"
        self.st_index = len(self.segments)
        self.seg("ST", doc_type, self.st_control, implementation)

    def se(self) -> None:
        count = len(self.segments) - self.st_index + 1
        self.seg("SE", str(count), self.st_control)

    def ge(self) -> None:
        self.seg("GE", str(self.set_count), self.group_control)

    def iea(self, control: int) -> None:
        self.seg("IEA", str(self.group_count), f"{control:09d}")

    def text(self) -> str:
        end = self.sep.segment + self.sep.line_ending
        return "".join(s + end for s in self.segments)


def _now(now: dt.datetime | None) -> dt.datetime:
    return now if now is not None else dt.datetime.now(dt.UTC)


def _separators(value: object) -> X12Separators:
    if value is None:
        return X12Separators()
    if not isinstance(value, X12Separators):
        raise AckValueError(f"X12 acknowledgements need X12Separators, got {type(value).__name__}")
    return value


def _repetition(sep: X12Separators) -> str:
    """ISA11 of a 5010 interchange: the inbound repetition separator, else a free character."""
    if sep.repetition is not None:
        return sep.repetition
    taken = {sep.element, sep.component, sep.segment}
    for c in "^|!`{}":
        if c not in taken:
            return c
    raise AckValueError("no free character for the ISA11 repetition separator")  # pragma: no cover


def _isa_version(version: str) -> str:
    return "00501" if version.startswith("005") else "00401"


def _x12_envelope(ack: InterchangeAck) -> Envelope:
    if ack.envelope.standard != "x12":
        raise AckValueError(f"an X12 acknowledgement for a {ack.envelope.standard} interchange")
    return ack.envelope


# -- TA1 -------------------------------------------------------------------------------------


def _ta1_codes(errors: Iterable[str]) -> tuple[str, str]:
    rules: list[X12AckCode] = []
    for reason in errors:
        if is_business_reason(reason):
            continue
        rule = X12_ACK_CODES.get(reason, _UNKNOWN_INTERCHANGE)
        if rule.level == "interchange":
            rules.append(rule)
    if not rules:
        return "A", "000"
    rejecting = [r for r in rules if r.ta104 == "R"]
    worst = rejecting[0] if rejecting else rules[0]
    assert worst.code is not None
    return ("R" if rejecting else "E"), worst.code


def _ta1(w: _Writer, ack: InterchangeAck, ack_code: str | None, note_code: str | None) -> None:
    env = ack.envelope
    control = env.interchange_control_number
    if not control:
        raise AckValueError("a TA1 needs the inbound ISA13")
    if control.isdigit():
        control = control.zfill(9)
    if not ack.interchange_date or not ack.interchange_time:
        raise AckValueError(
            "a TA1 echoes ISA09/ISA10: set InterchangeAck.interchange_date/time (see read_isa)"
        )
    code, note = _ta1_codes(ack.errors)
    if ack_code is not None and ack_code not in ("A", "E", "R"):
        raise AckValueError(f"TA104 must be A, E or R, got {ack_code!r}")
    if note_code is not None and not (len(note_code) == 3 and note_code.isdigit()):
        raise AckValueError(f"TA105 must be three digits, got {note_code!r}")
    w.seg(
        "TA1",
        control,
        ack.interchange_date,
        ack.interchange_time,
        ack_code or code,
        note_code or note,
    )


def build_ta1(
    ack: InterchangeAck,
    *,
    control_numbers: ControlNumbers,
    partner: str | None = None,
    now: dt.datetime | None = None,
    ack_code: str | None = None,
    note_code: str | None = None,
    version: str | None = None,
) -> str:
    """A standalone TA1 interchange (ISA, TA1, IEA*0) for the inbound interchange.

    TA104/TA105 follow `ack.errors` (A/000 without errors); `ack_code` and `note_code`
    override them. `version` is the outbound ISA12 (00401 or 00501; default: the inbound
    one when it is one of these, else 00401).
    """
    env = _x12_envelope(ack)
    sep = _separators(ack.separators)
    isa_version = version or (env.version if env.version in ("00401", "00501") else "00401")
    if isa_version not in ("00401", "00501"):
        raise AckValueError(f"the TA1 ISA12 must be 00401 or 00501, got {isa_version!r}")
    w = _Writer(sep, _repetition(sep) if isa_version == "00501" else None)
    control = control_numbers.next(partner or partner_key(env), INTERCHANGE)
    w.isa(env, control=control, now=_now(now), version=isa_version)
    _ta1(w, ack, ack_code, note_code)
    w.iea(control)
    return w.text()


# -- 997 / 999 -------------------------------------------------------------------------------


def build_997(
    ack: InterchangeAck,
    *,
    control_numbers: ControlNumbers,
    partner: str | None = None,
    now: dt.datetime | None = None,
    version: Literal["004010", "005010"] = "004010",
    with_ta1: bool = False,
) -> str:
    """A 997 functional acknowledgment per inbound group, in one interchange.

    `version` is GS08 (ISA12 follows). `with_ta1` puts a TA1 for the interchange after the ISA.
    """
    return _build_fa(ack, "997", control_numbers, partner, now, version, with_ta1)


def build_999(
    ack: InterchangeAck,
    *,
    control_numbers: ControlNumbers,
    partner: str | None = None,
    now: dt.datetime | None = None,
    with_ta1: bool = False,
) -> str:
    """A 999 implementation acknowledgment (005010X231A1) per inbound group, in one interchange.

    Every `GroupAck.version` (the inbound GS08, echoed in AK103) must be known.
    """
    return _build_fa(ack, "999", control_numbers, partner, now, "005010X231A1", with_ta1)


def _build_fa(
    ack: InterchangeAck,
    kind: Literal["997", "999"],
    control_numbers: ControlNumbers,
    partner: str | None,
    now: dt.datetime | None,
    version: str,
    with_ta1: bool,
) -> str:
    env = _x12_envelope(ack)
    if version not in ("004010", "005010", "005010X231A1"):
        raise AckValueError(f"unsupported {kind} version {version!r}")
    if not ack.groups and not with_ta1:
        raise AckValueError(f"a {kind} needs at least one functional group to acknowledge")
    for group in ack.groups:
        if group.group_control_number is None:
            raise AckValueError("an X12 functional group needs its GS06")
        if kind == "999" and not group.version:
            raise AckValueError(f"the 999 AK103 needs GS08 of group {group.group_control_number}")
    sep = _separators(ack.separators)
    isa_version = _isa_version(version)
    v5010 = isa_version == "00501"
    w = _Writer(sep, _repetition(sep) if v5010 else None)
    key = partner or partner_key(env)
    now = _now(now)
    control = control_numbers.next(key, INTERCHANGE)
    w.isa(env, control=control, now=now, version=isa_version)
    if with_ta1:
        _ta1(w, ack, None, None)
    ours = (env.receiver_id or "").strip()
    theirs = (env.sender_id or "").strip()
    for group in ack.groups:
        w.gs(
            "FA",
            group.application_receiver or ours,
            group.application_sender or theirs,
            control=control_numbers.next(key, GROUP),
            now=now,
            version=version,
        )
        w.st(kind, version if kind == "999" else None)
        _ak_group(w, group, kind, v5010)
        w.se()
        w.ge()
    w.iea(control)
    return w.text()


def _ak_group(w: _Writer, group: GroupAck, kind: str, v5010: bool) -> None:
    w.seg(
        "AK1",
        group.functional_id,
        group.group_control_number,
        group.version if kind == "999" else None,
    )
    codes: list[str] = []
    noted = False
    rejected = False
    for reason in group.errors:
        rule = x12_ack_code(reason)
        if rule.level == "business":
            continue
        noted = True
        code = rule.code_for(v5010) if rule.level == "group" else None
        if code is not None and code not in codes:
            codes.append(code)
        rejected = rejected or rule.rejects_group
    received = len(group.transactions)
    declared = group.declared_count if group.declared_count is not None else received
    accepted = 0
    any_e = False
    if not rejected:
        for tx in group.transactions:
            status = _ak_transaction(w, tx, kind, v5010)
            accepted += status in ("A", "E")
            any_e = any_e or status == "E"
    if rejected or (received == 0 and declared > 0):
        status = "R"
    elif accepted == received:
        status = "E" if noted or any_e else "A"
    elif accepted == 0:
        status = "R"
    else:
        status = "P"
    w.seg("AK9", status, str(declared), str(received), str(accepted), *codes[:5])


def _ak_transaction(w: _Writer, tx: TransactionAck, kind: str, v5010: bool) -> str:
    """The AK2 loop of one set (AK2, AK3/AK4 or IK3/IK4, AK5 or IK5); returns AK501."""
    codes: list[str] = []
    located: list[tuple[AckError, X12AckCode]] = []
    syntax = False
    for error in tx.errors:
        rule = x12_ack_code(error.reason)
        if rule.level == "business":
            continue
        syntax = True
        if rule.level in ("segment", "element"):
            located.append((error, rule))
            code = "5"
        elif rule.level == "transaction" and rule.code is not None:
            code = rule.code_for(v5010) or "5"
        else:
            code = "5"
        if code not in codes:
            codes.append(code)
    if tx.ack_code is not None:
        status = tx.ack_code
    elif not syntax:
        status = "A"
    else:
        status = "E" if tx.accepted else "R"
    if status == "A":
        codes = []
    if tx.control_number is None:
        return status  # no AK2 can name it; AK9 still counts it
    w.seg(
        "AK2",
        tx.doc_type,
        tx.control_number,
        tx.implementation_reference if kind == "999" else None,
    )
    _segment_loops(w, located, kind)
    w.seg("IK5" if kind == "999" else "AK5", status, *codes[:5])
    return status


def _segment_loops(w: _Writer, located: list[tuple[AckError, X12AckCode]], kind: str) -> None:
    seg_tag, ele_tag = ("IK3", "IK4") if kind == "999" else ("AK3", "AK4")
    loops: dict[tuple[int, str], tuple[list[str], list[tuple[AckError, X12AckCode]]]] = {}
    for error, rule in located:
        sid = error.segment_id or rule.segment_id
        pos = error.segment_position or rule.segment_position
        if not sid or pos is None or not (2 <= len(sid) <= 3 and sid.isalnum()) or not w.fits(sid):
            continue
        seg_codes, elements = loops.setdefault((pos, sid), ([], []))
        if rule.level == "segment":
            assert rule.code is not None
            seg_codes.append(rule.code)
        else:
            elements.append((error, rule))
    for (pos, sid), (seg_codes, elements) in sorted(loops.items()):
        w.seg(seg_tag, sid, str(pos), None, seg_codes[0] if seg_codes else "8")
        for error, rule in elements[:99]:
            epos = error.element_position or rule.element_position
            if epos is None:
                continue
            where: Element = (
                (str(epos), str(error.component_position))
                if error.component_position
                else str(epos)
            )
            ref = (
                error.element_reference or rule.element_reference or _ELEMENT_REFS.get((sid, epos))
            )
            bad = error.bad_value
            if bad is not None and not (0 < len(bad) <= 99 and w.fits(bad)):
                bad = None  # a copy we cannot write is left out rather than altered
            w.seg(ele_tag, where, ref, rule.code, bad)


# -- 855 -------------------------------------------------------------------------------------


def build_855(
    order: Order,
    decision: PoDecision | str,
    line_results: Sequence[LineResult] = (),
    *,
    control_numbers: ControlNumbers,
    separators: X12Separators | None = None,
    envelope: Envelope | None = None,
    partner: str | None = None,
    now: dt.datetime | None = None,
    version: str | None = None,
    our_application_code: str | None = None,
    their_application_code: str | None = None,
    seller_order_number: str | None = None,
) -> str:
    """An 855 purchase order acknowledgment for `order`, in its own interchange.

    `line_results` pairs with `order.lines` by position; empty means every line as ordered
    (IA for an accepting decision, IR for a rejecting one). Which lines are listed follows
    `decision.detail`. Each listed line is PO1 (the line as ordered; PO104 the acknowledged
    price) followed by ACK (status, the quantity it applies to, unit, scheduled date).
    `envelope` (default: built from `order.source`) is the inbound interchange; `version`
    is GS08 (default: 005010 if the order came in 5010, else 004010). GS02/GS03 default to
    the ISA ids.
    """
    decision = PoDecision(decision)
    env = envelope or _order_envelope(order)
    sep = separators or X12Separators()
    results = _line_results(order, decision, line_results)
    gs08 = version or ("005010" if (order.source.version or "").startswith("005") else "004010")
    if gs08 not in ("004010", "005010"):
        raise AckValueError(f"the 855 GS08 must be 004010 or 005010, got {gs08!r}")
    isa_version = _isa_version(gs08)
    w = _Writer(sep, _repetition(sep) if isa_version == "00501" else None)
    key = partner or partner_key(env)
    now = _now(now)
    control = control_numbers.next(key, INTERCHANGE)
    w.isa(env, control=control, now=now, version=isa_version)
    w.gs(
        "PR",
        our_application_code or (env.receiver_id or "").strip(),
        their_application_code or (env.sender_id or "").strip(),
        control=control_numbers.next(key, GROUP),
        now=now,
        version=gs08,
    )
    w.st("855")
    po_date = order.order_date or now.date()
    w.seg(
        "BAK",
        "00",
        decision.value,
        order.po_number,
        f"{po_date:%Y%m%d}",
        order.release_number,
        None,
        order.contract_number,
        seller_order_number,
        f"{now:%Y%m%d}",
    )
    if order.currency:
        w.seg("CUR", "BY", order.currency)
    for code, party in (("BY", order.buyer), ("ST", order.ship_to)):
        if party is not None:
            _n1(w, code, party)
    listed = [
        (line, result)
        for line, result in zip(order.lines, results, strict=True)
        if decision.detail == "all"
        or (decision.detail == "exceptions" and result.status is not LineStatus.ACCEPTED)
    ]
    total = Decimal(0)
    for index, (line, result) in enumerate(listed, 1):
        _po1_ack(w, index, line, result)
        total += line.quantity
    if listed:
        w.seg("CTT", str(len(listed)), _num(total))
    w.se()
    w.ge()
    w.iea(control)
    return w.text()


def _order_envelope(order: Order) -> Envelope:
    s = order.source
    return Envelope(
        standard="x12",
        sender_id=s.sender_id,
        sender_qualifier=s.sender_qualifier,
        receiver_id=s.receiver_id,
        receiver_qualifier=s.receiver_qualifier,
        interchange_control_number=s.interchange_control_number,
        group_control_number=s.group_control_number,
        version=s.version,
        test_indicator=s.test_indicator,
    )


def _line_results(
    order: Order, decision: PoDecision, results: Sequence[LineResult]
) -> list[LineResult]:
    if not results:
        default = LineStatus.ACCEPTED if decision.accepted else LineStatus.REJECTED
        return [LineResult(status=default) for _ in order.lines]
    if len(results) != len(order.lines):
        raise AckValueError(
            f"{len(results)} line results for {len(order.lines)} order lines; pair them by position"
        )
    if not decision.allows_changes:
        changed = [i for i, r in enumerate(results, 1) if r.status is not LineStatus.ACCEPTED]
        if changed:
            raise AckValueError(
                f"decision {decision.value} says every line is accepted as ordered, but line(s) "
                f"{changed} are not; use {PoDecision.from_lines(results).value}"
            )
    return list(results)


def _n1(w: _Writer, code: str, party: Party) -> None:
    if party.code and party.code_qualifier:
        w.seg("N1", code, party.name, party.code_qualifier, party.code)
    elif party.name:
        w.seg("N1", code, party.name)


def _po1_ack(w: _Writer, index: int, line: OrderLine, result: LineResult) -> None:
    price = result.unit_price if result.unit_price is not None else line.unit_price
    ids: list[str | None] = []
    for item in line.item_ids[:10]:
        ids += [item.qualifier, item.value]
    w.seg(
        "PO1",
        line.line_number or str(index),
        _num(line.quantity),
        line.uom,
        _num(price) if price is not None else None,
        line.price_basis,
        *ids,
    )
    quantity = result.quantity if result.quantity is not None else line.quantity
    uom = result.uom or line.uom
    date_qualifier = date = None
    if result.date is not None:
        date_qualifier = "068" if result.date_kind == "ship" else "067"
        date = f"{result.date:%Y%m%d}"
    w.seg("ACK", result.status.value, _num(quantity) if uom else None, uom, date_qualifier, date)


def _num(value: Decimal) -> str:
    """An X12 numeric (R) value: no exponent, no trailing zeros after the point."""
    if not value.is_finite():
        raise AckValueError(f"{value} is not a number that can be written")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


# -- shared with the documents after the order (856, 810, 846: gateway.acks.ship_notice, ...) --

X12Writer = _Writer  # one outbound interchange: ISA/GS/ST/SE/GE/IEA counted as segments are added
x12_number = _num  # an X12 numeric (R) value


def x12_order_envelope(order: Order) -> Envelope:
    """The inbound interchange `order` came in (what an answer swaps sender and receiver of)."""
    return _order_envelope(order)


def x12_writer(gs08: str, separators: X12Separators | None = None) -> tuple[X12Writer, str]:
    """A writer for a document in GS08 version `gs08` (004010 / 005010), and its ISA12."""
    if gs08 not in ("004010", "005010"):
        raise AckValueError(f"GS08 must be 004010 or 005010, got {gs08!r}")
    sep = separators or X12Separators()
    isa_version = _isa_version(gs08)
    return _Writer(sep, _repetition(sep) if isa_version == "00501" else None), isa_version
