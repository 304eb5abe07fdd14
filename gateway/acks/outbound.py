"""Deciding which acknowledgements a processed message earns, and queueing them for delivery.

While a message is processed, an `AckCollector` notes what each interchange held (every
document accepted or refused, with why, and whether the interchange was a repeat). As the
pipeline writes each batch of orders, `plan_ready` turns the interchanges closed so far and
the orders of that batch into acknowledgements for each configured partner that wants them,
stored in the batch's transaction (`store_acks`): memory and time stay flat however many
interchanges a file holds (issue 14 #18). `plan_acks` plans a whole collected message.

    X12      TA1 when the partner asks (ISA14=1) or always, or on envelope errors and
             repeats; 997 (4010) or 999 (5010) for every interchange that is not itself an
             acknowledgement; 855 per order after validation, if configured
    EDIFACT  CONTRL for every interchange (and for a repeat: code 26); ORDRSP per order

They are stored as outbox rows (`gateway.store.documents`, `pending`) in the same transaction
that allocates their control numbers (`gateway.store.control_numbers`); processing sends
nothing. The dispatcher claims and sends them like orders (`gateway.dispatch.worker`, through
the channels of `gateway.acks.channels`), with the same retry policy, dead letters and replay. An unknown
sender never gets an acknowledgement, and acknowledgements are never acknowledged.

An interchange read from inside a container (an X12 attachment of an e-mail) is answered
from the bytes it was read from (`InterchangeOpened.source`), not from the container.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.acks.edifact import (
    build_contrl,
    build_ordrsp,
    edifact_interchange_reasons,
    read_edifact_header,
)
from gateway.acks.model import (
    AckError,
    AckValueError,
    GroupAck,
    InterchangeAck,
    LineResult,
    LineStatus,
    PoDecision,
    TransactionAck,
)
from gateway.acks.x12 import (
    build_855,
    build_997,
    build_999,
    build_ta1,
    interchange_reasons,
    read_isa,
    x12_ack_error,
)
from gateway.formats.base import Envelope, InterchangeClosed
from gateway.model import Order
from gateway.store import documents
from gateway.store.control_numbers import StoredControlNumbers

if TYPE_CHECKING:
    from sqlalchemy import Connection

log = logging.getLogger(__name__)

__all__ = ["AckCollector", "PlannedAck", "plan_acks", "plan_answer", "plan_ready", "store_acks"]

# Interchanges made only of these are acknowledgements themselves: never acknowledged.
_ACK_TYPES = {"997", "999", "TA1", "CONTRL", "APERAK"}


@dataclass
class _Group:
    functional_id: str
    control_number: str | None
    version: str | None
    transactions: list[TransactionAck] = field(default_factory=list)


@dataclass
class _Interchange:
    envelope: Envelope
    groups: dict[str | None, _Group] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    repeat: str | None = None  # "same" content or "reused" control number
    unknown_partner: bool = False
    source: bytes | None = None  # the container part it was read from (None: the message body)
    index_in_source: int | None = None  # its position in `source` (indexes run across a container)
    closed: bool = False
    cached_head: bytes | None = None

    def head(self, body: bytes, finder: _IsaFinder | None = None) -> bytes:
        """The first bytes from this interchange's ISA/UNA/UNB on, for its separators and dates
        (the header readers look at 4 KiB at most; no copy of the rest of the body)."""
        if self.cached_head is not None:
            return self.cached_head
        data = body if self.source is None else self.source
        index = self.envelope.interchange_index if self.index_in_source is None else self.index_in_source
        if self.envelope.standard == "x12":
            start = (finder or _IsaFinder()).offset(data, index)
            self.cached_head = data[start : start + _HEAD_BYTES]
        else:
            self.cached_head = data[:_HEAD_BYTES]
        return self.cached_head


_HEAD_BYTES = 4096


class _IsaFinder:
    """Offsets of the n-th ISA in a body, found by one forward scan when asked in order
    (interchanges open in file order), not by scanning from the start each time."""

    def __init__(self) -> None:
        self._data: bytes | None = None
        self._index = -1
        self._pos = -1

    def offset(self, data: bytes, index: int) -> int:
        if data is not self._data or index < self._index:
            self._data, self._index, self._pos = data, -1, -1
        while self._index < index:
            found = data.find(b"ISA", self._pos + 1)
            if found < 0:
                return 0
            self._index, self._pos = self._index + 1, found
        return self._pos


@dataclass
class _OrderAck:
    order: Order
    envelope: Envelope
    accepted: bool
    line_results: list[LineResult]
    order_id: str | None = None


class AckCollector:
    """What one message held, as acknowledgements need it.

    Given the message `body`, each interchange's header bytes are taken when it opens, so
    `plan_ready` can answer (and forget) closed interchanges while the file is still read."""

    def __init__(self, body: bytes | None = None) -> None:
        self.body = body
        self.interchanges: dict[int, _Interchange] = {}
        self.orders: list[_OrderAck] = []
        self._finder = _IsaFinder()
        self._source: bytes | None = None  # the container part read last (parts are read in turn)
        self._in_source = 0  # interchanges read from it so far

    def opened(self, envelope: Envelope, source: bytes | None = None) -> None:
        ix = self.interchanges.setdefault(envelope.interchange_index, _Interchange(envelope))
        if source is not None and ix.source is None:
            if source is not self._source:
                self._source, self._in_source = source, 0
            ix.index_in_source = self._in_source
            self._in_source += 1
            ix.source = source
        if self.body is not None:
            ix.head(self.body, self._finder)
            ix.source = None  # the header is kept; the container part is not

    def head(self, envelope: Envelope, body: bytes) -> bytes:
        ix = self.interchanges.get(envelope.interchange_index)
        return ix.head(body, self._finder) if ix is not None else _Interchange(envelope).head(body, self._finder)

    def ready(self) -> bool:
        """Whether an interchange closed or an order was noted since the last `plan_ready`."""
        return bool(self.orders) or any(ix.closed for ix in self.interchanges.values())

    def close_all(self) -> None:
        """Treat every interchange still open as closed (the input ended without its trailer)."""
        for ix in self.interchanges.values():
            ix.closed = True

    def discard(self, index: int) -> None:
        """Forget an interchange acknowledged already (re-processing after a crash)."""
        self.interchanges.pop(index, None)

    def document(self, envelope: Envelope, doc_type: str | None, control: str | None, reason: str | None = None, message: str = "", position: str | None = None) -> None:
        ix = self.interchanges.setdefault(envelope.interchange_index, _Interchange(envelope))
        if reason == "UNKNOWN_PARTNER":
            ix.unknown_partner = True
        key = envelope.group_control_number
        group = ix.groups.setdefault(key, _Group(envelope.functional_id or "", key, envelope.version))
        if reason is None:
            group.transactions.append(TransactionAck(doc_type or "", control))
            return
        if envelope.standard == "x12":
            error = x12_ack_error(reason, message, position)
        else:
            error = AckError(reason=reason, message=message)
        group.transactions.append(TransactionAck(doc_type or "", control, accepted=False, errors=(error,)))

    def closed(self, ev: InterchangeClosed, repeat: str | None) -> None:
        ix = self.interchanges.setdefault(ev.envelope.interchange_index, _Interchange(ev.envelope))
        ix.errors = list(ev.errors)
        ix.repeat = repeat
        ix.closed = True

    def order(self, order: Order, envelope: Envelope, problems: list[Any], order_id: str | None = None) -> None:
        if envelope.standard not in ("x12", "edifact"):
            return  # an 855/ORDRSP answers an EDI order; e-mailed orders get the confirmation e-mail
        # Validation problems name their line ("line 2: quantity 0 must be ..."): those lines
        # are rejected, the others accepted as ordered.
        bad = {str(getattr(p, "message", "")).split(":", 1)[0] for p in problems}
        results = []
        for i, line in enumerate(order.lines, 1):
            label = f"line {line.line_number or i}"
            results.append(LineResult(status=LineStatus.REJECTED if label in bad else LineStatus.ACCEPTED))
        self.orders.append(_OrderAck(order, envelope, not problems, results, order_id))

    def decided(self, order_id: str, accepted: bool | None, line_results: list[LineResult]) -> None:
        """The rules decided an order noted by `order`: its 855/ORDRSP says so per line.
        `accepted` None: held for a person, so no answer is sent now."""
        for i, oa in enumerate(self.orders):
            if oa.order_id != order_id:
                continue
            if accepted is None:
                del self.orders[i]
            else:
                oa.accepted, oa.line_results = accepted, line_results
            return


@dataclass
class PlannedAck:
    kind: str  # TA1, 997, 999, CONTRL, 855, ORDRSP
    partner: str
    body: str
    control_number: str | None
    channel: str | None  # "folder:<path>" or "sftp:<partner>"; None: nowhere configured
    order_po: str | None = None
    order_id: str | None = None  # the order it answers, when known


def plan_acks(collector: AckCollector, body: bytes, partners: Any, directory: Any, conn: Connection, *, forced_partner: str | None = None, now: dt.datetime | None = None) -> list[PlannedAck]:
    """Build every acknowledgement the collected message earns (control numbers from `conn`)."""
    numbers = StoredControlNumbers(conn)
    by_name = {p.name: p for p in partners}
    planned: list[PlannedAck] = []
    for ix in collector.interchanges.values():
        env = ix.envelope
        who = forced_partner or directory.for_envelope(env)
        cfg = by_name.get(who) if who else None
        if cfg is None or ix.unknown_partner or _is_ack(ix):
            continue
        try:
            planned.extend(_interchange_acks(ix, body, cfg, numbers, now))
        except AckValueError as exc:
            log.warning("no acknowledgement for interchange %s from %s: %s", env.interchange_control_number, who, exc)
    for oa in collector.orders:
        who = oa.order.partner
        cfg = by_name.get(who) if who else None
        if cfg is None or not cfg.acks.order_response:
            continue
        try:
            planned.append(_order_ack(oa, collector.head(oa.envelope, body), cfg, numbers, now))
        except AckValueError as exc:
            log.warning("no order response for PO %s: %s", oa.order.po_number, exc)
    numbers.save()
    return planned


def plan_ready(
    collector: AckCollector,
    partners: Any,
    directory: Any,
    conn: Connection,
    *,
    written: set[str],
    forced_partner: str | None = None,
    now: dt.datetime | None = None,
) -> list[PlannedAck]:
    """Acknowledgements for the interchanges closed so far and for the collected orders whose
    id is in `written` (the batch being committed); both are then forgotten. Orders collected
    but not written (dropped as a repeat, refused as cut off) get none. Control numbers are
    allocated from `conn` and saved in it."""
    body = collector.body or b""
    numbers = StoredControlNumbers(conn)
    by_name = {p.name: p for p in partners}
    planned: list[PlannedAck] = []
    orders, collector.orders = collector.orders, []
    heads = [collector.head(oa.envelope, body) for oa in orders]  # before their interchange is forgotten
    done = [i for i, ix in collector.interchanges.items() if ix.closed]
    for i in done:
        ix = collector.interchanges.pop(i)
        env = ix.envelope
        who = forced_partner or directory.for_envelope(env)
        cfg = by_name.get(who) if who else None
        if cfg is None or ix.unknown_partner or _is_ack(ix):
            continue
        try:
            planned.extend(_interchange_acks(ix, body, cfg, numbers, now))
        except AckValueError as exc:
            log.warning("no acknowledgement for interchange %s from %s: %s", env.interchange_control_number, who, exc)
    for oa, head in zip(orders, heads, strict=True):
        who = oa.order.partner
        cfg = by_name.get(who) if who else None
        if cfg is None or not cfg.acks.order_response or oa.order_id not in written:
            continue
        try:
            ack = _order_ack(oa, head, cfg, numbers, now)
        except AckValueError as exc:
            log.warning("no order response for PO %s: %s", oa.order.po_number, exc)
            continue
        ack.order_id = oa.order_id
        planned.append(ack)
    numbers.save()
    return planned


def plan_answer(
    order: Order,
    accepted: bool,
    cfg: Any,
    conn: Connection,
    *,
    head: bytes = b"",
    line_results: list[LineResult] | None = None,
    order_id: str | None = None,
    now: dt.datetime | None = None,
) -> PlannedAck | None:
    """The 855/ORDRSP a person's decision implies for a stored order (approve: accepted;
    reject: the negative answer, X12 BAK01 RJ / EDIFACT BGM 1225 27), or None when the
    order is not an EDI order or its partner (`cfg`) wants no order responses. `head` is the
    start of the interchange the order came in (its separators are copied; without it the
    standard's defaults are used). Control numbers are allocated from `conn` and saved."""
    standard = str(order.channel)  # a StrEnum: its value
    if standard not in ("x12", "edifact") or cfg is None or not cfg.acks.order_response:
        return None
    s = order.source
    envelope = Envelope(
        standard=standard, sender_id=s.sender_id, sender_qualifier=s.sender_qualifier, receiver_id=s.receiver_id,
        receiver_qualifier=s.receiver_qualifier, interchange_control_number=s.interchange_control_number,
        group_control_number=s.group_control_number, version=s.version, test_indicator=s.test_indicator,
    )
    results = line_results if line_results is not None else [LineResult() for _ in order.lines]
    if not _starts_interchange(head, standard):
        head = _default_head(standard)
    numbers = StoredControlNumbers(conn)
    try:
        ack = _order_ack(_OrderAck(order, envelope, accepted, results, order_id), head, cfg, numbers, now)
    except AckValueError as exc:
        log.warning("no order response for PO %s: %s", order.po_number, exc)
        return None
    numbers.save()
    ack.order_id = order_id
    return ack


def _starts_interchange(head: bytes, standard: str) -> bool:
    text = head[:16].removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n\x00")
    return text.startswith(b"ISA") if standard == "x12" else text.startswith((b"UNA", b"UNB"))


def _default_head(standard: str) -> bytes:
    """An interchange header with the standard's default separators (the order came inside a
    container, so its own header is not at the start of the stored message)."""
    if standard == "x12":
        return b"ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *260101*0000*U*00401*000000001*0*P*>~"
    return b"UNB+UNOC:3+SENDER+RECEIVER+260101:0000+1'"


def _is_ack(ix: _Interchange) -> bool:
    types = {tx.doc_type for g in ix.groups.values() for tx in g.transactions}
    fa_only = all(g.functional_id in ("FA", "") for g in ix.groups.values())
    return bool(types) and types <= _ACK_TYPES or (bool(ix.groups) and fa_only and ix.envelope.standard == "x12")


def _interchange_acks(ix: _Interchange, body: bytes, cfg: Any, numbers: StoredControlNumbers, now: dt.datetime | None) -> list[PlannedAck]:
    env = ix.envelope
    out: list[PlannedAck] = []
    if env.standard == "x12":
        head = read_isa(ix.head(body))
        reasons = interchange_reasons(ix.errors)
        errors = list(reasons.interchange)
        if ix.repeat:
            errors.append("X12_DUPLICATE_INTERCHANGE" if ix.repeat == "same" else "CONTROL_NUMBER_REUSED")
        groups = [
            GroupAck(g.functional_id, g.control_number, g.version, tuple(g.transactions), errors=tuple(reasons.groups.get(g.control_number or "", ())))
            for g in ix.groups.values()
        ]
        ack = InterchangeAck(env, tuple(groups), tuple(errors), head.separators, head.date, head.time)
        ta1 = cfg.acks.ta1 == "always" or (cfg.acks.ta1 == "requested" and (env.ack_requested or errors))
        if ix.repeat:
            # The first copy was acknowledged already; a repeat only gets its TA1 (025).
            if cfg.acks.ta1 != "never":
                out.append(_planned("TA1", cfg, build_ta1(ack, control_numbers=numbers, partner=cfg.name, now=now)))
            return out
        if cfg.acks.functional and groups:
            if (env.version or "").startswith("005"):
                text = build_999(ack, control_numbers=numbers, partner=cfg.name, now=now, with_ta1=bool(ta1))
                out.append(_planned("999", cfg, text))
            else:
                text = build_997(ack, control_numbers=numbers, partner=cfg.name, now=now, with_ta1=bool(ta1))
                out.append(_planned("997", cfg, text))
        elif ta1:
            out.append(_planned("TA1", cfg, build_ta1(ack, control_numbers=numbers, partner=cfg.name, now=now)))
        return out
    if env.standard == "edifact" and cfg.acks.functional:
        edi = read_edifact_header(ix.head(body))
        ereasons = edifact_interchange_reasons(ix.errors)
        eerrors = list(ereasons.interchange) + (["CONTROL_NUMBER_REUSED"] if ix.repeat else [])
        egroups = [GroupAck(g.functional_id, g.control_number, g.version, tuple(g.transactions)) for g in ix.groups.values()]
        ack = InterchangeAck(env, tuple(egroups), tuple(eerrors), edi.separators, syntax_identifier=edi.syntax_identifier, syntax_version=edi.syntax_version, has_una=edi.has_una)
        out.append(_planned("CONTRL", cfg, build_contrl(ack, control_numbers=numbers, partner=cfg.name, now=now)))
    return out


def _order_ack(oa: _OrderAck, body: bytes, cfg: Any, numbers: StoredControlNumbers, now: dt.datetime | None) -> PlannedAck:
    bad = any(r.status != LineStatus.ACCEPTED for r in oa.line_results)
    if oa.accepted:
        decision = PoDecision.ACCEPTED_WITH_CHANGES if bad else PoDecision.ACCEPTED
    else:
        decision = PoDecision.REJECTED_WITH_DETAIL if bad else PoDecision.REJECTED
    if oa.envelope.standard == "edifact":
        edi = read_edifact_header(body)
        version = tuple((oa.envelope.version or "D:96A:UN").split(":")[1:4]) or ("D", "96A", "UN")
        text = build_ordrsp(
            oa.order, decision, oa.line_results, control_numbers=numbers, separators=edi.separators,
            syntax_identifier=edi.syntax_identifier, syntax_version=edi.syntax_version, envelope=oa.envelope,
            partner=cfg.name, now=now, message_version=version,
        )
        return _planned("ORDRSP", cfg, text, oa.order.po_number)
    isa = read_isa(body)
    text = build_855(oa.order, decision, oa.line_results, control_numbers=numbers, separators=isa.separators, envelope=oa.envelope, partner=cfg.name, now=now)
    return _planned("855", cfg, text, oa.order.po_number)


def _planned(kind: str, cfg: Any, text: str, po: str | None = None) -> PlannedAck:
    control = _control_of(kind, text)
    if cfg.acks.as2:
        channel: str | None = f"as2:{cfg.name}"
    elif cfg.acks.sftp is not None:
        channel = f"sftp:{cfg.name}"
    elif cfg.acks.email is not None:
        channel = f"mail:{cfg.acks.email}"
    elif cfg.acks.outbound is not None:
        channel = f"folder:{cfg.acks.outbound}"
    else:
        channel = None
    return PlannedAck(kind, cfg.name, text, control, channel, po)


def _control_of(kind: str, text: str) -> str | None:
    if text.startswith("ISA") and len(text) > 106:
        return text[90:99]
    if "UNB" in text[:200]:
        parts = text[text.index("UNB") :].split("'", 1)[0].split("+")
        return parts[5] if len(parts) > 5 else None
    return None


def store_acks(conn: Connection, message_id: str, planned: Iterable[PlannedAck], order_ids: dict[str, str] | None = None) -> int:
    """Queue the planned acknowledgements as outbox rows (pending, or held without a channel)
    in the caller's transaction (`gateway.store.documents`); the dispatcher sends them."""
    order_ids = order_ids or {}
    return documents.queue(
        conn,
        message_id,
        (
            documents.NewDocument(
                kind=p.kind, partner=p.partner, body=p.body.encode("utf-8"), channel=p.channel, control_number=p.control_number,
                order_id=p.order_id or (order_ids.get(p.order_po or "") if p.order_po else None),
                held_reason=None if p.channel is not None else f"partner {p.partner} has no outbound channel (acks.outbound, acks.sftp or acks.email) configured",
            )
            for p in planned
        ),
    )
