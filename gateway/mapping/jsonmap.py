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

import datetime as dt
import difflib
import functools
import re
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, Inexact, localcontext
from enum import StrEnum
from pathlib import Path
from typing import Any

import jmespath
import pydantic
from jmespath.exceptions import JMESPathError, JMESPathTypeError
from jmespath.functions import Functions, signature
from jmespath.parser import ParsedResult
from jmespath.visitor import Options

from gateway.errors import ConfigError, MappingError
from gateway.formats.base import Document
from gateway.mapping.builder import envelope_source
from gateway.mapping.tables import read_yaml
from gateway.model import Channel, Order, Purpose

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

MAPPINGS_DIR = Path(__file__).resolve().parents[2] / "mappings" / "carts"
SHOPIFY_MAPPING = MAPPINGS_DIR / "shopify.yaml"
WOOCOMMERCE_MAPPING = MAPPINGS_DIR / "woocommerce.yaml"

# ------------------------------------------------------------------------------------------
# Functions available to expressions


class _BadNumber(ValueError):
    """A registered function was given text that is not a number."""


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_DIVISION_PLACES = Decimal("0.000001")


def _decimal(value: Any) -> Decimal | None:
    """A JSON value as Decimal: numbers through their text, numeric text; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise _BadNumber(f"{value!r} is a flag, not a number")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):  # only from callers that parsed JSON themselves
        return Decimal(str(value))
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if _NUMBER.fullmatch(text):
            return Decimal(text)
        raise _BadNumber(f"{value[:40]!r} is not a number")
    raise _BadNumber(f"a JSON {_jp_type(value)} is not a number")


def _jp_type(value: Any) -> str:
    """The JMESPath type name of a value; Decimal is a number."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    if value is None:
        return "null"
    if isinstance(value, int | float | Decimal):
        return "number"
    if type(value).__name__ == "_Expression":
        return "expref"
    return "unknown"


# Python type name -> JMESPath type name, Decimal included.
_PY_TYPES = {
    "bool": "boolean",
    "list": "array",
    "dict": "object",
    "NoneType": "null",
    "str": "string",
    "float": "number",
    "int": "number",
    "Decimal": "number",
    "_Expression": "expref",
}


class CartFunctions(Functions):
    """JMESPath's built-in functions, Decimal-aware, plus the functions cart mappings need.

    decimal(x)                  a number or numeric text as a number (null stays null)
    add(x, ...)                 the sum of numbers or numeric texts, arrays of them
                                flattened one level, nulls skipped (null if nothing to add)
    multiply(a, b)              a × b (null if either is null)
    divide(a, b)                a ÷ b, exact, or rounded half-up to 6 places when the
                                quotient does not terminate (null if either is null or b is 0)
    percent(rate)               a rate as a percentage: 0.0725 -> 7.25, 0.06 -> 6
    lookup(key, table)          table[key] for a text key and an object literal, else null
    from_entries(list, k, v)    [{k: "a", v: 1}, ...] -> {"a": 1, ...}
    to_number, to_string, type  as built in, but numbers are Decimal, never float
    """

    # Replaces the built-in check, which knows only int and float as numbers.
    def _type_check_single(self, current: Any, types: list[str], function_name: str) -> None:
        actual = _jp_type(current)
        for allowed in types:
            base, _, sub = allowed.partition("-")
            if base == actual and (not sub or all(_jp_type(e) == sub for e in current)):
                return
        raise JMESPathTypeError(function_name, current, actual, types)

    # Used by sort_by, min_by and max_by to name a key's type.
    def _convert_to_jmespath_type(self, pyobject: str) -> str:
        return _PY_TYPES.get(pyobject, "unknown")

    @signature({"types": []})
    def _func_type(self, arg: Any) -> str:
        return _jp_type(arg)

    @signature({"types": []})
    def _func_to_string(self, arg: Any) -> str:
        if isinstance(arg, str):
            return arg
        if isinstance(arg, Decimal):
            return format(arg, "f")
        return _json_text(arg)

    @signature({"types": []})
    def _func_to_number(self, arg: Any) -> Decimal | int | None:
        if isinstance(arg, bool) or not isinstance(arg, int | Decimal | str):
            return None
        if isinstance(arg, int | Decimal):
            return arg
        text = arg.strip()
        if not _NUMBER.fullmatch(text):
            return None
        number = Decimal(text)
        return int(number) if re.fullmatch(r"[+-]?\d+", text) else number

    @signature({"types": []})
    def _func_decimal(self, arg: Any) -> Decimal | None:
        return _decimal(arg)

    @signature({"types": [], "variadic": True})
    def _func_add(self, *args: Any) -> Decimal | None:
        total: Decimal | None = None
        for arg in args:
            for item in arg if isinstance(arg, list) else [arg]:
                value = _decimal(item)
                if value is not None:
                    total = value if total is None else total + value
        return total

    @signature({"types": []}, {"types": []})
    def _func_multiply(self, a: Any, b: Any) -> Decimal | None:
        x, y = _decimal(a), _decimal(b)
        return None if x is None or y is None else x * y

    @signature({"types": []}, {"types": []})
    def _func_divide(self, a: Any, b: Any) -> Decimal | None:
        x, y = _decimal(a), _decimal(b)
        if x is None or y is None or y == 0:
            return None
        with localcontext() as ctx:
            ctx.prec = 34
            ctx.rounding = ROUND_HALF_UP
            ctx.clear_flags()
            quotient = x / y
            if ctx.flags[Inexact]:
                quotient = quotient.quantize(_DIVISION_PLACES)
        return quotient

    @signature({"types": []})
    def _func_percent(self, rate: Any) -> Decimal | None:
        value = _decimal(rate)
        if value is None:
            return None
        value *= 100
        # 0.0725 -> 7.25 and 0.06 -> 6, not 7.2500 and 6.00
        return (
            value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()
        )

    @signature({"types": []}, {"types": ["object"]})
    def _func_lookup(self, key: Any, table: dict[str, Any]) -> Any:
        if isinstance(key, bool) or not isinstance(key, str | int):
            return None
        return table.get(str(key))

    @signature({"types": ["array", "null"]}, {"types": ["string"]}, {"types": ["string"]})
    def _func_from_entries(self, entries: list[Any] | None, key: str, value: str) -> Any:
        if entries is None:
            return None
        out: dict[str, Any] = {}
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get(key), str | int):
                out[str(entry[key])] = entry.get(value)
        return out


_OPTIONS = Options(custom_functions=CartFunctions())
_FUNCTIONS: dict[str, Any] = CartFunctions.FUNCTION_TABLE


def _json_text(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"), default=lambda d: format(d, "f"))


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


@dataclass(frozen=True)
class JsonMapping:
    """A loaded, checked mapping file. `map` turns one order object into an Order."""

    name: str
    channel: Channel
    fields: tuple[_Node, ...]
    purpose_rules: tuple[tuple[_Expr, Purpose], ...]
    purpose_default: Purpose
    purpose_origin: str
    ignore: frozenset[str]
    used: frozenset[str]  # top-level input keys some expression reads
    sources: tuple[str, ...] = ()
    # When the platform last changed the order (source.updated_at): a copy older than the
    # one the gateway holds is not a new version (webhooks arrive out of order).
    updated_at: _Expr | None = None

    def map(self, doc: Document, trace: dict[str, str] | None = None) -> Order:
        """Map one `Document` whose body is an order object. Raises MappingError."""
        if doc.doc_type != "order" or not isinstance(doc.body, dict):
            raise MappingError(
                f"{doc.doc_type} at {doc.position} is not a {self.channel.value} order object",
                reason="NOT_AN_ORDER",
                position=doc.position,
            )
        return _Run(self, doc, trace).order()


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


def _read_yaml(file: Path, problems: list[str]) -> Any:
    return read_yaml(file, problems, "the mapping")


_MAX_FILE_DEPTH = 32


def _tree_copy(value: Any, depth: int = 0) -> Any:
    """A copy with no shared parts (YAML aliases share them), so an override changes one place."""
    if depth > _MAX_FILE_DEPTH:
        raise RecursionError
    if isinstance(value, dict):
        return {k: _tree_copy(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_tree_copy(v, depth + 1) for v in value]
    return value


def _overlay(
    base: dict[str, Any],
    over: dict[str, Any],
    path: tuple[str | int, ...],
    file: str,
    origins: dict[tuple[str | int, ...], str],
) -> None:
    for key, value in over.items():
        here = (*path, key)
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            _overlay(base[key], value, here, file, origins)
        else:
            base[key] = value
            for older in [p for p in origins if p[: len(here)] == here]:
                del origins[older]  # what an earlier file set below here is gone
            origins[here] = file


def _dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _suggest(word: str, known: Iterable[str]) -> str:
    hint = difflib.get_close_matches(word, list(known), n=1)
    return f"; did you mean {hint[0]!r}?" if hint else ""


class _Compiler:
    """Checks a mapping file's data and compiles it, collecting every problem."""

    def __init__(self, origins: dict[tuple[str | int, ...], str]):
        self.origins = origins
        self.problems: list[str] = []

    def file(self, path: tuple[str | int, ...]) -> str:
        for n in range(len(path), -1, -1):
            if path[:n] in self.origins:
                return self.origins[path[:n]]
        return "<mapping>"

    def problem(self, path: tuple[str | int, ...], message: str) -> None:
        self.problems.append(f"{self.file(path)}: {_dotted(path)}: {message}")

    # -- the top level -----------------------------------------------------------------------

    def mapping(
        self, data: dict[str, Any], name: str, sources: tuple[str, ...]
    ) -> JsonMapping | None:
        order_fields = _fields_of(Order)
        top_names = [
            n
            for n in order_fields
            if n not in _PARTY_FIELDS and n not in _NOT_MAPPABLE and n not in ("channel", "purpose")
        ]
        items: list[tuple[str, Any, tuple[str | int, ...]]] = []
        for key, value in data.items():
            path: tuple[str | int, ...] = (str(key),)
            if key in _META:
                continue
            if key in _PARTY_FIELDS:
                self.problem(path, f"parties go under 'parties:' (parties: {{{key}: ...}})")
            elif key in _NOT_MAPPABLE:
                self.problem(path, f"not set by a mapping: {_NOT_MAPPABLE[key]}")
            elif key in top_names:
                items.append((key, value, path))
            else:
                self.problem(
                    path,
                    f"unknown key{_suggest(str(key), [*top_names, *_META, *_PARTY_FIELDS])} "
                    "(the keys are Order field names and version, channel, description, "
                    "parties, purpose, ignore)",
                )
        parties = data.get("parties")
        if parties is not None:
            if not isinstance(parties, dict):
                self.problem(
                    ("parties",), f"must map party roles ({', '.join(_PARTY_FIELDS)}) to blocks"
                )
            else:
                for key, value in parties.items():
                    path = ("parties", str(key))
                    if key in _PARTY_FIELDS:
                        items.append((key, value, path))
                    else:
                        self.problem(
                            path,
                            f"not a party{_suggest(str(key), _PARTY_FIELDS)} (parties are {', '.join(_PARTY_FIELDS)})",
                        )
        if data.get("version") != 1:
            self.problem(
                ("version",),
                f"{data.get('version')!r} is not a supported version; write version: 1",
            )
        channel = self._channel(data.get("channel"))
        if "po_number" not in data:
            self.problem(("po_number",), "missing: every order needs a po_number expression")
        fields = self.fields(items, Order)
        rules, default = self._purpose(data.get("purpose"))
        ignore = self._ignore(data.get("ignore"))
        updated = None
        if data.get("updated_at") is not None:
            updated = self.expr(data["updated_at"], ("updated_at",))
        if self.problems or channel is None:
            return None
        used = frozenset().union(*(_root_heads(n) for n in fields))
        used = used.union(*(e.heads for e, _ in rules))
        if updated is not None:
            used = used.union(updated.heads)
        return JsonMapping(
            name=name,
            channel=channel,
            fields=fields,
            purpose_rules=rules,
            purpose_default=default,
            purpose_origin=Path(self.file(("purpose", "default"))).name,
            ignore=ignore,
            used=used,
            sources=sources,
            updated_at=updated,
        )

    def _channel(self, value: Any) -> Channel | None:
        names = [c.value for c in Channel]
        if value in names:
            return Channel(value)
        self.problem(
            ("channel",),
            f"{value!r} is not a channel{_suggest(str(value), names)} (one of {', '.join(names)})"
            if value is not None
            else f"missing: say which channel the orders come from ({', '.join(names)})",
        )
        return None

    def _purpose(self, data: Any) -> tuple[tuple[tuple[_Expr, Purpose], ...], Purpose]:
        names = [p.value for p in Purpose]
        if data is None:
            return (), Purpose.ORIGINAL
        if not isinstance(data, dict):
            self.problem(("purpose",), "must be a block with `rules` and `default`")
            return (), Purpose.ORIGINAL
        for key in data:
            if key not in ("rules", "default"):
                self.problem(
                    ("purpose", str(key)),
                    f"unknown key{_suggest(str(key), ['rules', 'default'])}; a purpose block has rules and default",
                )
        default = Purpose.ORIGINAL
        if "default" in data:
            if data["default"] in names:
                default = Purpose(data["default"])
            else:
                self.problem(
                    ("purpose", "default"),
                    f"{data['default']!r} is not a purpose{_suggest(str(data['default']), names)} (one of {', '.join(names)})",
                )
        rules: list[tuple[_Expr, Purpose]] = []
        raw = data.get("rules") or []
        if not isinstance(raw, list):
            self.problem(
                ("purpose", "rules"), "must be a list of {when: <expression>, purpose: <name>}"
            )
            return (), default
        for i, rule in enumerate(raw):
            path: tuple[str | int, ...] = ("purpose", "rules", i)
            if not isinstance(rule, dict) or set(rule) != {"when", "purpose"}:
                self.problem(path, "each rule is {when: <expression>, purpose: <name>}")
                continue
            expr = self.expr(rule["when"], (*path, "when"))
            if rule["purpose"] not in names:
                self.problem(
                    (*path, "purpose"),
                    f"{rule['purpose']!r} is not a purpose{_suggest(str(rule['purpose']), names)} (one of {', '.join(names)})",
                )
            elif expr is not None:
                rules.append((expr, Purpose(rule["purpose"])))
        return tuple(rules), default

    def _ignore(self, data: Any) -> frozenset[str]:
        if data is None:
            return frozenset()
        if not isinstance(data, list) or not all(isinstance(k, str) for k in data):
            self.problem(("ignore",), "must be a list of top-level key names")
            return frozenset()
        return frozenset(data)

    # -- blocks and fields -------------------------------------------------------------------

    def fields(
        self,
        items: Iterable[tuple[str, Any, tuple[str | int, ...]]],
        model: type[pydantic.BaseModel],
    ) -> tuple[_Node, ...]:
        known = _fields_of(model)
        nodes: list[_Node] = []
        for name, value, path in items:
            target = known.get(name)
            if target is None:
                self.problem(path, f"{model.__name__} has no field {name!r}{_suggest(name, known)}")
                continue
            node = self.node(name, value, target, path)
            if node is not None:
                nodes.append(node)
        return tuple(nodes)

    def node(
        self, name: str, value: Any, target: _Target, path: tuple[str | int, ...]
    ) -> _Node | None:
        if target.kind in ("object", "list") and target.model is not None:
            if target.kind == "object":
                if not isinstance(value, dict):
                    self.problem(
                        path,
                        f"a {target.model.__name__} maps to a block of its fields, not {_yaml_type(value)}",
                    )
                    return None
                return self.block(name, value, target.model, path)
            blocks = value if isinstance(value, list) else [value]
            parts: list[_Object] = []
            for i, block in enumerate(blocks):
                where = (*path, i) if isinstance(value, list) else path
                if not isinstance(block, dict):
                    self.problem(
                        where,
                        f"a list of {target.model.__name__} maps to a block (with `from:` for one entry per element) or a list of blocks, not {_yaml_type(block)}",
                    )
                    continue
                part = self.block(name, block, target.model, where)
                if part is not None:
                    parts.append(part)
            return _List(name, target.model, tuple(parts)) if parts else None
        if target.kind in ("object_map", "json_map"):
            if not isinstance(value, dict):
                self.problem(
                    path,
                    f"{name} maps names to {'blocks' if target.kind == 'object_map' else 'expressions'}",
                )
                return None
            entries: list[tuple[str, _Value | _Object]] = []
            for key, item in value.items():
                where = (*path, str(key))
                if not isinstance(key, str) or not _KEY.fullmatch(key):
                    self.problem(
                        where,
                        "names are letters, digits, '_', '.', ':', '-', starting with a letter or '_'",
                    )
                    continue
                entry: _Value | _Object | None
                if target.kind == "object_map" and target.model is not None:
                    entry = (
                        self.block(key, item, target.model, where)
                        if isinstance(item, dict)
                        else None
                    )
                    if entry is None and not isinstance(item, dict):
                        self.problem(
                            where, f"a {target.model.__name__} maps to a block of its fields"
                        )
                else:
                    expr = self.expr(item, where)
                    entry = _Value(key, _Target("json"), expr) if expr else None
                if entry is not None:
                    entries.append((key, entry))
            return _Map(name, tuple(entries))
        expr = self.expr(value, path)
        return _Value(name, target, expr) if expr is not None else None

    def block(
        self,
        name: str,
        data: dict[str, Any],
        model: type[pydantic.BaseModel],
        path: tuple[str | int, ...],
    ) -> _Object | None:
        source = self.expr(data["from"], (*path, "from")) if "from" in data else None
        when = self.expr(data["when"], (*path, "when")) if "when" in data else None
        known = _fields_of(model)
        items = [(str(k), v, (*path, str(k))) for k, v in data.items() if k not in ("from", "when")]
        fields = self.fields(items, model)
        if not items:
            self.problem(path, f"the block maps no field of {model.__name__}")
        for field, target in known.items():
            if target.required and field not in data and model is not Order:
                self.problem(path, f"{field} is required in every {model.__name__}; map it")
        return _Object(name, model, source, when, fields)

    def expr(self, value: Any, path: tuple[str | int, ...]) -> _Expr | None:
        if not isinstance(value, str) or not value.strip():
            self.problem(
                path,
                f"expected a JMESPath expression in quotes, not {_yaml_type(value)} (a constant text is written \"'text'\")",
            )
            return None
        try:
            compiled = jmespath.compile(value)
        except JMESPathError as exc:
            detail = " ".join(str(exc).split("\n")[0].split())
            self.problem(path, f"{value!r} is not valid JMESPath: {detail}")
            return None
        problems: list[str] = []
        _check_tree(compiled.parsed, problems)
        for message in problems:
            self.problem(path, f"{value!r}: {message}")
        if problems:
            return None
        tree = compiled.parsed
        return _Expr(
            text=value.strip(),
            compiled=compiled,
            origin=Path(self.file(path)).name,
            simple=_is_simple(tree),
            literal=tree["type"] == "literal",
            heads=frozenset(_heads(tree)),
        )


def _yaml_type(value: Any) -> str:
    if isinstance(value, dt.date):
        return "a date (YAML reads an unquoted date as one)"
    names = {dict: "a block", list: "a list", str: "text", bool: "a yes/no", type(None): "nothing"}
    return names.get(type(value), "a number")


def _check_tree(node: Any, problems: list[str]) -> None:
    """Function names and argument counts known; no float literals. Iterative, no recursion."""
    stack = [node]
    while stack:
        n = stack.pop()
        kind = n.get("type")
        if kind == "function_expression":
            name, count = n["value"], len(n["children"])
            spec = _FUNCTIONS.get(name)
            if spec is None:
                problems.append(f"unknown function {name}(){_suggest(name, _FUNCTIONS)}")
            else:
                sig = spec["signature"]
                variadic = bool(sig) and sig[-1].get("variadic", False)
                if (count < len(sig)) if variadic else (count != len(sig)):
                    want = f"at least {len(sig)}" if variadic else str(len(sig))
                    plural = "s" if len(sig) != 1 else ""
                    problems.append(f"{name}() takes {want} argument{plural}, not {count}")
        elif kind == "literal" and _has_float(n["value"]):
            problems.append(
                "a number with a fraction in a literal would be read as a float; "
                "write it as text and convert it: decimal('1.5')"
            )
        stack.extend(n.get("children", []))


def _has_float(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, float):
            return True
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False


def _is_simple(node: Any) -> bool:
    """A plain path from the current object: a, a.b, a[0].b."""
    kind = node.get("type")
    children = node.get("children", [])
    if kind == "field":
        return True
    if kind == "subexpression":
        return all(_is_simple(c) for c in children)
    if kind == "index_expression":
        return len(children) == 2 and _is_simple(children[0]) and children[1]["type"] == "index"
    return False


_RELATIVE_RIGHT = frozenset(
    {
        "subexpression",
        "index_expression",
        "projection",
        "value_projection",
        "filter_projection",
        "pipe",
        "flatten",
    }
)


def _heads(node: Any) -> set[str]:
    """The top-level keys of its input an expression reads (relative parts excluded)."""
    kind = node.get("type")
    children = node.get("children", [])
    if kind == "field":
        return {node["value"]}
    if kind in _RELATIVE_RIGHT:
        if kind == "subexpression" and children and children[0]["type"] == "current":
            return _heads(children[1]) if len(children) > 1 else set()
        return _heads(children[0]) if children else set()
    if kind in ("expref", "literal", "current", "identity", "index", "slice"):
        return set()
    out: set[str] = set()
    for child in children:
        out |= _heads(child)
    return out


def _root_heads(node: _Node) -> frozenset[str]:
    """Keys of the order read by a node evaluated on the order itself."""
    if isinstance(node, _Value):
        return node.expr.heads
    if isinstance(node, _Object):
        if node.source is not None:
            return node.source.heads
        heads = node.when.heads if node.when is not None else frozenset()
        return heads.union(*(_root_heads(f) for f in node.fields))
    if isinstance(node, _List):
        return frozenset().union(*(_root_heads(p) for p in node.parts))
    return frozenset().union(*(_root_heads(e) for _, e in node.entries))


# ------------------------------------------------------------------------------------------
# Running a mapping on one order

_Base = tuple[str, bool] | None  # (expression giving the current object, is a plain path)


def _join(base: _Base, expr: _Expr) -> tuple[str, bool]:
    if base is None:
        return expr.text, expr.simple
    text, simple = base
    if simple and expr.simple:
        return f"{text}.{expr.text}", True
    return f"{text} | {expr.text}", False


def _index(base: tuple[str, bool], i: int) -> tuple[str, bool]:
    text, simple = base
    return (f"{text}[{i}]", True) if simple else (f"{text} | [{i}]", False)


def _truthy(value: Any) -> bool:
    return not (value is None or value is False or value in ("", [], {}))


def _present(value: Any) -> bool:
    return value is not None and value != [] and value != {}


class _Run:
    """The state of one mapping run."""

    def __init__(self, mapping: JsonMapping, doc: Document, trace: dict[str, str] | None):
        self.m = mapping
        self.doc = doc
        self.trace = trace

    def order(self) -> Order:
        m, doc = self.m, self.doc
        body: dict[str, Any] = doc.body
        local: dict[str, str] = {}
        values, _ = self.fields(m.fields, body, None, "", local)
        po = next((n for n in m.fields if n.name == "po_number"), None)
        if "po_number" not in values:
            where = po.expr.text if isinstance(po, _Value) else "po_number"
            raise MappingError(
                f"the {m.channel.value} order at {doc.position} has no order number "
                f"({m.name}: po_number <- {where})",
                reason="MISSING_PO_NUMBER",
                position=where,
            )
        values["channel"] = m.channel
        values["purpose"] = self.purpose(body, local)
        values["unmapped"] = [
            str(k)[:100]
            for k, v in body.items()
            if k not in m.used and k not in m.ignore and _truthy(v)
        ]
        values["source"] = envelope_source(doc, omit=("group_control_number",))
        values["source"]["updated_at"] = self.updated_at(body, local)
        try:
            order = Order.model_validate(values)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = _dotted(first["loc"])
            raise MappingError(
                f"the mapped values do not make a valid order: {where}: {first['msg']}",
                reason="INVALID_ORDER",
                position=local.get(where, doc.position).rpartition(" <- ")[2],
            ) from exc
        if self.trace is not None:
            self.trace.update(local)
        return order

    def updated_at(self, body: dict[str, Any], trace: dict[str, str]) -> dt.datetime | None:
        """The platform's last-change time; None when absent or unreadable (never an error:
        it only orders copies, and without it every differing copy is a new version)."""
        expr = self.m.updated_at
        if expr is None:
            return None
        value = self.search(expr, body, expr.text)
        if not isinstance(value, str):
            return None
        try:
            when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None:  # WooCommerce date_modified_gmt: UTC without an offset
            when = when.replace(tzinfo=dt.UTC)
        trace["source.updated_at"] = f"{expr.origin}: source.updated_at <- {expr.text}"
        return when

    def purpose(self, body: dict[str, Any], trace: dict[str, str]) -> Purpose:
        for expr, purpose in self.m.purpose_rules:
            if _truthy(self.search(expr, body, expr.text)):
                trace["purpose"] = f"{expr.origin}: purpose <- {expr.text}"
                return purpose
        trace["purpose"] = f"{self.m.purpose_origin}: purpose <- default"
        return self.m.purpose_default

    # -- evaluation --------------------------------------------------------------------------

    def search(self, expr: _Expr, context: Any, where: str) -> Any:
        try:
            return expr.compiled.search(context, _OPTIONS)
        except _BadNumber as exc:
            raise MappingError(
                f"{where}: {exc} ({self.m.name} at {self.doc.position})",
                reason="JSON_BAD_NUMBER",
                position=where,
            ) from exc
        except (JMESPathError, TypeError, ArithmeticError) as exc:
            detail = " ".join(str(exc).split())[:200]
            raise MappingError(
                f"the expression {expr.text!r} ({expr.origin}) failed on the order at "
                f"{self.doc.position}: {detail}",
                reason="JSON_EXPRESSION",
                position=where,
            ) from exc

    def fields(
        self,
        nodes: tuple[_Node, ...],
        context: Any,
        base: _Base,
        prefix: str,
        trace: dict[str, str],
    ) -> tuple[dict[str, Any], bool]:
        """The values of `nodes` on `context`, and whether a non-literal found anything."""
        out: dict[str, Any] = {}
        found = False
        for node in nodes:
            path = f"{prefix}.{node.name}" if prefix else node.name
            if isinstance(node, _Value):
                where = _join(base, node.expr)[0]
                value = self.convert(
                    self.search(node.expr, context, where), node.target, where, path
                )
                if _present(value):
                    out[node.name] = value
                    found = found or not node.expr.literal
                    trace[path] = f"{node.expr.origin}: {path} <- {where}"
            elif isinstance(node, _Object):
                obj = self.object(node, context, base, path, trace)
                if obj is not None:
                    out[node.name], found = obj, True
            elif isinstance(node, _List):
                items = self.items(node, context, base, path, trace)
                if items:
                    out[node.name], found = items, True
            else:
                entries: dict[str, Any] = {}
                for key, entry in node.entries:  # an entry's name is its key
                    got, _ = self.fields((entry,), context, base, path, trace)
                    if key in got:
                        entries[key] = got[key]
                if entries:
                    out[node.name], found = entries, True
        return out, found

    def object(
        self, node: _Object, context: Any, base: _Base, path: str, trace: dict[str, str]
    ) -> dict[str, Any] | None:
        if node.source is not None:
            base = _join(base, node.source)
            context = self.search(node.source, context, base[0])
            if context is None:
                return None
            if not isinstance(context, dict):
                raise MappingError(
                    f"{base[0]} is a JSON {_jp_type(context)}, but {path} needs an object "
                    f"({self.m.name} at {self.doc.position})",
                    reason="JSON_BAD_VALUE",
                    position=base[0],
                )
        return self.entry(node, context, base, path, trace)

    def items(
        self, node: _List, context: Any, base: _Base, path: str, trace: dict[str, str]
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for part in node.parts:
            elements: list[tuple[Any, _Base]]
            if part.source is None:
                elements = [(context, base)]
            else:
                where = _join(base, part.source)
                found = self.search(part.source, context, where[0])
                if found is None:
                    continue
                if isinstance(found, list):
                    elements = [(e, _index(where, i)) for i, e in enumerate(found)]
                else:
                    elements = [(found, where)]
            for element, at in elements:
                entry = self.entry(part, element, at, f"{path}[{len(out)}]", trace)
                if entry is not None:
                    out.append(entry)
        return out

    def entry(
        self, node: _Object, context: Any, base: _Base, path: str, trace: dict[str, str]
    ) -> dict[str, Any] | None:
        """One object from a block on its context; None when it finds nothing."""
        if node.when is not None:
            where = _join(base, node.when)[0]
            if not _truthy(self.search(node.when, context, where)):
                return None
        local: dict[str, str] = {}
        values, found = self.fields(node.fields, context, base, path, local)
        if not found:
            return None
        for field, target in _fields_of(node.model).items():
            if target.required and field not in values:
                expr = next((f for f in node.fields if f.name == field), None)
                where = _join(base, expr.expr)[0] if isinstance(expr, _Value) else path
                raise MappingError(
                    f"{path} has no {field} ({self.m.name}: {where}, in the order at "
                    f"{self.doc.position})",
                    reason=f"JSON_MISSING_{field.upper()}",
                    position=where,
                )
        trace.update(local)
        return values

    # -- values ------------------------------------------------------------------------------

    def convert(self, raw: Any, target: _Target, where: str, path: str) -> Any:
        kind = target.kind
        if raw is None:
            return [] if kind == "strs" else None
        if kind == "json":
            return _plain_json(raw) if raw not in ("", [], {}) else None
        if kind == "strs":
            items = raw if isinstance(raw, list) else [raw]
            texts = [self.text(v, where, path) for v in items if v is not None]
            return [t for t in texts if t]
        if kind in ("str", "enum"):
            text = self.text(raw, where, path)
            if text and kind == "enum" and target.enum is not None:
                names = [e.value for e in target.enum]
                if text not in names:
                    self.bad(
                        "JSON_BAD_VALUE",
                        f"{text[:40]!r} is not one of {', '.join(names)}",
                        where,
                        path,
                    )
            return text
        if kind == "decimal":
            try:
                return _decimal(raw)
            except _BadNumber as exc:
                self.bad("JSON_BAD_NUMBER", str(exc), where, path)
        if kind == "int":
            number = self.convert(raw, _Target("decimal"), where, path)
            if number is None:
                return None
            if number != number.to_integral_value():
                self.bad("JSON_BAD_NUMBER", f"{number} is not a whole number", where, path)
            return int(number)
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            self.bad("JSON_BAD_VALUE", f"a JSON {_jp_type(raw)} is not true or false", where, path)
        if kind == "date":
            return self.date(raw, where, path)
        self.bad("JSON_BAD_VALUE", f"a JSON {_jp_type(raw)} cannot fill it", where, path)

    def text(self, raw: Any, where: str, path: str) -> str | None:
        if isinstance(raw, str):
            return raw.strip() or None
        if isinstance(raw, bool):
            return "true" if raw else "false"
        if isinstance(raw, int):
            return str(raw)
        if isinstance(raw, Decimal):
            return format(raw, "f")
        # A list or an object is never turned into text silently: the mapping must pick.
        self.bad("JSON_BAD_VALUE", f"a JSON {_jp_type(raw)} where text belongs", where, path)

    def date(self, raw: Any, where: str, path: str) -> dt.date | None:
        if isinstance(raw, str):
            text = raw.strip()
            if not text:
                return None
            try:
                if len(text) == 10:
                    return dt.date.fromisoformat(text)
                return dt.datetime.fromisoformat(text).date()
            except ValueError:
                pass
        self.bad("JSON_BAD_DATE", f"{str(raw)[:40]!r} is not an ISO 8601 date", where, path)

    def bad(self, reason: str, detail: str, where: str, path: str) -> typing.NoReturn:
        raise MappingError(
            f"{path} ({where}): {detail} ({self.m.name}, order at {self.doc.position})",
            reason=reason,
            position=where,
        )


def _plain_json(value: Any) -> Any:
    """A JSON value with Decimal numbers as text, so extensions serialize the same anywhere."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {str(k): _plain_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_json(v) for v in value]
    return value
