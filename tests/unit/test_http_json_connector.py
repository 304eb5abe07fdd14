"""HttpJsonConnector against `responses` stubs: request shape, error mapping, SSRF guard,
secrets, and (through the Dispatcher on a SQLite store) retries and dead letters."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
import urllib3
from responses import registries
from sqlalchemy import insert, select

from connectors.targets.http_json.config import HttpJsonConfig
from connectors.targets.http_json.connector import HttpJsonConnector, UnsafeTarget, redact
from gateway.config import DispatchConfig
from gateway.connector import Delivery
from gateway.dispatch.worker import Dispatcher
from gateway.errors import ConfigError, PermanentError, TransientError
from gateway.payload import load_payload
from gateway.retry import RetryPolicy
from gateway.store import Store, as_utc
from gateway.store import tables as t
from gateway.store.outbox import idempotency_key, new_deliveries

URL = "https://erp.example.com/api/orders"
PUBLIC_IP = "93.184.216.34"
T0 = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
CANARY = "s3cr3t-CANARY-token-9f8e7d"

ORDER = {
    "po_number": "PO-1001",
    "channel": "x12",
    "buyer": {"name": "Acme Retail", "code": "ACME"},
    "lines": [{"line_number": "1", "sku": "WID-1", "quantity": "10", "unit_price": "2.50"}],
}


def public_dns(host: str, port: int) -> list[str]:
    return [PUBLIC_IP]


def make(session: requests.Session | None = None, **overrides: Any) -> HttpJsonConnector:
    resolver = overrides.pop("resolver", public_dns)
    cfg = HttpJsonConfig.model_validate({"name": "erp", "url": URL, **overrides})
    return HttpJsonConnector(cfg, session, resolver=resolver, clock=lambda: T0)


def delivery(attempt: int = 1, order: dict[str, Any] | None = None) -> Delivery:
    return Delivery(outbox_id=1, order_id="o-1", idempotency_key=idempotency_key("o-1", "erp"),
                    attempt=attempt, order=order or ORDER)


# -- the request -------------------------------------------------------------------------------


@responses.activate(registry=registries.OrderedRegistry)
def test_request_shape_headers_timeout_and_reference() -> None:
    responses.post(URL, status=201, json={"id": "ERP-1", "status": "open"})
    conn = make(
        headers={"X-Tenant": "t1", "Idempotency-Key": "overridden?"},
        secret_headers={"Authorization": f"Bearer {CANARY}"},
        timeout={"connect": 3, "read": 7},
        reference="id",
    )
    receipt = conn.send(delivery())
    assert receipt.status == 201 and receipt.reference == "ERP-1"
    [call] = responses.calls
    h = call.request.headers
    assert h["Idempotency-Key"] == idempotency_key("o-1", "erp")  # configured headers cannot replace it
    assert h["Content-Type"] == "application/json"
    assert h["User-Agent"] == "order-gateway/0.1"
    assert h["X-Tenant"] == "t1"
    assert h["Authorization"] == f"Bearer {CANARY}"
    assert json.loads(call.request.body) == ORDER  # no payload file: the canonical order as is
    assert call.request.req_kwargs["timeout"] == (3, 7)


def test_timeout_and_no_redirects_are_always_passed() -> None:
    seen: list[dict[str, Any]] = []

    class Spy(requests.Session):
        def request(self, method: str, url: str, **kw: Any) -> Any:  # type: ignore[override]
            seen.append(kw)
            return super().request(method, url, **kw)

    with responses.RequestsMock() as rsps:
        rsps.put(URL, status=200, json={})
        conn = make(Spy(), method="PUT", verify_tls=False)
        conn.send(delivery())
    assert seen[0]["timeout"] == (5.0, 30.0)  # the defaults, never None
    assert seen[0]["allow_redirects"] is False
    assert seen[0]["verify"] is False


@responses.activate
def test_payload_mapping_is_applied(tmp_path: Path) -> None:
    mapping = tmp_path / "erp.jmespath"
    mapping.write_text(
        "# what the ERP wants\n{orderNumber: po_number, customer: buyer.code,\n"
        " items: lines[].{sku: sku, qty: quantity}}\n",
        encoding="utf-8",
    )
    load_payload.cache_clear()
    responses.post(URL, status=201, json={"data": {"order": {"number": 4711}}})
    conn = make(payload=str(mapping), reference="data.order.number")
    receipt = conn.send(delivery())
    assert json.loads(responses.calls[0].request.body) == {
        "orderNumber": "PO-1001",
        "customer": "ACME",
        "items": [{"sku": "WID-1", "qty": "10"}],
    }
    assert receipt.reference == "4711"


@responses.activate
def test_reference_missing_or_not_json_is_no_error() -> None:
    responses.post(URL, status=201, body="created")
    responses.post(URL, status=202, json={"other": 1})
    conn = make(reference="id")
    first = conn.send(delivery())
    assert first.reference is None and "not JSON" in first.detail["reference_error"]
    second = conn.send(delivery())
    assert second.status == 202 and second.reference is None


# -- error mapping -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504, 599])
@responses.activate
def test_transient_statuses(status: int) -> None:
    responses.post(URL, status=status, body="busy")
    with pytest.raises(TransientError) as info:
        make().send(delivery())
    assert info.value.status == status
    assert f"HTTP {status} from erp" in str(info.value)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 410, 413, 422])
@responses.activate
def test_permanent_statuses(status: int) -> None:
    responses.post(URL, status=status, json={"error": "nope"})
    with pytest.raises(PermanentError) as info:
        make().send(delivery())
    assert info.value.status == status


@responses.activate
def test_400_carries_a_short_redacted_excerpt() -> None:
    body = (
        f'{{"error": "unknown SKU WID-1", "contact": "buyer@acme.example", "echo": "Bearer {CANARY}",\n'
        f'"auth": "{CANARY}", "trace": "{"x" * 1000}"}}'
    )
    responses.post(URL, status=400, body=body)
    conn = make(secret_headers={"X-Api-Key": CANARY})
    with pytest.raises(PermanentError) as info:
        conn.send(delivery())
    msg = str(info.value)
    assert info.value.status == 400
    assert msg.startswith("HTTP 400 from erp: ")
    assert "unknown SKU WID-1" in msg
    assert CANARY not in msg and "buyer@acme.example" not in msg and "\n" not in msg
    assert len(msg) <= len("HTTP 400 from erp: ") + 300


@responses.activate
def test_redirect_is_not_followed() -> None:
    responses.post(URL, status=302, headers={"Location": "http://10.0.0.5/internal?token=abc"})
    with pytest.raises(PermanentError) as info:
        make().send(delivery())
    assert info.value.status == 302
    assert "not followed" in str(info.value) and "token=abc" not in str(info.value)
    assert len(responses.calls) == 1


@responses.activate
def test_retry_after_seconds_and_http_date() -> None:
    responses.post(URL, status=429, headers={"Retry-After": "7"})
    when = email.utils.format_datetime(T0 + dt.timedelta(seconds=120), usegmt=True)
    responses.post(URL, status=503, headers={"Retry-After": when})
    responses.post(URL, status=503, headers={"Retry-After": "whenever"})
    conn = make()
    with pytest.raises(TransientError) as first:
        conn.send(delivery())
    assert first.value.retry_after == 7
    with pytest.raises(TransientError) as second:
        conn.send(delivery())
    assert second.value.retry_after == pytest.approx(120)  # measured on the injected clock
    with pytest.raises(TransientError) as third:
        conn.send(delivery())
    assert third.value.retry_after is None


@pytest.mark.parametrize(
    "exc",
    [
        requests.exceptions.ConnectionError("[Errno 111] Connection refused"),
        requests.exceptions.ConnectTimeout("connect timed out"),
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ChunkedEncodingError("Response ended prematurely"),
    ],
    ids=["refused", "connect-timeout", "read-timeout", "cut-short"],
)
@responses.activate
def test_transport_failures_are_transient(exc: Exception) -> None:
    responses.post(URL, body=exc)
    with pytest.raises(TransientError) as info:
        make().send(delivery())
    assert info.value.status is None
    assert "erp" in str(info.value)


@responses.activate
def test_read_timeout_message_explains_the_ambiguity() -> None:
    responses.post(URL, body=requests.exceptions.ReadTimeout("x"))
    with pytest.raises(TransientError, match="same Idempotency-Key"):
        make().send(delivery())


@responses.activate
def test_tls_failure_is_a_permanent_configuration_problem() -> None:
    responses.post(URL, body=requests.exceptions.SSLError("certificate verify failed: self-signed certificate"))
    with pytest.raises(PermanentError) as info:
        make().send(delivery())
    assert "TLS" in str(info.value) and "configuration problem" in str(info.value)
    assert "certificate verify failed" in str(info.value)


# -- SSRF guard --------------------------------------------------------------------------------


SSRF_CASES = [
    ("http://127.0.0.1:8080/orders", "loopback"),
    ("http://localhost/orders", "loopback"),
    ("https://10.1.2.3/orders", "private"),
    ("https://192.168.0.10/orders", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::ffff:127.0.0.1]/orders", "IPv4-mapped"),
    ("http://[::1]/orders", "loopback"),
    ("http://[fe80::1]/orders", "link-local"),
    ("http://0.0.0.0/orders", "unspecified"),
    ("http://224.0.0.1/orders", "multicast"),
    ("http://100.64.0.1/orders", "not a public address"),
    ("http://internal.example.com/orders", "private"),  # a DNS name resolving to 10.x
]
RESOLVED = {"localhost": ["127.0.0.1", "::1"], "internal.example.com": [PUBLIC_IP, "10.0.0.7"]}


@pytest.mark.parametrize(("url", "why"), SSRF_CASES)
def test_ssrf_guard_refuses_non_public_targets_at_start_up(url: str, why: str) -> None:
    with pytest.raises(UnsafeTarget) as info:
        make(url=url, resolver=lambda host, port: RESOLVED[host])
    assert why in str(info.value)
    assert "allow_private_targets" in str(info.value)
    # a configuration problem for start-up, a permanent error if it shows up at send time
    assert isinstance(info.value, ConfigError) and isinstance(info.value, PermanentError)


@pytest.mark.parametrize(("url", "why"), SSRF_CASES)
@responses.activate
def test_ssrf_guard_checks_again_at_every_send(url: str, why: str) -> None:
    cfg = HttpJsonConfig(name="erp", url=url, allow_private_targets=True)
    conn = HttpJsonConnector(cfg, resolver=lambda host, port: RESOLVED[host])
    conn.config = cfg.model_copy(update={"allow_private_targets": False})  # the send path alone
    with pytest.raises(UnsafeTarget) as info:
        conn.send(delivery())
    assert why in str(info.value)
    assert len(responses.calls) == 0  # nothing was sent


def test_dns_rebinding_after_start_up_is_refused_at_send() -> None:
    answers = iter([[PUBLIC_IP], ["10.0.0.9"]])
    conn = make(url="https://erp.example.com/orders", resolver=lambda host, port: next(answers))
    with pytest.raises(UnsafeTarget, match="10.0.0.9, a private address"):
        conn.send(delivery())


@responses.activate
def test_private_targets_are_allowed_when_configured() -> None:
    responses.post("http://10.1.2.3/orders", status=201, json={})
    conn = make(url="http://10.1.2.3/orders", allow_private_targets=True)
    assert conn.send(delivery()).status == 201


def test_non_http_schemes_are_refused() -> None:
    with pytest.raises(ValueError):
        HttpJsonConfig.model_validate({"name": "erp", "url": "file:///etc/passwd"})
    cfg = HttpJsonConfig.model_construct(**{**HttpJsonConfig(name="erp", url=URL).__dict__, "url": "file:///etc/passwd"})
    with pytest.raises(UnsafeTarget, match="scheme 'file'"):
        HttpJsonConnector(cfg, resolver=public_dns)


def test_unresolvable_host_is_transient() -> None:
    def broken(host: str, port: int) -> list[str]:
        raise OSError("Temporary failure in name resolution")

    conn = make(resolver=broken)  # start-up does not depend on DNS
    with pytest.raises(TransientError, match="cannot resolve"):
        conn.send(delivery())


# -- secrets -----------------------------------------------------------------------------------


@responses.activate
def test_secrets_stay_out_of_repr_errors_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    responses.post(URL, status=401, body=f"invalid token {CANARY}")
    responses.post(URL, body=requests.exceptions.ConnectionError(f"reset while sending {CANARY}?"))
    conn = make(secret_headers={"Authorization": CANARY}, url=URL + "?apikey=q-secret")
    errors = []
    for _ in range(2):
        with pytest.raises((PermanentError, TransientError)) as info:
            conn.send(delivery())
        errors.append(str(info.value))
    texts = [repr(conn), repr(conn.config), str(conn.config.model_dump()), caplog.text, *errors]
    for text in texts:
        assert CANARY not in text
    assert "q-secret" not in repr(conn) and all("q-secret" not in e for e in errors)


def test_redact() -> None:
    assert redact("mail a@b.example\x00 now", []) == "mail <email> now"
    assert redact("Authorization: Bearer abcdefghijklmnop", []) == "Authorization: Bearer ***"
    assert redact("key=XYZ123", ["XYZ123"]) == "key=***"


# -- through the dispatcher --------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = T0
        self.slept: list[float] = []

    def __call__(self) -> dt.datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def queued(sqlite_url: str) -> Any:
    """A SQLite store with one validated order queued for 'erp'."""
    store = Store(sqlite_url)
    mid, oid = str(uuid.uuid4()), str(uuid.uuid4())
    with store.begin() as conn:
        conn.execute(insert(t.messages).values(
            id=mid, received_at=T0, updated_at=T0, source="test", sha256="a" * 64, size=1,
            state="parsed", warnings=[], attempts=1, order_count=1, rejected_count=0))
        conn.execute(insert(t.orders).values(
            id=oid, message_id=mid, doc_index=0, created_at=T0, updated_at=T0, channel="x12",
            po_number="PO-1001", state="validated", line_count=1, data=ORDER))
        conn.execute(insert(t.outbox), new_deliveries(oid, ["erp"], T0))
    yield store, oid
    store.dispose()


def dispatcher(store: Store, conn: HttpJsonConnector, clock: FakeClock, **policy: Any) -> Dispatcher:
    return Dispatcher(
        store, {"erp": conn}, {"erp": RetryPolicy(**policy)}, DispatchConfig(poll_seconds=3600, workers=1),
        clock=clock, sleep=clock.sleep, rand=lambda: 0.5,
    )


def outbox_row(store: Store) -> Any:
    with store.engine.connect() as c:
        return c.execute(select(t.outbox)).one()


@responses.activate(registry=registries.OrderedRegistry)
def test_503_then_201_is_retried_with_the_same_key(queued: Any) -> None:
    store, oid = queued
    responses.post(URL, status=503)
    responses.post(URL, status=201, json={"id": "ERP-9"})
    clock = FakeClock()
    stats = dispatcher(store, make(reference="id"), clock).run_until_idle(timeout=3600)
    assert (stats.sent, stats.retried, stats.dead, stats.idle) == (1, 1, 0, True)
    keys = {c.request.headers["Idempotency-Key"] for c in responses.calls}
    assert len(responses.calls) == 2 and keys == {idempotency_key(oid, "erp")}
    row = outbox_row(store)
    assert (row.state, row.attempts, row.receipt["reference"]) == ("sent", 2, "ERP-9")
    assert clock.slept and sum(clock.slept) < 5  # the back-off ran on the fake clock


@responses.activate(registry=registries.OrderedRegistry)
def test_429_retry_after_7_waits_at_least_7_seconds(queued: Any) -> None:
    store, _ = queued
    responses.post(URL, status=429, headers={"Retry-After": "7"})
    responses.post(URL, status=201, json={})
    clock = FakeClock()
    d = dispatcher(store, make(), clock)
    assert d.run_once().retried == 1
    assert as_utc(outbox_row(store).next_attempt_at) >= T0 + dt.timedelta(seconds=7)
    assert d.run_once().claimed == 0  # not before its time
    stats = d.run_until_idle(timeout=60)
    assert stats.sent == 1
    assert clock.now - T0 >= dt.timedelta(seconds=7)
    assert len(responses.calls) == 2


@responses.activate(registry=registries.OrderedRegistry)
def test_http_date_retry_after_is_honoured(queued: Any) -> None:
    store, _ = queued
    when = email.utils.format_datetime(T0 + dt.timedelta(seconds=300), usegmt=True)
    responses.post(URL, status=503, headers={"Retry-After": when})
    dispatcher(store, make(), FakeClock()).run_once()
    assert as_utc(outbox_row(store).next_attempt_at) >= T0 + dt.timedelta(seconds=300)


@responses.activate(registry=registries.OrderedRegistry)
def test_400_goes_dead_with_status_and_excerpt(queued: Any) -> None:
    store, oid = queued
    responses.post(URL, status=400, json={"error": "unknown SKU WID-1"})
    stats = dispatcher(store, make(), FakeClock()).run_until_idle(timeout=60)
    assert (stats.sent, stats.retried, stats.dead) == (0, 0, 1)
    row = outbox_row(store)
    assert (row.state, row.last_status, row.attempts) == ("dead", 400, 1)
    assert "unknown SKU WID-1" in row.last_error
    assert len(responses.calls) == 1  # never retried


@responses.activate(registry=registries.OrderedRegistry)
def test_connection_errors_and_timeouts_are_retried(queued: Any) -> None:
    store, _ = queued
    responses.post(URL, body=requests.exceptions.ConnectionError("reset"))
    responses.post(URL, body=requests.exceptions.ReadTimeout("slow"))
    responses.post(URL, status=201, json={})
    stats = dispatcher(store, make(), FakeClock()).run_until_idle(timeout=3600)
    assert (stats.sent, stats.retried, stats.dead) == (1, 2, 0)
    assert outbox_row(store).attempts == 3


# -- updates and cancels -----------------------------------------------------------------------

ORDERS = "https://erp.example.com/api/orders"


def change(action: str, reference: str | None = "ERP-1", order: dict[str, Any] | None = None) -> Delivery:
    return Delivery(outbox_id=2, order_id="o-2", idempotency_key=idempotency_key("o-2", "erp"), attempt=1,
                    order=order or {**ORDER, "lines": [{**ORDER["lines"][0], "quantity": "12"}]},
                    action=action, target_reference=reference)


def make_changes(session: requests.Session | None = None, **overrides: Any) -> HttpJsonConnector:
    overrides.setdefault("reference", "id")
    overrides.setdefault("update_url", ORDERS + "/{reference}")
    overrides.setdefault("cancel_url", ORDERS + "/{reference}/cancel")
    return make(session, **overrides)


def test_capabilities_follow_the_configured_urls() -> None:
    plain = make()
    assert (plain.capabilities.updates, plain.capabilities.cancels) == (False, False)
    both = make_changes()
    assert (both.capabilities.updates, both.capabilities.cancels) == (True, True)
    assert both.capabilities.idempotency_key and not both.capabilities.idempotent
    only_cancel = make(reference="id", cancel_url=ORDERS + "/{reference}", cancel_method="DELETE")
    assert (only_cancel.capabilities.updates, only_cancel.capabilities.cancels) == (False, True)
    assert HttpJsonConnector.capabilities == plain.capabilities  # the class default stays as it was


@responses.activate
def test_update_puts_the_payload_to_the_reference_url() -> None:
    responses.put(ORDERS + "/ERP-1", status=200, json={"id": "ERP-1", "status": "changed"})
    receipt = make_changes().send(change("update"))
    assert (receipt.status, receipt.reference) == (200, "ERP-1")
    [call] = responses.calls
    assert call.request.method == "PUT"
    assert json.loads(call.request.body)["lines"][0]["quantity"] == "12"  # the changed order, as for create
    assert call.request.headers["Idempotency-Key"] == idempotency_key("o-2", "erp")  # this delivery's own key
    assert call.request.headers["Content-Type"] == "application/json"


@responses.activate
def test_update_method_and_po_number_placeholder() -> None:
    responses.patch(ORDERS + "/by-po/PO%201001%2F7/lines", status=204)
    conn = make_changes(update_url=ORDERS + "/by-po/{po_number}/lines", update_method="PATCH")
    receipt = conn.send(change("update", reference=None, order={**ORDER, "po_number": "PO 1001/7"}))
    assert responses.calls[0].request.method == "PATCH"
    assert receipt.reference is None  # no reference needed, none known, none answered


@responses.activate
def test_cancel_posts_the_payload_by_default() -> None:
    responses.post(ORDERS + "/ERP-1/cancel", status=200, json={})
    receipt = make_changes().send(change("cancel"))
    [call] = responses.calls
    assert call.request.method == "POST"
    assert json.loads(call.request.body)["po_number"] == "PO-1001"  # the ERP may want the reason
    assert receipt.reference == "ERP-1"  # the answer named none: the order keeps the one it was sent to
    assert "reference_error" not in receipt.detail


@responses.activate
def test_cancel_with_delete_sends_no_body() -> None:
    responses.delete(ORDERS + "/ERP-1", status=204)
    conn = make_changes(cancel_url=ORDERS + "/{reference}", cancel_method="DELETE", headers={"Content-Type": "x/y"})
    conn.send(change("cancel"))
    [call] = responses.calls
    assert call.request.method == "DELETE"
    assert not call.request.body
    assert "Content-Type" not in call.request.headers
    assert call.request.headers["Idempotency-Key"] == idempotency_key("o-2", "erp")


@pytest.mark.parametrize(
    ("reference", "segment"),
    [
        ("../admin?x=1#", "..%2Fadmin%3Fx%3D1%23"),
        ("a/b/../../c", "a%2Fb%2F..%2F..%2Fc"),
        ("ERP 7&x=%2F", "ERP%207%26x%3D%252F"),
        ("{po_number}", "%7Bpo_number%7D"),
        ("@evil.example.com", "%40evil.example.com"),
    ],
)
def test_reference_is_percent_encoded_as_one_path_segment(reference: str, segment: str) -> None:
    seen: list[tuple[str, str]] = []

    class Spy(requests.Session):
        def request(self, method: str, url: str, **kw: Any) -> Any:  # type: ignore[override]
            seen.append((method, url))
            # what requests and urllib3 make of it on the way to the wire: still the same path
            prepared = requests.Request(method, url).prepare().url or ""
            seen.append((method, urllib3.util.parse_url(prepared).url))
            raise requests.exceptions.ConnectionError("not really sending")

    conn = make_changes(Spy())
    with pytest.raises(TransientError):
        conn.send(change("update", reference=reference))
    assert seen == [("PUT", f"{ORDERS}/{segment}")] * 2


@pytest.mark.parametrize("reference", [".", ".."])
def test_dot_segments_are_refused(reference: str) -> None:
    with responses.RequestsMock() as rsps, pytest.raises(PermanentError, match="cannot be used in the URL"):
        make_changes().send(change("cancel", reference=reference))
    assert len(rsps.calls) == 0


@responses.activate
def test_missing_reference_is_a_permanent_error_naming_the_order() -> None:
    with pytest.raises(PermanentError) as info:
        make_changes().send(change("update", reference=None))
    msg = str(info.value)
    assert "update of order PO-1001 (o-2)" in msg
    assert "the original delivery returned no reference" in msg and "configure `reference:`" in msg
    assert len(responses.calls) == 0


@pytest.mark.parametrize("action", ["update", "cancel"])
@responses.activate
def test_an_action_the_connector_does_not_declare_is_refused(action: str) -> None:
    with pytest.raises(PermanentError, match=f"does not take {action}s \\({action}_url is not configured\\)"):
        make().send(change(action))
    with pytest.raises(PermanentError, match="unknown delivery action 'merge'"):
        make_changes().send(change("merge"))
    assert len(responses.calls) == 0


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("https://erp.example.com/orders/{id}", "only placeholders allowed"),
        ("https://erp.example.com/orders/{reference!r}", "only placeholders allowed"),
        ("https://erp.example.com/orders/{}", "only placeholders allowed"),
        ("https://erp.example.com/orders/{{reference}}", "only placeholders allowed"),
        ("https://{reference}.example.com/orders", "not in the host"),
        ("https://erp.example.com{reference}/orders", "not in the host"),
        ("https://{reference}@erp.example.com/orders", "not in the host"),
        ("https://erp.example.com/orders?id={reference}", "not in the query"),
        ("https://erp.example.com/orders#{reference}", "not in the fragment"),
        ("ftp://erp.example.com/orders/{reference}", "http or https"),
        ("/orders/{reference}", "http or https"),
        ("https:///orders/{reference}", "no host"),
        ("https://erp.example.com\\@evil.example/{reference}", "backslashes"),
        ("https://erp.example.com/orders/ {reference}", "spaces"),
    ],
)
def test_url_templates_are_checked_at_config_load(template: str, why: str) -> None:
    for field in ("update_url", "cancel_url"):
        with pytest.raises(ValueError, match=why):
            HttpJsonConfig.model_validate({"name": "erp", "url": URL, "reference": "id", field: template})


def test_a_reference_placeholder_needs_the_reference_setting() -> None:
    with pytest.raises(ValueError, match="update_url uses \\{reference\\}, but `reference` is not set"):
        HttpJsonConfig(name="erp", url=URL, update_url=ORDERS + "/{reference}")
    HttpJsonConfig(name="erp", url=URL, update_url=ORDERS + "/by-po/{po_number}")  # fine without it


def test_config_methods() -> None:
    cfg = HttpJsonConfig(name="erp", url=URL, reference="id", update_url=ORDERS + "/{reference}",
                         cancel_url=ORDERS + "/{reference}")
    assert (cfg.update_method, cfg.cancel_method) == ("PUT", "POST")
    with pytest.raises(ValueError):
        HttpJsonConfig.model_validate({"name": "erp", "url": URL, "update_method": "DELETE"})
    with pytest.raises(ValueError):
        HttpJsonConfig.model_validate({"name": "erp", "url": URL, "cancel_method": "PUT"})


def test_ssrf_guard_covers_the_update_and_cancel_hosts() -> None:
    hosts = {"erp.example.com": [PUBLIC_IP], "internal.example.com": ["10.0.0.7"]}
    with pytest.raises(UnsafeTarget, match="10.0.0.7, a private address"):
        make_changes(update_url="https://internal.example.com/orders/{reference}", resolver=lambda h, p: hosts[h])
    with pytest.raises(UnsafeTarget, match="loopback"):
        make_changes(cancel_url="http://127.0.0.1/orders/{reference}")


def test_ssrf_guard_checks_the_update_host_again_at_send() -> None:
    answers = {"erp.example.com": iter([[PUBLIC_IP]] * 5), "changes.example.com": iter([[PUBLIC_IP], ["10.0.0.9"]])}
    conn = make_changes(update_url="https://changes.example.com/o/{reference}", resolver=lambda h, p: next(answers[h]))
    with responses.RequestsMock() as rsps, pytest.raises(UnsafeTarget, match="changes.example.com is 10.0.0.9"):
        conn.send(change("update"))
    assert len(rsps.calls) == 0


@responses.activate(registry=registries.OrderedRegistry)
def test_update_errors_map_like_create() -> None:
    responses.put(ORDERS + "/ERP-1", status=503, headers={"Retry-After": "4"})
    responses.put(ORDERS + "/ERP-1", status=404, json={"error": "no such order"})
    conn = make_changes()
    with pytest.raises(TransientError) as first:
        conn.send(change("update"))
    assert first.value.retry_after == 4
    with pytest.raises(PermanentError, match="HTTP 404 from erp: .*no such order"):
        conn.send(change("update"))
