"""Memory target: keeps each order in a list, with fault knobs. A real connector, for tests,
demos and dry runs (``type: memory``); what it holds is gone when the process ends.

Capabilities
    idempotency_key=True   a delivery's key is remembered: the same key again creates nothing
                           and answers with the first receipt
    idempotent=True        so any error may be retried
    updates=True, cancels=True

Config keys (`MemoryTargetConfig`)
    name, fail_every, transient_rate, seed, permanent_po_numbers, delay_seconds, payload
    (JMESPath file shaping what is kept; default: the canonical order), retry.
    The knobs live in ``connector.faults`` (a `Faults`); a test may replace it while running.

Faults, checked in this order on every send (every attempt counts)
    delay_seconds                 the send sleeps first (a slow target)
    PO number in permanent_po_numbers   PermanentError (status 422), nothing recorded
    the Nth send, N = fail_every  TransientError (status 503), nothing recorded
    a draw below transient_rate   TransientError (status 503), nothing recorded

What it received
    ``received``    every delivery accepted, in order, repeats included
    ``by_key``      idempotency key -> the deliveries accepted with it (a duplicate shows as 2)
    ``orders``      the order of each distinct create, in order (one effect per key)
    ``changes``     (action, order) of each distinct update or cancel
    ``attempts``    how many sends were made, failed ones included
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import jmespath

from connectors.targets.memory.config import MemoryTargetConfig
from gateway.connector import Capabilities, Delivery, Receipt
from gateway.errors import PermanentError, TransientError
from gateway.payload import load_payload

__all__ = ["Faults", "MemoryConnector"]


@dataclass(frozen=True, slots=True)
class Faults:
    """The fault knobs; see the module docstring."""

    fail_every: int | None = None
    transient_rate: float = 0.0
    permanent_po_numbers: frozenset[str] = field(default_factory=frozenset)
    delay_seconds: float = 0.0


class MemoryConnector:
    """Holds orders in memory; see the module docstring for the contract."""

    capabilities = Capabilities(idempotency_key=True, idempotent=True, updates=True, cancels=True)

    def __init__(self, config: MemoryTargetConfig):
        self.config = config
        self.name = config.name
        self.faults = Faults(
            fail_every=config.fail_every,
            transient_rate=config.transient_rate,
            permanent_po_numbers=frozenset(config.permanent_po_numbers),
            delay_seconds=config.delay_seconds,
        )
        self.attempts = 0
        self.received: list[Delivery] = []
        self.by_key: dict[str, list[Delivery]] = defaultdict(list)
        self.orders: list[Any] = []
        self.changes: list[tuple[str, Any]] = []
        self._payload = load_payload(config.payload)
        self._receipts: dict[str, Receipt] = {}
        self._random = random.Random(config.seed)  # noqa: S311 - fault injection, not security
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryConnector(name={self.name!r}, orders={len(self.orders)})"

    def send(self, delivery: Delivery) -> Receipt:
        faults = self.faults
        if faults.delay_seconds:
            time.sleep(faults.delay_seconds)
        po = delivery.order.get("po_number") if isinstance(delivery.order, dict) else None
        with self._lock:
            self.attempts += 1
            n = self.attempts
            if po is not None and str(po) in faults.permanent_po_numbers:
                raise PermanentError(f"{self.name} refuses order {po}: its PO number is set to fail", status=422)
            if faults.fail_every and n % faults.fail_every == 0:
                raise TransientError(f"{self.name}: send {n} fails (fail_every {faults.fail_every})", status=503)
            if faults.transient_rate and self._random.random() < faults.transient_rate:
                raise TransientError(f"{self.name}: send {n} fails (transient_rate {faults.transient_rate:g})", status=503)
            if delivery.action not in ("create", "update", "cancel"):
                raise PermanentError(f"{self.name}: unknown delivery action {delivery.action!r}")
            if delivery.action != "create" and not delivery.target_reference:
                raise PermanentError(f"{self.name}: the {delivery.action} of {delivery.order_id} names no order")
            self.received.append(delivery)
            self.by_key[delivery.idempotency_key].append(delivery)
            known = self._receipts.get(delivery.idempotency_key)
            if known is not None:
                return Receipt(status=known.status, reference=known.reference, detail={"replayed": True})
            if delivery.action == "create":
                self.orders.append(self._shape(delivery))
                receipt = Receipt(status=201, reference=f"MEM-{len(self.orders)}")
            else:
                self.changes.append((delivery.action, self._shape(delivery)))
                receipt = Receipt(status=200, reference=delivery.target_reference)
            self._receipts[delivery.idempotency_key] = receipt
            return Receipt(status=receipt.status, reference=receipt.reference)

    def _shape(self, delivery: Delivery) -> Any:
        try:
            return self._payload.render(delivery.order)
        except (TypeError, ValueError, jmespath.exceptions.JMESPathError) as exc:
            raise PermanentError(f"{self.name}: the payload mapping {self._payload.source} failed: {exc}") from None

    def duplicates(self) -> dict[str, int]:
        """Idempotency keys received more than once, with how often."""
        with self._lock:
            return {key: len(got) for key, got in self.by_key.items() if len(got) > 1}

    def close(self) -> None:
        pass
