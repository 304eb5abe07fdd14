"""End to end: order e-mails in a real Dovecot mailbox reach a real HTTP ERP exactly once, each
mail lands in the folder that says where it stands, the buyer gets a confirmation through a
real SMTP server (aiosmtpd), and a person releases a held order with the CLI.

    mail 1  body-text PO from the partner, read surely       -> ERP, Processed, confirmation
    mail 2  the same kind of PO whose lines do not add up    -> held, Needs-review, confirmation
                                                                 that says so; `gateway approve`
                                                                 -> ERP
    mail 3  a spoofed sender                                 -> Needs-review, no reply
    mail 4  an out-of-office auto-reply from the partner     -> Failed, no reply
    mail 1 again (same bytes)                                -> nothing new anywhere
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import load_config
from tests.e2e.helpers import run_cli
from tests.support.dovecot import DovecotServer, dovecot_fixture
from tests.support.fake_erp import FakeERP
from tests.support.smtp_sink import SmtpSink, smtp_sink_fixture

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "email"
BODY = (FIX / "po_body.txt").read_text()

dovecot = dovecot_fixture()
smtp_sink = smtp_sink_fixture()


def mail(body: str, msgid: str, *, frm: str = "Jane Buyer <jane.buyer@acme-retail.example>", extra: dict[str, str] | None = None) -> bytes:
    m = EmailMessage()
    m["Return-Path"] = "<jane.buyer@acme-retail.example>"
    m["From"] = frm
    m["To"] = "orders@widgetco.example"
    m["Subject"] = "Purchase order"
    m["Message-ID"] = msgid
    for k, v in (extra or {}).items():
        m[k] = v
    m.set_content(body)
    return m.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def folder_ids(dovecot: DovecotServer, user: str, folder: str) -> list[str]:
    with dovecot.client(user) as c:
        if not c.folder_exists(folder):
            return []
        c.select_folder(folder, readonly=True)
        uids = c.search(["ALL"])
        fetched = c.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]) if uids else {}
        return sorted(next(v for k, v in d.items() if k.startswith(b"BODY")).decode().split(":", 1)[1].strip() for d in fetched.values())


def test_order_mails_to_erp_with_review_and_confirmations(tmp_path: Path, dovecot: DovecotServer, smtp_sink: SmtpSink) -> None:
    user = dovecot.new_user()
    (tmp_path / "mappings" / "acme").mkdir(parents=True)
    (tmp_path / "mappings" / "acme" / "email.yaml").write_text((ROOT / "mappings/examples/email_text.yaml").read_text())
    smtp = smtp_sink.config(from_address="Order desk <orders@widgetco.example>")
    with FakeERP() as erp:
        cfg = tmp_path / "gateway.yaml"
        cfg.write_text(
            f"""\
store:
  url: sqlite:///{tmp_path / "gateway.db"}
mappings: {tmp_path / "mappings"}
sources:
  - type: imap
    name: mailbox
    host: {dovecot.host}
    port: {dovecot.ssl_port}
    tls: ssl
    ca_file: {dovecot.ca_file}
    username: {user}
    password: ${{env:IMAP_PASSWORD}}
    idle: false
connectors:
  - type: http_json
    name: erp
    url: {erp.url}
    allow_private_targets: true
    reference: id
    retry: {{max_attempts: 3, base_seconds: 0.05, cap_seconds: 0.2}}
partners:
  - name: acme
    email_senders: ["@acme-retail.example"]
smtp:
  host: {smtp["host"]}
  port: {smtp["port"]}
  tls: none
  from_address: "Order desk <orders@widgetco.example>"
"""
        )
        env = {"IMAP_PASSWORD": dovecot.password}
        good = mail(BODY, "<m1@acme-retail.example>")
        off = BODY.replace("PO Number: 4500012399", "PO Number: 4500012400").replace("Total: 269.00", "Total: 296.00")
        dovecot.append(user, good)
        dovecot.append(user, mail(off, "<m2@acme-retail.example>"))
        dovecot.append(user, mail(BODY, "<m3@evil.example>", frm="jane.buyer@acme-retail.example <attacker@evil.example>"))
        dovecot.append(user, mail("I am out of the office until Monday.", "<m4@acme-retail.example>", extra={"Auto-Submitted": "auto-replied"}))

        gw = Gateway(load_config(cfg, env=env))
        try:
            gw.run_until_idle(limit=60)
        finally:
            gw.close()

        # the sure one reached the ERP once; the one that does not add up waits
        assert [o["body"]["po_number"] for o in erp.ledger.orders()] == ["4500012399"]
        assert folder_ids(dovecot, user, "INBOX") == []
        assert folder_ids(dovecot, user, "Processed") == ["<m1@acme-retail.example>"]
        assert folder_ids(dovecot, user, "Needs-review") == ["<m2@acme-retail.example>", "<m3@evil.example>"]
        assert folder_ids(dovecot, user, "Failed") == ["<m4@acme-retail.example>"]

        # confirmations to the verified sender only, threaded, saying what was understood
        replies = {r.message["In-Reply-To"]: r for r in smtp_sink.wait_for(2)}
        assert set(replies) == {"<m1@acme-retail.example>", "<m2@acme-retail.example>"}
        first = replies["<m1@acme-retail.example>"]
        assert first.rcpt_tos == ["jane.buyer@acme-retail.example"] and first.mail_from == "<>"
        text = first.message.get_body(("plain",)).get_content()
        assert "4500012399" in text and "WID-100" in text and "24" in text and "San Francisco" in text
        second = replies["<m2@acme-retail.example>"].message.get_body(("plain",)).get_content()
        assert "4500012400" in second and "check" in second.lower()

        # a person looks and approves it from the command line
        listed = run_cli("review", "--config", str(cfg), env=env)
        assert listed.returncode == 0, listed.stderr
        assert "4500012400" in listed.stdout and "totals.total" in listed.stdout
        oid = next(line.split("│")[1].strip() for line in listed.stdout.splitlines() if "4500012400" in line)
        approved = run_cli("approve", oid, "--by", "anna", "--config", str(cfg), env=env)
        assert approved.returncode == 0, approved.stderr

        # the same mail again: a duplicate, nothing new at the ERP or in the buyer's inbox
        dovecot.append(user, good)
        gw = Gateway(load_config(cfg, env=env))
        try:
            gw.run_until_idle(limit=60)
        finally:
            gw.close()
        assert sorted(o["body"]["po_number"] for o in erp.ledger.orders()) == ["4500012399", "4500012400"]
        assert folder_ids(dovecot, user, "Processed") == ["<m1@acme-retail.example>", "<m1@acme-retail.example>"]
        assert len(smtp_sink.messages) == 2
