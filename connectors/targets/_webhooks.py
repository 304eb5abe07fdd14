"""What the shipping connectors' webhooks share (`ShipmentWebhooks`): the secret from the
environment, a constant-time comparison, and the body read as one JSON object.

The intake bounds the body's size and time before a connector sees it; the connector checks
the signature or token before it reads anything from the body.
"""

from __future__ import annotations

import hmac
import json
import os
from typing import Any

from gateway.errors import ConfigError, WebhookRefused

__all__ = ["MIN_SECRET_LENGTH", "json_object", "same_secret", "secret_from_env"]

#: Shorter secrets are refused: an empty one (an unset variable) would let anybody in.
MIN_SECRET_LENGTH = 16


def secret_from_env(connector: str, env: str) -> str:
    """The webhook secret in environment variable `env`; ConfigError when unset or too short."""
    value = os.environ.get(env, "")
    if len(value) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"connector {connector}: webhook_secret_env: environment variable {env} "
            f"{'is not set' if not value else 'is too short'}; set it to the webhook secret "
            f"(at least {MIN_SECRET_LENGTH} characters) the service was given"
        )
    return value


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


def json_object(body: bytes, service: str) -> dict[str, Any]:
    """The verified body as a JSON object; WebhookRefused when it is not one."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise WebhookRefused(f"the body is not JSON as {service} sends it") from None
    if not isinstance(data, dict):
        raise WebhookRefused(f"the body is not a JSON object as {service} sends it")
    return data
