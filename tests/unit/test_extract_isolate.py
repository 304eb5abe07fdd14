"""The risky readers run in a child process: same results, and a reader that runs away is
stopped and reported instead of taking the gateway with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.extract import isolate
from gateway.extract.base import ExtractionError
from gateway.extract.table import extract_table
from gateway.extract.template import load_email_template

ROOT = Path(__file__).resolve().parents[2]
XLSX = (ROOT / "tests/fixtures/email/po.xlsx").read_bytes()


@pytest.fixture()
def template():
    return load_email_template(ROOT / "mappings/examples/email_table.yaml")


def test_isolated_xlsx_gives_what_the_reader_gives_in_process(template):
    (child,) = isolate.isolated_xlsx_table(XLSX, "po.xlsx", template)
    (here,) = extract_table(XLSX, "xlsx", "po.xlsx", template)
    assert child.order == here.order
    assert child.provenance == here.provenance and child.confidence == here.confidence
    assert child.order.po_number and child.order.lines


def test_reader_errors_come_back_with_their_reason(template):
    with pytest.raises(ExtractionError) as exc:
        isolate.isolated_xlsx_table(b"PK\x03\x04 not really a workbook", "po.xlsx", template)
    assert exc.value.reason == "EXTRACT_XLSX_INVALID"
    assert "po.xlsx" in exc.value.message


def test_memory_limit_stops_the_reader_not_the_gateway(template, monkeypatch):
    """reliability C2: a reader that exhausts its memory limit fails in the child; the gateway survives."""
    # 40 MB of address space is too little even to import the reader: the child fails
    # as a bomb would, and the parent turns it into a quarantine reason.
    monkeypatch.setitem(isolate.LIMITS, "memory_mb", 40)
    with pytest.raises(ExtractionError) as exc:
        isolate.isolated_xlsx_table(XLSX, "po.xlsx", template)
    assert exc.value.reason in ("EXTRACT_LIMIT", "EXTRACT_READER_FAILED")
    assert "po.xlsx" in exc.value.message


def test_wall_clock_limit_kills_a_stuck_reader(template, monkeypatch):
    """reliability C2: a stuck reader is killed at the wall-clock timeout."""
    monkeypatch.setitem(isolate.LIMITS, "timeout_seconds", 0.05)
    with pytest.raises(ExtractionError) as exc:
        isolate.isolated_pdf_text(b"%PDF-1.4\n", "slow.pdf")
    assert exc.value.reason == "EXTRACT_LIMIT"
    assert "slow.pdf" in exc.value.message and "was stopped" in exc.value.message
