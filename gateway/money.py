"""Amounts an outside system reports, as the Decimals we record and write into documents.

    money(Decimal("107.91000000000001"), "USD")   # Decimal("107.91")
    money(Decimal("1500.4"), "JPY")               # Decimal("1500")
    decimal_of(107.91)                            # Decimal("107.91"), not the float's binary expansion

ERPs answer amounts as JSON floats; ``Decimal(str(x))`` keeps what the ERP meant (the shortest
repr) and `money` rounds it half-up to the currency's minor unit (ISO 4217: two places unless
listed below), so an invoice total never carries a float's tail into an 810's TDS.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

__all__ = ["decimal_of", "minor_units", "money"]

# ISO 4217 currencies whose minor unit is not two places (the rest, and an unknown code: two).
_MINOR_UNITS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0, "RWF": 0, "UGX": 0,
    "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
}


def minor_units(currency: str | None) -> int:
    """Decimal places of `currency` (two for an unknown or missing code)."""
    return _MINOR_UNITS.get((currency or "").upper(), 2)


def decimal_of(value: object) -> Decimal | None:
    """A number from an API (int, float, numeric string, Decimal) as a Decimal; None for
    None, False (Odoo's empty value), or anything that is not a finite number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def money(value: Decimal | None, currency: str | None) -> Decimal | None:
    """`value` rounded half-up to the places of `currency`; None stays None."""
    if value is None:
        return None
    return value.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP)
