"""A person's corrections to dead letters: edit the order's data, then send it where it died.

    DeadLetters(store, exceptions).edit(12, [("lines[1].quantity", "5")], by="ana")

An edit of a dead letter is the exception queue's edit (gateway.processing.exception_queue):
a new version of the order (version + 1, superseding the dead one) whose history says who
changed what, checked again as an arriving order is. What differs is where it goes: not to
every connector of its partner (some may have taken the old version), but to the connectors
whose deliveries died, with the same action and the target's reference they carried. Those
dead deliveries become `discarded` ("replaced by edited version N"), so they leave the
dead-letter list and are never sent; the corrected version gets fresh deliveries (a new
idempotency key: the target never took the old data). An edited version that fails its
checks waits in the exception queue with its reasons instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gateway.errors import GatewayError
from gateway.processing.exception_queue import Edit, ExceptionQueue
from gateway.states import OrderState
from gateway.store import Store
from gateway.store import dead_letters as repo
from gateway.versions import Plan

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = ["DeadLetters"]


class DeadLetters:
    """Edits of dead letters, through the exception queue's edit."""

    def __init__(self, store: Store, exceptions: ExceptionQueue):
        self.store = store
        self.exceptions = exceptions

    def order_of(self, outbox_id: int) -> str:
        """The order id of the dead delivery `outbox_id`; GatewayError when there is none."""
        return repo.order_of(self.store, outbox_id)

    def edit(self, outbox_id: int, assignments: Sequence[tuple[str, str]], *, by: str) -> Edit:
        """Correct the order of dead delivery `outbox_id` and send the corrected version where
        the order's deliveries died (see the module docstring)."""
        order_id = self.order_of(outbox_id)

        def requeue(conn: Connection, row: dict[str, Any], new: dict[str, Any], who: str) -> Plan | None:
            dead = repo.dead_deliveries(conn, row["id"])
            if not dead:
                raise GatewayError(f"the deliveries of order {row['id'][:8]} are no longer dead; nothing to edit")
            repo.retire(conn, dead, by=who, replacement=new["id"], version=new["version"])
            if new["state"] != OrderState.VALIDATED.value:
                return None  # waits in the exception queue with its reasons
            # A dead part of a split order is sent again as that part (gateway.parts): the
            # parts that were sent keep what they got.
            parts = [d for d in dead if d.part]
            return Plan(
                list(dict.fromkeys(d.connector for d in dead)),
                action=dead[0].action if len({d.action for d in dead}) == 1 else "create",
                after={d.connector: d.after_id for d in dead if d.after_id is not None and not d.part},
                references={d.connector: d.target_reference for d in dead if d.target_reference and not d.part},
                replaces=None,
                parts={d.connector: d.part_of for d in parts},
                part_numbers={c: [d.part for d in parts if d.connector == c] for c in {d.connector for d in parts}},
                part_after={(d.connector, d.part): d.after_id for d in parts if d.after_id is not None},
                part_references={(d.connector, d.part): d.target_reference for d in parts if d.target_reference},
            )

        return self.exceptions.edit(order_id, assignments, by=by, states=(OrderState.DEAD,), requeue=requeue)
