"""What to acknowledge: typed inputs of the acknowledgement builders, independent of the pipeline.

The builders in `gateway.acks.x12` and `gateway.acks.edifact` turn these values into the text of
an outbound interchange. They never read the store, a clock they were not given, or a global
counter: control numbers come from a `ControlNumbers` object and the time from a `now` argument.

    InterchangeAck      one inbound interchange: its envelope, separators, and what went wrong
    ├── errors          interchange-level reason codes (TA1 / CONTRL UCI)
    └── GroupAck        one inbound functional group (X12 GS..GE, EDIFACT UNG..UNE or none)
        ├── errors      group-level reason codes (AK9 / UCF)
        └── TransactionAck   one transaction set / message (AK2..AK5 / UCM)
            └── AckError     one problem: a reason code and where it is (AK3/AK4 / UCS/UCD)

    PoDecision, LineResult   the business answer to one order (855 / ORDRSP)

Reason codes are the gateway's own stable codes (``X12_SE_COUNT``, ``MISSING_PO_NUMBER``, ...).
Each builder module holds one table that says how a reason shows in its acknowledgements.
Business reasons (`is_business_reason`) never make a syntax acknowledgement negative: a
997/999/CONTRL says whether the document could be read, the 855/ORDRSP says what the seller
does with the order.

Errors: `AckValueError` (a `ValueError`) means the acknowledgement cannot be written as asked,
e.g. a value contains a separator that X12 has no way to escape. It is permanent: retrying
builds the same text. Fix the input or the separators.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Literal, Protocol

from gateway.formats.base import Envelope
from gateway.pickling import by_fields

__all__ = [
    "BUSINESS_REASONS",
    "GROUP",
    "INTERCHANGE",
    "AckError",
    "AckValueError",
    "ControlNumbers",
    "EdifactSeparators",
    "EnvelopeReasons",
    "GroupAck",
    "InMemoryControlNumbers",
    "InterchangeAck",
    "LineResult",
    "LineStatus",
    "PoDecision",
    "TransactionAck",
    "X12Separators",
    "is_business_reason",
    "partner_key",
]

INTERCHANGE = "interchange"
"""`ControlNumbers` kind of an interchange control number (X12 ISA13, EDIFACT UNB 0020)."""
GROUP = "group"
"""`ControlNumbers` kind of a functional group control number (X12 GS06)."""

BUSINESS_REASONS = frozenset(
    {
        "X12_CTT_COUNT",
        "EDIFACT_CNT_COUNT",
        "INVALID_ORDER",
        "DUPLICATE_ORDER",
        "DUPLICATE_PO",
        "CHANGE_NEEDS_REVIEW",
    }
)
"""Reasons that are about the order, not the syntax: a 997/999/CONTRL stays positive for them.

Any ``VALIDATION:<rule>`` reason (gateway.validation) is a business reason too.
"""


def is_business_reason(reason: str) -> bool:
    """True for reasons a syntax acknowledgement does not report (the 855/ORDRSP does)."""
    return reason in BUSINESS_REASONS or reason.startswith("VALIDATION:")


class AckValueError(ValueError):
    """The acknowledgement cannot be written as asked (permanent; do not retry)."""


# -- separators ------------------------------------------------------------------------------

_LINE_ENDINGS = ("", "\n", "\r\n")


def _check_single(name: str, value: str) -> None:
    if len(value) != 1:
        raise AckValueError(f"the {name} separator must be one character, got {value!r}")
    if value.isalnum() or value == " ":
        raise AckValueError(f"the {name} separator {value!r} is a letter, digit or space")


@dataclass(frozen=True, slots=True)
class X12Separators:
    """X12 delimiters, normally those of the inbound interchange (see x12.read_isa).

    `repetition` is ISA11 in version 00402 and later; None for 4010 (ISA11 is then ``U``).
    A builder writing a 5010 interchange without one picks ``^`` (or another free character).
    `line_ending` is written after every segment terminator (``""``, ``"\\n"`` or ``"\\r\\n"``).
    """

    element: str = "*"
    component: str = ":"
    segment: str = "~"
    repetition: str | None = None
    line_ending: str = ""

    def __post_init__(self) -> None:
        _check_single("element", self.element)
        _check_single("component", self.component)
        _check_single("segment", self.segment)
        chars = [self.element, self.component, self.segment]
        if self.repetition is not None:
            _check_single("repetition", self.repetition)
            chars.append(self.repetition)
        if len(set(chars)) != len(chars):
            raise AckValueError(f"X12 separators must all differ, got {chars!r}")
        if self.line_ending not in _LINE_ENDINGS:
            raise AckValueError(f"line_ending must be one of {_LINE_ENDINGS!r}")
        if self.line_ending and any(c in self.line_ending for c in chars):
            raise AckValueError("a separator cannot also be part of the line ending")


@dataclass(frozen=True, slots=True)
class EdifactSeparators:
    """EDIFACT service characters (UNA1..UNA6), normally those of the inbound interchange.

    `repetition` is UNA5: reserved (a space) in syntax versions 1-3, the repetition separator
    (normally ``*``) in version 4. `decimal` is the decimal mark written in numbers.
    """

    component: str = ":"
    element: str = "+"
    decimal: str = "."
    release: str = "?"
    repetition: str = " "
    segment: str = "'"
    line_ending: str = ""

    def __post_init__(self) -> None:
        for name in ("component", "element", "release", "segment"):
            _check_single(name, getattr(self, name))
        if self.decimal not in (".", ","):
            raise AckValueError(f"the decimal mark must be '.' or ',', got {self.decimal!r}")
        if len(self.repetition) != 1 or (self.repetition != " " and self.repetition.isalnum()):
            raise AckValueError(f"UNA5 must be a space or a separator, got {self.repetition!r}")
        chars = [self.component, self.element, self.release, self.segment]
        if self.repetition != " ":
            chars.append(self.repetition)
        if len(set(chars)) != len(chars) or self.decimal in chars:
            raise AckValueError(f"EDIFACT service characters must all differ, got {chars!r}")
        if self.line_ending not in _LINE_ENDINGS:
            raise AckValueError(f"line_ending must be one of {_LINE_ENDINGS!r}")

    @property
    def una(self) -> str:
        """The UNA service string advice for these characters."""
        return (
            f"UNA{self.component}{self.element}{self.decimal}{self.release}"
            f"{self.repetition}{self.segment}"
        )


# -- what went wrong -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AckError:
    """One problem in a transaction set / message, and where it is.

    Positions are those of the inbound document: `segment_position` counts from its ST/UNH as 1;
    `element_position` counts data elements from 1 after the segment id (as X12 AK401 does;
    the EDIFACT builder adds one for UCD, where the tag counts as 1); `component_position`
    counts components from 1. Unknown positions are None: the builders then leave out the
    AK3/AK4 (UCS/UCD) they cannot fill and still report the error at the level above.
    """

    reason: str
    segment_id: str | None = None
    segment_position: int | None = None
    element_position: int | None = None
    component_position: int | None = None
    bad_value: str | None = None  # copied into AK404/IK404 when it can be written
    message: str = ""  # a sentence for people; never written into the acknowledgement
    element_reference: str | None = None  # X12 data element reference number (AK402)

    def __post_init__(self) -> None:
        for name in ("segment_position", "element_position", "component_position"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise AckValueError(f"AckError.{name} counts from 1, got {value}")


_TX_ACK_CODES = frozenset({"A", "E", "M", "R", "W", "X"})


@dataclass(frozen=True, slots=True)
class TransactionAck:
    """One inbound transaction set (X12 ST..SE) or message (EDIFACT UNH..UNT).

    `accepted` is the gateway's decision: False means the document was refused, and at least
    one error must say why. Whether the syntax acknowledgement is negative follows from the
    errors: a refusal for business reasons only (`is_business_reason`) is acknowledged as
    syntactically accepted, and the 855/ORDRSP carries the refusal. `ack_code` forces the
    X12 AK501/IK501 code (A, E, M, R, W, X) when the caller knows better.
    """

    doc_type: str  # X12 ST01 (850), EDIFACT message type (ORDERS)
    control_number: str | None  # X12 ST02, EDIFACT UNH 0062; None if the document had none
    accepted: bool = True
    errors: Sequence[AckError] = ()
    implementation_reference: str | None = None  # X12 ST03 (5010), echoed in 999 AK203
    message_version: Sequence[str] = ()  # EDIFACT S009 after the type: ("D", "96A", "UN", ...)
    ack_code: str | None = None

    def __post_init__(self) -> None:
        if not self.accepted and not self.errors:
            raise AckValueError(
                f"transaction {self.doc_type} {self.control_number} is refused but no error says why"
            )
        if self.ack_code is not None and self.ack_code not in _TX_ACK_CODES:
            raise AckValueError(
                f"ack_code must be one of {sorted(_TX_ACK_CODES)}, got {self.ack_code!r}"
            )


@dataclass(frozen=True, slots=True)
class GroupAck:
    """One inbound functional group (X12 GS..GE; EDIFACT UNG..UNE, or the messages of an
    interchange without groups, with `group_control_number` None)."""

    functional_id: str  # X12 GS01 (PO); EDIFACT UNG 0038 or "" without groups
    group_control_number: str | None  # X12 GS06, EDIFACT UNG 0048
    version: str | None = None  # X12 GS08 as sent (004010, 005010X...), echoed in 999 AK103
    transactions: Sequence[TransactionAck] = ()
    declared_count: int | None = None  # GE01 / UNE 0060 as sent; None when not known
    errors: Sequence[str] = ()  # group-level reason codes (X12_GE_COUNT, ...)
    application_sender: str | None = None  # X12 GS02, EDIFACT UNG S006 as sent
    application_receiver: str | None = None  # X12 GS03, EDIFACT UNG S007 as sent


@dataclass(frozen=True, slots=True)
class InterchangeAck:
    """One inbound interchange and everything to acknowledge in it.

    `envelope` is the inbound `InterchangeOpened.envelope`; the builders swap sender and
    receiver. `errors` holds interchange-level reason codes (x12.interchange_reasons sorts
    `InterchangeClosed.errors` into these and group-level ones). `interchange_date` and
    `interchange_time` are ISA09/ISA10 as sent (a TA1 echoes them; see x12.read_isa).
    The EDIFACT fields describe the inbound UNA/UNB (see edifact.read_edifact_header).
    """

    envelope: Envelope
    groups: Sequence[GroupAck] = ()
    errors: Sequence[str] = ()
    separators: X12Separators | EdifactSeparators | None = None  # None: the defaults
    interchange_date: str | None = None
    interchange_time: str | None = None
    syntax_identifier: str | None = None  # EDIFACT UNB 0001, e.g. UNOC
    syntax_version: str | None = None  # EDIFACT UNB 0002, e.g. 3
    has_una: bool = False  # the inbound EDIFACT interchange started with a UNA


@dataclass(slots=True)
class EnvelopeReasons:
    """`InterchangeClosed.errors` (sentences) sorted into reason codes.

    `groups` is keyed by the group control number the sentence names. Warnings are dropped;
    sentences no pattern knows are kept in `unclassified`, for a person.
    """

    interchange: list[str] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)
    unclassified: list[str] = field(default_factory=list)

    @classmethod
    def classify(
        cls, errors: Iterable[str], patterns: Iterable[tuple[re.Pattern[str], str]]
    ) -> EnvelopeReasons:
        """Match each sentence against (pattern, reason) pairs; a named group "group" puts
        the reason on that functional group."""
        table = list(patterns)
        out = cls()
        for text in errors:
            if text.startswith("warning:"):
                continue
            for pattern, reason in table:
                m = pattern.search(text)
                if m is None:
                    continue
                group = m.groupdict().get("group")
                target = out.interchange if group is None else out.groups.setdefault(group, [])
                if reason not in target:
                    target.append(reason)
                break
            else:
                out.unclassified.append(text)
        return out


# -- the business answer (855 / ORDRSP) ------------------------------------------------------


class LineStatus(StrEnum):
    """What the seller does with one order line (X12 ACK01 line item status codes)."""

    ACCEPTED = "IA"  # item accepted
    REJECTED = "IR"  # item rejected
    BACKORDERED = "IB"  # item backordered
    QUANTITY_CHANGED = "IQ"  # item accepted, quantity changed
    PRICE_CHANGED = "IP"  # item accepted, price changed
    DELETED = "ID"  # item deleted
    CHANGED = "IC"  # item accepted, changes made
    DATE_RESCHEDULED = "DR"  # item accepted, date rescheduled

    @property
    def refused(self) -> bool:
        return self in (LineStatus.REJECTED, LineStatus.DELETED)


class PoDecision(StrEnum):
    """The answer to a whole order; the value is the X12 BAK02 acknowledgment type.

    `detail` says which lines an 855/ORDRSP lists: all, only those not accepted as ordered
    ("exceptions"), or none.
    """

    ACCEPTED = "AT"  # accepted; lines listed, all as ordered
    ACCEPTED_WITH_DETAIL = "AD"  # accepted with detail, no change
    ACCEPTED_WITH_CHANGES = "AC"  # accepted with detail and change
    ACCEPTED_EXCEPTIONS_ONLY = "AE"  # accepted, only the lines with exceptions listed
    ACCEPTED_NO_DETAIL = "AK"  # accepted, no detail or change
    REJECTED = "RJ"  # rejected, no detail
    REJECTED_WITH_DETAIL = "RD"  # rejected with detail
    REJECTED_EXCEPTIONS_ONLY = "RF"  # rejected, only the lines with exceptions listed

    @property
    def accepted(self) -> bool:
        return self.value.startswith("A")

    @property
    def detail(self) -> Literal["all", "exceptions", "none"]:
        if self in (PoDecision.ACCEPTED_NO_DETAIL, PoDecision.REJECTED):
            return "none"
        if self in (PoDecision.ACCEPTED_EXCEPTIONS_ONLY, PoDecision.REJECTED_EXCEPTIONS_ONLY):
            return "exceptions"
        return "all"

    @property
    def allows_changes(self) -> bool:
        """False for the decisions that say every line is accepted as ordered."""
        return self not in (
            PoDecision.ACCEPTED,
            PoDecision.ACCEPTED_WITH_DETAIL,
            PoDecision.ACCEPTED_NO_DETAIL,
        )

    @classmethod
    def from_lines(cls, results: Iterable[LineResult]) -> PoDecision:
        """AD when every line is accepted as ordered, RD when every line is refused, else AC."""
        statuses = [r.status for r in results]
        if all(s is LineStatus.ACCEPTED for s in statuses):
            return cls.ACCEPTED_WITH_DETAIL
        if all(s.refused for s in statuses):
            return cls.REJECTED_WITH_DETAIL
        return cls.ACCEPTED_WITH_CHANGES


@by_fields
@dataclass(frozen=True, slots=True)
class LineResult:
    """The seller's answer for one order line, paired with `Order.lines` by position.

    None means "as ordered": the ordered quantity, unit and price are echoed.
    `quantity` is the quantity the status applies to (X12 ACK02): the confirmed quantity for
    IA/IQ, the backordered quantity for IB, the refused quantity for IR.
    """

    status: LineStatus = LineStatus.ACCEPTED
    quantity: Decimal | None = None
    uom: str | None = None
    unit_price: Decimal | None = None
    date: dt.date | None = None  # the scheduled date, when there is one
    date_kind: Literal["ship", "delivery"] = "ship"


# -- control numbers -------------------------------------------------------------------------


class ControlNumbers(Protocol):
    """Allocates outbound control numbers, one sequence per (partner, kind).

    The store's implementation must be atomic across processes and never hand out a number
    twice; numbers must be ≥ 1. Kinds are `INTERCHANGE` and `GROUP`.
    """

    def next(self, partner: str, kind: str) -> int:
        """The next control number of this kind for this partner."""
        ...


@dataclass
class InMemoryControlNumbers:
    """`ControlNumbers` for tests and one-off runs: counters in a dict, thread-safe.

    `start` is the first number of every sequence; `issued` records every allocation.
    """

    start: int = 1
    issued: list[tuple[str, str, int]] = field(default_factory=list)
    _last: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def next(self, partner: str, kind: str) -> int:
        with self._lock:
            value = self._last.get((partner, kind), self.start - 1) + 1
            self._last[(partner, kind)] = value
            self.issued.append((partner, kind, value))
            return value


def partner_key(envelope: Envelope) -> str:
    """The default control-number sequence key: the inbound sender, ``x12|ZZ:BUYERCO``."""
    return f"{envelope.standard}|{envelope.sender_qualifier or ''}:{envelope.sender_id or ''}"
