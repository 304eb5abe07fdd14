"""Scanned PDF orders mailed in, through the real CLI (issue 13): clean scans are read by OCR
and go straight through, poor ones wait for a person with what to check. OCR costs 1-3 s a
page, so this runs a handful of scans, not hundreds (the volume tests of the e-mail path use
text PDFs and CSV attachments)."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.e2e.helpers import file_target, run_cli, write_config
from tests.support import make_pdf

pytestmark = pytest.mark.usefixtures("require_tesseract")
PARTNER = "partners:\n  - name: acme\n    email_senders: ['@acme-retail.example']\n    email_confirmation: false\n"


def scan_mail(po: str, pdf: bytes) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Jane Buyer <jane.buyer@acme-retail.example>"
    msg["To"] = "orders@widgetco.example"
    msg["Subject"] = f"PO {po}"
    msg["Message-ID"] = f"<scan-{po}@acme-retail.example>"
    msg.set_content("Please find our order attached (scanned).")
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"PO_{po}.pdf")
    return msg.as_bytes()


def test_clean_scans_go_through_and_poor_ones_wait_for_a_person(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, connectors=file_target("outbox", tmp_path / "outbox"), service=False, extra=PARTNER)
    clean = ["4500020000", "4500020001"]
    poor = ["4500029901"]
    for po in clean:
        (tmp_path / "inbox" / f"{po}.eml").write_bytes(scan_mail(po, make_pdf.rasterised(po=po)))
    for po in poor:
        (tmp_path / "inbox" / f"{po}.eml").write_bytes(scan_mail(po, make_pdf.rasterised(smudge=True, po=po)))

    done = run_cli("run", "--once", "--for", "240", "--config", str(cfg), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    sent = {json.loads(p.read_text())["po_number"]: json.loads(p.read_text()) for p in (tmp_path / "outbox").rglob("*.json")}
    assert sorted(sent) == clean
    for order in sent.values():
        assert [(ln["sku"], str(ln["quantity"])) for ln in order["lines"]] == [("WID-100", "12"), ("WID-200", "5"), ("GAD-7", "1000")]

    review = run_cli("exceptions", "--json", "--config", str(cfg))
    assert review.returncode == 0, review.stderr
    waiting = [json.loads(line) for line in review.stdout.splitlines() if line.strip()]
    assert sorted(w["po_number"] for w in waiting) == poor, waiting
    assert all(w["state"] == "held" for w in waiting), waiting
    shown = run_cli("show", waiting[0]["id"][:8], "--sources", "--config", str(cfg))
    assert shown.returncode == 0, shown.stderr
    assert "OCR, lowest word" in shown.stdout, shown.stdout[-2000:]
