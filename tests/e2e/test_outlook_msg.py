"""Outlook .msg files (issue 13): saved order mails dropped in the inbox, attached to a mail,
and the public corpus sample, read like any e-mail; what is not an Outlook message is refused
with a reason, never a crash."""

from __future__ import annotations

import datetime as dt
import json
from email.message import EmailMessage
from pathlib import Path

from tests.conftest import corpus_dir
from tests.e2e.helpers import file_target, run_cli, write_config
from tests.support.outlook_msg import Node, build_msg, cfb

PARTNER = "partners:\n  - name: acme\n    email_senders: ['@acme-retail.example']\n    email_confirmation: false\n"
COUNT = 200


def po_csv(po: str, lines: int) -> bytes:
    rows = ["PO Number,Order Date,Ship To,Line,Item,Description,Qty,UOM,Unit Price"]
    total = 0.0
    for n in range(1, lines + 1):
        rows.append(f"{po},11/27/2026,ACME Store {po[-3:]},{n},WID-{n:03d},Widget {n},{n * 2},EA,4.50")
        total += n * 2 * 4.5
    rows.append(f"Total,,,,,,,,{total:.2f}")
    return ("\r\n".join(rows) + "\r\n").encode()


def order_msg(i: int) -> bytes:
    po = f"45000{i:05d}"
    return build_msg(
        subject=f"PO {po}", sender="jane.buyer@acme-retail.example", sender_name="Jane Buyer",
        body=f"Hello,\r\n\r\nour purchase order {po} is attached.\r\n\r\nJane", html=b"<p>our purchase order is attached</p>",
        sent=dt.datetime(2026, 11, 27, 9, 30, tzinfo=dt.UTC) + dt.timedelta(minutes=i),
        attachments=[("logo.png", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(600)), (f"PO_{po}.csv", "text/csv", po_csv(po, 1 + i % 4))],
    )  # fmt: skip


def test_two_hundred_saved_order_mails_reach_the_connector_once_each(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, connectors=file_target("outbox", tmp_path / "outbox"), service=False, extra=PARTNER)
    for i in range(COUNT):
        (tmp_path / "inbox" / f"order-{i:03d}.msg").write_bytes(order_msg(i))
    # Not Outlook messages: a Word-97-like compound file, a truncated .msg, a .msg with no order.
    (tmp_path / "inbox" / "letter.msg").write_bytes(cfb(Node("Root Entry", None, [Node("WordDocument", b"x" * 700)])))
    (tmp_path / "inbox" / "cut.msg").write_bytes(order_msg(999)[:1500])
    (tmp_path / "inbox" / "hello.msg").write_bytes(build_msg(subject="hi", sender="jane.buyer@acme-retail.example", body=""))

    done = run_cli("run", "--once", "--for", "240", "--config", str(cfg), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    sent = [json.loads(p.read_text()) for p in (tmp_path / "outbox").rglob("*.json")]
    pos = sorted(o["po_number"] for o in sent)
    assert pos == sorted(f"45000{i:05d}" for i in range(COUNT))  # each exactly once
    by_po = {o["po_number"]: o for o in sent}
    first = by_po["4500000003"]
    assert [(ln["sku"], str(ln["quantity"])) for ln in first["lines"]] == [("WID-001", "2"), ("WID-002", "4"), ("WID-003", "6"), ("WID-004", "8")]
    assert first["partner"] == "acme" and first["channel"] == "csv"

    listed = run_cli("messages", "--json", "--state", "quarantined", "--config", str(cfg))
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
    refused = {r["display_name"]: r for r in rows if r["display_name"] in ("letter.msg", "cut.msg", "hello.msg")}
    assert set(refused) == {"letter.msg", "cut.msg", "hello.msg"}, [r["display_name"] for r in rows][:5]
    text = json.dumps(refused)
    assert "not an Outlook message" in text and "cannot be" in text, text[:3000]


def _translate(tmp_path: Path, path: Path, *extra: str) -> tuple[int, list[dict[str, object]], str]:
    cfg = write_config(tmp_path, connectors=file_target("outbox", tmp_path / "outbox"), service=False, extra=PARTNER)
    done = run_cli("translate", str(path), "--config", str(cfg), *extra)
    return done.returncode, [json.loads(x) for x in done.stdout.splitlines() if x.strip()], done.stderr


def test_an_outlook_message_attached_to_a_mail_is_read_as_a_forwarded_message(tmp_path: Path) -> None:
    outer = EmailMessage()
    outer["From"] = "Jane Buyer <jane.buyer@acme-retail.example>"
    outer["To"] = "orders@widgetco.example"
    outer["Subject"] = "Fwd: PO"
    outer["Message-ID"] = "<fwd-1@acme-retail.example>"
    outer.set_content("Forwarding the order below.")
    outer.add_attachment(order_msg(7), maintype="application", subtype="vnd.ms-outlook", filename="PO.msg")
    eml = tmp_path / "fwd.eml"
    eml.write_bytes(outer.as_bytes())
    rc, orders, err = _translate(tmp_path, eml, "--partner", "acme")
    assert rc == 0, err
    assert [o["po_number"] for o in orders] == ["4500000007"]


def test_outlook_messages_nested_too_deep_are_refused(tmp_path: Path) -> None:
    inner: dict[str, object] = {"subject": "level 4", "sender": "a@acme-retail.example", "body": "x"}
    for level in (3, 2, 1):
        inner = {"subject": f"level {level}", "sender": "a@acme-retail.example", "body": "x", "attachments": [inner]}
    path = tmp_path / "deep.msg"
    path.write_bytes(build_msg(subject="top", sender="jane.buyer@acme-retail.example", body="x", attachments=[inner]))
    rc, orders, err = _translate(tmp_path, path)
    assert rc == 1 and not orders
    assert "MIME_LIMIT" in err and "nested more than 3 deep" in err, err


def test_the_corpus_outlook_message_gives_its_sender_and_a_clear_reason(tmp_path: Path) -> None:
    from gateway.formats.outlook import msg_to_email

    corpus_msg = corpus_dir("email") / "mailparser__mail_outlook_1.msg"
    msg = msg_to_email(corpus_msg.read_bytes())
    assert msg["Message-ID"] == "<20170918100018.6AE0948009C@www.w-vwa.de>"
    assert "Received" in msg and msg["Subject"].startswith("Newsletter Prüfung Personalwesen")
    assert [p.get_filename() for p in msg.iter_attachments()] == ["newsletter.png", "spacer.gif", "image004.jpg", "image006.jpg", "image008.jpg"]
    rc, orders, err = _translate(tmp_path, corpus_msg)
    # A newsletter, not an order: the body could only be read with a partner's template.
    assert rc == 1 and not orders
    assert "NEEDS_PARTNER" in err and "nueblingv@w-vwa.de" in err.lower(), err
