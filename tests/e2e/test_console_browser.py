"""The web console in a real headless Chromium (Debian's, driven by Python playwright).

112 X12 orders from the rules' mix go through the real ingest path (drop folder,
`run_until_idle`): 91 wait in the exception queue, and 21 accepted orders die on an ERP
that refuses connections. The operator is made with the real `gateway users add` (one
subprocess), the intake serves the console on a free port, and one browser, launched once
for the module, logs in, finds an order by its PO number, opens its timeline (htmx),
approves a held order, edits and assigns others, replays a dead letter; a viewer sees no buttons and is refused when
it posts anyway; an anonymous visitor only sees the login page; a POST without the CSRF
token is refused. On the reports page the charts' numbers are the seeded orders' and a CSV
download keeps a formula-like partner as text; on the dead-letters page an operator reads a
letter's attempt log, edits one, replays another by filter (after the confirmation with the
count) and discards a third with a reason, each recorded as `olivia (console)`. Screenshots of the main pages go to $GATEWAY_TEST_ARTIFACTS/console (or
the pytest tmp dir), never into the repository.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.app import Gateway
from gateway.config import load_config
from gateway.console import auth
from gateway.intake.server import IntakeServer
from gateway.store import tables as t
from gateway.store.console_users import add_user
from gateway.store.dead_letters import attempts_of, list_dead
from gateway.store.reports import exceptions as exception_rates
from tests.e2e.helpers import run_cli
from tests.support import rulesgen as gen

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Quiet and offline (see /work/shared/recipes/test-services/browser_demo.py).
FLAGS = [
    "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--disable-quic",
    "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
    "--disable-sync", "--no-first-run", "--no-default-browser-check", "--metrics-recording-only",
    "--password-store=basic", "--use-mock-keychain",
]
OPERATOR_PASSWORD = "operator-pass-1234"
VIEWER_PASSWORD = "viewer-pass-12345"


def _missing(what: str) -> None:
    if os.environ.get("GATEWAY_REQUIRE_SERVICES"):
        pytest.fail(f"{what}; scripts/test installs it")
    pytest.skip(f"{what}; run ./scripts/test (it installs Debian's chromium)")


@dataclass
class Site:
    url: str
    gw: Gateway
    shots: Path
    held: list[str]  # PO numbers waiting for a person
    normal: list[str]  # PO numbers accepted

    def shot(self, page: Any, name: str) -> None:
        page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("console")
    cfg = gen.config(tmp, outbound=tmp / "acks")
    erp = "  - type: http_json\n    name: erp\n    url: http://127.0.0.1:9/orders\n    allow_private_targets: true\n    retry: {max_attempts: 1}\n"
    text = cfg.read_text().replace("connectors:\n", "connectors:\n" + erp, 1)
    cfg.write_text(text + "intake:\n  host: 127.0.0.1\n  port: 0\n  console: {session_hours: 1}\n")
    cases = gen.x12_mix(7)
    for c in cases:
        (tmp / "inbox" / c.file).write_bytes(c.body)
    added = run_cli("users", "add", "olivia", "--role", "operator", "--password-env", "OP_PW", "-c", str(cfg), env={"OP_PW": OPERATOR_PASSWORD})
    assert added.returncode == 0 and "user olivia added (operator)" in added.stderr, added.stderr
    gw = Gateway(load_config(cfg))
    add_user(gw.store, "victor", "viewer", auth.hash_password(VIEWER_PASSWORD))
    stats = gw.run_until_idle(120)
    assert stats.received == len(cases) >= 100
    assert gw.config.intake is not None
    server = IntakeServer(gw, gw.config.intake).start()
    shots = Path(os.environ["GATEWAY_TEST_ARTIFACTS"]) / "console" if os.environ.get("GATEWAY_TEST_ARTIFACTS") else tmp / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    try:
        yield Site(
            f"{server.url}/console", gw, shots,
            held=[c.po for c in cases if c.outcome == "hold"], normal=[c.po for c in cases if c.name == "normal"],
        )
    finally:
        server.stop()
        gw.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        _missing(f"no chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("python playwright is not installed (the test extra pins it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


def logged_in(browser: Any, site: Site, name: str, password: str) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{site.url}/orders")
    assert "/console/login" in page.url  # anonymous: the login page, nothing else
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/console/orders$"))
    return page


def test_an_operator_finds_an_order_by_po_number_and_opens_its_timeline(browser: Any, site: Site) -> None:
    page = logged_in(browser, site, "olivia", OPERATOR_PASSWORD)
    assert page.text_content("#who") == "olivia (operator)"
    assert "112 order(s)" in page.text_content(".count")
    site.shot(page, "orders")
    po = site.normal[3]
    page.fill("input[name=po]", po)
    page.click("#search button[type=submit]")
    page.wait_for_url(re.compile(r"po=" + re.escape(po)))
    rows = page.locator("#orders tbody tr")
    assert rows.count() == 1 and po in rows.first.text_content()
    rows.first.locator("a").click()
    page.wait_for_selector("#po")
    assert page.text_content("#po") == po
    assert f"BEG*00*SA*{po}" in page.text_content("#raw")  # the raw message as received
    values = page.text_content("#values")
    assert "po_number" in values and "BEG" in values  # each value with where it came from
    deliveries = page.text_content("#deliveries")
    assert "outbox" in deliveries and "erp" in deliveries and "dead" in deliveries
    page.click("#show-timeline")  # htmx fetches the fragment
    page.wait_for_selector("#timeline li")
    timeline = page.text_content("#timeline")
    assert "received" in timeline and "sent" in timeline
    site.shot(page, "order")
    page.goto(f"{site.url}/orders?partner=acme&state=held")
    assert f"{len(site.held)} order(s)" in page.text_content(".count")
    page.context.close()


def test_an_operator_approves_a_held_order_and_replays_a_dead_letter(browser: Any, site: Site) -> None:
    page = logged_in(browser, site, "olivia", OPERATOR_PASSWORD)
    page.goto(f"{site.url}/exceptions?reason=PACK_SIZE")
    site.shot(page, "exceptions")
    po = next(p for p in site.held if "pack" in p)
    row = page.locator(f"#exceptions tr[data-po='{po}']")
    row.locator("button.approve").click()
    page.wait_for_selector(".notice")
    assert "approved" in page.text_content(".notice")
    assert page.locator(f"#exceptions tr[data-po='{po}']").count() == 0
    with site.gw.store.engine.connect() as conn:
        state = conn.execute(select(t.orders.c.state).where(t.orders.c.po_number == po)).scalar_one()
        who = conn.execute(select(t.rule_decisions.c.decided_by).join(t.orders, t.orders.c.id == t.rule_decisions.c.order_id).where(t.orders.c.po_number == po)).scalar_one()
    assert state == "validated" and who == "olivia (console)"

    # an edit makes a new version, checked again (the history says who changed what); an assignment names the person
    pack = [p for p in site.held if "pack" in p]
    page.goto(f"{site.url}/orders?po={pack[1]}")
    page.locator("#orders tbody a").first.click()
    page.wait_for_selector("details.edit")
    page.click("details.edit summary")
    page.fill("textarea[name=set]", "lines[1].quantity=12")
    page.click("button.edit")
    page.wait_for_selector(".notice")
    notice = page.text_content(".notice")
    assert notice.startswith("edited: version 2 is ") and notice.endswith(page.text_content("#state"))
    page.click("#show-timeline")
    page.wait_for_selector("#timeline li")
    assert "lines[1].quantity" in page.text_content("#timeline") and "olivia (console)" in page.text_content("#timeline")
    page.goto(f"{site.url}/exceptions?reason=PRICE_OFF_LIST")
    row = page.locator("#exceptions tbody tr").first
    priceoff = row.get_attribute("data-po")
    row.locator("input[name=to]").fill("maria")
    row.locator("button.assign").click()
    page.wait_for_selector(".notice")
    assert "assigned to maria" in page.text_content(".notice") and "reason=PRICE_OFF_LIST" in page.url  # back where it was
    assert page.locator(f"#exceptions tr[data-po='{priceoff}'] td").nth(5).text_content() == "maria"

    dead = list_dead(site.gw.store)
    assert len(dead) == 21
    page.goto(f"{site.url}/dead-letters")
    site.shot(page, "dead-letters")
    page.locator(f"#dead tr[data-po='{dead[0].po_number}'] input[type=checkbox]").check()
    page.click("button.dl-replay")
    page.wait_for_selector(".notice")
    assert "1 dead letter(s) queued again" in page.text_content(".notice")
    assert {d.outbox_id for d in list_dead(site.gw.store)} == {d.outbox_id for d in dead[1:]}

    for name in ("sources", "partners"):
        page.goto(f"{site.url}/{name}")
        site.shot(page, name)
    assert "inbox" in page.goto(f"{site.url}/sources").text() and "112" in page.text_content("#sources")
    partners = page.goto(f"{site.url}/partners") and page.text_content("#partners")
    assert "acme" in partners
    page.context.close()


def test_a_viewer_cannot_approve_or_replay_and_nobody_posts_without_the_token(browser: Any, site: Site) -> None:
    page = logged_in(browser, site, "victor", VIEWER_PASSWORD)
    page.goto(f"{site.url}/exceptions")
    assert page.locator("#exceptions tbody tr").count() > 50
    assert page.locator("button.approve").count() == 0
    page.goto(f"{site.url}/dead-letters")
    assert page.locator("button.dl-replay").count() == 0
    token = page.get_attribute("input[name=csrf_token]", "value")
    held = site.gw.pipeline.exceptions.waiting(limit=1)[0]
    refused = page.request.post(f"{site.url}/orders/{held['id']}/approve", form={"csrf_token": token}, max_redirects=0)
    assert refused.status == 403 and "needs the operator role" in refused.text()
    dead = list_dead(site.gw.store)[0]
    assert page.request.post(f"{site.url}/dead-letters/replay", form={"csrf_token": token, "id": str(dead.outbox_id)}, max_redirects=0).status == 403
    page.context.close()

    operator = logged_in(browser, site, "olivia", OPERATOR_PASSWORD)
    no_token = operator.request.post(f"{site.url}/orders/{held['id']}/approve", form={}, max_redirects=0)
    assert no_token.status == 403 and "security token" in no_token.text()
    assert site.gw.pipeline.exceptions.waiting(limit=1)[0]["id"] == held["id"]  # still waiting
    operator.context.close()

    anonymous = browser.new_context()
    page = anonymous.new_page()
    page.goto(f"{site.url}/dead-letters")
    assert "/console/login" in page.url and page.locator("#dead").count() == 0
    site.shot(page, "login")
    assert page.request.post(f"{site.url}/dead-letters/replay", form={"id": str(dead.outbox_id)}, max_redirects=0).status == 303
    assert dead.outbox_id in {d.outbox_id for d in list_dead(site.gw.store)}
    anonymous.close()


def test_an_operator_reads_the_reports_and_corrects_edits_replays_and_discards_dead_letters(browser: Any, site: Site) -> None:
    dead = list_dead(site.gw.store)
    assert len(dead) >= 4
    edited, by_filter, discarded = dead[0], dead[1], dead[2]
    # A partner name that a spreadsheet would run as a formula (it arrives in orders as data).
    formula = '=HYPERLINK("http://evil.example","x")'
    with site.gw.store.begin() as conn:
        conn.execute(t.orders.update().where(t.orders.c.id == by_filter.order_id).values(partner=formula))

    page = logged_in(browser, site, "olivia", OPERATOR_PASSWORD)
    page.goto(f"{site.url}/reports")
    today = dt.datetime.now(dt.UTC).date().isoformat()
    bar = page.locator(f"#report-volumes rect.bar[data-category='{today}']")
    assert bar.count() == 1 and bar.get_attribute("data-value") == "112"  # every seeded order, read today over X12
    assert page.text_content("#report-volumes .count") == "112 order(s) read"
    shown = {
        r.get_attribute("data-category"): r.get_attribute("data-value")
        for r in page.locator("#report-exceptions rect.bar").all()
    }
    expected = {r.reason: f"{r.rate * 100:.1f}".removesuffix(".0") for r in exception_rates(site.gw.store) if r.reason != "*"}
    assert shown == expected and sum(r.orders for r in exception_rates(site.gw.store) if r.reason != "*") >= len(site.held)
    assert page.locator("#report-cycle-time svg, #report-cycle-time .hint").count() == 1
    assert "erp" in page.text_content("#report-dead-letter-age table")
    site.shot(page, "reports")
    with page.expect_download() as got:
        page.click("#report-volumes a.csv")
    csv = Path(got.value.path()).read_text(encoding="utf-8").splitlines()
    assert csv[0] == "day,channel,partner,orders"
    assert f'{today},x12,"\'=HYPERLINK(""http://evil.example"",""x"")",1' in csv  # text, never a formula
    assert sum(int(line.rsplit(",", 1)[1]) for line in csv[1:]) == 112

    # context, then an edit of one dead letter's order: a new version queued where it died
    page.goto(f"{site.url}/dead-letters?connector=erp")
    row = page.locator(f"#dead tr[data-id='{edited.outbox_id}']")
    row.locator("details.context summary").click()
    assert "dead" in row.locator("ol.attempts").text_content()
    page.click("#dead-edit summary")
    page.select_option("#dead-edit select[name=id]", str(edited.outbox_id))
    page.fill("#dead-edit textarea[name=set]", "lines[1].quantity=5")
    page.click("button.dl-edit")
    page.wait_for_selector(".notice")
    assert "version 2 is queued again where it died" in page.text_content(".notice") and "connector=erp" in page.url

    # replay by filter: a confirmation with the count first, then the replay
    page.fill("#dead-filter input[name=partner]", formula)
    page.click("#dead-filter button[type=submit]")
    page.wait_for_selector("#replay-matching")
    assert page.locator("#dead tbody tr").count() == 1
    page.click("button.dl-replay-matching")
    page.wait_for_selector("#matching")
    assert page.text_content("#matching").startswith("1 dead letter(s) match")
    site.shot(page, "dead-letters-confirm")
    page.click("button.dl-confirm")
    page.wait_for_selector(".notice")
    assert "1 dead letter(s) matching the filter queued again" in page.text_content(".notice")

    # discard with a reason
    page.goto(f"{site.url}/dead-letters")
    page.locator(f"#dead tr[data-id='{discarded.outbox_id}'] input[type=checkbox]").check()
    page.click("button.dl-discard")  # without a reason: refused
    page.wait_for_selector(".notice")
    assert "give a reason" in page.text_content(".notice")
    page.locator(f"#dead tr[data-id='{discarded.outbox_id}'] input[type=checkbox]").check()
    page.fill("input[name=reason]", "the customer cancelled by phone")
    page.click("button.dl-discard")
    page.wait_for_selector(".notice")
    assert "1 dead letter(s) discarded" in page.text_content(".notice")
    site.shot(page, "dead-letters-after")

    left = {d.outbox_id for d in list_dead(site.gw.store)}
    assert not left & {edited.outbox_id, by_filter.outbox_id, discarded.outbox_id} and len(left) == len(dead) - 3
    log = attempts_of(site.gw.store, [edited.outbox_id, by_filter.outbox_id, discarded.outbox_id])
    assert "edited by olivia (console)" in log[edited.outbox_id][-1].detail
    assert log[by_filter.outbox_id][-1].kind == "replayed" and "by olivia (console)" in log[by_filter.outbox_id][-1].detail
    assert "discarded by olivia (console)" in log[discarded.outbox_id][-1].detail and "cancelled by phone" in log[discarded.outbox_id][-1].detail
    page.context.close()
