"""Where the standard mappings are: one answer for a checkout and for an installed wheel.

The repository keeps them at its top, ``mappings/`` (next to ``gateway/``); a wheel ships the
same files inside the package, as ``gateway/mappings/`` (setup.py copies them at build time).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

__all__ = ["mappings_root"]

_PACKAGE = Path(__file__).resolve().parents[1]


@cache
def mappings_root() -> Path:
    """The folder of the standard mappings (x12/850.yaml, carts/shopify.yaml, ...)."""
    shipped = _PACKAGE / "mappings"
    if shipped.is_dir():
        return shipped
    return _PACKAGE.parent / "mappings"
