"""End to end (issue 9): acknowledgements and confirmation e-mails are deliveries of the one
dispatcher, with the retry policy, dead letters and replay of orders, driven through the
`gateway` CLI with a real folder, a real Dovecot mailbox and a real SMTP server (aiosmtpd).

    300 X12 files from acme (997 to a folder)              -> 300 997s, each written once
    100 order e-mails from acme's buyer                    -> 100 confirmations, each sent once
    60 X12 files from beta, whose outbound folder is a file -> retried, then dead letters
    the SMTP server says "try later" for the first run      -> retried, then dead letters
    `gateway dead-letters`, `gateway replay --all`, `gateway run --once`
                                                           -> every one sent, exactly once
"""

from __future__ import annotations

import json
import os
import re
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.e2e.helpers import ROOT, run_cli
from tests.support.dovecot import DovecotServer, dovecot_fixture
from tests.support.smtp_sink import SmtpSink, smtp_sink_fixture
from tests.support.x12gen import interchange, po

pytestmark = pytest.mark.slow

dovecot = dovecot_fixture()
smtp_sink = smtp_sink_fixture()

ACME_FILES, BETA_FILES, MAILS = 300, 60, 100
BODY = (ROOT / "tests" / "fixtures" / "email" / "po_body.txt").read_text()


def order_mail(po_number: str) -> bytes:
    m = EmailMessage()
    m["Return-Path"] = "<jane.buyer@acme-retail.example>"
    m["From"] = "Jane Buyer <jane.buyer@acme-retail.example>"
    m["To"] = "orders@widgetco.example"
    m["Subject"] = f"Purchase order {po_number}"
    m["Message-ID"] = f"<po-{po_number}@acme-retail.example>"
    m.set_content(BODY.replace("PO Number: 4500012399", f"PO Number: {po_number}"))
    return m.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def config(tmp: Path, store_url: str, dovecot: DovecotServer, user: str, sink: SmtpSink, blocked: Path) -> Path:
    (tmp / "mappings" / "acme").mkdir(parents=True, exist_ok=True)
    (tmp / "mappings" / "acme" / "email.yaml").write_text((ROOT / "mappings/examples/email_text.yaml").read_text())
    smtp = sink.config()
    cfg = tmp / "gateway.yaml"
    cfg.write_text(
        f"""\
store:
  url: {store_url}
mappings: {tmp / "mappings"}
processing:
  poll_seconds: 0.1
sources:
  - type: folder
    name: inbox
    path: {tmp / "inbox"}
    archive: {tmp / "archive"}
    failed: {tmp / "failed"}
    poll_seconds: 0.2
    stable_seconds: 0.05
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
connectors:
  - type: file
    name: erp
    path: {tmp / "erp"}
dispatch:
  poll_seconds: 0.1
  lease_seconds: 30
  ack_retry: {{max_attempts: 3, base_seconds: 0.05, cap_seconds: 0.1}}
partners:
  - name: acme
    x12_ids: ["ZZ:ACMERETAIL"]
    email_senders: ["@acme-retail.example"]
    acks: {{outbound: {tmp / "out-acme"}}}
  - name: beta
    x12_ids: ["ZZ:BETASTORES"]
    acks: {{outbound: {blocked}}}
smtp:
  host: {smtp["host"]}
  port: {smtp["port"]}
  tls: none
  from_address: "Order desk <orders@widgetco.example>"
"""
    )
    return cfg


def _acks_listed(text: str) -> list[str]:
    """The `ack:<id>` cells of `gateway dead-letters`."""
    return re.findall(r"\back:(\d+)\b", text)


def _ak1_groups(folder: Path) -> list[str]:
    """The group control number each 997 in `folder` answers (AK1*PO*<gcn>)."""
    found = []
    for f in folder.iterdir():
        m = re.search(r"AK1\*PO\*(\d+)~", f.read_text())
        assert m, f"{f.name} is no 997 of a PO group"
        found.append(m.group(1))
    return found


def test_acks_and_confirmations_are_sent_once_retried_dead_lettered_and_replayed(
    tmp_path: Path, store_url: str, dovecot: DovecotServer, smtp_sink: SmtpSink
) -> None:
    """On SQLite and on PostgreSQL (where claims are `FOR UPDATE SKIP LOCKED`)."""
    user = dovecot.new_user()
    blocked = tmp_path / "out-beta"
    blocked.write_text("a file where beta's outbound folder should be")
    cfg = config(tmp_path, store_url, dovecot, user, smtp_sink, blocked)
    env = {"IMAP_PASSWORD": dovecot.password, "COLUMNS": "400"}
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(ACME_FILES):
        edi = interchange([po(f"A-{i:04d}")], icn=f"{i + 1:09d}", gcn=str(1000 + i))
        (inbox / f"acme-{i:04d}.edi").write_text(edi)
    for i in range(BETA_FILES):
        edi = interchange([po(f"B-{i:04d}")], icn=f"{i + 1:09d}", sender="BETASTORES", gcn=str(5000 + i))
        (inbox / f"beta-{i:04d}.edi").write_text(edi)
    mail_pos = [f"45009{i:05d}" for i in range(MAILS)]
    for n in mail_pos:
        dovecot.append(user, order_mail(n))
    smtp_sink.fail("RCPT", "451 4.3.0 try again later")

    first = run_cli("run", "--once", "--for", "400", "--config", str(cfg), env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]

    # acme's 997s: one per file, each answering its own group, numbered in one sequence
    written = sorted((tmp_path / "out-acme").iterdir())
    assert len(written) == ACME_FILES
    assert sorted(_ak1_groups(tmp_path / "out-acme")) == sorted(str(1000 + i) for i in range(ACME_FILES))
    controls = sorted(int(f.read_text()[90:99]) for f in written)
    assert controls == list(range(1, ACME_FILES + 1))
    # every order reached the ERP, whatever became of its acknowledgement
    assert len(list((tmp_path / "erp").glob("*.json"))) == ACME_FILES + BETA_FILES + MAILS
    # the SMTP server said "later" to every confirmation: tried 3 times each, then dead letters
    assert smtp_sink.messages == [] and smtp_sink.attempts["RCPT"] == 3 * MAILS

    listed = run_cli("dead-letters", "--config", str(cfg), env=env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    beta = [x for x in lines if re.search(r"\back:\d+", x) and "997" in x and "beta" in x]
    mails = [x for x in lines if re.search(r"\back:\d+", x) and "confirmation e-mail" in x]
    assert len(beta) == BETA_FILES and len(mails) == MAILS, listed.stdout[-2000:]
    assert all("smtp" in x and "SMTP server" in x and "refused the" in x for x in mails), mails[0]
    assert len(set(_acks_listed(listed.stdout))) == BETA_FILES + MAILS
    assert "0 dead letter(s)" in listed.stdout  # no order delivery gave up

    shown = run_cli("show", "A-0007", "--config", str(cfg), env=env)
    assert shown.returncode == 0, shown.stderr
    (ack_line,) = [x for x in shown.stdout.splitlines() if x.strip().startswith("ack:")]
    assert " 997 " in ack_line and "sent" in ack_line and "folder:" in ack_line
    # the table shortens a long channel to its width (160 columns off a terminal): the JSON has it whole
    whole = run_cli("show", "A-0007", "--json", "--config", str(cfg), env=env)
    (ack,) = json.loads(whole.stdout)["acknowledgements"]
    assert (ack["kind"], ack["state"], ack["channel"]) == ("997", "sent", f"folder:{tmp_path / 'out-acme'}")

    # a replay of one id that is not a dead letter queues nothing
    wrong = run_cli("replay", "ack:999999", "--config", str(cfg), env=env)
    assert wrong.returncode == 1 and "no dead letter with id ack:999999" in wrong.stderr

    # the causes fixed: beta's folder exists, the SMTP server takes mail again
    blocked.unlink()
    smtp_sink.fail("RCPT", None)
    replayed = run_cli("replay", "--all", "--config", str(cfg), env=env)
    assert replayed.returncode == 0, replayed.stderr
    assert f"{BETA_FILES + MAILS} delivery(ies) queued again" in replayed.stderr

    again = run_cli("run", "--once", "--for", "300", "--config", str(cfg), env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    replies = smtp_sink.wait_for(MAILS, timeout=30)
    assert sorted(r.message["In-Reply-To"] for r in replies) == sorted(f"<po-{n}@acme-retail.example>" for n in mail_pos)
    assert all(r.rcpt_tos == ["jane.buyer@acme-retail.example"] for r in replies)
    assert sorted(_ak1_groups(blocked)) == sorted(str(5000 + i) for i in range(BETA_FILES))
    assert len(list((tmp_path / "out-acme").iterdir())) == ACME_FILES  # nothing of acme's was sent again

    settled = run_cli("dead-letters", "--config", str(cfg), env=env)
    assert settled.returncode == 0 and _acks_listed(settled.stdout) == []

    # a third run finds nothing left to send: still exactly one of each
    third = run_cli("run", "--once", "--config", str(cfg), env=env, timeout=300)
    assert third.returncode == 0, third.stderr[-3000:]
    assert len(smtp_sink.messages) == MAILS
    assert len(list(blocked.iterdir())) == BETA_FILES and len(list((tmp_path / "out-acme").iterdir())) == ACME_FILES
    assert not os.listdir(inbox)
