"""What every extractor of loosely structured orders (CSV, XLSX, PDF, body text) shares.

An EDI or XML document says what each value is; a spreadsheet, a PDF or an e-mail body
only suggests it. So an extractor records for every value it sets *where* it was found
(attachment, sheet/page, row/line, column/label) and *how sure* it is (a confidence in
0..1), in a `Draft`. `Draft.build()` turns the draft into a canonical `Order` with the
same provenance keys the EDI mappers use (``po_number``, ``ship_to.city``,
``lines[0].quantity``) and a confidence per key. A partner's template sets the threshold
below which an order goes to a person instead of straight through (`Extraction.weak`).

Confidence guide (extractors keep to it, so thresholds mean the same for every format):
    1.0   read from a cell or labelled field exactly as configured, value parsed cleanly
    0.9   found under an alternative header or label the template allows; or text from a
          PDF text layer (layout can reorder words)
    0.8   parsed only after clean-up (thousands separators, a currency sign, "12 pcs")
    0.6   ambiguous (1,234 could be 1.234 or 1234; a date that reads both D/M and M/D)
    0.5   a cross-check failed (lines do not add up to the stated total)
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.errors import InputRejected
from gateway.model import Channel, Order

__all__ = [
    "Draft",
    "Extraction",
    "ExtractionError",
    "Found",
    "parse_amount",
    "parse_date",
]


class ExtractionError(InputRejected):
    """An attachment or body could not be turned into an order (reason codes EXTRACT_*)."""


@dataclass(frozen=True, slots=True)
class Found:
    value: Any
    where: str  # "attachment po.pdf, page 1, line 12 (label 'PO Number')"
    confidence: float


@dataclass(slots=True)
class Extraction:
    order: Order
    provenance: dict[str, str]  # field path -> where, as the EDI mappers' trace
    confidence: dict[str, float]  # field path -> 0..1
    warnings: list[str] = field(default_factory=list)

    @property
    def overall(self) -> float:
        """The order's confidence: that of its least certain field."""
        return min(self.confidence.values(), default=1.0)

    def weak(self, threshold: float) -> list[str]:
        """A sentence per field below `threshold`, least certain first (empty: good enough)."""
        low = sorted((c, k) for k, c in self.confidence.items() if c < threshold)
        out = []
        for c, k in low:
            value = self._value(k)
            # A flag on a whole part ("lines": a table row that was not read) or on a value
            # that could not be read has no single value to show, only its place.
            shown = "" if value is None or isinstance(value, (list, dict)) else f" = {_shown(value)}"
            out.append(f"{k}{shown} from {self.provenance.get(k, '?')} (confidence {c:.2f})")
        return out

    def _value(self, path: str) -> Any:
        node: Any = self.order.model_dump(mode="json")
        for part in re.findall(r"[^.\[\]]+", path):
            if isinstance(node, list):
                node = node[int(part)] if part.isdigit() and int(part) < len(node) else None
            elif isinstance(node, dict):
                node = node.get(part)
            else:
                return None
        return node


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Draft:
    """Fields found so far: header paths (``po_number``, ``ship_to.city``) and lines."""

    def __init__(self, channel: Channel):
        self.channel = channel
        self.fields: dict[str, Found] = {}
        self.lines: list[dict[str, Found]] = []
        self.warnings: list[str] = []

    def set(self, path: str, value: Any, where: str, confidence: float) -> None:
        """Set a header field (a list field such as ``notes`` or ``ship_to.address_lines``
        takes a list). Empty values are ignored."""
        if value is None or value == "" or value == []:
            return
        self.fields[path] = Found(value, where, max(0.0, min(1.0, confidence)))

    def add_line(self, fields: dict[str, Found]) -> None:
        self.lines.append({k: v for k, v in fields.items() if v.value not in (None, "")})

    def lower(self, path: str, confidence: float) -> None:
        """Cap a field's confidence (a cross-check against it failed)."""
        f = self.fields.get(path)
        if f is not None and f.confidence > confidence:
            self.fields[path] = Found(f.value, f.where, confidence)

    def build(self) -> Extraction:
        """The canonical order; ExtractionError (EXTRACT_INVALID) when a value does not fit."""
        data: dict[str, Any] = {"channel": self.channel.value, "lines": []}
        provenance: dict[str, str] = {}
        confidence: dict[str, float] = {}
        for path, f in self.fields.items():
            _put(data, path.split("."), f.value)
            provenance[path] = f.where
            confidence[path] = f.confidence
        for i, line in enumerate(self.lines):
            row: dict[str, Any] = {}
            for key, f in line.items():
                _put(row, key.split("."), f.value)
                provenance[f"lines[{i}].{key}"] = f.where
                confidence[f"lines[{i}].{key}"] = f.confidence
            data["lines"].append(row)
        if "po_number" not in data:
            raise ExtractionError("no PO number was found", reason="EXTRACT_NO_PO")
        try:
            order = Order.model_validate(data)
        except ValueError as exc:
            raise ExtractionError(f"the values found do not make a valid order: {_first_error(exc)}", reason="EXTRACT_INVALID") from exc
        return Extraction(order, provenance, confidence, list(self.warnings))


def _put(target: dict[str, Any], parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        return f"{loc}: {first.get('msg')} (got {first.get('input')!r})"
    return str(exc)


_AMOUNT = re.compile(r"^[-+]?(\d{1,3}([,. '\u00a0\u202f]\d{3})+|\d+)([.,]\d+)?$")
_CURRENCY = re.compile(r"^(?:[A-Z]{3}|[$€£¥])\s*|\s*(?:[A-Z]{3}|[$€£¥])$")
_UNIT_SUFFIX = re.compile(r"\s*(?:x|pcs?|pieces?|ea|each|units?|stk|st)\.?$", re.IGNORECASE)


def parse_amount(text: str, *, decimal_comma: bool = False) -> tuple[Decimal, float] | None:
    """A number as written by people: (value, confidence), or None if it is not one.

    ``12``, ``12.50`` -> 1.0; ``1,234.50``, ``$ 12.50``, ``12 pcs`` -> 0.8; ``1,234`` (a
    thousands separator or a decimal comma?) -> 0.6, read per `decimal_comma`.
    """
    raw = text.strip()
    if not raw:
        return None
    s = _UNIT_SUFFIX.sub("", _CURRENCY.sub("", raw)).strip()
    confidence = 1.0 if s == raw else 0.8
    negative = s.startswith("-") or (s.startswith("(") and s.endswith(")"))
    s = s.strip("()+-").strip()
    if not _AMOUNT.match(s):
        return None
    seps = [c for c in s if not c.isdigit()]
    if not seps:
        number = s
    else:
        last = seps[-1]
        head, _, tail = s.rpartition(last)
        grouping = [c for c in head if not c.isdigit()]
        if len(seps) == 1 and last in ",." and len(tail) == 3:
            # 1,234 or 1.234: a thousands separator or three decimals; the template decides.
            confidence = min(confidence, 0.6)
            as_decimal = (last == ",") == decimal_comma
            number = f"{head}.{tail}" if as_decimal else head + tail
        elif last in ",." and len(tail) != 3:
            if grouping and last in grouping:
                return None  # 1,234,56: not a number
            confidence = min(confidence, 0.8 if grouping else (1.0 if last == ("," if decimal_comma else ".") else 0.8))
            number = "".join(c for c in head if c.isdigit()) + "." + tail
        else:
            confidence = min(confidence, 0.8)
            number = "".join(c for c in s if c.isdigit())
    try:
        value = Decimal(number)
    except InvalidOperation:
        return None
    return (-value if negative else value), confidence


_DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d", "%d.%m.%Y", "%d %B %Y", "%d %b %Y", "%B %d, %Y", "%b %d, %Y", "%B %d %Y")


def parse_date(text: str, *, formats: list[str] | None = None, day_first: bool = True) -> tuple[dt.date, float] | None:
    """A date: (value, confidence), or None. The template's `formats` are tried first (1.0);
    then unambiguous common forms (0.9); then D/M/Y or M/D/Y by `day_first` (0.9 when only
    one reading is a valid date, 0.6 when both are)."""
    s = " ".join(text.strip().split())
    if not s:
        return None
    for fmt in formats or ():
        try:
            return dt.datetime.strptime(s, fmt).date(), 1.0
        except ValueError:
            continue
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(s, fmt).date(), 0.9
        except ValueError:
            continue
    m = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{2}|\d{4})", s)
    if m is None:
        return None
    a, b, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if y < 100:
        y += 2000
    readings = []
    for d, mo in ((a, b), (b, a)) if day_first else ((b, a), (a, b)):
        try:
            readings.append(dt.date(y, mo, d))
        except ValueError:
            continue
    if not readings:
        return None
    unique = set(readings)
    return readings[0], (0.9 if len(unique) == 1 else 0.6)
