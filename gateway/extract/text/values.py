"""Small readings shared by the text reader: labels as patterns, numbers read with either
decimal mark, currencies by code or symbol, values shown short in messages.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from gateway.extract.base import parse_amount

# --------------------------------------------------------------------------- helpers

_SEPARATOR = re.compile(r"\s*[:#=\uff1a]?\s*")
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
_SYMBOLS = {
    "€": ("EUR", 0.8),
    "£": ("GBP", 0.8),
    "$": ("USD", 0.6),
    "US$": ("USD", 0.8),
    "¥": ("JPY", 0.6),
}


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
