from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, ConfigDict, Field, SecretStr

from connectors.targets._shipping import Timeouts
from gateway.plugins import TargetConfigBase
from gateway.retry import RetryPolicy


class ShipStationConfig(TargetConfigBase):
    """Creates (and updates, cancels) each order in ShipStation (API v1, basic auth)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["shipstation"] = "shipstation"
    name: str = Field(description="Unique name of this connector.")
    url: AnyHttpUrl = Field(AnyHttpUrl("https://ssapi.shipstation.com"), description="The ShipStation API (v1) base URL.")
    api_key: SecretStr = Field(description="ShipStation API key (basic auth user); must be an ${env:NAME} reference.")
    api_secret: SecretStr = Field(description="ShipStation API secret (basic auth password); must be an ${env:NAME} reference.")
    order_status: Literal["awaiting_payment", "awaiting_shipment", "on_hold"] = Field(
        "awaiting_shipment", description="The orderStatus a new or updated order gets (a cancel sends cancelled)."
    )
    store_id: int | None = Field(None, description="ShipStation store (advancedOptions.storeId) the orders go to; unset: the manual store.")
    timeout: Timeouts = Field(default_factory=Timeouts, description="Connect and read timeouts of each API call.")
    webhook_secret_env: str | None = Field(
        None, pattern=r"^[A-Z_][A-Z0-9_]{0,99}$",
        description="Name of the environment variable holding the token ShipStation's SHIP_NOTIFY webhook URL carries "
        "(?token=, at least 16 characters); unset: no shipment webhooks (POST /intake/shipments/<name> answers 404).",
    )
    webhook_previous_secret_env: str | None = Field(
        None, pattern=r"^[A-Z_][A-Z0-9_]{0,99}$",
        description="Name of the environment variable holding the previous webhook secret, accepted beside the current "
        "one while the service is switched to the new one; unset it (or its variable) when the switch is done.",
    )
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="Retry policy for transient failures (429 waits X-Rate-Limit-Reset).")

    def call_seconds(self) -> float:
        # An update or cancel looks the order up first: two calls.
        return 2 * (self.timeout.connect + self.timeout.read)
