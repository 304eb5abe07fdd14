from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, PositiveFloat, SecretStr

from connectors.targets._shipping import Timeouts
from gateway.plugins import TargetConfigBase
from gateway.retry import RetryPolicy


class FromAddress(BaseModel):
    """Where the parcels leave from (the warehouse)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Sender name or company.")
    street1: str = Field(description="First street line.")
    street2: str | None = Field(None, description="Second street line.")
    city: str = Field(description="City.")
    state: str = Field("", description="State or region code.")
    zip: str = Field(description="Postal code.")
    country: str = Field("US", description="ISO country code.")
    phone: str | None = Field(None, description="Telephone number (some carriers require one).")


class RateChoice(BaseModel):
    """How a route's carrier and service (`routing.carriers`) read in EasyPost's rates."""

    model_config = ConfigDict(extra="forbid")

    carrier: str = Field(description="The route's carrier code, e.g. UPSN.")
    service: str = Field(description="The route's service, e.g. GND.")
    easypost_carrier: str = Field(description="EasyPost's carrier name, e.g. UPS.")
    easypost_service: str = Field(description="EasyPost's service name, e.g. Ground.")


class EasyPostConfig(TargetConfigBase):
    """Buys a label for each order in EasyPost: a shipment, its rates, the routing's rate bought."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["easypost"] = "easypost"
    name: str = Field(description="Unique name of this connector.")
    url: AnyHttpUrl = Field(AnyHttpUrl("https://api.easypost.com"), description="The EasyPost API base URL (calls go to <url>/v2/...).")
    api_key: SecretStr = Field(description="EasyPost API key (a test key buys test labels); must be an ${env:NAME} reference.")
    from_address: FromAddress = Field(description="Where the parcels leave from.")
    rates: list[RateChoice] = Field(
        default_factory=list,
        description="The route's carrier/service -> EasyPost's carrier/service; a route not listed is matched by name (case-insensitive).",
    )
    default_weight_oz: PositiveFloat | None = Field(
        None, description="Parcel weight (ounces) for an order whose route has no catalogue weight; unset: such an order is refused."
    )
    default_carrier: str | None = Field(None, description="EasyPost carrier bought for an order without a route (no routing configured).")
    default_service: str | None = Field(None, description="EasyPost service bought for an order without a route.")
    timeout: Timeouts = Field(default_factory=Timeouts, description="Connect and read timeouts of each API call.")
    webhook_secret_env: str | None = Field(
        None, pattern=r"^[A-Z_][A-Z0-9_]{0,99}$",
        description="Name of the environment variable holding the webhook secret given to EasyPost (X-Hmac-Signature, "
        "at least 16 characters); unset: no shipment webhooks (POST /intake/shipments/<name> answers 404).",
    )
    webhook_previous_secret_env: str | None = Field(
        None, pattern=r"^[A-Z_][A-Z0-9_]{0,99}$",
        description="Name of the environment variable holding the previous webhook secret, accepted beside the current "
        "one while the service is switched to the new one; unset it (or its variable) when the switch is done.",
    )
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="Retry policy for transient failures.")

    def call_seconds(self) -> float:
        # Look up, create, buy: at most three calls.
        return 3 * (self.timeout.connect + self.timeout.read)


