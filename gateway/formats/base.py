"""What a parser hands to the rest of the gateway: a stream of events, never the store.

A parser reads bytes (streaming where the format allows) and yields, in order:

    InterchangeOpened   an envelope starts (X12 ISA, EDIFACT UNB); carries its identity
    Document            one business document (an X12 transaction set, an EDIFACT message,
                        an XML order, a cart payload), ready for a mapper
    DocumentRejected    one document that cannot be used, with reason and position;
                        the documents around it go on
    InterchangeClosed   the envelope ends; carries a digest of its content and any
                        envelope-level errors (counts, control numbers)

A file that cannot be read at all raises `gateway.errors.ParseError` instead.
Warnings (a BOM stripped, an ISA re-padded) travel on the events, so they can be recorded
on the stored message.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "Document",
    "DocumentRejected",
    "Envelope",
    "Event",
    "InterchangeClosed",
    "InterchangeOpened",
    "Parser",
]


@dataclass(frozen=True, slots=True)
class Envelope:
    """Identity of the interchange/group/document a document sits in."""

    standard: str  # "x12", "edifact", "cxml", ...
    sender_id: str | None = None
    sender_qualifier: str | None = None
    receiver_id: str | None = None
    receiver_qualifier: str | None = None
    interchange_control_number: str | None = None
    group_control_number: str | None = None
    functional_id: str | None = None  # X12 GS01 (PO, IN, ...)
    version: str | None = None  # X12 GS08 / ISA12, EDIFACT UNH version
    test_indicator: str | None = None
    ack_requested: bool = False  # X12 ISA14
    interchange_index: int = 0  # 0-based position of the interchange in the file

    @property
    def interchange_key(self) -> str | None:
        """What makes an interchange unique for a sender: (standard, sender, control number)."""
        if self.interchange_control_number is None:
            return None
        sender = f"{self.sender_qualifier or ''}:{self.sender_id or ''}".strip()
        return f"{self.standard}|{sender}|{self.interchange_control_number}"


@dataclass(slots=True)
class InterchangeOpened:
    envelope: Envelope
    warnings: list[str] = field(default_factory=list)
    # Set by a container (an e-mail) on an interchange read from one of its parts: that
    # part's bytes, so an acknowledgement copies the interchange's own separators and dates.
    source: bytes | None = None


@dataclass(slots=True)
class InterchangeClosed:
    envelope: Envelope
    digest: str  # sha256 hex of the interchange's normalized content
    errors: list[str] = field(default_factory=list)  # envelope-level problems, readable
    document_count: int = 0
    # False when the trailer (IEA, UNZ) or a group trailer (GE, UNE) is missing: the input was
    # cut off, documents may be missing, and the interchange is refused as a whole.
    complete: bool = True


@dataclass(slots=True)
class Document:
    """One business document, ready for a mapper.

    `body` is format-specific: for X12 a list of segments, each a list of elements
    (element 0 is the segment id; a composite element is a list of components).
    `position` says where the document starts (``line 3, segment 3``).
    """

    envelope: Envelope
    doc_type: str  # "850", "ORDERS", "OrderRequest", ...
    control_number: str | None
    body: Any
    position: str
    index: int  # 0-based position of the document in the file
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class DocumentRejected:
    envelope: Envelope
    doc_type: str | None
    control_number: str | None
    reason: str  # stable code, e.g. X12_SE_COUNT
    message: str  # a sentence a person understands
    position: str
    index: int


Event = InterchangeOpened | Document | DocumentRejected | InterchangeClosed


class Parser(Protocol):
    """A format's reader. `name` is the format name used by `--format`."""

    name: str

    def sniff(self, head: bytes) -> bool:
        """True if the first bytes of an input look like this format."""
        ...

    def parse(self, stream: Any, *, name: str = "<input>") -> Iterator[Event]:
        """Yield events for a binary stream. Raise ParseError for unreadable input."""
        ...
