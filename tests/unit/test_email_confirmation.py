"""The confirmation reply through the pipeline: stored with the message's outcome by
processing, sent by SMTP (by the ack sender of the dispatch job, never by processing) to the
verified sender, never twice, never to automatic mail (aiosmtpd in-process)."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select

from gateway.config import PartnerConfig
from gateway.connector import RawMessage
from gateway.dispatch.worker import DispatchStats
from gateway.partners import PartnerDirectory
from gateway.pipeline import Pipeline
from gateway.retry import RetryPolicy
from gateway.smtp import SmtpConfig
from gateway.store import tables as t
from tests.support.documents import documents, send_documents
from tests.support.smtp_sink import SmtpSink, smtp_sink_fixture

EMAIL = Path(__file__).resolve().parents[1] / "fixtures" / "email"
smtp_sink = smtp_sink_fixture()


def pipeline(store, tmp_path, sink: SmtpSink, **partner) -> Pipeline:
    partners = [PartnerConfig(name="acme", email_senders=["@partner.example"], **partner)]
    smtp = SmtpConfig(**sink.config(from_address="Order desk <orders@gateway.example>"))
    return Pipeline(store, connectors=["erp"], partners=PartnerDirectory(partners, mappings_root=tmp_path), authserv_id="mx.gateway.example", smtp=smtp)


def feed(p: Pipeline, body: bytes, *, send: bool = True) -> str:
    r = p.receive(RawMessage(body=body, source="imap", source_ref="x", display_name="mail"))
    p.process(r.message_id)
    if send:
        deliver(p)
    return r.message_id


def deliver(p: Pipeline) -> DispatchStats:
    return send_documents(p.store, [], smtp=p.smtp, policy=RetryPolicy(base_seconds=0.001, cap_seconds=0.001))


def acks(store) -> list[dict]:
    return documents(store, "MAILREPLY")


def events(store, kind: str) -> list[str]:
    with store.engine.connect() as c:
        return list(c.execute(select(t.events.c.detail).where(t.events.c.kind == kind)).scalars())


def test_verified_order_mail_gets_a_threaded_summary(store, tmp_path, smtp_sink):
    body = (EMAIL / "x12_850_attachment.eml").read_bytes()
    p = pipeline(store, tmp_path, smtp_sink)
    feed(p, body)
    (got,) = smtp_sink.wait_for(1)
    assert got.mail_from == "<>"  # RFC 3834: automatic replies never bounce back
    assert got.rcpt_tos == ["orders@partner.example"]
    m = got.message
    assert m["Auto-Submitted"] == "auto-replied"
    assert m["In-Reply-To"] == "<PO.4500012345@partner.example>"
    assert m["Subject"].startswith("Re: ")
    text = m.get_body(("plain",)).get_content()
    with store.engine.connect() as c:
        po = c.execute(select(t.orders.c.po_number)).scalar_one()
    assert po in text and "accepted" in text
    (row,) = acks(store)
    assert row["state"] == "sent" and row["partner"] == "acme"
    assert events(store, "ack_sent")


def test_processing_again_never_sends_a_second_reply(store, tmp_path, smtp_sink):
    p = pipeline(store, tmp_path, smtp_sink)
    mid = feed(p, (EMAIL / "x12_850_attachment.eml").read_bytes())
    smtp_sink.wait_for(1)
    p._confirm(mid, (EMAIL / "x12_850_attachment.eml").read_bytes(), "acme")  # as after a crash
    assert deliver(p).claimed == 0
    assert len(acks(store)) == 1
    assert len(smtp_sink.messages) == 1


def test_processing_sends_nothing_itself(store, tmp_path, smtp_sink):
    """issue 14 #12 / issue 9: processing performs no network I/O; the reply waits, pending,
    for the ack sender, which claims it before sending it."""
    p = pipeline(store, tmp_path, smtp_sink)
    feed(p, (EMAIL / "x12_850_attachment.eml").read_bytes(), send=False)
    (row,) = acks(store)
    assert row["state"] == "pending" and smtp_sink.messages == []
    assert deliver(p).sent == 1
    assert len(smtp_sink.wait_for(1)) == 1
    assert acks(store)[0]["attempts"] == 1


def test_auto_submitted_mail_gets_no_reply(store, tmp_path, smtp_sink):
    body = (EMAIL / "x12_850_attachment.eml").read_bytes().replace(b"Subject:", b"Auto-Submitted: auto-generated\r\nSubject:", 1)
    p = pipeline(store, tmp_path, smtp_sink)
    feed(p, body)
    assert acks(store) == []
    (skipped,) = events(store, "reply_skipped")
    assert "Auto-Submitted" in skipped
    assert smtp_sink.messages == []


def test_partner_can_turn_confirmations_off(store, tmp_path, smtp_sink):
    p = pipeline(store, tmp_path, smtp_sink, email_confirmation=False)
    feed(p, (EMAIL / "x12_850_attachment.eml").read_bytes())
    assert acks(store) == [] and smtp_sink.messages == []


def test_unverified_sender_gets_nothing(store, tmp_path, smtp_sink):
    p = pipeline(store, tmp_path, smtp_sink)
    feed(p, (EMAIL / "spoofed_from.eml").read_bytes())
    assert acks(store) == [] and smtp_sink.messages == []


def test_server_busy_keeps_it_pending_then_sends(store, tmp_path, smtp_sink):
    smtp_sink.fail("RCPT", "451 4.3.0 try again later")
    p = pipeline(store, tmp_path, smtp_sink)
    feed(p, (EMAIL / "x12_850_attachment.eml").read_bytes())
    (row,) = acks(store)
    assert row["state"] == "pending" and row["attempts"] == 1 and "451" in row["error"]
    assert events(store, "ack_retry")
    smtp_sink.fail("RCPT", None)
    time.sleep(0.05)
    assert deliver(p).sent == 1
    assert acks(store)[0]["state"] == "sent"
    assert len(smtp_sink.wait_for(1)) == 1


def test_permanent_refusal_is_recorded_not_retried(store, tmp_path, smtp_sink):
    smtp_sink.fail("RCPT", "550 5.1.1 no such user")
    p = pipeline(store, tmp_path, smtp_sink)
    feed(p, (EMAIL / "x12_850_attachment.eml").read_bytes())
    (row,) = acks(store)
    assert row["state"] == "dead" and "550" in row["error"]
    assert events(store, "ack_dead")
    assert deliver(p).claimed == 0
