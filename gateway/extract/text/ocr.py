"""Scanned PDF orders: pages without a text layer read by OCR (Debian's tesseract, through
pytesseract), laid out like a text layer, each line with the OCR's confidence.

Runs where `pdf_text` runs: in the limited child process (`gateway.extract.isolate`), whose
memory and CPU limits tesseract inherits. Pages are rendered by pdfium (already there for
pdfplumber) at `DPI` in grey, and tesseract's words (position, text, confidence 0-100) go
through the same layout as a text layer's words (`pdf.lay_out`), so a partner's template reads
a scan exactly as it reads a generated PDF. What tesseract was unsure of must not pass as
sure: a value's confidence is capped by its line's lowest word confidence
(`confidence_cap`), so a poor scan waits for a person (`min_confidence`) instead of going
straight through.

Without tesseract on the machine a scan is refused as before (EXTRACT_NO_TEXT), saying so.
"""

from __future__ import annotations

import shutil
from typing import Any

from gateway.extract.base import ExtractionError

__all__ = ["DPI", "MAX_OCR_PAGES", "OCR_CEILING", "confidence_cap", "ocr_available", "ocr_pages"]

DPI = 300
MAX_OCR_PAGES = 10  # tesseract takes 1-3 s a page: an order is a few pages, the child has 90 s
OCR_CEILING = 0.85  # nothing read by OCR is as sure as a text layer (0.9) or typed text (1.0)


def ocr_available() -> bool:
    """tesseract is installed and its wrapper importable."""
    if shutil.which("tesseract") is None:
        return False
    try:
        import pytesseract  # noqa: F401
    except ImportError:
        return False
    return True


def confidence_cap(word_confidence: float) -> float:
    """What an OCR word confidence (0-100) allows a value read from it, on the extraction's
    scale: tesseract reads clean print at 75-96 and is wrong often below 50, so 90 and up
    give the ceiling (0.85), 75 gives 0.8, 50 gives 0.5, and less is taken as it is."""
    points = ((0.0, 0.0), (50.0, 0.5), (75.0, 0.8), (90.0, OCR_CEILING), (100.0, OCR_CEILING))
    c = min(100.0, max(0.0, word_confidence))
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        if c <= x1:
            return round(y0 + (y1 - y0) * (c - x0) / (x1 - x0), 2)
    return OCR_CEILING


def ocr_pages(data: bytes, label: str, pages: list[int]) -> dict[int, tuple[str, dict[int, float]]]:
    """page number -> (its text, {line number: lowest word confidence}) for the 1-based
    `pages` of the PDF in `data`."""
    import pypdfium2
    import pytesseract

    tesseract: Any = pytesseract  # the wrapper carries no annotations
    if len(pages) > MAX_OCR_PAGES:
        raise ExtractionError(
            f"{label} is a scan of {len(pages)} pages; the gateway reads scanned orders up to {MAX_OCR_PAGES} pages by OCR",
            reason="EXTRACT_PDF_LIMIT",
        )
    out: dict[int, tuple[str, dict[int, float]]] = {}
    pdfium: Any = pypdfium2  # its constructor carries no annotations
    document: Any = pdfium.PdfDocument(data)
    try:
        for number in pages:
            page = document[number - 1]
            try:
                image = page.render(scale=DPI / 72, grayscale=True).to_pil()
            finally:
                page.close()
            # --psm 4: one column of text of varying sizes; finds numbers alone in a table column that
            # the default page segmentation drops. The layout is made from the positions anyway.
            found = tesseract.image_to_data(image, lang="eng", config="--psm 4", output_type=tesseract.Output.DICT)
            out[number] = _page_text(found)
    except ExtractionError:
        raise
    except Exception as exc:  # tesseract missing a language, a page pdfium cannot render
        raise ExtractionError(f"{label} could not be read by OCR ({type(exc).__name__}: {str(exc)[:160]})", reason="EXTRACT_OCR_FAILED") from exc
    finally:
        document.close()
    return out


def _page_text(found: dict[str, list[Any]]) -> tuple[str, dict[int, float]]:
    from gateway.extract.text.pdf import lay_out

    words: list[dict[str, Any]] = []
    for i, text in enumerate(found["text"]):
        confidence = float(found["conf"][i])
        if confidence < 0 or not str(text).strip():
            continue  # a block, paragraph or line record, not a word
        left, top, width, height = (float(found[k][i]) for k in ("left", "top", "width", "height"))
        words.append({"text": str(text), "x0": left, "x1": left + width, "top": top, "bottom": top + height,
                      "size": height / 0.72, "confidence": confidence})  # fmt: skip
    if not words:
        return "", {}
    per_char = sorted((w["x1"] - w["x0"]) / len(w["text"]) for w in words if len(w["text"]) >= 3) or [10.0]
    lines = lay_out(words, max(1.0, 0.9 * per_char[len(per_char) // 2]))
    confidences = {n: min(w["confidence"] for w in row) for n, (_, row) in enumerate(lines, 1) if row}
    return "\n".join(text for text, _ in lines), confidences
