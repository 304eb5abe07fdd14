"""The rules engine: every configured rule over a batch of orders, one decision each.

The batch's master data is fetched once (:class:`gateway.rules.context.BatchContext`); each
rule that applies to an order (its channels and partners) yields findings, and the worst
outcome decides. A rule that fails with an unexpected error does not stop the batch: the order
is held with RULE_FAILED naming the rule, so a person sees it and the bug is logged.

Stock reservation and routing come after the decision: the stock rule leaves what an order
must hold on its :class:`Decision` (``stock``), and gateway.processing.decide reserves and
routes it in the batch's transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from gateway.errors import ConfigError
from gateway.masterdata.model import MasterData
from gateway.model import Order
from gateway.rules.base import Decision, Finding, Outcome, Rule
from gateway.rules.context import BatchContext, OrderHistory

__all__ = ["RulesEngine"]

log = logging.getLogger(__name__)


class RulesEngine:
    def __init__(
        self,
        rules: Sequence[Rule],
        masterdata: MasterData | None = None,
        history: OrderHistory | None = None,
    ):
        """ConfigError when a rule needs master data and none is given."""
        needing = [r.config.label for r in rules if r.needs_masterdata]
        if needing and masterdata is None:
            raise ConfigError(
                f"rule(s) {', '.join(needing)} need master data; configure masterdata: (folder: ... or the store)"
            )
        self.rules = list(rules)
        self.needs: frozenset[str] = frozenset().union(*(r.needs_history for r in self.rules))
        self.masterdata = masterdata
        self.history = history

    def __bool__(self) -> bool:
        return bool(self.rules)

    def decide(self, orders: Sequence[Order], day: dt.date | None = None, *, seen: dict[str, str] | None = None) -> list[Decision]:
        """One decision per order, in order. `seen`: the content of orders decided before in the
        same run (fingerprint -> which order), carried from one call to the next and updated."""
        if not self.rules:
            return [Decision(Outcome.ACCEPT) for _ in orders]
        batch = BatchContext.prefetch(orders, self.masterdata, self.history, day, self.needs)
        if seen is not None:
            batch.fingerprints = seen
        out = []
        for order, ctx in zip(orders, batch.contexts(orders), strict=True):
            findings: list[Finding] = []
            for rule in self.rules:
                if not rule.applies(order):
                    continue
                try:
                    findings.extend(rule.check(order, ctx))
                except Exception as exc:  # a rule's bug holds the order, it never stops the batch
                    log.exception("rule %s failed on PO %s", rule.config.label, order.po_number)
                    findings.append(
                        Finding(
                            rule.config.label,
                            Outcome.HOLD,
                            "RULE_FAILED",
                            f"rule {rule.config.label} failed ({type(exc).__name__}: {exc}); a person must check the order",
                        )
                    )
            out.append(
                Decision.of(
                    findings,
                    account=ctx.account.code if ctx.account else None,
                    fingerprint=ctx.fingerprint,
                    stock=ctx.stock_needs,
                )
            )
        return out
