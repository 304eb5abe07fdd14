"""HTTP JSON target: POSTs (or PUTs) each order as JSON to an ERP, CRM or shipping API,
and, when configured, sends changed and cancelled orders to their own endpoints.

Capabilities (per instance, from the config)
    idempotency_key=True   every attempt and every replay of a delivery carries the same
                           ``Idempotency-Key`` header; a target that honours it creates one order
    idempotent=False       a target that ignores the key may create a second order on a repeat,
                           so errors this connector did not classify are not retried
    updates                True when ``update_url`` is set
    cancels                True when ``cancel_url`` is set

Config keys (`HttpJsonConfig`)
    name, url, method (POST|PUT), update_url, update_method (PUT|PATCH|POST, default PUT),
    cancel_url, cancel_method (DELETE|POST|PATCH, default POST), headers, secret_headers
    (``${env:NAME}`` only), auth (connectors/targets/auth.py: basic, api_key, bearer,
    oauth2_client_credentials; an OAuth2 token is fetched again once when the target answers
    401), timeout.connect / timeout.read (always applied), payload
    (JMESPath file shaping the body; default: the canonical order), reference (JMESPath into
    the JSON answer giving the target's id, e.g. ``id``), retry (RetryPolicy),
    allow_private_targets, verify_tls

Request
    by the delivery's action: create → ``method url``; update → ``update_method update_url``;
    cancel → ``cancel_method cancel_url``. An action whose URL is not configured is refused
    (PermanentError): the pipeline only queues what the capabilities declare.
    update_url and cancel_url may hold ``{reference}`` (the target's id of the order, from the
    original delivery's receipt) and ``{po_number}``, in the path only; the host is fixed in
    config and checked like ``url``. Each value is percent-encoded as one path segment
    (``quote(value, safe="")``, so ``../admin?x=1#`` stays one segment); an empty value, ``.``
    or ``..`` is refused, and so is a ``{reference}`` URL for a delivery without a reference.
    body: the payload as UTF-8 JSON, for every action except a DELETE cancel, which has no
    body; headers: ``Content-Type: application/json`` (with a body), ``User-Agent:
    order-gateway/0.1``, the configured headers and secret headers, and ``Idempotency-Key:
    <delivery key>`` (not overridable; one key per outbox row, so an update has its own).
    Redirects are not followed. The whole call (connect, send, the complete answer) has a
    total deadline of timeout.connect + timeout.read seconds, enforced by a watchdog that
    closes the connection (a server trickling one byte a second cannot hold a worker). One
    session per connector keeps connections alive; proxy variables (HTTPS_PROXY, NO_PROXY,
    ...) and REQUESTS_CA_BUNDLE are read once, when the connector is built. The receipt of an update or cancel keeps the reference it was
    sent to when the answer names none, so a later version finds it.

Error mapping
    2xx                                   Receipt(status, reference)
    408, 425, 429, 5xx                    TransientError(status, retry_after from Retry-After)
    other 3xx and 4xx                     PermanentError(status, redacted body excerpt ≤ 300 chars)
    connection refused/reset, timeouts,   TransientError (a read timeout is ambiguous: the target
    a response cut short, the total       may have the order; the retry carries the same key)
    deadline passed
    DNS failure                           TransientError
    TLS failure                           PermanentError: a configuration problem (certificate,
                                          verify_tls), retrying will not fix it
    scheme not http(s), or a host that    UnsafeTarget, both a PermanentError and a ConfigError
    resolves to a loopback, private,      (SSRF guard), unless allow_private_targets is set:
    link-local, multicast, reserved or    raised when the connector is built (start-up stops)
    IPv4-mapped address                   and checked again at every send (DNS can change);
                                          the send connects only to the addresses it checked
                                          (pinned: a DNS rebind cannot slip in), keeping the
                                          host name for Host, SNI and certificate checks

Secrets (secret_headers) never appear in `repr`, in error messages or in logs; response
excerpts have secret values, e-mail addresses and bearer tokens masked.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import os
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import jmespath
import requests

from connectors.targets.auth import build_auth
from connectors.targets.http_json.config import HttpJsonConfig
from connectors.targets.http_json.transport import Call, GuardedAdapter
from gateway.connector import Capabilities, Delivery, Receipt, RenderedRequest, mask
from gateway.errors import ConfigError, DeliveryError, PermanentError, TransientError
from gateway.payload import load_payload
from gateway.redact import printable
from gateway.retry import parse_retry_after

__all__ = ["Endpoint", "HttpJsonConnector", "UnsafeTarget", "redact"]

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


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one action goes: a URL (template) with its host fixed in config."""

    action: str
    method: str
    template: str  # may hold {reference} / {po_number} in the path (update and cancel only)
    scheme: str
    host: str
    port: int
    display: str  # scheme://host[:port]/path, no credentials or query

    @classmethod
    def parse(cls, action: str, method: str, template: str) -> Endpoint:
        parts = urlsplit(template)
        scheme = (parts.scheme or "").lower()
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            port = 0
        return cls(action, method, template, scheme, parts.hostname or "", port, _display_url(template))


class HttpJsonConnector:
    """Sends one order per request; see the module docstring for the contract.

    Building it checks every configured URL once (scheme; the host's addresses unless
    allow_private_targets), raising UnsafeTarget; a name that cannot be resolved yet is
    checked again at every send.
    """

    # The class-level default; each instance declares updates/cancels from its config.
    capabilities = Capabilities(idempotency_key=True, idempotent=False, renders=True)

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
        self.session = session if session is not None else _new_session()
        self._resolver = resolver
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._payload = load_payload(config.payload)
        self._reference = jmespath.compile(config.reference) if config.reference else None
        self._secrets = [v.get_secret_value() for v in config.secret_headers.values() if v.get_secret_value()]
        self._auth = build_auth(config.auth, where=config.name, session=self.session)
        self._timeout = (config.timeout.connect, config.timeout.read)
        self._total = config.timeout.connect + config.timeout.read  # the whole call: connect, send, answer
        self._create = Endpoint.parse("create", config.method, self.url)
        self._scheme, self._host, self._port = self._create.scheme, self._create.host, self._create.port
        self._display_url = self._create.display
        self._endpoints: dict[str, Endpoint] = {"create": self._create}
        if config.update_url:
            self._endpoints["update"] = Endpoint.parse("update", config.update_method, config.update_url)
        if config.cancel_url:
            self._endpoints["cancel"] = Endpoint.parse("cancel", config.cancel_method, config.cancel_url)
        self.capabilities = Capabilities(
            idempotency_key=True,
            idempotent=False,
            updates="update" in self._endpoints,
            cancels="cancel" in self._endpoints,
            renders=True,
        )
        # Read once here, not on every send (requests scans the proxy variables per call):
        # each endpoint's proxies (HTTPS_PROXY, NO_PROXY, ...) and the CA bundle variables.
        self._proxies = {a: _environ_proxies(e.template) for a, e in self._endpoints.items()} if self._own_session else {}
        self._verify: bool | str = config.verify_tls and (_environ_ca_bundle() if self._own_session else True)
        for endpoint in self._endpoints.values():
            self._check(endpoint, resolve=False)
            if not self.config.allow_private_targets and not _is_ip(endpoint.host):
                try:
                    addresses = self._resolver(endpoint.host, endpoint.port)
                except (OSError, UnicodeError):
                    addresses = []  # DNS may be down at start-up; every send checks again
                self._refuse_forbidden(addresses, endpoint)

    def __repr__(self) -> str:
        return f"HttpJsonConnector(name={self.name!r}, url={self._display_url!r})"

    # -- the Connector protocol ----------------------------------------------------------------

    def render(self, delivery: Delivery) -> RenderedRequest:
        """The request `send` would make (`gateway mapping render`): secret headers masked, no
        DNS lookup and no connection."""
        endpoint, url, headers, body = self._request(delivery, secrets=False)
        return RenderedRequest(endpoint.method, _masked_url(url), headers, body)

    def _request(self, delivery: Delivery, *, secrets: bool = True) -> tuple[Endpoint, str, dict[str, str], bytes | None]:
        """The endpoint, URL, headers and body of the delivery: what send sends and render shows."""
        endpoint = self._endpoint_for(delivery)
        url = self._url_for(endpoint, delivery)
        body = None if endpoint.method == "DELETE" else self._body(delivery)
        headers = {"User-Agent": USER_AGENT, **self.config.headers}
        headers.update({k: v.get_secret_value() if secrets else mask(v.get_secret_value()) for k, v in self.config.secret_headers.items()})
        if body is not None:
            headers["Content-Type"] = "application/json"
        else:
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        headers["Idempotency-Key"] = delivery.idempotency_key
        return endpoint, url, headers, body

    def send(self, delivery: Delivery) -> Receipt:
        endpoint, url, headers, body = self._request(delivery)
        addresses = self._check(endpoint)
        fallback = delivery.target_reference if endpoint.action != "create" else None
        for attempt in (1, 2):
            # outside the call: fetching a token talks to another host than the checked one
            sent = {**headers, **self._auth.headers(), "Idempotency-Key": delivery.idempotency_key}
            response, content = self._exchange(endpoint, url, body, sent, addresses)
            if response.status_code == 401 and self._auth.refreshable and attempt == 1:
                self._auth.invalidate()  # the token was revoked or expired early: fetch one more
                continue
            break
        return self._interpret(response, content, fallback)

    def _exchange(
        self, endpoint: Endpoint, url: str, body: bytes | None, headers: dict[str, str], addresses: list[str] | None
    ) -> tuple[requests.Response, bytes]:
        """One request within the total deadline: the response and its (bounded) body."""
        call = Call(self._total, endpoint.host, addresses)
        try:
            with call, self.session.request(
                endpoint.method,
                url,
                data=body,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
                verify=self._verify,
                proxies=self._proxies.get(endpoint.action),
                stream=True,
            ) as response:
                content = self._read(response, call)
            if call.expired:  # the watchdog cut the answer short; what was read is not the answer
                raise requests.exceptions.ReadTimeout("total deadline")
            return response, content
        except requests.exceptions.RequestException as exc:
            raise self._map_error(exc, endpoint, call) from None

    def _map_error(self, exc: requests.exceptions.RequestException, endpoint: Endpoint, call: Call) -> DeliveryError:
        """The DeliveryError for a failed request (see Error mapping in the module docstring)."""
        if call.expired:
            return TransientError(
                f"no complete answer from {self.name} at {endpoint.display} within the total deadline of "
                f"{self._total:g} s (connect + read); it may have received the order, the retry carries "
                "the same Idempotency-Key"
            )
        if isinstance(exc, requests.exceptions.SSLError):
            return PermanentError(
                f"TLS failure talking to {self.name} at {endpoint.display}: {_reason(exc)}. "
                "This is a configuration problem (certificate, CA bundle or verify_tls), not retried"
            )
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return TransientError(
                f"could not connect to {self.name} at {endpoint.display} within {self._timeout[0]:g} s"
            )
        if isinstance(exc, requests.exceptions.ReadTimeout):
            return TransientError(
                f"no answer from {self.name} within {self._timeout[1]:g} s; it may have received the "
                "order, the retry carries the same Idempotency-Key"
            )
        if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
            return TransientError(f"connection to {self.name} at {endpoint.display} failed: {_reason(exc)}")
        return PermanentError(f"request to {self.name} at {endpoint.display} could not be made: {type(exc).__name__}")

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    # -- SSRF guard ----------------------------------------------------------------------------

    def check_target(self, *, resolve: bool = True) -> None:
        """Refuse a URL that is not http(s) or that reaches a non-public address.

        Checks every configured endpoint (url, update_url, cancel_url). Raises UnsafeTarget
        (a PermanentError), or TransientError if a name cannot be resolved right now. A send
        connects only to the addresses it checked (see transport.GuardedAdapter).
        """
        for endpoint in self._endpoints.values():
            self._check(endpoint, resolve=resolve)

    def _check(self, endpoint: Endpoint, *, resolve: bool = True) -> list[str] | None:
        """The SSRF guard for one endpoint (run before every send to it).

        Returns the checked addresses, the only ones the send may connect to (None: nothing
        was checked, as with allow_private_targets, and the HTTP client resolves as usual).
        """
        if endpoint.scheme not in ("http", "https"):
            raise UnsafeTarget(
                f"{self.name}: refusing URL scheme {endpoint.scheme!r}; only http and https are allowed"
            )
        if not endpoint.host:
            raise UnsafeTarget(f"{self.name}: the URL has no host")
        if self.config.allow_private_targets:
            return None
        if _is_ip(endpoint.host):
            addresses = [endpoint.host.split("%", 1)[0]]
        elif resolve:
            addresses = self._resolve(endpoint)
        else:
            return None
        self._refuse_forbidden(addresses, endpoint)
        return addresses

    def _refuse_forbidden(self, addresses: list[str], endpoint: Endpoint) -> None:
        for address in addresses:
            why = _forbidden(address)
            if why:
                raise UnsafeTarget(
                    f"{self.name}: refusing to send to {endpoint.display}: {endpoint.host} is {address}, "
                    f"{why}. Set allow_private_targets: true for an on-premise ERP you trust"
                )

    def _resolve(self, endpoint: Endpoint) -> list[str]:
        try:
            addresses = self._resolver(endpoint.host, endpoint.port)
        except (OSError, UnicodeError) as exc:
            raise TransientError(f"{self.name}: cannot resolve {endpoint.host}: {exc}") from None
        if not addresses:
            raise TransientError(f"{self.name}: {endpoint.host} resolved to no address")
        return addresses

    # -- actions -------------------------------------------------------------------------------

    def _endpoint_for(self, delivery: Delivery) -> Endpoint:
        endpoint = self._endpoints.get(delivery.action)
        if endpoint is not None:
            return endpoint
        if delivery.action in ("update", "cancel"):
            key = f"{delivery.action}_url"
            raise PermanentError(
                f"{self.name} does not take {delivery.action}s ({key} is not configured), so the "
                f"{delivery.action} of order {_order_label(delivery)} was not sent; configure {key} and replay it"
            )
        raise PermanentError(f"{self.name}: unknown delivery action {delivery.action!r} for order {_order_label(delivery)}")

    def _url_for(self, endpoint: Endpoint, delivery: Delivery) -> str:
        """The endpoint's URL with its placeholders filled in, each value one encoded path segment."""
        url = endpoint.template
        if endpoint.action == "create":
            return url
        if "{reference}" in url:
            if not delivery.target_reference:
                raise PermanentError(
                    f"{self.name}: cannot send the {delivery.action} of order {_order_label(delivery)}: "
                    f"{endpoint.action}_url needs {{reference}}, but the original delivery returned no reference "
                    "(the target's id of the order); configure `reference:` (a JMESPath into the target's "
                    "answer, e.g. 'id') so it is recorded"
                )
            url = url.replace("{reference}", self._segment("reference", delivery.target_reference, delivery))
        if "{po_number}" in url:
            url = url.replace("{po_number}", self._segment("po_number", delivery.order.get("po_number"), delivery))
        if urlsplit(url).hostname != endpoint.host:  # cannot happen: values are encoded, the host is fixed
            raise UnsafeTarget(f"{self.name}: the {endpoint.action} URL for order {_order_label(delivery)} changed host")
        return url

    def _segment(self, what: str, value: object, delivery: Delivery) -> str:
        text = "" if value is None or isinstance(value, (dict, list)) else str(value)
        if text in ("", ".", ".."):
            raise PermanentError(
                f"{self.name}: cannot send the {delivery.action} of order {_order_label(delivery)}: "
                f"its {what} {text!r} cannot be used in the URL"
            )
        return quote(text, safe="")

    # -- helpers -------------------------------------------------------------------------------

    def _body(self, delivery: Delivery) -> bytes:
        try:
            shaped = self._payload.render(delivery.order)
            return json.dumps(shaped, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        except (TypeError, ValueError, jmespath.exceptions.JMESPathError) as exc:
            raise PermanentError(f"{self.name}: the payload mapping {self._payload.source} failed: {exc}") from None

    def _read(self, response: requests.Response, call: Call) -> bytes:
        """The body, at most MAX_RESPONSE_BYTES; the watchdog ends a read past the call's deadline."""
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=65_536):
            chunks.append(chunk)
            size += len(chunk)
            if size >= MAX_RESPONSE_BYTES or call.expired:
                break
        return b"".join(chunks)[:MAX_RESPONSE_BYTES]

    def _interpret(self, response: requests.Response, content: bytes, fallback: str | None = None) -> Receipt:
        status = response.status_code
        if 200 <= status < 300:
            detail: dict[str, Any] = {}
            location = response.headers.get("Location")
            if location:
                detail["location"] = _display_url(location)
            reference = self._find_reference(content, detail)
            if reference is None and fallback:
                # an update or cancel answered without the id: the order keeps the one it was sent to
                detail.pop("reference_error", None)
                reference = fallback
            return Receipt(status=status, reference=reference, detail=detail)
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
        return redact(text, [*self._secrets, *self._auth.secrets()])[:EXCERPT_CHARS]


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_BEARER = re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}")


def _new_session() -> requests.Session:
    """One session per connector (kept-alive connections), pinned and watched (transport.py).

    trust_env is off: requests would scan the proxy variables on every call; the connector
    reads them once instead (_environ_proxies, _environ_ca_bundle). Nor is ~/.netrc read.
    """
    session = requests.Session()
    session.trust_env = False
    adapter = GuardedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _environ_proxies(url: str) -> dict[str, str]:
    """The proxies the environment sets for `url` (HTTP(S)_PROXY, ALL_PROXY, minus NO_PROXY)."""
    return dict(requests.utils.get_environ_proxies(url))


def _environ_ca_bundle() -> bool | str:
    """The CA bundle requests would take from the environment, else True (the default bundle)."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """One line of text with control characters, secrets, e-mails and bearer tokens masked."""
    text = printable(text, replacement=" ")
    for secret in secrets:
        text = text.replace(secret, "***")
    text = _EMAIL.sub("<email>", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} ***", text)
    return " ".join(text.split())


def _order_label(delivery: Delivery) -> str:
    po = delivery.order.get("po_number") if isinstance(delivery.order, dict) else None
    return f"{po} ({delivery.order_id})" if po else delivery.order_id


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


def _masked_url(url: str) -> str:
    """The URL as sent, with what may be a secret masked: the password in it and the value of
    every query parameter (API keys live there)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", f":{mask(parts.password)}@", 1)
    query = "&".join(
        f"{name}={mask(value)}" if sep else name
        for name, sep, value in (item.partition("=") for item in parts.query.split("&") if item)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


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
