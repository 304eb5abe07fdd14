"""The compiled form of a mapping file, and what it may name: the Order model's fields and
their types (`_fields_of`), and the nodes a file compiles to (an expression, a value, an
object, a list, a map of parties). See `gateway.mapping.jsonmap`.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

import pydantic
from jmespath.parser import ParsedResult

# ------------------------------------------------------------------------------------------
# What a mapping file may name: the Order model's fields and their types


@dataclass(frozen=True, slots=True)
class _Target:
    """What kind of value a model field holds, as far as a mapping is concerned."""

    kind: str  # str decimal int bool date enum strs object list object_map json_map
    model: type[pydantic.BaseModel] | None = None
    enum: type[StrEnum] | None = None
    required: bool = False


def _strip(annotation: Any) -> Any:
    """`X | None` -> X; `Annotated[X, ...]` -> X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            rest = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def _target_of(annotation: Any, required: bool) -> _Target | None:
    t = _strip(annotation)
    origin, args = typing.get_origin(t), typing.get_args(t)
    simple = {str: "str", Decimal: "decimal", bool: "bool", int: "int", dt.date: "date"}
    if t in simple:
        return _Target(simple[t], required=required)
    if isinstance(t, type) and issubclass(t, StrEnum):
        return _Target("enum", enum=t, required=required)
    if isinstance(t, type) and issubclass(t, pydantic.BaseModel):
        return _Target("object", model=t, required=required)
    if origin is list and args:
        item = _strip(args[0])
        if item is str:
            return _Target("strs", required=required)
        if isinstance(item, type) and issubclass(item, pydantic.BaseModel):
            return _Target("list", model=item, required=required)
    if origin is dict and len(args) == 2:
        value = _strip(args[1])
        if isinstance(value, type) and issubclass(value, pydantic.BaseModel):
            return _Target("object_map", model=value, required=required)
        if value is Any:
            return _Target("json_map", required=required)
    return None


@functools.cache
def _fields_of(model: type[pydantic.BaseModel]) -> dict[str, _Target]:
    out: dict[str, _Target] = {}
    for name, info in model.model_fields.items():
        target = _target_of(info.annotation, info.is_required())
        if target is not None:
            out[name] = target
    return out


_PARTY_FIELDS = ("buyer", "seller", "ship_to", "bill_to", "other_parties")
_META = ("version", "channel", "description", "purpose", "ignore", "parties", "updated_at")
# Order fields a mapping file does not set: why, for the message that refuses them.
_NOT_MAPPABLE = {
    "source": "the gateway fills source from the envelope",
    "unmapped": "the gateway lists the order's unread keys there itself",
}
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")

# ------------------------------------------------------------------------------------------
# The compiled mapping


@dataclass(frozen=True, slots=True)
class _Expr:
    text: str
    compiled: ParsedResult
    origin: str  # the file name it came from, for provenance
    simple: bool  # a plain path (a.b[0].c): composes with "." rather than " | "
    literal: bool  # a constant: a value found only by it does not make an entry exist
    heads: frozenset[str]  # the input keys it reads, when evaluated on the order


@dataclass(frozen=True, slots=True)
class _Value:
    name: str
    target: _Target
    expr: _Expr


@dataclass(frozen=True, slots=True)
class _Object:
    name: str
    model: type[pydantic.BaseModel]
    source: _Expr | None  # `from`
    when: _Expr | None
    fields: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _List:
    name: str
    model: type[pydantic.BaseModel]
    parts: tuple[_Object, ...]


@dataclass(frozen=True, slots=True)
class _Map:
    name: str
    entries: tuple[tuple[str, _Value | _Object], ...]


_Node = _Value | _Object | _List | _Map


def _dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"
