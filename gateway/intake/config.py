"""Configuration of the HTTP intake: where it listens, its limits, and the shops it serves.

    intake:
      port: 8080
      stores:
        - name: acme-shop                # becomes the partner of the shop's orders
          platform: shopify
          secrets: ["${env:ACME_SHOPIFY_SECRET}", "${env:ACME_SHOPIFY_SECRET_OLD}"]

Webhook secrets are typed as secrets (they print as ``**********``) and, like every secret
in the configuration, must be ``${env:NAME}`` references, never literals.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    field_validator,
    model_validator,
)

from gateway.as2.config import As2Config
from gateway.errors import ConfigError
from gateway.intake.signatures import MIN_SECRET_LENGTH

__all__ = ["MIN_SECRET_LENGTH", "ConsoleConfig", "FormConfig", "IntakeConfig", "OperatorApiConfig", "StoreConfig"]


class FormConfig(BaseModel):
    """One web order form the intake accepts at ``/intake/forms/<name>``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$",
        description="Short name of the form (lower case): the last part of its URL and the name "
        "of its mapping, mappings/forms/<name>.yaml.",
    )
    partner: str | None = Field(
        None, description="Partner of the form's orders (default: the form's name)."
    )
    secret: SecretStr | None = Field(
        None,
        description="Shared secret the form's sender puts in X-Form-Secret (a ${env:NAME} "
        "reference). Only for a sender that keeps it secret: a server, never a browser.",
    )
    standard_webhooks_secret: SecretStr | None = Field(
        None,
        description="Standard Webhooks signing secret (whsec_<base64> or plain text, a "
        "${env:NAME} reference): submissions must carry webhook-id, webhook-timestamp and "
        "webhook-signature.",
    )
    rate_limit_per_minute: int = Field(
        30, ge=1, description="Submissions per minute accepted from one client address."
    )
    max_body_bytes: int = Field(
        100_000, ge=1, description="Larger submissions are refused with 413."
    )

    @field_validator("secret", "standard_webhooks_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"a form secret must have at least {MIN_SECRET_LENGTH} characters "
                "(is the environment variable set?)"
            )
        if value is not None and value.get_secret_value().startswith("whsec_"):
            _webhook_key(value)  # raises ValueError when the base64 part is not base64
        return value

    @model_validator(mode="after")
    def _one_check(self) -> FormConfig:
        if self.secret is not None and self.standard_webhooks_secret is not None:
            raise ValueError("configure secret or standard_webhooks_secret, not both")
        return self


def _webhook_key(secret: SecretStr) -> bytes:
    """The HMAC key of a Standard Webhooks secret: whsec_<base64> decoded, else its UTF-8."""
    text = secret.get_secret_value()
    if text.startswith("whsec_"):
        try:
            key = base64.b64decode(text[len("whsec_") :], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("a whsec_ secret must be base64 after the prefix") from None
        if len(key) < 16:
            raise ValueError("a whsec_ secret must hold at least 16 bytes")
        return key
    return text.encode("utf-8")


class StoreConfig(BaseModel):
    """One online shop whose order webhooks the intake accepts."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$",
        description="Short name of the shop (lower case). It is the last part of the webhook URL "
        "(/intake/<platform>/<name>) and the partner of the shop's orders.",
    )
    platform: Literal["shopify", "woocommerce"] = Field(
        description="The shop software: shopify (X-Shopify-Hmac-Sha256) or woocommerce (X-WC-Webhook-Signature)."
    )
    secrets: list[SecretStr] = Field(
        min_length=1,
        max_length=2,
        description="Webhook signing secret(s) as ${env:NAME} references: the current one, and during a "
        "rotation the previous one too (deliveries signed with either are accepted).",
    )
    connectors: list[str] | None = Field(
        None, description="Connectors this shop's orders go to (default: all)."
    )

    @field_validator("secrets")
    @classmethod
    def _long_enough(cls, value: list[SecretStr]) -> list[SecretStr]:
        for secret in value:
            if len(secret.get_secret_value()) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"a webhook secret must have at least {MIN_SECRET_LENGTH} characters "
                    "(is the environment variable set?)"
                )
        return value


MIN_TOKEN_LENGTH = 24


class OperatorApiConfig(BaseModel):
    """The operators' HTTP API (/api/...), off unless configured."""

    model_config = ConfigDict(extra="forbid")

    token_env: str = Field(
        pattern=r"^[A-Z_][A-Z0-9_]{0,99}$",
        description="Name of the environment variable holding the bearer token operators send "
        f"(at least {MIN_TOKEN_LENGTH} characters); never the token itself.",
    )

    def token(self) -> bytes:
        """The token from the environment; ConfigError when it is unset or too short."""
        value = os.environ.get(self.token_env, "")
        if len(value) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                f"intake.operator_api.token_env: environment variable {self.token_env} "
                f"{'is not set' if not value else 'is too short'}; set it to a random token of at least {MIN_TOKEN_LENGTH} characters"
            )
        return value.encode()


class ConsoleConfig(BaseModel):
    """The web console (/console/...), off unless configured; users come from `gateway users add`."""

    model_config = ConfigDict(extra="forbid")

    session_hours: PositiveFloat = Field(
        8.0, description="A login lasts this long; then the person logs in again."
    )
    secure_cookie: bool = Field(
        False,
        description="Send the session cookie over HTTPS only: set it when a TLS-terminating proxy "
        "serves the console (the intake itself speaks plain HTTP).",
    )
    page_size: int = Field(50, ge=10, le=500, description="Rows per page in the order search and the queues.")
    max_failed_logins: PositiveInt = Field(
        10,
        description="Failed logins for one user name within 15 minutes after which its logins are "
        "refused (429) until the window passes: password guessing gets slow.",
    )


class IntakeConfig(BaseModel):
    """The HTTP server that receives shop webhooks."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(
        "127.0.0.1", description="Address to listen on (put a TLS-terminating proxy in front)."
    )
    port: int = Field(8080, ge=0, le=65535, description="TCP port to listen on (0: any free port).")
    max_body_bytes: PositiveInt = Field(
        1_000_000, description="Larger requests are refused with 413 before more than this is read."
    )
    body_timeout_seconds: PositiveFloat = Field(
        10.0,
        description="A request body not received completely within this time is refused with 408 (slow senders).",
    )
    max_connections: PositiveInt = Field(
        200,
        description="Open connections at most. At the limit a new connection closes the one that has "
        "waited longest for its request; when every connection is inside a request it is answered 503.",
    )
    header_timeout_seconds: PositiveFloat = Field(
        10.0,
        description="A connection whose request line and headers have not all arrived within this "
        "time is closed (slow clients cannot hold connections).",
    )
    store_timeout_seconds: PositiveFloat = Field(
        3.0,
        description="How long a delivery waits for the store (a lock held by another writer) before "
        "it is answered 503 with Retry-After; well inside Shopify's 5 s.",
    )
    rate_limit_per_minute: PositiveInt = Field(
        60,
        description="Requests per minute accepted from one client address on web-form endpoints. "
        "Signed webhooks are not limited: a shop's burst must never be refused.",
    )
    stores: list[StoreConfig] = Field(
        default_factory=list, description="The shops whose webhooks are accepted."
    )
    forms: list[FormConfig] = Field(
        default_factory=list, description="Web order forms accepted at /intake/forms/<name>."
    )

    operator_api: OperatorApiConfig | None = Field(
        None,
        description="The operators' HTTP API (/api/exceptions, /api/orders/{id}/approve ...): off unless "
        "configured; every request carries the bearer token from the named environment variable.",
    )

    console: ConsoleConfig | None = Field(
        None,
        description="The web console at /console/ (orders, the exception queue, dead letters, "
        "sources and partners): off unless configured; log in as a user made by `gateway users add`.",
    )
    as2: As2Config | None = Field(
        None,
        description="AS2 at POST /intake/as2: our AS2 id, certificate and key, and the partners that "
        "send to us (gateway.as2.config).",
    )

    @field_validator("forms")
    @classmethod
    def _unique_forms(cls, value: list[FormConfig]) -> list[FormConfig]:
        names = [f.name for f in value]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"form name {sorted(dup)[0]!r} is used twice")
        return value

    @field_validator("stores")
    @classmethod
    def _unique_names(cls, value: list[StoreConfig]) -> list[StoreConfig]:
        # Unique across platforms too: the name is the partner, and orders are keyed by partner + PO.
        seen: set[str] = set()
        for store in value:
            if store.name in seen:
                raise ValueError(f"store name {store.name!r} is used twice")
            seen.add(store.name)
        return value
