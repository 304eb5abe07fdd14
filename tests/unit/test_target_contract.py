"""The behaviour every target promises, written once and run against each of them.

To add a target: write a `_<type>_target` factory below returning a `Target`, add its type to
`TARGET_TYPES`. The registry test checks that no registered type is left out.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import types
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from sqlalchemy import insert, select

from connectors.registry import TARGETS
from connectors.targets.auth import ApiKeyAuth, BearerAuth
from connectors.targets.easypost.config import EasyPostConfig
from connectors.targets.erpnext.config import ERPNextConfig
from connectors.targets.file import connector as file_module
from connectors.targets.file.config import FileTargetConfig
from connectors.targets.http_json.config import HttpJsonConfig
from connectors.targets.hubspot.config import HubSpotConfig
from connectors.targets.memory.config import MemoryTargetConfig
from connectors.targets.memory.connector import MemoryConnector
from connectors.targets.odoo.config import OdooConfig
from connectors.targets.shipstation.config import ShipStationConfig
from gateway.config import DispatchConfig
from gateway.connector import Capabilities, Connector, Delivery
from gateway.dispatch.worker import Dispatcher
from gateway.errors import ConfigError, PermanentError, TransientError
from gateway.model import Channel, Order, OrderLine, Party
from gateway.plugins import PluginSpec, build, known_types, plugin_class
from gateway.retry import RetryPolicy
from gateway.store import Store
from gateway.store import tables as t
from gateway.store.outbox import idempotency_key, new_deliveries
from tests.support import tryton
from tests.support.fake_erp import FakeERP, Scripted
from tests.support.fake_erpnext import ERPNEXT_URL, FakeERPNext
from tests.support.fake_hubspot import FakeHubSpot
from tests.support.fake_odoo import ODOO_URL, FakeOdoo
from tests.support.shipping_apis import EASYPOST_URL, SHIPSTATION_URL, FakeEasyPost, FakeShipStation

GOLDEN = Order(
    po_number="PO-GOLD-1",
    order_date=dt.date(2026, 11, 27),
    channel=Channel.X12,
    partner="acme",
    currency="USD",
    buyer=Party(name="Acme Retail", code="ACME"),
    lines=[
        OrderLine(line_number="1", sku="WID-1", quantity=Decimal("10"), uom="EA", unit_price=Decimal("2.50")),
        OrderLine(line_number="2", sku="GAD-9", quantity=Decimal("0.5"), uom="KG", unit_price=Decimal("19.99")),
    ],
).model_dump(mode="json")


@dataclass
class Target:
    connector: Connector
    effects: Callable[[], list[Any]]  # what the target holds: one body per distinct effect
    transient_fault: Callable[[], AbstractContextManager[None]]  # while active, sends fail transiently
    # updates and cancels the target holds: (action, body or None when it carries none)
    changes: Callable[[], list[tuple[str, Any]]]
    permanent_fault: Callable[[], AbstractContextManager[None]]  # while active, sends are refused for good
    # what effects() holds for an order: the order itself, or the part of it an ERP keeps visible
    effect_of: Callable[[dict[str, Any]], Any] = lambda order: order
    change_of: Callable[[dict[str, Any]], Any] = lambda order: order  # what changes() holds for an update
    updates: bool = True  # takes a changed order (EasyPost does not: a bought label cannot change)


CHANGED = {**GOLDEN, "lines": [{**GOLDEN["lines"][0], "quantity": "12"}]}


def _http_json_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    with FakeERP() as erp:
        cfg = HttpJsonConfig(
            name="erp", url=erp.url, allow_private_targets=True, reference="id",
            update_url=erp.base_url + "/orders/{reference}",
            cancel_url=erp.base_url + "/orders/{reference}", cancel_method="DELETE",
        )

        @contextmanager
        def fault() -> Iterator[None]:
            erp.script(503)
            yield
            erp.clear_script()

        @contextmanager
        def refusal() -> Iterator[None]:
            erp.script(*[Scripted(422, body={"error": "unknown SKU"})] * 5)
            yield
            erp.clear_script()

        connector = build("target", cfg)
        yield Target(
            connector,
            lambda: [o["body"] for o in erp.orders],
            fault,
            lambda: [(c["action"], c["body"]) for c in erp.changes],
            refusal,
        )
        connector.close()


def _file_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    folder = tmp_path / "outbox"

    def files(*, changes: bool) -> list[Path]:
        if not folder.exists():
            return []
        found = sorted(folder.glob("*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name))
        return [p for p in found if p.name.startswith(("update-", "cancel-")) == changes]

    def effects() -> list[Any]:
        return [json.loads(p.read_text(encoding="utf-8")) for p in files(changes=False)]

    def changes() -> list[tuple[str, Any]]:
        return [(p.name.split("-", 1)[0], json.loads(p.read_text(encoding="utf-8"))) for p in files(changes=True)]

    @contextmanager
    def fault() -> Iterator[None]:
        def full(fd: int) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        with monkeypatch.context() as m:
            m.setattr(file_module.os, "fsync", full)
            yield

    @contextmanager
    def refusal() -> Iterator[None]:
        def denied(fd: int) -> None:
            raise OSError(errno.EACCES, "Permission denied")

        with monkeypatch.context() as m:
            m.setattr(file_module.os, "fsync", denied)
            yield

    connector = build("target", FileTargetConfig(name="files", path=folder))
    yield Target(connector, effects, fault, changes, refusal)
    connector.close()


def _memory_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    connector = build("target", MemoryTargetConfig(name="memory"))
    assert isinstance(connector, MemoryConnector)

    @contextmanager
    def knob(**faults: Any) -> Iterator[None]:
        before = connector.faults
        connector.faults = replace(before, **faults)
        yield
        connector.faults = before

    yield Target(
        connector,
        lambda: list(connector.orders),
        lambda: knob(transient_rate=1.0),
        lambda: list(connector.changes),
        lambda: knob(permanent_po_numbers=frozenset({GOLDEN["po_number"]})),
    )
    connector.close()


def _tryton_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    """The real Tryton server: effects are the sales made during the test (PO and customer; the
    lines are checked through changes and in tests/unit/test_tryton.py), changes come from
    Tryton's own log of the sale (a line write is an update, the cancelled transition a cancel)."""
    with tryton.inspecting() as inspector:  # the test has the Tryton database to itself
        # every test sends the same PO with the same key: an earlier test's sale must not answer for it
        inspector.forget_deliveries([("reference", "=", GOLDEN["po_number"])])
        first = inspector.last_sale_id()
        connector = tryton.connector("erp", state="quotation")

        def sales() -> list[dict[str, Any]]:
            return inspector.sales([("id", ">", first)])

        def changes() -> list[tuple[str, Any]]:
            out: list[tuple[str, Any]] = []
            for sale in sales():
                for entry in inspector.log(sale["id"]):
                    if entry["event"] == "write" and entry["target"] == "lines":
                        out.append(("update", {"lines": inspector.lines(sale)}))
                    elif entry["event"] == "transition" and entry["target"] == "state:cancelled":
                        out.append(("cancel", None))
            return out

        @contextmanager
        def fault() -> Iterator[None]:
            def refused(*args: Any, **kwargs: Any) -> Any:
                raise requests.exceptions.ConnectionError("connection refused")

            with monkeypatch.context() as m:
                m.setattr(connector.client.session, "post", refused)
                yield

        @contextmanager
        def refusal() -> Iterator[None]:
            inspector.set_salable("WID-1", False)  # Tryton no longer sells it: an unknown product
            try:
                yield
            finally:
                inspector.set_salable("WID-1", True)

        def effect_of(order: dict[str, Any]) -> Any:
            return {"reference": order["po_number"], "customer": order["buyer"]["code"]}

        yield Target(
            connector,
            lambda: [{"reference": s["reference"], "customer": s["customer"]} for s in sales()],
            fault, changes, refusal, effect_of, lambda order: {"lines": tryton.order_lines(order)},
        )
        connector.close()


def _erp_effect(order: dict[str, Any]) -> Any:
    """What an ERP keeps visible of an order: its PO number and its customer."""
    return {"reference": order["po_number"], "customer": order["buyer"]["code"]}


def _sku_lines(order: dict[str, Any]) -> Any:
    return {"lines": [(line["sku"], float(line["quantity"])) for line in order["lines"]]}


@contextmanager
def _scripted(script: list[Any], *steps: Any) -> Iterator[None]:
    script[:] = list(steps)
    try:
        yield
    finally:
        script.clear()


def _odoo_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    """Odoo's JSON-RPC API, in process (tests/support/fake_odoo.py); a refusal is a product Odoo no longer sells."""
    monkeypatch.setenv("ODOO_KEY", "odoo-key-1")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        odoo = FakeOdoo(mock)
        connector = build("target", OdooConfig(name="odoo", url=ODOO_URL, database="prod", username="gateway",
                                               password_env="ODOO_KEY", state="quotation"))
        partners = odoo.records["res.partner"]

        @contextmanager
        def refusal() -> Iterator[None]:
            odoo.product("WID-1")["sale_ok"] = False
            yield
            odoo.product("WID-1")["sale_ok"] = True

        yield Target(
            connector,
            lambda: [{"reference": o["client_order_ref"], "customer": partners[o["partner_id"]]["ref"]} for o in odoo.orders()],
            lambda: _scripted(odoo.script, *[503] * 20), lambda: list(odoo.changes), refusal, _erp_effect, _sku_lines,
        )
        connector.close()


def _shipstation_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    """ShipStation behind `responses` (tests/support/shipping_apis.py); a payload mapping keeps
    the golden order's 0.5 KG line (the built-in body takes whole units only)."""
    mapping = tmp_path / "shipstation.jmespath"
    mapping.write_text("{orderNumber: po_number, orderDate: order_date, items: lines[].{sku: sku, quantity: quantity}}")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        api = FakeShipStation(rsps)
        cfg = ShipStationConfig(name="shipstation", url=SHIPSTATION_URL, api_key="k", api_secret="s", payload=mapping)  # type: ignore[arg-type]

        @contextmanager
        def scripted(status: int, body: Any, headers: dict[str, str] | None = None) -> Iterator[None]:
            api.script(status, body, headers, times=5)
            yield
            api.clear_script()

        def effect(order: dict[str, Any]) -> Any:
            return {"orderNumber": order.get("orderNumber", order.get("po_number")), "skus": [i["sku"] for i in order.get("items", order.get("lines", []))]}

        connector = build("target", cfg)
        yield Target(
            connector, lambda: [effect(b) for b in api.effects],
            lambda: scripted(429, {"Message": "Too Many Requests"}, {"X-Rate-Limit-Reset": "5"}),
            lambda: [(kind, body and [i["quantity"] for i in body["items"]]) for kind, body in api.changes],
            lambda: scripted(400, {"Message": "The request is invalid.", "ModelState": {"apiOrder.items": ["Unknown SKU"]}}),
            effect, lambda order: [line["quantity"] for line in order["lines"]],
        )
        connector.close()


def _erpnext_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    """ERPNext's REST API, in process (tests/support/fake_erpnext.py); a refusal is a disabled item."""
    monkeypatch.setenv("ERPNEXT_TOKEN", "api-key-1:api-secret-1")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        erp = FakeERPNext(mock)
        auth = ApiKeyAuth(header="Authorization", prefix="token ", value_env="ERPNEXT_TOKEN")
        connector = build("target", ERPNextConfig(name="erpnext", url=ERPNEXT_URL, auth=auth, key_field="order_gateway_key"))

        @contextmanager
        def refusal() -> Iterator[None]:
            erp.docs["Item"]["WID-1"]["disabled"] = 1
            yield
            erp.docs["Item"]["WID-1"]["disabled"] = 0

        yield Target(
            connector,
            lambda: [{"reference": o["po_no"], "customer": o["customer"]} for o in erp.orders()],
            lambda: _scripted(erp.script, *[(503, "")] * 20), lambda: list(erp.changes), refusal, _erp_effect, _sku_lines,
        )
        connector.close()


def _hubspot_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    """HubSpot's CRM API, in process (tests/support/fake_hubspot.py); a refusal is a 400 VALIDATION_ERROR."""
    monkeypatch.setenv("HUBSPOT_TOKEN", "pat-na1-11111111-2222")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        crm = FakeHubSpot(mock)
        connector = build("target", HubSpotConfig(name="hubspot", auth=BearerAuth(token_env="HUBSPOT_TOKEN")))
        yield Target(
            connector,
            lambda: [{"dealname": d["dealname"]} for d in crm.deals()],
            lambda: _scripted(crm.script, *[(429, "RATE_LIMITS")] * 20),
            lambda: list(crm.changes),
            lambda: _scripted(crm.script, *[(400, "VALIDATION_ERROR")] * 5),
            lambda order: {"dealname": f"PO {order['po_number']}"},
            _sku_lines,
        )
        connector.close()


def _easypost_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    """EasyPost behind `responses`; the golden order has no route, so the defaults choose the rate."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        api = FakeEasyPost(rsps)
        cfg = EasyPostConfig.model_validate({
            "name": "easypost", "url": EASYPOST_URL, "api_key": "EZTK", "default_weight_oz": 16,
            "default_carrier": "UPS", "default_service": "Ground",
            "from_address": {"name": "Gateway Co", "street1": "9 Depot St", "city": "Sparks", "zip": "89431"},
        })

        @contextmanager
        def scripted(status: int, code: str) -> Iterator[None]:
            api.script(status, {"error": {"code": code, "message": code.lower(), "errors": []}}, times=5)
            yield
            api.clear_script()

        connector = build("target", cfg)
        yield Target(
            connector, lambda: [{"to": e["to"], "service": e["service"]} for e in api.effects],
            lambda: scripted(503, "INTERNAL_SERVER_ERROR"), lambda: list(api.changes),
            lambda: scripted(422, "ADDRESS.VERIFY.FAILURE"),
            lambda order: {"to": order["buyer"]["name"], "service": "Ground"}, updates=False,
        )
        connector.close()


TARGET_TYPES: dict[str, Callable[[Path, pytest.MonkeyPatch], Iterator[Target]]] = {
    "hubspot": _hubspot_target,
    "erpnext": _erpnext_target,
    "odoo": _odoo_target,
    "http_json": _http_json_target,
    "file": _file_target,
    "memory": _memory_target,
    "tryton": _tryton_target,
    "shipstation": _shipstation_target,
    "easypost": _easypost_target,
}


# Tryton's test may wait for another worker's test against the same server (tryton.exclusive).
@pytest.fixture(params=[pytest.param(n, marks=pytest.mark.timeout(600)) if n == "tryton" else n for n in sorted(TARGET_TYPES)])
def target(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    yield from TARGET_TYPES[request.param](tmp_path, monkeypatch)


def delivery(
    order: dict[str, Any] = GOLDEN,
    order_id: str = "order-1",
    attempt: int = 1,
    action: str = "create",
    reference: str | None = None,
) -> Delivery:
    return Delivery(outbox_id=1, order_id=order_id, idempotency_key=idempotency_key(order_id, "t"),
                    attempt=attempt, order=order, action=action, target_reference=reference)


# -- the contract ------------------------------------------------------------------------------


def test_golden_order_is_delivered(target: Target) -> None:
    receipt = target.connector.send(delivery())
    assert target.effects() == [target.effect_of(GOLDEN)]
    assert receipt.reference  # every target names what it made (ERP id, file name)
    assert GOLDEN["lines"][0]["quantity"] == "10"  # decimals travel as strings, never floats


def test_sending_the_same_delivery_twice_has_one_effect(target: Target) -> None:
    first = target.connector.send(delivery())
    second = target.connector.send(delivery(attempt=2))
    assert target.effects() == [target.effect_of(GOLDEN)]
    assert first.reference == second.reference
    target.connector.send(delivery(order_id="order-2"))
    assert len(target.effects()) == 2


def test_a_transient_fault_surfaces_as_transient_error(target: Target) -> None:
    with target.transient_fault(), pytest.raises(TransientError):
        target.connector.send(delivery())
    assert target.effects() == []
    target.connector.send(delivery(attempt=2))  # the fault cleared: the retry goes through
    assert target.effects() == [target.effect_of(GOLDEN)]


def test_a_permanent_fault_surfaces_as_permanent_error(target: Target) -> None:
    """A refusal is a PermanentError (dead-lettered, never retried), and it leaves no effect."""
    with target.permanent_fault():
        try:
            receipt = target.connector.send(delivery())
        except PermanentError as exc:
            assert not isinstance(exc, TransientError)
        else:  # seen once under load against Tryton: say what was delivered, and to what
            pytest.fail(f"no PermanentError: the send returned {receipt!r}; the target holds {target.effects()!r}")
    assert target.effects() == []
    target.connector.send(delivery(attempt=2))  # replayed after the fix: delivered once
    assert target.effects() == [target.effect_of(GOLDEN)]


def test_capabilities_are_declared_data(target: Target) -> None:
    caps = target.connector.capabilities
    assert isinstance(caps, Capabilities) and isinstance(type(target.connector).capabilities, Capabilities)
    assert caps.idempotency_key  # every built-in target honours the delivery's key
    assert caps.cancels and caps.updates == target.updates  # as configured here (http_json: update_url, cancel_url)
    assert isinstance(target.connector.name, str) and target.connector.name


def test_update_and_cancel_after_create_each_have_one_effect(target: Target) -> None:
    created = target.connector.send(delivery())
    assert created.reference
    for attempt in (1, 2) if target.updates else ():  # a repeat of an update or a cancel changes nothing more
        target.connector.send(delivery(CHANGED, "order-2", attempt, "update", created.reference))
    for attempt in (1, 2):
        target.connector.send(delivery(CHANGED, "order-3", attempt, "cancel", created.reference))
    assert target.effects() == [target.effect_of(GOLDEN)]  # still one order
    if not target.updates:
        assert target.changes() == [("cancel", None)]
        return
    changes = dict(target.changes())
    assert len(target.changes()) == 2 and set(changes) == {"update", "cancel"}
    assert changes["update"] == target.change_of(CHANGED)  # an update carries the changed order


def test_close_twice_is_harmless(target: Target) -> None:
    target.connector.close()
    target.connector.close()


def test_through_the_dispatcher_a_fault_then_success_is_one_effect(target: Target, sqlite_url: str) -> None:
    store = Store(sqlite_url)
    now = dt.datetime.now(dt.UTC)
    name = target.connector.name
    with store.begin() as conn:
        conn.execute(insert(t.messages).values(
            id="m-1", received_at=now, updated_at=now, source="test", sha256="c" * 64, size=1,
            state="parsed", warnings=[], attempts=1, order_count=1, rejected_count=0))
        conn.execute(insert(t.orders).values(
            id="order-1", message_id="m-1", doc_index=0, created_at=now, updated_at=now, channel="x12",
            po_number=GOLDEN["po_number"], state="validated", line_count=2, data=GOLDEN))
        conn.execute(insert(t.outbox), new_deliveries("order-1", [name], now))
    clock = types.SimpleNamespace(now=now)

    def sleep(seconds: float) -> None:
        clock.now += dt.timedelta(seconds=seconds)

    d = Dispatcher(store, {name: target.connector}, {name: RetryPolicy()}, DispatchConfig(poll_seconds=3600),
                   clock=lambda: clock.now, sleep=sleep)
    with target.transient_fault():
        assert d.run_once().retried == 1
    stats = d.run_until_idle(timeout=3600)
    assert stats.sent == 1 and stats.idle
    assert target.effects() == [target.effect_of(GOLDEN)]
    with store.engine.connect() as c:
        assert c.execute(select(t.orders.c.state)).scalar_one() == "dispatched"
    store.dispose()


def test_through_the_dispatcher_an_update_follows_its_create(target: Target, sqlite_url: str) -> None:
    """Both versions queued at once: the update waits, then goes with the create's reference."""
    store = Store(sqlite_url)
    now = dt.datetime.now(dt.UTC)
    name = target.connector.name
    with store.begin() as conn:
        conn.execute(insert(t.messages).values(
            id="m-1", received_at=now, updated_at=now, source="test", sha256="d" * 64, size=1,
            state="parsed", warnings=[], attempts=1, order_count=2, rejected_count=0))
        for i, (oid, data) in enumerate([("order-1", GOLDEN), ("order-2", CHANGED)]):
            conn.execute(insert(t.orders).values(
                id=oid, message_id="m-1", doc_index=i, created_at=now, updated_at=now, channel="x12",
                po_number=GOLDEN["po_number"], state="validated", line_count=2, data=data, version=i + 1,
                supersedes="order-1" if i else None))
        conn.execute(insert(t.outbox), new_deliveries("order-1", [name], now))
        first = conn.execute(select(t.outbox.c.id)).scalar_one()
        conn.execute(insert(t.outbox), new_deliveries("order-2", [name], now, action="update", after={name: first}))
    d = Dispatcher(store, {name: target.connector}, {name: RetryPolicy()}, DispatchConfig(poll_seconds=3600),
                   clock=lambda: now, sleep=lambda s: None)
    stats = d.run_until_idle(timeout=60)
    assert target.effects() == [target.effect_of(GOLDEN)]
    if not target.updates:  # never handed to it: a dead letter that says why
        assert (stats.sent, stats.dead) == (1, 1)
        with store.engine.connect() as c:
            assert "does not declare that it can take an order update" in c.execute(select(t.outbox.c.last_error).where(t.outbox.c.state == "dead")).scalar_one()
        store.dispose()
        return
    assert (stats.sent, stats.idle) == (2, True)
    assert target.changes() == [("update", target.change_of(CHANGED))]
    with store.engine.connect() as c:
        create, update = c.execute(select(t.outbox).order_by(t.outbox.c.id)).all()
        states = set(c.execute(select(t.orders.c.state)).scalars())
    assert update.target_reference == create.receipt["reference"]
    assert states == {"dispatched"}
    store.dispose()


# -- the registry ------------------------------------------------------------------------------


def test_every_registered_target_runs_the_contract() -> None:
    assert set(TARGETS) == set(TARGET_TYPES)
    assert set(TARGETS) <= set(known_types("target"))


def test_registry_builds_each_type(tmp_path: Path) -> None:
    assert plugin_class("target", "file").__name__ == "FileConnector"
    assert plugin_class("target", "http_json").__name__ == "HttpJsonConnector"
    conn = build("target", FileTargetConfig(name="files", path=tmp_path))
    assert conn.name == "files"


def test_unknown_type_says_did_you_mean() -> None:
    with pytest.raises(ConfigError) as info:
        build("target", types.SimpleNamespace(type="http_jsn", name="erp"))
    assert "unknown connector type 'http_jsn'; did you mean 'http_json'?" in str(info.value)
    with pytest.raises(ConfigError, match="known types: easypost, erpnext, file, http_json, hubspot, memory, odoo"):
        plugin_class("target", "smtp")
    with pytest.raises(ConfigError, match="has no type"):
        build("target", types.SimpleNamespace(name="erp"))


def test_a_broken_registration_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TARGETS, "ghost", PluginSpec("ghost", "connectors.targets.ghost.connector:GhostConnector"))
    with pytest.raises(ConfigError, match="cannot be loaded"):
        plugin_class("target", "ghost")
