"""The web console's access control, in process (FastAPI TestClient, no browser): anonymous
requests see nothing, a viewer cannot act, a POST without the session's CSRF token changes
nothing, logins are checked against Argon2id hashes, and every asset ships in the package."""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
import tomllib

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gateway.app import Gateway
from gateway.config import GatewayConfig
from gateway.connector import RawMessage
from gateway.console import auth
from gateway.errors import GatewayError
from gateway.intake.app import create_app
from gateway.store import tables as t
from gateway.store.console_users import add_user, find_user, list_users
from gateway.store.reports import volumes
from tests.conftest import ROOT

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory):
    tmp_path = tmp_path_factory.mktemp("console")
    gateway = Gateway(
        GatewayConfig.model_validate(
            {
                "store": {"url": f"sqlite:///{tmp_path / 'gateway.db'}"},
                "partners": [{"name": "acme", "x12_ids": ["ZZ:ACMERETAIL"]}],
                "connectors": [{"type": "file", "name": "outbox", "path": str(tmp_path / "outbox")}],
                "intake": {"console": {"max_failed_logins": 3}},
            }
        )
    )
    for role in ("viewer", "operator", "admin"):
        add_user(gateway.store, role, role, auth.hash_password(PASSWORD))
    example = ROOT / "gateway" / "examples" / "acme-po-4010.edi"
    gateway.ingest(RawMessage(body=example.read_bytes(), source="cli", source_ref=str(example), display_name=example.name))
    yield gateway
    gateway.close()


def client(gw: Gateway) -> TestClient:
    assert gw.config.intake is not None
    return TestClient(create_app(gw, gw.config.intake), follow_redirects=False)


def login(c: TestClient, name: str, password: str = PASSWORD, next_: str = "/orders") -> int:
    page = c.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = c.post("/console/login", data={"username": name, "password": password, "csrf_token": token, "next": next_})
    return r.status_code


def csrf_of(c: TestClient, path: str = "/console/orders") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', c.get(path).text).group(1)  # type: ignore[union-attr]


def first_order(gw: Gateway) -> str:
    with gw.store.engine.connect() as conn:
        return str(conn.execute(select(t.orders.c.id)).scalars().first())


def test_anonymous_requests_see_nothing_but_the_login_page(gw: Gateway) -> None:
    c = client(gw)
    oid = first_order(gw)
    for path in (
        "/console/", "/console/orders", f"/console/orders/{oid}", "/console/exceptions", "/console/dead-letters", "/console/sources",
        "/console/partners", "/console/users", "/console/reports", "/console/reports/volumes.csv",
    ):
        r = c.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next="), path
        assert "PO" not in r.text
    assert c.post(f"/console/orders/{oid}/approve", data={}).status_code == 303
    for action in ("replay", "discard", "edit", "replay-matching"):
        assert c.post(f"/console/dead-letters/{action}", data={"id": "1", "reason": "x", "set": "po_number=1"}).status_code == 303
    htmx = c.get(f"/console/orders/{oid}/timeline", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/console/login")
    # assets are public (the login page needs them) and come from the package
    assert c.get("/console/static/htmx.min.js").status_code == 200
    assert "Content-Security-Policy" in c.get("/console/login").headers


def test_logins_are_checked_and_next_never_leaves_the_console(gw: Gateway) -> None:
    c = client(gw)
    assert login(c, "viewer", "wrong password!") == 401
    assert login(c, "nobody", PASSWORD) == 401
    assert c.get("/console/orders").status_code == 303
    page = c.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    no_token = c.post("/console/login", data={"username": "viewer", "password": PASSWORD, "next": "/orders"})
    assert no_token.status_code == 403
    r = c.post("/console/login", data={"username": "viewer", "password": PASSWORD, "csrf_token": token, "next": "//evil.example/x"})
    assert r.status_code == 303 and r.headers["location"] == "/console/orders"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    assert c.get("/console/orders").status_code == 200
    stored = find_user(gw.store, "viewer")
    assert stored is not None and stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.password_hash
    c.post("/console/logout", data={"csrf_token": csrf_of(c)})
    assert c.get("/console/orders").status_code == 303


def test_a_viewer_reads_but_cannot_approve_replay_or_see_users(gw: Gateway) -> None:
    c = client(gw)
    assert login(c, "viewer") == 303
    oid = first_order(gw)
    assert c.get(f"/console/orders/{oid}").status_code == 200
    token = csrf_of(c)
    for path, data in ((f"/console/orders/{oid}/approve", {}), (f"/console/orders/{oid}/reject", {"reason": "x"}), ("/console/dead-letters/replay", {"id": "1"})):
        r = c.post(path, data={**data, "csrf_token": token})
        assert r.status_code == 403 and "needs the operator role" in r.text, path
    assert c.get("/console/users").status_code == 403
    page = c.get(f"/console/orders/{oid}").text
    assert "Approve" not in page and "Replay" not in c.get("/console/dead-letters").text
    for action, data in (
        ("discard", {"id": "1", "reason": "never"}), ("edit", {"id": "1", "set": "lines[1].quantity=5"}),
        ("replay-matching", {"connector": "outbox", "confirm": "yes", "expected": "0"}),
    ):
        r = c.post(f"/console/dead-letters/{action}", data={**data, "csrf_token": token})
        assert r.status_code == 403 and "needs the operator role" in r.text, action


def test_a_viewer_sees_the_reports_and_downloads_them_as_csv(gw: Gateway) -> None:
    c = client(gw)
    assert login(c, "viewer") == 303
    page = c.get("/console/reports")
    assert page.status_code == 200 and page.text.count("<svg") >= 2 and page.text.count("Download CSV") == 5
    today = dt.datetime.now(dt.UTC).date().isoformat()
    read = sum(r.orders for r in volumes(gw.store))
    assert f'data-series="x12" data-category="{today}" data-value="{read}"' in page.text  # the example's orders, read today
    csv = c.get(f"/console/reports/volumes.csv?since={today}&until={today}")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.headers["content-disposition"] == f'attachment; filename="volumes-{today}-{today}.csv"'
    assert csv.text.splitlines()[0] == "day,channel,partner,orders" and csv.text.splitlines()[1] == f"{today},x12,acme,{read}"
    assert c.get("/console/reports/nothing.csv").status_code == 404
    other = c.get("/console/reports?partner=globex")
    assert "0 order(s) read" in other.text and "partner globex" in other.text
    bad = c.get("/console/reports?since=yesterday&until=2026-13-01")
    assert bad.status_code == 200 and "is not a date" in bad.text


def test_a_post_without_the_csrf_token_changes_nothing(gw: Gateway) -> None:
    c = client(gw)
    assert login(c, "operator") == 303
    oid = first_order(gw)
    with gw.store.engine.connect() as conn:
        before = conn.execute(select(t.events.c.id)).all()
    for token in (None, "forged-token-forged-token-forged-token"):
        data = {"reason": "no"} | ({"csrf_token": token} if token else {})
        r = c.post(f"/console/orders/{oid}/reject", data=data)
        assert r.status_code == 403 and "security token" in r.text
    with gw.store.engine.connect() as conn:
        assert conn.execute(select(t.events.c.id)).all() == before
    # the same request with the token is heard (the order is not held: refused with a reason, not a 403)
    ok = c.post(f"/console/orders/{oid}/reject", data={"reason": "no", "csrf_token": csrf_of(c)})
    assert ok.status_code == 303 and "not+done" in ok.headers["location"]


def test_an_admin_sees_the_users_and_roles_are_checked(gw: Gateway) -> None:
    c = client(gw)
    assert login(c, "admin") == 303
    page = c.get("/console/users")
    assert page.status_code == 200 and all(name in page.text for name in ("viewer", "operator", "admin"))
    with pytest.raises(GatewayError, match="exists"):
        add_user(gw.store, "viewer", "viewer", auth.hash_password(PASSWORD))
    with pytest.raises(GatewayError, match="unknown role"):
        add_user(gw.store, "x", "root", auth.hash_password(PASSWORD))
    assert [u.name for u in list_users(gw.store)] == ["admin", "operator", "viewer"]


def test_templates_and_assets_ship_in_the_wheel() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["gateway"]
    folder = ROOT / "gateway" / "console"
    shipped = [p for p in (folder / "templates").iterdir()] + [p for p in (folder / "static").iterdir()]
    assert len(shipped) > 10
    for path in shipped:
        rel = path.relative_to(ROOT / "gateway").as_posix()
        assert any(fnmatch.fnmatch(rel, pat) for pat in patterns), rel


def test_password_guessing_is_stopped_after_the_configured_failures(gw: Gateway) -> None:
    assert gw.config.intake is not None and gw.config.intake.console is not None
    limit = gw.config.intake.console.max_failed_logins
    add_user(gw.store, "locked", "viewer", auth.hash_password(PASSWORD))
    c = client(gw)
    assert [login(c, "locked", f"guess-{i:06d}") for i in range(limit)] == [401] * limit
    assert login(c, "LOCKED", PASSWORD) == 429  # even the right password, for any spelling of the name
    assert login(c, "viewer") == 303  # other names are not affected


def test_the_shipped_configuration_serves_the_console_and_says_where() -> None:
    from gateway.cli.users import console_address
    from gateway.config import load_config

    cfg = load_config(ROOT / "config" / "gateway.yaml", env={})
    assert console_address(cfg) == "http://127.0.0.1:8080/console/"
    assert console_address(cfg.model_copy(update={"intake": None})) is None
