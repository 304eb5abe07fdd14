from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, ConfigDict, Field

from connectors.targets.auth import AuthConfig
from connectors.targets.rest import RestTimeouts
from gateway.plugins import TargetConfigBase
from gateway.retry import RetryPolicy

PROPERTY = r"^[a-z][a-z0-9_]{0,99}$"

#: Where the contact's e-mail is read from, tried in the order given (the party's contact e-mail).
EmailSource = Literal["buyer", "bill_to", "ship_to"]
DEFAULT_EMAIL_SOURCES: tuple[EmailSource, ...] = ("buyer", "bill_to", "ship_to")


class HubSpotConfig(TargetConfigBase):
    """Records each order in HubSpot CRM: the buyer's contact (upserted by e-mail), a deal and its line items."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["hubspot"] = "hubspot"
    name: str = Field(description="Unique name of this connector.")
    url: AnyHttpUrl = Field(AnyHttpUrl("https://api.hubapi.com"), description="The HubSpot API base URL.")
    auth: AuthConfig = Field(
        description="A private app's token ({type: bearer, token_env: NAME}) or OAuth2 client credentials."
    )
    key_property: str = Field(
        "order_gateway_key", pattern=PROPERTY,
        description="A deal property with unique values that holds the delivery's key (create it in HubSpot first).",
    )
    po_property: str | None = Field(
        None, pattern=PROPERTY, description="A deal property that receives the PO number (unset: only in the deal name)."
    )
    pipeline: str = Field("default", description="The pipeline of new deals.")
    dealstage: str = Field("closedwon", description="The stage of a new deal (an internal stage id).")
    cancel_stage: str = Field("closedlost", description="The stage a cancelled order's deal moves to.")
    email_from: list[EmailSource] = Field(
        default_factory=lambda: list(DEFAULT_EMAIL_SOURCES), min_length=1,
        description="Whose contact e-mail becomes the deal's contact, first present wins.",
    )
    require_contact: bool = Field(
        False, description="Refuse an order without a contact e-mail (PermanentError); false: the deal has no contact."
    )
    timeout: RestTimeouts = Field(default_factory=RestTimeouts, description="Per-call and per-send deadlines.")
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="Retry policy for transient failures.")
    verify_tls: bool = Field(True, description="Verify the server's TLS certificate.")

    def call_seconds(self) -> float:
        return self.timeout.total
