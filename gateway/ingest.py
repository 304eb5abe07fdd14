"""One ingest step: poll a source, commit each message, then acknowledge it exactly once.

The rules every source shares live here, not in each source:

- **Ack after commit.** A message is acknowledged only with the result of its commit to the
  store (`Stored`). When storing fails nothing is acknowledged; the item stays at the source
  and the next poll offers it again, where the store recognises the same bytes.
- **Single shot.** Each offered message is wrapped in a `Claim` that this module creates for
  the poll and owns; `Claim.ack` refuses a second call with `AcknowledgedTwice`. The guard is
  the claim object itself, never an address (`id()`) a later claim could reuse, and never
  state shared between polls, so two polls of one source in flight cannot trip it.
- **Group commit, same rule.** A source may declare `commit_group = N` (the folder source
  does): up to N offered messages (and at most GROUP_BYTES of them) are then committed in one
  transaction by `store_many`, and each is acknowledged only after that commit returned its
  own `Stored`. One fsync serves the group; a failed commit acknowledges none of it. Sources
  whose acknowledging action depends on processing (`routes_by_outcome`) commit one at a time.
- **The `before_ack` crash point** (gateway.crashpoints) sits between commit and the source's
  acknowledging action, for the kill -9 tests.

A source only polls (yields `RawMessage`s, acknowledging nothing) and performs its own
acknowledging action in `Source.ack` (move a file, move a mail, advance a cursor). That action
must tolerate the item being gone already: another poll or another node may have moved it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from gateway import crashpoints
from gateway.connector import AckOutcome, RawMessage, Source

log = logging.getLogger(__name__)

__all__ = ["AcknowledgedTwice", "Claim", "IngestStats", "Stored", "claims", "ingest"]

GROUP_BYTES = 4_000_000  # a commit group is cut once its bodies pass this many bytes


class AcknowledgedTwice(RuntimeError):
    """A programming error: one offered message was acknowledged a second time."""


@dataclass(frozen=True, slots=True)
class Stored:
    """The result of committing one message: only this lets a claim be acknowledged."""

    message_id: str
    duplicate: bool = False


@dataclass(eq=False, slots=True)
class Claim:
    """One message offered by one poll of one source; acknowledged at most once."""

    source: Source
    message: RawMessage
    _acked: bool = field(default=False, init=False)

    @property
    def acked(self) -> bool:
        return self._acked

    def ack(self, outcome: AckOutcome, stored: Stored) -> None:
        """Run the source's acknowledging action for a committed message, once."""
        if not isinstance(stored, Stored):
            raise TypeError("a claim is acknowledged with the result of its commit (Stored)")
        if self._acked:
            raise AcknowledgedTwice(f"message {self.message.source_ref} was acknowledged twice")
        # Set before the action: an action that fails half-way is not repeated on this claim;
        # the item is still at the source and the next poll offers it on a new claim.
        self._acked = True
        crashpoints.hit("before_ack")
        self.source.ack(self.message, outcome, stored.message_id)


def claims(source: Source) -> Iterator[Claim]:
    """Each message the source offers now, wrapped in a claim owned by this poll."""
    for raw in source.poll():
        yield Claim(source, raw)


@dataclass(slots=True)
class IngestStats:
    received: int = 0  # newly stored
    duplicates: int = 0  # the store had it already
    deferred: int = 0  # stored but left unacknowledged for a later poll


# Decides the outcome a committed message is acknowledged with; None leaves it unacknowledged
# (still committed) so a later poll offers it again.
Settle = Callable[[RawMessage, Stored], "AckOutcome | None"]


def default_outcome(raw: RawMessage, stored: Stored) -> AckOutcome:
    if raw.rejected:
        return "rejected"
    return "duplicate" if stored.duplicate else "stored"


def ingest(
    source: Source,
    store: Callable[[RawMessage], Stored],
    settle: Settle | None = None,
    *,
    store_many: Callable[[list[RawMessage]], list[Stored]] | None = None,
) -> IngestStats:
    """Poll `source` once: commit each message with `store`, then acknowledge it once.

    An exception from `store` (the store is down, the disk is full) ends the poll with that
    message and the ones after it unacknowledged. `settle` picks the outcome for sources that
    route by it (a mailbox's Processed / Needs-review / Failed folders). With `store_many`,
    a source that declares `commit_group` has its messages committed in groups (see above).
    """
    stats = IngestStats()
    group = int(getattr(source, "commit_group", 1) or 1) if store_many is not None else 1
    pending: list[Claim] = []
    size = 0

    def commit_pending() -> None:
        nonlocal size
        if not pending:
            return
        if len(pending) == 1 or store_many is None:
            results = [store(pending[0].message)]
        else:
            results = store_many([c.message for c in pending])
        if len(results) != len(pending):  # pragma: no cover - a broken store_many
            raise RuntimeError("store_many returned a result count that differs from the messages given")
        for claim, stored in zip(pending, results, strict=True):
            _settle_and_ack(claim, stored, settle, stats)
        pending.clear()
        size = 0

    for claim in claims(source):
        pending.append(claim)
        size += len(claim.message.body)
        if len(pending) >= group or size >= GROUP_BYTES:
            commit_pending()
    commit_pending()
    return stats


def _settle_and_ack(claim: Claim, stored: Stored, settle: Settle | None, stats: IngestStats) -> None:
    outcome = (settle or default_outcome)(claim.message, stored)
    if outcome is None:
        stats.deferred += 1
        return
    claim.ack(outcome, stored)
    if stored.duplicate:
        stats.duplicates += 1
    else:
        stats.received += 1
