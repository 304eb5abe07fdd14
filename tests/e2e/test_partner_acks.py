"""End to end (issue 13): partners' acknowledgements of what we sent are read, matched and shown,
through the `gateway` CLI with a real drop folder and a folder channel for our documents.

    acme sends 200 X12 POs (20 files)        -> 200 855s written to acme's outbound folder
    acme's 997s come back into the inbox:    -> every answered 855 shows its acknowledgement
      170 accept, 10 reject (AK5 R, code 5),    (`gateway documents`, `gateway show`); the
      10 more are refused by a TA1 (R, 023),
      10 855s never answered, and one 997       rejected ones say rejected with the AK5 code;
      for a group we never sent                 the unknown group is UNMATCHED_ACK; with a
                                                short acks.expect_within_minutes the 10 are
                                                overdue (listing, the /metrics gauge of a
                                                running `gateway run`, one log warning each)
    the same for EDIFACT: ORDERS -> ORDRSP, answered by CONTRL (UCI / UCM actions 7 and 4)
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.helpers import run_cli
from tests.e2e.test_service_ops import Service, free_port
from tests.support.x12gen import interchange, po

pytestmark = pytest.mark.slow

FILES, PER_FILE = 20, 10  # 200 POs
REJECTED, SILENT = 20, 10
ENV = {"COLUMNS": "400"}


def config(tmp: Path, store_url: str, *, expect_within: float | None = None, port: int | None = None) -> Path:
    within = f", expect_within_minutes: {expect_within}" if expect_within is not None else ""
    intake = f"intake:\n  port: {port}\n" if port is not None else ""
    cfg = tmp / "gateway.yaml"
    cfg.write_text(
        f"""\
store:
  url: {store_url}
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
connectors:
  - type: file
    name: erp
    path: {tmp / "erp"}
dispatch:
  poll_seconds: 0.1
partners:
  - name: acme
    x12_ids: ["ZZ:ACMERETAIL"]
    edifact_ids: ["ACMEEDI"]
    acks: {{outbound: {tmp / "out-acme"}, functional: false, order_response: true{within}}}
{intake}"""
    )
    (tmp / "inbox").mkdir(exist_ok=True)
    return cfg


def _997(gs06: str, icn: int, code: str, errors: str = "") -> str:
    """acme's 997 for our group `gs06` (one 855, ST02 0001): AK5 `code`."""
    isa = f"ISA*00*          *00*          *ZZ*ACMERETAIL     *ZZ*WIDGETCO       *261127*1000*U*00401*{icn:09d}*0*P*>"
    ak5 = f"AK5*{code}*{errors}" if errors else f"AK5*{code}"
    ak9 = "AK9*A*1*1*1" if code == "A" else "AK9*R*1*1*0"
    body = ["ST*997*0001", f"AK1*PR*{gs06}", "AK2*855*0001", ak5, ak9]
    body.append(f"SE*{len(body) + 1}*0001")
    segs = [isa, f"GS*FA*ACMERETAIL*WIDGETCO*20261127*1000*{icn}*X*004010", *body, f"GE*1*{icn}", f"IEA*1*{icn:09d}"]
    return "~\n".join(segs) + "~\n"


def _json(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def _run(cfg: Path, *args: str, timeout: float = 300) -> str:
    done = run_cli(*args, "--config", str(cfg), env=ENV, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def test_x12_997s_are_matched_to_our_855s_rejections_unmatched_and_overdue(tmp_path: Path, store_url: str) -> None:
    port = free_port()
    cfg = config(tmp_path, store_url, expect_within=0.05, port=port)  # 3 seconds
    inbox = tmp_path / "inbox"
    for f in range(FILES):
        txs = [po(f"P-{f:02d}-{i:02d}", st=f"{i + 1:04d}") for i in range(PER_FILE)]
        (inbox / f"po-{f:02d}.edi").write_text(interchange(txs, icn=f"{f + 1:09d}", gcn=str(100 + f)))
    _run(cfg, "run", "--once", "--for", "240")
    sent = sorted((tmp_path / "out-acme").iterdir())
    assert len(sent) == FILES * PER_FILE
    ours: dict[str, str] = {}  # our GS06 -> PO number
    isa13: dict[str, str] = {}  # our GS06 -> our ISA13
    for f in sent:
        text = f.read_text()
        gs06 = re.search(r"GS\*PR\*[^*]*\*[^*]*\*\d+\*\d+\*(\d+)\*", text)
        bak = re.search(r"BAK\*\d\d\*\w\w\*([^*~]+)\*", text)
        assert gs06 and bak, text[:300]
        ours[gs06.group(1)] = bak.group(1)
        isa13[gs06.group(1)] = text[90:99]
    assert len(ours) == FILES * PER_FILE  # one group control number per 855
    groups = sorted(ours, key=int)
    rejected, silent, accepted = groups[:REJECTED], groups[REJECTED : REJECTED + SILENT], groups[REJECTED + SILENT :]
    for n, g in enumerate(accepted):
        (inbox / f"997-a-{n:03d}.edi").write_text(_997(g, 5000 + n, "A"))
    by_997, by_ta1 = rejected[: REJECTED // 2], rejected[REJECTED // 2 :]
    for n, g in enumerate(by_997):
        (inbox / f"997-r-{n:03d}.edi").write_text(_997(g, 6000 + n, "R", "5"))
    for n, g in enumerate(by_ta1):  # the envelope refused: a TA1 naming our ISA13, note 023
        isa = f"ISA*00*          *00*          *ZZ*ACMERETAIL     *ZZ*WIDGETCO       *261127*1000*U*00401*{8000 + n:09d}*0*P*>"
        (inbox / f"ta1-r-{n:03d}.edi").write_text(f"{isa}~\nTA1*{isa13[g]}*261127*1000*R*023~\nIEA*0*{8000 + n:09d}~\n")
    (inbox / "997-unknown.edi").write_text(_997("987654", 7000, "A"))
    _run(cfg, "run", "--once", "--for", "240")

    docs = {d["group_control_number"]: d for d in _json(_run(cfg, "documents", "--json")) if d["kind"] == "855"}
    assert len(docs) == FILES * PER_FILE
    assert {g for g, d in docs.items() if d["ack_status"] == "accepted"} == set(accepted)
    assert {g for g, d in docs.items() if d["ack_status"] == "rejected"} == set(rejected)
    assert all(docs[g]["ack_code"] == "R" and "AK5 error 5" in docs[g]["ack_errors"] for g in by_997)
    assert all(docs[g]["ack_code"] == "R" and docs[g]["ack_errors"] == "TA1 note 023" for g in by_ta1)
    assert {g for g, d in docs.items() if d["ack_status"] is None} == set(silent)
    assert all(d["ack_message_id"] for d in docs.values() if d["ack_status"])

    # The order's history and `gateway show` carry the partner's verdict on its 855.
    shown = _run(cfg, "show", ours[rejected[0]])
    assert "rejected (R)" in shown and "partner_ack" in shown, shown
    assert "accepted (A)" in _run(cfg, "show", ours[accepted[0]])

    # Each 997 is a parsed message (outcome ACK), never NO_ORDERS; the unknown group is UNMATCHED_ACK.
    msgs = _json(_run(cfg, "messages", "--json", "--limit", "1000"))
    acks = [m for m in msgs if (m.get("display_name") or "").startswith(("997-", "ta1-"))]
    assert len(acks) == len(accepted) + len(rejected) + 1, msgs[:2]
    unmatched = [m for m in acks if m["state"] == "quarantined"]
    assert [m["reason"] for m in unmatched] == ["UNMATCHED_ACK"]
    assert "987654" in unmatched[0]["error"]
    assert {m["reason"] for m in acks if m["state"] == "parsed"} == {"ACK"}
    assert not any(m["reason"] == "NO_ORDERS" for m in msgs)

    # Past acme's 3 minutes... 3 seconds: the 10 unanswered 855s are overdue, and `gateway run`
    # warns once for each.
    time.sleep(3.5)
    late = _json(_run(cfg, "documents", "--overdue", "--json"))
    assert {d["group_control_number"] for d in late} == set(silent)
    service = Service(tmp_path, cfg)
    try:
        service.wait_log(r"WARNING .*855 \d+ to acme .* is overdue", count=SILENT)
        service.wait_log(r"HTTP intake listening")
        scrape = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert "\ngateway_documents_overdue 10\n" in scrape, scrape
        time.sleep(2.5)  # more checks of the scheduled job: no second warning
    finally:
        assert service.stop() == 0
    assert len(re.findall(r"WARNING .*855 \d+ to acme .* is overdue", service.log)) == SILENT, service.log[-2000:]
    assert "is overdue" not in _run(cfg, "run", "--for", "3")  # warned once, not on every check
    table = _run(cfg, "documents", "--overdue")
    assert table.count("OVERDUE") == SILENT


def _orders(f: int) -> str:
    """acme's interchange IC<f> with PER_FILE ORDERS messages."""
    msgs = []
    for i in range(PER_FILE):
        body = [f"UNH+{i + 1}+ORDERS:D:96A:UN'", f"BGM+220+PO-E{f:02d}-{i:02d}+9'", "DTM+137:20261127:102'", "NAD+BY+5412345000013::9'", "LIN+1++SKU-1:SA'", "QTY+21:2'", "UNS+S'"]
        body.append(f"UNT+{len(body) + 1}+{i + 1}'")
        msgs.append("".join(body))
    return f"UNA:+.? 'UNB+UNOC:3+ACMEEDI:14+WIDGETCO:14+261127:0930+IC{f}'" + "".join(msgs) + f"UNZ+{PER_FILE}+IC{f}'"


def _contrl(ref: str, contrls: list[tuple[str, str, str]]) -> str:
    """acme's interchange `ref` holding one CONTRL per (our UNB 0020, UCI action, UCM action)."""
    msgs = []
    for k, (ours, uci, ucm) in enumerate(contrls, 1):
        error = "+13" if ucm == "4" else ""
        body = [f"UNH+{k}+CONTRL:D:3:UN'", f"UCI+{ours}+WIDGETCO:14+ACMEEDI:14+{uci}'", f"UCM+1+ORDRSP:D:96A:UN+{ucm}{error}'"]
        body.append(f"UNT+{len(body) + 1}+{k}'")
        msgs.append("".join(body))
    return f"UNA:+.? 'UNB+UNOC:3+ACMEEDI:14+WIDGETCO:14+261127:1000+{ref}'" + "".join(msgs) + f"UNZ+{len(contrls)}+{ref}'"


def test_edifact_contrls_are_matched_to_our_ordrsps(tmp_path: Path, store_url: str) -> None:
    cfg = config(tmp_path, store_url, expect_within=0.05)
    inbox = tmp_path / "inbox"
    for f in range(FILES):
        (inbox / f"orders-{f:02d}.edi").write_text(_orders(f))
    _run(cfg, "run", "--once", "--for", "240")
    sent = sorted((tmp_path / "out-acme").iterdir())
    assert len(sent) == FILES * PER_FILE
    ours: dict[str, str] = {}  # our UNB 0020 -> PO number
    for f in sent:
        text = f.read_text()
        unb = re.search(r"UNB\+[^+]+\+[^+]+\+[^+]+\+[^+]+\+(\w+)'", text)
        ref = re.search(r"RFF\+ON:([^']+)'", text)
        assert unb and ref, text[:300]
        ours[unb.group(1)] = ref.group(1)
    assert len(ours) == FILES * PER_FILE
    refs = sorted(ours, key=int)
    rejected, silent, accepted = refs[:REJECTED], refs[REJECTED : REJECTED + SILENT], refs[REJECTED + SILENT :]
    answers = [(r, "7", "7") for r in accepted] + [(r, "7", "4") for r in rejected[: REJECTED // 2]] + [(r, "4", "4") for r in rejected[REJECTED // 2 :]]
    for n in range(0, len(answers), PER_FILE):
        (inbox / f"contrl-{n:03d}.edi").write_text(_contrl(f"C{n}", answers[n : n + PER_FILE]))
    (inbox / "contrl-unknown.edi").write_text(_contrl("CX", [("88888", "7", "7")]))
    (inbox / "contrl-malformed.edi").write_text(
        "UNA:+.? 'UNB+UNOC:3+ACMEEDI:14+WIDGETCO:14+261127:1000+CM'UNH+1+CONTRL:D:3:UN'UCM+1+ORDRSP:D:96A:UN+9'UNT+3+1'UNZ+1+CM'"
    )
    _run(cfg, "run", "--once", "--for", "240")

    docs = {d["control_number"]: d for d in _json(_run(cfg, "documents", "--json")) if d["kind"] == "ORDRSP"}
    assert len(docs) == FILES * PER_FILE
    assert {r for r, d in docs.items() if d["ack_status"] == "accepted"} == set(accepted)
    assert {r for r, d in docs.items() if d["ack_status"] == "rejected"} == set(rejected)
    assert all(docs[r]["ack_code"] == "4" for r in rejected)
    assert {r for r, d in docs.items() if d["ack_status"] is None} == set(silent)
    shown = _run(cfg, "show", ours[rejected[0]])
    assert "rejected (4)" in shown and "partner_ack" in shown, shown

    msgs = {m["display_name"]: m for m in _json(_run(cfg, "messages", "--json", "--limit", "1000"))}
    assert msgs["contrl-unknown.edi"]["state"] == "quarantined" and msgs["contrl-unknown.edi"]["reason"] == "UNMATCHED_ACK"
    assert "88888" in msgs["contrl-unknown.edi"]["error"]
    bad = msgs["contrl-malformed.edi"]
    assert bad["state"] == "quarantined" and bad["reason"] == "MALFORMED_ACK" and "UCM before the UCI" in bad["error"]
    assert all(m["state"] == "parsed" and m["reason"] == "ACK" for n, m in msgs.items() if n.startswith("contrl-0"))

    time.sleep(3.5)
    late = _json(_run(cfg, "documents", "--overdue", "--json"))
    assert {d["control_number"] for d in late} == set(silent)
