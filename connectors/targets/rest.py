"""The HTTP side shared by the Odoo, ERPNext and HubSpot targets: one JSON call with a deadline.

``RestTimeouts``
    connect / read bound each call (their sum is its total deadline, enforced by the watchdog
    of http_json/transport.py); total bounds one send, all its calls.
``RestClient.call``
    one request to ``base_url + path`` with the connector's authentication headers; the
    answer as (status, decoded JSON or text excerpt, headers). A 401 with a refreshable
    authentication (OAuth2) forgets the token and tries once more. Transport failures become
    DeliveryErrors here (below); what a status means is the connector's business, with
    ``transient_status`` for the common part.

Transport error mapping
    connection refused/reset, timeouts,   TransientError (an ambiguous timeout is safe: every
    the call's or the send's deadline     connector looks the order up by its reference before
    passed                                it creates anything)
    TLS failure                           PermanentError (certificate or verify_tls)
    anything else requests raises         PermanentError
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit

import requests
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat

from connectors.targets.auth import AuthConfig, Authenticator, build_auth
from connectors.targets.http_json.transport import (
    Call,
    GuardedAdapter,
    read_within,
    transport_error,
)
from gateway.errors import PermanentError, TransientError
from gateway.redact import printable
from gateway.retry import parse_retry_after

__all__ = [
    "DEFAULT_CODE_SOURCES", "Answer", "CodeSource", "RestClient", "RestTimeouts", "customer_code", "excerpt",
    "Verifiable", "iso_date", "key_marker", "order_lines", "segment", "transient_status", "unknown_products",
]

USER_AGENT = "order-gateway/0.1"
MAX_RESPONSE_BYTES = 5_000_000
EXCERPT_CHARS = 300
TRANSIENT_STATUSES = frozenset({408, 425, 429})


@runtime_checkable
class Verifiable(Protocol):
    """A target that can check its credentials and permissions without writing anything
    (`gateway config verify`)."""

    def verify(self) -> str:
        """One line saying what was checked; a DeliveryError or ConfigError when it fails."""
        ...


class RestTargetConfig(Protocol):
    """What RestClient.for_target reads from a connector's configuration."""

    name: str
    url: Any
    auth: AuthConfig
    timeout: RestTimeouts
    verify_tls: bool


class RestTimeouts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connect: PositiveFloat = Field(5.0, description="Seconds to wait for the TCP/TLS connection.")
    read: PositiveFloat = Field(30.0, description="Seconds to wait for one answer after sending.")
    total: PositiveFloat = Field(
        60.0, description="Seconds one send may take in all (its several calls); the dispatch lease must be longer."
    )


@dataclass(slots=True)
class Answer:
    status: int
    body: Any  # decoded JSON, or a text excerpt when the body is not JSON
    headers: dict[str, str] = field(default_factory=dict)


def segment(value: object, what: str) -> str:
    """`value` as one percent-encoded URL path segment; refuses empty, '.' and '..'."""
    text = "" if value is None or isinstance(value, (dict, list)) else str(value)
    if text in ("", ".", ".."):
        raise PermanentError(f"{what} {text!r} cannot be used in a URL")
    return quote(text, safe="")


def excerpt(body: Any, secrets: list[str]) -> str:
    """A one-line excerpt of an answer for an error message, secrets masked."""
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False, default=str)
    text = printable(text, EXCERPT_CHARS, " ")
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def transient_status(answer: Answer, where: str) -> TransientError | None:
    """TransientError for 408, 425, 429 and 5xx (with Retry-After), else None."""
    if answer.status in TRANSIENT_STATUSES or 500 <= answer.status < 600:
        retry_after = parse_retry_after(answer.headers.get("Retry-After"))
        return TransientError(f"{where}: HTTP {answer.status}", status=answer.status, retry_after=retry_after)
    return None


class RestClient:
    """JSON over HTTP to one API: base URL, authentication, per-call and per-send deadlines."""

    def __init__(
        self,
        name: str,
        base_url: str,
        auth: Authenticator,
        timeout: RestTimeouts,
        *,
        verify_tls: bool = True,
        session: requests.Session | None = None,
    ):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.timeout = timeout
        self.verify_tls = verify_tls
        self._own_session = session is None
        if session is None:
            session = requests.Session()
            session.trust_env = False
            adapter = GuardedAdapter()
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self.session = session
        self.host = urlsplit(self.base_url).hostname or ""
        self._send_deadline: float | None = None
        self.calls = 0

    @classmethod
    def for_target(cls, config: RestTargetConfig, session: requests.Session | None = None) -> RestClient:
        """The client of a connector configuration (its url, auth, timeout and verify_tls)."""
        auth = build_auth(config.auth, where=config.name, session=session)
        return cls(config.name, str(config.url), auth, config.timeout, verify_tls=config.verify_tls, session=session)

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    def start_send(self) -> None:
        """Begin one send: its calls together may take timeout.total seconds."""
        self._send_deadline = time.monotonic() + self.timeout.total

    def secrets(self) -> list[str]:
        return self.auth.secrets()

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """One request; retried once after a 401 when the authentication can be refreshed."""
        for attempt in (1, 2):
            answer = self._request(method, path, body, params, headers or {})
            if answer.status == 401 and self.auth.refreshable and attempt == 1:
                self.auth.invalidate()
                continue
            return answer
        raise AssertionError("unreachable")

    def _request(
        self, method: str, path: str, body: Any, params: dict[str, str] | None, extra: dict[str, str]
    ) -> Answer:
        where = f"{self.name} ({method} {path.split('?', 1)[0]})"
        seconds = self.timeout.connect + self.timeout.read
        if self._send_deadline is not None:
            seconds = min(seconds, self._send_deadline - time.monotonic())
            if seconds <= 0:
                raise TransientError(
                    f"{self.name}: the send took longer than timeout.total ({self.timeout.total:g} s); "
                    "the retry looks the order up first"
                )
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **extra, **self.auth.headers()}
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            headers["Content-Type"] = "application/json"
        call = Call(seconds, self.host, None)
        self.calls += 1
        try:
            with call, self.session.request(
                method, self.base_url + path, data=data, params=params, headers=headers,
                timeout=(self.timeout.connect, self.timeout.read), allow_redirects=False,
                verify=self.verify_tls, stream=True,
            ) as response:
                content = read_within(response, call, MAX_RESPONSE_BYTES)
            if call.expired:
                raise requests.exceptions.ReadTimeout("total deadline")
        except requests.exceptions.RequestException as exc:
            raise transport_error(exc, where, call) from None
        decoded: Any
        try:
            decoded = json.loads(content) if content else None
        except ValueError:
            decoded = content[:EXCERPT_CHARS].decode("utf-8", "replace")
        return Answer(response.status_code, decoded, dict(response.headers))


# -- what every ERP/CRM target reads from the canonical order --------------------------------

#: Where the customer's code is read from in the canonical order, tried in the order given.
CodeSource = Literal["bill_to", "buyer", "partner", "sender"]
DEFAULT_CODE_SOURCES: tuple[CodeSource, ...] = ("bill_to", "buyer", "partner", "sender")


def customer_code(order: dict[str, Any], sources: list[CodeSource]) -> tuple[str, str | None]:
    """(code, name or None) of the order's customer, from the first source present; else PermanentError."""
    for source in sources:
        if source in ("bill_to", "buyer"):
            party = order.get(source) or {}
            if party.get("code"):
                return str(party["code"]), party.get("name")
        elif source == "partner" and order.get("partner"):
            return str(order["partner"]), None
        elif source == "sender" and (order.get("source") or {}).get("sender_id"):
            return str(order["source"]["sender_id"]), None
    raise PermanentError(f"PO {order.get('po_number')}: no customer code in {', '.join(sources)}")


def order_lines(order: dict[str, Any]) -> list[dict[str, Any]]:
    """The order's lines; PermanentError when there are none or one carries no sku."""
    lines = list(order.get("lines") or [])
    if not lines:
        raise PermanentError(f"PO {order.get('po_number')}: the order has no lines")
    missing = [str(line.get("line_number") or i) for i, line in enumerate(lines, 1) if not line.get("sku")]
    if missing:
        raise PermanentError(f"PO {order.get('po_number')}: line(s) {', '.join(missing)} carry no product code (sku)")
    return lines


def unknown_products(order: dict[str, Any], system: str, unknown: list[str]) -> PermanentError:
    return PermanentError(f"PO {order.get('po_number')}: unknown product(s) in {system}: {', '.join(unknown)}")


def key_marker(key: str) -> str:
    """The text that ties a record in the target to one delivery (looked up before creating)."""
    return f"order-gateway delivery {key}"


def iso_date(value: object) -> dt.date | None:
    """An API's ISO date ("2026-12-05", or a timestamp that starts with one); None for None,
    False (Odoo's empty value) or anything else."""
    try:
        return dt.date.fromisoformat(value[:10]) if isinstance(value, str) and value else None
    except ValueError:
        return None
