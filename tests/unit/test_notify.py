"""gateway.teams and gateway.processing.notify: which team takes an order, that each team is
told once in one grouped notice per pass (also with two passes at once), reminders by the
database clock, a person's assignment, and the configuration's errors with file:line."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import select, update

from gateway.acks.channels import WebhookChannel
from gateway.config import load_config
from gateway.connector import RawMessage
from gateway.errors import ConfigError, GatewayError
from gateway.pipeline import Pipeline
from gateway.processing.notify import Notifier
from gateway.store import Store
from gateway.store import tables as t
from gateway.teams import TeamConfig, team_for
from tests.support.x12gen import interchange, po

SECRET = "s" * 24


def teams() -> list[TeamConfig]:
    return [
        TeamConfig.model_validate({"name": "edi-desk", "match": {"reasons": ["VALIDATION"], "channels": ["x12"]},
                                   "notify": {"email": ["edi@example.com"], "webhook": "http://127.0.0.1:9/hook", "webhook_secret": SECRET},
                                   "remind_after_minutes": 5}),
        TeamConfig.model_validate({"name": "rest", "notify": {"email": ["ops@example.com"]}}),
    ]


def test_the_first_team_whose_every_criterion_matches_takes_the_order() -> None:
    ts = [
        TeamConfig(name="acme-credit", match={"reasons": ["CREDIT"], "partners": ["acme"]}),  # type: ignore[arg-type]
        TeamConfig(name="edi", match={"channels": ["x12", "edifact"]}),  # type: ignore[arg-type]
        TeamConfig(name="all"),
    ]
    pick = lambda **kw: (team_for(ts, **kw) or TeamConfig(name="none")).name  # noqa: E731
    assert pick(reason="CREDIT_LIMIT", partner="acme", channel="x12") == "acme-credit"
    assert pick(reason="CREDIT_LIMIT", partner="other", channel="x12") == "edi"
    assert pick(reason="VALIDATION:x", partner="acme", channel="shopify") == "all"
    assert team_for(ts[:2], reason=None, partner=None, channel="email") is None


@pytest.mark.parametrize(
    ("team", "message"),
    [
        ('{name: a, notify: {webhook: "https://h.example/x"}}', "needs webhook_secret"),
        ('{name: a, notify: {webhook: "https://h.example/x", webhook_secret: "literal-secret-value-123"}}', "may not be written"),
        ("{name: a, notify: {email: [not-an-address]}}", "not one e-mail address"),
        ("{name: a, colour: red}", "colour"),
    ],
)
def test_team_configuration_errors_name_file_and_line(tmp_path: Path, team: str, message: str) -> None:
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(f"store:\n  url: sqlite:///{tmp_path}/g.db\nexceptions:\n  teams:\n    - {{name: b}}\n    - {team}\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert message in str(err.value) and f"{cfg}:6" in str(err.value)


def refused(store: Store, n: int) -> Pipeline:
    p = Pipeline(store, connectors=["erp"])
    txs = [po(f"PO-{i}", [("0", "1.00", "A")], st=f"{i:04d}") for i in range(n)]
    r = p.receive(RawMessage(body=interchange(txs).encode(), source="t", source_ref="po.edi", display_name="po.edi"))
    p.process(r.message_id)
    return p


def notices(store: Store) -> list[dict]:
    with store.engine.connect() as c:
        return [dict(r) for r in c.execute(select(t.outbox).where(t.outbox.c.kind == "notice").order_by(t.outbox.c.id)).mappings()]


def test_each_team_is_told_once_per_pass_listing_all_its_orders(store: Store) -> None:
    refused(store, 30)
    n = Notifier(store, teams())
    stats = n.run()
    assert stats.assigned == 30 and stats.notices == 2
    mail, hook = notices(store)
    assert mail["connector"] == "-" or mail["state"] == "held"  # no smtp: held for a person, with why
    assert "smtp" in (mail["last_error"] or "")
    assert hook["connector"] == "webhook:edi-desk" and hook["state"] == "pending"
    doc = json.loads(bytes(hook["body"]))
    assert doc["team"] == "edi-desk" and doc["event"] == "waiting"
    assert sorted(o["po_number"] for o in doc["orders"]) == sorted(f"PO-{i}" for i in range(30))
    assert all(o["reason"].startswith("VALIDATION") for o in doc["orders"])
    assert n.run().notices == 0 and len(notices(store)) == 2  # never twice
    with store.engine.connect() as c:
        assert set(c.execute(select(t.order_assignments.c.team)).scalars()) == {"edi-desk"}


def test_two_passes_at_once_announce_each_order_once(store: Store) -> None:
    refused(store, 40)
    results = []
    barrier = threading.Barrier(2)

    def one() -> None:
        barrier.wait()
        results.append(Notifier(store, teams()).run())

    threads = [threading.Thread(target=one) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    listed = [o["po_number"] for d in notices(store) if d["connector"].startswith("webhook") for o in json.loads(bytes(d["body"]))["orders"]]
    assert sorted(listed) == sorted(f"PO-{i}" for i in range(40))
    assert sum(r.assigned for r in results) >= 40


def test_reminders_go_once_to_teams_with_a_limit_past_it_by_the_database_clock(store: Store) -> None:
    refused(store, 5)
    n = Notifier(store, teams())
    n.run()
    assert n.remind() == 0  # not waiting 5 minutes yet
    with store.begin() as c:  # they arrived an hour ago
        c.execute(update(t.orders).values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
    assert n.remind() == 5
    assert n.remind() == 0
    reminder = json.loads(bytes(notices(store)[-1]["body"]))
    assert reminder["event"] == "reminder" and len(reminder["orders"]) == 5


def test_a_person_takes_an_order_and_the_history_says_who(store: Store) -> None:
    refused(store, 2)
    n = Notifier(store, teams())
    with store.engine.connect() as c:
        oid = c.execute(select(t.orders.c.id).where(t.orders.c.po_number == "PO-1")).scalar_one()
    done = n.assign(oid[:8], to="maria", by="lee")
    assert done["team"] == "edi-desk" and done["assignee"] == "maria"
    again = n.assign(oid[:8], to="tom", by="lee", team="rest")
    assert again["team"] == "rest"
    with store.engine.connect() as c:
        details = list(c.execute(select(t.events.c.detail).where(t.events.c.order_id == oid, t.events.c.kind == "assigned")).scalars())
    assert details[-1] == "assigned to tom (was maria) of team rest by lee"
    for kwargs, message in (({"to": "x", "by": ""}, "--by"), ({"to": "", "by": "lee"}, "--to"), ({"to": "x", "by": "lee", "team": "nope"}, "edi-desk, rest")):
        with pytest.raises(GatewayError, match=message):
            n.assign(oid[:8], **kwargs)
    n.run()  # the other order is announced; the one a person took is not announced again
    doc = json.loads(bytes(notices(store)[-1]["body"])) if notices(store) else {"orders": []}
    assert [o["po_number"] for o in doc["orders"]] == ["PO-0"]


def test_the_webhook_body_is_signed_with_hmac_sha256() -> None:
    import http.server

    got: list[tuple[str, bytes]] = []

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            got.append((self.headers["X-Gateway-Signature"], self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), H)
    th = threading.Thread(target=server.handle_request)
    th.start()

    class Doc:
        body = b'{"orders": []}'
        partner = "edi-desk"

    WebhookChannel(f"http://127.0.0.1:{server.server_address[1]}/h", SECRET.encode()).send(Doc())  # type: ignore[arg-type]
    th.join(5)
    server.server_close()
    [(sig, body)] = got
    assert hmac.compare_digest(sig, "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest())
    assert not hmac.compare_digest(sig, "sha256=" + hmac.new(b"other-secret", body, hashlib.sha256).hexdigest())
