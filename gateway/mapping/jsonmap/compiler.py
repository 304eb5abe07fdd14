"""Loading a mapping file: YAML read and laid over its base (`_overlay`), then checked and
compiled to nodes (`_Compiler`), every problem collected with its file and key, and
did-you-mean for a field name that does not exist. See `gateway.mapping.jsonmap`.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jmespath
import pydantic
from jmespath.exceptions import JMESPathError

from gateway.mapping.jsonmap.apply import JsonMapping
from gateway.mapping.jsonmap.functions import _FUNCTIONS
from gateway.mapping.jsonmap.nodes import (
    _KEY,
    _META,
    _NOT_MAPPABLE,
    _PARTY_FIELDS,
    _dotted,
    _Expr,
    _fields_of,
    _List,
    _Map,
    _Node,
    _Object,
    _Target,
    _Value,
)
from gateway.mapping.tables import read_yaml
from gateway.model import Channel, Order, Purpose


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
