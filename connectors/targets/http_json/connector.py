"""HTTP JSON target: POSTs (or PUTs) each order as JSON to an ERP, CRM or shipping API.

Capabilities
    idempotency_key=True   every attempt and every replay of a delivery carries the same
                           ``Idempotency-Key`` header; a target that honours it creates one order
    idempotent=False       a target that ignores the key may create a second order on a repeat,
                           so errors this connector did not classify are not retried

Config keys (`HttpJsonConfig`)
    name, url, method (POST|PUT), headers, secret_headers (``${env:NAME}`` only),
    timeout.connect / timeout.read (always applied), payload (JMESPath file shaping the body;
    default: the canonical order), reference (JMESPath into the JSON answer giving the
    target's id, e.g. ``id``), retry (RetryPolicy), allow_private_targets, verify_tls

Request
    body: the payload as UTF-8 JSON; headers: ``Content-Type: application/json``,
    ``User-Agent: order-gateway/0.1``, the configured headers and secret headers, and
    ``Idempotency-Key: <delivery key>`` (not overridable). Redirects are not followed.

Error mapping
    2xx                                   Receipt(status, reference)
    408, 425, 429, 5xx                    TransientError(status, retry_after from Retry-After)
    other 3xx and 4xx                     PermanentError(status, redacted body excerpt ≤ 300 chars)
    connection refused/reset, timeouts,   TransientError (a read timeout is ambiguous: the target
    a response cut short                  may have the order; the retry carries the same key)
    DNS failure                           TransientError
    TLS failure                           PermanentError: a configuration problem (certificate,
                                          verify_tls), retrying will not fix it
    scheme not http(s), or a host that    UnsafeTarget, both a PermanentError and a ConfigError
    resolves to a loopback, private,      (SSRF guard), unless allow_private_targets is set:
    link-local, multicast, reserved or    raised when the connector is built (start-up stops)
    IPv4-mapped address                   and checked again at every send (DNS can change)

Secrets (secret_headers) never appear in `repr`, in error messages or in logs; response
excerpts have secret values, e-mail addresses and bearer tokens masked.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import re
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import jmespath
import requests

from connectors.targets.http_json.config import HttpJsonConfig
from gateway.connector import Capabilities, Delivery, Receipt
from gateway.dispatch.policy import parse_retry_after
from gateway.errors import ConfigError, PermanentError, TransientError
from gateway.payload import load_payload

__all__ = ["HttpJsonConnector", "UnsafeTarget", "redact"]

log = logging.getLogger(__name__)

USER_AGENT = "order-gateway/0.1"
TRANSIENT_STATUSES = frozenset({408, 425, 429})
EXCERPT_CHARS = 300
MAX_RESPONSE_BYTES = 1_000_000  # an ERP's answer to one order; more is not read

Resolver = Callable[[str, int], list[str]]


def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (A and AAAA)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


class UnsafeTarget(PermanentError, ConfigError):
    """The URL leads somewhere orders must not go (SSRF guard).

    A configuration problem when the connector is built (start-up stops), a permanent
    delivery error when a name resolves to a forbidden address at send time.
    """

    def __init__(self, message: str):
        PermanentError.__init__(self, message)


class HttpJsonConnector:
    """Sends one order per request; see the module docstring for the contract.

    Building it checks the URL once (scheme; the host's addresses unless allow_private_targets),
    raising UnsafeTarget; a name that cannot be resolved yet is checked again at every send.
    """

    capabilities = Capabilities(idempotency_key=True, idempotent=False)

    def __init__(
        self,
        config: HttpJsonConfig,
        session: requests.Session | None = None,
        *,
        resolver: Resolver = resolve_host,
        clock: Callable[[], dt.datetime] | None = None,
    ):
        self.config = config
        self.name = config.name
        self.url = str(config.url)
        self._own_session = session is None
        self.session = session if session is not None else requests.Session()
        self._resolver = resolver
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._payload = load_payload(config.payload)
        self._reference = jmespath.compile(config.reference) if config.reference else None
        self._secrets = [v.get_secret_value() for v in config.secret_headers.values() if v.get_secret_value()]
        self._timeout = (config.timeout.connect, config.timeout.read)
        parts = urlsplit(self.url)
        self._scheme = (parts.scheme or "").lower()
        self._host = parts.hostname or ""
        try:
            self._port = parts.port or (443 if self._scheme == "https" else 80)
        except ValueError:
            self._port = 0
        self._display_url = _display_url(self.url)
        self.check_target(resolve=False)
        if not self.config.allow_private_targets and not _is_ip(self._host):
            try:
                addresses = self._resolver(self._host, self._port)
            except (OSError, UnicodeError):
                addresses = []  # DNS may be down at start-up; every send checks again
            self._refuse_forbidden(addresses)

    def __repr__(self) -> str:
        return f"HttpJsonConnector(name={self.name!r}, url={self._display_url!r})"

    # -- the Connector protocol ----------------------------------------------------------------

    def send(self, delivery: Delivery) -> Receipt:
        self.check_target()
        body = self._body(delivery)
        headers = {"User-Agent": USER_AGENT, **self.config.headers}
        headers.update({k: v.get_secret_value() for k, v in self.config.secret_headers.items()})
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = delivery.idempotency_key
        started = time.monotonic()
        try:
            with self.session.request(
                self.config.method,
                self.url,
                data=body,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
                verify=self.config.verify_tls,
                stream=True,
            ) as response:
                content = self._read(response, started)
                return self._interpret(response, content)
        except requests.exceptions.SSLError as exc:
            raise PermanentError(
                f"TLS failure talking to {self.name} at {self._display_url}: {_reason(exc)}. "
                "This is a configuration problem (certificate, CA bundle or verify_tls), not retried"
            ) from None
        except requests.exceptions.ConnectTimeout:
            raise TransientError(
                f"could not connect to {self.name} at {self._display_url} within {self._timeout[0]:g} s"
            ) from None
        except requests.exceptions.ReadTimeout:
            raise TransientError(
                f"no answer from {self.name} within {self._timeout[1]:g} s; it may have received the "
                "order, the retry carries the same Idempotency-Key"
            ) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise TransientError(f"connection to {self.name} at {self._display_url} failed: {_reason(exc)}") from None
        except requests.exceptions.RequestException as exc:
            raise PermanentError(
                f"request to {self.name} at {self._display_url} could not be made: {type(exc).__name__}"
            ) from None

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    # -- SSRF guard ----------------------------------------------------------------------------

    def check_target(self, *, resolve: bool = True) -> None:
        """Refuse a URL that is not http(s) or that reaches a non-public address.

        Raises UnsafeTarget (a PermanentError), or TransientError if the name cannot be
        resolved right now. The HTTP client resolves the name again: the address is not pinned.
        """
        if self._scheme not in ("http", "https"):
            raise UnsafeTarget(f"{self.name}: refusing URL scheme {self._scheme!r}; only http and https are allowed")
        if not self._host:
            raise UnsafeTarget(f"{self.name}: the URL has no host")
        if self.config.allow_private_targets:
            return
        if _is_ip(self._host):
            self._refuse_forbidden([self._host])
        elif resolve:
            self._refuse_forbidden(self._resolve())

    def _refuse_forbidden(self, addresses: list[str]) -> None:
        for address in addresses:
            why = _forbidden(address)
            if why:
                raise UnsafeTarget(
                    f"{self.name}: refusing to send to {self._display_url}: {self._host} is {address}, "
                    f"{why}. Set allow_private_targets: true for an on-premise ERP you trust"
                )

    def _resolve(self) -> list[str]:
        try:
            addresses = self._resolver(self._host, self._port)
        except (OSError, UnicodeError) as exc:
            raise TransientError(f"{self.name}: cannot resolve {self._host}: {exc}") from None
        if not addresses:
            raise TransientError(f"{self.name}: {self._host} resolved to no address")
        return addresses

    # -- helpers -------------------------------------------------------------------------------

    def _body(self, delivery: Delivery) -> bytes:
        try:
            shaped = self._payload.render(delivery.order)
            return json.dumps(shaped, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        except (TypeError, ValueError, jmespath.exceptions.JMESPathError) as exc:
            raise PermanentError(f"{self.name}: the payload mapping {self._payload.source} failed: {exc}") from None

    def _read(self, response: requests.Response, started: float) -> bytes:
        """The body, at most MAX_RESPONSE_BYTES, within connect + read seconds overall."""
        deadline = started + sum(self._timeout)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=65_536):
            chunks.append(chunk)
            size += len(chunk)
            if size >= MAX_RESPONSE_BYTES:
                break
            if time.monotonic() > deadline:
                raise requests.exceptions.ReadTimeout("response body too slow")
        return b"".join(chunks)[:MAX_RESPONSE_BYTES]

    def _interpret(self, response: requests.Response, content: bytes) -> Receipt:
        status = response.status_code
        if 200 <= status < 300:
            detail: dict[str, Any] = {}
            location = response.headers.get("Location")
            if location:
                detail["location"] = _display_url(location)
            return Receipt(status=status, reference=self._find_reference(content, detail), detail=detail)
        if status in TRANSIENT_STATUSES or 500 <= status < 600:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), now=self._clock())
            excerpt = self._excerpt(content)
            raise TransientError(
                f"HTTP {status} from {self.name}" + (f": {excerpt}" if excerpt else ""),
                status=status,
                retry_after=retry_after,
            )
        if 300 <= status < 400:
            where = _display_url(response.headers.get("Location", "")) or "no Location"
            raise PermanentError(
                f"HTTP {status} from {self.name}: redirect to {where} not followed; configure the final URL",
                status=status,
            )
        excerpt = self._excerpt(content)
        raise PermanentError(f"HTTP {status} from {self.name}" + (f": {excerpt}" if excerpt else ""), status=status)

    def _find_reference(self, content: bytes, detail: dict[str, Any]) -> str | None:
        if self._reference is None or not content:
            return None
        try:
            value = self._reference.search(json.loads(content))
        except ValueError:
            detail["reference_error"] = "the answer is not JSON"
            return None
        if value is None or isinstance(value, (dict, list)):
            detail["reference_error"] = f"{self.config.reference!r} found no single value in the answer"
            return None
        return str(value)[:200]

    def _excerpt(self, content: bytes) -> str:
        text = content[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
        return redact(text, self._secrets)[:EXCERPT_CHARS]


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_BEARER = re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}")


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """One line of text with control characters, secrets, e-mails and bearer tokens masked."""
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    for secret in secrets:
        text = text.replace(secret, "***")
    text = _EMAIL.sub("<email>", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} ***", text)
    return " ".join(text.split())


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _forbidden(address: str) -> str | None:
    """Why an address is not a public target, or None if it is."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return f"an IPv4-mapped address (of {ip.ipv4_mapped})"
    for attr, why in (
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address (cloud metadata lives here)"),
        ("is_multicast", "a multicast address"),
        ("is_unspecified", "the unspecified address"),
        ("is_reserved", "a reserved address"),
        ("is_private", "a private address"),
    ):
        if getattr(ip, attr):
            return why
    if not ip.is_global:
        return "not a public address"
    return None


def _display_url(url: str) -> str:
    """scheme://host[:port]/path: no credentials, no query (API keys live there)."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    if not parts.scheme:
        return parts.path[:200]
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}"[:300]


_ERRNO = re.compile(r"\[Errno -?\d+\] [^'\")\]]+")


def _reason(exc: BaseException) -> str:
    """A short cause without the URL (which may carry a query string)."""
    text = str(exc)
    match = _ERRNO.search(text)
    if match:
        return match.group(0).strip()
    for hint in ("Connection refused", "Connection reset", "Connection aborted", "RemoteDisconnected",
                 "certificate verify failed", "hostname mismatch", "wrong version number",
                 "Remote end closed connection", "IncompleteRead", "Response ended prematurely"):
        if hint.lower() in text.lower():
            return hint
    return type(exc).__name__
