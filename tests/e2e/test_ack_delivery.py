"""End to end: acknowledgements and confirmation e-mails leave once, from the dispatch job, after
a claim; through a real Dovecot mailbox, a real SMTP server (aiosmtpd) and the `gateway` CLI.

    30 order mails at once, two gateway nodes on one PostgreSQL   -> exactly 30 replies
    an e-mail with an X12 850 attachment, partner with acks.email -> a 997 and an 855 mailed
                                                                     to the partner, shown by
                                                                     `gateway show`
    the SMTP server refuses for good                              -> a dead letter listed by
                                                                     `gateway dead-letters`,
                                                                     sent after `gateway replay`
"""

from __future__ import annotations

import subprocess
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.store import Store
from tests.e2e.helpers import ROOT, gateway_cmd, run_cli
from tests.support.dovecot import DovecotServer, dovecot_fixture
from tests.support.smtp_sink import SmtpSink, smtp_sink_fixture
from tests.support.x12gen import interchange, po

pytestmark = pytest.mark.slow

BODY = (ROOT / "tests" / "fixtures" / "email" / "po_body.txt").read_text()

dovecot = dovecot_fixture()
smtp_sink = smtp_sink_fixture()


def body_mail(po_number: str) -> bytes:
    m = EmailMessage()
    m["Return-Path"] = "<jane.buyer@acme-retail.example>"
    m["From"] = "Jane Buyer <jane.buyer@acme-retail.example>"
    m["To"] = "orders@widgetco.example"
    m["Subject"] = f"Purchase order {po_number}"
    m["Message-ID"] = f"<po-{po_number}@acme-retail.example>"
    m.set_content(BODY.replace("PO Number: 4500012399", f"PO Number: {po_number}"))
    return m.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def x12_mail(po_number: str) -> bytes:
    m = EmailMessage()
    m["From"] = "EDI <edi@acme-retail.example>"
    m["To"] = "orders@widgetco.example"
    m["Subject"] = f"PO {po_number}"
    m["Message-ID"] = f"<x12-{po_number}@acme-retail.example>"
    m.set_content("Please find our purchase order attached.\n")
    edi = interchange([po(po_number, [("4", "12.50", "WID-100"), ("1", "80.00", "WID-200")])], icn="000000777")
    m.add_attachment(edi.encode(), maintype="application", subtype="edi-x12", filename="po.edi")
    return m.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def config(tmp: Path, store_url: str, dovecot: DovecotServer, user: str, sink: SmtpSink, *, partner: str, ack_retry: str = "{max_attempts: 2, base_seconds: 0.05, cap_seconds: 0.1}", name: str = "gateway.yaml", poll: bool = True) -> Path:
    smtp = sink.config(from_address="Order desk <orders@widgetco.example>")
    (tmp / "mappings" / "acme").mkdir(parents=True, exist_ok=True)
    (tmp / "mappings" / "acme" / "email.yaml").write_text((ROOT / "mappings/examples/email_text.yaml").read_text())
    sources = "sources: []\n" if not poll else f"""\
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
    poll_seconds: 0.5
"""
    cfg = tmp / name
    cfg.write_text(
        f"""\
store:
  url: {store_url}
mappings: {tmp / "mappings"}
processing:
  poll_seconds: 0.1
{sources}connectors:
  - type: file
    name: erp
    path: {tmp / "erp"}
dispatch:
  poll_seconds: 0.2
  lease_seconds: 30
  ack_retry: {ack_retry}
partners:
{partner}
smtp:
  host: {smtp["host"]}
  port: {smtp["port"]}
  tls: none
  from_address: "Order desk <orders@widgetco.example>"
"""
    )
    return cfg


def test_thirty_order_mails_at_once_get_thirty_replies_from_two_nodes(tmp_path: Path, pg_url: str, dovecot: DovecotServer, smtp_sink: SmtpSink) -> None:
    """issue 14 #12 (reliability F18): two gateway nodes (`gateway run`, each running its
    process and dispatch jobs concurrently) share one PostgreSQL; one polls the mailbox. Each
    confirmation e-mail is claimed before it is sent, so 30 order mails get exactly 30
    replies, one per mail (before: 34, four mails answered twice)."""
    user = dovecot.new_user()
    partner = '  - name: acme\n    email_senders: ["@acme-retail.example"]\n'
    cfg = config(tmp_path, pg_url, dovecot, user, smtp_sink, partner=partner)
    worker = config(tmp_path, pg_url, dovecot, user, smtp_sink, partner=partner, name="worker.yaml", poll=False)
    Store(pg_url).dispose()  # the schema first, so the two nodes do not both migrate
    pos = [f"45000130{i:02d}" for i in range(30)]
    for n in pos:
        dovecot.append(user, body_mail(n))
    env = {"IMAP_PASSWORD": dovecot.password}
    nodes = [
        subprocess.Popen(gateway_cmd("run", "--for", "12", "--config", str(c)), cwd=ROOT, env={**_env(), **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in (cfg, worker)
    ]
    for node in nodes:
        _out, errs = node.communicate(timeout=150)
        assert node.returncode == 0, errs
    # one more round, in case a node stopped while the other still held a claim
    again = run_cli("run", "--once", "--config", str(cfg), env=env, timeout=120)
    assert again.returncode == 0, again.stderr

    replies = smtp_sink.messages
    answered = sorted(r.message["In-Reply-To"] for r in replies)
    assert answered == sorted(f"<po-{n}@acme-retail.example>" for n in pos), f"{len(replies)} replies for 30 mails"
    assert len(list((tmp_path / "erp").glob("*.json"))) == 30


def test_x12_attachment_by_email_gets_997_and_855_by_email(tmp_path: Path, dovecot: DovecotServer, smtp_sink: SmtpSink) -> None:
    """issue 14 #13: a partner sends its X12 850 as an e-mail attachment and wants its
    acknowledgements by e-mail (acks.email): the 997 and 855 are built from the attachment
    (not from the whole e-mail), mailed to the partner and shown by `gateway show`."""
    user = dovecot.new_user()
    partner = (
        "  - name: acme\n"
        '    x12_ids: ["ZZ:ACMERETAIL"]\n'
        '    email_senders: ["@acme-retail.example"]\n'
        "    email_confirmation: false\n"
        "    acks: {email: edi@acme-retail.example, order_response: true}\n"
    )
    cfg = config(tmp_path, f"sqlite:///{tmp_path / 'gateway.db'}", dovecot, user, smtp_sink, partner=partner)
    dovecot.append(user, x12_mail("PO-X12-1"))
    env = {"IMAP_PASSWORD": dovecot.password}
    done = run_cli("run", "--once", "--config", str(cfg), env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "does not start with an ISA segment" not in done.stderr

    got = smtp_sink.wait_for(2)
    assert all(r.rcpt_tos == ["edi@acme-retail.example"] for r in got)
    kinds = {}
    for r in got:
        (part,) = list(r.message.iter_attachments())
        text = part.get_content()
        kinds[part.get_filename().split("-", 1)[0]] = text.decode() if isinstance(text, bytes) else text
    assert set(kinds) == {"997", "855"}
    # answered from the attachment's own envelope: its separators, our id as the sender
    assert kinds["997"].startswith("ISA*00*") and "*ZZ*WIDGETCO       *ZZ*ACMERETAIL     *" in kinds["997"]
    assert "AK1*PO*1~" in kinds["997"] and "AK9*A*1*1*1~" in kinds["997"]
    assert "BAK*" in kinds["855"] and "PO-X12-1" in kinds["855"]

    shown = run_cli("show", "PO-X12-1", "--config", str(cfg), env=env)
    assert shown.returncode == 0, shown.stderr
    ack_lines = [line for line in shown.stdout.splitlines() if line.strip().startswith("ack:")]
    assert len(ack_lines) == 2 and all("sent" in line and "mail:edi@acme-retail.example" in line for line in ack_lines)
    assert any(" 997 " in line for line in ack_lines) and any(" 855 " in line for line in ack_lines)


def test_refused_confirmation_is_a_dead_letter_then_replayed(tmp_path: Path, dovecot: DovecotServer, smtp_sink: SmtpSink) -> None:
    """issue 14 #12: an acknowledgement gets the retry policy, then `dead`; `gateway
    dead-letters` lists it and `gateway replay ack:<id>` sends it once the cause is fixed."""
    user = dovecot.new_user()
    partner = '  - name: acme\n    email_senders: ["@acme-retail.example"]\n'
    cfg = config(tmp_path, f"sqlite:///{tmp_path / 'gateway.db'}", dovecot, user, smtp_sink, partner=partner)
    env = {"IMAP_PASSWORD": dovecot.password}
    smtp_sink.fail("RCPT", "451 4.3.0 try again later")
    dovecot.append(user, body_mail("4500014001"))
    done = run_cli("run", "--once", "--config", str(cfg), env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert smtp_sink.messages == [] and smtp_sink.attempts["RCPT"] == 2  # max_attempts: 2

    listed = run_cli("dead-letters", "--config", str(cfg), env=env)
    assert listed.returncode == 0, listed.stderr
    (line,) = [x for x in listed.stdout.splitlines() if "confirmation e-mail" in x]
    assert "refused the recipient for now" in line and "smtp" in line
    ack_id = next(cell.strip() for cell in line.split("│") if cell.strip().startswith("ack:"))

    smtp_sink.fail("RCPT", None)
    replayed = run_cli("replay", ack_id, "--config", str(cfg), env=env)
    assert replayed.returncode == 0, replayed.stderr
    done = run_cli("run", "--once", "--config", str(cfg), env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    (reply,) = smtp_sink.wait_for(1)
    assert reply.message["In-Reply-To"] == "<po-4500014001@acme-retail.example>"
    listed = run_cli("dead-letters", "--config", str(cfg), env=env)
    assert "confirmation e-mail" not in listed.stdout


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "GATEWAY_CRASHPOINT"}
