"""Step 2: parse, map and validate a stored message; write its orders, their outbox rows
and their history in batches, each its own committed transaction, so a crash anywhere
resumes cleanly.

Orders are keyed by (message, position), so re-processing after a crash skips what was
already written. An interchange seen before (same sender and control number) creates
nothing new (gateway.processing.interchanges); an order whose partner and PO number were
already received does not reach a connector twice (gateway.versions). Acknowledgements and
confirmation e-mails are only stored (gateway.processing.acknowledge): processing performs no
network I/O.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic_core import to_json

from gateway import crashpoints
from gateway.acks.outbound import AckCollector
from gateway.errors import InputRejected
from gateway.formats import detect_body
from gateway.formats.base import InterchangeClosed, InterchangeOpened
from gateway.formats.envelope import incomplete_interchanges
from gateway.model import Order, Purpose, content_digest
from gateway.parts import part_count
from gateway.processing.acknowledge import (
    acked_already,
    acknowledge,
    collect_ack,
    confirm,
    store_ready_acks,
)
from gateway.processing.decide import DECIDE_CHUNK, Decider, StockStep, apply, decide_chunk
from gateway.processing.decide_worker import LARGE_BYTES, DecidePool, RemoteRun, WorkerGone
from gateway.processing.email_trust import email_partner
from gateway.processing.interchanges import (
    close_interchange,
    decide_interchanges,
    forget_settled,
    open_interchange,
)
from gateway.processing.review import hold_for_review
from gateway.processing.run import Batch, Run, is_cut_off, is_test
from gateway.processing.stock import StockFollower
from gateway.provenance import DERIVED_FORMATS
from gateway.routing import Router
from gateway.store import RawJSON, Store, add_event, add_events, new_id, utcnow
from gateway.store import documents as documents_repo
from gateway.store import findings as findings_repo
from gateway.store import interchanges as interchange_repo
from gateway.store import masterdata as masterdata_repo
from gateway.store import messages as message_repo
from gateway.store import orders as order_repo
from gateway.store.masterdata import StockKeeper
from gateway.store.outbox import new_deliveries
from gateway.translate import PartnerDirectory, Rejected, Translated, translate
from gateway.validation import validate
from gateway.versions import Linker, Plan

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = ["ProcessStats", "Processor"]

# process_pending claims up to this many waiting messages in one transaction, fewer when
# their bodies pass _CLAIM_BYTES together: one lease update for a group of small files.
_CLAIM_GROUP = 16
_CLAIM_BYTES = 1_000_000

log = logging.getLogger(__name__)


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


class Processor:
    """Claims stored messages and turns each into orders, deliveries and history."""

    def __init__(
        self,
        store: Store,
        *,
        partners: PartnerDirectory,
        linker: Linker,
        batch_orders: int = 500,
        max_attempts: int = 3,
        lease_seconds: float = 120.0,
        provenance: bool = True,
        authserv_id: str | None = None,
        smtp: Any = None,
        rules: Decider | None = None,
        reserve_stock: bool = False,
        router: Router | None = None,
        per_part: Collection[str] = (),
        decide_pool: DecidePool | None = None,
    ):
        self.store = store
        self.decide_pool = decide_pool if rules is not None else None  # workers that decide beside the reading
        # Connectors that get an order the routing split once per part (gateway.parts).
        self.per_part = frozenset(per_part)
        self.rules = rules  # the rules engine for a batch's transaction (gateway.processing.decide); None: no rules
        # Accepted orders reserve their stock (the stock rule's needs) in the batch's transaction;
        # only when the master data is the store's (a CSV folder has no reservations to keep).
        self.keeper = StockKeeper(store) if reserve_stock and rules is not None else None
        self.router = router  # where accepted orders ship from and by whom (gateway.routing)
        self.stock = StockFollower(self.keeper, rules, router) if self.keeper is not None and rules is not None else None
        self.partners = partners
        self.linker = linker
        self.batch_orders = batch_orders
        self.max_attempts = max_attempts
        self.lease_seconds = lease_seconds
        self.provenance = provenance
        self.authserv_id = authserv_id
        self.smtp = smtp  # gateway.smtp.SmtpConfig: order e-mails get a confirmation reply

    def process_pending(self, limit: int = 100, *, each: Callable[..., ProcessStats] | None = None) -> ProcessStats:
        """Process stored messages that are waiting (or whose processing was interrupted).

        Several small waiting messages are claimed in one transaction (one lease update for
        the group), then processed one by one, each as before (attempts counted first, its
        orders and its end in their own commits). What is left of a group when processing
        stops early (an error, or half the lease gone) is released at once. A node killed
        mid-group strands the rest of it until the lease ends on PostgreSQL; on SQLite the
        next start releases every lease (Gateway.start_node).
        """
        stats = ProcessStats()
        process = each or self.process  # the facade passes its own (gateway.pipeline)
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
                        stats.add(process(mid, claimed=True))
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
        self,
        message_id: str,
        *,
        claimed: bool = False,
        format: str | None = None,
        partner: str | None = None,
        durable: bool = False,
        body: bytes | None = None,
    ) -> ProcessStats:
        """Process one stored message. Its commits may be redone after a power loss
        (Store.redoable) unless `durable`: a caller that acknowledges the source with the
        outcome (a mailbox routes a mail by it) needs that outcome on disk first.

        `body`: the bytes just received as `message_id`, when the caller still holds them
        (`gateway ingest`): not read back from the store, so a large file is held once."""
        if durable:
            return self._process(message_id, format=format, partner=partner, body=body)
        with self.store.redoable():
            return self._process(message_id, format=format, partner=partner, body=body)

    def _process(self, message_id: str, *, format: str | None, partner: str | None, body: bytes | None = None) -> ProcessStats:
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
            if body is None:
                body = message_repo.read_body(conn, message_id)
            done = order_repo.done_indexes(conn, message_id)
            # Read before (a crash, or `gateway reprocess`): the store's interchange rows of this
            # message are its own, not repeats (gateway.processing.interchanges).
            read_before = bool(done) or attempts > 1 or interchange_repo.any_of_message(conn, message_id)
        fmt = format or row["format"]
        partner = partner or row["partner"]
        name = row["display_name"] or "<input>"
        kind = fmt or detect_body(body)  # a folder's file is recognised by its content
        if self.partners.enforced and kind == "email":
            # Who sent it decides whose orders these are; an e-mail is never accepted on
            # the strength of its From header alone (see gateway.formats.email_sender).
            found, problem, reason = email_partner(body, self.partners, self.authserv_id)
            if problem is not None:
                with self.store.begin() as conn:
                    self._finish_message(conn, message_id, "quarantined", reason, problem, fmt="email")
                stats.rejected_messages = 1
                return stats
            partner = partner or found
            verified = partner if found else None
        else:
            verified = None
        run = Run(message_id, acks=AckCollector(body) if self.partners.wants_acks else None, ack_partner=partner)
        run.resumed = read_before
        if run.acks is not None and (done or attempts > 1):
            acked_already(self.store, run)
        # Known before any of its orders is written: a cut-off interchange sends nothing.
        run.truncated = incomplete_interchanges(body)
        run.large = len(body) >= LARGE_BYTES
        if run.large and self.decide_pool is not None:
            self.decide_pool.warm()  # its orders are decided beside the reading once it is ready
        try:  # the decide worker lent to this run goes back however it ends
            try:
                events = translate(
                    io.BytesIO(body),
                    name=name,
                    format=fmt,
                    partner=partner,
                    partners=self.partners,
                    message_id=message_id,
                    require_partner=self.partners.enforced,
                    # X12 and EDIFACT orders' sources are read again when asked (gateway.provenance)
                    trace=self.provenance and kind not in DERIVED_FORMATS,
                )
                for ev in events:
                    if run.acks is not None:
                        collect_ack(ev, run.acks)
                    if isinstance(ev, InterchangeOpened):
                        run.warnings.extend(ev.warnings)
                        open_interchange(ev, run)
                    elif isinstance(ev, InterchangeClosed):
                        close_interchange(ev, run)
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
        finally:
            self._give_back_worker(run)
        crashpoints.hit("after_orders")
        with self.store.begin() as conn:
            counts = order_repo.state_counts(conn, message_id)
            total = sum(counts.values())
            good = total - sum(counts.get(s, 0) for s in ("quarantined", "duplicate", "stale"))
            if run.truncated_seen and good == 0:
                self._finish_message(conn, message_id, "quarantined", "TRUNCATED", "; ".join(run.truncated_seen), warnings=run.warnings, fmt=fmt, orders=0, rejected=total)
                stats.rejected_messages = 1
            elif run.reused and good == 0:
                self._finish_message(
                    conn, message_id, "quarantined", "CONTROL_NUMBER_REUSED",
                    f"interchange(s) {', '.join(run.reused)} reuse a control number received before with other content "
                    f"(a partner's bug or a replay); after checking, `gateway reprocess {message_id[:8]} --accept-reused-control` reads it as new",
                    warnings=run.warnings, fmt=fmt, orders=0, rejected=total,
                )
                stats.rejected_messages = 1
            elif run.ack_problems and good == 0 and len(run.ack_problems) == total:  # only acknowledgements, some refused
                self._finish_message(
                    conn, message_id, "quarantined", run.ack_problems[0][0], "; ".join(text for _, text in run.ack_problems)[:4000],
                    warnings=run.warnings, fmt=fmt, orders=0, rejected=total,
                )
                stats.rejected_messages = 1
            elif run.acks_read and not total:  # only acknowledgements, all recorded: a parsed message, outcome "ack"
                self._finish_message(conn, message_id, "parsed", "ACK", "; ".join(run.acks_read)[:4000], warnings=run.warnings, fmt=fmt)
            elif not total and run.duplicates == 0 and not run.skipped:
                self._finish_message(conn, message_id, "quarantined", "NO_ORDERS", "the message holds no order documents", warnings=run.warnings, fmt=fmt)
                stats.rejected_messages = 1
            elif total and counts.get("quarantined", 0) == total:
                self._finish_message(conn, message_id, "quarantined", "ALL_REJECTED", f"none of the {total} documents could be accepted", warnings=run.warnings, fmt=fmt, orders=0, rejected=total)
                stats.rejected_messages = 1
            else:
                self._finish_message(conn, message_id, "parsed", None, None, warnings=run.warnings, fmt=fmt, orders=good, rejected=total - good)
        if run.acks is not None:
            acknowledge(self.store, self.partners, run)
        if verified is not None and self.smtp is not None:
            confirm(self.store, self.partners, self.smtp, self.authserv_id, message_id, body, verified)
        stats.orders = run.orders
        stats.quarantined = run.rejected
        stats.duplicates = run.duplicates
        return stats

    def _add_order(self, ev: Translated, run: Run) -> None:
        order, message_id, batch = ev.order, run.message_id, run.batch
        now = utcnow()
        oid = new_id()
        # pydantic serializes in Rust; the same text is stored and hashed (`content_digest`)
        # to recognise a re-sent order whatever envelope it came in.
        text = order.model_dump_json()
        data = RawJSON(text)
        content_hash = content_digest(text)
        # A partner's PO number names one order whatever the channel (a UBL change may follow
        # an X12 original); without a configured partner, the channel and sender stand in.
        if order.partner:
            order_key: str | None = f"partner|{order.partner}|{order.po_number}"[:300]
        else:
            sender = f"{order.source.sender_qualifier or ''}:{order.source.sender_id or ''}"
            order_key = f"{order.channel.value}|{sender}|{order.po_number}"[:300]
        testing = is_test(ev.envelope)
        if testing and order_key:
            order_key = f"test|{order_key}"[:300]  # never linked with the production order
        problems = validate(order)
        state, reason, error = "validated", None, None
        cut_off = is_cut_off(ev.envelope, run)
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
            # serialized here in Rust, not by the store's json.dumps (a quarter of ingest CPU)
            "provenance": RawJSON(to_json(ev.provenance).decode()) if ev.provenance else None,
            "version": 1,
            "supersedes": None,
            "_ix": ev.envelope.interchange_index,
        }
        if testing:
            row["_test"] = True
        batch.orders.append(row)
        if run.acks is not None and order.partner and not cut_off:
            run.acks.order(order, ev.envelope, problems, oid)
        # Mapped and validated in the same instant: one event, whose detail says both.
        mapped = f"PO {order.po_number}, {len(order.lines)} line(s) from {ev.position}"
        if state == "quarantined":
            run.rejected += 1
            batch.events.append({"kind": "quarantined", "order_id": oid, "message_id": message_id, "at": now, "detail": f"{mapped}; {reason}: {error}"})
        else:
            run.orders += 1
            row["_mapped"] = mapped
            if self.rules is not None and order.purpose == Purpose.ORIGINAL and not order.lines_are_changes:
                # a worker reads the order's JSON: the canonical order is not kept alive for it
                run.to_decide.append((row, order if run.remote is None else None))
                if len(run.to_decide) >= DECIDE_CHUNK:
                    self._decide(run)
            if ev.review:
                row["_review"] = ev.review

    def _read_ack(self, ev: Rejected, run: Run) -> None:
        """A partner's acknowledgement: recorded on the documents we sent it, in its own
        transaction; what matches nothing becomes an UNMATCHED_ACK row for a person."""
        assert ev.ack is not None
        partner = run.ack_partner or (self.partners.for_envelope(ev.envelope) if ev.envelope is not None else None)
        with self.store.begin() as conn:
            unmatched = documents_repo.record_ack(conn, partner, ev.ack, run.message_id)
        run.acks_read.append(ev.ack.summary())
        if not unmatched:
            return
        who = partner or (PartnerDirectory.describe(ev.envelope) if ev.envelope is not None else "an unknown sender")
        if partner is None:
            why = f"{who} is not a configured trading partner, so nothing we sent can be matched"
        else:
            named = ", ".join(
                (f"group {v.control}" if v.level == "group" else f"interchange {v.control}") + (f" set {v.set_control}" if v.set_control else "")
                for v in unmatched
            )
            what = "interchange control number" if ev.ack.kind in ("TA1", "CONTRL") else "GS06 group control number"
            why = f"no document we sent to {partner} has the {what} it acknowledges ({named})"
        self._add_rejection(Rejected("UNMATCHED_ACK", why, ev.position, ev.index, ev.envelope, ev.doc_type, ev.control_number), run)

    def _add_rejection(self, ev: Rejected, run: Run) -> None:
        if ev.ack is not None:
            self._read_ack(ev, run)
            return
        if ev.reason in ("UNMATCHED_ACK", "MALFORMED_ACK"):
            run.ack_problems.append((ev.reason, f"{ev.doc_type or ''} {ev.control_number or ''}: {ev.message}".strip()))
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

    def _decide(self, run: Run) -> None:
        """The rules over the new orders read since the last chunk (their master data and
        order history read on a connection of their own): from the second chunk of a message
        on, by a decide worker when one is ready (gateway.processing.decide_worker)."""
        if not run.to_decide or self.rules is None:
            return
        if run.remote is None and run.large and self.decide_pool is not None and not run.remote_failed:
            worker = self.decide_pool.lend()
            if worker is not None:
                run.remote = RemoteRun(worker, new_id())
        if run.remote is not None:
            rows = [row for row, _ in run.to_decide]
            run.to_decide = []
            try:
                run.remote.send(rows, run.acks is not None, run.fingerprints)
            except WorkerGone as exc:
                self._decide_left(run, exc)
            return
        with Store.reading(), self.store.engine.connect() as conn:
            decide_chunk(self.rules(conn), run.to_decide, run.fingerprints, answers=run.acks is not None)
        run.to_decide = []

    def _collect(self, run: Run) -> None:
        """Every decision the worker still owes this run, before its batch is written."""
        if run.remote is None or not run.remote.pending:
            return
        try:
            # bounded: the batch's transaction is open (a chunk takes milliseconds; a hung worker is replaced)
            run.remote.collect(run.fingerprints, timeout=min(self.lease_seconds, 30.0))
        except WorkerGone as exc:
            self._decide_left(run, exc)

    def _decide_left(self, run: Run, exc: WorkerGone) -> None:
        """The worker failed or died: what it still held is decided here, in the order sent,
        and the rest of the message too."""
        assert run.remote is not None and self.rules is not None and self.decide_pool is not None
        log.warning("decide worker: %s; deciding in process", exc, extra={"message_id": run.message_id})
        rows = run.remote.left()
        self.decide_pool.give_back(run.remote.worker, healthy=False)
        run.remote, run.remote_failed = None, True
        if rows:
            pending = [(row, Order.model_validate_json(str(row["data"]))) for row in rows]
            with Store.reading(), self.store.engine.connect() as conn:  # also inside the batch's transaction
                decide_chunk(self.rules(conn), pending, run.fingerprints, answers=run.acks is not None)

    def _give_back_worker(self, run: Run) -> None:
        if run.remote is not None and self.decide_pool is not None:
            remote, run.remote = run.remote, None
            log.info(
                "message %s: %d order(s) decided by decide worker %s", run.message_id, remote.decided, remote.worker.process.pid,
                extra={"message_id": run.message_id},
            )
            healthy = not remote.pending
            if healthy:
                try:
                    remote.worker.post(("end", remote.key))
                except WorkerGone:
                    healthy = False
            self.decide_pool.give_back(remote.worker, healthy=healthy)

    def _flush(self, run: Run) -> None:
        """Write a batch of orders with their outbox rows and events in one transaction."""
        self._decide(run)
        batch = run.batch
        if not (batch.orders or batch.events or batch.digests or run.undecided or (run.acks is not None and run.acks.ready())):
            return
        with self.store.begin() as conn:
            decide_interchanges(conn, run)
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
                hold_for_review(batch.orders, review, plans, batch.events, mapped)
            if tests:
                self._route_tests(batch.orders, tests, plans, batch.events, mapped)
            found: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
            stock: StockStep | None = None
            if self.rules is not None:
                # The worker's last decisions are awaited only now: linking above ran meanwhile.
                self._collect(run)
                stock = StockStep(self.keeper, conn, self.router) if self.keeper is not None else None
                found_rows, decided, _accepted = apply(batch.orders, plans, batch.events, mapped, run.acks, stock)
                found = (found_rows, decided)
                refused = sum(1 for r in decided if r["outcome"] == "reject")
                run.orders -= refused
                run.rejected += refused
            order_repo.insert_batch(conn, batch.orders)
            findings_repo.insert(conn, *found)
            if stock is not None:
                masterdata_repo.save_routes(conn, stock.routes)
            if self.stock is not None:
                self.stock.versions(conn, [(row, plans.get(row["id"])) for row in batch.orders])
            self.queue(
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
                if self.stock is not None:
                    self.stock.versions(conn, released)
                self.queue(conn, released, batch.events, {})
                keys = sorted(
                    {r["order_key"] for r, _ in released if r["state"] in ("validated", "held")}
                )
            interchange_repo.set_digests(conn, batch.digests)
            forget_settled(run, batch.digests)
            if run.acks is not None:
                # Acknowledged as the file is read: the interchanges closed so far and the orders
                # of this batch, committed with them (issue 14 #18).
                written = {r["id"] for r in batch.orders if r["reason"] != "TRUNCATED"}
                store_ready_acks(conn, self.partners, run, written)
            add_events(conn, batch.events)
        run.batch = Batch()

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

    def queue(
        self,
        conn: Connection,
        rows: list[tuple[dict[str, Any], Plan | None]],
        events: list[dict[str, Any]],
        mapped: dict[str, str],
    ) -> None:
        """Outbox rows for each accepted order, per its plan; one 'validated' event each. A new
        order the routing split reaches each `per_part` connector once per part (its route
        is stored before it is queued); a change or cancellation reaches the parts its plan
        names (gateway.versions)."""
        now = self.store.db_now(conn)  # due by the clock claims are measured on (reliability F19)
        outbox: list[dict[str, Any]] = []
        split = self._split(conn, rows)
        for row, plan in rows:
            if row["state"] != "validated" or plan is None:
                continue
            if row["id"] in split and not plan.parts:  # a plan that names its parts (a dead part edited) keeps them
                plan.parts = {c: split[row["id"]] for c in plan.connectors if c in self.per_part}
            outbox.extend(
                new_deliveries(
                    row["id"],
                    plan.connectors,
                    now,
                    action=plan.action,
                    after=plan.after,
                    references=plan.references,
                    parts=plan.parts,
                    part_numbers=plan.part_numbers,
                    part_after=plan.part_after,
                    part_references=plan.part_references,
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

    def _split(self, conn: Connection, rows: list[tuple[dict[str, Any], Plan | None]]) -> dict[str, int]:
        """order id -> its number of parts, for the new orders among `rows` that the routing
        split and that go to a per-part connector."""
        new = [
            row["id"] for row, plan in rows
            if plan is not None and plan.action == "create" and row["state"] == "validated" and self.per_part.intersection(plan.connectors)
        ]
        if not new:
            return {}
        routes = masterdata_repo.routes_of(conn, new)
        return {oid: n for oid, route in routes.items() if (n := part_count(route)) > 1}

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
        log.info("message %s %s: %s", message_id, state, detail, extra={"message_id": message_id})
