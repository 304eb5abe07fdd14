"""The dispatcher's AS2 channels.

``as2:<partner>`` (`As2AckChannel`): acknowledgements and other documents sent by AS2, each
confirmed by a verified MDN.

A partner gets its acknowledgements this way with ``acks: {as2: true}`` and a ``url`` in its
``intake.as2.partners`` entry. The outbox row's idempotency key becomes the AS2 Message-ID,
so a retry after an unknown error is a resend the partner recognises (duplicate-document):
the channel is idempotent. What `send` returns, stored in the row's history, holds the MDN as
received (signed by the partner, with the MIC): the proof of delivery for disputes.

Errors are `gateway.as2.sender`'s: TransientError (retried), PermanentError (dead letter: a
negative MDN, or one whose signature or MIC does not verify), ConfigError (no url).

``as2mdn:<partner>`` (`As2MdnChannel`): an asynchronous MDN we owe the partner (queued by
the receiver once the message is committed), POSTed to the partner's configured ``mdn_url``,
never to an address from the message. Idempotent: a second copy of an MDN changes nothing.
Errors: connection failure, HTTP 408/429/5xx -> TransientError; other 4xx -> PermanentError.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import requests

from gateway.as2.config import As2Config
from gateway.as2.identity import load_identity
from gateway.as2.sender import As2Sender
from gateway.errors import ConfigError, PermanentError, TransientError
from gateway.retry import parse_retry_after
from gateway.store.outbox import ClaimedDelivery

__all__ = ["As2AckChannel", "As2MdnChannel"]

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


class As2MdnChannel:
    idempotent: ClassVar[bool] = True

    def __init__(self, config: As2Config, partner: str):
        entry = next((p for p in config.partners if p.partner == partner), None)
        if entry is None or entry.mdn_url is None:
            raise ConfigError(f"intake.as2 partner {partner!r} has no mdn_url any more")
        self.url = entry.mdn_url
        self.session = requests.Session()

    def send(self, document: ClaimedDelivery) -> str:
        head, _, body = document.body.partition(b"\r\n\r\n")
        headers = dict(
            line.split(": ", 1) for line in head.decode("utf-8", "replace").split("\r\n") if ": " in line
        )
        try:
            answer = self.session.post(self.url, data=body, headers=headers, timeout=(10.0, 60.0))
        except requests.RequestException as exc:
            raise TransientError(f"MDN to {self.url}: {type(exc).__name__}") from None
        if answer.status_code in (408, 429) or answer.status_code >= 500:
            raise TransientError(
                f"MDN to {self.url}: HTTP {answer.status_code}", status=answer.status_code,
                retry_after=parse_retry_after(answer.headers.get("Retry-After")),
            )
        if answer.status_code >= 300:
            raise PermanentError(f"MDN to {self.url}: HTTP {answer.status_code}", status=answer.status_code)
        return f"MDN posted to {self.url} (HTTP {answer.status_code})"

    def close(self) -> None:
        self.session.close()
