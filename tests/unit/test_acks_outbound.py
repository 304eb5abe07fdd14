"""Acknowledgements from the pipeline: which ones, their codes, stored (by processing),
written (by the dispatcher, as outbox rows), never twice."""

from __future__ import annotations

import io
from pathlib import Path

import pyx12.x12file
from sqlalchemy import select

from gateway.config import PartnerConfig
from gateway.connector import RawMessage
from gateway.partners import PartnerDirectory
from gateway.pipeline import Pipeline
from gateway.store import tables as t
from tests.support.documents import documents, send_documents
from tests.support.x12gen import interchange, po

EXAMPLES = Path(__file__).resolve().parents[2] / "gateway" / "examples"


def pipeline(store, tmp_path, **acks) -> Pipeline:
    partners = [
        PartnerConfig(name="acme", x12_ids=["ZZ:ACMERETAIL"], acks={"outbound": tmp_path / "out", **acks}),
        PartnerConfig(name="northwind", x12_ids=["01:123456789"], acks={"outbound": tmp_path / "out", **acks}),
    ]
    return Pipeline(store, connectors=["erp"], partners=PartnerDirectory(partners, mappings_root=tmp_path / "maps"))


def ingest(p: Pipeline, body: bytes, name: str = "po.edi") -> str:
    r = p.receive(RawMessage(body=body, source="t", source_ref=name, display_name=name))
    p.process(r.message_id)
    send_documents(p.store, p.partners.configs, smtp=p.smtp)
    return r.message_id


def written(tmp_path: Path) -> dict[str, str]:
    return {f.name: f.read_text() for f in sorted((tmp_path / "out").glob("*"))}


def segments(text: str) -> list[list[str]]:
    reader = pyx12.x12file.X12Reader(io.StringIO(text))
    segs = [seg.format().rstrip("~").split("*") for seg in reader]
    reader.cleanup()
    assert not reader.pop_errors(), "the acknowledgement must read back without errors"
    return segs


def test_997_accepts_every_good_transaction(store, tmp_path):
    p = pipeline(store, tmp_path)
    ingest(p, (EXAMPLES / "acme-po-4010.edi").read_bytes())
    [(name, text)] = written(tmp_path).items()
    assert name.startswith("997-")
    segs = segments(text)
    isa = segs[0]
    assert isa[6].strip() == "WIDGETCO" and isa[8].strip() == "ACMERETAIL"  # sender and receiver swapped
    assert isa[14] == "0"  # acknowledgements are never acknowledged
    assert ["AK1", "PO", "101"] in [s[:3] for s in segs]
    assert [s for s in segs if s[0] == "AK5"] == [["AK5", "A"], ["AK5", "A"]]
    assert [s for s in segs if s[0] == "AK9"] == [["AK9", "A", "2", "2", "2"]]


def test_bad_transaction_gets_ak5_r_and_the_group_p(store, tmp_path):
    p = pipeline(store, tmp_path)
    ingest(p, (EXAMPLES / "broken-segment-count.edi").read_bytes())
    [text] = written(tmp_path).values()
    segs = segments(text)
    assert [s[:3] for s in segs if s[0] in ("AK2", "AK5")] == [["AK2", "850", "0001"], ["AK5", "R", "4"], ["AK2", "850", "0002"], ["AK5", "A"]]
    assert [s for s in segs if s[0] == "AK9"] == [["AK9", "P", "2", "2", "1"]]


def test_5010_with_isa14_gets_a_999_with_a_ta1(store, tmp_path):
    p = pipeline(store, tmp_path)
    ingest(p, (EXAMPLES / "northwind-po-5010.edi").read_bytes())
    [(name, text)] = written(tmp_path).items()
    assert name.startswith("999-")
    ids = [s[0] for s in segments(text)]
    assert ids[:3] == ["ISA", "TA1", "GS"] and "IK5" in ids and "AK9" in ids


def test_repeated_interchange_gets_only_a_ta1_025(store, tmp_path):
    p = pipeline(store, tmp_path)
    body = (EXAMPLES / "acme-po-4010.edi").read_bytes()
    ingest(p, body)
    ingest(p, body.replace(b"~\n", b"~\r\n"), "again.edi")  # other bytes, same interchange
    files = written(tmp_path)
    [ta1] = [text for name, text in files.items() if name.startswith("TA1-")]
    [seg] = [s for s in segments(ta1) if s[0] == "TA1"]
    assert seg[1] == "000000101" and seg[4] == "R" and seg[5] == "025"


def test_unknown_sender_and_incoming_acks_get_nothing(store, tmp_path):
    p = pipeline(store, tmp_path)
    ingest(p, interchange([po("PO-1")], sender="STRANGER").encode())
    assert not (tmp_path / "out").exists() or written(tmp_path) == {}


def test_855_after_validation_and_control_numbers_increase(store, tmp_path):
    p = pipeline(store, tmp_path, order_response=True)
    ingest(p, (EXAMPLES / "acme-po-4010.edi").read_bytes())
    files = written(tmp_path)
    acks855 = [text for name, text in files.items() if name.startswith("855-")]
    assert len(acks855) == 2
    bak = [[s for s in segments(text) if s[0] == "BAK"][0] for text in acks855]
    assert sorted(b[3] for b in bak) == ["ACME-45001", "ACME-45002"] and {b[2] for b in bak} == {"AT"}
    controls = sorted(int(text[90:99]) for text in files.values())
    assert controls == list(range(controls[0], controls[0] + len(files)))  # one sequence per partner
    rows = documents(store)
    assert sorted(r["kind"] for r in rows) == ["855", "855", "997"] and {r["state"] for r in rows} == {"sent"}
    assert all(r["order_id"] for r in rows if r["kind"] == "855")


def test_no_outbound_channel_holds_the_ack_for_a_person(store, tmp_path):
    partners = [PartnerConfig(name="acme", x12_ids=["ZZ:ACMERETAIL"])]
    p = Pipeline(store, connectors=["erp"], partners=PartnerDirectory(partners, mappings_root=tmp_path))
    mid = ingest(p, (EXAMPLES / "acme-po-4010.edi").read_bytes())
    [row] = documents(store)
    with store.engine.connect() as c:
        kinds = [e.kind for e in c.execute(select(t.events).where(t.events.c.message_id == mid))]
    assert row["state"] == "held" and "no outbound channel" in row["error"]
    assert "ack_held" in kinds


def test_reprocessing_does_not_acknowledge_twice(store, tmp_path):
    p = pipeline(store, tmp_path)
    mid = ingest(p, (EXAMPLES / "acme-po-4010.edi").read_bytes())
    with store.begin() as c:
        c.execute(t.messages.update().values(state="received"))
    p.process(mid)
    send_documents(p.store, p.partners.configs)
    assert len(written(tmp_path)) == 1


def test_acks_by_email_for_a_partner_that_sends_edi_by_email(store, tmp_path):
    from gateway.smtp import SmtpConfig
    from tests.support.smtp_sink import running_smtp_sink

    with running_smtp_sink() as sink:
        partners = [PartnerConfig(name="acme", x12_ids=["ZZ:ACMERETAIL"], acks={"email": "edi@acme-retail.example"})]
        smtp = SmtpConfig(**sink.config(from_address="EDI desk <edi@widgetco.example>"))
        p = Pipeline(store, connectors=["erp"], partners=PartnerDirectory(partners, mappings_root=tmp_path / "maps"), smtp=smtp)
        ingest(p, (EXAMPLES / "acme-po-4010.edi").read_bytes())
        (got,) = sink.wait_for(1)
    assert got.rcpt_tos == ["edi@acme-retail.example"]
    assert got.message["Auto-Submitted"] == "auto-generated"
    (part,) = list(got.message.iter_attachments())
    assert part.get_content_type() == "application/edi-x12" and part.get_filename().startswith("997-")
    text = part.get_content()
    text = text.decode() if isinstance(text, bytes) else text
    assert [s for s in segments(text) if s[0] == "AK9"] == [["AK9", "A", "2", "2", "2"]]
    [row] = documents(store)
    with store.engine.connect() as c:
        sent = c.execute(select(t.events.c.detail).where(t.events.c.kind == "ack_sent")).scalar_one()
    assert (row["state"], row["channel"]) == ("sent", "mail:edi@acme-retail.example")
    assert "sent as an e-mail to edi@acme-retail.example" in sent


def test_acks_by_email_need_an_smtp_section(tmp_path):
    import pytest

    from gateway.config import load_config
    from gateway.errors import ConfigError

    cfg = tmp_path / "gateway.yaml"
    cfg.write_text("partners:\n  - name: acme\n    x12_ids: ['ZZ:ACMERETAIL']\n    acks:\n      email: edi@acme-retail.example\n")
    with pytest.raises(ConfigError) as exc:
        load_config(cfg, env={})
    assert any("acks.email" in p or "email" in p and "smtp:" in p for p in exc.value.problems)


def test_each_x12_attachment_of_an_email_gets_its_own_997(store, tmp_path):
    """issue 14 #13: acknowledgements of an e-mail's X12 attachments are built from each
    attachment (its ISA, its groups), not from the e-mail, and two attachments' first
    interchanges are not taken for one."""
    from email.message import EmailMessage

    partners = [PartnerConfig(name="acme", x12_ids=["ZZ:ACMERETAIL"], email_senders=["@acme-retail.example"], email_confirmation=False, acks={"outbound": tmp_path / "out"})]
    p = Pipeline(store, connectors=["erp"], partners=PartnerDirectory(partners, mappings_root=tmp_path / "maps"))
    m = EmailMessage()
    m["From"] = "edi@acme-retail.example"
    m["To"] = "orders@widgetco.example"
    m["Subject"] = "two orders"
    m["Message-ID"] = "<two@acme-retail.example>"
    m.set_content("attached")
    m.add_attachment(interchange([po("PO-A")], icn="000000041", gcn="41").encode(), maintype="application", subtype="edi-x12", filename="a.edi")
    m.add_attachment(interchange([po("PO-B")], icn="000000042", gcn="42").encode().replace(b"~\n", b"~"), maintype="application", subtype="edi-x12", filename="b.edi")
    ingest(p, m.as_bytes(), "two.eml")
    acks = sorted(written(tmp_path).values())
    assert len(acks) == 2 and all(a.startswith("ISA*") for a in acks)
    ak1 = sorted(next(s for s in segments(a) if s[0] == "AK1")[2] for a in acks)
    assert ak1 == ["41", "42"]
    with store.engine.connect() as c:
        assert sorted(c.execute(select(t.orders.c.po_number)).scalars()) == ["PO-A", "PO-B"]
