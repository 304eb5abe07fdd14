"""The working state of processing one message, shared by its steps.

`Run` is what processing one message has learnt so far (orders waiting in the current batch,
interchanges seen, what acknowledgements need to know); `Batch` is what the next flush writes
in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.acks.outbound import AckCollector
from gateway.formats.base import InterchangeClosed

__all__ = ["Batch", "Run", "is_cut_off", "is_test"]


@dataclass
class Batch:
    """What the next flush writes in one transaction."""

    orders: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    digests: list[tuple[str, str]] = field(default_factory=list)  # (interchange key, digest)

    def __len__(self) -> int:
        return len(self.orders)


@dataclass
class Run:
    """The state of processing one message."""

    message_id: str
    batch: Batch = field(default_factory=Batch)
    warnings: list[str] = field(default_factory=list)
    skipping: dict[int, str] = field(default_factory=dict)  # open repeated interchange's index -> earlier digest
    skipped: bool = False  # some interchange was a repeat
    # Interchange key -> digest ("" until closed), for the interchanges of this file not yet
    # written with their digest; once written, the store answers for them (see
    # gateway.processing.interchanges), so memory does not grow with the file (issue 14 #18).
    opened: dict[str, str] = field(default_factory=dict)
    resumed: bool = False  # read before (a crash, `gateway reprocess`): the store's interchange rows may be our own
    undecided: dict[str, int] = field(default_factory=dict)  # key -> index, not yet checked
    closes: dict[str, InterchangeClosed] = field(default_factory=dict)  # ends awaiting that check
    orders: int = 0
    rejected: int = 0
    duplicates: int = 0
    acks: AckCollector | None = None  # what acknowledgements need to know, when any partner wants them
    ack_partner: str | None = None  # the partner forced for the whole message, if any
    # Re-processing after a crash: interchanges whose acknowledgements were committed already
    # (their digest is written in the same transaction), and whether any acknowledgement was.
    acked_keys: set[str] = field(default_factory=set)
    acked_before: bool = False
    truncated: set[tuple[int, str]] = field(default_factory=set)  # (index, control number) cut off: refused
    truncated_seen: list[str] = field(default_factory=list)  # what the person is told about them
    reused: list[str] = field(default_factory=list)  # keys of interchanges refused as CONTROL_NUMBER_REUSED
    # New orders the rules decide in small chunks as they are read (gateway.processing.decide),
    # and the content of those decided so far in this message (the duplicates rule).
    to_decide: list[tuple[dict[str, Any], Any]] = field(default_factory=list)
    fingerprints: dict[str, str] = field(default_factory=dict)
    large: bool = False  # its orders are decided by a worker once one is ready (gateway.processing.decide_worker)
    remote: Any = None  # the decide worker lent to this run (gateway.processing.decide_worker.RemoteRun)
    remote_failed: bool = False  # it failed: the rest is decided in process
    # Partners' acknowledgements of what we sent read from this message (gateway.acks.inbound),
    # and those refused: (UNMATCHED_ACK or MALFORMED_ACK, what a person is told).
    acks_read: list[str] = field(default_factory=list)
    ack_problems: list[tuple[str, str]] = field(default_factory=list)


def is_cut_off(env: Any, run: Run) -> bool:
    """Whether the interchange of `env` was found cut off (gateway.formats.envelope)."""
    return bool(run.truncated) and (env.interchange_index, env.interchange_control_number or "") in run.truncated


def is_test(env: Any) -> bool:
    """A test interchange: X12 ISA15 other than P (T test, I information), EDIFACT UNB 0035 1."""
    if env is None or not env.test_indicator:
        return False
    value = str(env.test_indicator).strip().upper()
    if env.standard == "x12":
        return value != "P"
    return env.standard == "edifact" and value == "1"
