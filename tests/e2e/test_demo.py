"""The README's first command runs `gateway demo` on the shipped configuration: it must keep
delivering every example (EDI files and the order e-mail) on the embedded defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.helpers import ROOT, run_cli

pytestmark = pytest.mark.slow


def test_demo_delivers_every_example(tmp_path: Path) -> None:
    cfg = tmp_path / "gateway.yaml"
    text = (ROOT / "config" / "gateway.yaml").read_text()
    assert text.startswith("# ") and "\nhome: ..\n" in text
    cfg.write_text(text.replace("\nhome: ..\n", f"\nhome: {tmp_path}\n"))
    done = run_cli("demo", "--config", str(cfg), timeout=120)
    assert done.returncode == 0, done.stderr
    assert "X12_SE_COUNT" in done.stdout
    orders = [json.loads(p.read_text()) for p in sorted((tmp_path / "var" / "outbox").glob("*.json"))]
    by_po = {o["po_number"]: o for o in orders}
    assert sorted(by_po) == ["4500012500", "ACME-45001", "ACME-45002", "ACME-45004", "NW-2026-0042"]
    mailed = by_po["4500012500"]
    assert (mailed["channel"], mailed["partner"]) == ("csv", "acme")
    assert [(line["sku"], line["quantity"]) for line in mailed["lines"]] == [("WID-100", "24"), ("WID-300", "6")]
    assert sorted(p.name.split("-", 2)[2] for p in (tmp_path / "var" / "archive").iterdir()) == [
        "acme-order-mail.eml", "acme-po-4010.edi", "broken-segment-count.edi", "northwind-po-5010.edi",
    ]
