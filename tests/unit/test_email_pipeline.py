"""E-mail through the pipeline: only a verified sender of a configured partner gets in."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from gateway.config import PartnerConfig
from gateway.connector import RawMessage
from gateway.partners import PartnerDirectory
from gateway.pipeline import Pipeline
from gateway.store import tables as t

EMAIL = Path(__file__).resolve().parents[1] / "fixtures" / "email"


def run(store, tmp_path, body: bytes, **partner) -> dict:
    partners = [PartnerConfig(name="acme", **partner)]
    p = Pipeline(store, connectors=["erp"], partners=PartnerDirectory(partners, mappings_root=tmp_path), authserv_id="mx.gateway.example")
    r = p.receive(RawMessage(body=body, source="imap", source_ref="x", display_name="mail"))
    p.process(r.message_id)
    with store.engine.connect() as c:
        msg = c.execute(select(t.messages)).mappings().one()
        orders = c.execute(select(t.orders.c.partner, t.orders.c.state)).all()
    return {"msg": msg, "orders": orders}


def test_allowed_sender_orders_belong_to_its_partner(store, tmp_path):
    out = run(store, tmp_path, (EMAIL / "x12_850_attachment.eml").read_bytes(), email_senders=["@partner.example"])
    assert out["msg"]["state"] == "parsed"
    # The attached interchange is a test one (ISA15 T): acme's, and held away from production
    # since acme has no test connectors (issue 14 #6).
    assert [tuple(o) for o in out["orders"]] == [("acme", "held")]


def test_spoofed_from_is_quarantined_never_guessed(store, tmp_path):
    """reliability M5: `From: orders@partner.example <attacker@evil.example>` is SENDER_UNVERIFIED."""
    out = run(store, tmp_path, (EMAIL / "spoofed_from.eml").read_bytes(), email_senders=["@partner.example"])
    assert out["msg"]["state"] == "quarantined" and out["msg"]["reason"] == "SENDER_UNVERIFIED"
    assert out["orders"] == []


def test_unknown_sender_is_quarantined(store, tmp_path):
    out = run(store, tmp_path, (EMAIL / "x12_850_attachment.eml").read_bytes(), email_senders=["orders@other.example"])
    assert out["msg"]["reason"] == "SENDER_UNVERIFIED" and "not an e-mail sender of any configured partner" in out["msg"]["error"]


def test_partner_requiring_dkim_or_dmarc(store, tmp_path):
    body = (EMAIL / "x12_850_attachment.eml").read_bytes()
    assert b"dkim=pass header.d=partner.example; dmarc=pass" in body
    out = run(store, tmp_path, body, email_senders=["@partner.example"], email_require_auth=True)
    assert out["msg"]["state"] == "parsed"


def test_partner_requiring_dkim_or_dmarc_refuses_spf_only(store, tmp_path):
    """reliability M5: a partner requiring DKIM/DMARC: SPF alone does not verify the sender."""
    body = (EMAIL / "x12_850_attachment.eml").read_bytes().replace(b"dkim=pass header.d=partner.example; dmarc=pass", b"dkim=fail header.d=partner.example; dmarc=fail")
    out = run(store, tmp_path, body, email_senders=["@partner.example"], email_require_auth=True)
    assert out["msg"]["reason"] == "SENDER_UNVERIFIED" and out["msg"]["error"].startswith("acme: ")
