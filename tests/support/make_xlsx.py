"""Writes the XLSX fixtures of tests/unit/test_extract_table.py, reproducibly.

    .venv/bin/python -m tests.support.make_xlsx     # rewrites tests/fixtures/email/*.xlsx

The committed files are this script's output: run it again after changing it and commit
both. The output is byte-for-byte stable for one openpyxl version (fixed document
properties and ZIP timestamps). Hostile workbooks (a zip bomb, XXE, billion laughs) are
built by the tests from these functions, never committed.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font

OUT = Path(__file__).resolve().parents[1] / "fixtures" / "email"
_STAMP = dt.datetime(2026, 1, 1)
_ZIP_TIME = (2026, 1, 1, 0, 0, 0)
_SHEET_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def po_workbook() -> bytes:
    """An order form: a cover sheet, then sheet 'Orders' with a title block, label cells
    above the table (values two cells right of the label), number and date cells, a float
    with noise (0.1 + 0.2) and a Total row that matches the lines."""
    wb = Workbook()
    cover = wb.active
    assert cover is not None
    cover.title = "Cover"
    cover["A1"] = "Please find our order on the sheet 'Orders'."
    ws = wb.create_sheet("Orders")
    ws["A1"] = "ACME Trading GmbH"
    ws["A1"].font = Font(bold=True, size=16)
    ws["A2"] = "Purchase Order"
    ws["A3"], ws["C3"] = "PO Number:", "4500099999"
    ws["A4"], ws["C4"] = "Order Date:", dt.date(2026, 3, 5)
    ws["C4"].number_format = "DD.MM.YYYY"
    ws["A5"], ws["C5"] = "Ship To:", "ACME Munich Warehouse"
    ws["A6"], ws["C6"] = "Delivery Date:", "20/03/2026"
    ws.append([])
    ws.append(["Line", "Item", "Description", "Qty", "UOM", "Unit Price", "Amount"])  # row 8
    ws.append([1, "WID-100", "Widget blue", 10, "EA", 0.1 + 0.2, 3])
    ws.append([2, "WID-200", "Widget red", 3, "EA", 12.5, 37.5])
    ws.append([3, 4006381333931, "Pencils", 100.0, "PCE", 1.1, 110])
    ws.append(["Total", None, None, None, None, None, 150.5])  # row 12
    ws.append([])
    ws.append(["Thank you for your order."])
    return _save(wb)


def formula_workbook() -> bytes:
    """Formulas as a program that does not calculate writes them: no saved result. In the
    Order Date label value, the second row's Ship To, a unit price and the Total."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Orders"
    ws["A1"], ws["B1"] = "PO Number:", "PO-F1"
    ws["A2"], ws["B2"] = "Order Date:", "=TODAY()"
    ws.append([])
    ws.append(["Item", "Qty", "Unit Price", "Ship To"])  # row 4
    ws.append(["A-1", 2, 5, "ACME Munich"])
    ws.append(["A-2", 4, "=2*6.25", "=D5"])
    ws.append(["Total", None, "=SUM(C5:C6)"])
    return _save(wb)


def table_workbook(rows: list[list[object]], *, title: str = "Orders") -> bytes:
    """A one-sheet workbook holding `rows` from A1 (for tests that need a variant)."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title)
    for row in rows:
        ws.append(row)
    return _save(wb)


def replace_part(xlsx: bytes, name: str, data: bytes) -> bytes:
    """The workbook with the part `name` replaced by (or added as) `data`."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename != name:
                zout.writestr(_info(info.filename), zin.read(info))
        zout.writestr(_info(name), data)
    return out.getvalue()


def _sheet_xml(cells: str, doctype: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f"{doctype}\n"
        f'<worksheet xmlns="{_SHEET_NS}"><sheetData>'
        '<row r="1"><c r="A1" t="inlineStr"><is><t>PO Number</t></is></c>'
        '<c r="B1" t="inlineStr"><is><t>Qty</t></is></c></row>'
        f'<row r="2">{cells}<c r="B2"><v>1</v></c></row>'
        "</sheetData></worksheet>"
    ).encode()


def xxe_workbook() -> bytes:
    """A sheet whose XML declares an external entity and uses it as the PO number."""
    base = table_workbook([["PO Number", "Qty"], ["PO-1", 1]])
    xml = _sheet_xml(
        '<c r="A2" t="inlineStr"><is><t>&xxe;</t></is></c>',
        '<!DOCTYPE worksheet [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    )
    return replace_part(base, "xl/worksheets/sheet1.xml", xml)


def billion_laughs_workbook() -> bytes:
    """A sheet whose XML nests entities ten deep (10^9 'lol's if expanded)."""
    base = table_workbook([["PO Number", "Qty"], ["PO-1", 1]])
    entities = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    xml = _sheet_xml('<c r="A2" t="inlineStr"><is><t>&lol9;</t></is></c>', f"<!DOCTYPE worksheet [{''.join(entities)}]>")
    return replace_part(base, "xl/worksheets/sheet1.xml", xml)


def bomb_workbook(inflated: int = 8 * 1024 * 1024) -> bytes:
    """A valid workbook whose sheet XML is padded with `inflated` bytes of whitespace
    (allowed after the root element): a few KB compressed, a ratio far above 100."""
    base = table_workbook([["PO Number", "Qty"], ["PO-1", 1]])
    with zipfile.ZipFile(io.BytesIO(base)) as zf:
        sheet = zf.read("xl/worksheets/sheet1.xml")
    return replace_part(base, "xl/worksheets/sheet1.xml", sheet + b" " * inflated)


def _save(wb: Workbook) -> bytes:
    wb.properties.creator = "tests/support/make_xlsx.py"
    wb.properties.created = _STAMP
    raw = io.BytesIO()
    wb.save(raw)
    return _stable(raw.getvalue())


def _stable(xlsx: bytes) -> bytes:
    """The same workbook with fixed ZIP timestamps and save time, so reruns are identical."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2026-01-01T00:00:00Z", data)
            zout.writestr(_info(info.filename), data)
    return out.getvalue()


def _info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in {"po.xlsx": po_workbook(), "table_formula.xlsx": formula_workbook()}.items():
        (OUT / name).write_bytes(data)
        print(f"wrote {OUT / name} ({len(data):,} bytes)")


if __name__ == "__main__":
    main()
