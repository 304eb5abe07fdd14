"""The text template of a partner (`TextSpec`: fields, blocks, lines), checked when it is
loaded: every regular expression compiles, `row` has a ``quantity`` group and no group other
than the line fields and ``line_total``, `pattern` and `total` have exactly one group, and
every field path is a real header field of the canonical order (with a "did you mean").
See the package docstring (`gateway.extract.text`) for how a document is read with it.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import types
from decimal import Decimal
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.model import Order, Party

MAX_LINE_CHARS = 2_000
MAX_LINES = 5_000

#: Order line fields a `row` pattern may capture (plus ``line_total``, used to cross-check).
LINE_FIELDS = (
    "line_number",
    "sku",
    "buyer_part_number",
    "gtin",
    "description",
    "quantity",
    "uom",
    "unit_price",
)
_ROW_GROUPS = frozenset(LINE_FIELDS) | {"line_total"}
# Header fields the gateway sets itself, never a template.
_NOT_FROM_TEXT = frozenset({"channel", "partner", "source", "lines", "lines_are_changes"})

ValueType = Literal["text", "date", "amount", "integer"]


# --------------------------------------------------------------------------- template


def _compile(value: str) -> re.Pattern[str]:
    try:
        return re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc}): {value!r}") from exc


def _one_group(value: str) -> str:
    groups = _compile(value).groups
    if groups != 1:
        raise ValueError(
            f"the regular expression must have exactly one group (the value), it has {groups}: {value!r}"
        )
    return value


def _labels(value: list[str]) -> list[str]:
    cleaned = [" ".join(label.split()) for label in value]
    if any(not label for label in cleaned):
        raise ValueError("a label must not be empty")
    return cleaned


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TextField(_Spec):
    """How to find one header value: by labels, or by a regular expression."""

    labels: list[str] = Field(
        default_factory=list,
        description="Labels written before the value ('PO Number: 123', 'PO Number   123') or above it, most usual first; the first gives full confidence, the others a little less.",
    )
    pattern: str | None = Field(
        None,
        description="Instead of labels: a regular expression with exactly one group, searched in each line; the group is the value.",
    )
    type: ValueType | None = Field(
        None,
        description="text, date, amount or integer. Optional: the order field decides (order_date is a date, totals.total an amount); if given it must agree.",
    )

    _check_labels = field_validator("labels")(_labels)

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, value: str | None) -> str | None:
        return None if value is None else _one_group(value)

    @model_validator(mode="after")
    def _labels_or_pattern(self) -> TextField:
        if bool(self.labels) == bool(self.pattern):
            raise ValueError("give either labels or a pattern (exactly one of them)")
        return self


class TextBlock(_Spec):
    """An address block: its label, then the party's lines under it."""

    labels: list[str] = Field(
        min_length=1, description="Labels of the block ('Ship To', 'Deliver To'), most usual first."
    )
    lines: int = Field(
        6,
        ge=1,
        le=12,
        description="At most this many lines belong to the block (the label's own line counts if it has text after the label).",
    )

    _check_labels = field_validator("labels")(_labels)


class TextLines(_Spec):
    """Where the table of order lines is and how one row reads."""

    start: str | None = Field(
        None,
        description="Regular expression for the table's header line; rows follow it. Without it every line matching `row` is an item (and unreadable rows cannot be noticed).",
    )
    row: str = Field(
        description="Regular expression for one row, with named groups: quantity (required), sku, buyer_part_number, gtin, description, uom, unit_price, line_number, line_total.",
    )
    stop: str | None = Field(
        None,
        description="Regular expression for the first line after the table (a Subtotal or Total line).",
    )
    ends_at_blank_line: bool = Field(
        False,
        description="A blank line after the first row ends the table (for bodies whose table has no closing line).",
    )
    continuation: str | None = Field(
        None,
        description="Regular expression for a line that continues the description of the row above (its group `description`, or the whole line); an indented line starts with two spaces.",
    )
    skip: list[str] = Field(
        default_factory=list,
        description="Regular expressions for lines inside the table to ignore (page footers, repeated letterheads).",
    )
    total: str | None = Field(
        None,
        description="Regular expression with one group: the stated order total (sets totals.total and is checked against the lines).",
    )
    subtotal: str | None = Field(
        None,
        description="Regular expression with one group: the stated sum of the lines (sets totals.subtotal; checked instead of the total).",
    )

    @field_validator("start", "stop")
    @classmethod
    def _check_regex(cls, value: str | None) -> str | None:
        if value is not None:
            _compile(value)
        return value

    @field_validator("skip")
    @classmethod
    def _check_skip(cls, value: list[str]) -> list[str]:
        for item in value:
            _compile(item)
        return value

    @field_validator("total", "subtotal")
    @classmethod
    def _check_amount(cls, value: str | None) -> str | None:
        return None if value is None else _one_group(value)

    @field_validator("continuation")
    @classmethod
    def _check_continuation(cls, value: str | None) -> str | None:
        if value is not None:
            unknown = set(_compile(value).groupindex) - {"description"}
            if unknown:
                raise ValueError(
                    f"the only named group a continuation may have is 'description' (found {', '.join(sorted(unknown))})"
                )
        return value

    @field_validator("row")
    @classmethod
    def _check_row(cls, value: str) -> str:
        names = set(_compile(value).groupindex)
        unknown = sorted(names - _ROW_GROUPS)
        if unknown:
            hints = [
                f"{n!r} (did you mean {m!r}?)" if (m := _row_group_hint(n)) else repr(n)
                for n in unknown
            ]
            raise ValueError(
                f"unknown named group {', '.join(hints)} in the row pattern; the groups are "
                f"{', '.join(LINE_FIELDS)} and line_total"
            )
        if "quantity" not in names:
            raise ValueError("the row pattern needs a (?P<quantity>...) group")
        return value


_GROUP_ALIASES = {
    "qty": "quantity",
    "quantity_ordered": "quantity",
    "price": "unit_price",
    "unitprice": "unit_price",
    "item": "sku",
    "article": "sku",
    "part": "sku",
    "desc": "description",
    "unit": "uom",
    "total": "line_total",
    "amount": "line_total",
    "line": "line_number",
    "pos": "line_number",
    "ean": "gtin",
    "upc": "gtin",
    "bpn": "buyer_part_number",
    "buyer_part": "buyer_part_number",
}


def _row_group_hint(name: str) -> str | None:
    if name.lower() in _GROUP_ALIASES:
        return _GROUP_ALIASES[name.lower()]
    close = difflib.get_close_matches(name, _ROW_GROUPS, 1)
    return close[0] if close else None


class TextSpec(_Spec):
    """The ``text:`` section of a partner's e-mail template: PDF attachments and body text."""

    fields: dict[str, TextField] = Field(
        default_factory=dict,
        description="Header fields of the order by path (po_number, order_date, currency, customer_email, notes, totals.total, ship_to.code, ...) and how to find each.",
    )
    blocks: dict[str, TextBlock] = Field(
        default_factory=dict,
        description="Address blocks by party (ship_to, bill_to, buyer, seller) and their labels.",
    )
    lines: TextLines = Field(description="The table of order lines.")

    @model_validator(mode="after")
    def _check_paths(self) -> TextSpec:
        problems: list[str] = []
        for path, rule in self.fields.items():
            try:
                kind = _field_kind(path)
            except ValueError as exc:
                problems.append(f"fields.{path}: {exc}")
                continue
            expected = "text" if kind == "list" else kind
            if rule.type is not None and rule.type != expected:
                problems.append(
                    f"fields.{path}: the order field is {expected}, so type: {rule.type} does not fit"
                )
        for party in self.blocks:
            if party not in _PARTIES:
                hint = difflib.get_close_matches(party, _PARTIES, 1)
                problems.append(
                    f"blocks.{party}: not a party of the order ({', '.join(_PARTIES)})"
                    + (f"; did you mean {hint[0]!r}?" if hint else "")
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _field_kind(path: str) -> str:
    """What a header path of the order holds: text, date, amount, integer or list (of
    text). ValueError, saying why, when it is not a header value a template can fill."""
    model: type[BaseModel] = Order
    parts = path.split(".")
    if parts[0] in _NOT_FROM_TEXT:
        raise ValueError(f"{parts[0]} is set by the gateway, not read from the document")
    for n, part in enumerate(parts):
        info = model.model_fields.get(part)
        if info is None:
            hint = difflib.get_close_matches(part, list(model.model_fields), 1)
            where = "the order" if model is Order else f"{'.'.join(parts[:n])} ({model.__name__})"
            raise ValueError(
                f"{where} has no field {part!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
            )
        tp = _unwrap(info.annotation)
        last = n == len(parts) - 1
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if last:
                raise ValueError(
                    f"{path} is a group of fields; name one of them ({', '.join(list(tp.model_fields)[:6])}, ...)"
                )
            model = tp
            continue
        if not last:
            raise ValueError(f"{'.'.join(parts[: n + 1])} has no fields inside it")
        if tp is str:
            return "text"
        if tp is dt.date:
            return "date"
        if tp is Decimal:
            return "amount"
        if tp is int:
            return "integer"
        if get_origin(tp) is list and get_args(tp) == (str,):
            return "list"
        raise ValueError(
            f"{path} cannot be read from text (only text, dates, amounts, whole numbers and lists of text can)"
        )
    raise ValueError(
        f"{path}: not a field path"
    )  # pragma: no cover - the loop always returns or raises


_PARTIES = tuple(
    name for name, info in Order.model_fields.items() if _unwrap(info.annotation) is Party
)
