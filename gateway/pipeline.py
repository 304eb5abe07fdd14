"""The unit of work from a raw message to stored, validated, queued orders.

Two steps, each its own committed transaction, so a crash anywhere resumes cleanly:

1. `receive`  store the raw bytes, their sha256 and where they came from. The caller
              acknowledges the source only after this returns: nothing lost. The same bytes
              received again are recognised here and become a no-op: nothing doubled.
2. `process`  parse, map and validate a stored message; write its orders, their outbox rows
              and their history in batches. Orders are keyed by (message, position), so
              re-processing after a crash skips what was already written. An interchange seen
              before (same sender and control number) creates nothing new; an order whose
              partner and PO number were already received does not reach a connector twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway import crashpoints
from gateway.acks.outbound import AckCollector, plan_acks, store_acks
from gateway.connector import Capabilities, RawMessage
from gateway.dispatch.outbox import new_deliveries
from gateway.errors import GatewayError, InputRejected
from gateway.formats.base import InterchangeClosed, InterchangeOpened
from gateway.formats.envelope import incomplete_interchanges
from gateway.store import RawJSON, Store, add_event, add_events, new_id, utcnow
from gateway.store import acks as ack_repo
from gateway.store import interchanges as interchange_repo
from gateway.store import messages as message_repo
from gateway.store import orders as order_repo
from gateway.store import tables as t
from gateway.store.ids import by_prefix
from gateway.translate import PartnerDirectory, Rejected, Translated, translate
from gateway.validation import validate
from gateway.versions import Linker, Plan

if TYPE_CHECKING:
    from sqlalchemy import Connection

log = logging.getLogger(__name__)

__all__ = ["Pipeline", "ProcessStats", "ReceiveResult", "display_name"]

# process_pending claims up to this many waiting messages in one transaction, fewer when
# their bodies pass _CLAIM_BYTES together: one lease update for a group of small files.
_CLAIM_GROUP = 16
_CLAIM_BYTES = 1_000_000


@dataclass(slots=True)
class ReceiveResult:
    message_id: str
    duplicate: bool


@dataclass(slots=True)
class ProcessStats:
    messages: int = 0
    orders: int = 0
    quarantined: int = 0
    duplicates: int = 0
    rejected_messages: int = 0

    def add(self, other: ProcessStats) -> None:
        self.messages += other.messages
        self.orders += other.orders
        self.quarantined += other.quarantined
        self.duplicates += other.duplicates
        self.rejected_messages += other.rejected_messages


def display_name(name: str) -> str:
    """A file or attachment name made safe to show: basename only, no control characters."""
    name = unicodedata.normalize("NFKC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in "\x00")
    name = name.strip().lstrip(".") or "unnamed"
    return name[:255]


@dataclass
class _Batch:
    """What the next flush writes in one transaction."""

    orders: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    digests: list[tuple[str, str]] = field(default_factory=list)  # (interchange key, digest)

    def __len__(self) -> int:
        return len(self.orders)


@dataclass
class _Run:
    """The state of processing one message."""

    message_id: str
    batch: _Batch = field(default_factory=_Batch)
    warnings: list[str] = field(default_factory=list)
    skipping: dict[int, str] = field(default_factory=dict)  # interchange index -> earlier digest
    opened: dict[str, str] = field(default_factory=dict)  # interchange key -> digest ("" until closed)
    undecided: dict[str, int] = field(default_factory=dict)  # key -> index, not yet checked
    closes: dict[str, InterchangeClosed] = field(default_factory=dict)  # ends awaiting that check
    orders: int = 0
    rejected: int = 0
    duplicates: int = 0
    acks: AckCollector | None = None  # what acknowledgements need to know, when any partner wants them
    order_ids: dict[str, str] = field(default_factory=dict)  # PO number -> order id (for 855/ORDRSP)
    truncated: set[tuple[int, str]] = field(default_factory=set)  # (index, control number) cut off: refused
    truncated_seen: list[str] = field(default_factory=list)  # what the person is told about them
    reused: list[str] = field(default_factory=list)  # keys of interchanges refused as CONTROL_NUMBER_REUSED


class Pipeline:
    def __init__(
        self,
        store: Store,
        *,
        connectors: list[str],
        partners: PartnerDirectory | None = None,
        partner_connectors: dict[str, list[str]] | None = None,
        batch_orders: int = 500,
        max_attempts: int = 3,
        lease_seconds: float = 120.0,
        capabilities: Mapping[str, Capabilities] | None = None,
        provenance: bool = True,
        authserv_id: str | None = None,
        smtp: Any = None,
    ):
        self.store = store
        self.connectors = list(connectors)
        self.partners = partners or PartnerDirectory()
        self.partner_connectors = partner_connectors or {}
        self.batch_orders = batch_orders
        self.max_attempts = max_attempts
        self.lease_seconds = lease_seconds
        self.linker = Linker(capabilities or {}, self._targets)
        self.provenance = provenance
        self.authserv_id = authserv_id
        self.smtp = smtp  # gateway.smtp.SmtpConfig: order e-mails get a confirmation reply

    def _targets(self, partner: str | None) -> list[str]:
        return list(self.partner_connectors.get(partner or "", self.connectors))

    # -- step 1: receive ---------------------------------------------------------------------

    def receive(self, raw: RawMessage, *, format: str | None = None, partner: str | None = None) -> ReceiveResult:
        """Commit the raw message. Returns the id of the stored (or earlier identical) message."""
        return self.receive_many([raw], format=format, partner=partner)[0]

    def receive_many(self, raws: list[RawMessage], *, format: str | None = None, partner: str | None = None) -> list[ReceiveResult]:
        """Commit several raw messages in one (fully durable) transaction: one fsync for the
        group. Nothing may be acknowledged before this returns (gateway.ingest)."""
        with self.store.begin() as conn:
            results = [self._receive_in(conn, raw, format, partner) for raw in raws]
        for r in results:
            if not r.duplicate:
                crashpoints.hit("after_store")
        return results

    def _receive_in(self, conn: Connection, raw: RawMessage, format: str | None, partner: str | None) -> ReceiveResult:
        sha = hashlib.sha256(raw.body).hexdigest()
        key = f"{raw.source}|{raw.dedupe_key}"[:400] if raw.dedupe_key else None
        now = utcnow()
        found = message_repo.find_same(conn, sha, key)
        if found is not None:
            what = "same content" if found.sha256 == sha else f"same {raw.dedupe_key}"
            add_event(conn, "duplicate_received", f"{what} received again from {raw.source}: {raw.display_name}", message_id=found.id)
            return ReceiveResult(found.id, True)
        mid = new_id()
        state, reason, error = "received", None, None
        if raw.rejected:
            state, reason, error = "quarantined", raw.rejected.split(":", 1)[0], raw.rejected
        existing = message_repo.insert(
            conn,
            dict(
                id=mid,
                received_at=now,
                updated_at=now,
                source=raw.source,
                source_ref=raw.source_ref[:1000],
                display_name=display_name(raw.display_name),
                sha256=sha,
                dedupe_key=key,
                size=len(raw.body),
                format=format,
                partner=partner,
                state=state,
                reason=reason,
                error=error,
                warnings=[],
                attempts=0,
                order_count=0,
                rejected_count=0,
            ),
            raw.body,
        )
        if existing is not None:
            # Another node stored the same message between our look and our insert.
            return ReceiveResult(existing, True)
        add_event(conn, "received", f"{len(raw.body)} bytes from {raw.source}: {display_name(raw.display_name)}", message_id=mid, at=now)
        if state == "quarantined":
            add_event(conn, "quarantined", error, message_id=mid, at=now)
        return ReceiveResult(mid, False)

    # -- step 2: process ---------------------------------------------------------------------

    def process_pending(self, limit: int = 100) -> ProcessStats:
        """Process stored messages that are waiting (or whose processing was interrupted).

        Several small waiting messages are claimed in one transaction (one lease update for
        the group), then processed one by one, each as before (attempts counted first, its
        orders and its end in their own commits). What is left of a group when processing
        stops early (an error, or half the lease gone) is released at once. A node killed
        mid-group strands the rest of it until the lease ends on PostgreSQL; on SQLite the
        next start releases every lease (Gateway.start_node).
        """
        stats = ProcessStats()
        left = limit
        with self.store.redoable():
            while left > 0:
                ids = self._claim(min(left, _CLAIM_GROUP))
                if not ids:
                    break
                left -= len(ids)
                until = time.monotonic() + self.lease_seconds / 2
                done = 0
                try:
                    for mid in ids:
                        if done and time.monotonic() > until:
                            break  # the rest of the group is released, not left to expire
                        done += 1
                        stats.add(self.process(mid, claimed=True))
                finally:
                    self._release(ids[done:])
        return stats

    def _claim(self, limit: int) -> list[str]:
        """Lease up to `limit` waiting messages, oldest first, in one transaction; a group
        is cut where its bodies pass _CLAIM_BYTES (a large message is claimed alone)."""
        lease = utcnow() + dt.timedelta(seconds=self.lease_seconds)
        with self.store.begin() as conn:
            return message_repo.claim_next(conn, limit, lease, skip_locked=self.store.supports_skip_locked, max_bytes=_CLAIM_BYTES)

    def _release(self, ids: list[str]) -> None:
        """Give back the leases of claimed messages this node will not process now."""
        if not ids:
            return
        with self.store.begin() as conn:
            message_repo.release(conn, ids)

    def claim(self, message_id: str) -> bool:
        """Take the lease on one waiting message (False: processed, or another node has it)."""
        now = utcnow()
        with self.store.begin() as conn:
            return message_repo.claim(conn, message_id, now, now + dt.timedelta(seconds=self.lease_seconds))

    def process(
        self, message_id: str, *, claimed: bool = False, format: str | None = None, partner: str | None = None, durable: bool = False
    ) -> ProcessStats:
        """Process one stored message. Its commits may be redone after a power loss
        (Store.redoable) unless `durable`: a caller that acknowledges the source with the
        outcome (a mailbox routes a mail by it) needs that outcome on disk first."""
        if durable:
            return self._process(message_id, format=format, partner=partner)
        with self.store.redoable():
            return self._process(message_id, format=format, partner=partner)

    def _process(self, message_id: str, *, format: str | None, partner: str | None) -> ProcessStats:
        stats = ProcessStats(messages=1)
        now = utcnow()
        with self.store.begin() as conn:
            row = message_repo.load(conn, message_id)
            if row["state"] != "received":
                return ProcessStats()
            attempts = row["attempts"] + 1
            # Counted before the work: an input that kills the process is not retried forever.
            message_repo.start_attempt(conn, message_id, attempts, now, now + dt.timedelta(seconds=self.lease_seconds))
            if attempts > self.max_attempts:
                self._finish_message(
                    conn, message_id, "quarantined", "CRASH_LOOP",
                    f"processing this message stopped the gateway {attempts - 1} times; it needs a person",
                )
                stats.rejected_messages = 1
                return stats
            body = message_repo.body(conn, message_id)
            if body is None:
                raise GatewayError(f"message {message_id} has no stored body")
            done = order_repo.done_indexes(conn, message_id)
        fmt = format or row["format"]
        partner = partner or row["partner"]
        name = row["display_name"] or "<input>"
        if self.partners.enforced and (fmt or _sniff(body)) == "email":
            # Who sent it decides whose orders these are; an e-mail is never accepted on
            # the strength of its From header alone (see gateway.formats.email_sender).
            found, problem = self._email_partner(body)
            if problem is not None:
                with self.store.begin() as conn:
                    self._finish_message(conn, message_id, "quarantined", "SENDER_UNVERIFIED", problem, fmt="email")
                stats.rejected_messages = 1
                return stats
            partner = partner or found
            verified = partner if found else None
        else:
            verified = None
        run = _Run(message_id, acks=AckCollector() if self.partners.wants_acks else None)
        # Known before any of its orders is written: a cut-off interchange sends nothing.
        run.truncated = incomplete_interchanges(body)
        try:
            events = translate(
                io.BytesIO(body),
                name=name,
                format=fmt,
                partner=partner,
                partners=self.partners,
                message_id=message_id,
                require_partner=self.partners.enforced,
                trace=self.provenance,
            )
            for ev in events:
                if run.acks is not None:
                    self._collect_ack(ev, run.acks)
                if isinstance(ev, InterchangeOpened):
                    run.warnings.extend(ev.warnings)
                    self._open_interchange(ev, run)
                elif isinstance(ev, InterchangeClosed):
                    self._close_interchange(ev, run)
                elif ev.index in done or (ev.envelope is not None and ev.envelope.interchange_index in run.skipping):
                    continue
                elif isinstance(ev, Translated):
                    run.warnings.extend(ev.warnings)
                    self._add_order(ev, run)
                else:
                    self._add_rejection(ev, run)
                if len(run.batch) >= self.batch_orders:
                    self._flush(run)
        except InputRejected as exc:
            self._flush(run)
            with self.store.begin() as conn:
                self._finish_message(conn, message_id, "quarantined", exc.reason, str(exc), warnings=run.warnings, fmt=fmt)
            stats.rejected_messages = 1
            return stats
        self._flush(run)
        crashpoints.hit("after_orders")
        with self.store.begin() as conn:
            total = order_repo.states_of_message(conn, message_id)
            good = sum(1 for s in total if s not in ("quarantined", "duplicate", "stale"))
            if run.truncated_seen and good == 0:
                self._finish_message(conn, message_id, "quarantined", "TRUNCATED", "; ".join(run.truncated_seen), warnings=run.warnings, fmt=fmt, orders=0, rejected=len(total))
                stats.rejected_messages = 1
            elif run.reused and good == 0:
                self._finish_message(
                    conn, message_id, "quarantined", "CONTROL_NUMBER_REUSED",
                    f"interchange(s) {', '.join(run.reused)} reuse a control number received before with other content "
                    f"(a partner's bug or a replay); after checking, `gateway reprocess {message_id[:8]} --accept-reused-control` reads it as new",
                    warnings=run.warnings, fmt=fmt, orders=0, rejected=len(total),
                )
                stats.rejected_messages = 1
            elif not total and run.duplicates == 0 and not run.skipping:
                self._finish_message(conn, message_id, "quarantined", "NO_ORDERS", "the message holds no order documents", warnings=run.warnings, fmt=fmt)
                stats.rejected_messages = 1
            elif total and good == 0 and all(s == "quarantined" for s in total):
                self._finish_message(conn, message_id, "quarantined", "ALL_REJECTED", f"none of the {len(total)} documents could be accepted", warnings=run.warnings, fmt=fmt, orders=0, rejected=len(total))
                stats.rejected_messages = 1
            else:
                self._finish_message(conn, message_id, "parsed", None, None, warnings=run.warnings, fmt=fmt, orders=good, rejected=len(total) - good)
        if run.acks is not None:
            self._acknowledge(run, body, partner)
        if verified is not None and self.smtp is not None:
            self._confirm(message_id, body, verified)
        stats.orders = run.orders
        stats.quarantined = run.rejected
        stats.duplicates = run.duplicates
        return stats

    # -- interchanges ---------------------------------------------------------------------------
    # Whether an interchange was seen before is decided inside the write transaction of the
    # first batch that holds its documents (or its end), so the check costs no extra round
    # trip and two nodes cannot both take the same interchange.

    def _open_interchange(self, ev: InterchangeOpened, run: _Run) -> None:
        key = ev.envelope.interchange_key
        if key is None or _cut_off(ev.envelope, run):
            return  # a cut-off interchange is not registered: the complete one may follow
        ix = ev.envelope.interchange_index
        if key in run.opened:  # the same interchange twice in this very file
            run.skipping[ix] = run.opened[key]
            return
        run.opened[key] = ""
        run.undecided[key] = ix

    def _close_interchange(self, ev: InterchangeClosed, run: _Run) -> None:
        for err in ev.errors:
            run.warnings.append(f"interchange {ev.envelope.interchange_control_number}: {err}")
        key = ev.envelope.interchange_key
        if not ev.complete or _cut_off(ev.envelope, run):
            self._truncated(ev, run)
            if run.acks is not None:
                run.acks.closed(ev, None)  # TA1 R 023 / CONTRL UCI 4: agrees with the quarantine
            return
        if key is None:
            if run.acks is not None:
                run.acks.closed(ev, None)
            return
        if key in run.undecided:
            run.closes[key] = ev  # settled by the next flush, once we know if it is a repeat
            return
        self._settle_close(ev, run)

    def _truncated(self, ev: InterchangeClosed, run: _Run) -> None:
        env, ix = ev.envelope, ev.envelope.interchange_index
        trailer = "IEA" if env.standard == "x12" else "UNZ"
        run.truncated_seen.append(
            f"interchange {env.interchange_control_number or '?'} from {env.sender_id or '?'} is cut off "
            f"(no {trailer} or group trailer): none of its {ev.document_count} document(s) was accepted; "
            "ask the partner to send the complete file again"
        )
        if not _cut_off(env, run):  # the scan missed it: refuse what is not written yet
            run.truncated.add((ix, env.interchange_control_number or ""))
            for row in run.batch.orders:
                if row.get("_ix") == ix and row["state"] != "quarantined":
                    row.update(state="quarantined", reason="TRUNCATED", error=run.truncated_seen[-1], order_key=None)
                    row.pop("_mapped", None)
                    row.pop("_review", None)
                    run.orders -= 1
                    run.rejected += 1

    def _settle_close(self, ev: InterchangeClosed, run: _Run) -> None:
        key = ev.envelope.interchange_key
        assert key is not None
        ix = ev.envelope.interchange_index
        if run.acks is not None:
            repeat = None if ix not in run.skipping else ("same" if run.skipping[ix] and run.skipping[ix] == ev.digest else "reused")
            run.acks.closed(ev, repeat)
        if ix in run.skipping:
            earlier = run.skipping[ix]
            if earlier and earlier == ev.digest:
                run.duplicates += ev.document_count or 1
                run.batch.events.append({"kind": "duplicate_interchange", "message_id": run.message_id, "detail": f"interchange {key} was received before with the same content; nothing new created"})
            else:
                run.rejected += 1
                run.reused.append(key)
                run.batch.events.append({"kind": "quarantined", "message_id": run.message_id, "detail": f"CONTROL_NUMBER_REUSED: interchange {key} was received before with different content; a person must decide"})
                run.warnings.append(f"CONTROL_NUMBER_REUSED: interchange control number {ev.envelope.interchange_control_number} from {ev.envelope.sender_id} was used before for different content")
            return
        if run.opened.get(key) == "":
            run.opened[key] = ev.digest
        run.batch.digests.append((key, ev.digest))

    def _decide_interchanges(self, conn: Connection, run: _Run) -> None:
        if not run.undecided:
            return
        keys = sorted(run.undecided)
        known = interchange_repo.known(conn, keys)
        new_rows = []
        for key in keys:
            ix = run.undecided.pop(key)
            row = known.get(key)
            if row is None:
                new_rows.append({"key": key, "message_id": run.message_id, "digest": None, "created_at": utcnow()})
            elif row.message_id != run.message_id:  # (our own row: re-processing after a crash)
                run.skipping[ix] = row.digest or ""
                run.opened[key] = row.digest or ""
                dropped = {o["id"] for o in run.batch.orders if o.pop("_ix", None) == ix}
                if dropped:
                    run.batch.orders = [o for o in run.batch.orders if o["id"] not in dropped]
                    run.batch.events = [e for e in run.batch.events if e.get("order_id") not in dropped]
                    run.orders -= len(dropped)
        interchange_repo.register(conn, new_rows)
        for key in keys:
            close = run.closes.pop(key, None)
            if close is not None:
                self._settle_close(close, run)

    def _add_order(self, ev: Translated, run: _Run) -> None:
        order, message_id, batch = ev.order, run.message_id, run.batch
        now = utcnow()
        oid = new_id()
        # pydantic serializes in Rust; the same text is stored and, without `source`, hashed to
        # recognise a re-sent order whatever envelope it came in. `source` is the model's last
        # field and a quote inside a JSON string is always escaped, so the last `,"source":{`
        # is the start of that field.
        text = order.model_dump_json()
        data = RawJSON(text)
        content_hash = hashlib.sha256(text[: text.rfind(',"source":{')].encode()).hexdigest()
        # A partner's PO number names one order whatever the channel (a UBL change may follow
        # an X12 original); without a configured partner, the channel and sender stand in.
        if order.partner:
            order_key: str | None = f"partner|{order.partner}|{order.po_number}"[:300]
        else:
            sender = f"{order.source.sender_qualifier or ''}:{order.source.sender_id or ''}"
            order_key = f"{order.channel.value}|{sender}|{order.po_number}"[:300]
        testing = _is_test(ev.envelope)
        if testing and order_key:
            order_key = f"test|{order_key}"[:300]  # never linked with the production order
        problems = validate(order)
        state, reason, error = "validated", None, None
        cut_off = _cut_off(ev.envelope, run)
        if cut_off:
            order_key = None  # never linked to, so the complete re-sent order is new
            state, reason = "quarantined", "TRUNCATED"
            error = "its interchange is cut off (no IEA/UNZ trailer): orders may be missing; the partner must send the complete file again"
        elif problems:
            state, reason, error = "quarantined", problems[0].reason, "; ".join(p.message for p in problems)
        row = {
            "id": oid,
            "message_id": message_id,
            "doc_index": ev.index,
            "created_at": now,
            "updated_at": now,
            "channel": order.channel.value,
            "partner": order.partner,
            "po_number": order.po_number[:100],
            "purpose": order.purpose.value,
            "order_date": order.order_date,
            "order_key": order_key,
            "content_hash": content_hash,
            "state": state,
            "reason": reason,
            "error": error,
            "position": ev.position[:200],
            "line_count": len(order.lines),
            "data": data,
            "provenance": ev.provenance or None,
            "version": 1,
            "supersedes": None,
            "_ix": ev.envelope.interchange_index,
        }
        if testing:
            row["_test"] = True
        batch.orders.append(row)
        run.order_ids[order.po_number] = oid
        if run.acks is not None and order.partner and not cut_off:
            run.acks.order(order, ev.envelope, problems)
        # Mapped and validated in the same instant: one event, whose detail says both.
        mapped = f"PO {order.po_number}, {len(order.lines)} line(s) from {ev.position}"
        if state == "quarantined":
            run.rejected += 1
            batch.events.append({"kind": "quarantined", "order_id": oid, "message_id": message_id, "at": now, "detail": f"{mapped}; {reason}: {error}"})
        else:
            run.orders += 1
            row["_mapped"] = mapped
            if ev.review:
                row["_review"] = ev.review

    def _add_rejection(self, ev: Rejected, run: _Run) -> None:
        message_id, batch = run.message_id, run.batch
        now = utcnow()
        oid = new_id()
        run.rejected += 1
        batch.orders.append(
            {
                "id": oid,
                "message_id": message_id,
                "doc_index": ev.index,
                "created_at": now,
                "updated_at": now,
                "channel": (ev.envelope.standard if ev.envelope else "other")[:20],
                "partner": None,
                "po_number": None,
                "purpose": None,
                "order_date": None,
                "order_key": None,
                "content_hash": None,
                "state": "quarantined",
                "reason": ev.reason[:60],
                "error": ev.message,
                "position": (ev.position or "")[:200],
                "line_count": 0,
                "data": None,
                "provenance": None,
                "version": 1,
                "supersedes": None,
                "_ix": ev.envelope.interchange_index if ev.envelope else None,
            }
        )
        what = f"{ev.doc_type or 'document'} {ev.control_number or ''}".strip()
        batch.events.append({"kind": "quarantined", "order_id": oid, "message_id": message_id, "at": now, "detail": f"{ev.reason}: {what} at {ev.position}: {ev.message}"})

    def _flush(self, run: _Run) -> None:
        """Write a batch of orders with their outbox rows and events in one transaction."""
        batch = run.batch
        if not (batch.orders or batch.events or batch.digests or run.undecided):
            return
        with self.store.begin() as conn:
            self._decide_interchanges(conn, run)
            batch = run.batch  # settling may have added events
            mapped: dict[str, str] = {}
            review: dict[str, list[str]] = {}
            tests: set[str] = set()
            for row in batch.orders:
                row.pop("_ix", None)
                if row.pop("_test", None):
                    tests.add(row["id"])
                if "_mapped" in row:
                    mapped[row["id"]] = row.pop("_mapped")
                if "_review" in row:
                    review[row["id"]] = row.pop("_review")
            if batch.orders:
                # Heartbeat: a long file keeps its claim while it makes progress.
                message_repo.extend_lease(conn, batch.orders[0]["message_id"], utcnow() + dt.timedelta(seconds=self.lease_seconds))
            plans = self.linker.link(conn, batch.orders, batch.events)
            if review:
                self._hold_for_review(batch.orders, review, plans, batch.events, mapped)
            if tests:
                self._route_tests(batch.orders, tests, plans, batch.events, mapped)
            order_repo.insert_batch(conn, batch.orders)
            self._queue(
                conn, [(row, plans.get(row["id"])) for row in batch.orders], batch.events, mapped
            )
            # Changes that waited for an order written just now (in this or an earlier input).
            keys = sorted(
                {
                    r["order_key"]
                    for r in batch.orders
                    if r["order_key"] and r["state"] in ("validated", "held")
                }
            )
            while keys:
                released = self.linker.release_waiting(conn, keys, batch.events)
                for row, _ in released:
                    order_repo.release(conn, row)
                self._queue(conn, released, batch.events, {})
                keys = sorted(
                    {r["order_key"] for r, _ in released if r["state"] in ("validated", "held")}
                )
            interchange_repo.set_digests(conn, batch.digests)
            add_events(conn, batch.events)
        run.batch = _Batch()

    # -- review by a person ----------------------------------------------------------------------

    def held_for_review(self, limit: int = 100) -> list[dict[str, Any]]:
        """Orders waiting for a person (`gateway review`), oldest first."""
        with self.store.engine.connect() as conn:
            return order_repo.held(conn, limit)

    def approve(self, order_id: str, *, by: str = "") -> str:
        """Release an order held for review to its connectors; returns its full id.

        GatewayError when the id matches no held order, or more than one."""
        with self.store.begin() as conn:
            row = self._held_order(conn, order_id)
            if row["reason"] != "NEEDS_REVIEW":
                raise GatewayError(
                    f"order {row['id'][:8]} is held because {row['reason']}: {row['error']} "
                    "It cannot be sent as it is; handle it in the target system and reject it here."
                )
            row["state"], row["reason"], row["error"] = "validated", None, None
            order_repo.review_decision(conn, row["id"], "validated", None, None)
            events: list[dict[str, Any]] = []
            targets = self.linker.targets(row["partner"])
            note = f"approved by {by}" if by else "approved by a person"
            self._queue(conn, [(row, Plan(targets))], events, {row["id"]: f"PO {row['po_number']} {note}"})
            add_events(conn, events)
        return str(row["id"])

    def reject(self, order_id: str, reason: str, *, by: str = "") -> str:
        """Refuse an order held for review (it is never sent); returns its full id."""
        if not reason.strip():
            raise GatewayError("say why the order is rejected (--reason); the partner may be told")
        with self.store.begin() as conn:
            row = self._held_order(conn, order_id)
            who = f" by {by}" if by else ""
            order_repo.review_decision(conn, row["id"], "quarantined", "REJECTED_BY_PERSON", reason.strip()[:2000])
            add_event(conn, "quarantined", order_id=row["id"], message_id=row["message_id"], detail=f"rejected{who}: {reason.strip()}")
        return str(row["id"])

    def reprocess(self, message_id: str, *, by: str = "", accept_reused_control: bool = False) -> tuple[str, int]:
        """Read a refused message again with the current configuration (after a person added
        a sender to a partner, fixed a template, configured a partner, ...).

        Its refused documents are forgotten (their history stays under the message) and the
        message waits for processing again; what was accepted stays, and is skipped. Orders a
        person rejected stay rejected. Returns (full message id, documents to read again).

        `accept_reused_control`: a person checked that the message's interchanges whose control
        number was used before for other content (CONTROL_NUMBER_REUSED, e.g. a partner
        re-sending a complete file under the same ISA13) are genuine; they are read as new
        and their orders go through the usual order-level duplicate checks.
        GatewayError when the message is unknown, waiting already, or has nothing refused."""
        with self.store.begin() as conn:
            msg = by_prefix(conn, t.messages, message_id, "message", "gateway messages", "`gateway messages` lists them")
            if msg["state"] == "received":
                raise GatewayError(f"message {msg['id'][:8]} is waiting to be processed already")
            if accept_reused_control:
                keys = self._take_over_reused(conn, msg)
                message_repo.reopen(conn, msg["id"], msg["state"])
                who = f" by {by}" if by else ""
                add_event(conn, "reprocess", f"reused control number accepted{who}: interchange(s) {', '.join(keys)} read as new", message_id=msg["id"])
                return str(msg["id"]), len(keys)
            if msg["reason"] == "CONTROL_NUMBER_REUSED":
                raise GatewayError(
                    f"message {msg['id'][:8]} reuses an interchange control number; read again it would be refused again. "
                    "If the partner confirms it is genuine, give --accept-reused-control"
                )
            refused = [oid for oid, why in order_repo.refused_of_message(conn, msg["id"]) if why != "REJECTED_BY_PERSON"]
            if msg["state"] != "quarantined" and not refused:
                raise GatewayError(f"message {msg['id'][:8]} has nothing refused to read again")
            if msg["state"] == "quarantined" and msg["attempts"] == 0:  # the source refused it unread
                raise GatewayError(f"message {msg['id'][:8]} was refused before it was read ({msg['reason']}); nothing is stored to read again")
            order_repo.delete_refused(conn, refused)
            message_repo.reopen(conn, msg["id"], msg["state"])
            who = f" by {by}" if by else ""
            what = f"{len(refused)} refused document(s)" if refused else "the whole message"
            add_event(conn, "reprocess", f"read again{who} with the current configuration: {what} (was {msg['state']}{': ' + msg['reason'] if msg['reason'] else ''})", message_id=msg["id"])
        return str(msg["id"]), len(refused)

    def _take_over_reused(self, conn: Connection, msg: dict[str, Any]) -> list[str]:
        """Point the control numbers this message reuses at it, so processing reads them as new."""
        from gateway.formats import detect, get_parser
        from gateway.formats.x12 import X12Parser

        body = message_repo.body(conn, msg["id"])
        digests: dict[str, str] = {}
        if body:
            try:
                fmt = msg["format"] or detect(body[:4096])
                # Read as processing reads it: the partner's profile decides the envelope repairs.
                parser = X12Parser(lenient=self.partners.x12_lenient(msg["partner"])) if fmt == "x12" else get_parser(fmt)
                for ev in parser.parse(io.BytesIO(body), name="reprocess"):
                    if isinstance(ev, InterchangeClosed) and ev.complete and ev.envelope.interchange_key:
                        digests[ev.envelope.interchange_key] = ev.digest
            except (InputRejected, GatewayError, KeyError):
                digests = {}
        rows = interchange_repo.known(conn, sorted(digests)).values()
        keys = sorted(r.key for r in rows if r.message_id != msg["id"] and r.digest != digests[r.key])
        if not keys:
            raise GatewayError(f"message {msg['id'][:8]} reuses no interchange control number; nothing to accept")
        interchange_repo.take_over(conn, keys, msg["id"])
        return keys

    @staticmethod
    def _held_order(conn: Connection, order_id: str) -> dict[str, Any]:
        row = by_prefix(conn, t.orders, order_id, "order", "gateway review", "`gateway review` lists the held ones")
        if row["state"] != "held":
            raise GatewayError(f"order {row['id'][:8]} (PO {row['po_number']}) is {row['state']}, not held for review")
        return row

    @staticmethod
    def _hold_for_review(
        rows: list[dict[str, Any]],
        review: dict[str, list[str]],
        plans: dict[str, Plan],
        events: list[dict[str, Any]],
        mapped: dict[str, str],
    ) -> None:
        """An order read with too little confidence waits for a person (`gateway approve`).

        Decided after linking, so a re-sent copy of an order is still a duplicate and not a
        second order to review; only a new order is held (nothing is queued for it)."""
        for row in rows:
            weak = review.get(row["id"])
            if not weak or row["state"] != "validated" or row["id"] not in plans:
                continue
            plans.pop(row["id"])
            row["state"], row["reason"] = "held", "NEEDS_REVIEW"
            row["error"] = "read with low confidence; check before approving: " + "; ".join(weak)
            lead = mapped.pop(row["id"], "") or f"PO {row['po_number']}"
            events.append(
                {
                    "kind": "held",
                    "order_id": row["id"],
                    "message_id": row["message_id"],
                    "at": utcnow(),
                    "detail": f"{lead}; held for review: {row['error']}",
                }
            )

    def _route_tests(
        self,
        rows: list[dict[str, Any]],
        tests: set[str],
        plans: dict[str, Plan],
        events: list[dict[str, Any]],
        mapped: dict[str, str],
    ) -> None:
        """A test interchange's orders go only to the partner's test connectors; without
        any they are held (TEST_INTERCHANGE), never sent to a production connector."""
        by_name = {p.name: p for p in self.partners.configs}
        for row in rows:
            plan = plans.get(row["id"])
            if row["id"] not in tests or plan is None:
                continue
            partner = by_name.get(row["partner"] or "")
            targets = list(getattr(partner, "test_connectors", None) or [])
            if targets:
                plan.connectors = targets
                plan.after = {c: n for c, n in plan.after.items() if c in targets}
                plan.references = {c: r for c, r in plan.references.items() if c in targets}
                continue
            plans.pop(row["id"])
            row["state"], row["reason"] = "held", "TEST_INTERCHANGE"
            row["error"] = (
                "the interchange is marked as a test (X12 ISA15 T / EDIFACT UNB test indicator 1) and "
                f"partner {row['partner'] or '(none)'} has no test_connectors; it is never sent to a production connector"
            )
            lead = mapped.pop(row["id"], "") or f"PO {row['po_number']}"
            events.append({"kind": "held", "order_id": row["id"], "message_id": row["message_id"], "at": utcnow(), "detail": f"{lead}; held: {row['error']}"})

    def _email_partner(self, body: bytes) -> tuple[str | None, str | None]:
        """(partner, None) for a verified sender, or (None, why not)."""
        from email import policy
        from email.parser import BytesHeaderParser

        from gateway.formats.email_sender import verify_sender

        headers = BytesHeaderParser(policy=policy.default).parsebytes(body)
        refusals = []
        for p in self.partners.configs:
            if not p.email_senders:
                continue
            check = verify_sender(headers, p.email_senders, p.email_require_auth, self.authserv_id)
            if check.ok:
                return p.name, None
            if "allow-list" not in check.reason:
                refusals.append(f"{p.name}: {check.reason}")
        if refusals:
            return None, "; ".join(refusals)
        check = verify_sender(headers, [], False, None)
        who = check.address or "the sender"
        return None, check.reason if "allow-list" not in check.reason else f"{who} is not an e-mail sender of any configured partner"

    # -- acknowledgements -------------------------------------------------------------------------

    @staticmethod
    def _collect_ack(ev: Any, acks: AckCollector) -> None:
        if isinstance(ev, InterchangeOpened):
            acks.opened(ev.envelope, ev.source)
        elif isinstance(ev, Translated):
            acks.document(ev.envelope, ev.doc_type, ev.control_number)
        elif isinstance(ev, Rejected) and ev.envelope is not None:
            acks.document(ev.envelope, ev.doc_type, ev.control_number, ev.reason, ev.message, ev.position)

    def _acknowledge(self, run: _Run, body: bytes, partner: str | None) -> None:
        assert run.acks is not None
        with self.store.begin() as conn:
            # Re-processing after a crash must not acknowledge twice.
            if ack_repo.exists_for(conn, run.message_id):
                return
            planned = plan_acks(run.acks, body, self.partners.configs, self.partners, conn, forced_partner=partner)
            store_acks(conn, run.message_id, planned, run.order_ids)
        # Sent by the dispatch job (gateway.acks.delivery) after claiming: never from here.

    def _confirm(self, message_id: str, body: bytes, partner: str) -> None:
        """Reply to a verified partner's order e-mail with what was understood (stored here,
        sent by the dispatch job)."""
        from email import policy
        from email.parser import BytesHeaderParser

        from gateway.email_reply import (
            OrderOutcome,
            OutcomeState,
            build_confirmation,
            make_message_id,
            reply_refusal,
        )
        from gateway.formats.email_sender import verify_sender
        from gateway.model import Order

        cfg = next((p for p in self.partners.configs if p.name == partner), None)
        if cfg is None or not cfg.email_confirmation:
            return
        headers: Any = BytesHeaderParser(policy=policy.default).parsebytes(body)
        with self.store.begin() as conn:
            # Re-processing after a crash must not reply twice.
            if ack_repo.exists_for(conn, message_id, "MAILREPLY"):
                return
            refusal = reply_refusal(headers, own_addresses=[self.smtp.from_addr_spec])
            if refusal is not None:
                add_event(conn, "reply_skipped", f"no confirmation e-mail: {refusal}", message_id=message_id)
                return
            rows = order_repo.for_confirmation(conn, message_id)
            orders, outcomes = [], []
            words: dict[str, OutcomeState] = {"validated": "accepted", "dispatched": "accepted", "held": "review", "duplicate": "duplicate", "stale": "duplicate"}
            for r in rows:
                state = words.get(r["state"], "rejected")
                reason = "" if state in ("accepted", "duplicate") else (r["error"] or r["reason"] or "it could not be read")
                outcomes.append(OrderOutcome(r["po_number"], state, reason))
                if r["data"] is not None:
                    data = r["data"]
                    orders.append(Order.model_validate_json(data) if isinstance(data, str) else Order.model_validate(data))
            if not rows:
                return
            sender = verify_sender(headers, cfg.email_senders, cfg.email_require_auth, self.authserv_id).address
            if sender is None:
                return
            reply = build_confirmation(
                headers, to=sender, orders=orders, outcomes=outcomes, from_address=self.smtp.from_address,
                message_id=make_message_id(message_id, self.smtp.from_domain), now=utcnow(),
            )
            ack_repo.queue_reply(
                conn, message_id=message_id, order_id=rows[0]["id"], partner=partner, body=reply.as_string(policy=policy.SMTP), channel="smtp"
            )
            add_event(conn, "ack_queued", f"confirmation e-mail to {sender} listing {len(rows)} order(s)", message_id=message_id, order_id=rows[0]["id"])

    def _queue(
        self,
        conn: Connection,
        rows: list[tuple[dict[str, Any], Plan | None]],
        events: list[dict[str, Any]],
        mapped: dict[str, str],
    ) -> None:
        """Outbox rows for each accepted order, per its plan; one 'validated' event each."""
        now = self.store.db_now(conn)  # due by the clock claims are measured on (reliability F19)
        outbox: list[dict[str, Any]] = []
        for row, plan in rows:
            if row["state"] != "validated" or plan is None:
                continue
            outbox.extend(
                new_deliveries(
                    row["id"],
                    plan.connectors,
                    now,
                    action=plan.action,
                    after=plan.after,
                    references=plan.references,
                )
            )
            what = (
                "queued"
                if plan.action == "create"
                else f"queued as an {plan.action}"
                if plan.action == "update"
                else "queued as a cancel"
            )
            lead = mapped.pop(row["id"], "") or f"PO {row['po_number']} version {row['version']}"
            events.append(
                {
                    "kind": "validated",
                    "order_id": row["id"],
                    "message_id": row["message_id"],
                    "at": now,
                    "detail": f"{lead}; {what} for {', '.join(plan.connectors) or 'no connector'}",
                }
            )
        order_repo.queue_deliveries(conn, outbox)

    def _finish_message(
        self,
        conn: Connection,
        message_id: str,
        state: str,
        reason: str | None,
        error: str | None,
        *,
        warnings: list[str] | None = None,
        fmt: str | None = None,
        orders: int = 0,
        rejected: int = 0,
    ) -> None:
        values: dict[str, Any] = {
            "reason": reason,
            "error": error,
            "order_count": orders,
            "rejected_count": rejected,
        }
        if warnings is not None:
            values["warnings"] = list(dict.fromkeys(warnings))[:200]
        if fmt is not None:
            values["format"] = fmt
        message_repo.finish(conn, message_id, "received", state, values)
        detail = f"{reason}: {error}" if reason else f"{orders} orders accepted, {rejected} quarantined"
        add_event(conn, state, detail, message_id=message_id)


def _cut_off(env: Any, run: _Run) -> bool:
    """Whether the interchange of `env` was found cut off (gateway.formats.envelope)."""
    return bool(run.truncated) and (env.interchange_index, env.interchange_control_number or "") in run.truncated


def _is_test(env: Any) -> bool:
    """A test interchange: X12 ISA15 other than P (T test, I information), EDIFACT UNB 0035 1."""
    if env is None or not env.test_indicator:
        return False
    value = str(env.test_indicator).strip().upper()
    if env.standard == "x12":
        return value != "P"
    return env.standard == "edifact" and value == "1"


def _sniff(body: bytes) -> str | None:
    from gateway.errors import InputRejected
    from gateway.formats import detect

    try:
        return detect(body[:4096])
    except InputRejected:
        return None
