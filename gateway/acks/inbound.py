"""Partners' acknowledgements of what we sent: TA1, 997, 999 (X12) and CONTRL (EDIFACT) read into
typed values, so they can be matched to our outbox documents and recorded on them.

    ack = read_ack(document)           # InboundAck, or raises MalformedAck (an InputRejected)
    for verdict in ack.verdicts: ...   # one per acknowledged group / interchange / message

A 997 or 999 acknowledges our functional groups: AK1 names the group (GS01, GS06), AK2 a
transaction set in it (ST01, ST02), AK5 / IK5 its verdict and AK9 the group's. A TA1 acknowledges our interchange by its ISA13 (TA101, code TA104). A CONTRL
acknowledges our interchange: UCI names it (our UNB 0020) with an action, UCM a message in it
(UNH 0062) with an action. A verdict is one of ACCEPTED, ACCEPTED_WITH_ERRORS, REJECTED.

No store imports here: parsers stay below the store (import-linter contract); the matching and
recording live in gateway.store.documents and gateway.processing.process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.errors import InputRejected

__all__ = [
    "ACCEPTED",
    "ACCEPTED_WITH_ERRORS",
    "ACK_TYPES",
    "REJECTED",
    "InboundAck",
    "MalformedAck",
    "Verdict",
    "read_ack",
]

ACCEPTED = "accepted"
ACCEPTED_WITH_ERRORS = "accepted_with_errors"
REJECTED = "rejected"

# (standard, document type) read as a partner's acknowledgement
ACK_TYPES = {("x12", "TA1"), ("x12", "997"), ("x12", "999"), ("edifact", "CONTRL")}

# AK5/IK5 (set) and AK9 (group) codes: A accepted, E accepted with errors, P partially
# accepted (some sets rejected), R rejected, M/W/X rejected for a reason (MAC, assurance, content).
_TA1_STATUS = {"A": ACCEPTED, "E": ACCEPTED_WITH_ERRORS, "R": REJECTED}
_X12_STATUS = {"A": ACCEPTED, "E": ACCEPTED_WITH_ERRORS, "P": ACCEPTED_WITH_ERRORS, "R": REJECTED, "M": REJECTED, "W": REJECTED, "X": REJECTED}
# EDIFACT 0083: 4 rejected, 7 acknowledged, 8 received (no syntax check done)
_EDIFACT_STATUS = {"4": REJECTED, "7": ACCEPTED, "8": ACCEPTED}


class MalformedAck(InputRejected):
    """An acknowledgement that cannot be read: quarantined for a person (reason MALFORMED_ACK)."""

    def __init__(self, message: str, position: str | None = None) -> None:
        super().__init__(message, reason="MALFORMED_ACK", position=position)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the partner says about one thing we sent.

    `level` "group": `control` is our GS06 (X12); `set_control` our ST02 when an AK2/IK5 names
    one. `level` "interchange": `control` is our UNB 0020 (EDIFACT), `set_control` the UNH 0062.
    `code` is the partner's code as sent (AK5 01, IK5 01, AK9 01, UCI/UCM 0083)."""

    level: str
    control: str
    status: str
    code: str
    set_control: str | None = None
    set_type: str | None = None
    errors: tuple[str, ...] = ()


@dataclass(slots=True)
class InboundAck:
    """One acknowledgement document (a 997, 999 or CONTRL) as the partner sent it."""

    kind: str  # TA1 | 997 | 999 | CONTRL
    control_number: str | None  # the acknowledgement's own ST02 / UNH 0062
    verdicts: list[Verdict] = field(default_factory=list)

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for v in self.verdicts:
            counts[v.status] = counts.get(v.status, 0) + 1
        said = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(counts.items())) or "nothing acknowledged"
        return f"{self.kind} {self.control_number or ''}: {said}".replace("  ", " ")


def read_ack(standard: str, doc_type: str, control_number: str | None, body: Any) -> InboundAck:
    """Read a TA1, 997 or 999 (body: X12 segments) or a CONTRL (body: EDIFACT segments)."""
    if (standard, doc_type) not in ACK_TYPES:
        raise MalformedAck(f"{standard} {doc_type} is not an acknowledgement")
    segments = [list(s) for s in body]
    if doc_type == "TA1":
        return _read_ta1(segments)
    if standard == "x12":
        return _read_x12(doc_type, control_number, segments)
    return _read_contrl(control_number, segments)


def _el(seg: list[Any], i: int) -> str:
    """Element i of a segment as text ('' when absent); a composite gives its first component."""
    if i >= len(seg):
        return ""
    v = seg[i]
    if isinstance(v, list):
        v = v[0] if v else ""
    return str(v or "").strip()


def _read_ta1(segments: list[list[Any]]) -> InboundAck:
    """TA1: TA101 our ISA13, TA104 A / E / R, TA105 the note code (000: no error)."""
    seg = segments[0] if segments else []
    control, code, note = _el(seg, 1), _el(seg, 4), _el(seg, 5)
    if not control.isdigit():
        raise MalformedAck(f"TA1: TA101 (the interchange control number acknowledged) {control!r} is not a number", "segment 1 (TA1)")
    status = _TA1_STATUS.get(code)
    if status is None:
        raise MalformedAck(f"TA1: TA104 {code!r} is not an interchange acknowledgment code (A, E or R)", "segment 1 (TA1)")
    errors = (f"TA1 note {note}",) if note and note != "000" else ()
    return InboundAck("TA1", control, [Verdict("interchange", control, status, code, None, None, errors)])


def _read_x12(doc_type: str, control_number: str | None, segments: list[list[Any]]) -> InboundAck:
    ack = InboundAck(doc_type, control_number)
    group: str | None = None
    group_errors: list[str] = []
    set_id: tuple[str, str] | None = None
    set_errors: list[str] = []
    sets_seen = False
    for k, seg in enumerate(segments):
        tag = _el(seg, 0)
        where = f"segment {k + 1} ({tag})"
        if tag == "AK1":
            if group is not None:
                raise MalformedAck(f"{doc_type}: a second AK1 before the AK9 of group {group}", where)
            group = _el(seg, 2)
            if not group.isdigit():
                raise MalformedAck(f"{doc_type}: AK1 02 (the group control number acknowledged) {group!r} is not a number", where)
            group_errors, sets_seen = [], False
        elif tag == "AK2":
            if group is None:
                raise MalformedAck(f"{doc_type}: AK2 outside an AK1 group", where)
            set_id, set_errors = (_el(seg, 1), _el(seg, 2)), []
            if not set_id[1]:
                raise MalformedAck(f"{doc_type}: AK2 without a transaction set control number (AK2 02)", where)
        elif tag in ("AK3", "IK3"):
            set_errors.append(f"segment {_el(seg, 1)} at position {_el(seg, 2)}: error {_el(seg, 4) or '?'}")
        elif tag in ("AK4", "IK4"):
            set_errors.append(f"element {_el(seg, 1)}: error {_el(seg, 3) or '?'}" + (f" (value {_el(seg, 4)!r})" if _el(seg, 4) else ""))
        elif tag in ("AK5", "IK5"):
            if group is None or set_id is None:
                raise MalformedAck(f"{doc_type}: {tag} without its AK2", where)
            code = _el(seg, 1)
            status = _X12_STATUS.get(code)
            if status is None:
                raise MalformedAck(f"{doc_type}: {tag} 01 {code!r} is not a transaction set acknowledgment code", where)
            errs = [f"{tag} error {c}" for c in (_el(seg, i) for i in range(2, 7)) if c]
            ack.verdicts.append(Verdict("group", group, status, code, set_id[1], set_id[0], tuple(set_errors + errs)))
            set_id, sets_seen = None, True
        elif tag == "AK9":
            if group is None:
                raise MalformedAck(f"{doc_type}: AK9 without its AK1", where)
            code = _el(seg, 1)
            status = _X12_STATUS.get(code)
            if status is None:
                raise MalformedAck(f"{doc_type}: AK9 01 {code!r} is not a functional group acknowledgment code", where)
            group_errors = [f"AK9 error {c}" for c in (_el(seg, i) for i in range(5, 10)) if c]
            if not sets_seen or group_errors:  # the group's own verdict when no set was named, or group-level errors
                ack.verdicts.append(Verdict("group", group, status, code, None, None, tuple(group_errors)))
            group = None
    if group is not None:
        raise MalformedAck(f"{doc_type}: group {group} has no AK9")
    if not ack.verdicts:
        raise MalformedAck(f"{doc_type} acknowledges nothing (no AK1 ... AK9)")
    return ack


def _read_contrl(control_number: str | None, segments: list[list[Any]]) -> InboundAck:
    ack = InboundAck("CONTRL", control_number)
    interchange: str | None = None
    uci: tuple[str, str] | None = None
    uci_errors: list[str] = []
    message: tuple[str, str, str] | None = None  # (ref, type, action)
    message_errors: list[str] = []

    def close_message() -> None:
        nonlocal message
        if message is not None and interchange is not None:
            ref, mtype, action = message
            ack.verdicts.append(Verdict("interchange", interchange, _EDIFACT_STATUS[action], action, ref, mtype or None, tuple(message_errors)))
        message = None

    for k, seg in enumerate(segments):
        tag = _el(seg, 0)
        where = f"segment {k + 1} ({tag})"
        if tag == "UCI":
            interchange, action = _el(seg, 1), _el(seg, 4)
            if not interchange:
                raise MalformedAck("CONTRL: UCI without the interchange control reference (0020)", where)
            if action not in _EDIFACT_STATUS:
                raise MalformedAck(f"CONTRL: UCI action {action!r} is not 4, 7 or 8", where)
            uci = (interchange, action)
            if _el(seg, 5):
                uci_errors.append(f"interchange error {_el(seg, 5)}")
        elif tag == "UCM":
            close_message()
            if interchange is None:
                raise MalformedAck("CONTRL: UCM before the UCI", where)
            action = _el(seg, 3)
            if action not in _EDIFACT_STATUS:
                raise MalformedAck(f"CONTRL: UCM action {action!r} is not 4, 7 or 8", where)
            message, message_errors = (_el(seg, 1), _el(seg, 2), action), []
            if _el(seg, 4):
                message_errors.append(f"message error {_el(seg, 4)}")
        elif tag == "UCS" and message is not None:  # UCS 0096 segment position, 0085 its error (if any)
            message_errors.append(f"segment {_el(seg, 1)}" + (f" error {_el(seg, 2)}" if _el(seg, 2) else ""))
        elif tag == "UCD" and message is not None:  # UCD 0085 error, S011 element position (0098:0104)
            where_el = ":".join(str(c) for c in seg[2]) if len(seg) > 2 and isinstance(seg[2], list) else _el(seg, 2)
            message_errors.append(f"element {where_el} error {_el(seg, 1)}")
        elif tag == "UNT":
            close_message()
    close_message()
    if uci is None:
        raise MalformedAck("CONTRL without a UCI segment")
    if not ack.verdicts or uci[1] == "4" or uci_errors:  # the interchange's own verdict
        status = _EDIFACT_STATUS[uci[1]]
        ack.verdicts.insert(0, Verdict("interchange", uci[0], status, uci[1], None, None, tuple(uci_errors)))
    return ack
