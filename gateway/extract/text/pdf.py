"""The PDF text layer: a PDF's pages as text laid out in columns (`pdf_text`), within the
limits (`MAX_PDF_BYTES`, `MAX_PDF_PAGES`), with the reader's own log noise filtered out. See
"The PDF text layer" in the package docstring (`gateway.extract.text`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from collections.abc import Iterator
from itertools import islice
from typing import Any

from gateway.extract.base import ExtractionError

MAX_PDF_BYTES = 10 * 1024 * 1024
MAX_PDF_PAGES = 50

# --------------------------------------------------------------------------- PDF


class PdfPages(list[str]):
    """What `pdf_text` read: the text of each page (a list of str), and what it noticed
    on the way, which `extract_text` turns into warnings and review flags."""

    def __init__(
        self,
        pages: list[str],
        *,
        reader_messages: list[str],
        unread_pages: list[int],
        ocr_lines: dict[int, dict[int, float]] | None = None,
    ) -> None:
        super().__init__(pages)
        self.reader_messages = reader_messages  # pdfminer's own warnings, deduplicated
        self.unread_pages = unread_pages  # 1-based pages that are an image without text
        # Pages read by OCR (`gateway.extract.text.ocr`): page -> line -> lowest word confidence (0-100).
        self.ocr_lines = ocr_lines or {}


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
        # A filter on a logger sees only records logged on it, not its children's, so every
        # reader module's logger must exist first: import them (lazily, once) before looking.
        import pdfminer.pdfinterp  # noqa: F401
        import pdfplumber  # noqa: F401

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
    ocr_lines: dict[int, dict[int, float]] = {}
    if unread:
        from gateway.extract.text.ocr import ocr_available, ocr_pages

        if ocr_available():  # scanned pages: read by OCR, each line with its confidence
            for number, (text, confidences) in ocr_pages(data, label, unread).items():
                texts[number - 1] = text
                ocr_lines[number] = confidences
            unread = [n for n in unread if not texts[n - 1].strip()]
    if not any(t.strip() for t in texts):
        from gateway.extract.text.ocr import ocr_available

        how = "OCR found no text on it" if ocr_available() else "this machine has no OCR (install Debian's tesseract-ocr)"
        raise ExtractionError(
            f"{label} has no text layer: it looks like a scanned image, and {how}; "
            "ask the partner for a PDF with text, or enter the order by hand",
            reason="EXTRACT_NO_TEXT",
        )
    return PdfPages(texts, reader_messages=messages, unread_pages=unread, ocr_lines=ocr_lines)


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
    return [text for text, _ in lay_out(words, char_width)], True


def lay_out(words: list[dict[str, Any]], char_width: float) -> list[tuple[str, list[dict[str, Any]]]]:
    """Lines of text from positioned words (x0, x1, top, bottom, text, size): words whose
    middles fall in one band make a line, a gap wider than a space keeps columns apart, and
    a vertical gap becomes an empty line. Each line comes with its words (none for a gap),
    so a caller can say what a line was read from (OCR confidences, `gateway.extract.text.ocr`)."""
    if not words:
        return []
    left = min(float(w["x0"]) for w in words)
    words = sorted(words, key=lambda w: (float(w["top"]), float(w["x0"])))
    rows: list[list[dict[str, Any]]] = []
    bounds: list[tuple[float, float]] = []
    for w in words:
        middle = (float(w["top"]) + float(w["bottom"])) / 2
        if rows and bounds[-1][0] <= middle <= bounds[-1][1]:
            rows[-1].append(w)
        else:
            rows.append([w])
            bounds.append((float(w["top"]), float(w["bottom"])))
    out: list[tuple[str, list[dict[str, Any]]]] = []
    previous: tuple[float, float] | None = None
    for row, (top, bottom) in zip(rows, bounds, strict=True):
        height = max(bottom - top, 1.0)
        if previous is not None and top - previous[0] > 0.8 * min(height, previous[1]):
            out.append(("", []))
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
        out.append((text, row))
    return out
