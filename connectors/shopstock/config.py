"""Configuration of a shop that is told our stock levels (`stock_push:` in gateway.yaml).

    stock_push:
      - name: acme-shop
        platform: shopify                      # or woocommerce
        base_url: https://acme.myshopify.com
        access_token: ${env:ACME_SHOPIFY_TOKEN}
        location_id: 655441491                 # the Shopify location whose stock we set
        warehouses: [EAST]                     # whose available stock counts (default: all)
        every_minutes: 15                      # `gateway run` pushes what changed; 0: only by command
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    SecretStr,
    field_validator,
    model_validator,
)

from connectors.sources.cartpoll.config import shop_base_url

__all__ = ["ShopStockConfig"]


class ShopStockConfig(BaseModel):
    """A shop (Shopify or WooCommerce) that gets our available stock per SKU."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Short name of the shop (lower case).")
    platform: Literal["shopify", "woocommerce"] = Field(description="shopify (Admin REST API) or woocommerce (wc/v3 REST API).")
    base_url: str = Field(description="The shop's address, https://{shop}.myshopify.com or https://shop.example.com.")
    api_version: str = Field("2024-10", pattern=r"^[0-9]{4}-[0-9]{2}$", description="Shopify Admin API version.")
    access_token: SecretStr | None = Field(None, description="Shopify Admin API access token, an ${env:NAME} reference.")
    consumer_key: SecretStr | None = Field(None, description="WooCommerce consumer key, an ${env:NAME} reference.")
    consumer_secret: SecretStr | None = Field(None, description="WooCommerce consumer secret, an ${env:NAME} reference.")
    location_id: int | None = Field(None, description="Shopify: the location whose available quantity is set (required).")
    warehouses: list[str] = Field(default_factory=list, description="Warehouses whose available stock (on hand less reserved) is published; empty: all.")
    every_minutes: float = Field(15.0, ge=0, description="How often `gateway run` pushes what changed; 0: only `gateway data push stock`.")
    requests_per_second: PositiveFloat = Field(2.0, description="At most this many API calls a second (Shopify's REST bucket leaks 2/s).")
    timeout: tuple[PositiveFloat, PositiveFloat] = Field((5.0, 30.0), description="Connect and read timeouts, seconds.")
    allow_private_targets: bool = Field(False, description="Allow a loopback/private base_url and plain http (tests only).")

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return shop_base_url(value)

    @model_validator(mode="after")
    def _credentials(self) -> ShopStockConfig:
        if urlsplit(self.base_url).scheme != "https" and not self.allow_private_targets:
            raise ValueError("base_url must use https: the shop's credentials are sent with every request")
        if self.platform == "shopify":
            if self.access_token is None or self.location_id is None:
                raise ValueError("a shopify shop needs access_token and location_id (Settings > Locations, or GET /locations.json)")
        elif self.consumer_key is None or self.consumer_secret is None:
            raise ValueError("a woocommerce shop needs consumer_key and consumer_secret")
        return self
