"""Acknowledgement builders: what the gateway says back to a trading partner.

Two kinds, kept apart on purpose:

- **syntax acknowledgements** say whether a document could be read: X12 TA1 (interchange),
  997 (4010) and 999 (5010); EDIFACT CONTRL. They never report business decisions.
- **business acknowledgements** say what the seller does with an order: X12 855, EDIFACT
  ORDRSP, with a status per line.

The inputs (`gateway.acks.model`) describe what to acknowledge independently of the
pipeline; each builder returns the complete text of one outbound interchange. Sending it,
deciding when to send what, and allocating control numbers durably are the caller's job
(`ControlNumbers` is the seam; `InMemoryControlNumbers` serves tests).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.acks.edifact import (
        EDIFACT_ACK_CODES,
        EdifactAckCode,
        EdifactHeader,
        build_contrl,
        build_ordrsp,
        edifact_ack_code,
        edifact_interchange_reasons,
        read_edifact_header,
    )
    from gateway.acks.model import (
        BUSINESS_REASONS,
        GROUP,
        INTERCHANGE,
        AckError,
        AckValueError,
        ControlNumbers,
        EdifactSeparators,
        EnvelopeReasons,
        GroupAck,
        InMemoryControlNumbers,
        InterchangeAck,
        LineResult,
        LineStatus,
        PoDecision,
        TransactionAck,
        X12Separators,
        is_business_reason,
        partner_key,
    )
    from gateway.acks.x12 import (
        X12_ACK_CODES,
        IsaHeader,
        X12AckCode,
        build_855,
        build_997,
        build_999,
        build_ta1,
        interchange_reasons,
        read_isa,
        x12_ack_code,
        x12_ack_error,
    )

# Imported on first use (PEP 562): `gateway translate` reads partners' acknowledgements
# (gateway.acks.inbound) and needs none of the builders, whose tables cost ~0.1 s to import.
_WHERE = {
    **dict.fromkeys(
        (
            "EDIFACT_ACK_CODES",
            "EdifactAckCode",
            "EdifactHeader",
            "build_contrl",
            "build_ordrsp",
            "edifact_ack_code",
            "edifact_interchange_reasons",
            "read_edifact_header",
        ),
        "gateway.acks.edifact",
    ),
    **dict.fromkeys(
        (
            "AckError",
            "AckValueError",
            "BUSINESS_REASONS",
            "ControlNumbers",
            "EdifactSeparators",
            "EnvelopeReasons",
            "GROUP",
            "GroupAck",
            "INTERCHANGE",
            "InMemoryControlNumbers",
            "InterchangeAck",
            "LineResult",
            "LineStatus",
            "PoDecision",
            "TransactionAck",
            "X12Separators",
            "is_business_reason",
            "partner_key",
        ),
        "gateway.acks.model",
    ),
    **dict.fromkeys(
        (
            "IsaHeader",
            "X12AckCode",
            "X12_ACK_CODES",
            "build_855",
            "build_997",
            "build_999",
            "build_ta1",
            "interchange_reasons",
            "read_isa",
            "x12_ack_code",
            "x12_ack_error",
        ),
        "gateway.acks.x12",
    ),
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "BUSINESS_REASONS",
    "EDIFACT_ACK_CODES",
    "GROUP",
    "INTERCHANGE",
    "X12_ACK_CODES",
    "AckError",
    "AckValueError",
    "ControlNumbers",
    "EdifactAckCode",
    "EdifactHeader",
    "EdifactSeparators",
    "EnvelopeReasons",
    "GroupAck",
    "InMemoryControlNumbers",
    "InterchangeAck",
    "IsaHeader",
    "LineResult",
    "LineStatus",
    "PoDecision",
    "TransactionAck",
    "X12AckCode",
    "X12Separators",
    "build_855",
    "build_997",
    "build_999",
    "build_contrl",
    "build_ordrsp",
    "build_ta1",
    "edifact_ack_code",
    "edifact_interchange_reasons",
    "interchange_reasons",
    "is_business_reason",
    "partner_key",
    "read_edifact_header",
    "read_isa",
    "x12_ack_code",
    "x12_ack_error",
]
