"""The functions a mapping's JMESPath expressions may call besides JMESPath's own
(`CartFunctions`: decimal, add, multiply, divide, percent, lookup, from_entries, and
to_string/to_number/type that know Decimal). Money stays Decimal throughout; a value that is
not a number raises `_BadNumber`, which the run reports as JSONMAP_BAD_NUMBER. See
`gateway.mapping.jsonmap`.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, Inexact, localcontext
from typing import Any

from jmespath.exceptions import JMESPathTypeError
from jmespath.functions import Functions, signature
from jmespath.visitor import Options

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
