"""The code tables of the UBL mapping (document type -> purpose, party elements -> roles,
item id schemes -> fields): data in ``mappings/xml/ubl.yaml``, loaded and checked once.
See `gateway.mapping.ubl_order`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.mapping.builder import load_tables
from gateway.mapping.files import mappings_root
from gateway.mapping.tables import Codes
from gateway.model import Purpose

DEFAULT_TABLES_PATH = mappings_root() / "xml" / "ubl.yaml"

_KEYS = Codes(
    re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}"), "names of letters, digits, '_', '.', ':', '-'"
)
_PARTY_FIELDS = frozenset({"buyer", "seller", "ship_to", "bill_to"})
# table name -> (what it is for, allowed values or None for any snake_case role name)
_TABLES: dict[str, tuple[str, frozenset[str] | None]] = {
    "purpose": ("UBL document types", frozenset(p.value for p in Purpose)),
    "party_roles": ("UBL party elements", None),
    "item_schemes": (
        "StandardItemIdentification schemeIDs",
        frozenset({"gtin", "sku", "buyer_part_number"}),
    ),
}


@dataclass(frozen=True, slots=True)
class UblTables:
    """The code tables of the UBL mapping, checked and read-only. See mappings/xml/ubl.yaml."""

    purpose: Mapping[str, Purpose]
    party_roles: Mapping[str, str]
    item_schemes: Mapping[str, str]
    sources: tuple[str, ...] = ()


def load_ubl_tables(
    path: Path | str = DEFAULT_TABLES_PATH, overrides: Sequence[Path | str] = ()
) -> UblTables:
    """Read and check the tables at `path`, then apply each override file in order.

    An override holds only the entries it changes; ``null`` removes a standard entry.
    Raises ConfigError listing every problem, each naming its file, table and key.
    """
    return load_tables(UblTables, _TABLES, path, overrides, codes=_KEYS, example="0160")


@functools.cache
def default_ubl_tables() -> UblTables:
    """The standard tables from mappings/xml/ubl.yaml, loaded once per process."""
    return load_ubl_tables()
