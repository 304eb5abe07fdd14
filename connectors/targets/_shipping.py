"""What the shipping connectors (ShipStation, EasyPost) share: one HTTP session per connector
with deadlines and pinned addresses, the mapping of an answer to the core's errors, and the
canonical order's parts a carrier needs (addresses, the route, whole quantities), and a
service's shipment as the core reads it (`shipment_found`).

Error mapping of every call (each connector names the API's message)::

    connection refused / reset, timeout   TransientError (no status)
    408, 425, 429, 5xx                    TransientError (retry_after from the header the API uses)
    401, 403                              PermanentError: the credentials are wrong (fix the environment, replay)
    other 4xx                             PermanentError with the API's own message
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import requests
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat

from connectors.targets.http_json.transport import Call, GuardedAdapter
from connectors.targets.rest import iso_date
from gateway.connector import ShipmentFound
from gateway.errors import PermanentError, TransientError

__all__ = [
    "ShippingHttp", "Timeouts", "address", "first_step_reference", "route_of", "shipment_found", "whole",
]

_TRANSIENT = frozenset({408, 425, 429})
_BODY_CHARS = 300


class Timeouts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connect: PositiveFloat = Field(5.0, description="Seconds to wait for the TCP/TLS connection.")
    read: PositiveFloat = Field(30.0, description="Seconds to wait for one answer after sending.")


class ShippingHttp:
    """One session to one API: `call` returns the JSON answer of a 2xx or raises per the table."""

    def __init__(
        self,
        name: str,
        base_url: str,
        timeouts: Timeouts,
        *,
        auth: tuple[str, str],
        message_of: Callable[[Any], str | None],
        retry_after_header: str = "Retry-After",
    ):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._timeouts = (timeouts.connect, timeouts.read)
        self._message_of = message_of
        self._retry_after_header = retry_after_header
        session = requests.Session()
        session.trust_env = False
        session.auth = auth
        adapter = GuardedAdapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self.session = session

    def call(self, method: str, path: str, body: Any = None, *, missing_ok: bool = False) -> Any:
        """`method` `path` (under the base URL; the caller checked every part it put in it).
        With `missing_ok` a 404 returns None instead of raising."""
        url = self.base_url + path
        host = urlsplit(url).hostname or ""
        try:
            with Call(self._timeouts[0] + self._timeouts[1], host, None):
                response = self.session.request(method, url, json=body, timeout=self._timeouts)
        except requests.RequestException as exc:
            raise TransientError(f"{self.name}: {method} {path} failed: {type(exc).__name__}") from None
        status = response.status_code
        if status == 404 and missing_ok:
            return None
        if 200 <= status < 300:
            try:
                return response.json() if response.content else {}
            except ValueError:
                # The API took the call but its answer is unreadable: repeating is safe (the
                # connectors are idempotent), guessing what it did is not.
                raise TransientError(f"{self.name}: {method} {path} answered HTTP {status} without JSON", status=status) from None
        try:
            parsed: Any = response.json()
        except ValueError:
            parsed = None
        said = self._message_of(parsed) if parsed is not None else None
        said = said or " ".join(response.text.split())[:_BODY_CHARS] or response.reason or ""
        text = f"HTTP {status} from {self.name} ({method} {path}): {said}"
        if status in _TRANSIENT or status >= 500:
            raise TransientError(text, status=status, retry_after=_seconds(response.headers.get(self._retry_after_header)))
        if status in (401, 403):
            raise PermanentError(f"{text}; check the connector's credentials (environment)", status=status)
        raise PermanentError(text, status=status)

    def close(self) -> None:
        self.session.close()


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds > 0 else None


def address(party: Any, *, name: str | None = None) -> dict[str, Any]:
    """A canonical party (`gateway.model.Party` as data) as street / city / state / postal / country."""
    party = party if isinstance(party, Mapping) else {}
    lines = [str(x) for x in party.get("address_lines") or []]
    contact = party.get("contact") if isinstance(party.get("contact"), Mapping) else {}
    return {
        "name": party.get("name") or name or "",
        "street1": lines[0] if lines else "",
        "street2": lines[1] if len(lines) > 1 else None,
        "city": party.get("city") or "",
        "state": party.get("region") or "",
        "postal_code": party.get("postal_code") or "",
        "country": party.get("country") or "",
        "phone": (contact or {}).get("phone"),
        "email": (contact or {}).get("email"),
    }


def route_of(order: Mapping[str, Any]) -> Mapping[str, Any]:
    """The order's route (`gateway.routing`: warehouse, carrier, service, weight_kg), or {}."""
    route = order.get("route")
    return route if isinstance(route, Mapping) else {}


def whole(value: Any, what: str, name: str) -> int:
    """A quantity a carrier's API takes as a whole number; PermanentError otherwise."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise PermanentError(f"{name}: {what} {value!r} is not a number") from None
    if number != number.to_integral_value() or number <= 0:
        raise PermanentError(f"{name}: {what} {value} is not a whole positive quantity; this API takes whole units")
    return int(number)


def first_step_reference(steps: Mapping[str, str | None]) -> str | None:
    """The earlier steps' references (`after:`) as one text for a free field, e.g. "erp: SO-17"."""
    found = [f"{name}: {ref}" for name, ref in steps.items() if ref]
    return "; ".join(found) or None


def shipment_found(*, carrier: object, service: object, tracking: object, ship_date: object) -> ShipmentFound:
    """One shipment as a service's JSON gives it (a value may be missing, empty or not text) as
    the core reads it: text or None, the date parsed (`connectors.targets.rest.iso_date`)."""
    return ShipmentFound(
        carrier=_text(carrier), service=_text(service), tracking=_text(tracking), ship_date=iso_date(ship_date)
    )


def _text(value: object) -> str | None:
    return str(value) if value else None
