"""What the shipping connectors' webhooks share (`ShipmentWebhooks`): the secret from the
environment (and, while it is being changed, the previous one: both are accepted until the
service uses the new one), a constant-time comparison, and the body read as one JSON object.

The intake bounds the body's size and time before a connector sees it; the connector checks
the signature or token before it reads anything from the body.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Sequence
from typing import Any

from gateway.errors import ConfigError, WebhookRefused

__all__ = ["MIN_SECRET_LENGTH", "any_same_secret", "json_object", "previous_secret_from_env", "same_secret", "secret_from_env"]

#: Shorter secrets are refused: an empty one (an unset variable) would let anybody in.
MIN_SECRET_LENGTH = 16


def secret_from_env(connector: str, env: str) -> str:
    """The webhook secret in environment variable `env`; ConfigError when unset or too short."""
    value = os.environ.get(env, "")
    _check_length(connector, "webhook_secret_env", env, value,
                  f"{'is not set' if not value else 'is too short'}; set it to the webhook secret "
                  f"(at least {MIN_SECRET_LENGTH} characters) the service was given")
    return value


def previous_secret_from_env(connector: str, env: str | None) -> str | None:
    """The previous webhook secret (``webhook_previous_secret_env``), accepted beside the
    current one while a service switches over; None when not configured or its variable is
    unset (the switch is over). ConfigError when it is set but too short."""
    value = os.environ.get(env, "") if env is not None else ""
    if not value:
        return None
    _check_length(connector, "webhook_previous_secret_env", env, value,
                  f"is too short; set it to the old secret (at least {MIN_SECRET_LENGTH} characters), "
                  "or unset it once the service uses the new one")
    return value


def _check_length(connector: str, key: str, env: str | None, value: str, what: str) -> None:
    """ConfigError naming the connector, its key and the variable when `value` is too short."""
    if len(value) < MIN_SECRET_LENGTH:
        raise ConfigError(f"connector {connector}: {key}: environment variable {env} {what}")


def same_secret(given: str | bytes | None, expected: bytes) -> bool:
    """Whether `given` equals `expected`, in time that does not depend on where they differ
    (`hmac.compare_digest`); a missing value is simply wrong."""
    if not given:
        return False
    if isinstance(given, str):
        try:
            given = given.encode("utf-8")
        except UnicodeEncodeError:
            return False
    return hmac.compare_digest(given, expected)


def any_same_secret(given: str | bytes | None, expected: Sequence[bytes]) -> bool:
    """Whether `given` equals one of `expected` (the current and the previous secret): each is
    compared, in constant time, whichever matches."""
    matches = [same_secret(given, secret) for secret in expected]
    return any(matches)


def json_object(body: bytes, service: str) -> dict[str, Any]:
    """The verified body as a JSON object; WebhookRefused when it is not one."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise WebhookRefused(f"the body is not JSON as {service} sends it") from None
    if not isinstance(data, dict):
        raise WebhookRefused(f"the body is not a JSON object as {service} sends it")
    return data
