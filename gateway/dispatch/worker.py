"""The dispatcher: claim due outbox rows, send them in parallel, record each result.

One pass (`run_once`) claims a batch (committed before anything is sent, see
`gateway.dispatch.outbox`), hands each delivery to its connector on a thread pool of
`config.workers`, and records every result in its own transaction as soon as it is known.
What a connector raised decides what happens next:

    TransientError            retry per the connector's RetryPolicy (honouring retry_after),
                              dead once the policy is exhausted
    PermanentError            dead at once, for a person to fix and replay
    any other exception       permanent, unless the connector declares `idempotent`
                              (a blind retry of a non-idempotent call can post an order twice)

A worker that dies between the target's answer and the commit leaves the row `in_flight`;
when its lease ends the row is claimed again and sent with the same idempotency key
(crash point ``after_http_before_commit`` exercises exactly that window).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from gateway import crashpoints
from gateway.config import DispatchConfig
from gateway.connector import Connector, Receipt
from gateway.dispatch.outbox import (
    ClaimedDelivery,
    claim_due,
    mark_dead,
    mark_failed,
    mark_sent,
    next_due,
)
from gateway.errors import DeliveryError, PermanentError, StoreUnavailable, TransientError
from gateway.retry import RetryPolicy
from gateway.store import Store, utcnow

__all__ = ["DispatchStats", "Dispatcher"]

log = logging.getLogger(__name__)

_UNEXPECTED_CHARS = 300
_MIN_WAIT = 0.01  # seconds between two passes that found nothing to claim


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


class Dispatcher:
    """Sends due outbox rows through their connectors, with retries and dead letters.

    `connectors` and `policies` are keyed by connector name; rows for connectors this node
    does not have are left for a node that does. `clock` returns an aware UTC datetime and
    `sleep` waits a number of seconds; tests inject both so a back-off costs no real time.
    """

    def __init__(
        self,
        store: Store,
        connectors: Mapping[str, Connector],
        policies: Mapping[str, RetryPolicy],
        config: DispatchConfig,
        clock: Callable[[], dt.datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ):
        self.store = store
        self.connectors = dict(connectors)
        self.policies = dict(policies)
        self.config = config
        self.clock = clock
        self.sleep = sleep
        self.rand = rand
        # Set when the service stops (reliability F21): a pass in progress claims no more
        # rows; what it has claimed is sent and recorded.
        self.stopping = threading.Event()

    def policy(self, connector: str) -> RetryPolicy:
        return self.policies.get(connector) or _DEFAULT_POLICY

    # -- one pass ------------------------------------------------------------------------------

    def run_once(self) -> DispatchStats:
        """Claim and send up to `config.batch` due deliveries; returns what happened.

        Rows are claimed `workers` at a time, so every claimed row starts sending at once:
        no claim waits in a queue while its lease runs down behind a slow target.
        """
        stats = DispatchStats()
        names = set(self.connectors)
        with ThreadPoolExecutor(max_workers=self.config.workers, thread_name_prefix="dispatch") as pool:
            while stats.claimed < self.config.batch and not self.stopping.is_set():
                want = min(self.config.workers, self.config.batch - stats.claimed)
                claims = claim_due(
                    self.store,
                    now=self.clock(),
                    lease_seconds=self.config.lease_seconds,
                    limit=want,
                    connectors=names,
                    policies=self.policies,
                )
                stats.claimed += len(claims)
                for outcome in pool.map(self._deliver, claims):
                    setattr(stats, outcome, getattr(stats, outcome) + 1)
                if len(claims) < want:
                    break
        return stats

    def _deliver(self, claim: ClaimedDelivery) -> str:
        """Send one claimed delivery and record the result; returns the stats field to count."""
        connector = self.connectors[claim.connector]
        if not claim.order:
            now = self.clock()
            ok = mark_dead(self.store, claim, error="the order has no canonical data to send", now=now)
            return "dead" if ok else "lost"
        caps = connector.capabilities
        if (claim.action == "update" and not caps.updates) or (claim.action == "cancel" and not caps.cancels):
            # Never hand a change to a connector that would take it for a new order.
            error = f"{claim.connector} does not declare that it can take an order {claim.action}"
            ok = mark_dead(self.store, claim, error=error, now=self.clock())
            return "dead" if ok else "lost"
        try:
            result: Receipt | DeliveryError = connector.send(claim.delivery())
        except DeliveryError as exc:
            result = exc
        except Exception as exc:  # a connector bug or an error it did not classify
            result = self._classify_unexpected(connector, claim, exc)
        crashpoints.hit("after_http_before_commit")
        try:
            return self._record(claim, result)
        except StoreUnavailable as exc:
            # The row stays in flight; it is claimed again when the lease ends.
            log.error("outbox %s to %s: result not recorded, the store is unavailable: %s", claim.outbox_id, claim.connector, exc)
            return "lost"

    def _classify_unexpected(self, connector: Connector, claim: ClaimedDelivery, exc: Exception) -> DeliveryError:
        text = f"unexpected {type(exc).__name__} from {claim.connector}: {exc}"
        if len(text) > _UNEXPECTED_CHARS:
            text = text[: _UNEXPECTED_CHARS - 1] + "…"
        log.error("outbox %s to %s: %s", claim.outbox_id, claim.connector, text, exc_info=exc)
        if connector.capabilities.idempotent:
            return TransientError(text + " (retried: the connector is idempotent)")
        return PermanentError(text + " (not retried: a repeat could deliver the order twice)")

    def _record(self, claim: ClaimedDelivery, result: Receipt | DeliveryError) -> str:
        now = self.clock()
        if isinstance(result, Receipt):
            ok = mark_sent(self.store, claim, result, now=now)
            if ok:
                log.info("outbox %s (order %s) sent to %s", claim.outbox_id, claim.order_id, claim.connector)
            return "sent" if ok else "lost"
        if isinstance(result, TransientError):
            verdict = mark_failed(
                self.store,
                claim,
                error=str(result),
                status=result.status,
                retry_after=result.retry_after,
                policy=self.policy(claim.connector),
                now=now,
                rand=self.rand,
            )
            log.info("outbox %s to %s: %s (%s)", claim.outbox_id, claim.connector, verdict, result)
            return {"retry": "retried", "dead": "dead"}.get(verdict, "lost")
        ok = mark_dead(self.store, claim, error=str(result), status=result.status, now=now)
        return "dead" if ok else "lost"

    # -- loops ---------------------------------------------------------------------------------

    def run_until_idle(self, timeout: float) -> DispatchStats:
        """Pass after pass until nothing is pending or in flight, or `timeout` seconds passed.

        Between passes it sleeps until the next row is due (at most `poll_seconds`). The
        timeout is measured on the injected clock and, as a safety net, on the wall clock.
        """
        total = DispatchStats()
        deadline = self.clock() + dt.timedelta(seconds=timeout)
        wall_deadline = time.monotonic() + timeout
        names = set(self.connectors)
        while True:
            stats = self.run_once()
            total.add(stats)
            due = next_due(self.store, connectors=names)
            if due is None:
                total.idle = True
                return total
            now = self.clock()
            if now >= deadline or time.monotonic() >= wall_deadline:
                total.idle = False
                return total
            if stats.claimed:
                continue
            wait = min((due - now).total_seconds(), self.config.poll_seconds, (deadline - now).total_seconds())
            # Never spin: a due row may be held for a moment by another node's claim.
            self.sleep(max(wait, _MIN_WAIT))

    def serve(self, stop: threading.Event) -> DispatchStats:
        """Run until `stop` is set (SIGTERM): claims stop, the batch in hand is finished."""
        total = DispatchStats()
        while not stop.is_set():
            try:
                stats = self.run_once()
            except StoreUnavailable as exc:
                log.error("dispatch pass skipped, the store is unavailable: %s", exc)
                stats = DispatchStats()
            total.add(stats)
            if not stats.claimed:
                stop.wait(self.config.poll_seconds)
        return total

    def close(self) -> None:
        for connector in self.connectors.values():
            try:
                connector.close()
            except Exception:  # closing is best effort; log and go on with the others
                log.exception("closing connector %s failed", getattr(connector, "name", "?"))


_DEFAULT_POLICY = RetryPolicy()
