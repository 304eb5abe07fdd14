"""The dispatcher's AS2 channel (``as2:<partner>``): acknowledgements and other documents
sent by AS2, each confirmed by a verified MDN.

A partner gets its acknowledgements this way with ``acks: {as2: true}`` and a ``url`` in its
``intake.as2.partners`` entry. The outbox row's idempotency key becomes the AS2 Message-ID,
so a retry after an unknown error is a resend the partner recognises (duplicate-document):
the channel is idempotent. What `send` returns, stored in the row's history, holds the MDN as
received (signed by the partner, with the MIC): the proof of delivery for disputes.

Errors are `gateway.as2.sender`'s: TransientError (retried), PermanentError (dead letter: a
negative MDN, or one whose signature or MIC does not verify), ConfigError (no url).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from gateway.as2.config import As2Config
from gateway.as2.identity import load_identity
from gateway.as2.sender import As2Sender
from gateway.store.outbox import ClaimedDelivery

__all__ = ["As2AckChannel"]

MDN_CHARS = 20_000  # an MDN is 2-4 KB; a larger one is kept cut


class As2AckChannel:
    idempotent: ClassVar[bool] = True

    def __init__(self, config: As2Config, partner: str, partner_names: Iterable[str]):
        self.sender = As2Sender(load_identity(config, partner_names), partner)

    def send(self, ack: ClaimedDelivery) -> str:
        from gateway.acks.channels import file_name

        receipt = self.sender.send(ack.body, filename=file_name(ack), message_id=ack.idempotency_key or f"outbox-{ack.outbox_id}")
        return f"{receipt.summary()}\n\n{receipt.mdn.decode('latin-1')[:MDN_CHARS]}"

    def close(self) -> None:
        self.sender.close()
