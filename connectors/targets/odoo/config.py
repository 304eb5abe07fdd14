from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, ConfigDict, Field

from connectors.targets.auth import AuthConfig, NoAuth
from connectors.targets.rest import DEFAULT_CODE_SOURCES, CodeSource, RestTimeouts
from gateway.plugins import TargetConfigBase
from gateway.retry import RetryPolicy


class OdooConfig(TargetConfigBase):
    """Creates each order as a sales order (sale.order) in Odoo over the external JSON-RPC API."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["odoo"] = "odoo"
    name: str = Field(description="Unique name of this connector.")
    url: AnyHttpUrl = Field(description="The Odoo server, e.g. https://mycompany.odoo.com (JSON-RPC at <url>/jsonrpc).")
    database: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$", description="Odoo database name.")
    username: str = Field(description="Odoo login the gateway uses (allowed to create contacts and sales orders).")
    password_env: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$",
        description="Name of the environment variable holding that user's API key (or password).",
    )
    customer_code_from: list[CodeSource] = Field(
        default_factory=lambda: list(DEFAULT_CODE_SOURCES), min_length=1,
        description="Where the customer's reference (res.partner ref) comes from, first present wins.",
    )
    create_customers: bool = Field(True, description="Create the customer (res.partner) when no partner has the ref.")
    state: Literal["quotation", "confirmed"] = Field(
        "confirmed", description="quotation: leave the new order a quotation; confirmed: action_confirm it."
    )
    auth: AuthConfig = Field(
        default_factory=NoAuth,
        description="Extra HTTP authentication in front of Odoo (a reverse proxy); Odoo's own login is password_env.",
    )
    timeout: RestTimeouts = Field(default_factory=RestTimeouts, description="Per-call and per-send deadlines.")
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="Retry policy for transient failures.")
    verify_tls: bool = Field(True, description="Verify the server's TLS certificate.")

    def call_seconds(self) -> float:
        return self.timeout.total
