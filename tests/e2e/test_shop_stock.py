"""Stock levels to the shops (issue 13): `gateway data import stock` then `gateway data push
stock --to SHOP`, against Shopify's and WooCommerce's documented API shapes (`responses`;
the CLI runs in-process so the mocks see its calls). Only what changed is sent again."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import responses

from gateway.cli import main

SHOP = "https://acme.myshopify.com"
WOO = "https://shop.example.com"
SKUS = 300


def config(tmp_path: Path, platform: str) -> Path:
    shop = (
        f"  - name: acme-shop\n    platform: shopify\n    base_url: {SHOP}\n    access_token: ${{env:SHOP_TOKEN}}\n    location_id: 655441491\n"
        if platform == "shopify"
        else f"  - name: acme-shop\n    platform: woocommerce\n    base_url: {WOO}\n    consumer_key: ${{env:WOO_KEY}}\n    consumer_secret: ${{env:WOO_SECRET}}\n"
    )
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(
        f"store:\n  url: sqlite:///{tmp_path / 'gateway.db'}\n"
        f"stock_push:\n{shop}    warehouses: [EAST, WEST]\n    requests_per_second: 1000\n    every_minutes: 0\n"
        "    allow_private_targets: true\n"  # no DNS here: the SSRF guard is tested on its own below
    )
    return cfg


def stock_csv(tmp_path: Path, bump: set[int] = frozenset()) -> Path:  # type: ignore[assignment]
    rows = ["item number,wh,on hand"]
    for n in range(SKUS):
        rows.append(f"SKU-{n:04d},EAST,{n % 17 + (5 if n in bump else 0)}")
        rows.append(f"SKU-{n:04d},WEST,{n % 5}")
        rows.append(f"SKU-{n:04d},NORTH,1000")  # not a warehouse this shop sells from
    path = tmp_path / "stock.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@dataclass
class Done:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., Done]:
    """`gateway ARGS --config CFG` as its entry point runs it (exit codes, one-line errors),
    in this process so that `responses` sees its calls."""
    for name, value in {"SHOP_TOKEN": "shpat_test_token_0123456789", "WOO_KEY": "ck_test_key_0123", "WOO_SECRET": "cs_test_secret_0123"}.items():
        monkeypatch.setenv(name, value)

    def run(cfg: Path, *args: str) -> Done:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["gateway", *args, "--config", str(cfg)])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return Done(code, out.out, out.err)

    return run


def shopify_catalogue(rsps: responses.RequestsMock) -> dict[int, str]:
    """The shop sells SKU-0000 ... SKU-0279 (not the last 20), 250 a page, linked by page_info."""
    items = {900000 + n: f"SKU-{n:04d}" for n in range(SKUS - 20)}
    products = [{"id": 7000 + n, "variants": [{"id": 8000 + n, "sku": sku, "inventory_item_id": item}]} for n, (item, sku) in enumerate(items.items())]
    base = f"{SHOP}/admin/api/2024-10/products.json"
    rsps.get(base, match=[responses.matchers.query_param_matcher({"limit": "250", "fields": "id,variants"})],
             json={"products": products[:250]}, headers={"Link": f'<{base}?limit=250&page_info=abc>; rel="next"'})  # fmt: skip
    rsps.get(base, match=[responses.matchers.query_param_matcher({"limit": "250", "page_info": "abc"})], json={"products": products[250:]})
    return items


def test_shopify_gets_each_changed_level_once(tmp_path: Path, cli: Callable[..., Done]) -> None:
    cfg = config(tmp_path, "shopify")
    assert cli(cfg, "data", "import", "stock", str(stock_csv(tmp_path))).exit_code == 0
    set_calls: list[dict[str, Any]] = []

    def set_level(request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        assert request.headers["X-Shopify-Access-Token"] == "shpat_test_token_0123456789"
        set_calls.append(body)
        if body["inventory_item_id"] == 900007:  # Shopify's answer when tracking is off
            return 422, {}, json.dumps({"errors": ["Inventory item does not have inventory tracking enabled"]})
        return 200, {}, json.dumps({"inventory_level": {**body, "updated_at": "2026-12-05T10:00:00-05:00"}})

    with responses.RequestsMock() as rsps:
        items = shopify_catalogue(rsps)
        rsps.add_callback(responses.POST, f"{SHOP}/admin/api/2024-10/inventory_levels/set.json", callback=set_level)
        done = cli(cfg, "data", "push", "stock", "--to", "acme-shop", "--json")
    assert done.exit_code == 1  # one SKU refused: reported, the rest sent
    report = json.loads(done.stdout)
    assert report["changed"] == SKUS and report["sent"] == SKUS - 21
    assert report["not_in_shop"] == [f"SKU-{n:04d}" for n in range(SKUS - 20, SKUS)]
    assert report["failed"] == [{"sku": "SKU-0007", "why": "HTTP 422: Inventory item does not have inventory tracking enabled"}]
    by_item = {c["inventory_item_id"]: c["available"] for c in set_calls}
    assert all(c["location_id"] == 655441491 for c in set_calls)
    # available = on hand less reserved, over EAST and WEST only (NORTH is not this shop's)
    assert all(by_item[item] == int(sku[4:]) % 17 + int(sku[4:]) % 5 for item, sku in items.items())

    # Five levels change: only those five (and the one refused before) go again.
    assert cli(cfg, "data", "import", "stock", str(stock_csv(tmp_path, bump={1, 2, 3, 250, 299}))).exit_code == 0
    set_calls.clear()
    with responses.RequestsMock() as rsps:
        shopify_catalogue(rsps)
        rsps.add_callback(responses.POST, f"{SHOP}/admin/api/2024-10/inventory_levels/set.json", callback=set_level)
        again = cli(cfg, "data", "push", "stock", "--to", "acme-shop", "--json")
    report = json.loads(again.stdout)
    assert sorted(c["inventory_item_id"] for c in set_calls) == [900001, 900002, 900003, 900007, 900250]
    # Changed: the four the shop sells, SKU-0007 (refused last time), and the 20 it does not sell.
    assert report["changed"] == 25 and report["sent"] == 4 and len(report["not_in_shop"]) == 20


def test_shopify_rate_limit_waits_and_a_bad_token_says_what_to_fix(tmp_path: Path, cli: Callable[..., Done]) -> None:
    cfg = config(tmp_path, "shopify")
    assert cli(cfg, "data", "import", "stock", str(stock_csv(tmp_path))).exit_code == 0
    answers = iter([(429, {"Retry-After": "0.01"}, "{}")] * 2)

    def set_level(request: Any) -> tuple[int, dict[str, str], str]:
        return next(answers, (200, {}, json.dumps({"inventory_level": json.loads(request.body)})))

    with responses.RequestsMock() as rsps:
        shopify_catalogue(rsps)
        rsps.add_callback(responses.POST, f"{SHOP}/admin/api/2024-10/inventory_levels/set.json", callback=set_level)
        done = cli(cfg, "data", "push", "stock", "--to", "acme-shop", "--json")
    assert done.exit_code == 0 and json.loads(done.stdout)["sent"] == SKUS - 20

    with responses.RequestsMock() as rsps:
        rsps.get(f"{SHOP}/admin/api/2024-10/products.json", status=401, json={"errors": "[API] Invalid API key or access token"})
        refused = cli(cfg, "data", "push", "stock", "--to", "acme-shop", "--all")
    assert refused.exit_code == 1
    assert "refused the credentials (HTTP 401)" in refused.stderr and "write_inventory" in refused.stderr


def test_woocommerce_batches_products_and_variations(tmp_path: Path, cli: Callable[..., Done]) -> None:
    cfg = config(tmp_path, "woocommerce")
    assert cli(cfg, "data", "import", "stock", str(stock_csv(tmp_path))).exit_code == 0
    simple = [{"id": 100 + n, "sku": f"SKU-{n:04d}", "type": "simple", "variations": []} for n in range(200)]
    variable = {"id": 99, "sku": "TSHIRT", "type": "variable", "variations": [501, 502]}
    pages = [simple[:100], simple[100:] + [variable]]
    batches: list[list[dict[str, Any]]] = []

    def batch(request: Any) -> tuple[int, dict[str, str], str]:
        update = json.loads(request.body)["update"]
        batches.append(update)
        rows = [{"id": u["id"], "stock_quantity": u["stock_quantity"]} if u["id"] != 105 else
                {"id": 105, "error": {"code": "woocommerce_rest_product_invalid_id", "message": "Invalid ID."}} for u in update]  # fmt: skip
        return 200, {}, json.dumps({"update": rows})

    with responses.RequestsMock() as rsps:
        for k, page in enumerate(pages, 1):
            rsps.get(f"{WOO}/wp-json/wc/v3/products", match=[responses.matchers.query_param_matcher({"per_page": "100", "page": str(k)})],
                     json=page, headers={"X-WP-TotalPages": "2"})  # fmt: skip
        rsps.get(f"{WOO}/wp-json/wc/v3/products/99/variations", json=[{"id": 501, "sku": "SKU-0250"}, {"id": 502, "sku": "SKU-0251"}],
                 headers={"X-WP-TotalPages": "1"})  # fmt: skip
        rsps.add_callback(responses.POST, f"{WOO}/wp-json/wc/v3/products/batch", callback=batch)
        rsps.add_callback(responses.POST, re.compile(rf"{re.escape(WOO)}/wp-json/wc/v3/products/99/variations/batch"), callback=batch)
        done = cli(cfg, "data", "push", "stock", "--to", "acme-shop", "--json")
    report = json.loads(done.stdout)
    assert [len(b) for b in batches] == [100, 100, 2]  # 100 a call, then the variations
    assert report["sent"] == 201 and report["failed"] == [{"sku": "SKU-0005", "why": "woocommerce_rest_product_invalid_id: Invalid ID."}]
    assert all(u["manage_stock"] is True for b in batches for u in b)
    assert len(report["not_in_shop"]) == SKUS - 202


@pytest.mark.parametrize("url", ["https://user:pw@acme.myshopify.com", "https://acme.myshopify.com/?next=x", "ftp://acme.myshopify.com"])
def test_a_shop_url_that_would_leak_the_token_is_a_configuration_error(tmp_path: Path, url: str, cli: Callable[..., Done]) -> None:
    cfg = config(tmp_path, "shopify")
    cfg.write_text(cfg.read_text().replace(SHOP, url))
    done = cli(cfg, "config", "check")
    assert done.exit_code == 2 and "stock_push" in done.stderr


def test_a_shop_host_on_a_private_address_is_refused() -> None:
    from connectors.shopstock.config import ShopStockConfig
    from connectors.shopstock.push import ShopStockError, ShopStockPusher

    shop = ShopStockConfig(name="s", platform="shopify", base_url=SHOP, access_token="shpat_x", location_id=1)  # type: ignore[arg-type]
    pusher = ShopStockPusher(shop, resolver=lambda host, port: ["10.1.2.3"])
    with pytest.raises(ShopStockError, match="resolves to 10.1.2.3"):
        pusher.push({"A": 1}, {})
    assert pusher.push({"A": 1}, {"A": 1}).changed == 0  # nothing changed: no call, no lookup
