from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, PositiveFloat, SecretStr

from gateway.dispatch.policy import RetryPolicy


class Timeouts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connect: PositiveFloat = Field(5.0, description="Seconds to wait for the TCP/TLS connection.")
    read: PositiveFloat = Field(30.0, description="Seconds to wait for the response after sending.")


class HttpJsonConfig(BaseModel):
    """POSTs each order as JSON to an HTTP endpoint (an ERP, CRM or shipping API)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["http_json"] = "http_json"
    name: str = Field(description="Unique name of this connector.")
    url: AnyHttpUrl = Field(description="Endpoint the order is sent to.")
    method: Literal["POST", "PUT"] = Field("POST", description="HTTP method.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers (not secrets).")
    secret_headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="Headers carrying credentials; values must be ${env:NAME} references."
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
