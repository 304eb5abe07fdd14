"""What the seven order mappings share: the base every mapping builder stands on.

The mappings (X12 850 and 860, EDIFACT ORDERS and ORDCHG, cXML OrderRequest, UBL Order, and
the declarative JSON mappings of carts and web forms) each walk their own kind of document,
but load their code tables, fill Order.source and end the same way:

    code tables     a frozen dataclass of read-only tables (``purpose`` values become
                    `Purpose`) and the files they came from, base first. `load_tables`
                    reads one base file and its overrides; `load_change_tables` reads a
                    change message's own tables plus its changes to the tables it shares
                    with the order message it changes (860 with 850, ORDCHG with ORDERS).
    Order.source    the envelope's values (`envelope_source`)
    the order       the collected values checked by the Order model (`validated_order`): a
                    value the model refuses is a mapping bug, MappingError INVALID_ORDER
    segment walks   `SegmentTables`: the code tables X12 and EDIFACT orders both have;
                    `SegmentOrder`: what an X12 or EDIFACT walk collects (references, dates,
                    parties, lines, totals, ...), put into the order where set (`assemble`)
    XML documents   `XmlOrder`: the state a cXML or UBL mapping run starts from (the
                    document, its tables, an `XmlPicker` that remembers what was read) and
                    its end: the header collections where set, unmapped leaves, the check;
                    `not_an_order` refuses a document of another type
    numbers         quantities and amounts from 1e-12 to below 1e16 (`in_range`); a
                    two-digit year below `CENTURY_PIVOT` is 20xx, else 19xx
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import pydantic

from gateway.errors import ConfigError, MappingError
from gateway.formats.base import Document
from gateway.formats.safexml import XmlPicker
from gateway.mapping.tables import EDI_CODES, Codes, read_tables
from gateway.model import Order, Purpose

__all__ = [
    "CENTURY_PIVOT",
    "SegmentOrder",
    "SegmentTables",
    "XmlOrder",
    "change_spec",
    "envelope_source",
    "in_range",
    "load_change_tables",
    "load_tables",
    "not_an_order",
    "trace_source",
    "validated_order",
]

T = TypeVar("T")
_Spec = Mapping[str, tuple[str, frozenset[str] | None]]

CENTURY_PIVOT = 70  # YYMMDD: 00-69 -> 20xx, 70-99 -> 19xx
# Numbers from 1e-12 to below 1e16 (Decimal.adjusted() is the exponent of the first digit).
_MIN_EXPONENT, _MAX_EXPONENT = -12, 15


def in_range(d: Decimal) -> bool:
    """False for a number too large or too small for a quantity or amount: "1E999999999" is
    a valid Decimal, and writing it out as digits never ends. Zero is in range."""
    return not d or _MIN_EXPONENT <= d.adjusted() <= _MAX_EXPONENT


# ------------------------------------------------------------------------------------------
# Code tables


@dataclasses.dataclass(frozen=True, slots=True)
class SegmentTables:
    """The code tables an X12 850 and an EDIFACT ORDERS mapping both have, checked and
    read-only (each subclass names its file and its code lists)."""

    purpose: Mapping[str, Purpose]
    product_ids: Mapping[str, str]
    party_roles: Mapping[str, str]
    date_roles: Mapping[str, str]
    reference_roles: Mapping[str, str]
    allowance_charge: Mapping[str, str]
    contact_qualifiers: Mapping[str, str]
    amount_roles: Mapping[str, str]
    sources: tuple[str, ...] = ()  # the files these tables were read from, base first


def _frozen(merged: Mapping[str, dict[str, str]], names: Collection[str]) -> dict[str, Any]:
    """The tables `names` of `merged`, read-only; ``purpose`` values as `Purpose`."""
    return {
        name: MappingProxyType(
            {k: Purpose(v) for k, v in merged[name].items()} if name == "purpose" else merged[name]
        )
        for name in names
    }


def load_tables(
    cls: Callable[..., T],
    spec: _Spec,
    path: Path | str,
    overrides: Sequence[Path | str] = (),
    *,
    example: str,
    codes: Codes = EDI_CODES,
) -> T:
    """Read and check the code tables at `path`, then apply each override file in order, into
    `cls` (one field per table of `spec`, and ``sources``).

    An override file holds only the tables and entries it changes; an entry with value
    ``null`` removes the standard entry. Raises ConfigError listing every problem, each
    naming its file, table and key.
    """
    files = [Path(path), *(Path(p) for p in overrides)]
    problems: list[str] = []
    merged = read_tables(files, problems, spec=spec, codes=codes, example=example)
    if problems:
        raise ConfigError(problems)
    return cls(**_frozen(merged, spec), sources=tuple(str(f) for f in files))


def change_spec(
    order_spec: _Spec, own: _Spec
) -> tuple[frozenset[str], dict[str, tuple[str, frozenset[str] | None]]]:
    """(the tables a change message shares with its order message, what its files may hold):
    its `own` tables win over the order message's of the same name ("purpose")."""
    shared = frozenset(order_spec) - frozenset(own)
    return shared, {**{name: order_spec[name] for name in shared}, **own}


def load_change_tables(
    cls: Callable[..., T],
    spec: _Spec,
    shared: frozenset[str],
    path: Path | str,
    overrides: Sequence[Path | str],
    *,
    base: Callable[[], Any],
    base_field: str,
    example: str,
) -> T:
    """The tables of a change message: its own (those of `spec` not in `shared`) from `path`
    and `overrides`, and the order message's tables (`base()`, a frozen tables dataclass) as
    field `base_field`, with the changes these files make to the `shared` ones.

    Raises ConfigError listing every problem of all the files, the base's included.
    """
    files = [Path(path), *(Path(p) for p in overrides)]
    problems: list[str] = []
    try:
        tables: Any = base()
    except ConfigError as exc:
        problems.extend(exc.problems)
        tables = None
    from_base = {name: getattr(tables, name) if tables else {} for name in shared}
    merged = read_tables(files, problems, spec=spec, example=example, shared=from_base)
    if problems or tables is None:
        raise ConfigError(problems)
    changed: dict[str, Any] = {name: MappingProxyType(merged[name]) for name in shared}
    return cls(
        **_frozen(merged, [name for name in spec if name not in shared]),
        **{base_field: dataclasses.replace(tables, **changed)},
        sources=(*tables.sources, *(str(f) for f in files)),
    )


# ------------------------------------------------------------------------------------------
# Order.source and the end of a mapping

_SOURCE_FIELDS = (
    "sender_id",
    "sender_qualifier",
    "receiver_id",
    "receiver_qualifier",
    "interchange_control_number",
    "group_control_number",
    "transaction_control_number",
    "version",
    "test_indicator",
)


def envelope_source(doc: Document, omit: Collection[str] = ()) -> dict[str, Any]:
    """Order.source from the document's envelope, without the fields in `omit` (those a
    kind of document has no envelope value for)."""
    env = doc.envelope
    source = {
        "sender_id": env.sender_id,
        "sender_qualifier": env.sender_qualifier,
        "receiver_id": env.receiver_id,
        "receiver_qualifier": env.receiver_qualifier,
        "interchange_control_number": env.interchange_control_number,
        "group_control_number": env.group_control_number,
        "transaction_control_number": doc.control_number,
        "version": env.version,
        "test_indicator": env.test_indicator,
    }
    for name in omit:
        del source[name]
    return source


def trace_source(
    tr: dict[str, str], source: Mapping[str, Any], elements: Mapping[str, str]
) -> None:
    """Trace each envelope value in `source` that is set to its element (``source.sender_id
    -> "ISA06"``); the envelope has no segment numbers."""
    for name, what in elements.items():
        if source.get(name) is not None:
            tr[f"source.{name}"] = what


def validated_order(
    values: dict[str, Any],
    position: str,
    *,
    brief: bool = False,
    locate: Callable[[tuple[int | str, ...]], tuple[str, str]] | None = None,
) -> Order:
    """The Order of the mapped `values`. Raises MappingError INVALID_ORDER at `position` when
    the model refuses them (a mapping bug), with every error or, `brief`, the first one.

    With `locate`, the error names the first refused field and says where its value came
    from: ``locate(loc)`` of the model's error location gives (field, position).
    """
    try:
        return Order.model_validate(values)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        if locate is not None:
            field, position = locate(first["loc"])
            detail = f"{field}: {first['msg']}"
        else:
            detail = first["msg"] if brief else str(exc)
        raise MappingError(
            f"the mapped values do not make a valid order: {detail}",
            reason="INVALID_ORDER",
            position=position,
        ) from exc


def not_an_order(doc: Document, message: str) -> MappingError:
    """The error for a document a mapping does not take (reason NOT_AN_ORDER)."""
    return MappingError(message, reason="NOT_AN_ORDER", position=doc.position)


class XmlOrder:
    """The state a cXML or UBL mapping run starts from, and how it ends.

    The subclass reads the document through ``self.x`` (every read marks its element used
    and, with a trace, records the field's XPath), fills ``self.order`` with single values
    and the header collections below, then returns ``self.assemble(unmapped)``.
    """

    def __init__(self, doc: Document, tables: Any, picker: XmlPicker):
        self.doc = doc
        self.t = tables
        self.x = picker
        self.order: dict[str, Any] = {}
        self.references: list[dict[str, Any]] = []
        self.dates: list[dict[str, Any]] = []
        self.others: dict[str, dict[str, Any]] = {}
        self.extensions: dict[str, Any] = {}

    def assemble(self, unmapped: list[str]) -> Order:
        """The order with the header collections that are not empty and the `unmapped`
        leaves, checked by the model (the first refusal only: XML errors are long)."""
        o = self.order
        for name, value in (
            ("references", self.references),
            ("dates", self.dates),
            ("other_parties", self.others),
            ("extensions", self.extensions),
        ):
            if value:
                o[name] = value
        o["unmapped"] = unmapped
        return validated_order(o, self.doc.position, brief=True)


class SegmentOrder:
    """What a walk over the segments of an X12 or EDIFACT order collects, and how it becomes
    the order: the subclasses' handlers fill these, `assemble` puts what is set into
    ``self.order`` and checks it."""

    def __init__(self, doc: Document, order: dict[str, Any]):
        self.doc = doc
        self.order = order
        self.references: list[dict[str, Any]] = []
        self.dates: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.unmapped: list[str] = []
        self.lines: list[dict[str, Any]] = []
        self.shipping: dict[str, Any] = {}
        self.totals: dict[str, Any] = {}
        self.amounts: list[dict[str, Any]] = []
        self.allowances: list[dict[str, Any]] = []
        self.taxes: list[dict[str, Any]] = []
        self.terms: list[dict[str, Any]] = []
        self.parties: dict[str, dict[str, Any]] = {}
        self.others: dict[str, dict[str, Any]] = {}
        self.extensions: dict[str, Any] = {}

    def assemble(self) -> Order:
        """The order with every collection that is not empty, checked by the model."""
        o = self.order
        o.update(self.parties)
        for name, value in (
            ("lines", self.lines),
            ("references", self.references),
            ("dates", self.dates),
            ("notes", self.notes),
            ("other_parties", self.others),
            ("payment_terms", self.terms),
            ("allowances_charges", self.allowances),
            ("taxes", self.taxes),
            ("shipping", self.shipping),
            ("extensions", self.extensions),
            ("unmapped", self.unmapped),
        ):
            if value:
                o[name] = value
        if self.amounts:
            self.totals["amounts"] = self.amounts
        if self.totals:
            o["totals"] = self.totals
        return validated_order(o, self.doc.position)
