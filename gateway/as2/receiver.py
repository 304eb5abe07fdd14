"""Receiving AS2 messages: parse with pyas2lib, commit, then answer with the MDN.

One message, in this order:

1. AS2-From, AS2-To and Message-ID are present and printable ..... else 400, nothing stored
2. pyas2lib decrypts, decompresses and verifies the signature with the partner's certificate
   and our key (the partner's ``encrypt``/``sign`` settings make either mandatory)
3. success: the payload is committed through `Pipeline.receive` (source ``as2``, partner from
   the configuration of the AS2-From, dedupe key AS2-From + Message-ID), then the signed MDN
   with the MIC is answered (sync), or the MDN is queued as an outbox document (kind ``MDN``,
   channel ``as2mdn:<partner>``) and the request answered 200: the dispatcher posts it to the
   partner's configured ``mdn_url`` with its retries and dead letters (async)
4. decryption, signature, decompression or security failure from a configured partner: the
   raw request is committed quarantined (reason ``AS2_DECRYPTION_FAILED``,
   ``AS2_AUTHENTICATION_FAILED``, ...) for a person, then the negative MDN is answered with
   pyas2lib's disposition (``processed/Error: decryption-failed`` ...)
5. an unknown AS2-To or AS2-From: the negative MDN (``unknown-trading-partner``), nothing stored
6. the store cannot be written: 503 with Retry-After and no MDN; the partner sends again

A repeated Message-ID from the same partner is a duplicate in the store (no second message,
so never a second order) and is answered with the same positive MDN as the first time: the
partner may be resending because our first MDN never reached it. Every MDN we send is recorded
as an ``as2_mdn`` event on the stored message (its Message-ID, disposition and MIC), for disputes.

Errors: `ConfigError` at start-up (unreadable certificate or key, a partner not configured,
a missing password variable); nothing raised per message, every outcome is an answer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.as2.config import As2Config
from gateway.as2.identity import Peer, load_identity
from gateway.as2.sender import reported_mic
from gateway.connector import RawMessage
from gateway.errors import StoreUnavailable
from gateway.store import add_event, documents
from gateway.store.documents import NewDocument

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)

__all__ = ["MDN_CHANNEL", "MDN_KIND", "SOURCE", "As2Answer", "As2Receiver"]

SOURCE = "as2"
MDN_KIND = "MDN"  # an asynchronous MDN we owe a partner, as an outbox document
MDN_CHANNEL = "as2mdn"
RETRY_AFTER_SECONDS = 60
_PRINTABLE = re.compile(r"[!-~][ -~]{0,254}")  # a header value we store: printable ASCII, bounded
# Headers of the HTTP request that are not part of the AS2 MIME message.
_HOP_HEADERS = frozenset({"host", "connection", "content-length", "transfer-encoding", "keep-alive", "expect"})


@dataclass(slots=True)
class As2Answer:
    """What the HTTP endpoint sends back."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # For the intake's counters (gateway_intake_requests_total{outcome="as2_..."}): accepted,
    # duplicate, refused (a negative MDN), unknown_partner, malformed, store_unavailable.
    outcome: str = "malformed"


class As2Receiver:
    """Turns one AS2 HTTP request into an answer; blocking, call it from a worker thread."""

    def __init__(
        self,
        gateway: Gateway,
        config: As2Config,
        *,
        store_timeout: float,
    ):
        self.gateway = gateway
        self.config = config
        self.store_timeout = store_timeout
        identity = load_identity(config, (p.name for p in getattr(gateway.config, "partners", [])))
        self.org = identity.org
        self.anonymous = identity.anonymous
        self.peers = identity.peers
        self._message_class = _bounded_message_class(config.max_payload_bytes)

    # -- one request -------------------------------------------------------------------------

    def receive(self, headers: Iterable[tuple[str, str]], body: bytes, client: str = "?") -> As2Answer:
        """Parse, commit, answer (see the module docstring)."""
        pairs = [(k, v) for k, v in headers if k.lower() not in _HOP_HEADERS]
        found = {k.lower(): v for k, v in pairs}
        for name in ("as2-from", "as2-to", "message-id"):
            if not _PRINTABLE.fullmatch(found.get(name, "")):
                log.info("as2: request from %s without a usable %s header; refused", client, name)
                return As2Answer(400, f"missing or invalid {name} header\n".encode())
        if not body:
            return As2Answer(400, b"empty body\n")
        raw = "".join(f"{k}: {v}\r\n" for k, v in pairs).encode("latin-1", "replace") + b"\r\n" + body

        message = self._message_class()
        # To an unknown partner the negative MDN goes unsigned: an organization without keys
        # (pyas2lib would otherwise sign with the settings of a partner it does not have).
        org = self.org if _unquote(found["as2-from"]) in self.peers else self.anonymous
        try:
            status, (exc, _trace), mdn = message.parse(
                raw,
                find_org_cb=lambda as2_id: org if as2_id == self.config.our_id else None,
                find_partner_cb=lambda as2_id: self.peers[as2_id].partner if as2_id in self.peers else None,
            )
        except Exception as crash:  # pyas2lib catches its own errors; this is a last resort, never a 500
            log.warning("as2: request from %s could not be parsed: %s", client, type(crash).__name__)
            return As2Answer(400, b"not an AS2 message\n")
        as2_from = _unquote(found["as2-from"])
        message_id = found["message-id"].strip().strip("<>")
        peer = self.peers.get(as2_from) if _unquote(found["as2-to"]) == self.config.our_id else None
        modifier = getattr(exc, "disposition_modifier", "") if exc is not None else ""
        if peer is None:
            log.warning("as2: message %r from unknown AS2 id %r (to %r) refused", message_id[:80], as2_from[:80], found["as2-to"][:80])
            answer = self._answer_mdn(mdn, None, peer, status, fallback=403)
            answer.outcome = "unknown_partner"
            return answer

        if status == "processed":
            raw_message = RawMessage(
                body=message.content,
                source=SOURCE,
                source_ref=f"as2:{as2_from}:{message_id}",
                display_name=_payload_name(message) or f"as2 {message_id}",
                dedupe_key=f"{as2_from}|{message_id}",
            )
        else:
            reason = "AS2_" + (modifier or "unexpected-processing-error").upper().replace("-", "_")
            log.warning(
                "as2: message %r from %s refused (%s): %s; stored quarantined for a person",
                message_id[:80], peer.config.partner, modifier, exc,
            )
            raw_message = RawMessage(
                body=raw,
                source=SOURCE,
                source_ref=f"as2:{as2_from}:{message_id}",
                display_name=f"as2 {message_id}",
                rejected=f"{reason}: {status}: {modifier}: {str(exc)[:300]}",
            )
        try:
            with self.gateway.store.lock_wait(self.store_timeout):
                result = self.gateway.pipeline.receive(raw_message, partner=peer.config.partner)
        except StoreUnavailable as err:
            log.error("as2: message %r from %s not stored (%s); answered 503, the partner will resend", message_id[:80], peer.config.partner, err)
            return As2Answer(503, b"store unavailable, send again later\n", {"Retry-After": str(RETRY_AFTER_SECONDS)}, "store_unavailable")
        log.info(
            "as2: message %r from %s stored as %s%s (%s)",
            message_id[:80], peer.config.partner, result.message_id, " (duplicate)" if result.duplicate else "", status,
        )
        answer = self._answer_mdn(mdn, result.message_id, peer, status, fallback=400)
        if answer.outcome != "store_unavailable":  # an asynchronous MDN could not be queued
            answer.outcome = "refused" if status != "processed" else "duplicate" if result.duplicate else "accepted"
        return answer

    def _answer_mdn(self, mdn: Any, stored: str | None, peer: Peer | None, status: str, fallback: int = 400) -> As2Answer:
        """The MDN in the HTTP answer (sync), or 200 now and the MDN posted later (async)."""
        if mdn is None:  # the partner asked for no MDN: the HTTP status is all it learns
            return As2Answer(200 if status == "processed" else fallback, f"{status}\n".encode())
        if stored is not None:
            self._record(stored, mdn, status)
        if mdn.mdn_mode == "ASYNC" and peer is not None:
            if peer.config.mdn_url and stored is not None:
                return self._queue_mdn(mdn, stored, peer)
            log.warning("as2: %s asked for an asynchronous MDN but has no mdn_url configured: answered synchronously", peer.config.partner)
        headers = {k: v for k, v in mdn.headers.items() if k.lower() != "mime-version"}
        return As2Answer(200, mdn.content, headers)

    def _queue_mdn(self, mdn: Any, stored: str, peer: Peer) -> As2Answer:
        """The asynchronous MDN as an outbox document; 200 once it is committed."""
        headers = "".join(f"{k}: {v}\r\n" for k, v in mdn.headers.items() if k.lower() != "mime-version")
        document = NewDocument(
            kind=MDN_KIND, partner=peer.config.partner, body=headers.encode("utf-8") + b"\r\n" + mdn.content,
            channel=f"{MDN_CHANNEL}:{peer.config.partner}",
        )
        try:
            with self.gateway.store.lock_wait(self.store_timeout), self.gateway.store.begin() as conn:
                documents.queue(conn, stored, [document], event_detail=f"asynchronous MDN {mdn.message_id} for {peer.config.partner}")
        except StoreUnavailable as exc:  # the message is stored; its resend will queue the MDN
            log.error("as2: asynchronous MDN for %s not queued (%s); answered 503", stored, exc)
            return As2Answer(503, b"store unavailable, send again later\n", {"Retry-After": str(RETRY_AFTER_SECONDS)}, "store_unavailable")
        return As2Answer(200, b"")

    def _record(self, stored: str, mdn: Any, status: str) -> None:
        """The MDN we answer with, as an event of the stored message (for disputes)."""
        mic = reported_mic(mdn.payload)
        detail = f"MDN {mdn.message_id} for {mdn.orig_message_id}: {status}" + (f"; MIC {mic}" if mic else "")
        try:
            with self.gateway.store.begin() as conn:
                add_event(conn, "as2_mdn", detail, message_id=stored)
        except StoreUnavailable as exc:  # the message is committed; only the record is missing
            log.error("as2: MDN for %s not recorded: %s", stored, exc)


def _unquote(as2_name: str) -> str:
    name = as2_name.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].replace('\\"', '"')
    return name


def _payload_name(message: Any) -> str | None:
    """The file name the partner gave its payload (Content-Disposition), if any."""
    try:
        name = message.payload.get_filename() if message.payload is not None else None
    except (TypeError, ValueError):
        return None
    return str(name) if name else None


def _bounded_message_class(limit: int) -> Any:
    """pyas2lib's Message, with a decompression that stops past `limit` bytes.

    pyas2lib expands compressed data in one call with no bound, and before the signature is
    checked: anybody with our (public) certificate could send a few KB that expand to GBs.
    This replaces its `_decompress_data` (same inputs and outputs) with a bounded one.
    """
    import zlib
    from email import message_from_bytes as parse_mime

    from asn1crypto import cms
    from pyas2lib import Message
    from pyas2lib.exceptions import DecompressionError

    class _Bounded(Message):
        def _decompress_data(self, payload: Any) -> tuple[bool, Any]:
            if not (
                payload.get_content_type() == "application/pkcs7-mime"
                and payload.get_param("smime-type") == "compressed-data"
            ):
                return False, payload
            try:
                info = cms.ContentInfo.load(payload.get_payload(decode=True))
                if info["content_type"].native != "compressed_data":
                    raise DecompressionError("Compressed data not found in ASN.1")
                data = info["content"]
                if data["compression_algorithm"]["algorithm"].native != "zlib":
                    raise DecompressionError("Unsupported compression algorithm")
                inflater = zlib.decompressobj()
                content = inflater.decompress(data["encap_content_info"]["content"].native, limit + 1)
            except DecompressionError:
                raise
            except Exception as exc:
                raise DecompressionError(f"Decompression failed with cause: {exc}") from exc
            if len(content) > limit or inflater.unconsumed_tail:
                raise DecompressionError(f"the decompressed payload is larger than {limit} bytes")
            return True, parse_mime(content)

    return _Bounded
