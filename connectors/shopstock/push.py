"""Our stock levels pushed to a shop, so it stops selling what we cannot ship (issue 13).

What is pushed: per SKU, the available quantity of the inventory master data (on hand less
reserved, over the configured warehouses; `gateway.store.shop_stock.available`), only where
it differs from what the shop last confirmed (`shop_stock` table), so a push after a quiet
hour is a handful of calls, not one per item.

    Shopify       GET  {base}/admin/api/{v}/products.json?limit=250&fields=id,variants
                       (variants carry sku and inventory_item_id; pages by Link rel="next",
                       followed only to the shop's own host)
                  POST {base}/admin/api/{v}/inventory_levels/set.json
                       {"location_id", "inventory_item_id", "available"}, one per SKU
    WooCommerce   GET  {base}/wp-json/wc/v3/products?per_page=100&page=K (X-WP-TotalPages),
                       and /products/{id}/variations for variable products
                  POST {base}/wp-json/wc/v3/products/batch (and .../{id}/variations/batch)
                       {"update": [{"id", "manage_stock": true, "stock_quantity"}]}, 100 a call

Calls are spaced to `requests_per_second`; a 429 waits for its Retry-After and tries again
(five times at most). Errors:

    401 / 403                  ShopStockError: the credentials or their permissions (write
                               inventory / products) are wrong; nothing more is tried
    connection, timeout, 5xx   the push stops; what was confirmed is kept, the rest goes next time
    422 / 400 for one SKU      that SKU fails (Shopify: tracking not enabled, ...), the others go on
    a SKU the shop lacks       listed (`not_in_shop`), not an error: shops sell a subset

Redirects are never followed (the credentials would go with them); a base_url resolving to a
private or loopback address is refused unless allow_private_targets (tests).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from connectors.shopstock.config import ShopStockConfig
from connectors.targets.http_json.connector import _forbidden, _is_ip, resolve_host
from gateway.errors import GatewayError
from gateway.retry import parse_retry_after

log = logging.getLogger(__name__)

__all__ = ["PushReport", "ShopStockError", "ShopStockPusher"]

USER_AGENT = "order-gateway/0.1 (stock levels)"
MAX_PAGES = 2000
MAX_RETRIES = 5
WOO_BATCH = 100


class ShopStockError(GatewayError):
    """The push cannot go on (credentials, a refused host); says what to fix."""


class _Stop(Exception):
    """A transient failure: end this push, keep what was confirmed."""


@dataclass
class PushReport:
    changed: int = 0  # SKUs whose level differs from what the shop last confirmed
    sent: dict[str, int] = field(default_factory=dict)  # SKU -> quantity the shop confirmed
    not_in_shop: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (SKU, why)
    stopped: str | None = None  # why the push ended early (transient; the rest goes next time)
    calls: int = 0


class ShopStockPusher:
    def __init__(
        self,
        config: ShopStockConfig,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        resolver: Callable[[str, int], list[str]] = resolve_host,
    ):
        self.config = config
        self.session = session or requests.Session()
        self.session.trust_env = False  # no proxy from the environment for the shop's API
        self._sleep, self._monotonic, self._resolver = sleep, monotonic, resolver
        parts = urlsplit(config.base_url)
        self._scheme, self._host = parts.scheme, (parts.hostname or "").lower()
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._last_call = -1e9

    # -- the push ---------------------------------------------------------------------------

    def push(self, levels: Mapping[str, int], previous: Mapping[str, int], *, dry_run: bool = False) -> PushReport:
        """Tell the shop every level in `levels` that differs from `previous` (what it last
        confirmed). `dry_run`: only count them."""
        changed = {sku: qty for sku, qty in levels.items() if previous.get(sku) != qty}
        report = PushReport(changed=len(changed))
        if not changed or dry_run:
            return report
        self._check_target()
        try:
            if self.config.platform == "shopify":
                self._shopify(changed, report)
            else:
                self._woocommerce(changed, report)
        except _Stop as stop:
            report.stopped = str(stop)
        return report

    # -- Shopify ----------------------------------------------------------------------------

    def _shopify(self, changed: dict[str, int], report: PushReport) -> None:
        base = f"{self.config.base_url}/admin/api/{self.config.api_version}"
        items: dict[str, int] = {}
        url: str | None = f"{base}/products.json"
        params: dict[str, Any] | None = {"limit": 250, "fields": "id,variants"}
        for _ in range(MAX_PAGES):
            if url is None:
                break
            resp, data = self._call(report, "GET", url, params=params)
            for product in data.get("products") or []:
                for variant in product.get("variants") or []:
                    sku, item = str(variant.get("sku") or "").strip(), variant.get("inventory_item_id")
                    if sku in changed and isinstance(item, int):
                        items.setdefault(sku, item)
            url, params = self._next_link(resp), None
        report.not_in_shop = sorted(set(changed) - set(items))
        for sku in sorted(items):
            body = {"location_id": self.config.location_id, "inventory_item_id": items[sku], "available": changed[sku]}
            resp, data = self._call(report, "POST", f"{base}/inventory_levels/set.json", body=body, per_item=True)
            if resp.status_code == 200:
                report.sent[sku] = changed[sku]
            else:
                report.failed.append((sku, _shopify_error(resp.status_code, data)))

    # -- WooCommerce ------------------------------------------------------------------------

    def _woocommerce(self, changed: dict[str, int], report: PushReport) -> None:
        base = f"{self.config.base_url}/wp-json/wc/v3"
        products: dict[str, int] = {}
        variations: dict[str, tuple[int, int]] = {}  # sku -> (parent, variation id)
        for product in self._woo_pages(report, f"{base}/products"):
            sku = str(product.get("sku") or "").strip()
            if sku in changed and isinstance(product.get("id"), int):
                products.setdefault(sku, product["id"])
            if product.get("type") == "variable" and product.get("variations"):
                for variation in self._woo_pages(report, f"{base}/products/{int(product['id'])}/variations"):
                    vsku = str(variation.get("sku") or "").strip()
                    if vsku in changed and isinstance(variation.get("id"), int):
                        variations.setdefault(vsku, (int(product["id"]), variation["id"]))
        report.not_in_shop = sorted(set(changed) - set(products) - set(variations))
        groups: dict[str, dict[int, str]] = {f"{base}/products/batch": {pid: sku for sku, pid in products.items()}}
        for sku, (parent, vid) in variations.items():
            if sku not in products:
                groups.setdefault(f"{base}/products/{parent}/variations/batch", {})[vid] = sku
        for url, by_id in groups.items():
            ids = sorted(by_id)
            for i in range(0, len(ids), WOO_BATCH):
                part = ids[i : i + WOO_BATCH]
                body = {"update": [{"id": pid, "manage_stock": True, "stock_quantity": changed[by_id[pid]]} for pid in part]}
                resp, data = self._call(report, "POST", url, body=body, per_item=True)
                if resp.status_code not in (200, 201):
                    for pid in part:
                        report.failed.append((by_id[pid], f"HTTP {resp.status_code}: {_woo_message(data)}"))
                    continue
                answered = {r.get("id"): r for r in (data.get("update") or []) if isinstance(r, dict)}
                for pid in part:
                    row = answered.get(pid)
                    if row is None:
                        report.failed.append((by_id[pid], "the shop's answer does not mention it"))
                    elif isinstance(row.get("error"), dict):
                        report.failed.append((by_id[pid], _woo_message(row)))
                    else:
                        report.sent[by_id[pid]] = changed[by_id[pid]]

    def _woo_pages(self, report: PushReport, url: str) -> Iterator[dict[str, Any]]:
        for page in range(1, MAX_PAGES + 1):
            resp, data = self._call(report, "GET", url, params={"per_page": 100, "page": page})
            yield from (p for p in data if isinstance(p, dict)) if isinstance(data, list) else ()
            try:
                total = int(resp.headers.get("X-WP-TotalPages", "1"))
            except ValueError:
                total = 1
            if page >= total:
                return

    # -- HTTP -------------------------------------------------------------------------------

    def _call(
        self, report: PushReport, method: str, url: str, *, params: dict[str, Any] | None = None, body: Any = None, per_item: bool = False
    ) -> tuple[requests.Response, Any]:
        """One API call, spaced and retried on 429. `per_item`: a 4xx other than 401/403/429
        is the item's problem (returned), not the push's."""
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        auth: tuple[str, str] | None = None
        if self.config.platform == "shopify":
            assert self.config.access_token is not None
            headers["X-Shopify-Access-Token"] = self.config.access_token.get_secret_value()
        else:
            assert self.config.consumer_key is not None and self.config.consumer_secret is not None
            auth = (self.config.consumer_key.get_secret_value(), self.config.consumer_secret.get_secret_value())
        for _attempt in range(MAX_RETRIES + 1):
            wait = self._last_call + 1 / self.config.requests_per_second - self._monotonic()
            if wait > 0:
                self._sleep(wait)
            self._last_call = self._monotonic()
            report.calls += 1
            try:
                resp = self.session.request(method, url, params=params, json=body, headers=headers, auth=auth,
                                            timeout=self.config.timeout, allow_redirects=False)  # fmt: skip
            except requests.RequestException as exc:
                raise _Stop(f"{self._host} unreachable ({type(exc).__name__})") from exc
            status = resp.status_code
            if status == 429:
                pause = parse_retry_after(resp.headers.get("Retry-After")) or 2.0
                log.info("stock push %s: rate limited (429); waiting %.1f s", self.config.name, pause)
                self._sleep(min(pause, 60.0))
                continue
            if status in (401, 403):
                what = "access_token" if self.config.platform == "shopify" else "consumer_key/consumer_secret"
                raise ShopStockError(
                    f"stock push {self.config.name}: the shop refused the credentials (HTTP {status}); check {what} "
                    "and that it may write inventory (Shopify: write_inventory; WooCommerce: read/write key)"
                )
            if 300 <= status < 400:
                raise ShopStockError(f"stock push {self.config.name}: the shop redirected (HTTP {status}); redirects are not followed: check base_url")
            if status >= 500:
                raise _Stop(f"the shop answered HTTP {status}")
            try:
                data = json.loads(resp.content or b"null")
            except ValueError as exc:
                raise _Stop(f"the shop's answer to {method} {urlsplit(url).path} is not JSON") from exc
            if status >= 400 and not per_item:
                raise _Stop(f"the shop answered HTTP {status} to {method} {urlsplit(url).path}")
            return resp, data
        raise _Stop(f"still rate limited after {MAX_RETRIES} waits")

    def _next_link(self, resp: requests.Response) -> str | None:
        link = resp.links.get("next", {}).get("url")
        if not link:
            return None
        parts = urlsplit(link)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return None
        if parts.scheme != self._scheme or (parts.hostname or "").lower() != self._host or port != self._port:
            raise _Stop("the next-page link leads to another host; not followed")
        return str(link)

    def _check_target(self) -> None:
        if self.config.allow_private_targets:
            return
        try:
            addresses = [self._host] if _is_ip(self._host) else self._resolver(self._host, self._port)
        except OSError as exc:
            raise ShopStockError(f"stock push {self.config.name}: cannot resolve {self._host} ({exc})") from exc
        for address in addresses or ["<none>"]:
            why = _forbidden(address)
            if why:
                raise ShopStockError(f"stock push {self.config.name}: {self._host} resolves to {address} ({why}); stock goes only to public hosts")


def _shopify_error(status: int, data: Any) -> str:
    errors = data.get("errors") if isinstance(data, dict) else None
    if isinstance(errors, list):
        text = "; ".join(str(e) for e in errors)
    elif isinstance(errors, dict):
        text = "; ".join(f"{k}: {v}" for k, v in errors.items())
    else:
        text = str(errors or "no reason given")
    return f"HTTP {status}: {' '.join(text.split())[:200]}"


def _woo_message(data: Any) -> str:
    if isinstance(data, dict):
        inner = data.get("error")
        error: dict[str, Any] = inner if isinstance(inner, dict) else data
        return " ".join(f"{error.get('code', '')}: {error.get('message', 'no reason given')}".split())[:200]
    return "no reason given"
