"""A declarative JSON -> Order mapping: a YAML file of JMESPath expressions, checked at load.

Used for shopping-cart orders (``mappings/carts/shopify.yaml``, ``woocommerce.yaml``) and
for any JSON order whose shape a file can describe. JMESPath is a restricted,
side-effect-free language: a mapping cannot run code, read files or reach the network.
What JMESPath cannot do is done by a few named Python functions registered in
`CartFunctions` (``decimal``, ``add``, ``multiply``, ``divide``, ``percent``, ``lookup``,
``from_entries``); there is no ``eval`` anywhere.

The mapping file
    version: 1                      required
    channel: shopify                required: an Order channel (shopify, woocommerce, ...)
    description: ...                optional free text
    po_number: name                 any Order field, by its name, maps to an expression
    order_date: created_at          evaluated on the order object (see "Fields" below)
    parties:                        buyer, seller, ship_to, bill_to (blocks) and
      ship_to: {from: ..., ...}     other_parties (role -> block)
    lines: {from: line_items, ...}  list fields take a block with `from`, or a list of blocks
    extensions: {key: expr, ...}    values kept as JSON (numbers as decimal strings)
    purpose:                        first rule whose `when` is true wins, else `default`
      rules: [{when: "cancelled_at", purpose: cancel}]
      default: original
    ignore: [token, ...]            top-level input keys not to list in Order.unmapped

Fields
    A scalar field (text, amount, date, number, flag) or a list of texts (notes,
    address_lines) maps to one JMESPath expression; its result is converted to the field's
    type: numbers become Decimal through their text (never float: the JSON is parsed with
    ``parse_float=Decimal`` and a float literal in an expression is refused at load), ISO
    date-times become their date (as written, in their own zone), ids become text, empty
    text becomes nothing, a list of texts drops empty entries.
    A structured field (a party, a contact, shipping, totals, payment) maps to a block: a
    mapping of its own field names to expressions, with optional ``from`` (an expression
    selecting the object the block's expressions are relative to; nothing there, no
    object) and ``when`` (the block is used only when this is true).
    A list field (lines, allowances_charges, taxes, references, item_ids, ...) maps to a
    block whose ``from`` selects a list (one entry per element, expressions relative to
    the element), to a block without ``from`` (one entry), or to a list of such blocks
    (their entries concatenated in order). An entry in which only literals found a value
    (``qualifier: "'variant_id'"`` with no variant id) is left out.
    Every key is checked when the file is loaded against the Order model, with "did you
    mean" on a typo; every expression is compiled, its functions and their argument counts
    checked; all problems are reported together as one ConfigError naming file and key.

Provenance: with a `trace` dict, every field set is recorded as
``trace["lines[0].sku"] == "shopify.yaml: lines[0].sku <- line_items[0].sku"``: the field
path, and the expression that, evaluated on the input order, gives the value.

Unmapped: the order's top-level keys that no expression reads (and the file does not
``ignore``), and that hold something (not null, false, "" or empty), go to Order.unmapped by name only, never with their
values: cart payloads carry customers' personal data (addresses, phones, IP addresses,
browser details), and a key name is enough for a person to see what a mapping leaves out.

Reason codes (MappingError.reason)
    NOT_AN_ORDER            the document is not a JSON object of doc_type "order"
    MISSING_PO_NUMBER       the po_number expression found nothing
    JSON_MISSING_<FIELD>    another required field found nothing in an entry that exists
                            (JSON_MISSING_QUANTITY for a line without quantity)
    JSON_BAD_NUMBER         an amount or quantity that is not a number
    JSON_BAD_DATE           a date that is not an ISO 8601 date or date-time
    JSON_BAD_VALUE          a value of the wrong JSON type (a list where text belongs, ...)
    JSON_EXPRESSION         an expression failed on this order (a function given the
                            wrong type of value)
    INVALID_ORDER           the mapped values do not make a valid Order
The position of each is the JMESPath of the value in the order (``line_items[2].quantity``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError
from gateway.formats.base import Document
from gateway.mapping.files import mappings_root
from gateway.mapping.jsonmap.apply import JsonMapping
from gateway.mapping.jsonmap.compiler import (
    _MAX_FILE_DEPTH,
    _Compiler,
    _overlay,
    _read_yaml,
    _tree_copy,
)
from gateway.mapping.jsonmap.functions import CartFunctions
from gateway.model import Order

__all__ = [
    "MAPPINGS_DIR",
    "SHOPIFY_MAPPING",
    "WOOCOMMERCE_MAPPING",
    "CartFunctions",
    "JsonMapping",
    "default_mapping",
    "load_mapping",
    "load_shopify_mapping",
    "load_woocommerce_mapping",
    "map_shopify",
    "map_woocommerce",
]

MAPPINGS_DIR = mappings_root() / "carts"
SHOPIFY_MAPPING = MAPPINGS_DIR / "shopify.yaml"
WOOCOMMERCE_MAPPING = MAPPINGS_DIR / "woocommerce.yaml"

# ------------------------------------------------------------------------------------------
# Loading


def load_mapping(path: Path | str, overrides: Sequence[Path | str] = ()) -> JsonMapping:
    """Read and check the mapping at `path`, with each override file laid over it in order.

    An override holds only what it changes: its blocks merge key by key into the base,
    a list or an expression replaces the base's, ``null`` removes a key. Raises ConfigError
    listing every problem, each naming its file and key.
    """
    files = [Path(path), *(Path(p) for p in overrides)]
    problems: list[str] = []
    merged: dict[str, Any] | None = None
    origins: dict[tuple[str | int, ...], str] = {}
    for position, file in enumerate(files):
        data = _read_yaml(file, problems)
        if data is None:
            continue
        if not isinstance(data, dict):
            problems.append(f"{file}: expected a mapping of keys to expressions at the top level")
            continue
        try:
            data = _tree_copy(data)
        except RecursionError:
            problems.append(
                f"{file}: nested more than {_MAX_FILE_DEPTH} levels (a YAML alias loop?)"
            )
            continue
        if position == 0:
            merged = data
            origins[()] = str(file)
        elif merged is not None:
            _overlay(merged, data, (), str(file), origins)
    if problems or merged is None:
        raise ConfigError(problems or [f"{files[0]}: the mapping is empty"])
    compiler = _Compiler(origins)
    mapping = compiler.mapping(merged, files[0].stem, tuple(str(f) for f in files))
    if compiler.problems or mapping is None:
        raise ConfigError(compiler.problems)
    return mapping


def load_shopify_mapping(overrides: Sequence[Path | str] = ()) -> JsonMapping:
    """mappings/carts/shopify.yaml with a partner's overrides (a MapperSpec tables loader)."""
    return load_mapping(SHOPIFY_MAPPING, overrides)


def load_woocommerce_mapping(overrides: Sequence[Path | str] = ()) -> JsonMapping:
    """mappings/carts/woocommerce.yaml with a partner's overrides."""
    return load_mapping(WOOCOMMERCE_MAPPING, overrides)


@functools.cache
def default_mapping(name: str) -> JsonMapping:
    """mappings/carts/<name>.yaml, loaded and checked once per process."""
    return load_mapping(MAPPINGS_DIR / f"{name}.yaml")


def map_shopify(
    doc: Document, tables: JsonMapping | None = None, trace: dict[str, str] | None = None
) -> Order:
    """Map one Shopify order `Document` (from ShopifyParser) with mappings/carts/shopify.yaml."""
    return (tables or default_mapping("shopify")).map(doc, trace)


def map_woocommerce(
    doc: Document, tables: JsonMapping | None = None, trace: dict[str, str] | None = None
) -> Order:
    """Map one WooCommerce order `Document` with mappings/carts/woocommerce.yaml."""
    return (tables or default_mapping("woocommerce")).map(doc, trace)
