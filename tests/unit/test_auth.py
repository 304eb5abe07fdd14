"""connectors/targets/auth.py: every kind's headers, secrets only from the environment, OAuth2
client credentials cached, refreshed once on a 401, and its token endpoint errors classified."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs

import pytest
import requests
import responses
from pydantic import TypeAdapter

from connectors.targets.auth import AuthConfig, build_auth
from connectors.targets.http_json.config import HttpJsonConfig
from connectors.targets.http_json.connector import HttpJsonConnector
from gateway.connector import Delivery
from gateway.errors import ConfigError, PermanentError, TransientError

TOKEN_URL = "https://login.example.com/oauth2/token"
API = "https://api.example.com/orders"
CONFIG: TypeAdapter[AuthConfig] = TypeAdapter(AuthConfig)  # type: ignore[arg-type]


def oauth(**extra: object) -> AuthConfig:
    return CONFIG.validate_python({"type": "oauth2_client_credentials", "token_url": TOKEN_URL, "client_id": "gw",
                                   "client_secret_env": "CLIENT_SECRET", "scope": "orders.write", **extra})


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("PW", "s3cret"), ("KEY", "k-123"), ("TOK", "t-456"), ("CLIENT_SECRET", "cs-789")):
        monkeypatch.setenv(name, value)


def test_static_kinds_build_their_headers_and_hide_secrets() -> None:
    basic = build_auth(CONFIG.validate_python({"type": "basic", "username": "gw", "password_env": "PW"}), where="erp")
    assert basic.headers() == {"Authorization": "Basic " + base64.b64encode(b"gw:s3cret").decode()}
    key = build_auth(CONFIG.validate_python(
        {"type": "api_key", "header": "Authorization", "prefix": "token ", "value_env": "KEY"}), where="erp")
    assert key.headers() == {"Authorization": "token k-123"}
    bearer = build_auth(CONFIG.validate_python({"type": "bearer", "token_env": "TOK"}), where="erp")
    assert bearer.headers() == {"Authorization": "Bearer t-456"} and "t-456" in bearer.secrets()
    assert build_auth(CONFIG.validate_python({"type": "none"}), where="erp").headers() == {}
    assert "t-456" not in repr(bearer) and not bearer.refreshable


def test_an_unset_variable_stops_start_up_and_a_literal_secret_is_not_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOK")
    with pytest.raises(ConfigError, match="auth.token_env: environment variable TOK is not set"):
        build_auth(CONFIG.validate_python({"type": "bearer", "token_env": "TOK"}), where="erp")
    with pytest.raises(ValueError):  # a token pasted where the variable's name belongs
        CONFIG.validate_python({"type": "bearer", "token_env": "pat-na1-1234 5678"})
    with pytest.raises(ValueError):
        CONFIG.validate_python({"type": "bearer", "token": "pat-na1-12345678"})


@responses.activate
def test_oauth2_token_is_cached_until_shortly_before_expiry() -> None:
    responses.post(TOKEN_URL, json={"access_token": "A1", "token_type": "Bearer", "expires_in": 300})
    now = [1000.0]
    auth = build_auth(oauth(), where="erp", session=requests.Session(), clock=lambda: now[0])
    assert auth.headers() == {"Authorization": "Bearer A1"}
    now[0] += 239  # 300 s minus the 60 s margin not yet reached
    assert auth.headers() == {"Authorization": "Bearer A1"}
    assert len(responses.calls) == 1
    form = parse_qs(responses.calls[0].request.body)  # type: ignore[arg-type]
    assert form == {"grant_type": ["client_credentials"], "scope": ["orders.write"]}
    assert responses.calls[0].request.headers["Authorization"] == "Basic " + base64.b64encode(b"gw:cs-789").decode()
    responses.post(TOKEN_URL, json={"access_token": "A2", "expires_in": 300})
    now[0] += 2
    assert auth.headers() == {"Authorization": "Bearer A2"} and len(responses.calls) == 2


@responses.activate
@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (400, {"error": "invalid_client", "error_description": "Client authentication failed"}, PermanentError),
        (401, {"error": "invalid_client"}, PermanentError),
        (400, {"error": "invalid_scope", "error_description": "orders.write is not allowed"}, PermanentError),
        (429, {"error": "slow_down"}, TransientError),
        (503, "upstream unavailable", TransientError),
        (200, {"token_type": "Bearer"}, TransientError),  # no access_token: a broken answer
    ],
)
def test_oauth2_token_endpoint_errors_are_classified(status: int, body: object, error: type[Exception]) -> None:
    responses.post(TOKEN_URL, status=status, body=json.dumps(body) if not isinstance(body, str) else body)
    auth = build_auth(oauth(client_auth="body"), where="erp", session=requests.Session())
    with pytest.raises(error) as info:
        auth.headers()
    assert not (error is PermanentError and isinstance(info.value, TransientError))
    assert "cs-789" not in str(info.value)
    if status == 400:
        assert "invalid_" in str(info.value)
    assert "client_secret=cs-789" in str(responses.calls[0].request.body)  # client_auth: body


@responses.activate
def test_http_json_with_oauth2_refreshes_once_on_401_and_keeps_static_headers() -> None:
    responses.post(TOKEN_URL, json={"access_token": "OLD", "expires_in": 3600})
    responses.post(TOKEN_URL, json={"access_token": "NEW", "expires_in": 3600})
    responses.post(API, status=401, json={"error": "token revoked"})
    responses.post(API, status=201, json={"id": "ERP-1"})
    cfg = HttpJsonConfig(name="erp", url=API, reference="id", headers={"X-Tenant": "acme"},  # type: ignore[arg-type]
                         auth=oauth(), allow_private_targets=True)
    connector = HttpJsonConnector(cfg)
    delivery = Delivery(outbox_id=1, order_id="o-1", idempotency_key="k-1", attempt=1, order={"po_number": "PO-1"})
    assert connector.send(delivery).reference == "ERP-1"
    api = [c.request for c in responses.calls if c.request.url == API]
    assert [r.headers["Authorization"] for r in api] == ["Bearer OLD", "Bearer NEW"]
    assert all(r.headers["X-Tenant"] == "acme" and r.headers["Idempotency-Key"] == "k-1" for r in api)
    responses.replace(responses.POST, API, status=401, json={"error": "still no"})
    responses.post(TOKEN_URL, json={"access_token": "NEWER", "expires_in": 3600})
    with pytest.raises(PermanentError, match="HTTP 401"):  # refreshed once, then it is the answer
        connector.send(delivery)
    connector.close()
