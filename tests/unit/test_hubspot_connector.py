"""The HubSpot target against HubSpot's documented CRM v3/v4 shapes and error bodies (responses)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import responses

from connectors.targets.auth import BearerAuth, OAuth2ClientCredentials
from connectors.targets.hubspot.config import HubSpotConfig
from connectors.targets.hubspot.connector import HubSpotConnector, HubSpotError
from gateway.connector import Delivery
from gateway.errors import PermanentError, TransientError
from tests.support.fake_hubspot import FakeHubSpot
from tests.unit.test_target_contract import GOLDEN

ORDER = {**GOLDEN, "buyer": {**GOLDEN["buyer"], "contact": {"name": "Pat", "email": "pat@acme.example"}}}


@pytest.fixture
def hubspot(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeHubSpot, HubSpotConnector]]:
    monkeypatch.setenv("HUBSPOT_TOKEN", "pat-na1-11111111-2222")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeHubSpot(mock)
        connector = HubSpotConnector(HubSpotConfig(name="crm", auth=BearerAuth(token_env="HUBSPOT_TOKEN"),
                                                   po_property="po_number"))
        yield fake, connector
        connector.close()


def delivery(order: dict[str, Any] = ORDER, key: str = "key-1") -> Delivery:
    return Delivery(outbox_id=1, order_id="o-1", idempotency_key=key, attempt=1, order=order)


def test_contact_upserted_by_email_and_a_deal_with_line_items(hubspot: tuple[FakeHubSpot, HubSpotConnector]) -> None:
    fake, connector = hubspot
    receipt = connector.send(delivery())
    ((cid, contact),) = fake.objects["contacts"].items()
    ((did, deal),) = fake.objects["deals"].items()
    assert receipt.reference == did and receipt.detail["contact"] == cid
    assert contact["properties"] == {"email": "pat@acme.example", "company": "Acme Retail"}
    assert deal["properties"] == {
        "order_gateway_key": "key-1", "dealname": "PO PO-GOLD-1", "amount": "34.995", "pipeline": "default",
        "dealstage": "closedwon", "closedate": "2026-11-27T00:00:00Z", "po_number": "PO-GOLD-1"}
    assert fake.deal_contacts == {did: {cid}} and fake.lines_of(did) == [("WID-1", 10.0), ("GAD-9", 0.5)]
    connector.send(delivery(key="key-2"))  # the same e-mail: the same contact
    assert len(fake.objects["contacts"]) == 1 and len(fake.objects["deals"]) == 2


@pytest.mark.parametrize("lost", ["deals/batch/upsert", "line_items/batch/create", "associations/default/contacts/1001"])
def test_a_lost_answer_then_the_retry_makes_one_deal_with_one_set_of_lines(
    hubspot: tuple[FakeHubSpot, HubSpotConnector], lost: str
) -> None:
    fake, connector = hubspot
    fake.lose_answer_of = lost
    with pytest.raises(TransientError):
        connector.send(delivery())
    connector.send(delivery())
    ((did, _),) = fake.objects["deals"].items()
    assert fake.lines_of(did) == [("WID-1", 10.0), ("GAD-9", 0.5)] and len(fake.objects["line_items"]) == 2


@pytest.mark.parametrize(
    ("script", "error", "text"),
    [
        ((429, "RATE_LIMITS"), TransientError, "HTTP 429"),
        ((502, "INTERNAL_ERROR"), TransientError, "HTTP 502"),
        ((423, "LOCKED"), TransientError, "HTTP 423"),
        ((400, "VALIDATION_ERROR"), HubSpotError, "HTTP 400 VALIDATION_ERROR: scripted"),
        ((403, "MISSING_SCOPES"), HubSpotError, "scopes"),
        ((409, "CONFLICT"), HubSpotError, "CONFLICT"),
    ],
)
def test_hubspot_errors_map_to_transient_or_permanent(hubspot: tuple[FakeHubSpot, HubSpotConnector], script: Any,
                                                      error: type[Exception], text: str) -> None:
    fake, connector = hubspot
    fake.script = [script]
    with pytest.raises(error, match=text) as info:
        connector.send(delivery())
    assert isinstance(info.value, TransientError) == (error is TransientError)
    if script[0] == 429:
        assert info.value.retry_after == 1  # type: ignore[attr-defined]


def test_a_batch_error_a_missing_unique_property_and_a_bad_token_are_permanent(
    hubspot: tuple[FakeHubSpot, HubSpotConnector], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, connector = hubspot
    fake.unique_property = "other_key"  # the portal has no unique order_gateway_key property
    with pytest.raises(HubSpotError, match="is not a unique identifier"):
        connector.send(delivery())
    monkeypatch.setenv("HUBSPOT_TOKEN", "pat-wrong")
    wrong = HubSpotConnector(HubSpotConfig(name="crm", auth=BearerAuth(token_env="HUBSPOT_TOKEN")))
    with pytest.raises(HubSpotError, match="HTTP 401 INVALID_AUTHENTICATION.*check the token") as info:
        wrong.send(delivery())
    assert "pat-wrong" not in str(info.value)
    partial = (207, {}, json.dumps({"status": "COMPLETE", "results": [], "numErrors": 1, "errors": [
        {"status": "error", "category": "VALIDATION_ERROR", "message": "Property email is invalid"}]}))
    monkeypatch.setattr(fake, "_route", lambda method, path, body: partial)
    with pytest.raises(HubSpotError, match="Property email is invalid"):
        connector.send(delivery())
    connector.config.require_contact = True
    with pytest.raises(PermanentError, match="no contact e-mail"):
        connector.send(delivery(GOLDEN))


def test_oauth2_token_is_fetched_once_and_refreshed_on_401(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HS_SECRET", "client-secret")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeHubSpot(mock, token="T1")
        auth = OAuth2ClientCredentials(token_url=fake.token_url, client_id="app", client_secret_env="HS_SECRET",  # type: ignore[arg-type]
                                       scope="crm.objects.deals.write")
        connector = HubSpotConnector(HubSpotConfig(name="crm", auth=auth))
        connector.send(delivery())
        assert fake.tokens_issued == 1  # cached for the send's several calls
        fake.token = "T2"  # the server revoked T1: the next call answers 401, one new token, the call again
        connector.send(delivery(key="key-2"))
        assert fake.tokens_issued == 2 and len(fake.objects["deals"]) == 2
