"""Connector.render (`gateway mapping render`): the request send would make, secrets masked,
nothing sent or resolved; send and render share one code path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses

from connectors.targets.tryton.connector import TrytonConnector
from gateway.errors import PermanentError
from gateway.payload import load_payload
from tests.unit.test_http_json_connector import CANARY, URL, delivery, make
from tests.unit.test_tryton import ORDER as TRYTON_ORDER
from tests.unit.test_tryton import config as tryton_config
from tests.unit.test_tryton import delivery as tryton_delivery


def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError("render must not resolve the host")


@responses.activate
def test_http_json_render_is_the_request_send_makes_with_secrets_masked(tmp_path: Path) -> None:
    mapping = tmp_path / "erp.jmespath"
    mapping.write_text("{orderNumber: po_number, items: lines[].{sku: sku, qty: quantity}}\n", encoding="utf-8")
    load_payload.cache_clear()
    sending = make(payload=str(mapping), secret_headers={"X-Api-Key": CANARY}, headers={"X-Tenant": "7"})
    responses.post(URL, status=201, json={"id": 1})
    sending.send(delivery())
    sent = responses.calls[0].request
    rendering = make(payload=str(mapping), secret_headers={"X-Api-Key": CANARY}, headers={"X-Tenant": "7"}, allow_private_targets=False)
    rendering._resolver = no_dns
    shown = rendering.render(delivery())
    assert rendering.capabilities.renders
    assert (shown.method, shown.url, shown.body) == ("POST", URL, sent.body)
    assert json.loads(shown.body or b"") == {"orderNumber": "PO-1001", "items": [{"sku": "WID-1", "qty": "10"}]}
    assert shown.headers["X-Api-Key"] == "********" and CANARY not in repr(shown)
    assert sent.headers["X-Api-Key"] == CANARY
    assert {k: v for k, v in shown.headers.items() if k != "X-Api-Key"} == {
        k: sent.headers[k] for k in shown.headers if k != "X-Api-Key"
    }
    assert len(responses.calls) == 1  # render sent nothing


def test_tryton_render_shows_the_sale_create_with_placeholders_and_no_session() -> None:
    conn = TrytonConnector(tryton_config(state="confirmed"))
    shown = conn.render(tryton_delivery())
    body = json.loads(shown.body or b"")
    assert shown.method == "POST" and shown.url == "http://erp.example.com:8000/shop/rpc/"
    assert body["method"] == "model.sale.sale.create"
    [values] = body["params"][0]
    assert values["reference"] == TRYTON_ORDER["po_number"] and values["party"] == "<customer ACME>"
    assert values["lines"][0][1][0]["product"] == "<product WID-1>"
    assert "order-gateway delivery key-1" in values["comment"]
    assert "<product WID-1>" in shown.placeholders and "sale.sale.confirm" in shown.note
    assert shown.headers["Authorization"] == "********" and "s3cret-pw" not in (shown.body or b"").decode()
    with pytest.raises(PermanentError, match="only a create"):
        conn.render(tryton_delivery(action="cancel", reference="S-1"))


def test_http_json_render_masks_secrets_in_the_url() -> None:
    conn = make(url="https://gw:pa55@erp.example.com/api/orders?apikey=q-secret&mode=x&flag", resolver=lambda h, p: ["93.184.216.34"])
    shown = conn.render(delivery())
    assert shown.url == "https://gw:********@erp.example.com/api/orders?apikey=********&mode=********&flag"
