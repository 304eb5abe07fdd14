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

`Pipeline` is the one object the service, the CLI and the tests hold; each responsibility
lives in its own module under gateway/processing/ (receive, process, interchanges, review,
email_trust, acknowledge) and this class only assembles them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from gateway.connector import Capabilities, RawMessage
from gateway.processing.acknowledge import confirm
from gateway.processing.decide import Decider
from gateway.processing.decide_worker import DecidePool
from gateway.processing.exception_queue import ExceptionQueue
from gateway.processing.process import Processor, ProcessStats
from gateway.processing.receive import ReceiveResult, display_name, receive, receive_many
from gateway.processing.review import Review
from gateway.routing import Router
from gateway.store import Store
from gateway.translate import PartnerDirectory
from gateway.versions import Linker

__all__ = ["Pipeline", "ProcessStats", "ReceiveResult", "display_name"]


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
        rules: Decider | None = None,
        reserve_stock: bool = False,
        router: Router | None = None,
        per_part: Collection[str] = (),
        decide_pool: DecidePool | None = None,
    ):
        self.store = store
        self.connectors = list(connectors)
        self.partners = partners or PartnerDirectory()
        self.partner_connectors = partner_connectors or {}
        self.linker = Linker(capabilities or {}, self._targets)
        self.authserv_id = authserv_id
        self.smtp = smtp  # gateway.smtp.SmtpConfig: order e-mails get a confirmation reply
        self.processor = Processor(
            store,
            partners=self.partners,
            linker=self.linker,
            batch_orders=batch_orders,
            max_attempts=max_attempts,
            lease_seconds=lease_seconds,
            provenance=provenance,
            authserv_id=authserv_id,
            smtp=smtp,
            rules=rules,
            reserve_stock=reserve_stock,
            router=router,
            per_part=per_part,
            decide_pool=decide_pool,
        )
        self.review = Review(store, self.partners, self.linker, self.processor.queue)
        self.review.stock = self.processor.stock
        self.exceptions = ExceptionQueue(
            store, self.linker, self.processor.queue, answer=lambda conn, row: self.review.answer(conn, row, accepted=True),
            rules=rules, stock=self.processor.stock,
        )

    def _targets(self, partner: str | None) -> list[str]:
        return list(self.partner_connectors.get(partner or "", self.connectors))

    # -- step 1: receive (gateway.processing.receive) ---------------------------------------------

    def receive(self, raw: RawMessage, *, format: str | None = None, partner: str | None = None) -> ReceiveResult:
        """Commit the raw message. Returns the id of the stored (or earlier identical) message."""
        return receive(self.store, raw, format=format, partner=partner)

    def receive_many(self, raws: list[RawMessage], *, format: str | None = None, partner: str | None = None) -> list[ReceiveResult]:
        """Commit several raw messages in one (fully durable) transaction (gateway.ingest)."""
        return receive_many(self.store, raws, format=format, partner=partner)

    # -- step 2: process (gateway.processing.process) ---------------------------------------------

    def process_pending(self, limit: int = 100) -> ProcessStats:
        """Process stored messages that are waiting (or whose processing was interrupted)."""
        return self.processor.process_pending(limit, each=self.process)

    def claim(self, message_id: str) -> bool:
        """Take the lease on one waiting message (False: processed, or another node has it)."""
        return self.processor.claim(message_id)

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
        """Process one stored message (see Processor.process for `durable` and `body`)."""
        return self.processor.process(message_id, claimed=claimed, format=format, partner=partner, durable=durable, body=body)

    # -- review by a person (gateway.processing.review) -------------------------------------------

    def held_for_review(self, limit: int = 100) -> list[dict[str, Any]]:
        """Orders waiting for a person (`gateway review`), oldest first."""
        return self.review.held_for_review(limit)

    def approve(self, order_id: str, *, by: str = "") -> str:
        """Release an order held for review to its connectors; returns its full id."""
        return self.review.approve(order_id, by=by)

    def reject(self, order_id: str, reason: str, *, by: str = "") -> str:
        """Refuse an order held for review (it is never sent); returns its full id."""
        return self.review.reject(order_id, reason, by=by)

    def reprocess(self, message_id: str, *, by: str = "", accept_reused_control: bool = False) -> tuple[str, int]:
        """Read a refused message again with the current configuration (see Review.reprocess)."""
        return self.review.reprocess(message_id, by=by, accept_reused_control=accept_reused_control)

    # -- acknowledgements (gateway.processing.acknowledge) ----------------------------------------

    def _confirm(self, message_id: str, body: bytes, partner: str) -> None:
        """Store the confirmation reply to a verified partner's order e-mail (as processing does)."""
        confirm(self.store, self.partners, self.smtp, self.authserv_id, message_id, body, partner)
