"""Running a loaded mapping on one order object: `JsonMapping.map`, which evaluates each field's
expression (`_Run`), converts it to the field's type, records provenance and reports a bad
value with the JMESPath of the value in the order. See `gateway.mapping.jsonmap`.
"""

from __future__ import annotations

import datetime as dt
import typing
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from jmespath.exceptions import JMESPathError

from gateway.errors import MappingError
from gateway.formats.base import Document
from gateway.mapping.builder import envelope_source, not_an_order, validated_order
from gateway.mapping.jsonmap.functions import _OPTIONS, _BadNumber, _decimal, _jp_type
from gateway.mapping.jsonmap.nodes import (
    _dotted,
    _Expr,
    _fields_of,
    _List,
    _Node,
    _Object,
    _Target,
    _Value,
)
from gateway.model import Channel, Order, Purpose


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
            raise not_an_order(
                doc, f"{doc.doc_type} at {doc.position} is not a {self.channel.value} order object"
            )
        return _Run(self, doc, trace).order()


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

        def locate(loc: tuple[int | str, ...]) -> tuple[str, str]:
            where = _dotted(loc)
            return where, local.get(where, doc.position).rpartition(" <- ")[2]

        order = validated_order(values, doc.position, locate=locate)
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
