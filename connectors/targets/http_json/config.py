from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from connectors.targets.auth import AuthConfig, NoAuth
from gateway.plugins import TargetConfigBase
from gateway.retry import RetryPolicy

#: The only placeholders an update or cancel URL may contain; each is filled in with one
#: percent-encoded path segment.
URL_PLACEHOLDERS = ("{reference}", "{po_number}")

_HTTP_URL: TypeAdapter[AnyHttpUrl] = TypeAdapter(AnyHttpUrl)


def check_url_template(value: str) -> str:
    """An http(s) URL whose host is fixed here; `{reference}` and `{po_number}` only in the path.

    Raises ValueError with the reason. The template is kept as written (it is not normalized),
    so what is checked here is what the connector fills in and sends to.
    """
    if any(ch.isspace() or not ch.isprintable() or ch == "\\" for ch in value):
        raise ValueError("must not contain spaces, control characters or backslashes")
    rest = value
    for placeholder in URL_PLACEHOLDERS:
        rest = rest.replace(placeholder, "")
    if "{" in rest or "}" in rest:
        raise ValueError("the only placeholders allowed are {reference} and {po_number}")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("must be an http or https URL")
    for where, text in (("host", parts.netloc), ("query", parts.query), ("fragment", parts.fragment)):
        if "{" in text:
            raise ValueError(
                f"placeholders are allowed in the path only, not in the {where}: the host is fixed in config"
            )
    if not parts.hostname:
        raise ValueError("has no host")
    sample = value
    for placeholder in URL_PLACEHOLDERS:
        sample = sample.replace(placeholder, "x")
    try:
        parsed = _HTTP_URL.validate_python(sample)
    except ValidationError as exc:
        raise ValueError(f"is not a valid URL: {exc.errors()[0]['msg']}") from None
    # Two URL parsers must agree on where the request goes (no parser differential).
    if (parsed.host or "").strip("[]").lower() != parts.hostname.lower() or (parsed.port or 0) != (
        port or (443 if parts.scheme.lower() == "https" else 80)
    ):
        raise ValueError("is ambiguous: its host cannot be determined reliably")
    return value


class Timeouts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connect: PositiveFloat = Field(5.0, description="Seconds to wait for the TCP/TLS connection.")
    read: PositiveFloat = Field(30.0, description="Seconds to wait for the response after sending.")


class HttpJsonConfig(TargetConfigBase):
    """POSTs each order as JSON to an HTTP endpoint (an ERP, CRM or shipping API)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["http_json"] = "http_json"
    name: str = Field(description="Unique name of this connector.")
    url: AnyHttpUrl = Field(description="Endpoint the order is sent to.")
    method: Literal["POST", "PUT"] = Field("POST", description="HTTP method.")
    update_url: str | None = Field(
        None,
        description=(
            "Endpoint a changed order is sent to, e.g. https://erp.example.com/orders/{reference}. "
            "Placeholders (path only): {reference} (the target's id from the original delivery's "
            "answer, see `reference`) and {po_number}. Unset: this connector takes no updates."
        ),
    )
    update_method: Literal["PUT", "PATCH", "POST"] = Field("PUT", description="HTTP method for an update.")
    cancel_url: str | None = Field(
        None,
        description=(
            "Endpoint a cancellation is sent to, e.g. https://erp.example.com/orders/{reference}/cancel; "
            "same placeholders as update_url. Unset: this connector takes no cancellations."
        ),
    )
    cancel_method: Literal["DELETE", "POST", "PATCH"] = Field(
        "POST", description="HTTP method for a cancellation (DELETE sends no body)."
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers (not secrets).")
    secret_headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="Headers carrying credentials; values must be ${env:NAME} references."
    )
    auth: AuthConfig = Field(
        default_factory=NoAuth,
        description="Authentication (basic, api_key, bearer, oauth2_client_credentials; see connectors/targets/auth.py), besides secret_headers.",
    )
    timeout: Timeouts = Field(default_factory=Timeouts, description="Connect and read timeouts; always applied.")
    payload: Path | None = Field(None, description="JMESPath file shaping the request body (default: the canonical order).")
    reference: str | None = Field(
        None, description="JMESPath into the JSON response giving the target's id for the order (e.g. 'id')."
    )
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="Retry policy for transient failures.")
    allow_private_targets: bool = Field(
        False, description="Allow loopback and private addresses (tests, on-premise ERPs). Off by default against SSRF."
    )
    verify_tls: bool = Field(True, description="Verify the server's TLS certificate.")

    def call_seconds(self) -> float:
        return self.timeout.connect + self.timeout.read

    @field_validator("update_url", "cancel_url")
    @classmethod
    def _url_template(cls, value: str | None) -> str | None:
        return None if value is None else check_url_template(value)

    @model_validator(mode="after")
    def _reference_is_recorded(self) -> HttpJsonConfig:
        for field in ("update_url", "cancel_url"):
            template = getattr(self, field)
            if template and "{reference}" in template and not self.reference:
                raise ValueError(
                    f"{field} uses {{reference}}, but `reference` is not set, so the target's id is never "
                    "recorded from the original delivery; set `reference` (a JMESPath into the answer, e.g. 'id')"
                )
        return self
