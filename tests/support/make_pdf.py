"""Builds the PDF purchase orders the text-extraction tests read (fpdf2, reproducible).

    .venv/bin/python -m tests.support.make_pdf      # rewrites tests/fixtures/email/po*.pdf

The files are byte-for-byte the same on every run (fixed creation date, no random ids),
so a regenerated fixture shows up in a diff only when this script changed. Encrypted PDFs
are the exception (the cipher salts are random): tests build them on the fly.

What the fixtures look like (the tests assert these values):

- ``po.pdf``: ACME Retail's order 4500012345 of 2026-11-27 in USD: a header block of
  labelled fields with a second column (Vendor No, Terms), Bill To and Ship To side by
  side, a table of three lines (one quantity written ``1,000``), Subtotal and Total 503.95.
- ``po_scanned.pdf``: the same order as a single page image with no text layer (a scan).
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import EncryptionMethod
from PIL import Image, ImageDraw, ImageFont

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "email"
_CREATED = dt.datetime(2026, 11, 27, 9, 30, tzinfo=dt.UTC)

# (sku, description, quantity, uom, unit price, amount)
ROWS = [
    ("WID-100", "Blue widget, large", "12", "EA", "4.50", "54.00"),
    ("WID-200", "Red widget", "5", "BX", "19.99", "99.95"),
    ("GAD-7", "Gadget 7 inch", "1,000", "EA", "0.35", "350.00"),
]


def _new() -> FPDF:
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_creation_date(_CREATED)
    pdf.set_auto_page_break(False)
    pdf.set_title("Purchase order")
    return pdf


def _put(
    pdf: FPDF,
    x: float,
    y: float,
    text: str,
    *,
    size: float = 10,
    bold: bool = False,
    right: bool = False,
) -> None:
    """Write `text` with its baseline at `y`; `right` aligns its end at `x`."""
    pdf.set_font("Helvetica", style="B" if bold else "", size=size)
    if right:
        x -= pdf.get_string_width(text)
    pdf.text(x, y, text)


def _letterhead(pdf: FPDF) -> None:
    _put(pdf, 15, 20, "ACME Retail Inc.", size=14, bold=True)
    _put(pdf, 195, 20, "PURCHASE ORDER", size=14, bold=True, right=True)
    _put(pdf, 15, 26, "1 Commerce Way, Springfield, IL 62701", size=9)


def _header(pdf: FPDF, po: str = "4500012345") -> None:
    y = 38.0
    for left, right in [
        (("PO Number:", po), ("Vendor No:", "V-778")),
        (("Order Date:", "2026-11-27"), ("Terms:", "Net 30")),
        (("Currency:", "USD"), None),
        (("Contact:", "buyer@acme-retail.example"), None),
    ]:
        _put(pdf, 15, y, left[0])
        _put(pdf, 45, y, left[1])
        if right:
            _put(pdf, 120, y, right[0])
            _put(pdf, 145, y, right[1])
        y += 5


def _addresses(pdf: FPDF) -> None:
    _put(pdf, 15, 65, "Bill To:", bold=True)
    _put(pdf, 110, 65, "Ship To:", bold=True)
    bill = ["ACME Retail Inc.", "Accounts Payable", "1 Commerce Way", "Springfield, IL 62701"]
    ship = [
        "ACME Distribution Center 4",
        "Dock 7",
        "1200 Industrial Pkwy",
        "Columbus, OH 43215",
        "USA",
    ]
    for i, line in enumerate(bill):
        _put(pdf, 15, 70 + 5 * i, line)
    for i, line in enumerate(ship):
        _put(pdf, 110, 70 + 5 * i, line)


def _table_header(pdf: FPDF, y: float) -> None:
    for x, text, right in [
        (15, "Item", False),
        (40, "Description", False),
        (125, "Qty", True),
        (130, "UOM", False),
        (165, "Unit Price", True),
        (195, "Amount", True),
    ]:
        _put(pdf, x, y, text, bold=True, right=right)
    pdf.line(15, y + 1.5, 195, y + 1.5)


def _row(pdf: FPDF, y: float, row: tuple[str, ...]) -> None:
    sku, description, qty, uom, price, amount = row
    _put(pdf, 15, y, sku)
    _put(pdf, 40, y, description)
    _put(pdf, 125, y, qty, right=True)
    _put(pdf, 130, y, uom)
    _put(pdf, 165, y, price, right=True)
    _put(pdf, 195, y, amount, right=True)


def _totals(pdf: FPDF, y: float) -> None:
    pdf.line(130, y - 4, 195, y - 4)
    _put(pdf, 165, y, "Subtotal", right=True)
    _put(pdf, 195, y, "503.95", right=True)
    _put(pdf, 165, y + 6, "Total USD", bold=True, right=True)
    _put(pdf, 195, y + 6, "503.95", bold=True, right=True)


def purchase_order(po: str = "4500012345") -> bytes:
    """po.pdf: one page, everything the template reads."""
    pdf = _new()
    pdf.add_page()
    _letterhead(pdf)
    _header(pdf, po)
    _addresses(pdf)
    _table_header(pdf, 105)
    for i, row in enumerate(ROWS):
        _row(pdf, 112 + 6 * i, row)
    _totals(pdf, 134)
    _put(pdf, 15, 155, "Note: Deliver Mon-Fri between 8am and 4pm.")
    _put(pdf, 105, 285, "Page 1 of 1", size=8, right=True)
    return bytes(pdf.output())


def two_page_order() -> bytes:
    """The same order with its table broken over two pages: page 2 repeats a short
    letterhead and the table header; each page has a "Page n of 2" footer."""
    pdf = _new()
    pdf.add_page()
    _letterhead(pdf)
    _header(pdf)
    _addresses(pdf)
    _table_header(pdf, 105)
    for i, row in enumerate(ROWS[:2]):
        _row(pdf, 112 + 6 * i, row)
    _put(pdf, 105, 285, "Page 1 of 2", size=8, right=True)
    pdf.add_page()
    _put(pdf, 15, 20, "ACME Retail Inc. - PO 4500012345 (continued)", size=9)
    _table_header(pdf, 32)
    _row(pdf, 39, ROWS[2])
    _totals(pdf, 52)
    _put(pdf, 105, 285, "Page 2 of 2", size=8, right=True)
    return bytes(pdf.output())


def scanned() -> bytes:
    """po_scanned.pdf: a page that is only a picture of an order (no text layer)."""
    image = Image.new("L", (1240, 1754), 255)  # A4 at 150 dpi
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default_imagefont()
    lines = [
        "ACME Retail Inc.        PURCHASE ORDER",
        "",
        "PO Number: 4500012345",
        "Order Date: 2026-11-27",
        "",
        "Item     Description          Qty  UOM  Unit Price  Amount",
    ]
    lines += [f"{r[0]:<8} {r[1]:<20} {r[2]:>5}  {r[3]}  {r[4]:>9}  {r[5]:>7}" for r in ROWS]
    lines += ["", "Total USD 503.95"]
    for i, line in enumerate(lines):
        # The bitmap font is tiny; draw it small and scale the strip up, like a coarse scan.
        strip = Image.new("L", (420, 14), 255)
        ImageDraw.Draw(strip).text((0, 1), line, fill=0, font=font)
        image.paste(strip.resize((1260, 42), Image.Resampling.NEAREST), (90, 120 + 50 * i))
    draw.rectangle((80, 100, 1160, 120 + 50 * len(lines)), outline=0, width=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    pdf = _new()
    pdf.add_page()
    pdf.image(io.BytesIO(buffer.getvalue()), x=0, y=0, w=210, h=297)
    return bytes(pdf.output())


def rasterised(dpi: int = 200, *, smudge: bool = False, po: str = "4500012345") -> bytes:
    """po.pdf printed and scanned: its page rendered to a grey image at `dpi` (pdfium) and
    wrapped in a PDF with no text layer. `smudge` blurs it and sprinkles specks, like a
    fax of a photocopy, so that OCR is unsure of what it reads."""
    import random

    import pypdfium2
    from PIL import ImageFilter

    document = pypdfium2.PdfDocument(purchase_order(po))
    image = document[0].render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
    document.close()
    if smudge:
        image = image.resize((image.width * 4 // 5, image.height * 4 // 5)).filter(ImageFilter.GaussianBlur(0.7))
        rng = random.Random(7)
        draw = ImageDraw.Draw(image)
        for _ in range(image.width * image.height // 2000):
            x, y = rng.randrange(image.width), rng.randrange(image.height)
            draw.point((x, y), fill=rng.choice((60, 120, 180)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    pdf = _new()
    pdf.add_page()
    pdf.image(io.BytesIO(buffer.getvalue()), x=0, y=0, w=210, h=297)
    return bytes(pdf.output())


def order_with_scanned_page() -> bytes:
    """po.pdf followed by a second page that is only an image (a scanned continuation)."""
    pdf = _new()
    pdf.add_page()
    _letterhead(pdf)
    _header(pdf)
    _table_header(pdf, 105)
    for i, row in enumerate(ROWS[:2]):
        _row(pdf, 112 + 6 * i, row)
    pdf.add_page()
    image = Image.new("L", (400, 100), 255)
    ImageDraw.Draw(image).rectangle((20, 20, 380, 80), outline=0, width=3)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    pdf.image(io.BytesIO(buffer.getvalue()), x=15, y=20, w=120)
    return bytes(pdf.output())


def encrypted(user_password: str | None = "secret") -> bytes:
    """po.pdf encrypted with AES-128. With a user password it cannot be opened without
    it; with none (only an owner password) any reader opens it. Not reproducible."""
    pdf = _new()
    pdf.add_page()
    _letterhead(pdf)
    _header(pdf)
    _table_header(pdf, 105)
    for i, row in enumerate(ROWS):
        _row(pdf, 112 + 6 * i, row)
    pdf.set_encryption(
        owner_password="owner-secret",
        user_password=user_password,
        encryption_method=EncryptionMethod.AES_128,
    )
    return bytes(pdf.output())


def many_pages(count: int) -> bytes:
    """`count` pages with one line of text each."""
    pdf = _new()
    for i in range(count):
        pdf.add_page()
        _put(pdf, 15, 20, f"Page {i + 1}")
    return bytes(pdf.output())


def text_lines(lines: list[str], *, font_size: float = 10, compress: bool = True) -> bytes:
    """One page of lines in Courier at a 5 mm pitch (an empty string leaves a gap);
    `compress` False leaves the page's content stream readable (tests patch it)."""
    pdf = _new()
    pdf.set_compression(compress)
    pdf.add_page()
    pdf.set_font("Courier", size=font_size)
    for i, line in enumerate(lines):
        if line:
            pdf.text(15, 20 + 5 * i, line)
    return bytes(pdf.output())


def main() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name, data in [("po.pdf", purchase_order()), ("po_scanned.pdf", scanned())]:
        (FIXTURES / name).write_bytes(data)
        print(f"wrote {FIXTURES / name} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
