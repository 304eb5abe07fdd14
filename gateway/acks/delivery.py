"""The one place acknowledgements and confirmation e-mails are sent from: the dispatch job.

    sender = AckSender(store, partners, smtp=smtp, policy=RetryPolicy(...))
    stats = sender.run_once()       # claim due rows, send each through its channel, record

Processing only stores them (`gateway.acks.outbound.store_acks`, the confirmation reply in
`gateway.pipeline`); it performs no network I/O. Each row is claimed first
(`gateway.store.ack_queue.claim_due`, a committed claim with a lease on the database clock), so
two nodes or two jobs never send the same one. Failures follow the retry policy
(`gateway.retry.RetryPolicy`), then the row is `dead`: `gateway dead-letters`
lists it and `gateway replay` queues it again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gateway.acks.channels import ChannelSet
from gateway.errors import ConfigError, DeliveryError, PermanentError
from gateway.retry import RetryPolicy
from gateway.store import Store
from gateway.store import ack_queue as queue

log = logging.getLogger(__name__)

__all__ = ["AckSender", "AckStats"]


@dataclass
class AckStats:
    sent: int = 0
    retried: int = 0
    dead: int = 0


class AckSender:
    def __init__(
        self,
        store: Store,
        partners: Iterable[Any] = (),
        *,
        smtp: Any = None,
        policy: RetryPolicy | None = None,
        lease_seconds: float = 120.0,
        batch: int = 50,
    ):
        self.store = store
        self.partners = list(partners)
        self.smtp = smtp
        self.policy = policy or RetryPolicy()
        self.lease_seconds = lease_seconds
        self.batch = batch

    def run_once(self) -> AckStats:
        """Claim what is due (one batch) and send it; returns what happened."""
        stats = AckStats()
        claimed = queue.claim_due(self.store, lease_seconds=self.lease_seconds, limit=self.batch, policy=self.policy)
        if not claimed:
            return stats
        channels = ChannelSet(self.partners, self.smtp)
        try:
            for ack in claimed:
                self._send(ack, channels, stats)
        finally:
            channels.close()
        return stats

    def _send(self, ack: queue.ClaimedAck, channels: ChannelSet, stats: AckStats) -> None:
        retry_after: float | None = None
        channel: Any = None
        try:
            channel = channels.get(ack.channel)
            where = channel.send(ack)
        except (PermanentError, ConfigError) as exc:
            error, permanent = str(exc), True
        except DeliveryError as exc:  # TransientError
            error, permanent, retry_after = str(exc), False, exc.retry_after
        except Exception as exc:  # unknown: retried only where a repeat has one effect
            idempotent = bool(channel is not None and channel.idempotent)
            error, permanent = f"{type(exc).__name__}: {exc}", not idempotent
        else:
            queue.mark_sent(self.store, ack, where)
            stats.sent += 1
            return
        outcome = queue.mark_failed(self.store, ack, error, permanent=permanent, policy=self.policy, retry_after=retry_after)
        log.error("acknowledgement %s (%s) to %s not delivered: %s (%s)", ack.id, ack.kind, ack.partner, error, outcome)
        if outcome == "dead":
            stats.dead += 1
        elif outcome == "retry":
            stats.retried += 1
