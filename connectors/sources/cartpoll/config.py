from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    field_validator,
    model_validator,
)

from gateway.plugins import SourceConfigBase

__all__ = ["CartPollConfig", "shop_base_url"]


def shop_base_url(value: str) -> str:
    """A shop's base URL as its API calls start from; ValueError when it could leak credentials."""
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("base_url must be an absolute http(s) URL such as https://shop.example.com")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("base_url may not hold credentials, a query or a fragment")
    return value.rstrip("/")


class CartPollConfig(SourceConfigBase):
    """A shop whose orders are fetched periodically from its REST API (webhooks get lost)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["cart_poll"] = Field("cart_poll", description="Source type: poll a shop's REST API for changed orders.")
    name: str = Field(
        min_length=1, max_length=100, description="Unique name of this source; recorded on every message it receives and keys its cursor."
    )
    platform: Literal["shopify", "woocommerce"] = Field(
        description="The shop software: shopify (Admin REST API) or woocommerce (wc/v3 REST API)."
    )
    partner: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$",
        description="The shop's name (lower case) as in intake.stores: the partner of its orders, so a polled "
        "order and the same order from a webhook are one order.",
    )
    base_url: str = Field(
        description="The shop's address, e.g. https://shop.example.com (Shopify: https://{shop}.myshopify.com). "
        "Must be https; hosts resolving to private or loopback addresses are refused."
    )
    api_version: str = Field(
        "2024-10", pattern=r"^[0-9]{4}-[0-9]{2}$", description="Shopify Admin API version (ignored for WooCommerce)."
    )
    access_token: SecretStr | None = Field(
        None, description="Shopify Admin API access token (sent as X-Shopify-Access-Token), as an ${env:NAME} reference."
    )
    consumer_key: SecretStr | None = Field(
        None, description="WooCommerce REST API consumer key (HTTP basic auth user), as an ${env:NAME} reference."
    )
    consumer_secret: SecretStr | None = Field(
        None, description="WooCommerce REST API consumer secret (HTTP basic auth password), as an ${env:NAME} reference."
    )
    poll_seconds: PositiveFloat = Field(300.0, description="Seconds between two polls of the shop.")
    overlap_seconds: float = Field(
        120.0,
        ge=0,
        description="Each poll re-reads this much before the cursor so clock skew loses nothing; "
        "orders read again are the same bytes and the store skips them.",
    )
    page_size: int = Field(100, ge=1, le=250, description="Orders per request (Shopify: at most 250; WooCommerce: at most 100).")
    timeout: tuple[PositiveFloat, PositiveFloat] = Field(
        (5.0, 30.0), description="Connect and read timeouts of each request, in seconds."
    )
    allow_private_targets: bool = Field(
        False,
        description="Allow base_url on a private or loopback address and plain http (for tests only; never in production).",
    )
    initial_lookback_hours: PositiveFloat = Field(
        24.0, description="With no cursor yet (first start), fetch orders updated in this many past hours."
    )
    max_page_bytes: PositiveInt = Field(
        20_000_000, description="A larger response page is not read; the poll ends and is logged."
    )

    @property
    def format(self) -> str:
        """The input format of every message (the platform's order JSON)."""
        return self.platform

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return shop_base_url(value)

    @model_validator(mode="after")
    def _credentials(self) -> CartPollConfig:
        if urlsplit(self.base_url).scheme != "https" and not self.allow_private_targets:
            raise ValueError("base_url must use https: the shop's credentials are sent with every request")
        if self.platform == "shopify":
            if self.access_token is None:
                raise ValueError("a shopify source needs access_token")
            if self.page_size > 250:
                raise ValueError("shopify returns at most 250 orders per page")
        else:
            if self.consumer_key is None or self.consumer_secret is None:
                raise ValueError("a woocommerce source needs consumer_key and consumer_secret")
            if self.page_size > 100:
                raise ValueError("woocommerce returns at most 100 orders per page (page_size)")
        return self
