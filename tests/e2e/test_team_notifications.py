"""The exception queue's teams end to end, through the real CLI: 160 X12 orders decided by the
rules, every held or refused one assigned to the first matching team, each team told once by
e-mail (an aiosmtpd sink) and by a signed webhook (a local HTTP sink) in grouped messages, and
reminded once after its limit; `gateway exceptions --team` and `gateway assign` show and change
whose an order is."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from gateway.store import tables as t
from tests.e2e.helpers import run_cli
from tests.support import rulesgen as gen
from tests.support.smtp_sink import SmtpSink, smtp_sink_fixture

pytestmark = pytest.mark.slow

smtp_sink = smtp_sink_fixture()
SECRET = "hook-secret-" + "Zq81" * 6


class _Hooks(BaseHTTPRequestHandler):
    got: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:  # noqa: N802 - the http.server hook
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server: Any = self.server
        if server.busy > 0:  # a receiver that is busy at first: the dispatcher retries
            server.busy -= 1
            self.send_response(503)
        elif server.refuse:
            self.send_response(400)
        else:
            server.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hooks() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    server.got = []  # type: ignore[attr-defined]
    server.busy = 2  # type: ignore[attr-defined]
    server.refuse = False  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def verified(headers: dict[str, str], body: bytes) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers.get("x-gateway-signature", "").encode(), expected.encode())


def listed_pos(text: str) -> list[str]:
    return re.findall(r"^- \S+  PO (\S+)", text, re.MULTILINE)


def test_teams_are_told_once_grouped_and_reminded_once(tmp_path: Path, smtp_sink: SmtpSink, hooks: ThreadingHTTPServer):
    cfg = gen.config(tmp_path, outbound=tmp_path / "acks")
    hook_url = f"http://127.0.0.1:{hooks.server_address[1]}/hook"
    with cfg.open("a") as f:
        f.write(
            f"""\
smtp:
  host: {smtp_sink.host}
  port: {smtp_sink.port}
  tls: none
  from_address: "Order desk <orders@widgetco.example>"
exceptions:
  teams:
    - name: pricing
      match: {{reasons: [PRICE_], partners: [acme]}}
      notify: {{email: [pricing@widgetco.example], webhook: "{hook_url}", webhook_secret: "${{env:GW_HOOK_SECRET}}"}}
      remind_after_minutes: 0.03
    - name: catalogue
      match: {{reasons: [UNKNOWN_SKU, DISCONTINUED]}}
      notify: {{email: [items@widgetco.example, lead@widgetco.example]}}
    - name: ops
      notify: {{email: [ops@widgetco.example], webhook: "{hook_url}", webhook_secret: "${{env:GW_HOOK_SECRET}}"}}
      remind_after_minutes: 0.03
"""
        )
    text = cfg.read_text()
    cfg.write_text(text.replace("dispatch:\n", "dispatch:\n  ack_retry: {max_attempts: 4, base_seconds: 0.05, cap_seconds: 0.2}\n", 1))
    env = {"GW_HOOK_SECRET": SECRET}
    cases = gen.x12_mix(10)
    for c in cases:
        (tmp_path / "inbox" / c.file).write_bytes(c.body)
    waiting = [c for c in cases if c.outcome != "accept"]
    assert len(waiting) >= 120

    r = run_cli("run", "--once", "-c", str(cfg), timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    time.sleep(2.5)  # past the 0.03-minute limit, by the database clock
    for _ in range(2):  # the second pass finds nothing more to remind of
        r = run_cli("run", "--once", "-c", str(cfg), timeout=120, env=env)
        assert r.returncode == 0, r.stderr[-3000:]

    def team_of(c: gen.Case) -> str:
        if c.codes[0].startswith("PRICE_"):
            return "pricing"
        return "catalogue" if c.codes[0] in ("UNKNOWN_SKU", "DISCONTINUED") else "ops"

    expected = {c.po: team_of(c) for c in waiting}
    assert set(expected.values()) == {"pricing", "catalogue", "ops"}

    # the stored assignment, as `gateway exceptions --team` shows it
    for team in ("pricing", "catalogue", "ops"):
        listed = run_cli("exceptions", "--team", team, "--json", "-n", "1000", "-c", str(cfg), env=env)
        assert listed.returncode == 0, listed.stderr
        rows = [json.loads(line) for line in listed.stdout.splitlines()]
        assert sorted(r["po_number"] for r in rows) == sorted(po for po, tm in expected.items() if tm == team)
        assert {r["team"] for r in rows} == {team}

    # e-mail: each waiting order announced exactly once to its team's addresses, grouped
    mails = smtp_sink.wait_for(1)
    announced: Counter[tuple[str, str]] = Counter()
    reminded: Counter[tuple[str, str]] = Counter()
    for m in mails:
        subject = str(m.message["Subject"])
        team = subject.rsplit(" ", 1)[1]
        assert m.message["Auto-Submitted"] == "auto-generated"
        if team == "catalogue":
            assert sorted(m.rcpt_tos) == ["items@widgetco.example", "lead@widgetco.example"]
        body = m.message.get_content()
        target = reminded if "still waiting" in subject else announced
        for po in listed_pos(body):
            target[(po, team)] += 1
    assert announced == Counter({(po, tm): 1 for po, tm in expected.items()})
    assert len([m for m in mails if "still waiting" not in str(m.message["Subject"])]) < len(expected) / 10  # grouped
    # reminders: once each, for the teams with a limit (catalogue has none)
    assert reminded == Counter({(po, tm): 1 for po, tm in expected.items() if tm != "catalogue"})

    # webhook: signed (checked in constant time), the same orders once each
    got = list(hooks.got)  # type: ignore[attr-defined]
    assert got and all(verified(h, b) for h, b in got)
    assert not verified(got[0][0], got[0][1] + b" ")
    hooked: Counter[tuple[str, str, str]] = Counter()
    for _, body in got:
        doc = json.loads(body)
        for o in doc["orders"]:
            hooked[(o["po_number"], doc["team"], doc["event"])] += 1
    want = Counter({(po, tm, "waiting"): 1 for po, tm in expected.items() if tm != "catalogue"})
    want.update({(po, tm, "reminder"): 1 for po, tm in expected.items() if tm != "catalogue"})
    assert hooked == want

    # a person takes one: recorded, shown, and in the team's list with the assignee
    first = next(c for c in waiting if team_of(c) == "pricing")
    done = run_cli("assign", _id_of(tmp_path, first.po)[:10], "--to", "maria", "--by", "lee", "-c", str(cfg), env=env)
    assert done.returncode == 0, done.stderr
    assert "assigned to maria of team pricing" in done.stderr
    shown = run_cli("show", first.po, "-c", str(cfg), env=env)
    assert "assigned to team pricing, maria (by lee)" in shown.stdout
    assert "assigned to maria of team pricing by lee" in shown.stdout
    bad = run_cli("assign", _id_of(tmp_path, first.po)[:10], "--to", "maria", "--by", "lee", "--team", "nosuch", "-c", str(cfg), env=env)
    assert bad.returncode != 0 and "pricing, catalogue, ops" in bad.stderr

    # every notice went through the outbox as a sent document; the busy receiver cost retries
    engine = create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    with engine.connect() as conn:
        notices = list(conn.execute(select(t.outbox.c.state, t.outbox.c.attempts).where(t.outbox.c.kind == "notice")))
    engine.dispose()
    assert Counter(n.state for n in notices) == Counter({"sent": len(mails) + len(got)})
    assert sum(n.attempts for n in notices) == len(notices) + 2

    # a receiver that refuses: the notice is a dead letter, replayed once it is fixed
    hooks.refuse = True  # type: ignore[attr-defined]
    late = gen.x12_mix(1, start=900)[:16]
    for c in late:
        (tmp_path / "inbox" / c.file).write_bytes(c.body)
    r = run_cli("run", "--once", "-c", str(cfg), timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    dead = run_cli("dead-letters", "-c", str(cfg), env=env)
    ids = re.findall(r"(ack:\d+)\s.*notice", dead.stdout)
    assert len(ids) == 2, dead.stdout  # one per team with a webhook, each listing its late orders
    hooks.refuse = False  # type: ignore[attr-defined]
    before = len(hooks.got)  # type: ignore[attr-defined]
    replayed = run_cli("replay", *ids, "-c", str(cfg), env=env)
    assert replayed.returncode == 0, replayed.stderr
    r = run_cli("run", "--once", "-c", str(cfg), timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    # (reminders about the late orders may follow: their limit is 1.8 seconds)
    replays = [d for _, b in hooks.got[before:] if (d := json.loads(b))["event"] == "waiting"]  # type: ignore[attr-defined]
    assert sorted((d["team"], d["event"]) for d in replays) == [("ops", "waiting"), ("pricing", "waiting")]
    got_late = sorted((o["po_number"], d["team"]) for d in replays for o in d["orders"])
    assert got_late == sorted((c.po, team_of(c)) for c in late if c.outcome != "accept" and team_of(c) != "catalogue")


def _id_of(tmp: Path, po: str) -> str:
    engine = create_engine(f"sqlite:///{tmp / 'gateway.db'}")
    with engine.connect() as conn:
        oid = conn.execute(select(t.orders.c.id).where(t.orders.c.po_number == po)).scalar_one()
    engine.dispose()
    return str(oid)
