"""The code tables of the 850 mapping (BEG01 purposes, product id qualifiers, N1 roles, DTM
roles, REF roles, ...): data in ``mappings/x12/850.yaml``, loaded and checked once
(`load_x12_tables`); a partner file can override entries. See `gateway.mapping.x12_850`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.mapping.builder import (
    SegmentTables,
    load_tables,
)
from gateway.mapping.files import mappings_root
from gateway.model import Purpose

DEFAULT_TABLES_PATH = mappings_root() / "x12" / "850.yaml"

# ------------------------------------------------------------------------------------------
# Code tables

# table name -> (what it is for, allowed values or None for any snake_case name)
_TABLES: dict[str, tuple[str, frozenset[str] | None]] = {
    "purpose": ("BEG01 purpose codes", frozenset(p.value for p in Purpose)),
    "product_ids": (
        "PO1 product id qualifiers",
        frozenset({"sku", "buyer_part_number", "gtin"}),
    ),
    "party_roles": ("N101 entity codes", frozenset({"buyer", "ship_to", "bill_to", "seller"})),
    "date_roles": ("DTM01 date qualifiers", None),
    "reference_roles": ("REF01/N901 reference qualifiers", None),
    "allowance_charge": ("SAC01 indicators", frozenset({"allowance", "charge"})),
    "contact_qualifiers": ("PER communication qualifiers", frozenset({"phone", "email", "fax"})),
    "amount_roles": (
        "AMT01 amount qualifiers",
        frozenset({"total", "subtotal", "tax_total", "shipping_total", "discount_total"}),
    ),
}


@dataclass(frozen=True, slots=True)
class X12Tables(SegmentTables):
    """The code tables of an 850 mapping, checked and read-only. See mappings/x12/850.yaml."""


def load_x12_tables(
    path: Path | str = DEFAULT_TABLES_PATH, overrides: Sequence[Path | str] = ()
) -> X12Tables:
    """Read and check the code tables at `path`, then apply each override file in order.

    An override file holds only the tables and entries it changes; an entry with value
    ``null`` removes the standard entry. Raises ConfigError listing every problem, each
    naming its file, table and key.
    """
    return load_tables(X12Tables, _TABLES, path, overrides, example="002")


@functools.cache
def default_tables() -> X12Tables:
    """The standard tables from mappings/x12/850.yaml, loaded once per process."""
    return load_x12_tables()
