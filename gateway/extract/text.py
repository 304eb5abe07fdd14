r"""PDF attachments and e-mail bodies, read through a partner's text template.

A PDF order or an order typed into an e-mail does not say what each value is. The
``text:`` section of ``mappings/<partner>/email.yaml`` says where to look
(`mappings/examples/email_text.yaml` is a commented example)::

    text:
      fields:                          # a header field of the order -> how to find its value
        po_number: {labels: ["PO Number", "Purchase Order", "PO #"]}
        order_date: {labels: ["Order Date", "Date"], type: date}
        currency: {pattern: '(?i)\bcurrency\b\W*([A-Z]{3})\b'}
      blocks:                          # an address block -> a party of the order
        ship_to: {labels: ["Ship To", "Deliver To"], lines: 6}
      lines:                           # the table of order lines
        start: '(?i)^\s*item\b.*\bqty\b'          # its header line; rows follow it
        row: '^\s*(?P<sku>\S+)\s+(?P<description>.+?)\s+(?P<quantity>\d[\d.,]*)\s+(?:(?P<uom>[A-Z]{2,3})\s+)?(?P<unit_price>\d[\d.,]*)(?:\s+(?P<line_total>\d[\d.,]*))?\s*$'
        stop: '(?i)^\s*(sub)?total\b'             # the first line after the table
        total: '(?i)^\s*total\b\D*([\d.,]+)'      # the stated order total (cross-check)
        skip: ['(?i)^\s*page \d+ of \d+\s*$']    # lines inside the table to ignore

Everything is checked when the template is loaded: every regular expression compiles (the
error names the field), `row` has a ``quantity`` group and no group other than the line
fields (sku, buyer_part_number, gtin, description, quantity, uom, unit_price,
line_number) and ``line_total``, `pattern` and `total` have exactly one group, and every
field path is a real header field of the canonical order (with a "did you mean").

How a document is read
    Text is taken line by line. A *phrase* is a run of text with at most single spaces
    in it; two or more spaces (or a tab) separate phrases, as columns in a PDF or an
    aligned e-mail do. A label is found at the start of a phrase, case-insensitively,
    and its value is, in order of preference: the rest of that phrase after an optional
    ``:``/``#`` (``PO Number: 123``, ``PO # 123``); the next phrase on the line
    (``PO Number     123``); the phrase under the label on the next line, in the label's
    column (``PO Number`` above ``123``, a header row). Inside a labelled phrase, another
    configured label with a colon starts a new phrase (``PO: 1 Date: 2/3``). Dates go through
    `parse_date` (the template's `date_formats`, `day_first`), amounts through
    `parse_amount` (`decimal_comma`), currencies and e-mail addresses are checked. The
    first label that yields a usable value wins; the same label with a different value
    elsewhere in the document makes the value ambiguous (0.6, with a warning).

    A block (an address) is the label's line (what follows the label) and the lines
    under it, in the label's column, up to `lines` lines, a blank line, another label or
    the table. Its first line is the party's name, its middle lines address_lines; its
    last line, if it reads as ``City, ST 12345[-6789]`` (US), ``City, ON A1A 1A1``
    (Canada), ``12345 City`` / ``D-12345 City`` / ``1012 AB City`` (Europe) or ``City
    SW1A 1AA`` (UK), gives city, region and postal_code; a line that is a country name
    or ISO code gives country (as an ISO 3166 alpha-2 code).

    The line table starts after the first line matching `start` (without `start`, every
    line matching `row` is a line item) and ends at a line matching `stop` (or a blank
    line, with `ends_at_blank_line`). Inside it, each non-blank line must match `row`,
    `continuation` (more description for the row above) or `skip`; any other line is
    reported as a warning and puts the order in review (see below), so a row the
    pattern misses never silently drops an item. When a PDF page ends inside the
    table, the table goes on at the top of the next page, or after the header line if
    the next page repeats it (then what comes before it, a repeated letterhead, is
    not part of the table).

The message body (Channel.EMAIL)
    Reading stops at the first line that starts what the buyer did not write now, so an
    earlier order quoted below a reply is never ordered again: a line starting with
    ``>``; ``On <date>, <someone> wrote:`` (also over two lines, and Am/Le/El ... schrieb/a
    écrit/escribió); ``-----Original Message-----``; an Outlook header (``From:`` with
    ``Sent:``/``Date:`` and ``Subject:`` in the next five lines); the signature
    delimiter ``-- ``. A warning says where. An order forwarded inline is cut the same
    way (forward it as an attachment); a false stop only loses fields (the order is
    quarantined as EXTRACT_NO_PO/NO_LINES), a missed one could order twice.

Confidence (see `gateway.extract.base`)
    base          1.0 for the message body; 0.9 for a PDF (its text layer has no reading
                  order; positions come from layout)
    labels        the first label: base; another label, or a value under the label (not
                  beside it): base - 0.1 for the body (0.9, the guide's "alternative
                  label"), base - 0.05 for a PDF (0.85, already at the layout cap)
    values        never above what `parse_amount`/`parse_date` say (1,234 -> 0.6)
    blocks        lines as labels; city, region, postal code and country 0.8 at most
                  (parsed by a heuristic)
    cross-checks  quantity x unit price != the row's line total: that line's quantity and
                  unit price 0.5; lines do not add up to the stated subtotal (or total):
                  that total 0.5 and every unit price 0.6. A row whose line total
                  confirms a reading of an ambiguous 1,000 raises it from 0.6 to 0.8.
    unread rows   a table line that matches no pattern, an image-only page in a PDF, or a
                  document cut at the line limit: 0.5 on the key ``lines`` (there is no
                  value to hang it on), with the place as its provenance.

Limits (so a template's regular expressions cannot run away on hostile text)
    A line is cut at 2,000 characters and a document at 5,000 lines (both with a
    warning), and the patterns see each line with every run of three or more spaces
    shortened to two: columns stay two spaces apart (``\s{2,}`` separates them),
    indentation shows as two leading spaces. Python's `re` has no timeout; without the
    shortening, a row pattern such as the example's (``\s+(?P<description>.+?)\s+``) takes
    about 17 s on one line of 2,000 spaces (cubic backtracking), with it 0.25 ms. A
    pattern with nested quantifiers (``(a+)+``) can still be slow: keep them simple.
    Labels and blocks use the line as written (its columns). Measured with the example
    template, the worst hostile 10 MB body tried (5,000 lines of 2,000 characters) takes
    about 4 s. A PDF must be at most 10 MB and 50 pages.

The PDF text layer
    `pdf_text` uses pdfplumber's words (``extract_words``) and lays them out itself.
    Measured on the fixture: the default ``extract_text()`` keeps table rows on one line
    but joins everything on a line with single spaces, so side-by-side blocks (Bill To |
    Ship To) and label columns (``PO Number: 123 Vendor No: V-7``) merge and cannot be
    told apart; ``extract_text(layout=True)`` keeps the columns but maps lines onto a
    fixed 13 pt grid, which inserts blank lines that are not on the page (in a trial
    layout with a 14 pt line pitch, one inside the Ship To block, which ends the block)
    and stretches spaces inside phrases (``ACME  Retail``). Here words sharing a baseline make a line (rows stay whole),
    words closer than 0.8 em are one phrase (single spaces), a wider gap starts a new
    phrase at its column position (at least two spaces), and one blank line stands for
    a vertical gap taller than 0.8 of a line.

Reason codes (ExtractionError)
    EXTRACT_PDF_INVALID    not a PDF, or one the reader cannot parse
    EXTRACT_PDF_ENCRYPTED  the PDF needs a password
    EXTRACT_PDF_LIMIT      larger than 10 MB or more than 50 pages
    EXTRACT_NO_TEXT        no page has text (a scan: the gateway does not OCR)
    EXTRACT_NO_TEMPLATE    the template has no ``text:`` section
    EXTRACT_NO_PO          no PO number found (the labels or pattern tried are named)
    EXTRACT_NO_LINES       no line item found (what was tried is named)
    EXTRACT_INVALID        the values found do not make a valid order (`Draft.build`)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import io
import logging
import re
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.extract.base import Draft, Extraction, ExtractionError, Found, parse_amount, parse_date
from gateway.model import Channel, Order, Party

if TYPE_CHECKING:
    from gateway.extract.template import EmailTemplate

__all__ = [
    "LINE_FIELDS",
    "MAX_LINES",
    "MAX_LINE_CHARS",
    "MAX_PDF_BYTES",
    "MAX_PDF_PAGES",
    "PdfPages",
    "TextBlock",
    "TextField",
    "TextLines",
    "TextSpec",
    "extract_text",
    "pdf_text",
]

MAX_PDF_BYTES = 10 * 1024 * 1024
MAX_PDF_PAGES = 50
MAX_LINE_CHARS = 2_000
MAX_LINES = 5_000

#: Order line fields a `row` pattern may capture (plus ``line_total``, used to cross-check).
LINE_FIELDS = (
    "line_number",
    "sku",
    "buyer_part_number",
    "gtin",
    "description",
    "quantity",
    "uom",
    "unit_price",
)
_ROW_GROUPS = frozenset(LINE_FIELDS) | {"line_total"}
# Header fields the gateway sets itself, never a template.
_NOT_FROM_TEXT = frozenset({"channel", "partner", "source", "lines", "lines_are_changes"})

ValueType = Literal["text", "date", "amount", "integer"]


# --------------------------------------------------------------------------- template


def _compile(value: str) -> re.Pattern[str]:
    try:
        return re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc}): {value!r}") from exc


def _one_group(value: str) -> str:
    groups = _compile(value).groups
    if groups != 1:
        raise ValueError(
            f"the regular expression must have exactly one group (the value), it has {groups}: {value!r}"
        )
    return value


def _labels(value: list[str]) -> list[str]:
    cleaned = [" ".join(label.split()) for label in value]
    if any(not label for label in cleaned):
        raise ValueError("a label must not be empty")
    return cleaned


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TextField(_Spec):
    """How to find one header value: by labels, or by a regular expression."""

    labels: list[str] = Field(
        default_factory=list,
        description="Labels written before the value ('PO Number: 123', 'PO Number   123') or above it, most usual first; the first gives full confidence, the others a little less.",
    )
    pattern: str | None = Field(
        None,
        description="Instead of labels: a regular expression with exactly one group, searched in each line; the group is the value.",
    )
    type: ValueType | None = Field(
        None,
        description="text, date, amount or integer. Optional: the order field decides (order_date is a date, totals.total an amount); if given it must agree.",
    )

    _check_labels = field_validator("labels")(_labels)

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, value: str | None) -> str | None:
        return None if value is None else _one_group(value)

    @model_validator(mode="after")
    def _labels_or_pattern(self) -> TextField:
        if bool(self.labels) == bool(self.pattern):
            raise ValueError("give either labels or a pattern (exactly one of them)")
        return self


class TextBlock(_Spec):
    """An address block: its label, then the party's lines under it."""

    labels: list[str] = Field(
        min_length=1, description="Labels of the block ('Ship To', 'Deliver To'), most usual first."
    )
    lines: int = Field(
        6,
        ge=1,
        le=12,
        description="At most this many lines belong to the block (the label's own line counts if it has text after the label).",
    )

    _check_labels = field_validator("labels")(_labels)


class TextLines(_Spec):
    """Where the table of order lines is and how one row reads."""

    start: str | None = Field(
        None,
        description="Regular expression for the table's header line; rows follow it. Without it every line matching `row` is an item (and unreadable rows cannot be noticed).",
    )
    row: str = Field(
        description="Regular expression for one row, with named groups: quantity (required), sku, buyer_part_number, gtin, description, uom, unit_price, line_number, line_total.",
    )
    stop: str | None = Field(
        None,
        description="Regular expression for the first line after the table (a Subtotal or Total line).",
    )
    ends_at_blank_line: bool = Field(
        False,
        description="A blank line after the first row ends the table (for bodies whose table has no closing line).",
    )
    continuation: str | None = Field(
        None,
        description="Regular expression for a line that continues the description of the row above (its group `description`, or the whole line); an indented line starts with two spaces.",
    )
    skip: list[str] = Field(
        default_factory=list,
        description="Regular expressions for lines inside the table to ignore (page footers, repeated letterheads).",
    )
    total: str | None = Field(
        None,
        description="Regular expression with one group: the stated order total (sets totals.total and is checked against the lines).",
    )
    subtotal: str | None = Field(
        None,
        description="Regular expression with one group: the stated sum of the lines (sets totals.subtotal; checked instead of the total).",
    )

    @field_validator("start", "stop")
    @classmethod
    def _check_regex(cls, value: str | None) -> str | None:
        if value is not None:
            _compile(value)
        return value

    @field_validator("skip")
    @classmethod
    def _check_skip(cls, value: list[str]) -> list[str]:
        for item in value:
            _compile(item)
        return value

    @field_validator("total", "subtotal")
    @classmethod
    def _check_amount(cls, value: str | None) -> str | None:
        return None if value is None else _one_group(value)

    @field_validator("continuation")
    @classmethod
    def _check_continuation(cls, value: str | None) -> str | None:
        if value is not None:
            unknown = set(_compile(value).groupindex) - {"description"}
            if unknown:
                raise ValueError(
                    f"the only named group a continuation may have is 'description' (found {', '.join(sorted(unknown))})"
                )
        return value

    @field_validator("row")
    @classmethod
    def _check_row(cls, value: str) -> str:
        names = set(_compile(value).groupindex)
        unknown = sorted(names - _ROW_GROUPS)
        if unknown:
            hints = [
                f"{n!r} (did you mean {m!r}?)" if (m := _row_group_hint(n)) else repr(n)
                for n in unknown
            ]
            raise ValueError(
                f"unknown named group {', '.join(hints)} in the row pattern; the groups are "
                f"{', '.join(LINE_FIELDS)} and line_total"
            )
        if "quantity" not in names:
            raise ValueError("the row pattern needs a (?P<quantity>...) group")
        return value


_GROUP_ALIASES = {
    "qty": "quantity",
    "quantity_ordered": "quantity",
    "price": "unit_price",
    "unitprice": "unit_price",
    "item": "sku",
    "article": "sku",
    "part": "sku",
    "desc": "description",
    "unit": "uom",
    "total": "line_total",
    "amount": "line_total",
    "line": "line_number",
    "pos": "line_number",
    "ean": "gtin",
    "upc": "gtin",
    "bpn": "buyer_part_number",
    "buyer_part": "buyer_part_number",
}


def _row_group_hint(name: str) -> str | None:
    if name.lower() in _GROUP_ALIASES:
        return _GROUP_ALIASES[name.lower()]
    close = difflib.get_close_matches(name, _ROW_GROUPS, 1)
    return close[0] if close else None


class TextSpec(_Spec):
    """The ``text:`` section of a partner's e-mail template: PDF attachments and body text."""

    fields: dict[str, TextField] = Field(
        default_factory=dict,
        description="Header fields of the order by path (po_number, order_date, currency, customer_email, notes, totals.total, ship_to.code, ...) and how to find each.",
    )
    blocks: dict[str, TextBlock] = Field(
        default_factory=dict,
        description="Address blocks by party (ship_to, bill_to, buyer, seller) and their labels.",
    )
    lines: TextLines = Field(description="The table of order lines.")

    @model_validator(mode="after")
    def _check_paths(self) -> TextSpec:
        problems: list[str] = []
        for path, rule in self.fields.items():
            try:
                kind = _field_kind(path)
            except ValueError as exc:
                problems.append(f"fields.{path}: {exc}")
                continue
            expected = "text" if kind == "list" else kind
            if rule.type is not None and rule.type != expected:
                problems.append(
                    f"fields.{path}: the order field is {expected}, so type: {rule.type} does not fit"
                )
        for party in self.blocks:
            if party not in _PARTIES:
                hint = difflib.get_close_matches(party, _PARTIES, 1)
                problems.append(
                    f"blocks.{party}: not a party of the order ({', '.join(_PARTIES)})"
                    + (f"; did you mean {hint[0]!r}?" if hint else "")
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _field_kind(path: str) -> str:
    """What a header path of the order holds: text, date, amount, integer or list (of
    text). ValueError, saying why, when it is not a header value a template can fill."""
    model: type[BaseModel] = Order
    parts = path.split(".")
    if parts[0] in _NOT_FROM_TEXT:
        raise ValueError(f"{parts[0]} is set by the gateway, not read from the document")
    for n, part in enumerate(parts):
        info = model.model_fields.get(part)
        if info is None:
            hint = difflib.get_close_matches(part, list(model.model_fields), 1)
            where = "the order" if model is Order else f"{'.'.join(parts[:n])} ({model.__name__})"
            raise ValueError(
                f"{where} has no field {part!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
            )
        tp = _unwrap(info.annotation)
        last = n == len(parts) - 1
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if last:
                raise ValueError(
                    f"{path} is a group of fields; name one of them ({', '.join(list(tp.model_fields)[:6])}, ...)"
                )
            model = tp
            continue
        if not last:
            raise ValueError(f"{'.'.join(parts[: n + 1])} has no fields inside it")
        if tp is str:
            return "text"
        if tp is dt.date:
            return "date"
        if tp is Decimal:
            return "amount"
        if tp is int:
            return "integer"
        if get_origin(tp) is list and get_args(tp) == (str,):
            return "list"
        raise ValueError(
            f"{path} cannot be read from text (only text, dates, amounts, whole numbers and lists of text can)"
        )
    raise ValueError(
        f"{path}: not a field path"
    )  # pragma: no cover - the loop always returns or raises


_PARTIES = tuple(
    name for name, info in Order.model_fields.items() if _unwrap(info.annotation) is Party
)


# --------------------------------------------------------------------------- PDF


class PdfPages(list[str]):
    """What `pdf_text` read: the text of each page (a list of str), and what it noticed
    on the way, which `extract_text` turns into warnings and review flags."""

    def __init__(
        self, pages: list[str], *, reader_messages: list[str], unread_pages: list[int]
    ) -> None:
        super().__init__(pages)
        self.reader_messages = reader_messages  # pdfminer's own warnings, deduplicated
        self.unread_pages = unread_pages  # 1-based pages that are an image without text


class _ReaderLogs(logging.Filter):
    """Takes what pdfminer and pdfplumber log while this thread reads a PDF (it would
    otherwise reach the gateway's log, with fragments of the document in it) and keeps
    the warnings for the extraction. Installed once on their loggers and switched per
    thread, so concurrent readers neither see each other's records nor race on the
    loggers' filter lists; records logged outside `pdf_text` pass untouched."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    @contextlib.contextmanager
    def capture(self) -> Iterator[list[str]]:
        for name in list(logging.Logger.manager.loggerDict):
            if name.split(".")[0] in ("pdfminer", "pdfplumber"):
                logging.getLogger(name).addFilter(self)  # a no-op when it is there already
        messages: list[str] = []
        self.local.messages = messages
        try:
            yield messages
        finally:
            self.local.messages = None

    def filter(self, record: logging.LogRecord) -> bool:
        messages: list[str] | None = getattr(self.local, "messages", None)
        if messages is None:
            return True
        if record.levelno >= logging.WARNING:
            message = " ".join(record.getMessage().split())[:200]
            if message not in messages and len(messages) < 10:
                messages.append(message)
        return False


_READER_LOGS = _ReaderLogs()


def pdf_text(data: bytes, label: str) -> list[str]:
    """The text of each page of a PDF (one string per page, lines laid out so columns
    stay apart; see the module docstring). Returns a `PdfPages`.

    `label` is the attachment's display name, used in messages. ExtractionError:
    EXTRACT_PDF_LIMIT (over 10 MB or 50 pages), EXTRACT_PDF_INVALID, EXTRACT_PDF_ENCRYPTED,
    EXTRACT_NO_TEXT (no page has text: a scan).

    pdfminer reports problems by logging, not with Python warnings (its only
    ``warnings.warn`` calls are for deprecated arguments and annotations, which this does
    not touch); its records are captured (`_ReaderLogs`) and come back as
    `PdfPages.reader_messages`. ``warnings.catch_warnings`` is not used: it swaps
    process-wide state and is not safe with the service's worker threads.

    Bounded here: size and page count. Not bounded: CPU and memory inside pdfminer (a
    PDF can be built to make layout analysis slow), so hostile input belongs in a
    subprocess with limits (docs: reliability C2).
    """
    if len(data) > MAX_PDF_BYTES:
        raise ExtractionError(
            f"the PDF is {len(data) / 1_048_576:.1f} MB; the gateway reads PDFs up to {MAX_PDF_BYTES // 1_048_576} MB",
            reason="EXTRACT_PDF_LIMIT",
        )
    if b"%PDF-" not in data[:1024]:
        raise ExtractionError(
            f"{label} is not a PDF (it does not start with %PDF-)", reason="EXTRACT_PDF_INVALID"
        )
    with _READER_LOGS.capture() as messages:
        texts, unread = _read_pdf(data, label)
    if not any(t.strip() for t in texts):
        raise ExtractionError(
            f"{label} has no text layer: it looks like a scanned image, and the gateway does not OCR; "
            "ask the partner for a PDF with text, or enter the order by hand",
            reason="EXTRACT_NO_TEXT",
        )
    return PdfPages(texts, reader_messages=messages, unread_pages=unread)


def _read_pdf(data: bytes, label: str) -> tuple[list[str], list[int]]:
    """Each page's text ("" for a page without text) and the pages that are only images."""
    import pdfplumber
    from pdfminer.pdfpage import PDFPage

    # pdfminer raises many exception types on broken input (PSEOF, PDFSyntaxError,
    # KeyError, TypeError from a missing MediaBox, ...): any of them means "cannot read".
    try:
        pdf = pdfplumber.open(io.BytesIO(data))
    except Exception as exc:
        raise _pdf_error(exc, label) from exc
    texts: list[str] = []
    unread: list[int] = []
    try:
        try:
            count = sum(1 for _ in islice(PDFPage.create_pages(pdf.doc), MAX_PDF_PAGES + 1))
            pages = pdf.pages if count <= MAX_PDF_PAGES else []
        except Exception as exc:
            raise _pdf_error(exc, label) from exc
        if count > MAX_PDF_PAGES:
            raise ExtractionError(
                f"{label} has more than {MAX_PDF_PAGES} pages; the gateway reads order PDFs up to {MAX_PDF_PAGES} pages",
                reason="EXTRACT_PDF_LIMIT",
            )
        for number, page in enumerate(pages, 1):
            try:
                lines, readable = _layout(page)
                if not readable and page.images:
                    unread.append(number)
            except Exception as exc:
                raise _pdf_error(exc, label, f"page {number}") from exc
            finally:
                page.close()
            texts.append("\n".join(lines))
    finally:
        # Not pdf.close(): it walks every page of the document (all of them, even past the
        # page limit) and raises again on a broken page tree. The pages read were closed
        # one by one above; this drops the document's caches and closes its stream.
        pdf.flush_cache()
        pdf.stream.close()
    return texts, unread


def _pdf_error(exc: BaseException, label: str, position: str | None = None) -> ExtractionError:
    from pdfminer.pdfdocument import PDFEncryptionError
    from pdfplumber.utils.exceptions import PdfminerException

    cause = (
        exc.args[0]
        if isinstance(exc, PdfminerException)
        and exc.args
        and isinstance(exc.args[0], BaseException)
        else exc
    )
    if isinstance(cause, PDFEncryptionError):
        return ExtractionError(
            f"{label} is encrypted and needs a password to open; ask the partner to send it without a password",
            reason="EXTRACT_PDF_ENCRYPTED",
        )
    detail = " ".join(str(cause).split())[:160] or type(cause).__name__
    return ExtractionError(
        f"{label} cannot be read as a PDF ({detail})",
        reason="EXTRACT_PDF_INVALID",
        position=position,
    )


def _layout(page: Any) -> tuple[list[str], bool]:
    """A page's lines, and whether it has readable text (glyphs without a character
    mapping come out as ``(cid:12)``; a page of mostly those is unreadable)."""
    words = [
        w
        for w in page.extract_words(
            x_tolerance=3,
            y_tolerance=3,
            keep_blank_chars=False,
            use_text_flow=False,
            extra_attrs=["size"],
        )
        if str(w["text"]).strip()
    ]
    if not words or sum("(cid:" in str(w["text"]) for w in words) * 2 > len(words):
        return [], False
    widths = sorted(
        float(c["width"]) for c in page.chars if str(c["text"]).strip() and float(c["width"]) > 0
    )
    char_width = max(1.0, 0.9 * widths[len(widths) // 2]) if widths else 5.0
    left = min(float(w["x0"]) for w in words)
    words.sort(key=lambda w: (float(w["top"]), float(w["x0"])))
    rows: list[list[dict[str, Any]]] = []
    bounds: list[tuple[float, float]] = []
    for w in words:
        middle = (float(w["top"]) + float(w["bottom"])) / 2
        if rows and bounds[-1][0] <= middle <= bounds[-1][1]:
            rows[-1].append(w)
        else:
            rows.append([w])
            bounds.append((float(w["top"]), float(w["bottom"])))
    out: list[str] = []
    previous: tuple[float, float] | None = None
    for row, (top, bottom) in zip(rows, bounds, strict=True):
        height = max(bottom - top, 1.0)
        if previous is not None and top - previous[0] > 0.8 * min(height, previous[1]):
            out.append("")
        previous = (bottom, height)
        text = ""
        end: float | None = None
        for w in sorted(row, key=lambda w: float(w["x0"])):
            x0 = float(w["x0"])
            column = round((x0 - left) / char_width)
            size = float(w.get("size") or height)
            if end is None:
                text = " " * column + str(w["text"])
            elif x0 - end < 0.8 * size:  # a space is 0.25-0.6 em (Times to Courier)
                text += " " + str(w["text"])
            else:
                text += " " * max(2, column - len(text)) + str(w["text"])
            end = float(w["x1"])
        out.append(text)
    return out, True


# --------------------------------------------------------------------------- text


_PHRASE = re.compile(r"[^ ]+(?: [^ ]+)*")
_WHITESPACE = re.compile(r"\s")
_LONG_SPACE = re.compile(r" {3,}")
_SEPARATOR = re.compile(r"\s*[:#=\uff1a]?\s*")
_COLUMN_SLACK = 3  # characters a column may wander between lines
_MAX_PLACES = 100  # places a label is looked at to tell whether its value is ambiguous
_MAX_ROW_WARNINGS = 20  # unread table lines named one by one; the rest are counted
_QUOTE_VERB = re.compile(r"(?i)\b(?:wrote|schrieb|a\s+écrit|escribió|schreef|ha\s+scritto)\b")
_QUOTE_START = re.compile(r"^\s*(?:on|am|le|el|op|il)\s", re.IGNORECASE)
_ORIGINAL = re.compile(
    r"^\s*-{2,}\s*(?:original message|ursprüngliche nachricht|message d'origine)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_OUTLOOK_FROM = re.compile(r"^\s*(?:from|von|de):\s+\S", re.IGNORECASE)
_OUTLOOK_SENT = re.compile(r"^\s*(?:sent|date|gesendet|datum|envoyé):\s+\S", re.IGNORECASE)
_OUTLOOK_SUBJECT = re.compile(r"^\s*(?:subject|betreff|objet):", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+'-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")  # bounded: no runaway
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
_SYMBOLS = {
    "€": ("EUR", 0.8),
    "£": ("GBP", 0.8),
    "$": ("USD", 0.6),
    "US$": ("USD", 0.8),
    "¥": ("JPY", 0.6),
}


@dataclass(frozen=True, slots=True)
class _Line:
    page: int
    number: int
    text: str  # what the template's patterns see: runs of 3+ spaces shortened to two
    phrases: tuple[tuple[int, str], ...]  # (column, text) in the line as written


def _expand_tabs(text: str) -> str:
    """Tabs to spaces at 8-column stops, at least two (a tab always separates phrases)."""
    if "\t" not in text:
        return text
    parts = text.split("\t")
    out = parts[0]
    for part in parts[1:]:
        width = 8 - len(out) % 8
        out += " " * (width if width >= 2 else width + 8) + part
    return out


def _wrote(text: str) -> bool:
    """'On <date>, <someone> wrote:' (or schrieb, a écrit, ...) ends the line."""
    return text.rstrip().endswith(":") and _QUOTE_VERB.search(text) is not None


def _quote_marker(raw: list[str], i: int) -> str | None:
    """Why the body ends at line `i` (a quoted earlier message or the signature), or None."""
    line = raw[i]
    if line.rstrip("\r") in ("-- ", "--"):
        return "the signature ('-- ')"
    if line.lstrip().startswith(">"):
        return "a quoted earlier message ('>')"
    if _ORIGINAL.match(line):
        return "a quoted earlier message ('Original Message')"
    nxt = raw[i + 1] if i + 1 < len(raw) else ""
    if _QUOTE_START.match(line) and (_wrote(line) or _wrote(f"{line.rstrip()} {nxt.strip()}")):
        return "a quoted earlier message ('... wrote:')"
    header = raw[i + 1 : i + 6]
    if (
        _OUTLOOK_FROM.match(line)
        and any(_OUTLOOK_SENT.match(x) for x in header)
        and any(_OUTLOOK_SUBJECT.match(x) for x in header)
    ):
        return "a quoted earlier message (a 'From: / Sent:' header)"
    return None


@dataclass(slots=True)
class _Row:
    index: int
    last: int
    texts: dict[str, str]
    quantity: Decimal
    quantity_confidence: float
    unit_price: Decimal | None = None
    unit_price_confidence: float = 1.0
    line_total: Decimal | None = None


@dataclass(slots=True)
class _Table:
    rows: list[_Row] = field(default_factory=list)
    region: set[int] = field(default_factory=set)
    header: int | None = None
    unmatched: list[int] = field(default_factory=list)


def extract_text(
    pages: list[str], label: str, template: EmailTemplate, channel: Channel
) -> Extraction:
    """The order in `pages` (one string per PDF page, or ``[body]``), read with the
    template's ``text:`` section.

    `label` starts every provenance string: ``attachment po.pdf`` (then ``, page 1, line
    12 (label 'PO Number')``) or ``message body`` (``, line 4``). `channel` is Channel.PDF
    for a PDF (confidence at most 0.9, pages are named) or Channel.EMAIL for a body (it
    ends at a quoted earlier message or the signature). Given a `PdfPages`, the PDF
    reader's messages become warnings and image-only pages a review flag.
    """
    if template.text is None:
        raise ExtractionError(
            "the partner's e-mail template has no text: section", reason="EXTRACT_NO_TEMPLATE"
        )
    return _Reader(pages, label, template, template.text, channel).read()


class _Reader:
    def __init__(
        self,
        pages: list[str],
        label: str,
        template: EmailTemplate,
        spec: TextSpec,
        channel: Channel,
    ) -> None:
        self.label = label
        self.template = template
        self.spec = spec
        self.pdf = channel is Channel.PDF
        self.base = 0.9 if self.pdf else 1.0
        self.paged = self.pdf or len(pages) > 1
        self.draft = Draft(channel)
        self.gaps: list[str] = []  # places where order lines may have been missed
        self.lines = self._prepare(pages, body=channel is Channel.EMAIL)
        labels = [lab for rule in spec.fields.values() for lab in rule.labels]
        labels += [lab for block in spec.blocks.values() for lab in block.labels]
        self.label_res = {lab: _label_re(lab) for lab in labels}
        alternatives = "|".join(
            r"\s*".join(re.escape(w) for w in lab.split())
            for lab in sorted(self.label_res, key=len, reverse=True)
        )
        # "PO: 1 Date: 2/3": a configured label with a colon inside a labelled phrase starts a new phrase.
        self.next_label = (
            re.compile(rf"(?i)(?<=[\s,;])(?=(?:{alternatives})\s*[:\uff1a])")
            if alternatives
            else None
        )
        # Any label at the start of a phrase, the longest first (Python takes the first alternative).
        self.any_label = (
            re.compile(rf"(?i)(?:{alternatives})(?!(?<=\w)\w)") if alternatives else None
        )
        if self.next_label is not None:
            self.lines = [self._split(line) for line in self.lines]
        lines_spec = spec.lines
        self.start = re.compile(lines_spec.start) if lines_spec.start else None
        if isinstance(pages, PdfPages):
            for message in pages.reader_messages:
                self.draft.warnings.append(f"{label}: the PDF reader reported: {message}")
            for number in pages.unread_pages:
                where = f"{label}, page {number}"
                self.draft.warnings.append(
                    f"{where} is an image without text; anything on it (order lines too) was not read"
                )
                self.gaps.append(f"{where} (an image without text)")

    # -- input

    def _prepare(self, pages: list[str], *, body: bool) -> list[_Line]:
        out: list[_Line] = []
        cut = 0
        for p, page in enumerate(pages, 1):
            # Cut before anything else looks at a line (one past the limit, to notice the cut).
            raw = [line[: MAX_LINE_CHARS + 1] for line in page.splitlines()]
            for n, text in enumerate(raw, 1):
                if body:
                    marker = _quote_marker(raw, n - 1)
                    if marker is not None:
                        self.draft.warnings.append(
                            f"{self.label}: read up to line {n - 1}; from line {n} on is {marker}, which was not read"
                        )
                        return out
                if len(out) >= MAX_LINES:
                    self.draft.warnings.append(
                        f"{self.label}: only the first {MAX_LINES} lines were read (the limit); the rest was ignored"
                    )
                    self.gaps.append(f"{self._at(p, n)} (the {MAX_LINES}-line limit)")
                    return out
                text = _expand_tabs(text.rstrip())
                if len(text) > MAX_LINE_CHARS:
                    text = text[:MAX_LINE_CHARS]
                    cut += 1
                    if cut == 1:
                        self.draft.warnings.append(
                            f"{self._at(p, n)}: longer than {MAX_LINE_CHARS} characters; cut there"
                        )
                text = _WHITESPACE.sub(" ", text)
                phrases = tuple((m.start(), m.group()) for m in _PHRASE.finditer(text))
                out.append(_Line(p, n, _LONG_SPACE.sub("  ", text), phrases))
        return out

    def _at(self, page: int, number: int) -> str:
        return (
            f"{self.label}, page {page}, line {number}"
            if self.paged
            else f"{self.label}, line {number}"
        )

    def where(self, i: int, note: str | None = None) -> str:
        line = self.lines[i]
        at = self._at(line.page, line.number)
        return f"{at} ({note})" if note else at

    def span(self, first: int, last: int, note: str) -> str:
        a, b = self.lines[first], self.lines[last]
        if first == last:
            return self.where(first, note)
        at = f"{self.label}, page {a.page}, lines" if self.paged else f"{self.label}, lines"
        return f"{at} {a.number}-{b.number} ({note})"

    def _split(self, line: _Line) -> _Line:
        """Line with its labelled phrases split where another label and a colon follow."""
        assert self.next_label is not None
        phrases: list[tuple[int, str]] = []
        for start, phrase in line.phrases:
            while (head := self._label_end(phrase)) and (m := self.next_label.search(phrase, head)):
                phrases.append((start, phrase[: m.start()].rstrip(" ,;")))
                start, phrase = start + m.start(), phrase[m.start() :]
            phrases.append((start, phrase))
        return (
            _Line(line.page, line.number, line.text, tuple(phrases))
            if len(phrases) > len(line.phrases)
            else line
        )

    def _label_end(self, phrase: str) -> int:
        """Where the longest configured label at the start of `phrase` ends (0: none)."""
        m = self.any_label.match(phrase) if self.any_label is not None else None
        return m.end() if m else 0

    def is_label(self, text: str) -> bool:
        return self._label_end(text) > 0

    # -- the whole document

    def read(self) -> Extraction:
        table = self._table()
        for party, block in self.spec.blocks.items():
            self._block(party, block, table.region)
        for path, rule in self.spec.fields.items():
            self._field(path, rule, table.region)
        if "currency" not in self.draft.fields and self.template.currency:
            self.draft.set(
                "currency",
                self.template.currency.upper(),
                f"the template (currency: {self.template.currency})",
                1.0,
            )
        self._stated_totals(table)
        self._check(table)
        if len(table.unmatched) > _MAX_ROW_WARNINGS:
            self.draft.warnings.append(
                f"{self.label}: {len(table.unmatched) - _MAX_ROW_WARNINGS} more lines of the order table were not read"
            )
        self._require(table)
        for row in table.rows:
            self.draft.add_line(self._found(row))
        extraction = self.draft.build()
        if self.gaps:
            more = f" and {len(self.gaps) - 1} more" if len(self.gaps) > 1 else ""
            extraction.confidence["lines"] = 0.5
            extraction.provenance["lines"] = f"{self.gaps[0]}{more}: order lines may be missing"
        return extraction

    # -- header fields

    def _field(self, path: str, rule: TextField, region: set[int]) -> None:
        kind = _field_kind(path)
        found: list[tuple[Any, str, float]] = []

        def enough() -> bool:
            """Enough places seen: a list takes every value; a single value only needs
            to know whether another place disagrees."""
            if len(found) >= _MAX_PLACES:
                return True
            return kind != "list" and bool(found) and found[-1][0] != found[0][0]

        if rule.pattern:
            pattern = re.compile(rule.pattern)
            for i, line in enumerate(self.lines):
                if i in region:
                    continue
                m = pattern.search(line.text)
                if m and m.group(1):
                    got = self._convert(kind, path, m.group(1))
                    if got is not None:
                        found.append((got[0], self.where(i, "pattern"), min(self.base, got[1])))
                        if enough():
                            break
        else:
            for rank, lab in enumerate(rule.labels):
                level = self.base if rank == 0 else self._less(self.base)
                for candidates in self._labelled(lab, level, region):
                    for value, where, confidence in candidates:
                        got = self._convert(kind, path, value)
                        if got is not None:
                            found.append((got[0], where, min(confidence, got[1])))
                            break  # one value per place the label is written
                    if enough():
                        break
                if found:
                    break
        if not found:
            return
        if kind == "list":  # notes: every distinct value, in document order
            values = list(dict.fromkeys(v for v, _, _ in found))
            more = f" and {len(found) - 1} more" if len(found) > 1 else ""
            self.draft.set(path, values, found[0][1] + more, min(c for _, _, c in found))
            return
        value, where, confidence = found[0]
        others = [(v, w) for v, w, _ in found[1:] if v != value]
        if others:
            confidence = min(confidence, 0.6)
            self.draft.warnings.append(
                f"{path}: {_show(value)} at {where}, but {_show(others[0][0])} at {others[0][1]}; the first was taken"
            )
        self.draft.set(path, value, where, confidence)

    def _less(self, level: float) -> float:
        """A notch less sure: an alternative label, or a value under its label."""
        return round(level - (0.05 if self.pdf else 0.1), 2)

    def _labelled(
        self, lab: str, level: float, region: set[int]
    ) -> Iterator[Iterator[tuple[str, str, float]]]:
        """For each place the label is written: the candidate values there, best first."""
        matcher = self.label_res[lab]
        for i, line in enumerate(self.lines):
            if i in region:
                continue
            for k, (_, phrase) in enumerate(line.phrases):
                m = matcher.match(phrase)
                if m and not self._longer_label(phrase, m.end()):
                    yield self._candidates(i, k, m.end(), lab, level, region)

    def _longer_label(self, phrase: str, end: int) -> bool:
        """Another configured label reads further into the phrase ('PO' in 'PO Number: 1')."""
        return self._label_end(phrase) > end

    def _candidates(
        self, i: int, k: int, end: int, lab: str, level: float, region: set[int]
    ) -> Iterator[tuple[str, str, float]]:
        line = self.lines[i]
        rest = _after_label(line.phrases[k][1], end)
        note = f"label '{lab}'"
        if rest:
            yield rest, self.where(i, note), level
            return
        if k + 1 < len(line.phrases) and not self.is_label(line.phrases[k + 1][1]):
            yield line.phrases[k + 1][1], self.where(i, note), level
        below = self._column_text(i + 1, i, k, region)
        if below is not None:
            yield (
                below,
                self.where(i + 1, f"under label '{lab}' on line {line.number}"),
                self._less(level),
            )

    def _columns(self, i: int, k: int) -> tuple[int, int | None]:
        """The column (first, end) of phrase k on line i; end is where the next phrase
        starts (None: to the end of the line)."""
        phrases = self.lines[i].phrases
        first = phrases[k][0] - _COLUMN_SLACK if k > 0 else -1
        end = phrases[k + 1][0] - _COLUMN_SLACK if k + 1 < len(phrases) else None
        return first, end

    def _column_text(
        self,
        j: int,
        i: int,
        k: int,
        region: set[int],
        columns: tuple[int, int | None] | None = None,
    ) -> str | None:
        """Line j's text in the column of phrase k on line i (same page), or None."""
        if j >= len(self.lines) or j in region or self.lines[j].page != self.lines[i].page:
            return None
        first, end = columns or self._columns(i, k)
        parts = [p for s, p in self.lines[j].phrases if s >= first and (end is None or s < end)]
        if not parts or self.is_label(parts[0]):
            return None
        return " ".join(parts)

    def _convert(self, kind: str, path: str, raw: str) -> tuple[Any, float] | None:
        text = raw.strip().rstrip(",;")
        if re.search(r"\d\.$", text):
            text = text[:-1]
        if not text:
            return None
        if kind in ("text", "list"):
            if path == "currency":
                return _currency(text)
            if path.endswith("email"):
                m = _EMAIL.search(text)
                return None if m is None else (m.group(), 1.0 if m.group() == text else 0.8)
            return text, 1.0
        if kind == "date":
            got = parse_date(
                text, formats=self.template.date_formats, day_first=self.template.day_first
            )
            if got is None and len(text.split()) > 1:
                first = parse_date(
                    text.split()[0],
                    formats=self.template.date_formats,
                    day_first=self.template.day_first,
                )
                got = None if first is None else (first[0], min(first[1], 0.8))
            return got
        got_amount = parse_amount(text, decimal_comma=self.template.decimal_comma)
        if got_amount is None and len(text.split()) > 1:
            first_amount = parse_amount(text.split()[0], decimal_comma=self.template.decimal_comma)
            got_amount = (
                None if first_amount is None else (first_amount[0], min(first_amount[1], 0.8))
            )
        if got_amount is None:
            return None
        if kind == "integer":
            number = got_amount[0]
            return (int(number), got_amount[1]) if number == number.to_integral_value() else None
        return got_amount

    # -- address blocks

    def _block(self, party: str, block: TextBlock, region: set[int]) -> None:
        for rank, lab in enumerate(block.labels):
            level = self.base if rank == 0 else self._less(self.base)
            matcher = self.label_res[lab]
            for i, line in enumerate(self.lines):
                if i in region:
                    continue
                for k, (_, phrase) in enumerate(line.phrases):
                    m = matcher.match(phrase)
                    if m and not self._longer_label(phrase, m.end()):
                        taken = self._block_lines(i, k, m.end(), block.lines, region)
                        if taken:
                            self._party(party, lab, taken, level)
                            return

    def _block_lines(
        self, i: int, k: int, end: int, limit: int, region: set[int]
    ) -> list[tuple[str, int]]:
        line = self.lines[i]
        taken: list[tuple[str, int]] = []
        rest = _after_label(line.phrases[k][1], end)
        column_end = k
        if rest:
            taken.append((rest, i))
        elif k + 1 < len(line.phrases) and not self.is_label(line.phrases[k + 1][1]):
            taken.append((line.phrases[k + 1][1], i))
            column_end = k + 1
        first = line.phrases[k][0] - _COLUMN_SLACK if k > 0 else -1
        end_col = (
            line.phrases[column_end + 1][0] - _COLUMN_SLACK
            if column_end + 1 < len(line.phrases)
            else None
        )
        j = i + 1
        while len(taken) < limit:
            if (
                j < len(self.lines)
                and self.start is not None
                and self.start.search(self.lines[j].text)
            ):
                break
            text = self._column_text(j, i, k, region, (first, end_col))
            if text is None:
                break
            taken.append((text, j))
            j += 1
        return taken

    def _party(self, party: str, lab: str, taken: list[tuple[str, int]], level: float) -> None:
        note = f"block '{lab}'"
        parsed_level = min(level, 0.8)
        texts = [t for t, _ in taken]
        rows = [j for _, j in taken]
        if len(texts) > 1:
            code = _country(texts[-1])
            if code is not None:
                self.draft.set(
                    f"{party}.country", code, self.where(rows[-1], f"{note}, country"), parsed_level
                )
                texts.pop()
                rows.pop()
        if len(texts) > 1:
            place = _city_line(texts[-1])
            if place is not None:
                for key, value in place.items():
                    if key == "country":
                        if f"{party}.country" not in self.draft.fields:
                            self.draft.set(
                                f"{party}.country",
                                value,
                                self.where(rows[-1], f"{note}, country"),
                                parsed_level,
                            )
                    else:
                        self.draft.set(
                            f"{party}.{key}",
                            value,
                            self.where(rows[-1], f"{note}, {key}"),
                            parsed_level,
                        )
                texts.pop()
                rows.pop()
        self.draft.set(f"{party}.name", texts[0], self.where(rows[0], note), level)
        if len(texts) > 1:
            self.draft.set(
                f"{party}.address_lines", texts[1:], self.span(rows[1], rows[-1], note), level
            )

    # -- the line table

    def _table(self) -> _Table:
        spec = self.spec.lines
        row_re = re.compile(spec.row)
        stop = re.compile(spec.stop) if spec.stop else None
        cont = re.compile(spec.continuation) if spec.continuation else None
        skips = [re.compile(s) for s in spec.skip]
        start = self.start
        pages_with_header = {
            line.page for line in self.lines if start is not None and start.search(line.text)
        }
        table = _Table()
        inside = False
        page = 0
        for i, line in enumerate(self.lines):
            if line.page != page:
                page = line.page
                if inside and page in pages_with_header:
                    inside = False  # the table goes on after this page's header
            text = line.text
            if not inside:
                if start is None:
                    m = row_re.search(text) if text.strip() else None
                    if m:
                        self._row(table, i, m)
                elif start.search(text):
                    inside = True
                    table.region.add(i)
                    if table.header is None:
                        table.header = i
                continue
            if stop is not None and stop.search(text):
                inside = False
                continue
            table.region.add(i)
            if not text.strip():
                if spec.ends_at_blank_line and table.rows:
                    inside = False
                continue
            if any(s.search(text) for s in skips) or (start is not None and start.search(text)):
                continue
            m = row_re.search(text)
            if m:
                self._row(table, i, m)
            elif cont is not None and table.rows and (c := cont.search(text)):
                extra = (c.groupdict().get("description") or c.group()).strip()
                row = table.rows[-1]
                row.texts["description"] = f"{row.texts.get('description', '')} {extra}".strip()
                row.last = i
            else:
                self._unmatched(table, i, "does not match the row pattern")
        return table

    def _unmatched(self, table: _Table, i: int, why: str) -> None:
        table.unmatched.append(i)
        self.gaps.append(f"{self.where(i)} (a table line that was not read)")
        if len(table.unmatched) <= _MAX_ROW_WARNINGS:
            text = " ".join(self.lines[i].text.split())
            self.draft.warnings.append(
                f"{self.where(i)}: a line of the order table {why}, so it was not read: {_show(text, 80)}"
            )

    def _row(self, table: _Table, i: int, m: re.Match[str]) -> None:
        texts = {k: " ".join(v.split()) for k, v in m.groupdict().items() if v and v.strip()}
        dc = self.template.decimal_comma
        quantity = parse_amount(texts.get("quantity", ""), decimal_comma=dc)
        if quantity is None:
            self._unmatched(
                table, i, f"has no readable quantity ({texts.get('quantity', 'none')!r})"
            )
            return
        row = _Row(i, i, texts, quantity[0], quantity[1])
        for name in ("unit_price", "line_total"):
            if name in texts:
                got = parse_amount(texts[name], decimal_comma=dc)
                if got is None:
                    self._unmatched(
                        table, i, f"has an unreadable {name.replace('_', ' ')} ({texts[name]!r})"
                    )
                    return
                if name == "unit_price":
                    row.unit_price, row.unit_price_confidence = got
                else:
                    row.line_total = got[0]
        table.rows.append(row)
        table.region.add(i)

    def _found(self, row: _Row) -> dict[str, Found]:
        out: dict[str, Found] = {}
        for name in LINE_FIELDS:
            if name not in row.texts:
                continue
            where = self.where(row.index, f"row, {name}")
            if name == "quantity":
                out[name] = Found(row.quantity, where, min(self.base, row.quantity_confidence))
            elif name == "unit_price":
                out[name] = Found(row.unit_price, where, min(self.base, row.unit_price_confidence))
            elif name == "description" and row.last != row.index:
                out[name] = Found(
                    row.texts[name], self.span(row.index, row.last, "row, description"), self.base
                )
            else:
                out[name] = Found(row.texts[name], where, self.base)
        return out

    # -- totals and cross-checks

    def _stated_totals(self, table: _Table) -> None:
        rows = {r.index for r in table.rows}
        for path, pattern in (
            ("totals.total", self.spec.lines.total),
            ("totals.subtotal", self.spec.lines.subtotal),
        ):
            if pattern is None or path in self.draft.fields:
                continue
            regex = re.compile(pattern)
            for i, line in enumerate(self.lines):
                m = regex.search(line.text) if i not in rows else None
                if m and m.group(1):
                    got = parse_amount(m.group(1), decimal_comma=self.template.decimal_comma)
                    if got is not None:
                        self.draft.set(
                            path, got[0], self.where(i, path.split(".")[1]), min(self.base, got[1])
                        )
                        break

    def _check(self, table: _Table) -> None:
        dc = self.template.decimal_comma
        for row in table.rows:
            if row.line_total is None or row.unit_price is None:
                continue
            readings = {
                name: _readings(row.texts[name], dc)
                for name in ("quantity", "unit_price", "line_total")
            }
            if _close(row.quantity * row.unit_price, row.line_total):
                combos = [
                    (q, p, t)
                    for q in readings["quantity"]
                    for p in readings["unit_price"]
                    for t in readings["line_total"]
                    if _close(q * p, t)
                ]
                if len(combos) == 1:  # the line total settles an ambiguous 1,000
                    if len(readings["quantity"]) > 1:
                        row.quantity_confidence = max(row.quantity_confidence, 0.8)
                    if len(readings["unit_price"]) > 1:
                        row.unit_price_confidence = max(row.unit_price_confidence, 0.8)
                continue
            row.quantity_confidence = min(row.quantity_confidence, 0.5)
            row.unit_price_confidence = min(row.unit_price_confidence, 0.5)
            hint = ""
            if any(
                _close(q * p, t)
                for q in readings["quantity"]
                for p in readings["unit_price"]
                for t in readings["line_total"]
            ):
                hint = " (read with the other decimal mark it would add up: check the template's decimal_comma)"
            self.draft.warnings.append(
                f"{self.where(row.index)}: {_num(row.quantity)} x {_num(row.unit_price)} = {_num(row.quantity * row.unit_price)}, "
                f"but the line says {_num(row.line_total)}{hint}; its quantity and unit price need checking"
            )
        path = "totals.subtotal" if "totals.subtotal" in self.draft.fields else "totals.total"
        stated = self.draft.fields.get(path)
        if stated is None or not table.rows:
            return
        if any(r.unit_price is None for r in table.rows):
            self.draft.warnings.append(
                f"{path} was not checked against the lines: not every line has a unit price"
            )
            return
        total = sum(
            (r.quantity * r.unit_price for r in table.rows if r.unit_price is not None), Decimal(0)
        )
        slack = max(Decimal("0.01"), Decimal("0.005") * len(table.rows))
        if abs(total - Decimal(stated.value)) <= slack:
            return
        self.draft.lower(path, 0.5)
        for row in table.rows:
            row.unit_price_confidence = min(row.unit_price_confidence, 0.6)
        self.draft.warnings.append(
            f"the {len(table.rows)} lines add up to {_num(total)}, but {path} is {_num(Decimal(stated.value))} "
            f"({stated.where}); the total and the unit prices need checking"
        )

    def _require(self, table: _Table) -> None:
        if "po_number" not in self.draft.fields:
            rule = self.spec.fields.get("po_number")
            if rule is None:
                tried = "the template's text.fields has no po_number"
            elif rule.labels:
                tried = "looked for the labels " + ", ".join(repr(lab) for lab in rule.labels)
            else:
                tried = f"searched each line for the pattern {rule.pattern!r}"
            raise ExtractionError(
                f"no PO number was found in the {_kind_of(self.label)} ({tried})",
                reason="EXTRACT_NO_PO",
            )
        if table.rows:
            return
        spec = self.spec.lines
        if spec.start is None:
            tried = f"no line matches the row pattern {spec.row!r}"
        elif table.header is None:
            tried = f"no line matches the table header pattern text.lines.start {spec.start!r}"
        else:
            tried = (
                f"the table header is at {self.where(table.header)}, but no line under it matches the row pattern "
                f"{spec.row!r}"
                + (
                    f" (the first: {_show(' '.join(self.lines[table.unmatched[0]].text.split()), 80)})"
                    if table.unmatched
                    else ""
                )
            )
        raise ExtractionError(
            f"no order lines were found in the {_kind_of(self.label)}: {tried}",
            reason="EXTRACT_NO_LINES",
        )


# --------------------------------------------------------------------------- helpers


def _label_re(label: str) -> re.Pattern[str]:
    """A label at the start of a phrase: case and spacing free, not the start of a longer word."""
    body = r"\s*".join(re.escape(w) for w in label.split())
    return re.compile(rf"(?i){body}(?!(?<=\w)\w)")


def _after_label(phrase: str, end: int) -> str:
    """What follows a label in its phrase, without the ':' or '#' between them."""
    rest = phrase[end:]
    m = _SEPARATOR.match(rest)
    return rest[m.end() :] if m else rest


def _kind_of(label: str) -> str:
    return "message body" if label == "message body" else "document"


def _show(value: Any, limit: int = 60) -> str:
    text = repr(
        value.isoformat()
        if isinstance(value, dt.date)
        else str(value)
        if isinstance(value, Decimal)
        else value
    )
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _num(value: Decimal) -> str:
    return format(value, "f")


def _close(a: Decimal, b: Decimal) -> bool:
    return abs(a - b) <= Decimal("0.01")


def _readings(text: str, decimal_comma: bool) -> set[Decimal]:
    """Every way `text` reads as a number (two for an ambiguous 1,000)."""
    out = set()
    for dc in (decimal_comma, not decimal_comma):
        got = parse_amount(text, decimal_comma=dc)
        if got is not None:
            out.add(got[0])
    return out


def _currency(text: str) -> tuple[str, float] | None:
    upper = text.upper()
    if _CURRENCY_CODE.fullmatch(upper):
        return upper, 1.0
    if upper in _SYMBOLS:
        return _SYMBOLS[upper]
    m = re.match(r"([A-Z]{3})\b", upper)
    return (m.group(1), 0.8) if m else None


# Address lines: the last line of a block, city and postal code (US, Canada, UK, Europe).
_PLACE_PATTERNS = [
    re.compile(
        r"^(?P<city>[^\d,]+?),?\s+(?P<region>[A-Z]{2})\.?,?\s+(?P<postal_code>\d{5}(?:-\d{4})?)$"
    ),
    re.compile(
        r"^(?P<city>[^\d,]+?),?\s+(?P<region>[A-Z]{2})\.?,?\s+(?P<postal_code>[A-Z]\d[A-Z] ?\d[A-Z]\d)$"
    ),
    re.compile(r"^(?P<city>[^\d,]+?),?\s+(?P<postal_code>[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2})$"),
    re.compile(r"^(?P<postal_code>[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}),?\s+(?P<city>[^\d,]+)$"),
    re.compile(
        r"^(?:[A-Z]{1,3} ?- ?)?(?P<postal_code>\d{4} ?[A-Z]{2}(?= )|\d{2}-\d{3}|\d{3} \d{2}|\d{4,5}),?\s+(?P<city>[^\d,][^\d]*)$"
    ),
]
_STREET = re.compile(
    r"(?i)\b(?:street|st|road|rd|avenue|ave|blvd|boulevard|lane|ln|drive|dr|way|pkwy|parkway|hwy|highway|suite|ste|"
    r"floor|unit|building|bldg|dock|box|postfach)\b|(?:stra(?:ss|ß)e|str\.|weg|gasse|platz|allee)\b"
)


def _city_line(text: str) -> dict[str, str] | None:
    """City, region, postal code (and a trailing country) from an address's last line."""
    line = " ".join(text.split()).rstrip(".")
    country: str | None = None
    head, sep, tail = line.rpartition(",")
    if sep and (code := _country(tail)) is not None:
        line, country = head.strip(), code
    for pattern in _PLACE_PATTERNS:
        m = pattern.match(line)
        if m and not _STREET.search(m.group("city")):
            place = {k: v.strip() for k, v in m.groupdict().items() if v}
            if country:
                place["country"] = country
            return place
    return None


_ISO2_CODES = (
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ "
    "CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR "
    "GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO "
    "JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR "
    "MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO "
    "RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV "
    "TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW"
)
_ISO2 = frozenset(_ISO2_CODES.split())
_COUNTRY_NAMES = {
    name: code
    for code, names in {
        "US": "united states|united states of america|usa|u.s.a.|u.s.",
        "CA": "canada|can",
        "MX": "mexico|méxico|mex",
        "GB": "united kingdom|great britain|england|scotland|wales|northern ireland|uk|u.k.|gbr",
        "IE": "ireland|irl",
        "DE": "germany|deutschland|deu|ger",
        "FR": "france|fra",
        "NL": "netherlands|the netherlands|nederland|holland|nld",
        "BE": "belgium|belgië|belgique|bel",
        "LU": "luxembourg|lux",
        "AT": "austria|österreich|aut",
        "CH": "switzerland|schweiz|suisse|svizzera|che",
        "IT": "italy|italia|ita",
        "ES": "spain|españa|esp",
        "PT": "portugal|prt",
        "DK": "denmark|danmark|dnk",
        "SE": "sweden|sverige|swe",
        "NO": "norway|norge|nor",
        "FI": "finland|suomi|fin",
        "IS": "iceland",
        "PL": "poland|polska|pol",
        "CZ": "czech republic|czechia|česko|cze",
        "SK": "slovakia|slovensko",
        "HU": "hungary|magyarország",
        "RO": "romania|românia",
        "BG": "bulgaria",
        "GR": "greece",
        "HR": "croatia|hrvatska",
        "SI": "slovenia|slovenija",
        "EE": "estonia",
        "LV": "latvia",
        "LT": "lithuania",
        "TR": "turkey|türkiye",
        "CN": "china|people's republic of china|prc",
        "HK": "hong kong",
        "TW": "taiwan",
        "JP": "japan",
        "KR": "south korea|korea|republic of korea",
        "IN": "india",
        "SG": "singapore",
        "AU": "australia|aus",
        "NZ": "new zealand",
        "BR": "brazil|brasil",
        "AR": "argentina",
        "CL": "chile",
        "CO": "colombia",
        "ZA": "south africa",
        "IL": "israel",
        "AE": "united arab emirates|uae",
        "SA": "saudi arabia",
    }.items()
    for name in names.split("|")
}


def _country(text: str) -> str | None:
    """An ISO 3166 alpha-2 code if `text` is just a country's name or code."""
    line = " ".join(text.split())
    if line.isupper() and line in _ISO2:
        return line
    if line == "UK":
        return "GB"
    return _COUNTRY_NAMES.get(line.casefold().rstrip("."), _COUNTRY_NAMES.get(line.casefold()))
