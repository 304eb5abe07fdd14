"""The dispatcher: claim due outbox rows, send them in parallel, record the results in groups.

An outbox row is an order for a connector, or a document we generated (an acknowledgement or
a confirmation e-mail) for a channel: given `channels` (`gateway.acks.channels.ChannelSet`:
folder, SFTP and SMTP channels), the dispatcher claims and sends documents too, through the
same claims, retry policy (`document_policy`, the configuration's `dispatch.ack_retry`), dead
letters and replay as orders. A document's result is always recorded durably (an e-mail
cannot recognise a repeat), and the channels are closed at the end of each pass.

A pass (`run_once`) claims due rows (committed before anything is sent, see
`gateway.store.outbox`) and hands each delivery to its connector on a thread pool of
`config.workers` threads (at most `config.connector_workers` at once to one connector).
Claims are made a window at a time, so the pool never runs dry and no claimed row waits in
the queue long enough for its lease to run down: the window is sized from how long sends
take (a slow target gets about one claim per worker, a fast one up to `config.batch`).
Results are recorded as they come in, every result that arrived meanwhile in one
transaction (`outbox.record`), so the store is written once per group, not per delivery.

`drain` runs passes while rows are due; `serve` (the service) drains, then sleeps until
`wake()` is called (an order was queued), the next row is due, or `poll_seconds` passed.
Times are the database's (`Store.db_now`) unless a clock is injected (tests).

What a connector raised decides what happens next:

    TransientError            retry per the connector's RetryPolicy (honouring retry_after),
                              dead once the policy is exhausted
    PermanentError            dead at once, for a person to fix and replay
    any other exception       permanent, unless the connector declares `idempotent`
                              (a blind retry of a non-idempotent call can post an order twice)
    ConfigError (a document)  its channel is not configured (any more): dead at once

Circuit breaker and rate limit (given `breakers` and `rates`, by connector; `gateway.app`
passes every connector's `breaker:` and `rate_per_second`). A connector whose breaker is open
(`gateway.store.breakers`, shared by every node) has none of its rows claimed: they stay
`pending` and use no attempt. Once its `open_seconds` passed, one node takes the probe and
claims one row of it; the probe reaching the target closes the breaker, a transient failure
opens it again. Only transient failures count, and only in a row; a result that never reached
the target (a refusal of ours, a connector bug) counts for nothing. Opening and closing are
logged at WARNING and written to the history. A rate limit spaces the sends of this node to
one connector `1 / rate_per_second` apart (a token bucket of one, shared by the threads).

The attempt is counted by the claim itself, committed before the send (`claim_due`): a
delivery whose send kills the worker comes back after its lease as attempt n+1, and is dead
once its policy's `max_attempts` are used up, never sent again.

A worker that dies between the target's answer and the commit leaves the row `in_flight`;
when its lease ends the row is claimed again and sent with the same idempotency key
(crash point ``after_http_before_commit`` exercises exactly that window).

For the same reason the results of deliveries to connectors that declare `idempotent` or
`idempotency_key` are recorded redoably (`Store.redoable`: no fsync of their own; the next
claim's durable commit persists them): losing that commit with the machine reopens the same
window, a repeat carrying the same key. The claim before a send stays fully durable, and so
does a result for a connector that cannot recognise a repeat (an e-mail), whose loss would
send it twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Any, Protocol

from gateway import crashpoints
from gateway.config import DispatchConfig
from gateway.connector import Connector, Receipt
from gateway.errors import (
    ConfigError,
    DeliveryError,
    PermanentError,
    StoreUnavailable,
    TransientError,
)
from gateway.plugins import BreakerConfig
from gateway.retry import RetryPolicy
from gateway.store import Store
from gateway.store import breakers as breaker_store
from gateway.store.outbox import (
    ClaimedDelivery,
    Failed,
    Refused,
    Result,
    Sent,
    claim_due,
    loggable,
    next_due,
    record,
)

__all__ = ["DispatchStats", "Dispatcher", "DocumentChannels", "RateLimit"]

log = logging.getLogger(__name__)

_UNEXPECTED_CHARS = 300
_MIN_WAIT = 0.01  # seconds between two passes that found nothing to claim
_GATHER_SECONDS = 0.004  # how long results are gathered for one recording transaction


class DocumentChannels(Protocol):
    """Where documents go (`gateway.acks.channels.ChannelSet`), shared by the sending threads."""

    def send(self, document: ClaimedDelivery) -> str:
        """Deliver one claimed document through the channel its row names; how, for the history."""
        ...

    def idempotent(self, channel: str) -> bool:
        """Whether a repeat through `channel` has one effect (an unknown error may be retried)."""
        ...

    def close(self) -> None: ...


@dataclass(slots=True)
class DispatchStats:
    """What one pass (or a run of passes) did."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    lost: int = 0  # results not recorded: the claim had expired, or the store was unavailable
    idle: bool = True  # run_until_idle: nothing left pending or in flight when it returned

    def add(self, other: DispatchStats) -> None:
        self.claimed += other.claimed
        self.sent += other.sent
        self.retried += other.retried
        self.dead += other.dead
        self.lost += other.lost


class RateLimit:
    """At most `per_second` calls a second from the threads sharing it: each caller takes the
    next free slot, `1 / per_second` after the previous one, and sleeps until it comes (a
    bucket of one token: no bursts). `clock` (monotonic seconds) and `sleep` are injectable."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.gap = 1.0 / per_second
        self.clock = clock
        self.sleep = sleep
        self._next = float("-inf")
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Return when this caller's slot has come."""
        with self._lock:
            now = self.clock()
            slot = max(now, self._next)
            self._next = slot + self.gap
        if slot > now:
            self.sleep(slot - now)


class Dispatcher:
    """Sends due outbox rows through their connectors, with retries and dead letters.

    `connectors` and `policies` are keyed by connector name; rows for connectors this node
    does not have are left for a node that does. With `channels`, it sends the documents too
    (acknowledgements and confirmation e-mails), retried per `document_policy`. `steps`
    (connector -> the connectors it comes after, `GatewayConfig.steps`) holds a step back
    until its earlier steps of the same order are sent (see `gateway.store.outbox`). `clock` returns an aware UTC datetime
    (default: the database's clock) and `sleep` waits a number of seconds; tests inject both
    so a back-off costs no real time. `breakers` (connector -> BreakerConfig) turns on the
    circuit breaker of those connectors, `rates` (connector -> sends per second) their rate
    limit, timed by `monotonic` (see the module docstring).
    """

    def __init__(
        self,
        store: Store,
        connectors: Mapping[str, Connector],
        policies: Mapping[str, RetryPolicy],
        config: DispatchConfig,
        clock: Callable[[], dt.datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        channels: DocumentChannels | None = None,
        document_policy: RetryPolicy | None = None,
        steps: Mapping[str, Collection[str]] | None = None,
        breakers: Mapping[str, BreakerConfig] | None = None,
        rates: Mapping[str, float | None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.store = store
        self.channels = channels
        self.document_policy = document_policy or _DEFAULT_POLICY
        self.connectors = dict(connectors)
        self.policies = dict(policies)
        self.steps = {name: tuple(earlier) for name, earlier in (steps or {}).items()}
        self.config = config
        self._clock = clock
        self.sleep = sleep
        self.rand = rand
        self._wake = threading.Event()
        # Set when the service stops (reliability F21): a pass in progress claims no more
        # rows; what it has claimed is sent and recorded.
        self.stopping = threading.Event()
        per_connector = min(config.connector_workers or config.workers, config.workers)
        self._limits = {name: threading.BoundedSemaphore(per_connector) for name in self.connectors}
        self.breakers = {n: (b.failures, b.open_seconds) for n, b in (breakers or {}).items() if n in self.connectors}
        self._breaker_states: dict[str, breaker_store.Breaker] = {}  # as read at the start of the pass
        self._rates = {n: RateLimit(r, monotonic, sleep) for n, r in (rates or {}).items() if r and n in self.connectors}
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        # Seconds one send takes (moving average): sizes the claim window (see the docstring).
        self._send_seconds = config.lease_seconds / 4

    def policy(self, connector: str) -> RetryPolicy:
        return self.policies.get(connector) or _DEFAULT_POLICY

    @property
    def documents(self) -> bool:
        """Whether this dispatcher sends documents (it has their channels)."""
        return self.channels is not None

    def clock(self) -> dt.datetime:
        """Now, on the injected clock or else the database's."""
        return self._clock() if self._clock is not None else self.store.db_now()

    def _claim_time(self) -> dt.datetime | None:
        return self._clock() if self._clock is not None else None  # None: the claim reads the database's

    def wake(self) -> None:
        """Something was queued: a serving dispatcher looks at once instead of at its next poll."""
        self._wake.set()

    @property
    def pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.config.workers, thread_name_prefix="dispatch")
            return self._pool

    # -- one pass ------------------------------------------------------------------------------

    def run_once(self) -> DispatchStats:
        """Claim and send up to `config.batch` due deliveries; returns what happened.

        While sends are under way the next window is claimed as soon as there is room, and
        results are recorded as they arrive (all that arrived meanwhile in one transaction).
        """
        stats = DispatchStats()
        try:
            self._pass(stats)
        finally:
            if self.channels is not None:
                self.channels.close()  # an SFTP session or SMTP connection is not kept between passes
        return stats

    def _pass(self, stats: DispatchStats) -> None:
        names = set(self.connectors)
        workers = self.config.workers
        running: dict[Future[Result], ClaimedDelivery] = {}
        exhausted = False  # a claim found fewer rows than it asked for
        if self.breakers and not self.stopping.is_set():
            names -= self._read_breakers()
            for claim in self._probes():
                stats.claimed += 1
                running[self.pool.submit(self._send, claim)] = claim
        while True:
            room = min(self._window() - len(running), self.config.batch - stats.claimed)
            claiming = not exhausted and not self.stopping.is_set()
            if claiming and room > 0 and (len(running) < workers or room >= workers):
                claims = claim_due(
                    self.store,
                    now=self._claim_time(),
                    lease_seconds=self.config.lease_seconds,
                    limit=room,
                    connectors=names,
                    policies=self.policies,
                    documents=self.documents,
                    document_policy=self.document_policy,
                    steps=self.steps,
                )
                stats.claimed += len(claims)
                exhausted = len(claims) < room
                for claim in claims:
                    running[self.pool.submit(self._send, claim)] = claim
            if not running:
                return
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            if len(done) < workers < len(running):
                # The threads are busy with queued claims meanwhile: a few milliseconds
                # gather several results into one transaction instead of one each.
                done, _ = wait(running, timeout=_GATHER_SECONDS)
            results = [(running.pop(f), f.result()) for f in done]
            for verdict in self._record(results):
                setattr(stats, verdict, getattr(stats, verdict) + 1)
            if self.breakers:
                for name, breaker in self._observe(results).items():
                    if breaker.blocks:
                        names.discard(name)

    # -- circuit breakers ----------------------------------------------------------------------

    def _read_breakers(self) -> set[str]:
        """Read the breakers (every node's results count); the connectors not to claim for."""
        self._breaker_states = {n: b for n, b in breaker_store.states(self.store).items() if n in self.breakers}
        return {n for n, b in self._breaker_states.items() if b.blocks}

    def _probes(self) -> list[ClaimedDelivery]:
        """One claimed row for each open breaker whose time has come and whose probe this node took."""
        now = self.clock()
        claims: list[ClaimedDelivery] = []
        for name, breaker in sorted(self._breaker_states.items()):
            if not breaker.blocks or breaker.retry_at is None or breaker.retry_at > now:
                continue
            if not breaker_store.take_probe(self.store, name, now=now, hold_seconds=self.config.lease_seconds):
                continue  # another node probes it
            found = claim_due(
                self.store, now=self._claim_time(), lease_seconds=self.config.lease_seconds, limit=1,
                connectors={name}, policies=self.policies, steps=self.steps,
            )
            if found:
                log.info("breaker of %s: probing with outbox %s", name, found[0].outbox_id)
                claims += found
                hold = now + dt.timedelta(seconds=self.config.lease_seconds)
                self._breaker_states[name] = replace(breaker, state=breaker_store.HALF_OPEN, retry_at=hold)
            else:  # nothing to probe with: it stays open, probed as soon as a row is due
                after, _ = breaker_store.observe(self.store, {name: [None]}, self.breakers, now=now)
                self._breaker_states.update(after)
        return claims

    def _observe(self, results: list[tuple[ClaimedDelivery, Result]]) -> dict[str, breaker_store.Breaker]:
        """Count a recorded group of results against the breakers; those it changed or that block."""
        outcomes: dict[str, list[bool | None]] = {}
        for claim, result in results:
            if claim.is_document or claim.connector not in self.breakers:
                continue
            outcomes.setdefault(claim.connector, []).append(_reached(result))
        known = self._breaker_states
        # Successes to a breaker that is closed with no failures counted change nothing: no write.
        outcomes = {
            n: seen for n, seen in outcomes.items()
            if not all(seen) or n not in known or known[n].blocks or known[n].failures
        }
        if not outcomes:
            return {}
        try:
            after, changes = breaker_store.observe(self.store, outcomes, self.breakers, now=self.clock())
        except StoreUnavailable as exc:
            log.error("breakers not updated, the store is unavailable: %s", exc)
            return {}
        self._breaker_states.update(after)
        for change in changes:
            log.warning("%s", change.detail, extra={"connector": change.connector})
        return after

    def _next_due(self) -> dt.datetime | None:
        """When the next row this dispatcher may claim is due: a row of a connector whose
        breaker is open is due when its probe may go."""
        names = set(self.connectors)
        later: list[dt.datetime] = []
        for name, breaker in self._breaker_states.items():
            if not breaker.blocks:
                continue
            names.discard(name)
            due = next_due(self.store, connectors={name}, documents=False, steps=self.steps)
            if due is not None:
                later.append(max(due, breaker.retry_at or due))
        due = next_due(self.store, connectors=names, documents=self.documents, steps=self.steps)
        return min([d for d in (due, *later) if d is not None], default=None)

    def _window(self) -> int:
        """How many claims may be sending or queued at once: a queued claim should start
        within a quarter of its lease, judged by how long sends take."""
        per_worker = (self.config.lease_seconds / 4) / max(self._send_seconds, 1e-4)
        return max(self.config.workers, min(self.config.batch, int(self.config.workers * per_worker)))

    def _send(self, claim: ClaimedDelivery) -> Result:
        """Send one claimed delivery (on a pool thread); what happened, to be recorded."""
        if claim.is_document:
            return self._send_document(claim)
        connector = self.connectors[claim.connector]
        if not claim.order:
            return Refused("the order has no canonical data to send")
        caps = connector.capabilities
        if (claim.action == "update" and not caps.updates) or (claim.action == "cancel" and not caps.cancels):
            # Never hand a change to a connector that would take it for a new order.
            return Refused(f"{claim.connector} does not declare that it can take an order {claim.action}")
        started = time.monotonic()
        with self._limits[claim.connector]:
            rate = self._rates.get(claim.connector)
            if rate is not None:
                rate.wait()
            try:
                result: Receipt | DeliveryError = connector.send(claim.delivery())
            except DeliveryError as exc:
                result = exc
            except Exception as exc:  # a connector bug or an error it did not classify
                result = self._classify_unexpected(connector, claim, exc)
        self._send_seconds += 0.2 * (time.monotonic() - started - self._send_seconds)
        crashpoints.hit("after_http_before_commit")
        if isinstance(result, Receipt):
            return Sent(result)
        if isinstance(result, TransientError):
            return Failed(str(result), self.policy(claim.connector), result.status, result.retry_after)
        return Refused(str(result), result.status)

    def _send_document(self, claim: ClaimedDelivery) -> Result:
        """Send one claimed acknowledgement or confirmation e-mail through its channel."""
        assert self.channels is not None, "documents are claimed only with channels"
        policy = self.document_policy
        try:
            how = self.channels.send(claim)
        except (PermanentError, ConfigError) as exc:
            result: Result = Refused(str(exc), getattr(exc, "status", None))
        except TransientError as exc:
            result = Failed(str(exc), policy, exc.status, exc.retry_after)
        except Exception as exc:  # unknown: retried only where a repeat has one effect
            text = f"unexpected {type(exc).__name__} from {claim.connector}: {exc}"[:_UNEXPECTED_CHARS]
            if self.channels.idempotent(claim.connector):
                result = Failed(text + " (retried: the channel replaces what it wrote)", policy)
            else:
                log.error("outbox %s (%s): %s", claim.outbox_id, claim.what, text, exc_info=exc, extra=_ids(claim))
                result = Refused(text + " (not retried: a repeat could send it twice)")
        else:
            result = Sent(Receipt(detail={"sent": how}))
        crashpoints.hit("after_http_before_commit")
        return result

    def _classify_unexpected(self, connector: Connector, claim: ClaimedDelivery, exc: Exception) -> DeliveryError:
        text = f"unexpected {type(exc).__name__} from {claim.connector}: {exc}"
        if len(text) > _UNEXPECTED_CHARS:
            text = text[: _UNEXPECTED_CHARS - 1] + "…"
        log.error("outbox %s to %s: %s", claim.outbox_id, claim.connector, text, exc_info=exc, extra=_ids(claim))
        if connector.capabilities.idempotent:
            return TransientError(text + " (retried: the connector is idempotent)")
        return PermanentError(text + " (not retried: a repeat could deliver the order twice)")

    def _record(self, results: list[tuple[ClaimedDelivery, Result]]) -> list[str]:
        """Record a group of results in one transaction; the stats fields to count."""
        redo = all(not c.is_document and _repeat_safe(self.connectors[c.connector]) for c, _ in results)
        try:
            with self.store.redoable() if redo else nullcontext():
                verdicts = record(self.store, results, now=self._claim_time(), rand=self.rand)
        except StoreUnavailable as exc:
            # The rows stay in flight; they are claimed again when their leases end.
            for claim, _ in results:
                log.error("outbox %s to %s: result not recorded, the store is unavailable: %s", claim.outbox_id, claim.connector, exc)
            return ["lost"] * len(results)
        fields = []
        for (claim, result), verdict in zip(results, verdicts, strict=True):
            if verdict == "sent":
                log.info("outbox %s (%s) sent to %s", claim.outbox_id, claim.what, claim.connector, extra=_ids(claim))
            elif not isinstance(result, Sent):
                log.info(
                    "outbox %s to %s: %s (%s)", claim.outbox_id, claim.connector, verdict, loggable(result.error, result.status),
                    extra=_ids(claim),
                )
            fields.append(_FIELDS[verdict])
        return fields

    # -- loops ---------------------------------------------------------------------------------

    def drain(self) -> DispatchStats:
        """Pass after pass while due rows are found; returns when a pass claimed nothing."""
        total = DispatchStats()
        while True:
            stats = self.run_once()
            total.add(stats)
            if not stats.claimed:
                return total

    def run_until_idle(self, timeout: float) -> DispatchStats:
        """Pass after pass until nothing is pending or in flight, or `timeout` seconds passed.

        Between passes it sleeps until the next row is due (at most `poll_seconds`). The
        timeout is measured on the clock and, as a safety net, on the wall clock.
        """
        total = DispatchStats()
        deadline = self.clock() + dt.timedelta(seconds=timeout)
        wall_deadline = time.monotonic() + timeout
        while True:
            stats = self.run_once()
            total.add(stats)
            due = self._next_due()
            if due is None:
                total.idle = True
                return total
            now = self.clock()
            if now >= deadline or time.monotonic() >= wall_deadline:
                total.idle = False
                return total
            if stats.claimed:
                continue
            wait_s = min((due - now).total_seconds(), self.config.poll_seconds, (deadline - now).total_seconds())
            # Never spin: a due row may be held for a moment by another node's claim.
            self.sleep(max(wait_s, _MIN_WAIT))

    def serve(self, stop: threading.Event) -> DispatchStats:
        """Run until `stop` is set (SIGTERM): claims stop, the deliveries in hand are finished.

        Passes follow each other while rows are due; then it waits for `wake()`, the next
        due row or `poll_seconds` (rows queued by another node are found by that poll).
        """
        total = DispatchStats()
        while not stop.is_set():
            self._wake.clear()
            try:
                stats = self.run_once()
                due = None if stats.claimed else self._next_due()
                wait_s = self.config.poll_seconds
                if due is not None:
                    wait_s = min(wait_s, max((due - self.clock()).total_seconds(), _MIN_WAIT))
            except StoreUnavailable as exc:
                log.error("dispatch pass skipped, the store is unavailable: %s", exc)
                stats, wait_s = DispatchStats(), self.config.poll_seconds
            total.add(stats)
            if not stats.claimed:
                # A wake() that came during the pass is kept: the wait returns at once.
                _wait_any(self._wake, stop, wait_s)
        return total

    def close(self) -> None:
        if self.channels is not None:
            self.channels.close()
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
        for connector in self.connectors.values():
            try:
                connector.close()
            except Exception:  # closing is best effort; log and go on with the others
                log.exception("closing connector %s failed", getattr(connector, "name", "?"))


_FIELDS = {"sent": "sent", "retry": "retried", "dead": "dead", "lost": "lost"}


def _reached(result: Result) -> bool | None:
    """For the breaker: the target answered (True), failed transiently (False), or the send
    says nothing about it (None: refused before any call, or a connector bug without status)."""
    if isinstance(result, Failed):
        return False
    if isinstance(result, Refused) and result.status is None:
        return None
    return True


def _repeat_safe(connector: Connector) -> bool:
    """A repeat of a delivery is recognised by the target (see the module docstring)."""
    caps = connector.capabilities
    return bool(caps.idempotent or caps.idempotency_key)


def _wait_any(wake: threading.Event, stop: threading.Event, seconds: float) -> None:
    """Wait until `wake` or `stop` is set, or `seconds` passed."""
    end = time.monotonic() + seconds
    while not (wake.is_set() or stop.is_set()):
        left = end - time.monotonic()
        if left <= 0:
            return
        wake.wait(min(left, 0.1))


_DEFAULT_POLICY = RetryPolicy()


def _ids(claim: ClaimedDelivery) -> dict[str, Any]:
    """The ids a log line about one delivery carries (gateway.logs: JSON logs show them)."""
    return {"delivery_id": claim.outbox_id, "order_id": claim.order_id, "message_id": claim.message_id}
