"""An HTML e-mail body with control characters is read as text, never a traceback (issue 14 #14)."""

from __future__ import annotations

import html
from email.message import EmailMessage
from pathlib import Path

from tests.e2e.helpers import ROOT, run_cli

FIX = ROOT / "tests" / "fixtures" / "email"
TEXT_TEMPLATE = (ROOT / "mappings" / "examples" / "email_text.yaml").read_text()


def html_mail(body_text: str) -> bytes:
    """The order text as an HTML body, one <p> per line, with stray control characters."""
    paras = "".join(f"<p>{html.escape(line)}\x01</p>\x0b" for line in body_text.splitlines())
    m = EmailMessage()
    m["From"] = "Jane Buyer <jane.buyer@acme-retail.example>"
    m["To"] = "orders@widgetco.example"
    m["Subject"] = "Purchase order"
    m["Message-ID"] = "<po-html-ctl@acme-retail.example>"
    m.set_content(f"<html><body>\x08{paras}<table><tr><td>a\x00</td>\x1f<td>b</td></tr></table></body></html>", subtype="html")
    return m.as_bytes()


def config(tmp_path: Path) -> Path:
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "email.yaml").write_text(TEXT_TEMPLATE)
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(
        f"store:\n  url: sqlite:///{tmp_path / 'gateway.db'}\nmappings: {tmp_path}\n"
        "partners:\n  - {name: acme, email_senders: ['@acme-retail.example']}\n"
    )
    return cfg


def test_translate_reads_an_html_body_with_control_characters(tmp_path):
    """issue 14 #14: lxml's "All strings must be XML compatible" escaped `gateway translate`."""
    cfg = config(tmp_path)
    eml = tmp_path / "po.eml"
    eml.write_bytes(html_mail((FIX / "po_body.txt").read_text()))
    done = run_cli("translate", str(eml), "--partner", "acme", "--config", str(cfg))
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
    assert '"po_number":"4500012399"' in done.stdout
    assert '"sku":"WID-100"' in done.stdout.replace(" ", "")


def test_ingest_of_an_html_body_with_control_characters_gives_a_clear_result(tmp_path):
    """issue 14 #14: `gateway ingest` stores the mail and reads its body instead of crashing."""
    cfg = config(tmp_path)
    eml = tmp_path / "po.eml"
    eml.write_bytes(html_mail((FIX / "po_body.txt").read_text()))
    done = run_cli("ingest", str(eml), "--config", str(cfg))
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    assert "1 orders accepted" in done.stderr, done.stderr
