"""The code tables of the ORDERS mapping (BGM 1225 purposes, item number types, NAD roles,
DTM roles, RFF roles, ...): data in ``mappings/edifact/orders.yaml``, loaded and checked
once (`load_edifact_tables`); a partner file can override entries. See
`gateway.mapping.edifact_orders`.
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

DEFAULT_TABLES_PATH = mappings_root() / "edifact" / "orders.yaml"

# ------------------------------------------------------------------------------------------
# Code tables

# table name -> (what it is for, allowed values or None for any snake_case name)
_TABLES: dict[str, tuple[str, frozenset[str] | None]] = {
    "purpose": ("BGM 1225 message function codes", frozenset(p.value for p in Purpose)),
    "product_ids": (
        "LIN/PIA 7143 item number types",
        frozenset({"sku", "buyer_part_number", "gtin"}),
    ),
    "party_roles": (
        "NAD 3035 party function codes",
        frozenset({"buyer", "ship_to", "bill_to", "seller"}),
    ),
    "date_roles": ("DTM 2005 date/time qualifiers", None),
    "reference_roles": ("RFF 1153 reference qualifiers", None),
    "allowance_charge": ("ALC 5463 indicators", frozenset({"allowance", "charge"})),
    "contact_qualifiers": ("COM 3155 channel qualifiers", frozenset({"phone", "email", "fax"})),
    "amount_roles": (
        "MOA 5025 amount qualifiers",
        frozenset({"total", "subtotal", "tax_total", "shipping_total", "discount_total"}),
    ),
}


@dataclass(frozen=True, slots=True)
class EdifactTables(SegmentTables):
    """The code tables of an ORDERS mapping, checked and read-only. See
    mappings/edifact/orders.yaml."""


def load_edifact_tables(
    path: Path | str = DEFAULT_TABLES_PATH, overrides: Sequence[Path | str] = ()
) -> EdifactTables:
    """Read and check the code tables at `path`, then apply each override file in order.

    An override file holds only the tables and entries it changes; an entry with value
    ``null`` removes the standard entry. Raises ConfigError listing every problem, each
    naming its file, table and key.
    """
    return load_tables(EdifactTables, _TABLES, path, overrides, example="9")


@functools.cache
def default_tables() -> EdifactTables:
    """The standard tables from mappings/edifact/orders.yaml, loaded once per process."""
    return load_edifact_tables()
