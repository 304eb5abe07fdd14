"""Partners' acknowledgements (issue 13): 997, 999 and CONTRL read into verdicts, malformed ones
quarantined with a clear reason (never a crash), matched to and recorded on our outbox rows,
and documents left unacknowledged too long counted as overdue."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from sqlalchemy import select, update

from gateway.acks.inbound import ACCEPTED, ACCEPTED_WITH_ERRORS, REJECTED, MalformedAck, read_ack
from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.intake.metrics import exposition
from gateway.store import documents
from gateway.store import tables as t
from gateway.translate import Rejected, translate


def x12(*body: str, gcn: str = "77") -> bytes:
    isa = "ISA*00*          *00*          *ZZ*ACMERETAIL     *ZZ*WIDGETCO       *261127*1000*U*00401*000000077*0*P*>"
    segs = [isa, f"GS*FA*ACMERETAIL*WIDGETCO*20261127*1000*{gcn}*X*004010", "ST*997*0001", *body, f"SE*{len(body) + 2}*0001", f"GE*1*{gcn}", "IEA*1*000000077"]
    return ("~\n".join(segs) + "~\n").encode()


def edifact(*body: str) -> bytes:
    msg = ["UNH+1+CONTRL:D:3:UN", *body, f"UNT+{len(body) + 2}+1"]
    return ("UNA:+.? 'UNB+UNOC:3+ACMEEDI:14+WIDGETCO:14+261127:1000+A1'" + "".join(s + "'" for s in msg) + "UNZ+1+A1'").encode()


def events(data: bytes) -> list[Rejected]:
    return [ev for ev in translate(io.BytesIO(data)) if isinstance(ev, Rejected)]


def test_a_997_names_each_set_with_its_verdict_and_errors():
    [ev] = events(x12("AK1*PR*1005", "AK2*855*0001", "AK3*BAK*2**8", "AK4*3**7*XX", "AK5*R*5", "AK2*855*0002", "AK5*A", "AK9*P*2*2*1"))
    assert ev.reason == "ACKNOWLEDGEMENT" and ev.ack is not None
    rejected, accepted = ev.ack.verdicts
    assert (rejected.control, rejected.set_control, rejected.status, rejected.code) == ("1005", "0001", REJECTED, "R")
    assert rejected.errors == ("segment BAK at position 2: error 8", "element 3: error 7 (value 'XX')", "AK5 error 5")
    assert (accepted.set_control, accepted.status) == ("0002", ACCEPTED)
    assert "1 accepted, 1 rejected" in ev.message


def test_a_999_ik5_e_is_accepted_with_errors_and_an_ak9_alone_judges_the_group():
    [ev] = events(x12("AK1*PR*12*005010X231A1", "AK2*855*0001*005010X231A1", "IK3*N1*4**8", "IK5*E", "AK9*E*1*1*1").replace(b"ST*997", b"ST*999"))
    assert ev.ack is not None and ev.ack.kind == "999"
    [v] = ev.ack.verdicts
    assert (v.status, v.code, v.errors) == (ACCEPTED_WITH_ERRORS, "E", ("segment N1 at position 4: error 8",))
    [ev] = events(x12("AK1*PR*13", "AK9*R*1*0*0*2"))
    assert ev.ack is not None
    [v] = ev.ack.verdicts
    assert (v.control, v.set_control, v.status, v.errors) == ("13", None, REJECTED, ("AK9 error 2",))


def test_a_contrl_judges_our_interchange_and_its_messages():
    [ev] = events(edifact("UCI+41+WIDGETCO:14+ACMEEDI:14+7", "UCM+1+ORDRSP:D:96A:UN+4+13", "UCS+3+12"))
    assert ev.ack is not None
    [v] = ev.ack.verdicts
    assert (v.level, v.control, v.set_control, v.set_type, v.status, v.code) == ("interchange", "41", "1", "ORDRSP", REJECTED, "4")
    assert v.errors == ("message error 13", "segment 3 error 12")
    [ev] = events(edifact("UCI+42+WIDGETCO:14+ACMEEDI:14+4+2"))
    assert ev.ack is not None
    [v] = ev.ack.verdicts
    assert (v.control, v.status, v.errors) == ("42", REJECTED, ("interchange error 2",))
    [ev] = events(edifact("UCI+43+WIDGETCO:14+ACMEEDI:14+8"))
    assert ev.ack is not None and ev.ack.verdicts[0].status == ACCEPTED  # "received": no syntax errors reported


GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "acks"


def test_our_own_acknowledgements_read_back_as_they_were_built():
    """The golden files of our builders (gateway.acks.x12 / edifact) read as a partner's would be."""
    [ev] = events((GOLDEN / "999_partial.x12").read_bytes())
    assert ev.ack is not None
    assert [(v.control, v.set_control, v.status) for v in ev.ack.verdicts] == [("202", "0001", ACCEPTED), ("202", "0002", REJECTED), ("202", "0003", REJECTED)]
    assert ev.ack.verdicts[1].errors[1] == "element 2: error 8 (value '20241399')"
    [ev] = events((GOLDEN / "contrl_rejected.edi").read_bytes())
    assert ev.ack is not None
    assert [(v.control, v.set_control, v.status, v.code) for v in ev.ack.verdicts] == [
        ("IC0042", "M1", ACCEPTED, "7"), ("IC0042", "M2", REJECTED, "4"), ("IC0042", "M3", REJECTED, "4"), ("IC0042", "M4", ACCEPTED, "7"),
    ]
    assert ev.ack.verdicts[2].errors == ("segment 6", "element 2:2 error 12", "segment 9 error 15")
    for name in ("997_accepted.x12", "997_rejected_se_count.x12"):
        [ev] = events((GOLDEN / name).read_bytes())
        assert ev.reason == "ACKNOWLEDGEMENT" and ev.ack is not None and ev.ack.verdicts


def ta1(segment: str) -> bytes:
    isa = "ISA*00*          *00*          *ZZ*ACMERETAIL     *ZZ*WIDGETCO       *261127*1000*U*00401*000000078*0*P*>"
    return f"{isa}~\n{segment}~\nIEA*0*000000078~\n".encode()


def test_a_ta1_judges_our_interchange_by_its_isa13():
    [ev] = events(ta1("TA1*000000031*261127*1000*R*023"))
    assert ev.ack is not None
    [v] = ev.ack.verdicts
    assert (v.level, v.control, v.status, v.code, v.errors) == ("interchange", "000000031", REJECTED, "R", ("TA1 note 023",))
    [ev] = events(ta1("TA1*000000032*261127*1000*A*000"))
    assert ev.ack is not None and ev.ack.verdicts[0].status == ACCEPTED and ev.ack.verdicts[0].errors == ()


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (x12("AK2*855*0001", "AK5*A"), "AK2 outside an AK1 group"),
        (x12("AK1*PR*ABC", "AK9*A*1*1*1"), "is not a number"),
        (x12("AK1*PR*5", "AK2*855*0001", "AK5*A"), "group 5 has no AK9"),
        (x12("AK1*PR*5", "AK2*855*0001", "AK5*Q", "AK9*A*1*1*1"), "'Q' is not a transaction set acknowledgment code"),
        (x12("AK1*PR*5", "AK5*A", "AK9*A*1*1*1"), "AK5 without its AK2"),
        (x12("AK1*PR*5", "AK9*Z*1*1*1"), "'Z' is not a functional group acknowledgment code"),
        (x12("AK1*PR*5", "AK2*855", "AK5*A", "AK9*A*1*1*1"), "without a transaction set control number"),
        (x12("AK1*PR*5", "AK1*PR*6", "AK9*A*1*1*1"), "a second AK1"),
        (x12("NTE*nothing"), "acknowledges nothing"),
        (edifact("UCM+1+ORDRSP:D:96A:UN+7"), "UCM before the UCI"),
        (edifact("UCI+1+WIDGETCO:14+ACMEEDI:14+9"), "UCI action '9'"),
        (edifact("UCI++WIDGETCO:14+ACMEEDI:14+7"), "without the interchange control reference"),
        (edifact("UCI+1+WIDGETCO:14+ACMEEDI:14+7", "UCM+1+ORDRSP:D:96A:UN+X"), "UCM action 'X'"),
        (edifact("FTX+AAI"), "without a UCI segment"),
        (ta1("TA1*ABC*261127*1000*A*000"), "TA101"),
        (ta1("TA1*000000031*261127*1000*Q*000"), "TA104 'Q'"),
    ],
)
def test_a_malformed_acknowledgement_is_a_clear_quarantine_not_a_crash(data: bytes, said: str):
    [ev] = events(data)
    assert ev.reason == "MALFORMED_ACK" and ev.ack is None
    assert said in ev.message


def test_read_ack_refuses_what_is_no_acknowledgement():
    with pytest.raises(MalformedAck):
        read_ack("x12", "850", "0001", [])


X12_855 = (
    "ISA*00*          *00*          *ZZ*WIDGETCO       *ZZ*ACMERETAIL     *261127*1000*U*00401*000000031*0*P*>~\n"
    "GS*PR*WIDGETCO*ACMERETAIL*20261127*1000*000451*X*004010~\nST*855*0001~\nBAK*00*AC*PO-1*20261127~\nSE*3*0001~\n"
    "GE*1*451~\nIEA*1*000000031~\n"
)


def _queue(store, kind: str, body: str, control: str, partner: str = "acme") -> int:
    with store.begin() as conn:
        documents.queue(conn, "m-out", [documents.NewDocument(kind, partner, body.encode(), f"folder:/srv/{partner}", control_number=control)])
        return int(conn.execute(select(t.outbox.c.id).order_by(t.outbox.c.id.desc()).limit(1)).scalar_one())


def _sent(store, row_id: int, minutes_ago: float) -> None:
    with store.begin() as conn:
        at = documents.db_now(conn) - dt.timedelta(minutes=minutes_ago)
        conn.execute(update(t.outbox).where(t.outbox.c.id == row_id).values(state="sent", updated_at=at))


def test_acknowledgements_are_recorded_on_what_we_sent_and_overdue_is_counted(store):
    x = _queue(store, "855", X12_855, "000000031")
    e = _queue(store, "ORDRSP", "UNB+UNOC:3+WIDGETCO:14+ACMEEDI:14+261127:1000+41'UNH+1+ORDRSP:D:96A:UN'UNT+2+1'UNZ+1+41'", "41")
    other = _queue(store, "855", X12_855, "000000031", partner="beta")  # the same numbers, another partner
    silent = _queue(store, "855", X12_855.replace("000451", "000452").replace("GE*1*451", "GE*1*452"), "000000032")
    late = _queue(store, "855", X12_855.replace("000000031", "000000033").replace("000451", "000453").replace("GE*1*451", "GE*1*453"), "000000033")
    for row in (x, e, other, silent, late):
        _sent(store, row, 10)
    with store.engine.connect() as conn:
        groups = dict(conn.execute(select(t.outbox.c.id, t.outbox.c.group_control_number)).all())
    assert (groups[x], groups[e], groups[silent]) == ("451", None, "452")  # GS06 kept without its zeros

    [ack997] = events(x12("AK1*PR*0451", "AK2*855*0001", "AK5*R*5", "AK9*R*1*1*0"))
    [contrl] = events(edifact("UCI+41+WIDGETCO:14+ACMEEDI:14+7", "UCM+1+ORDRSP:D:96A:UN+7"))
    [stray] = events(x12("AK1*PR*999", "AK9*A*1*1*1"))
    [by_isa13] = events(ta1("TA1*000000032*261127*1000*E*024"))
    assert ack997.ack and contrl.ack and stray.ack
    with store.begin() as conn:
        assert documents.record_ack(conn, "acme", ack997.ack, "m-997") == []
        assert documents.record_ack(conn, "acme", contrl.ack, "m-contrl") == []
        assert documents.record_ack(conn, "acme", ack997.ack, "m-997") == []  # read again: same values, no new event
        assert [v.control for v in documents.record_ack(conn, "acme", stray.ack, "m-stray")] == ["999"]
        assert documents.record_ack(conn, None, contrl.ack, "m-x") == contrl.ack.verdicts  # no partner: nothing matches
        assert by_isa13.ack is not None and documents.record_ack(conn, "acme", by_isa13.ack, "m-ta1") == []
    limits = {"acme": 5.0, "beta": 60.0}
    with store.engine.connect() as conn:
        rows = {r["id"]: r for r in documents.listing(conn, limits)}
        assert (rows[x]["ack_status"], rows[x]["ack_code"], rows[x]["ack_errors"], rows[x]["ack_message_id"]) == (REJECTED, "R", "AK5 error 5", "m-997")
        assert (rows[e]["ack_status"], rows[e]["ack_code"]) == (ACCEPTED, "7")
        assert rows[other]["ack_status"] is None and not rows[other]["overdue"]  # beta has an hour
        assert (rows[silent]["ack_status"], rows[silent]["ack_errors"]) == (ACCEPTED_WITH_ERRORS, "TA1 note 024")
        assert not rows[silent]["overdue"]
        rows = {r["id"]: r for r in documents.listing(conn, limits)}
        assert rows[late]["ack_status"] is None and rows[late]["overdue"]
        assert [r["id"] for r in documents.listing(conn, limits, overdue=True)] == [late]
        assert documents.count_overdue(conn, limits) == 1
        assert documents.count_overdue(conn, {}) == 0
        kinds = conn.execute(select(t.events.c.kind, t.events.c.outbox_id).where(t.events.c.kind == "partner_ack")).all()
    assert sorted(o for _, o in kinds) == sorted([x, e, silent])
    with store.begin() as conn:
        assert [r["id"] for r in documents.mark_overdue(conn, limits)] == [late]
        assert documents.mark_overdue(conn, limits) == []  # newly overdue once
    text = exposition({"messages": {}, "orders": {}, "outbox": [], "oldest_due_seconds": 0.0, "exceptions": [], "documents_overdue": 1}, {})
    assert "# TYPE gateway_documents_overdue gauge\ngateway_documents_overdue 1\n" in text


def test_expect_within_minutes_is_validated_with_its_line(tmp_path: Path):
    path = tmp_path / "gateway.yaml"
    path.write_text("partners:\n  - name: acme\n    acks:\n      expect_within_minutes: -5\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    assert any(p.startswith(f"{path}:4: partners[0].acks.expect_within_minutes") for p in exc.value.problems), exc.value.problems
    path.write_text("partners:\n  - name: acme\n    acks:\n      expect_within_minutes: 90\n")
    assert load_config(path, env={}).partners[0].acks.expect_within_minutes == 90
