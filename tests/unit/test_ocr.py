"""Scanned PDF orders read by OCR (gateway.extract.text.ocr; issue 13): the tests make their
own scans — po.pdf rendered to an image and wrapped in a PDF with no text layer — and read
them back; a poor scan's values come out unsure, so the order waits for a person."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.extract.base import ExtractionError
from gateway.extract.template import load_email_template
from gateway.extract.text import PdfPages, extract_text, pdf_text
from gateway.extract.text.ocr import MAX_OCR_PAGES, OCR_CEILING, confidence_cap
from gateway.model import Channel
from tests.support import make_pdf

pytestmark = pytest.mark.usefixtures("require_tesseract")
ACME = load_email_template(Path(__file__).resolve().parents[2] / "mappings" / "acme" / "email.yaml")


@pytest.fixture(scope="module")
def clean() -> PdfPages:
    pages = pdf_text(make_pdf.rasterised(), "scan.pdf")
    assert isinstance(pages, PdfPages)
    return pages


def test_a_clean_scan_is_read_whole_and_no_surer_than_the_ocr(clean: PdfPages) -> None:
    assert clean.ocr_lines[1] and clean.unread_pages == []
    ex = extract_text(clean, "attachment scan.pdf", ACME, Channel.PDF)
    assert ex.order.po_number == "4500012345"
    assert [(ln.sku, str(ln.quantity), str(ln.unit_price)) for ln in ex.order.lines] == [
        ("WID-100", "12", "4.50"), ("WID-200", "5", "19.99"), ("GAD-7", "1000", "0.35")]  # fmt: skip
    assert ex.order.totals is not None and str(ex.order.totals.total) == "503.95"
    read = {k: v for k, v in ex.confidence.items() if k != "currency"}  # currency comes from the template
    assert all(v <= OCR_CEILING for v in read.values()), read
    assert min(read.values()) >= ACME.min_confidence, read  # a clean print goes straight through
    assert "[OCR, lowest word" in ex.provenance["po_number"] and "page 1, line" in ex.provenance["po_number"]
    assert any("read by OCR" in w for w in ex.warnings)


def test_a_poor_scan_is_unsure_where_it_misread() -> None:
    pages = pdf_text(make_pdf.rasterised(smudge=True), "fax.pdf")
    ex = extract_text(pages, "attachment fax.pdf", ACME, Channel.PDF)
    # It misreads (the line total 54.00 taken for the price, 4.50 for the quantity) ...
    assert [str(ln.quantity) for ln in ex.order.lines] != ["12", "5", "1000"]
    low = [k for k, v in ex.confidence.items() if k.startswith("lines[") and v < ACME.min_confidence]
    assert low, ex.confidence  # ... and says so: the order waits for a person


@pytest.mark.parametrize(("word", "cap"), [(100, 0.85), (96, 0.85), (90, 0.85), (75, 0.8), (50, 0.5), (20, 0.2), (-1, 0.0)])
def test_confidence_cap(word: float, cap: float) -> None:
    assert confidence_cap(word) == cap


def test_more_scanned_pages_than_ocr_reads_are_refused_before_any_ocr() -> None:
    from fpdf import FPDF

    pdf = FPDF()
    image = make_pdf.rasterised(72)
    import io

    import pypdfium2

    picture = pypdfium2.PdfDocument(image)[0].render(scale=0.5).to_pil()
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    for _ in range(MAX_OCR_PAGES + 1):
        pdf.add_page()
        pdf.image(io.BytesIO(buffer.getvalue()), x=0, y=0, w=210)
    with pytest.raises(ExtractionError) as err:
        pdf_text(bytes(pdf.output()), "book.pdf")
    assert err.value.reason == "EXTRACT_PDF_LIMIT" and f"up to {MAX_OCR_PAGES} pages by OCR" in err.value.message
