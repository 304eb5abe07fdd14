from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, ConfigDict, Field, PositiveInt

from connectors.targets.auth import AuthConfig
from connectors.targets.rest import DEFAULT_CODE_SOURCES, CodeSource, RestTimeouts
from gateway.plugins import TargetConfigBase
from gateway.retry import RetryPolicy


class ERPNextConfig(TargetConfigBase):
    """Creates each order as a Sales Order in ERPNext (Frappe REST API)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["erpnext"] = "erpnext"
    name: str = Field(description="Unique name of this connector.")
    url: AnyHttpUrl = Field(description="The ERPNext site, e.g. https://erp.example.com (REST at <url>/api/resource/...).")
    auth: AuthConfig = Field(
        description=(
            "How the gateway authenticates; ERPNext's token: {type: api_key, header: Authorization, "
            "prefix: 'token ', value_env: NAME} with NAME holding api_key:api_secret."
        )
    )
    company: str | None = Field(None, description="The Company of new Sales Orders; unset: the user's default company.")
    customer_code_from: list[CodeSource] = Field(
        default_factory=lambda: list(DEFAULT_CODE_SOURCES), min_length=1,
        description="Where the customer's ID (the Customer document's name) comes from, first present wins.",
    )
    create_customers: bool = Field(True, description="Create the Customer (named by its code) when none has the code.")
    customer_group: str = Field("All Customer Groups", description="Customer Group of a created Customer.")
    territory: str = Field("All Territories", description="Territory of a created Customer.")
    submit: bool = Field(True, description="Submit a new Sales Order (docstatus 1); false: leave it a draft.")
    delivery_days: PositiveInt = Field(
        7, description="Delivery date = order date + this many days when the order asks for no delivery date."
    )
    key_field: str | None = Field(
        None,
        pattern=r"^[a-z_][a-z0-9_]{0,139}$",
        description=(
            "A Sales Order field (e.g. a custom field order_gateway_key) that stores the delivery's key; "
            "the lookup before a create then matches it too. Unset: the lookup is PO number + customer."
        ),
    )
    timeout: RestTimeouts = Field(default_factory=RestTimeouts, description="Per-call and per-send deadlines.")
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="Retry policy for transient failures.")
    verify_tls: bool = Field(True, description="Verify the server's TLS certificate.")

    def call_seconds(self) -> float:
        return self.timeout.total
