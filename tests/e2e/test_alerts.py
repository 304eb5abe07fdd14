"""Alerts end to end (issue 12), in process: 160 X12 orders through the real pipeline to a
fake ERP that refuses some (dead letters) while the rules hold and refuse others, a source
that falls silent and sends again, an SMTP sink and a signed-webhook sink. Checked: one
grouped message per team and kind per pass (a count and the first items), the rate limit
holding later alerts back until the interval has passed (then one summary), the silent /
recovered pair sent once each, `/metrics` with exact counts after that known mix, and
`gateway alerts --json` listing what was sent and what waits.

Time is never waited for: "later" is made by moving stored times back (the messages' receipt,
a team's last message), which is what the database clock would show.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
import time
from collections import Counter
from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Table, select, update
from typer.testing import CliRunner

from gateway.app import Gateway
from gateway.cli import app as cli
from gateway.config import load_config
from gateway.intake.metrics import metrics_router
from gateway.processing.alerts import Alerter, PollHealth, alerter_for
from gateway.service import run_service
from gateway.store import alerts as alert_repo
from gateway.store import tables as t
from gateway.store.dead_letters import list_dead, replay
from tests.e2e.test_team_notifications import SECRET, hooks, verified  # noqa: F401 - `hooks` is a fixture
from tests.support import rulesgen as gen
from tests.support.fake_erp import FakeERP, Scripted, fake_erp_fixture
from tests.support.smtp_sink import SmtpSink, smtp_sink_fixture

pytestmark = pytest.mark.slow

smtp_sink = smtp_sink_fixture()
fake_erp = fake_erp_fixture()
REFUSED = 12  # accepted orders the ERP refuses with a 400: dead letters


def _mails(sink: SmtpSink, to: str) -> list[EmailMessage]:
    return [m.message for m in sink.messages if to in m.rcpt_tos]


def _text(mail: EmailMessage) -> str:
    return str(mail.get_content())


def _back(gw: Gateway, table: Table, column: str, minutes: float, **where: str) -> None:
    """Move a stored time back: what passing time does, without waiting for it (row by row,
    in Python: SQLite keeps times as text)."""
    keys = list(table.primary_key.columns)
    query = select(*keys, table.c[column]).where(*(table.c[k] == v for k, v in where.items()))
    with gw.store.begin() as conn:
        for row in conn.execute(query).all():
            match = [k == row._mapping[k.name] for k in keys]
            conn.execute(update(table).where(*match).values({column: row._mapping[column] - dt.timedelta(minutes=minutes)}))


def test_alerts_grouped_rate_limited_and_silent_recovered(tmp_path: Path, smtp_sink: SmtpSink, hooks, fake_erp: FakeERP):  # noqa: F811
    cfg = gen.config(tmp_path, outbound=tmp_path / "acks")
    text = cfg.read_text().replace(
        f"connectors:\n  - type: file\n    name: outbox\n    path: {tmp_path / 'outbox'}\n",
        f"connectors:\n  - type: http_json\n    name: erp\n    url: {fake_erp.url}\n    allow_private_targets: true\n"
        "    reference: id\n    retry: {max_attempts: 2, base_seconds: 0.01, cap_seconds: 0.02}\n",
    )
    text = text.replace("dispatch:\n", "dispatch:\n  ack_retry: {max_attempts: 4, base_seconds: 0.01, cap_seconds: 0.02}\n", 1)
    hook_url = f"http://127.0.0.1:{hooks.server_address[1]}/hook"
    cfg.write_text(
        text
        + f"""\
smtp: {{host: {smtp_sink.host}, port: {smtp_sink.port}, tls: none, from_address: "Gateway <gw@widgetco.example>"}}
exceptions:
  teams:
    - name: desk
      alerts: [quarantine, waiting]
      notify: {{email: [desk@widgetco.example]}}
    - name: ops
      alerts: [dead_letter, silent_source, poll_errors]
      min_interval_minutes: 60
      notify: {{email: [ops@widgetco.example], webhook: "{hook_url}", webhook_secret: "${{env:GW_HOOK_SECRET}}"}}
alerts:
  max_items: 5
  sources: {{inbox: {{silent_after_minutes: 30}}}}
"""
    )
    gw = Gateway(load_config(cfg, env={**os.environ, "GW_HOOK_SECRET": SECRET}))
    try:
        cases = gen.x12_mix(10)
        for c in cases:
            (tmp_path / "inbox" / c.file).write_bytes(c.body)
        accepted = [c for c in cases if c.outcome == "accept"]
        fake_erp.script(*[Scripted(400, body={"error": "unknown customer"})] * REFUSED)
        alerter = alerter_for(gw)

        # pass 1: orders decided and sent; 12 die; one message per team and kind
        gw.run_until_idle()
        stats = alerter.run()
        gw.run_until_idle()
        assert (stats.raised, stats.messages, stats.held_back) == (REFUSED, 1, 0)
        (dead_mail,) = _mails(smtp_sink, "ops@widgetco.example")
        assert dead_mail["Subject"] == f"[gateway] {REFUSED} dead letter(s) for team ops"
        body = _text(dead_mail)
        assert body.count("\n- dead letter ") == 5 and f"... and {REFUSED - 5} more" in body
        (hook,) = hooks.got
        assert verified(*hook)
        sent = json.loads(hook[1])
        assert (sent["team"], sent["kind"], sent["count"], len(sent["items"]), sent["more"]) == ("ops", "dead_letter", REFUSED, 5, REFUSED - 5)
        assert {i["connector"] for i in sent["items"]} == {"erp"}
        # the waiting orders went to the desk, grouped (the team's existing notifications)
        desk = [re.fullmatch(r"\[gateway\] (\d+) order\(s\) waiting for team desk", str(m["Subject"])) for m in _mails(smtp_sink, "desk@widgetco.example")]
        assert all(desk) and sum(int(m[1]) for m in desk if m) == len(cases) - len(accepted)

        # /metrics after that known mix: exact counts
        api = FastAPI()
        api.include_router(metrics_router(gw, dict))
        scrape = TestClient(api).get("/metrics").text
        samples = dict(line.rsplit(" ", 1) for line in scrape.splitlines() if line and not line.startswith("#"))
        outcome = Counter(c.outcome for c in cases)
        want = {"dispatched": outcome["accept"] - REFUSED, "dead": REFUSED, "held": outcome["hold"], "quarantined": outcome["reject"]}
        for state, n in want.items():
            assert samples[f'gateway_orders_by_partner{{channel="x12",partner="acme",state="{state}"}}'] == str(n), state
        assert samples['gateway_dead_letters{kind="order"}'] == str(REFUSED)
        assert samples["gateway_outbox_depth"] == "0"
        assert samples['gateway_source_poll_errors{source="inbox"}'] == "0" or 'gateway_source_poll_errors{source="inbox"}' not in samples
        assert float(samples['gateway_source_last_message_age_seconds{source="inbox"}']) < 30 * 60
        assert samples['gateway_source_silent{source="inbox"}'] == "0"
        for stage in ("receive_to_order", "order_to_sent"):
            assert float(samples[f'gateway_stage_latency_seconds{{stage="{stage}",quantile="0.95"}}']) >= 0

        # pass 2: five dead letters replayed die again: held back by the rate limit, no mail
        again = [d.outbox_id for d in list_dead(gw.store)][:5]
        fake_erp.script(*[Scripted(400)] * 5)
        assert replay(gw.store, again) == 5
        gw.run_until_idle()
        stats = alerter.run()
        assert (stats.raised, stats.messages, stats.held_back) == (5, 0, 1)
        gw.run_until_idle()
        assert len(_mails(smtp_sink, "ops@widgetco.example")) == 1
        runner = CliRunner()
        listed = runner.invoke(cli, ["alerts", "--pending", "--json", "-c", str(cfg)], env={"GW_HOOK_SECRET": SECRET})
        assert listed.exit_code == 0, listed.output
        rows = [json.loads(line) for line in listed.stdout.splitlines()]
        assert [(r["team"], r["kind"], r["state"]) for r in rows] == [("ops", "dead_letter", "pending")] * 5

        # the inbox falls silent (its last message 31 minutes ago): alerted once, not rate-limited
        # by the dead letters (another kind); the five dead letters still wait
        _back(gw, t.messages, "received_at", 31)
        for _ in range(2):
            stats = alerter.run()
        gw.run_until_idle()
        ops = _mails(smtp_sink, "ops@widgetco.example")
        assert [m["Subject"] for m in ops[1:]] == ["[gateway] 1 source alert(s) for team ops"]
        assert re.search(r"source inbox sent nothing for 3\d minute\(s\); expected within 30 minute\(s\)", _text(ops[1]))

        # an hour later: the held-back dead letters go in one summary
        _back(gw, alert_repo.alert_sends, "last_sent_at", 61, kind="dead_letter")
        stats = alerter.run()
        gw.run_until_idle()
        assert (stats.raised, stats.messages) == (0, 1)
        ops = _mails(smtp_sink, "ops@widgetco.example")
        assert [m["Subject"] for m in ops[2:]] == ["[gateway] 5 dead letter(s) for team ops"]

        # the inbox sends again: one "recovered", after the rate limit
        (tmp_path / "inbox" / "late.edi").write_bytes(gen.x12_mix(1, start=900)[0].body)
        gw.run_until_idle()
        assert alerter.run().held_back == 1  # the silent message went out less than an hour ago
        _back(gw, alert_repo.alert_sends, "last_sent_at", 61, kind="silent_source")
        assert alerter.run().messages == 1
        gw.run_until_idle()
        ops = _mails(smtp_sink, "ops@widgetco.example")
        assert [m["Subject"] for m in ops[3:]] == ["[gateway] 1 recovered for team ops"]
        assert alerter.run().messages == 0  # nothing more: no storm
        kinds = [json.loads(body)["kind"] for _, body in hooks.got]
        assert kinds == ["dead_letter", "silent_source", "dead_letter", "silent_source"]

        # polls failing three times in a row: one poll_errors alert, and one recovery
        health = PollHealth(gw.store)
        for _ in range(3):
            health.failed("inbox", PermissionError("inbox: permission denied"))
        two_nodes = [alerter, Alerter(gw.store, gw.config.exceptions.teams, gw.config.alerts, sources=["inbox"], smtp=gw.config.smtp)]
        assert sum(a.run().raised for a in two_nodes) == 1  # the second node finds the episode open
        health.ok("inbox")
        assert sum(a.run().raised for a in two_nodes) == 1
        listed = runner.invoke(cli, ["alerts", "--team", "ops", "--json", "-c", str(cfg)], env={"GW_HOOK_SECRET": SECRET})
        every = Counter(json.loads(line)["kind"] for line in listed.stdout.splitlines())
        assert every == Counter({"dead_letter": REFUSED + 5, "silent_source": 2, "poll_errors": 2})
    finally:
        gw.close()


def test_gateway_run_alerts_a_source_whose_polls_keep_failing(tmp_path: Path, hooks) -> None:  # noqa: F811
    """The service itself: its poll jobs record each poll, its alert job raises poll_errors once
    and the dispatcher thread delivers the signed message (after the receiver's first 503s)."""
    blocked = tmp_path / "inbox"
    hook_url = f"http://127.0.0.1:{hooks.server_address[1]}/hook"
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(
        f"""\
store: {{url: "sqlite:///{tmp_path / 'gateway.db'}"}}
sources:
  - {{type: folder, name: inbox, path: {blocked}, poll_seconds: 0.05}}
connectors:
  - {{type: file, name: outbox, path: {tmp_path / 'outbox'}}}
dispatch: {{poll_seconds: 0.05, ack_retry: {{max_attempts: 5, base_seconds: 0.01, cap_seconds: 0.02}}}}
exceptions:
  teams:
    - name: ops
      notify: {{webhook: "{hook_url}", webhook_secret: "${{env:GW_HOOK_SECRET}}"}}
alerts: {{check_seconds: 0.1, poll_errors_after: 3}}
"""
    )
    gw = Gateway(load_config(cfg, env={**os.environ, "GW_HOOK_SECRET": SECRET}))
    assert gw.sources  # made (with its folders), then the inbox becomes a file: every poll fails
    blocked.rmdir()
    blocked.write_text("a file where the inbox should be\n")
    stop = threading.Event()
    service = threading.Thread(target=run_service, args=(gw,), kwargs={"stop": stop, "max_seconds": 60})
    service.start()
    try:
        deadline = time.monotonic() + 30
        while not hooks.got and service.is_alive() and time.monotonic() < deadline:
            stop.wait(0.05)  # waiting for the event, not timing it
    finally:
        stop.set()
        service.join()
    (hook,) = hooks.got
    assert verified(*hook)
    sent = json.loads(hook[1])
    assert (sent["kind"], sent["count"]) == ("poll_errors", 1)
    (item,) = sent["items"]
    assert item["source"] == "inbox" and item["errors"] >= 3 and "NotADirectoryError" in item["error"]
