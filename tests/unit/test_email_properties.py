"""Property tests: bad input on the e-mail path gets a clear error, never a crash.

The promise (reliability.md §4.1): whatever arrives by mail (a broken MIME tree, an odd
From, a damaged CSV, XLSX or PDF, a body full of junk), the gateway answers with an
`InputRejected` (a reason code and a sentence) and finishes quickly. No IndexError,
UnicodeDecodeError, KeyError, RecursionError or bare ValueError may leak.

Inputs are built valid (with `email.message.EmailMessage`, from the fixtures) and then
damaged (truncated, bytes flipped, boundaries spliced, headers duplicated, line breaks
dropped). Runs are derandomized so CI sees the same examples every time; a failure found
here is kept below as an `@example` or a plain regression test.

Budget: about 15 s for the whole module on a 2-core machine; most of it is the two e-mail
properties. PDF and XLSX examples are few (their readers are slow), and the translate property
reads them in this process instead of the isolated child (test_extract_isolate.py covers that).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from email.message import EmailMessage, MIMEPart
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from gateway.config import PartnerConfig
from gateway.errors import InputRejected, ParseError
from gateway.extract import isolate
from gateway.extract.base import Extraction, ExtractionError, parse_amount, parse_date
from gateway.extract.table import extract_table
from gateway.extract.template import EmailTemplate, load_email_template
from gateway.extract.text import extract_text, pdf_text
from gateway.formats.base import DocumentRejected, InterchangeClosed, InterchangeOpened
from gateway.formats.email import EmailParser
from gateway.formats.ziplimits import ZipProblem, read_zip
from gateway.model import Channel, Order
from gateway.partners import PartnerDirectory
from gateway.translate import Rejected, Translated, translate

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "email"
EXAMPLES = ROOT / "mappings" / "examples"
TABLE_TEMPLATE = load_email_template(EXAMPLES / "email_table.yaml")
TEXT_TEMPLATE = load_email_template(EXAMPLES / "email_text.yaml")

CSV_TABLE = (FIX / "po_table.csv").read_bytes()
CSV_SEMICOLON = (FIX / "po_semicolon.csv").read_bytes()
BODY = (FIX / "po_body.txt").read_text(encoding="utf-8")
XLSX = (FIX / "po.xlsx").read_bytes()
PDF = (FIX / "po.pdf").read_bytes()
EDI_X12 = (ROOT / "gateway" / "examples" / "acme-po-4010.edi").read_bytes()
EDI_BROKEN = (ROOT / "gateway" / "examples" / "broken-segment-count.edi").read_bytes()

# Derandomized: CI sees the same examples on every run; no example database is written.
FAST = settings(
    derandomize=True,
    database=None,
    deadline=2000,  # ms per example: generous, so a slow machine does not flake
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


ZIP_EDI = _zip({"orders/po.edi": EDI_X12})
ZIP_CSV = _zip({"po.csv": CSV_TABLE, "readme.txt": b"hello"})
ZIP_IN_ZIP = _zip({"inner.zip": ZIP_EDI})


def _version_needed(archive: bytes, version: int) -> bytes:
    """The archive with its first central-directory entry claiming a newer ZIP version."""
    at = archive.index(b"PK\x01\x02") + 6  # after the signature and "version made by"
    return archive[:at] + version.to_bytes(2, "little") + archive[at + 2 :]


def _mail(attachment: bytes, name: str, subtype: str) -> bytes:
    m = EmailMessage()
    m["From"] = "Jane Buyer <jane.buyer@acme-retail.example>"
    m.set_content("Please see the attached order.")
    m.add_attachment(attachment, maintype="application", subtype=subtype, filename=name)
    for n, part in enumerate(m.walk()):
        if part.is_multipart():
            part.set_boundary(f"==r{n}==")
    return m.as_bytes()


# Inputs the properties found; each is also a plain regression test at the end of the module.
# A Content-Type parameter name ending in "*" with no value: the stdlib parser raised IndexError.
NAMELESS_PARAMETER = b"From: a@b.example\r\nContent-Type: text/plain; name*\r\n\r\nhi\r\n"
# "zip file version 14.8" in the central directory: zipfile raised NotImplementedError.
NEWER_ZIP_MAIL = _mail(_version_needed(ZIP_EDI, 148), "orders.zip", "zip")
NEWER_ZIP_XLSX = _version_needed(XLSX, 148)


# -- damage --------------------------------------------------------------------------------

_NASTY = [
    b"\x00",
    b"\xff",
    b"\r",
    b"\n",
    b"\r\n",
    b"--",
    b'"',
    b";",
    b",",
    b"\t",
    b"=",
    b"?",
    b":",
    b"<",
    b">",
    b"\xc3",
    b"\xe2\x80",
    b"PK\x03\x04",
    b"%PDF-",
    b"=?utf-8?b?",
    b"\\",
]
_OPS = (
    "truncate",
    "flip",
    "insert",
    "delete",
    "duplicate_line",
    "drop_newlines",
    "bare_cr",
    "splice_boundary",
    "swap_lines",
)


@st.composite
def edits(draw: st.DrawFn, max_edits: int = 4) -> list[tuple[str, float, bytes]]:
    """A list of damage operations: (operation, where as a fraction of the length, bytes)."""
    return draw(
        st.lists(
            st.tuples(
                st.sampled_from(_OPS),
                st.floats(min_value=0, max_value=1),
                st.one_of(st.sampled_from(_NASTY), st.binary(min_size=1, max_size=8)),
            ),
            min_size=1,
            max_size=max_edits,
        )
    )


def damage(data: bytes, ops: list[tuple[str, float, bytes]]) -> bytes:
    """Apply `ops` to `data` (see `edits`)."""
    buf = bytearray(data)
    for op, where, chunk in ops:
        at = min(int(where * len(buf)), len(buf))
        if op == "truncate":
            del buf[at:]
        elif op == "flip":
            if buf:
                i = min(at, len(buf) - 1)
                buf[i] ^= chunk[0] or 0x80
        elif op == "insert":
            buf[at:at] = chunk
        elif op == "delete":
            del buf[at : at + len(chunk) * 8]
        elif op in ("duplicate_line", "swap_lines", "splice_boundary"):
            lines = bytes(buf).splitlines(keepends=True)
            if not lines:
                continue
            if op == "splice_boundary":  # a MIME boundary line (or a CSV/EDI line) moved or lost
                picks = [i for i, line in enumerate(lines) if line.startswith(b"--")] or list(
                    range(len(lines))
                )
            else:
                picks = list(range(len(lines)))
            i = picks[min(int(where * len(picks)), len(picks) - 1)]
            if op == "duplicate_line":
                lines.insert(i, lines[i])
            elif op == "swap_lines" and i + 1 < len(lines):
                lines[i], lines[i + 1] = lines[i + 1], lines[i]
            elif op == "splice_boundary":
                line = lines.pop(i)
                kind = chunk[0] % 4
                if kind == 1:  # duplicated elsewhere
                    lines.insert(min(int(where * 7919) % (len(lines) + 1), len(lines)), line)
                elif kind == 2:  # cut short
                    lines.insert(i, line[: max(2, len(line) // 2)] + b"\r\n")
                elif kind == 3:  # the closing form, too early
                    lines.insert(i, line.rstrip(b"\r\n") + b"--\r\n")
            buf = bytearray(b"".join(lines))
        elif op == "drop_newlines":  # a window of the input loses its line breaks
            end = min(len(buf), at + 64 * (chunk[0] % 16 + 1))
            buf[at:end] = bytes(buf[at:end]).replace(b"\r", b"").replace(b"\n", b"")
        elif op == "bare_cr":
            buf = bytearray(
                bytes(buf).replace(b"\r\n", b"\r")
                if chunk[0] % 2
                else bytes(buf).replace(b"\r\n", b"\n")
            )
    return bytes(buf)


# -- e-mails ---------------------------------------------------------------------------------

_FROM = [
    "Jane Buyer <jane.buyer@acme-retail.example>",
    "orders@partner.example",
    "orders@partner.example <attacker@evil.example>",
    "alice@partner)<bob@evil.example>",
    "a@b, c@d",
    "undisclosed-recipients:;",
    '"Buyer, Jane" <jane@acme-retail.example>',
    '"unterminated <x@y.example>',
    "<>",
    "<<<@>>>",
    "@",
    "(comment only)",
    "=?utf-8?b?SmFuZQ==?= <jane@acme-retail.example>",
    "=?utf-8?q?=E2=80?= <x@y.example>",
    "=?bogus?q?x?= <x@y.example>",
    "x@[IPv6:::1]",
    "Jürgen Müller <jürgen@müller.example>",
    "a" * 300 + "@example.com",
    "",
]
_CHARSETS = [
    "utf-8",
    "us-ascii",
    "iso-8859-1",
    "iso-8859-15",
    "windows-1252",
    "koi8-r",
    "shift_jis",
    "utf-16",
    "utf-7",
    "x-unknown",
    "binary",
    "",
]
_NAMES = [
    "po.csv",
    "PO.CSV",
    "po.xlsx",
    "po.xlsm",
    "po.pdf",
    "orders.zip",
    "po.edi",
    "po.x12",
    "order.xml",
    "../../etc/po.edi",
    "C:\\x\\po.csv",
    "/etc/passwd",
    "",
    " ",
    "po\x00.csv",
    "ордер.csv",
    "=?utf-8?q?po=2Ecsv?=",
    "a" * 600 + ".csv",
    None,
]
_CTYPES = [
    ("text", "csv"),
    ("application", "csv"),
    ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("application", "pdf"),
    ("application", "zip"),
    ("application", "x-zip-compressed"),
    ("application", "edi-x12"),
    ("application", "edifact"),
    ("application", "octet-stream"),
    ("application", "xml"),
    ("text", "plain"),
    ("text", "html"),
    ("image", "png"),
    ("application", "ms-tnef"),
]
_PAYLOADS = [
    CSV_TABLE,
    CSV_SEMICOLON,
    XLSX,
    PDF,
    EDI_X12,
    EDI_BROKEN,
    ZIP_EDI,
    ZIP_CSV,
    ZIP_IN_ZIP,
    b"",
    b"\x89PNG\r\n\x1a\n",
]
_COHERENT = [
    ("po.csv", ("text", "csv"), CSV_TABLE),
    ("po.csv", ("application", "octet-stream"), CSV_SEMICOLON),
    ("po.xlsx", ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet"), XLSX),
    ("po.pdf", ("application", "pdf"), PDF),
    ("po.edi", ("application", "edi-x12"), EDI_X12),
    ("po.edi", ("application", "octet-stream"), EDI_BROKEN),
    ("orders.zip", ("application", "zip"), ZIP_EDI),
    ("orders.zip", ("application", "zip"), ZIP_CSV),
    ("orders.zip", ("application", "zip"), ZIP_IN_ZIP),
]
_TEXTS = [
    BODY,
    "Please see the attached order.",
    "ISA*00*          *00*",
    "<?xml version='1.0'?><cXML/>",
    "<html><body><p>PO Number: 1</p><script>x</script></body></html>",
    "PO Number: 4500\nItem Description Qty\nA-1 thing 3 EA 1.00\n",
]


def _set(part: EmailMessage | MIMEPart, name: str, value: str) -> None:
    try:
        part[name] = value
    except Exception:  # the stdlib refuses some values (CR/LF); the raw damage adds those
        del part[name]


def _attach(parent: MIMEPart, child: MIMEPart) -> None:
    parent.attach(cast(EmailMessage, child))  # typeshed wants an EmailMessage; any part will do


def _charset(part: MIMEPart, text: str, draw: st.DrawFn, subtype: str = "plain") -> None:
    charset = draw(st.sampled_from(_CHARSETS))
    cte = draw(st.sampled_from([None, "base64", "quoted-printable", "8bit"]))
    try:
        part.set_content(text, subtype=subtype, charset=charset or "utf-8", cte=cte)
    except Exception:  # not encodable in that charset: declare it anyway (a lying sender)
        part.set_content(text, subtype=subtype)
        if charset:
            part.set_param("charset", charset)


@st.composite
def mime_parts(draw: st.DrawFn, depth: int = 0) -> MIMEPart:
    """A leaf, a nested multipart, or (at any depth, even past the limit) a forwarded message."""
    kinds = (
        ["attachment", "attachment", "text", "multipart", "forward"]
        if depth < 5
        else ["attachment", "text"]
    )
    kind = draw(st.sampled_from(kinds))
    if kind == "forward":
        inner = draw(emails(depth=depth + 1))
        wrapper = MIMEPart()
        wrapper.set_content(inner)  # message/rfc822
        return wrapper
    if kind == "multipart":
        part = MIMEPart()
        _charset(part, draw(st.sampled_from(_TEXTS)), draw)
        for sub in draw(st.lists(mime_parts(depth=depth + 1), max_size=3)):
            if not part.is_multipart():
                part.make_mixed()
            _attach(part, sub)
        return part
    if kind == "text":
        part = MIMEPart()
        text = draw(st.one_of(st.sampled_from(_TEXTS), st.text(max_size=200)))
        _charset(part, text, draw, draw(st.sampled_from(["plain", "html"])))
        return part
    part = MIMEPart()
    name: str | None
    if draw(st.booleans()):  # what a partner sends: a name and type that fit the content
        name, (maintype, subtype), data = draw(st.sampled_from(_COHERENT))
    else:
        maintype, subtype = draw(st.sampled_from(_CTYPES))
        data = draw(st.one_of(st.sampled_from(_PAYLOADS), st.binary(max_size=64)))
        name = draw(st.sampled_from(_NAMES))
    if draw(st.booleans()):  # damaged before it was encoded: the MIME is fine, the file is not
        data = damage(data, draw(edits(max_edits=2)))
    disposition = draw(st.sampled_from(["attachment", "inline"]))
    if maintype == "text":
        part.set_content(
            data.decode("latin-1"), subtype=subtype, disposition=disposition, filename=name
        )
        part.set_param("charset", draw(st.sampled_from(_CHARSETS)) or "utf-8")
    else:
        part.set_content(
            data, maintype=maintype, subtype=subtype, disposition=disposition, filename=name
        )
    return part


@st.composite
def emails(draw: st.DrawFn, depth: int = 0) -> EmailMessage:
    m = EmailMessage()
    _set(m, "From", draw(st.one_of(st.sampled_from(_FROM), st.text(max_size=40))))
    _set(m, "To", "orders@widgetco.example")
    _set(m, "Subject", draw(st.text(max_size=60)))
    _set(m, "Message-ID", "<po-1@acme-retail.example>")
    for _ in range(draw(st.integers(0, 2))):  # a header given twice (two From, two Content-Type)
        _set(
            m,
            draw(st.sampled_from(["From", "X-Mailer", "Received", "Content-Type"])),
            draw(st.sampled_from(_FROM)),
        )
    _charset(m, draw(st.sampled_from(_TEXTS)), draw)
    for part in draw(st.lists(mime_parts(depth=depth), max_size=4 if depth < 3 else 1)):
        if not m.is_multipart():
            m.make_mixed()
        _attach(m, part)
    if draw(st.integers(0, 30)) == 0:  # past the part limit
        if not m.is_multipart():
            m.make_mixed()
        for i in range(101):
            p = MIMEPart()
            p.set_content(
                b"x", maintype="application", subtype="octet-stream", filename=f"f{i}.bin"
            )
            _attach(m, p)
    return m


_RAW_HEADERS = [
    b"From: orders@partner.example <attacker@evil.example>\r\n",
    b"From: \xff\xfe@evil.example\r\n",
    b"From:\r\n",
    b"Content-Type: multipart/mixed\r\n",  # no boundary
    b'Content-Type: multipart/mixed; boundary=""\r\n',
    b'Content-Type: text/plain; charset="\xff"\r\n',
    b"Content-Type: message/rfc822\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: x-uuencode\r\n",
    b"Content-Disposition: attachment; filename*=utf-8''%ff%fe.csv\r\n",
    b"Content-Disposition: attachment; filename*0*=bogus''a; filename*1=b.csv\r\n",
    b"Subject: =?utf-8?q?=0A?=Bcc: x@y\r\n",
    b"X-Folded: a\r\n \r\n\tb\r\n",
]


@st.composite
def damaged_emails(draw: st.DrawFn) -> bytes:
    message = draw(emails())
    for n, part in enumerate(message.walk()):  # the generator would draw boundaries from `random`
        if part.is_multipart():
            part.set_boundary(f"==b{n}==")
    prefix = b"".join(draw(st.lists(st.sampled_from(_RAW_HEADERS), max_size=3)))
    data = prefix + message.as_bytes()
    if draw(st.booleans()):
        data = damage(data, draw(edits()))
    return data


# -- the partner (its template in a temporary mappings root) ----------------------------------


def _acme_template() -> str:
    """The example table and text templates in one file, as a partner would combine them."""
    table = yaml.safe_load((EXAMPLES / "email_table.yaml").read_text(encoding="utf-8"))
    text = yaml.safe_load((EXAMPLES / "email_text.yaml").read_text(encoding="utf-8"))
    return yaml.safe_dump({**table, "text": text["text"]})


@pytest.fixture(scope="module")
def partners(tmp_path_factory: pytest.TempPathFactory) -> PartnerDirectory:
    root = tmp_path_factory.mktemp("mappings")
    (root / "acme").mkdir()
    (root / "acme" / "email.yaml").write_text(_acme_template(), encoding="utf-8")
    directory = PartnerDirectory(
        [PartnerConfig(name="acme", email_senders=["@acme-retail.example"])], mappings_root=root
    )
    mapping = directory.mapping("acme")
    assert mapping is not None and mapping.email_template.table and mapping.email_template.text
    return directory


@pytest.fixture(scope="module")
def in_process_readers() -> Iterator[None]:
    """PDF and XLSX attachments read in this process instead of a child: the same code runs,
    a crash in it surfaces here instead of as EXTRACT_READER_FAILED, and no child is started
    per example (test_extract_isolate.py covers the child)."""

    def xlsx(data: bytes, label: str, template: Any) -> list[Extraction]:
        return extract_table(data, "xlsx", label, template)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(isolate, "isolated_pdf_text", pdf_text)
        mp.setattr(isolate, "isolated_xlsx_table", xlsx)
        yield


def _check_extraction(ex: Extraction) -> None:
    event("read: an order")
    assert ex.order.po_number
    for key in ex.provenance:
        assert key in ex.confidence, key
        assert 0.0 <= ex.confidence[key] <= 1.0, (key, ex.confidence[key])
    for key, value in ex.confidence.items():
        assert 0.0 <= value <= 1.0, (key, value)


def _check_rejection(exc: InputRejected) -> None:
    event(f"refused: {exc.reason}")
    assert exc.reason and isinstance(exc.reason, str)
    assert exc.message and isinstance(exc.message, str) and exc.message.strip()


# -- 1. e-mail --------------------------------------------------------------------------------


def parse_email(data: bytes) -> None:
    try:
        events = list(EmailParser().parse(io.BytesIO(data), name="m.eml"))
    except InputRejected as exc:
        _check_rejection(exc)
        return
    for ev in events:
        doc_type = getattr(ev, "doc_type", None)
        event(type(ev).__name__ + (f" {doc_type}" if doc_type else ""))
        if isinstance(ev, DocumentRejected):
            event(f"rejected: {ev.reason}")
            assert ev.reason and ev.message.strip(), ev


def translate_email(data: bytes, directory: PartnerDirectory) -> None:
    try:
        events = list(
            translate(
                io.BytesIO(data), name="m.eml", format="email", partner="acme", partners=directory
            )
        )
    except InputRejected as exc:
        _check_rejection(exc)
        return
    for ev in events:
        assert isinstance(ev, (InterchangeOpened, InterchangeClosed, Translated, Rejected)), ev
        if isinstance(ev, Rejected):
            event(f"rejected: {ev.reason}")
            assert ev.reason and ev.message.strip(), ev
        if isinstance(ev, Translated):
            event(f"translated: {ev.doc_type}")
            assert ev.order.po_number


@settings(FAST, max_examples=200)
@given(data=damaged_emails())
@example(data=NAMELESS_PARAMETER)
@example(data=NEWER_ZIP_MAIL)
def test_damaged_email_is_parsed_or_refused(data: bytes) -> None:
    parse_email(data)


@settings(FAST, max_examples=160)
@given(data=damaged_emails())
@example(data=NAMELESS_PARAMETER)
@example(data=NEWER_ZIP_MAIL)
@example(
    data=_mail(NEWER_ZIP_XLSX, "po.xlsx", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
)
def test_damaged_email_is_translated_or_refused(
    data: bytes, partners: PartnerDirectory, in_process_readers: None
) -> None:
    translate_email(data, partners)


@settings(FAST, max_examples=100)
@given(data=st.binary(max_size=2000))
def test_random_bytes_as_email_are_refused_cleanly(data: bytes) -> None:
    parse_email(b"From: a@b.example\r\n" + data)
    parse_email(data)


@settings(FAST, max_examples=300)
@given(archive=st.sampled_from([ZIP_EDI, ZIP_CSV, ZIP_IN_ZIP, XLSX]), ops=edits())
@example(archive=_version_needed(ZIP_EDI, 148), ops=[])
def test_damaged_zip_is_read_or_refused(
    archive: bytes, ops: list[tuple[str, float, bytes]]
) -> None:
    """ZIP attachments and XLSX workbooks: entries, or ZipProblem (ZIP_INVALID / ZIP_LIMIT)."""
    try:
        entries = read_zip(damage(archive, ops))
    except ZipProblem as exc:
        event(f"refused: {exc.reason}")
        assert exc.reason in ("ZIP_INVALID", "ZIP_LIMIT") and exc.message.strip()
        return
    event("read: entries")
    assert all(isinstance(e.data, bytes) for e in entries)


# -- 2. CSV -------------------------------------------------------------------------------------


def csv_property(data: bytes, template: EmailTemplate = TABLE_TEMPLATE) -> None:
    try:
        extractions = extract_table(data, "csv", "po.csv", template)
    except ExtractionError as exc:
        _check_rejection(exc)
        return
    for ex in extractions:
        _check_extraction(ex)


_CSV_CELLS = st.one_of(
    st.sampled_from(
        [
            "PO Number",
            "Qty",
            "Item",
            "Unit Price",
            "Total",
            "PO Number:",
            "1",
            "-1",
            "0",
            "1,000",
            "1.234,50",
            "1e9",
            "NaN",
            "(3)",
            "31/02/2026",
            "99999999999999999999999999",
            '"',
            "\n",
        ]
    ),
    st.text(max_size=12),
)


@st.composite
def csv_texts(draw: st.DrawFn) -> bytes:
    """A table in CSV: fixture rows with cells replaced, rows added, random delimiters."""
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    rows = [line.split(",") for line in CSV_TABLE.decode("utf-8").splitlines()]
    for _ in range(draw(st.integers(0, 6))):
        r = draw(st.integers(0, len(rows) - 1))
        row = rows[r]
        if row:
            row[draw(st.integers(0, len(row) - 1))] = draw(_CSV_CELLS)
    for _ in range(draw(st.integers(0, 3))):
        rows.insert(draw(st.integers(0, len(rows))), draw(st.lists(_CSV_CELLS, max_size=10)))
    text = "\n".join(delimiter.join(row) for row in rows)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "latin-1"]))
    return text.encode(encoding, "replace")


@settings(FAST, max_examples=250)
@given(
    data=st.one_of(
        st.binary(max_size=3000),
        csv_texts(),
        st.builds(damage, st.sampled_from([CSV_TABLE, CSV_SEMICOLON]), edits()),
    )
)
def test_csv_gives_orders_or_an_extraction_error(data: bytes) -> None:
    csv_property(data)


# -- 3. text ---------------------------------------------------------------------------------------

_LINES = st.one_of(
    st.sampled_from(BODY.splitlines()),
    st.sampled_from(
        [
            "> PO Number: 1",
            "On Tue, Nov 25, 2026 at 10:12 AM X <x@y> wrote:",
            "On Tue, Nov 25, 2026",
            "Bob wrote:",
            "-- ",
            "--",
            "-----Original Message-----",
            "From: a@b",
            "Sent: today",
            "Subject: x",
            "PO Number:",
            "PO #",
            "PO:",
            "Date: 13/13/2026",
            "Date: 02/30/2026",
            "Total: 1,234",
            "Total:",
            "Currency: EU",
            "Ship To",
            "Bill To:",
            "Item Qty",
            "WID-1 thing 0 EA 0",
            "WID-1 thing 1,000 EA 1.000 1000.000",
            "WID-1 x 99999999999999999999 EA 1 1",
            "\t\tPO Number\t123",
            " " * 3000,
            "x" * 2500,
            "PO Number: " + "9" * 3000,
            "\u00a0\u2003PO Number\u3000: 12",
            "PO Number\uff1a 4500",
            "Contact: " + "a" * 70 + "@" + "b." * 20 + "example",
            "Ship To: Berlin, DE 12345",
        ]
    ),
    st.text(max_size=80),
)


@st.composite
def bodies(draw: st.DrawFn) -> str:
    lines = BODY.splitlines()
    for _ in range(draw(st.integers(0, 8))):
        op = draw(st.sampled_from(["insert", "replace", "delete", "duplicate"]))
        i = draw(st.integers(0, max(0, len(lines) - 1)))
        if op == "insert" or not lines:
            lines.insert(i, draw(_LINES))
        elif op == "replace":
            lines[i] = draw(_LINES)
        elif op == "delete":
            del lines[i]
        else:
            lines.insert(i, lines[i])
    return draw(st.sampled_from(["\n", "\r\n", "\r", "\f"])).join(lines)


def text_property(pages: list[str], channel: Channel) -> None:
    label = "message body" if channel is Channel.EMAIL else "attachment po.pdf"
    try:
        ex = extract_text(pages, label, TEXT_TEMPLATE, channel)
    except ExtractionError as exc:
        _check_rejection(exc)
        return
    _check_extraction(ex)


@settings(FAST, max_examples=300)
@given(
    text=st.one_of(bodies(), st.text(max_size=500)),
    channel=st.sampled_from([Channel.EMAIL, Channel.PDF]),
)
def test_text_gives_an_order_or_an_extraction_error(text: str, channel: Channel) -> None:
    text_property(text.split("\f") if channel is Channel.PDF else [text], channel)


# -- 4. numbers and dates ----------------------------------------------------------------------------

_NUMBERISH = st.text(alphabet="0123456789.,'-+()$€£¥ \u00a0\u202fEURUSDpcsxea٠١٢٣", max_size=30)


@settings(FAST, max_examples=300)
@given(text=st.one_of(st.text(max_size=40), _NUMBERISH), decimal_comma=st.booleans())
def test_parse_amount_returns_a_finite_number_or_none(text: str, decimal_comma: bool) -> None:
    got = parse_amount(text, decimal_comma=decimal_comma)
    if got is not None:
        value, confidence = got
        assert isinstance(value, Decimal) and value.is_finite()
        assert 0.0 <= confidence <= 1.0


_DATEISH = st.text(alphabet="0123456789/.- ,JanuaryFebMcDOoctv", max_size=25)


@settings(FAST, max_examples=300)
@given(
    text=st.one_of(st.text(max_size=40), _DATEISH),
    formats=st.one_of(
        st.none(),
        st.lists(
            st.sampled_from(["%d/%m/%Y", "%Y-%m-%d", "%m/%d/%y", "%j", "%G-W%V-%u", "%"]),
            max_size=2,
        ),
    ),
    day_first=st.booleans(),
)
def test_parse_date_returns_a_date_or_none(
    text: str, formats: list[str] | None, day_first: bool
) -> None:
    got = parse_date(text, formats=formats, day_first=day_first)
    if got is not None:
        assert 0.0 <= got[1] <= 1.0


# -- 5. PDF ----------------------------------------------------------------------------------------


@settings(FAST, max_examples=50, deadline=5000)
@given(ops=edits(max_edits=3))
def test_damaged_pdf_is_read_or_refused(ops: list[tuple[str, float, bytes]]) -> None:
    try:
        pages = pdf_text(damage(PDF, ops), "po.pdf")
    except ExtractionError as exc:
        _check_rejection(exc)
        return
    event("read: pages")
    assert all(isinstance(p, str) for p in pages)


# -- 6. XLSX -----------------------------------------------------------------------------------------


def _damaged_entry(data: bytes, name_pick: float, ops: list[tuple[str, float, bytes]]) -> bytes:
    """The workbook with one of its parts damaged and zipped again (valid ZIP, broken XML)."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        entries = {i.filename: z.read(i) for i in z.infolist()}
    names = sorted(entries)
    name = names[min(int(name_pick * len(names)), len(names) - 1)]
    entries[name] = damage(entries[name], ops)
    return _zip(entries)


def xlsx_property(data: bytes) -> None:
    try:
        extractions = extract_table(data, "xlsx", "po.xlsx", TABLE_TEMPLATE)
    except ExtractionError as exc:
        _check_rejection(exc)
        return
    for ex in extractions:
        _check_extraction(ex)
        # In production a child process reads workbooks and sends the order back as JSON.
        wire = json.loads(
            json.dumps({"order": ex.order.model_dump(mode="json"), "confidence": ex.confidence})
        )
        assert Order.model_validate(wire["order"]) == ex.order


@settings(FAST, max_examples=60)
@given(
    data=st.one_of(
        st.builds(damage, st.just(XLSX), edits(max_edits=2)),
        st.builds(_damaged_entry, st.just(XLSX), st.floats(0, 1), edits(max_edits=3)),
    )
)
@example(data=NEWER_ZIP_XLSX)
def test_damaged_xlsx_is_read_or_refused(data: bytes) -> None:
    xlsx_property(data)


# -- regressions found by the properties above ---------------------------------------------------


def test_a_parameter_name_without_a_value_refuses_the_mail_instead_of_crashing() -> None:
    # CPython gh-151857: `name*` with nothing after it raises IndexError inside the parser.
    with pytest.raises(ParseError) as err:
        list(EmailParser().parse(io.BytesIO(NAMELESS_PARAMETER)))
    assert err.value.reason == "MIME_DEFECT"
    assert "cannot read" in err.value.message


def test_a_zip_attachment_of_a_newer_zip_version_is_rejected_not_a_crash() -> None:
    (rejected,) = [
        e
        for e in EmailParser().parse(io.BytesIO(NEWER_ZIP_MAIL))
        if isinstance(e, DocumentRejected)
    ]
    assert rejected.reason == "ZIP_INVALID"
    assert "zip file version 14.8" in rejected.message


def test_a_workbook_of_a_newer_zip_version_is_refused_not_a_crash() -> None:
    with pytest.raises(ExtractionError) as err:
        extract_table(NEWER_ZIP_XLSX, "xlsx", "po.xlsx", TABLE_TEMPLATE)
    assert err.value.reason == "EXTRACT_XLSX_INVALID"


COUNT_TEMPLATE = EmailTemplate.model_validate(
    {
        "table": {
            "columns": {
                "po_number": ["PO"],
                "lines.quantity": ["Qty"],
                "totals.line_count": ["Count"],
            }
        }
    }
)


@pytest.mark.parametrize("count", ["9" * 5000, "1" + "0" * 18])
def test_a_whole_number_too_long_to_hold_is_a_bad_value(count: str) -> None:
    # 5,000 digits: printing the value for a warning or storing the order as JSON raised
    # "Exceeds the limit (4300 digits) for integer string conversion" (a ValueError).
    csv = f"PO,Qty,Count\n4500,1,{count}\n4500,2,{count}1\n".encode()
    with pytest.raises(ExtractionError) as err:
        extract_table(csv, "csv", "po.csv", COUNT_TEMPLATE)
    assert err.value.reason == "EXTRACT_BAD_VALUE"
    assert "at most 18 digits" in err.value.message and "totals.line_count" in err.value.message


def test_an_eighteen_digit_whole_number_is_still_read() -> None:
    (ex,) = extract_table(
        b"PO,Qty,Count\n4500,1,999999999999999999\n", "csv", "po.csv", COUNT_TEMPLATE
    )
    assert ex.order.totals is not None
    assert ex.order.totals.line_count == 999_999_999_999_999_999
