"""The ``table:`` section of a partner's e-mail template (`TableSpec`), and which order
fields a column may fill (`table_field_paths`: header fields and ``lines.*`` fields with
the kind of cell each needs). Checked when the template is loaded. See the package
docstring (`gateway.extract.table`).
"""

from __future__ import annotations

import datetime as dt
import difflib
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from gateway.extract.table.grid import _SHEET_MAX_ROWS, _Kind
from gateway.model import Order, OrderLine

# -- which order fields a table can fill --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Field:
    kind: _Kind
    choices: tuple[str, ...] = ()


# Set by the gateway, not by a document (or not expressible as one cell).
_NOT_MAPPABLE = frozenset(
    {"channel", "partner", "lines", "lines_are_changes", "source", "unmapped", "extensions"}
)


def _fields_of(model: type[BaseModel], prefix: str = "") -> dict[str, _Field]:
    found: dict[str, _Field] = {}
    for name, info in model.model_fields.items():
        if not prefix and name in _NOT_MAPPABLE:
            continue
        target = _unwrap(info.annotation)
        if isinstance(target, type) and issubclass(target, BaseModel):
            found.update(_fields_of(target, f"{prefix}{name}."))
            continue
        kind = _kind_of(target)
        if kind is not None:
            found[prefix + name] = kind
    return found


def _unwrap(annotation: Any) -> Any:
    """``X | None`` and ``Annotated[X, ...]`` -> X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return None
            annotation = args[0]
        else:
            return annotation


def _kind_of(target: Any) -> _Field | None:
    if typing.get_origin(target) is list:
        return _Field("text_list") if typing.get_args(target) == (str,) else None
    if not isinstance(target, type) or target is bool:
        return None
    if issubclass(target, Enum):
        return _Field("choice", tuple(str(m.value) for m in target))
    if issubclass(target, Decimal):
        return _Field("amount")
    if issubclass(target, dt.date):
        return _Field("date")
    if issubclass(target, int):
        return _Field("integer")
    if issubclass(target, str):
        return _Field("text")
    return None


_HEADER_FIELDS = _fields_of(Order)
_LINE_FIELDS = {f"lines.{path}": f for path, f in _fields_of(OrderLine).items()}
_ALL_FIELDS = {**_HEADER_FIELDS, **_LINE_FIELDS}


def table_field_paths() -> list[str]:
    """Every path a `TableSpec` column can fill (header fields, then ``lines.`` fields)."""
    return [*_HEADER_FIELDS, *_LINE_FIELDS]


def _unknown_paths(paths: Iterable[str], allowed: dict[str, _Field], what: str) -> list[str]:
    problems = []
    for path in paths:
        if path in allowed:
            continue
        close = difflib.get_close_matches(path, list(allowed), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"{path!r} is not {what}{hint}")
    if problems:
        problems.append(f"the fields are: {', '.join(allowed)}")
    return problems


# -- the template section ---------------------------------------------------------------------------

_Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
_Names = Annotated[list[_Name], Field(min_length=1)]


class TableSpec(BaseModel):
    """How to read a partner's CSV and XLSX orders: which column or label holds which field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sheet: str | None = Field(
        None,
        min_length=1,
        description="XLSX: name of the sheet holding the order table; default the first sheet. Not used for CSV.",
    )
    header_row: int | None = Field(
        None,
        ge=1,
        le=_SHEET_MAX_ROWS,
        description=(
            "1-based row of the column headers; default: found automatically, the first of the first 30 rows "
            "in which at least two configured column names appear."
        ),
    )
    columns: dict[str, _Names] = Field(
        description=(
            "Order field path (po_number, ship_to.name, lines.sku, lines.quantity, ...) -> header names of the "
            "column holding it. The first name is the partner's usual header (confidence 1.0), the others "
            "alternatives (0.9). A list field (notes, ship_to.address_lines, lines.notes) takes every listed "
            "column present. lines.quantity is required."
        ),
    )
    labels: dict[str, _Names] = Field(
        default_factory=dict,
        description=(
            "Header field path -> label texts of a field written outside the table (an order form): a cell holding "
            "the label, its value in the next non-empty cell to the right, or 'Label: value' in one cell. First "
            "label 1.0, others 0.9."
        ),
    )
    stop_at: list[_Name] = Field(
        default_factory=list,
        description=(
            "A row whose first non-empty cell starts with one of these words ends the table; an amount in it is "
            "the order total, checked against the lines."
        ),
    )

    @field_validator("columns", "labels", mode="before")
    @classmethod
    def _one_name_is_a_list(cls, value: Any) -> Any:
        """``po_number: "PO Number"`` is short for ``po_number: ["PO Number"]``."""
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        problems = _unknown_paths(value, _ALL_FIELDS, "an order field a column can fill")
        if problems:
            raise ValueError("; ".join(problems))
        if "lines.quantity" not in value:
            raise ValueError(
                "lines.quantity must be mapped: every order line needs a quantity column"
            )
        return value

    @field_validator("labels")
    @classmethod
    def _known_labels(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        problems = _unknown_paths(
            value,
            _HEADER_FIELDS,
            "an order header field a label can fill (line fields come from columns)",
        )
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _po_somewhere(self) -> TableSpec:
        if "po_number" not in self.columns and "po_number" not in self.labels:
            raise ValueError(
                "po_number must be mapped to a column or a label: every order needs a PO number"
            )
        return self
