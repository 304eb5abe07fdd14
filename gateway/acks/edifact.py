"""EDIFACT acknowledgements: CONTRL (syntax and service report) and ORDRSP (order response).

    build_contrl(ack)                       UNB, CONTRL (UCI, UCM/UCS/UCD or UCF/UCM/...), UNZ
    build_ordrsp(order, decision, results)  UNB, ORDRSP (BGM+231, DTM, RFF+ON, NAD, CUX,
                                            LIN/PIA/QTY/DTM/PRI per line, UNS, CNT), UNZ

The segments are written by a small serializer of our own rather than pydifact's: pydifact
writes a two-digit year in UNB whatever the syntax version, counts UNZ by segments when there
is no UNH, and cannot escape the syntax 4 repetition separator. pydifact reads every
acknowledgement back in the tests.

- Data containing a service character (``+ : ' ?``, and the repetition separator in syntax 4)
  is escaped with the release character. A control character, or a character outside the
  repertoire of the syntax identifier (UNOA upper case, UNOB ASCII, UNOC Latin-1, ...),
  raises `AckValueError`.
- UNB: sender and recipient are the inbound recipient and sender; the syntax identifier and
  version are the inbound ones (default UNOC:3); the date has four-digit years from syntax 4
  on; the control reference comes from `ControlNumbers`; no acknowledgement is requested;
  the test indicator (0035 = 1) is copied.
- UNA is written when the inbound interchange had one, or when the service characters differ
  from the defaults of the syntax version (``:+.? '``, in syntax 4 ``:+.?*'``).
- CONTRL is CONTRL:D:3:UN for syntax versions up to 3 and CONTRL:4:1:UN for version 4.

How a reason code shows (`EDIFACT_ACK_CODES`; `edifact_ack_code`):

    interchange  UCI 0085 (with 0013 and S011 for service segment errors); 0083 4 for the
                 reasons marked as rejecting (then no UCM follows), else 7 with the code noted
    group        UCF 0085, likewise
    message      UCM 0085 (with 0013/S011 when the error is in UNH/UNT)
    segment      UCS (0096 position, UNH = 1) with 0085
    element      UCS (0096) and UCD (0085; S011 0098 = element position + 1, since the
                 segment tag counts as position 1; 0104 component)
    business     not reported: the CONTRL acknowledges the message (7); ORDRSP answers it

A message is acknowledged (7) when it has no syntax errors or the gateway accepted it anyway,
and rejected (4) when it was refused for syntax reasons. A rejected message without a
message-level code, whose errors cannot be placed in a UCS, carries the first error's code
(or 18, unspecified) on its UCM so that the rejection always says something. Reason codes
the table does not know count as message-level 18.

The message-level codes are those gateway.formats.edifact emits; the segment- and
element-level ones are proposals for the EDIFACT mappings (they mirror the X12 ones).
"""

from __future__ import annotations

import datetime as dt
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Literal

from gateway.acks.model import (
    BUSINESS_REASONS,
    INTERCHANGE,
    AckError,
    AckValueError,
    ControlNumbers,
    EdifactSeparators,
    EnvelopeReasons,
    GroupAck,
    InterchangeAck,
    LineResult,
    LineStatus,
    PoDecision,
    TransactionAck,
    is_business_reason,
    partner_key,
)
from gateway.formats.base import Envelope
from gateway.model import Order, OrderLine, Party

__all__ = [
    "EDIFACT_ACK_CODES",
    "EdifactAckCode",
    "EdifactHeader",
    "EdifactWriter",
    "build_contrl",
    "build_ordrsp",
    "edifact_ack_code",
    "edifact_begin",
    "edifact_interchange_reasons",
    "edifact_number",
    "edifact_order_envelope",
    "edifact_party",
    "read_edifact_header",
]

Level = Literal["interchange", "group", "message", "segment", "element", "business"]


@dataclass(frozen=True, slots=True)
class EdifactAckCode:
    """How one reason code shows in a CONTRL.

    `code` is the syntax error code (0085). `service_segment` (0013) and `service_element`
    (S011 0098, the tag counting as 1) point into UNA/UNB/UNZ/UNG/UNE/UNH/UNT. `rejects`
    says whether an interchange or group error rejects that level (0083 4) or is only noted.
    The `segment_*`/`element_*` fields are defaults for an `AckError` that does not say where.
    """

    level: Level
    code: str | None = None
    service_segment: str | None = None
    service_element: int | None = None
    rejects: bool = True
    segment_position: int | None = None
    element_position: int | None = None
    component_position: int | None = None


_BUSINESS = EdifactAckCode("business")
_UNKNOWN = EdifactAckCode("message", "18")

EDIFACT_ACK_CODES: Mapping[str, EdifactAckCode] = MappingProxyType(
    {
        # interchange: UCI (ParseError reasons of gateway.formats.edifact, and the
        # InterchangeClosed.errors sentences `edifact_interchange_reasons` sorts)
        "EDIFACT_SYNTAX_VERSION": EdifactAckCode("interchange", "2", "UNB", 2),
        "EDIFACT_WRONG_RECIPIENT": EdifactAckCode("interchange", "7", "UNB", 4),
        "EDIFACT_UNB": EdifactAckCode("interchange", "12", "UNB"),
        "EDIFACT_UNZ_MISSING": EdifactAckCode("interchange", "13", "UNZ"),
        "EDIFACT_UNA": EdifactAckCode("interchange", "20", "UNA"),
        "EDIFACT_CHARSET": EdifactAckCode("interchange", "21"),
        "EDIFACT_DUPLICATE_INTERCHANGE": EdifactAckCode("interchange", "26", "UNB", 6),
        "CONTROL_NUMBER_REUSED": EdifactAckCode("interchange", "26", "UNB", 6),
        "EDIFACT_INTERCHANGE_MISMATCH": EdifactAckCode(
            "interchange", "28", "UNZ", 3, rejects=False
        ),
        "EDIFACT_UNZ_COUNT": EdifactAckCode("interchange", "29", "UNZ", 2, rejects=False),
        # group: UCF
        "EDIFACT_GROUP_NOT_SUPPORTED": EdifactAckCode("group", "17", "UNG", 2),
        "EDIFACT_UNE_MISSING": EdifactAckCode("group", "13", "UNE", rejects=False),
        "EDIFACT_DUPLICATE_GROUP": EdifactAckCode("group", "26", "UNG", 6, rejects=False),
        "EDIFACT_GROUP_MISMATCH": EdifactAckCode("group", "28", "UNE", 3, rejects=False),
        "EDIFACT_UNE_COUNT": EdifactAckCode("group", "29", "UNE", 2, rejects=False),
        # message: UCM (DocumentRejected reasons of gateway.formats.edifact)
        "EDIFACT_NOT_SUPPORTED": EdifactAckCode("message", "17", "UNH", 3),
        "EDIFACT_NOT_ORDERS": EdifactAckCode("message", "17", "UNH", 3),
        "EDIFACT_UNH": EdifactAckCode("message", "13", "UNH"),
        "EDIFACT_TRUNCATED": EdifactAckCode("message", "13", "UNT"),
        "EDIFACT_SYNTAX": EdifactAckCode("message", "18"),
        "EDIFACT_DUPLICATE_REF": EdifactAckCode("message", "26", "UNH", 2),
        "EDIFACT_UNT_REF": EdifactAckCode("message", "28", "UNT", 3),
        "EDIFACT_UNT_COUNT": EdifactAckCode("message", "29", "UNT", 2),
        # segment: UCS
        "EDIFACT_MISSING_SEGMENT": EdifactAckCode("segment", "13"),
        "EDIFACT_SEGMENT": EdifactAckCode("segment", "15"),
        "EDIFACT_UNEXPECTED_SEGMENT": EdifactAckCode("segment", "15"),
        "EDIFACT_SEGMENT_REPEATS": EdifactAckCode("segment", "35"),
        "EDIFACT_GROUP_REPEATS": EdifactAckCode("segment", "36"),
        # element: UCS + UCD (mapping reasons)
        "EDIFACT_INVALID_VALUE": EdifactAckCode("element", "12"),
        "EDIFACT_BAD_NUMBER": EdifactAckCode("element", "12"),
        "EDIFACT_BAD_DATE": EdifactAckCode("element", "12"),
        "EDIFACT_MISSING_ELEMENT": EdifactAckCode("element", "13"),
        "MISSING_PO_NUMBER": EdifactAckCode(
            "element", "13", segment_position=2, element_position=2, component_position=1
        ),
        "EDIFACT_MISSING_QUANTITY": EdifactAckCode(
            "element", "13", element_position=1, component_position=2
        ),
        "EDIFACT_TOO_MANY_CONSTITUENTS": EdifactAckCode("element", "16"),
        "EDIFACT_ELEMENT_TOO_LONG": EdifactAckCode("element", "39"),
        "EDIFACT_ELEMENT_TOO_SHORT": EdifactAckCode("element", "40"),
        # business: the ORDRSP answers
        **dict.fromkeys(sorted(BUSINESS_REASONS), _BUSINESS),
    }
)
"""Reason code -> how it shows in a CONTRL. VALIDATION:* reasons are business."""


def edifact_ack_code(reason: str) -> EdifactAckCode:
    """The table entry for a reason; business for VALIDATION:*, message-level 18 if unknown."""
    if is_business_reason(reason):
        return _BUSINESS
    return EDIFACT_ACK_CODES.get(reason, _UNKNOWN)


# The sentences of gateway.formats.edifact (InterchangeClosed.errors); pinned by
# tests/unit/test_acks_edifact.py. UNE count sentences do not name their group: unclassified.
_ENVELOPE_MESSAGES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"UNZ 0036 at .* says .* but there are"), "EDIFACT_UNZ_COUNT"),
    (re.compile(r"UNZ 0020 .* does not match UNB 0020"), "EDIFACT_INTERCHANGE_MISMATCH"),
    (re.compile(r"the interchange has no UNZ trailer"), "EDIFACT_UNZ_MISSING"),
    (
        re.compile(r"UNB 0020 \S* from this sender repeats an earlier"),
        "EDIFACT_DUPLICATE_INTERCHANGE",
    ),
    (re.compile(r"the UNB has no interchange control reference"), "EDIFACT_UNB"),
    (re.compile(r"the group (?P<group>\S+) opened at .* has no UNE"), "EDIFACT_UNE_MISSING"),
    (
        re.compile(r"UNE 0048 .* does not match UNG 0048 '(?P<group>[^']*)'"),
        "EDIFACT_GROUP_MISMATCH",
    ),
)


def edifact_interchange_reasons(errors: Iterable[str]) -> EnvelopeReasons:
    """Sort the `InterchangeClosed.errors` of the EDIFACT parser into reason codes."""
    return EnvelopeReasons.classify(errors, _ENVELOPE_MESSAGES)


# -- reading the inbound service string advice -----------------------------------------------


@dataclass(frozen=True, slots=True)
class EdifactHeader:
    """What an acknowledgement needs from the inbound UNA/UNB that `Envelope` does not carry."""

    separators: EdifactSeparators
    has_una: bool
    syntax_identifier: str  # UNB 0001, e.g. UNOC
    syntax_version: str  # UNB 0002, e.g. 3


def read_edifact_header(text: str | bytes) -> EdifactHeader:
    """Service characters, UNA presence and syntax identifier of an EDIFACT interchange."""
    if isinstance(text, bytes):
        text = text[:4096].removeprefix(b"\xef\xbb\xbf").decode("latin-1")
    text = text.lstrip("\ufeff \t\r\n\x00")
    has_una = text.startswith("UNA")
    if has_una:
        chars = text[3:9]
        if len(chars) != 6:
            raise AckValueError("the UNA segment is cut off")
        base = EdifactSeparators(
            component=chars[0],
            element=chars[1],
            decimal=chars[2],
            release=chars[3],
            repetition=chars[4],
            segment=chars[5],
        )
        after = text[9:]
    else:
        base = EdifactSeparators()
        after = text
    rest = after.lstrip("\r\n")
    if not rest.startswith("UNB") or len(rest) < 5 or rest[3] != base.element:
        raise AckValueError("no UNB segment after the service string advice")
    end = rest.find(base.element, 4)
    if end < 0:
        raise AckValueError("the UNB segment is cut off")
    syntax = rest[4:end].split(base.component)
    if len(syntax) < 2 or not syntax[1].isdigit():
        raise AckValueError(f"the UNB syntax identifier {rest[4:end]!r} is malformed")
    line_ending = ""
    if has_una:
        line_ending = after[: len(after) - len(rest)]
    else:
        term = _unescaped_index(rest, base.segment, base.release)
        if term >= 0:
            tail = rest[term + 1 : term + 3]
            line_ending = (
                "\r\n" if tail.startswith("\r\n") else "\n" if tail.startswith("\n") else ""
            )
    if line_ending not in ("", "\n", "\r\n"):
        line_ending = "\n"
    seps = EdifactSeparators(
        component=base.component,
        element=base.element,
        decimal=base.decimal,
        release=base.release,
        repetition=base.repetition,
        segment=base.segment,
        line_ending=line_ending,
    )
    return EdifactHeader(seps, has_una, syntax[0], syntax[1])


def _unescaped_index(text: str, char: str, release: str) -> int:
    i = 0
    while i < len(text):
        c = text[i]
        if c == release:
            i += 2
            continue
        if c == char:
            return i
        i += 1
    return -1


# -- writing ---------------------------------------------------------------------------------

_UNOA = frozenset(string.ascii_uppercase + string.digits + " .,-()/='+:?!\"%&*;<>")
_UNOB = frozenset(chr(c) for c in range(0x20, 0x7F))
_CODECS = {
    "UNOC": "latin-1",
    "UNOD": "iso8859-2",
    "UNOE": "iso8859-5",
    "UNOF": "iso8859-7",
    "UNOG": "iso8859-3",
    "UNOH": "iso8859-4",
    "UNOI": "iso8859-6",
    "UNOJ": "iso8859-8",
    "UNOK": "iso8859-9",
    "UNOW": "utf-8",
    "UNOY": "utf-8",
}

Element = str | tuple[str | None, ...] | None


def _default_separators(version: str) -> EdifactSeparators:
    return EdifactSeparators(repetition="*") if version >= "4" else EdifactSeparators()


class _Writer:
    """Segments of one outbound EDIFACT interchange, escaped and counted as they are added."""

    def __init__(self, separators: EdifactSeparators, syntax_identifier: str) -> None:
        self.sep = separators
        specials = [
            separators.release,
            separators.component,
            separators.element,
            separators.segment,
        ]
        if separators.repetition != " ":
            specials.append(separators.repetition)
        self.escapes = {c: separators.release + c for c in specials}
        self.syntax = syntax_identifier
        self.segments: list[str] = []
        self.message_start = -1
        self.message_reference = ""

    def escape(self, value: str, what: str) -> str:
        self._check(value, what)
        return "".join(self.escapes.get(c, c) for c in value)

    def _check(self, value: str, what: str) -> None:
        for c in value:
            if c < " " or c == "\x7f":
                raise AckValueError(f"{what} {value!r} contains the control character {c!r}")
        if self.syntax == "UNOA":
            allowed: frozenset[str] | None = _UNOA
        elif self.syntax == "UNOB":
            allowed = _UNOB
        else:
            allowed = None
        if allowed is not None:
            bad = [c for c in value if c not in allowed]
            if bad:
                raise AckValueError(f"{what} {value!r}: {bad[0]!r} is not in {self.syntax}")
            return
        codec = _CODECS.get(self.syntax)
        if codec is not None:
            try:
                value.encode(codec)
            except UnicodeEncodeError as exc:
                raise AckValueError(
                    f"{what} {value!r} cannot be written in {self.syntax} ({codec})"
                ) from exc

    def seg(self, tag: str, *elements: Element) -> None:
        parts: list[str] = []
        for i, el in enumerate(elements, 1):
            what = f"{tag} element {i}"
            if el is None:
                parts.append("")
            elif isinstance(el, tuple):
                comps = [self.escape(c or "", what) for c in el]
                while comps and comps[-1] == "":
                    comps.pop()
                parts.append(self.sep.component.join(comps))
            else:
                parts.append(self.escape(el, what))
        while parts and parts[-1] == "":
            parts.pop()
        self.segments.append(self.sep.element.join([tag, *parts]))

    def unh(self, reference: str, identifier: tuple[str, ...]) -> None:
        self.message_start = len(self.segments)
        self.message_reference = reference
        self.seg("UNH", reference, identifier)

    def unt(self) -> None:
        self.seg("UNT", str(len(self.segments) - self.message_start + 1), self.message_reference)

    def text(self, una: bool) -> str:
        end = self.sep.segment + self.sep.line_ending
        head = self.sep.una + self.sep.line_ending if una else ""
        return head + "".join(s + end for s in self.segments)


@dataclass(frozen=True, slots=True)
class _Syntax:
    separators: EdifactSeparators
    identifier: str
    version: str
    una: bool


def _syntax(
    separators: object, identifier: str | None, version: str | None, una: bool | None
) -> _Syntax:
    identifier = identifier or "UNOC"
    version = version or "3"
    if separators is None:
        separators = _default_separators(version)
    if not isinstance(separators, EdifactSeparators):
        raise AckValueError(
            f"EDIFACT acknowledgements need EdifactSeparators, got {type(separators).__name__}"
        )
    default = _default_separators(version)
    differs = (
        separators.component,
        separators.element,
        separators.decimal,
        separators.release,
        separators.repetition,
        separators.segment,
    ) != (
        default.component,
        default.element,
        default.decimal,
        default.release,
        default.repetition,
        default.segment,
    )
    return _Syntax(separators, identifier, version, differs if una is None else (una or differs))


def _unb(
    w: _Writer,
    syntax: _Syntax,
    env: Envelope,
    control: int,
    now: dt.datetime,
) -> str:
    reference = str(control)
    if control < 1 or len(reference) > 14:
        raise AckValueError(f"UNB 0020 must be 1..14 digits, the allocator gave {control}")
    if not env.receiver_id or not env.sender_id:
        raise AckValueError("the inbound envelope does not name both sender and recipient")
    date = f"{now:%Y%m%d}" if syntax.version >= "4" else f"{now:%y%m%d}"
    test = "1" if env.test_indicator == "1" else None
    w.seg(
        "UNB",
        (syntax.identifier, syntax.version),
        (env.receiver_id, env.receiver_qualifier),
        (env.sender_id, env.sender_qualifier),
        (date, f"{now:%H%M}"),
        reference,
        None,
        None,
        None,
        None,
        None,
        test,
    )
    return reference


def _now(now: dt.datetime | None) -> dt.datetime:
    return now if now is not None else dt.datetime.now(dt.UTC)


# -- CONTRL ----------------------------------------------------------------------------------


def build_contrl(
    ack: InterchangeAck,
    *,
    control_numbers: ControlNumbers,
    partner: str | None = None,
    now: dt.datetime | None = None,
    receipt_only: bool = False,
) -> str:
    """A CONTRL syntax and service report for the inbound interchange, in its own interchange.

    `receipt_only` reports receipt alone (UCI 0083 8, no message detail). Otherwise the UCI
    says 4 or 7 (see the module docstring) and every message gets a UCM (under a UCF when the
    inbound interchange had UNG groups).
    """
    env = ack.envelope
    if env.standard != "edifact":
        raise AckValueError(f"a CONTRL for a {env.standard} interchange")
    if not env.interchange_control_number:
        raise AckValueError("a CONTRL needs the inbound UNB 0020")
    grouped = {g.group_control_number is not None for g in ack.groups}
    if len(grouped) > 1:
        raise AckValueError("an interchange has either UNG groups or lone messages, not both")
    syntax = _syntax(ack.separators, ack.syntax_identifier, ack.syntax_version, ack.has_una or None)
    w = _Writer(syntax.separators, syntax.identifier)
    control = control_numbers.next(partner or partner_key(env), INTERCHANGE)
    now = _now(now)
    reference = _unb(w, syntax, env, control, now)
    w.unh("1", ("CONTRL", "4", "1", "UN") if syntax.version >= "4" else ("CONTRL", "D", "3", "UN"))

    action, error = "7", None
    if receipt_only:
        action = "8"
    else:
        rules = [
            r
            for r in (edifact_ack_code(reason) for reason in ack.errors)
            if r.level not in ("business", "message", "segment", "element")
        ]
        rejecting = [r for r in rules if r.rejects]
        if rejecting:
            action = "4"
        error = _first(rejecting or rules)
    w.seg(
        "UCI",
        env.interchange_control_number,
        (env.sender_id, env.sender_qualifier),
        (env.receiver_id, env.receiver_qualifier),
        action,
        *_error_elements(error),
    )
    if action == "7":
        for group in ack.groups:
            _ucf_group(w, group)
    w.unt()
    w.seg("UNZ", "1", reference)
    return w.text(syntax.una)


def _first(rules: list[EdifactAckCode]) -> EdifactAckCode | None:
    return rules[0] if rules else None


def _error_elements(rule: EdifactAckCode | None) -> tuple[Element, ...]:
    """0085, 0013 and S011 of a UCI/UCF/UCM."""
    if rule is None or rule.code is None:
        return ()
    where: Element = (str(rule.service_element),) if rule.service_element else None
    return (rule.code, rule.service_segment, where)


def _ucf_group(w: _Writer, group: GroupAck) -> None:
    if group.group_control_number is not None:
        if not group.application_sender or not group.application_receiver:
            raise AckValueError(
                f"UCF needs the UNG sender and recipient of group {group.group_control_number}"
            )
        rules = [
            r
            for r in (edifact_ack_code(reason) for reason in group.errors)
            if r.level not in ("business", "message", "segment", "element", "interchange")
        ]
        rejecting = [r for r in rules if r.rejects]
        action = "4" if rejecting else "7"
        w.seg(
            "UCF",
            group.group_control_number,
            (group.application_sender,),
            (group.application_receiver,),
            action,
            *_error_elements(_first(rejecting or rules)),
        )
        if rejecting:
            return
    for tx in group.transactions:
        _ucm(w, tx)


def _ucm(w: _Writer, tx: TransactionAck) -> None:
    if tx.control_number is None:
        return  # no UCM can name it
    message_rule: EdifactAckCode | None = None
    located: list[tuple[AckError, EdifactAckCode]] = []
    syntax: list[EdifactAckCode] = []
    for error in tx.errors:
        rule = edifact_ack_code(error.reason)
        if rule.level == "business":
            continue
        syntax.append(rule)
        if rule.level in ("segment", "element"):
            located.append((error, rule))
        elif message_rule is None:
            message_rule = rule if rule.level == "message" else _UNKNOWN
    if tx.ack_code is not None:
        action = "7" if tx.ack_code in ("A", "E") else "4"
    elif not syntax:
        action = "7"
    else:
        action = "7" if tx.accepted else "4"
    segments = _ucs_loops(located)
    if action == "4" and message_rule is None and not segments:
        message_rule = EdifactAckCode("message", syntax[0].code if syntax else "18")
    identifier = (tx.doc_type, *tx.message_version)
    w.seg("UCM", tx.control_number, identifier, action, *_error_elements(message_rule))
    for position, seg_code, elements in segments:
        w.seg("UCS", str(position), seg_code)
        for code, element, component in elements[:99]:
            w.seg("UCD", code, (str(element + 1), str(component) if component else None))


def _ucs_loops(
    located: list[tuple[AckError, EdifactAckCode]],
) -> list[tuple[int, str | None, list[tuple[str, int, int | None]]]]:
    loops: dict[int, tuple[list[str], list[tuple[str, int, int | None]]]] = {}
    for error, rule in located:
        position = error.segment_position or rule.segment_position
        if position is None or rule.code is None:
            continue
        seg_codes, elements = loops.setdefault(position, ([], []))
        if rule.level == "segment":
            seg_codes.append(rule.code)
            continue
        element = error.element_position or rule.element_position
        if element is None:
            continue
        component = error.component_position or (
            rule.component_position if error.element_position is None else None
        )
        elements.append((rule.code, element, component))
    return [
        (position, seg_codes[0] if seg_codes else None, elements)
        for position, (seg_codes, elements) in sorted(loops.items())
        if seg_codes or elements
    ]


# -- ORDRSP ----------------------------------------------------------------------------------

_LINE_ACTIONS: Mapping[LineStatus, str] = MappingProxyType(
    {
        status: "7" if status.refused else "5" if status is LineStatus.ACCEPTED else "3"
        for status in LineStatus
    }
)
# NAD 3055 (code list responsible agency) for the identifier qualifiers an order may carry.
_AGENCIES: Mapping[str, str] = MappingProxyType(
    {"UL": "9", "9": "9", "1": "16", "16": "16", "91": "91", "92": "92"}
)


def build_ordrsp(
    order: Order,
    decision: PoDecision | str,
    line_results: Sequence[LineResult] = (),
    *,
    control_numbers: ControlNumbers,
    separators: EdifactSeparators | None = None,
    syntax_identifier: str = "UNOC",
    syntax_version: str = "3",
    una: bool | None = None,
    envelope: Envelope | None = None,
    partner: str | None = None,
    now: dt.datetime | None = None,
    message_version: Sequence[str] = ("D", "96A", "UN"),
    response_number: str | None = None,
) -> str:
    """An ORDRSP order response for `order`, in its own interchange.

    BGM+231 with 1225 29 (accepted without amendment), 4 (change: some line is not accepted
    as ordered) or 27 (not accepted). `line_results` pairs with `order.lines` by position,
    as for the 855; LIN 1229 is 5 (accepted), 3 (changed) or 7 (not accepted). QTY+21 echoes
    the ordered quantity; QTY+113 (quantity to be delivered) or QTY+83 (backordered) follows
    when the answer differs. `una` None writes a UNA only when the separators are not the
    defaults. `envelope` defaults to one built from `order.source`; `response_number`
    (BGM 1004) to the PO number.
    """
    decision = PoDecision(decision)
    env = envelope or _order_envelope(order)
    syntax = _syntax(separators, syntax_identifier, syntax_version, una)
    sep = syntax.separators
    results = _line_results(order, decision, line_results)
    w = _Writer(sep, syntax.identifier)
    now = _now(now)
    reference = _unb(
        w, syntax, env, control_numbers.next(partner or partner_key(env), INTERCHANGE), now
    )
    w.unh("1", ("ORDRSP", *message_version))
    changed = any(r.status is not LineStatus.ACCEPTED for r in results)
    function = (
        "27" if not decision.accepted else "4" if changed or decision.allows_changes else "29"
    )
    w.seg("BGM", "231", response_number or order.po_number, function)
    w.seg("DTM", ("137", f"{now:%Y%m%d}", "102"))
    w.seg("RFF", ("ON", order.po_number))
    if order.order_date is not None:
        w.seg("DTM", ("171", f"{order.order_date:%Y%m%d}", "102"))
    for role, party in (("BY", order.buyer), ("SU", order.seller)):
        if party is not None:
            _nad(w, role, party, order)
    if order.currency:
        w.seg("CUX", ("2", order.currency, "9"))
    count = 0
    for index, (line, result) in enumerate(zip(order.lines, results, strict=True), 1):
        if decision.detail == "none" or (
            decision.detail == "exceptions" and result.status is LineStatus.ACCEPTED
        ):
            continue
        count += 1
        _lin(w, index, line, result, sep.decimal)
    w.seg("UNS", "S")
    w.seg("CNT", ("2", str(count)))
    w.unt()
    w.seg("UNZ", "1", reference)
    return w.text(syntax.una)


def _order_envelope(order: Order) -> Envelope:
    s = order.source
    return Envelope(
        standard="edifact",
        sender_id=s.sender_id,
        sender_qualifier=s.sender_qualifier,
        receiver_id=s.receiver_id,
        receiver_qualifier=s.receiver_qualifier,
        interchange_control_number=s.interchange_control_number,
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
    if not decision.allows_changes and any(r.status is not LineStatus.ACCEPTED for r in results):
        raise AckValueError(
            f"decision {decision.value} says every line is accepted as ordered, but not all are; "
            f"use {PoDecision.from_lines(results).value}"
        )
    return list(results)


def _nad(w: _Writer, role: str, party: Party, order: Order) -> None:
    if party.code:
        qualifier = party.code_qualifier or ""
        agency = qualifier if order.channel == "edifact" else _AGENCIES.get(qualifier)
        w.seg("NAD", role, (party.code, None, agency))
    elif party.name:
        # C080 holds five 35-character components; a longer name is cut after 175.
        w.seg("NAD", role, None, None, tuple(party.name[i : i + 35] for i in range(0, 175, 35)))


def _lin(w: _Writer, index: int, line: OrderLine, result: LineResult, decimal: str) -> None:
    number = line.line_number or str(index)
    w.seg("LIN", number, _LINE_ACTIONS[result.status], (line.gtin, "EN") if line.gtin else None)
    ids = [(v, t) for v, t in ((line.sku, "SA"), (line.buyer_part_number, "IN")) if v]
    if ids:
        w.seg("PIA", "1", *ids)
    w.seg("QTY", ("21", _num(line.quantity, decimal), line.uom))
    quantity = result.quantity if result.quantity is not None else line.quantity
    uom = result.uom or line.uom
    if result.status is LineStatus.BACKORDERED:
        w.seg("QTY", ("83", _num(quantity, decimal), uom))
    elif quantity != line.quantity or uom != line.uom:
        w.seg("QTY", ("113", _num(quantity, decimal), uom))
    if result.date is not None:
        w.seg("DTM", ("11" if result.date_kind == "ship" else "69", f"{result.date:%Y%m%d}", "102"))
    price = result.unit_price if result.unit_price is not None else line.unit_price
    if price is not None:
        w.seg("PRI", ("AAA", _num(price, decimal)))


def _num(value: Decimal, decimal: str) -> str:
    if not value.is_finite():
        raise AckValueError(f"{value} is not a number that can be written")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("", "-0"):
        text = "0"
    return text.replace(".", decimal)


# -- shared with the documents after the order (DESADV, INVOIC, INVRPT: gateway.acks.ship_notice, ...) --

EdifactWriter = _Writer  # one outbound interchange, escaped, UNH..UNT counted
edifact_number = _num  # a numeric value with the interchange's decimal mark


def edifact_order_envelope(order: Order) -> Envelope:
    """The inbound interchange `order` came in (what an answer swaps sender and recipient of)."""
    return _order_envelope(order)


def edifact_party(w: EdifactWriter, role: str, party: Party, order: Order) -> None:
    """NAD for `party` in `role` (BY, SU, DP, IV), as the ORDRSP writes it."""
    _nad(w, role, party, order)


def edifact_begin(envelope: Envelope, control: int, now: dt.datetime, header: EdifactHeader | None = None) -> tuple[EdifactWriter, str, bool]:
    """A writer with the UNB written, its reference and whether to write a UNA: the syntax
    and separators of the inbound `header` (default UNOC 3, the standard's separators)."""
    if header is None:
        syntax = _syntax(None, "UNOC", "3", None)
    else:
        syntax = _syntax(header.separators, header.syntax_identifier, header.syntax_version, header.has_una or None)
    w = _Writer(syntax.separators, syntax.identifier)
    return w, _unb(w, syntax, envelope, control, now), syntax.una
