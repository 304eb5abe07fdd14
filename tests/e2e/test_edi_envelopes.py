"""EDI envelopes from the outside: cut-off interchanges, reused control numbers, test
interchanges and per-partner envelope repairs, through `gateway translate`, `gateway ingest`
and `gateway run --once` on real files (issue 14 #2, #6, #21, #22)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.helpers import run_cli, write_config
from tests.support.fake_erp import FakeERP
from tests.support.x12gen import file_with_orders, interchange

pytestmark = pytest.mark.slow

EDIFACT_CUT = b"UNA:+.? 'UNB+UNOC:3+ACMEEDI:14+WIDGETCO:14+261127:0930+IC77'UNH+1+ORDERS:D:96A:UN'BGM+220+PO-E1+9'"


@pytest.fixture
def erp():
    with FakeERP() as server:
        yield server


def drop(tmp_path: Path, name: str, body: bytes) -> None:
    part = tmp_path / "inbox" / f".{name}.part"
    part.write_bytes(body)
    os.replace(part, tmp_path / "inbox" / name)


def run_once(cfg: Path) -> None:
    done = run_cli("run", "--once", "--for", "30", "--config", str(cfg))
    assert done.returncode in (0, 3), done.stderr


def pos(erp: FakeERP) -> list[str]:
    return sorted(o["body"]["po_number"] for o in erp.orders)


def listing(cfg: Path, *args: str) -> str:
    out = run_cli(*args, "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    return out.stdout


def message_id(cfg: Path, name: str) -> str:
    """The id `gateway messages` shows for the file called `name`."""
    for line in listing(cfg, "messages").splitlines():
        if name in line:
            return line.split("│")[1].strip()
    raise AssertionError(f"{name} not listed")


def cut(body: bytes, before: bytes) -> bytes:
    return body[: body.index(before)]


# -- issue 14 #2: translate refuses a cut-off or empty interchange ------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *261120*0930*U*00401*000000001*0*P*>~GS*PO*A*B*20261120*0930*1*X*004010~",
        cut(file_with_orders(["PO-1"]), b"GE*"),
        cut(file_with_orders(["PO-1"]), b"IEA*"),
        EDIFACT_CUT,
        b"UNA:+.? 'UNB+UNOC:3+ACMEEDI:14+WIDGETCO:14+261127:0930+IC78'UNZ+0+IC78'",
        interchange([]).encode(),
    ],
    ids=["x12-gs-only", "x12-no-ge", "x12-no-iea", "edifact-no-unz", "edifact-no-message", "x12-no-transaction"],
)
def test_translate_refuses_a_truncated_or_empty_interchange(tmp_path, body):
    """issue 14 #2, reliability E5: `gateway translate` exits non-zero with a one-line reason
    for an interchange without GE/IEA (UNZ), or with no transaction set at all."""
    f = tmp_path / "in.edi"
    f.write_bytes(body)
    done = run_cli("translate", str(f))
    assert done.returncode != 0
    lines = [ln for ln in done.stderr.splitlines() if "interchange" in ln]
    assert lines, done.stderr
    assert "TRUNCATED" in done.stderr or "NO_ORDERS" in done.stderr


def test_translate_of_a_complete_interchange_still_exits_0(tmp_path):
    """issue 14 #2: the check does not refuse a good file."""
    f = tmp_path / "in.edi"
    f.write_bytes(file_with_orders(["PO-1", "PO-2"]))
    done = run_cli("translate", str(f))
    assert done.returncode == 0, done.stderr
    assert [json.loads(ln)["po_number"] for ln in done.stdout.splitlines()] == ["PO-1", "PO-2"]


# -- issue 14 #21: a cut-off interchange is refused, the acknowledgement agrees ------------------


def test_truncated_interchange_is_quarantined_others_go_and_redrop_succeeds(tmp_path, erp):
    """issue 14 #21, reliability E5: of two interchanges in one file, the one without IEA is
    quarantined TRUNCATED (none of its orders reaches the ERP, although its first transaction
    set is whole) while the other is processed; the TA1 says R 023 and agrees. Re-dropping
    the complete file later delivers the missing orders, each once."""
    outbound = tmp_path / "acks"
    cfg = write_config(
        tmp_path,
        erp.url,
        extra=f"partners:\n  - name: acme\n    x12_ids: [ACMERETAIL]\n    acks: {{ta1: always, outbound: {outbound}}}\n",
    )
    good = file_with_orders(["PO-A1", "PO-A2"], icn="000000101")
    whole = file_with_orders(["PO-B1", "PO-B2"], icn="000000102")
    broken = cut(whole, b"GE*")  # both 850s whole, GE and IEA missing
    drop(tmp_path, "mixed.edi", good + broken)
    run_once(cfg)
    assert pos(erp) == ["PO-A1", "PO-A2"]
    orders = listing(cfg, "orders")
    assert "TRUNCATED" in orders
    acks = "".join(p.read_text() for p in sorted(outbound.glob("*")))
    ta1 = [seg for seg in acks.split("~") if seg.strip().startswith("TA1")]
    assert any("*000000102*" in s and "*R*023" in s for s in ta1), ta1
    assert not any("*000000102*" in s and "*A*" in s for s in ta1)
    # The partner sends the complete file again.
    drop(tmp_path, "mixed-again.edi", good + whole)
    run_once(cfg)
    assert pos(erp) == ["PO-A1", "PO-A2", "PO-B1", "PO-B2"]


def test_ingest_names_a_cut_off_file_truncated(tmp_path):
    """issue 14 #2/#21, reliability E5: a file holding only a cut-off interchange is
    quarantined TRUNCATED (not an anonymous NO_ORDERS), also for EDIFACT without UNZ."""
    cfg = write_config(tmp_path, "http://127.0.0.1:9/")
    x12 = tmp_path / "cut.edi"
    x12.write_bytes(cut(file_with_orders(["PO-C1"]), b"IEA*"))
    edi = tmp_path / "cut-edifact.edi"
    edi.write_bytes(EDIFACT_CUT)
    done = run_cli("ingest", str(x12), str(edi), "--config", str(cfg))
    assert done.returncode != 0
    messages = listing(cfg, "messages")
    assert messages.count("TRUNCATED") >= 2, messages
    assert "PO-C1" not in listing(cfg, "orders", "--state", "validated")


# -- issue 14 #21: a re-sent file with a reused ISA13 can be released by a person ----------------


def test_reused_control_number_can_be_released_by_a_person(tmp_path, erp):
    """issue 14 #21, reliability E6: the partner re-sends the complete file under the same
    ISA13 (different content): it is quarantined CONTROL_NUMBER_REUSED, plain `reprocess`
    says why it would not help, `reprocess --accept-reused-control` reads it as new and the
    missing PO reaches the ERP; the PO already sent is not sent twice."""
    cfg = write_config(tmp_path, erp.url)
    drop(tmp_path, "first.edi", file_with_orders(["PO-R1"], icn="000000555"))
    run_once(cfg)
    assert pos(erp) == ["PO-R1"]
    drop(tmp_path, "again.edi", file_with_orders(["PO-R1", "PO-R2"], icn="000000555"))
    run_once(cfg)
    assert pos(erp) == ["PO-R1"]
    messages = listing(cfg, "messages")
    assert "CONTROL_NUMBER_REUSED" in messages
    mid = message_id(cfg, "again.edi")
    plain = run_cli("reprocess", mid[:8], "--config", str(cfg))
    assert plain.returncode != 0 and "--accept-reused-control" in plain.stderr + plain.stdout
    ok = run_cli("reprocess", mid[:8], "--accept-reused-control", "--by", "ops", "--config", str(cfg))
    assert ok.returncode == 0, ok.stderr
    run_once(cfg)
    assert pos(erp) == ["PO-R1", "PO-R2"]
    # Nothing left to accept: a second release is refused.
    again = run_cli("reprocess", mid[:8], "--accept-reused-control", "--config", str(cfg))
    assert again.returncode != 0


# -- issue 14 #6: test interchanges never reach a production connector ---------------------------


def as_test(body: bytes) -> bytes:
    return body.replace(b"*0*P*>", b"*0*T*>", 1)


# Its UNB carries test indicator 1 (0035): a partner's certification file.
EDIFACT_TEST = (Path(__file__).resolve().parents[1] / "fixtures" / "edifact" / "orders_full_d96a.edi").read_bytes()
assert EDIFACT_TEST.splitlines()[1].endswith(b"+1'")


def config_with_test_erp(tmp_path: Path, prod_url: str, test_url: str | None) -> Path:
    partner = "partners:\n  - name: acme\n    x12_ids: [ACMERETAIL]\n    edifact_ids: ['5412345000013']\n"
    if test_url is not None:
        partner += "    test_connectors: [erp_test]\n"
    cfg = write_config(tmp_path, prod_url, extra=partner)
    if test_url is not None:
        text = cfg.read_text().replace(
            "connectors:\n",
            f"connectors:\n  - type: http_json\n    name: erp_test\n    url: {test_url}\n    allow_private_targets: true\n"
            "    reference: id\n    timeout: {connect: 2, read: 5}\n    retry: {max_attempts: 2, base_seconds: 0.05, cap_seconds: 0.2}\n",
            1,
        )
        cfg.write_text(text)
    return cfg


def test_test_interchanges_go_to_the_test_connector_only(tmp_path, erp):
    """issue 14 #6: an X12 interchange with ISA15 T and an EDIFACT one with UNB 0035 = 1 go
    to the partner's test connector; the production ERP gets only the production order, and
    the test connector never gets a production order."""
    with FakeERP() as test_erp:
        cfg = config_with_test_erp(tmp_path, erp.url, test_erp.url)
        assert run_cli("config", "check", "--config", str(cfg)).returncode == 0
        drop(tmp_path, "test.edi", as_test(file_with_orders(["PO-T1"], icn="000000301")))
        drop(tmp_path, "prod.edi", file_with_orders(["PO-P1"], icn="000000302"))
        drop(tmp_path, "test-edifact.edi", EDIFACT_TEST)
        run_once(cfg)
        assert pos(erp) == ["PO-P1"]
        assert pos(test_erp) == ["PO-4711", "PO-T1"]


def test_test_interchange_without_test_connector_is_held_with_a_reason(tmp_path, erp):
    """issue 14 #6: without test connectors a test interchange's order is held
    (TEST_INTERCHANGE), visible in `gateway review` and `gateway orders`, and not sent; the
    same PO later sent for production is a new order, delivered."""
    cfg = config_with_test_erp(tmp_path, erp.url, None)
    drop(tmp_path, "test.edi", as_test(file_with_orders(["PO-T2"], icn="000000401")))
    drop(tmp_path, "test-edifact.edi", EDIFACT_TEST)
    run_once(cfg)
    assert erp.orders == []
    review = listing(cfg, "review")
    assert "TEST_INTERCHANGE" in review and "PO-T2" in review and "PO-4711" in review
    assert "TEST_INTERCHANGE" in listing(cfg, "orders")
    drop(tmp_path, "prod.edi", file_with_orders(["PO-T2"], icn="000000402"))
    run_once(cfg)
    assert pos(erp) == ["PO-T2"]


# -- issue 14 #22: envelope repairs that guess are per partner profile ---------------------------


def wrapped_at(body: bytes, width: int) -> bytes:
    flat = body.replace(b"\n", b"")
    return b"\r\n".join(flat[i : i + width] for i in range(0, len(flat), width)) + b"\r\n"


def unpadded(body: bytes) -> bytes:
    return body.replace(b"*00*          *00*          *ZZ*ACMERETAIL     *ZZ*WIDGETCO       *", b"*00**00**ZZ*ACMERETAIL*ZZ*WIDGETCO*", 1)


def lenient_config(tmp_path: Path, erp_url: str, lenient: bool) -> Path:
    return write_config(
        tmp_path,
        erp_url,
        extra=f"partners:\n  - name: acme\n    x12_ids: [ACMERETAIL]\n    x12: {{lenient_envelope: {str(lenient).lower()}}}\n",
    )


def test_van_file_wrapped_at_80_columns_is_read_for_a_lenient_partner(tmp_path, erp):
    """issue 14 #22, reliability E9: a VAN file wrapped at 80 columns (the ISA itself broken
    over two lines) reaches the ERP when the partner's profile sets x12.lenient_envelope;
    an unpadded ISA is re-padded for it too (reliability E1)."""
    cfg = lenient_config(tmp_path, erp.url, True)
    drop(tmp_path, "van.edi", wrapped_at(file_with_orders(["PO-V1", "PO-V2"], icn="000000601"), 80))
    drop(tmp_path, "short-isa.edi", unpadded(file_with_orders(["PO-V3"], icn="000000602")))
    run_once(cfg)
    assert pos(erp) == ["PO-V1", "PO-V2", "PO-V3"]
    f = tmp_path / "van2.edi"
    f.write_bytes(wrapped_at(file_with_orders(["PO-V4"], icn="000000603"), 80))
    done = run_cli("translate", str(f), "--config", str(cfg))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["po_number"] == "PO-V4"


def test_envelope_repairs_are_refused_for_a_strict_partner(tmp_path, erp):
    """issue 14 #22, reliability E1 and E9: without the profile switch (strict is the
    default) a wrapped file is quarantined X12_WRAPPED and an ISA that is not 106 characters
    X12_ISA_LENGTH; nothing reaches the ERP, a good file from the same partner still does."""
    cfg = lenient_config(tmp_path, erp.url, False)
    drop(tmp_path, "van.edi", wrapped_at(file_with_orders(["PO-S1"], icn="000000701"), 80))
    drop(tmp_path, "short-isa.edi", unpadded(file_with_orders(["PO-S2"], icn="000000702")))
    inner = file_with_orders(["PO-S3"], icn="000000703").replace(b"BEG*00*SA*", b"BEG*00*\r\nSA*", 1)
    drop(tmp_path, "inner-wrap.edi", inner)
    drop(tmp_path, "good.edi", file_with_orders(["PO-S4"], icn="000000704"))
    run_once(cfg)
    assert pos(erp) == ["PO-S4"]
    messages = listing(cfg, "messages")
    assert messages.count("X12_WRAPPED") == 2 and "X12_ISA_LENGTH" in messages, messages


def test_lenient_profile_applies_to_x12_attached_to_an_email(tmp_path):
    """issue 14 #22: the partner's envelope profile also decides for an X12 file it attaches
    to an e-mail (strict: refused X12_ISA_LENGTH; lenient: re-padded and translated)."""
    from email.message import EmailMessage

    m = EmailMessage()
    m["From"] = "orders@acme.example"
    m["To"] = "po@widgetco.example"
    m["Subject"] = "PO"
    m["Message-ID"] = "<po-1@acme.example>"
    m.set_content("attached")
    m.add_attachment(unpadded(file_with_orders(["PO-M1"], icn="000000801")), maintype="application", subtype="edi-x12", filename="po.edi")
    mail = tmp_path / "po.eml"
    mail.write_bytes(m.as_bytes())
    for lenient, expected in ((False, 1), (True, 0)):
        cfg = lenient_config(tmp_path, "http://127.0.0.1:9/", lenient)
        done = run_cli("translate", str(mail), "--config", str(cfg))
        assert done.returncode == expected, done.stderr
        assert ("PO-M1" in done.stdout) is lenient
        assert ("X12_ISA_LENGTH" in done.stderr) is not lenient
