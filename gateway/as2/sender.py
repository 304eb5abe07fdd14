"""Sending a document to a partner by AS2 and checking its MDN.

The document is compressed, signed and encrypted as the partner's ``compress``/``sign``/
``encrypt`` settings say, POSTed to its configured ``url``, and the synchronous MDN that comes
back is verified with the partner's certificate: its signature, and that the MIC it reports
is the MIC of what we sent. The verified MDN, raw, goes back to the caller to keep for disputes.

A `message_id` given by the caller makes a resend carry the same Message-ID, so the partner
recognises it (``processed/warning: duplicate-document`` counts as delivered): sending is
idempotent and an unknown error may be retried.

Errors, by what the caller should do::

    TransientError   retry: connection failed, HTTP 408/429/5xx, no MDN in the answer
    PermanentError   a person looks: the partner refused (negative MDN, HTTP 4xx), the MDN's
                     signature or MIC does not verify
    ConfigError      the partner has no AS2 url, or sending asynchronous MDNs is asked for
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import requests

from gateway.as2.identity import Identity, Peer
from gateway.errors import ConfigError, PermanentError, TransientError
from gateway.retry import parse_retry_after

log = logging.getLogger(__name__)

__all__ = ["As2Sender", "SendReceipt", "reported_mic"]

_TIMEOUT = (10.0, 120.0)  # connect, read: a partner may check a large document before answering
_LEFT = re.compile(r"[^A-Za-z0-9._-]")
_MIC = re.compile(r"^Received-Content-MIC: *([^\r\n]+)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class SendReceipt:
    """A document the partner confirmed with a verified MDN."""

    message_id: str
    mic: str
    disposition: str  # "processed", or "processed/warning: duplicate-document" for a resend
    mdn_message_id: str
    mdn: bytes  # the MDN as received (headers and body): the signed proof of receipt

    def summary(self) -> str:
        mic = f"MIC {self.mic} confirmed" if self.mic else "the MDN reports no MIC"
        return f"AS2 {self.message_id}: MDN {self.mdn_message_id} {self.disposition}; {mic}"


class As2Sender:
    """Sends to one partner (see the module docstring). Thread-safe: keeps no state per send."""

    def __init__(self, identity: Identity, partner: str, *, session: requests.Session | None = None):
        peer = identity.by_partner(partner)
        if peer is None:
            raise ConfigError(f"partner {partner!r} has no entry under intake.as2.partners")
        if peer.config.url is None:
            raise ConfigError(f"intake.as2 partner {partner!r} has no url: nothing can be sent to it by AS2")
        if peer.config.mdn_mode != "sync":
            raise ConfigError(f"intake.as2 partner {partner!r}: sending asks for synchronous MDNs only (mdn_mode: sync)")
        self.identity = identity
        self.peer: Peer = peer
        self.url = peer.config.url
        self.session = session or requests.Session()

    def send(self, payload: bytes, *, filename: str, message_id: str | None = None, content_type: str = "application/edi-x12") -> SendReceipt:
        from pyas2lib import Mdn, Message

        message = Message(self.identity.org, self.peer.partner)
        left = _LEFT.sub("-", message_id)[:200] if message_id else None
        message.build(payload, filename=_LEFT.sub("_", filename)[:100], content_type=content_type, message_id=left)
        try:
            answer = self.session.post(self.url, data=message.content, headers=message.headers, timeout=_TIMEOUT)
        except requests.RequestException as exc:
            raise TransientError(f"AS2 to {self.url}: {type(exc).__name__}") from None
        if answer.status_code in (408, 429) or answer.status_code >= 500:
            raise TransientError(
                f"AS2 to {self.url}: HTTP {answer.status_code}",
                status=answer.status_code,
                retry_after=parse_retry_after(answer.headers.get("Retry-After")),
            )
        if answer.status_code >= 400:
            raise PermanentError(f"AS2 to {self.url}: HTTP {answer.status_code}", status=answer.status_code)
        if "multipart/" not in answer.headers.get("Content-Type", ""):
            raise TransientError(f"AS2 to {self.url}: HTTP {answer.status_code} without an MDN")
        raw = "".join(f"{k}: {v}\r\n" for k, v in answer.headers.items()).encode("latin-1", "replace") + b"\r\n" + answer.content
        mdn = Mdn()
        status, detail = mdn.parse(raw, find_message_cb=lambda mid, _to: message if mid == message.message_id else None)
        disposition = f"{status}: {detail}" if detail else str(status)
        if status != "processed" and not (status == "processed/Warning" and detail == "duplicate-document"):
            # A refusal, or an MDN whose signature or MIC does not verify: never "delivered".
            raise PermanentError(f"AS2 {message.message_id} to {self.peer.config.partner}: MDN {disposition}")
        # pyas2lib compared the MIC when the MDN reports one; a duplicate-document MDN has none.
        mic = message.mic.decode() if message.mic and reported_mic(mdn.payload) else ""
        log.info("as2: %s sent to %s, MDN %s %s", message.message_id, self.peer.config.partner, mdn.message_id, disposition)
        return SendReceipt(str(message.message_id), mic, disposition, str(mdn.message_id), raw)

    def close(self) -> None:
        self.session.close()


def reported_mic(payload: object) -> str:
    """The Received-Content-MIC of an MDN (a parsed MIME message), "" when it has none."""
    walk = getattr(payload, "walk", None)
    for part in walk() if callable(walk) else ():
        if part.get_content_type() == "message/disposition-notification":
            found = _MIC.search(part.as_string())
            if found:
                return found.group(1).strip()
    return ""
