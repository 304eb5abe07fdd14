"""kill -9 while order mails are stored and processed, restart, and each order exists once
and each mail ends in the folder that says where it stands (Dovecot, a real `gateway run`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.e2e.helpers import ROOT, gateway_cmd, run_cli
from tests.support.dovecot import DovecotServer, dovecot_fixture

pytestmark = pytest.mark.slow

FIX = ROOT / "tests" / "fixtures" / "email"
BODY = (FIX / "po_body.txt").read_text()
dovecot = dovecot_fixture()


def mail(body: str, msgid: str) -> bytes:
    m = EmailMessage()
    m["From"] = "Jane Buyer <jane.buyer@acme-retail.example>"
    m["To"] = "orders@widgetco.example"
    m["Subject"] = "Purchase order"
    m["Message-ID"] = msgid
    m.set_content(body)
    return m.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def folder_count(dovecot: DovecotServer, user: str, folder: str) -> int:
    with dovecot.client(user) as c:
        if not c.folder_exists(folder):
            return 0
        return int(c.folder_status(folder, ["MESSAGES"])[b"MESSAGES"])


@pytest.mark.parametrize("crashpoint", ["after_store", "after_orders", "before_ack", "after_store:2"])
def test_sigkill_while_reading_the_mailbox_then_restart(tmp_path: Path, dovecot: DovecotServer, crashpoint: str) -> None:
    user = dovecot.new_user()
    (tmp_path / "mappings" / "acme").mkdir(parents=True)
    (tmp_path / "mappings" / "acme" / "email.yaml").write_text((ROOT / "mappings/examples/email_text.yaml").read_text())
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
    poll_seconds: 0.2
connectors:
  - {{type: file, name: erp, path: {tmp_path / "out"}}}
partners:
  - name: acme
    email_senders: ["@acme-retail.example"]
processing:
  poll_seconds: 0.2
dispatch:
  poll_seconds: 0.2
"""
    )
    dovecot.append(user, mail(BODY, "<good@acme-retail.example>"))
    unsure = BODY.replace("PO Number: 4500012399", "PO Number: 4500012400").replace("Total: 269.00", "Total: 296.00")
    dovecot.append(user, mail(unsure, "<unsure@acme-retail.example>"))
    env = {**os.environ, "IMAP_PASSWORD": dovecot.password, "GATEWAY_CRASHPOINT": crashpoint}
    proc = subprocess.Popen(gateway_cmd("run", "--config", str(cfg)), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"the crash point {crashpoint} was never reached")
    assert proc.returncode == -signal.SIGKILL, err

    done = run_cli("run", "--once", "--for", "30", "--config", str(cfg), env={"IMAP_PASSWORD": dovecot.password})
    assert done.returncode == 0, done.stderr
    sent = [json.loads(p.read_text())["po_number"] for p in (tmp_path / "out").glob("*.json")]
    assert sent == ["4500012399"]  # once; the unsure one waits for a person
    assert (folder_count(dovecot, user, "INBOX"), folder_count(dovecot, user, "Processed"), folder_count(dovecot, user, "Needs-review")) == (0, 1, 1)
    held = run_cli("review", "--config", str(cfg), env={"IMAP_PASSWORD": dovecot.password})
    assert held.stdout.count("4500012400") == 1, held.stdout
    listed = run_cli("orders", "--config", str(cfg), env={"IMAP_PASSWORD": dovecot.password})
    assert listed.stdout.count("4500012399") == 1 and "duplicate" not in listed.stdout
