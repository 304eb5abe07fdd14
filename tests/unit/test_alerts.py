"""gateway.processing.alerts: which team takes an alert, and two nodes' passes at once on one
store (SQLite and PostgreSQL) raising each alert once and sending one message per team and kind."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.processing.alerts import Alerter
from gateway.store import Store
from gateway.store import alerts as repo
from gateway.store import tables as t
from gateway.teams import AlertsConfig, TeamConfig, team_for_alert

SECRET = "s" * 24


def test_an_alert_goes_to_the_first_team_that_takes_its_kind_and_matches() -> None:
    ts = [
        TeamConfig.model_validate({"name": "desk", "alerts": ["quarantine", "waiting"]}),
        TeamConfig.model_validate({"name": "acme-edi", "match": {"partners": ["acme"], "reasons": ["DEAD_LETTER"]}}),
        TeamConfig.model_validate({"name": "shops", "match": {"sources": ["shopify:main"]}, "alerts": ["silent_source"]}),
        TeamConfig.model_validate({"name": "ops"}),
    ]
    pick = lambda kind, **kw: (team_for_alert(ts, kind, **kw) or TeamConfig(name="none")).name  # noqa: E731
    assert pick("dead_letter", partner="acme", channel="x12") == "acme-edi"
    assert pick("dead_letter", partner="globex", channel="x12") == "ops"
    assert pick("silent_source", source="shopify:main") == "shops"
    assert pick("silent_source", source="inbox") == "ops"
    assert pick("poll_errors", source="shopify:main") == "ops"  # shops takes silent_source only
    sourced = [TeamConfig.model_validate({"name": "ops", "match": {"sources": ["inbox"]}})]
    assert team_for_alert(sourced, "dead_letter", partner="acme") is sourced[0]  # sources concern source alerts only
    assert team_for_alert(sourced, "silent_source", source="sftp") is None
    assert team_for_alert(ts[:3], "poll_errors", source="inbox") is None


def test_two_nodes_at_once_raise_each_alert_once_and_send_one_message(store: Store) -> None:
    now = dt.datetime.now(dt.UTC)
    with store.begin() as conn:
        conn.execute(insert(t.outbox), [
            {"kind": "855", "partner": "acme", "connector": "folder:out", "idempotency_key": f"doc-{i}", "state": "dead", "attempts": 5,
             "created_at": now, "updated_at": now, "next_attempt_at": now, "last_error": "disk full", "body": b"x"}
            for i in range(150)
        ])
        repo.watch(conn, ["inbox"], now - dt.timedelta(hours=2))  # watched two hours, never sent anything
    team = TeamConfig.model_validate({"name": "ops", "notify": {"webhook": "http://127.0.0.1:9/hook", "webhook_secret": SECRET}})
    config = AlertsConfig.model_validate({"max_items": 10, "sources": {"inbox": {"silent_after_minutes": 60}}})
    nodes = [Alerter(store, [team], config, sources=["inbox"]) for _ in range(2)]
    barrier = threading.Barrier(2)
    results = []

    def run(alerter: Alerter) -> None:
        barrier.wait()
        results.append(alerter.run())

    threads = [threading.Thread(target=run, args=(n,)) for n in nodes]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(r.raised for r in results) == 151  # 150 dead letters, one silent source
    assert sum(r.messages for r in results) == 2  # one per kind
    with store.engine.connect() as conn:
        bodies = [row.body for row in conn.execute(select(t.outbox.c.body).where(t.outbox.c.kind == "notice"))]
    sent = sorted((json.loads(b)["kind"], json.loads(b)["count"], len(json.loads(b)["items"])) for b in bodies)
    assert sent == [("dead_letter", 150, 10), ("silent_source", 1, 1)]
    assert all(r.raised == 0 and r.messages == 0 for r in (n.run() for n in nodes))  # no storm
    with store.engine.connect() as conn:  # what /metrics shows of it, on this database too
        snap = repo.metrics_snapshot(conn, now + dt.timedelta(minutes=1), ["acme"], ["inbox", "unwatched"])
    assert snap["dead_letters"] == {"855": 150}
    assert snap["silent"] == {"inbox"} and set(snap["source_age"]) == {"inbox"} and snap["source_age"]["inbox"] >= 2 * 3600
    assert snap["outbox_depth"] == 2  # the two notices, not sent here (no dispatcher)


def test_a_watched_source_that_does_not_exist_is_a_configuration_error(tmp_path: Path) -> None:
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(
        f"store: {{url: 'sqlite:///{tmp_path}/g.db'}}\nsources:\n  - {{type: folder, name: inbox, path: {tmp_path}/in}}\n"
        "alerts:\n  sources:\n    inbx: {silent_after_minutes: 60}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert "no source or intake shop (<platform>:<name>) is called 'inbx'; did you mean 'inbox'?" in str(err.value)


def test_documents_a_partner_rejected_or_left_unacknowledged_are_alerted_once(store: Store) -> None:
    """issue 12: "overdue and rejected ones are shown and alerted"."""
    now = dt.datetime.now(dt.UTC)
    base = {"partner": "acme", "connector": "folder:out", "state": "sent", "attempts": 1, "created_at": now, "updated_at": now,
            "next_attempt_at": now, "body": b"x", "ack_status": None, "ack_errors": None, "overdue_at": None}  # fmt: skip
    with store.begin() as conn:
        conn.execute(insert(t.outbox), [
            {**base, "kind": "855", "idempotency_key": "r1", "control_number": "000000101", "ack_status": "rejected", "ack_errors": "AK5*R*5"},
            {**base, "kind": "855", "idempotency_key": "o1", "control_number": "000000102", "overdue_at": now},
            {**base, "kind": "855", "idempotency_key": "a1", "control_number": "000000103", "ack_status": "accepted"},
            {**base, "kind": "997", "idempotency_key": "a2", "control_number": "000000104"},  # sent, not yet due
        ])
    team = TeamConfig.model_validate({"name": "edi", "alerts": ["partner_ack"], "notify": {"webhook": "http://127.0.0.1:9/hook", "webhook_secret": SECRET}})
    alerter = Alerter(store, [team], AlertsConfig.model_validate({}))
    first = alerter.run()
    assert (first.raised, first.messages) == (2, 1)
    assert alerter.run().raised == 0  # once each
    with store.engine.connect() as conn:
        [body] = [json.loads(r.body) for r in conn.execute(select(t.outbox.c.body).where(t.outbox.c.kind == "notice"))]
    assert body["kind"] == "partner_ack" and body["count"] == 2
    assert sorted((i["event"], i["control_number"]) for i in body["items"]) == [("overdue", "000000102"), ("rejected", "000000101")]
