"""Reading mapping data files: one place that turns a YAML file into data or a clear problem.

Every mapping's code tables (X12, EDIFACT, cXML, UBL) and the declarative JSON mappings are
read here; each mapping then checks its own tables. Problems are collected, not raised, so
a configuration check reports all of them together.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["check_tables", "read_yaml"]

_SNAKE = re.compile(r"[a-z][a-z0-9_]*")


def read_yaml(file: Path, problems: list[str], what: str = "the mapping tables") -> Any:
    """The YAML data in `file`, or None with a sentence added to `problems`."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(f"{file}: cannot read {what} ({exc.strerror or exc})")
        return None
    try:
        return yaml.safe_load(text)  # type: ignore[no-untyped-call, unused-ignore]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problems.append(f"{file}{where}: not valid YAML ({getattr(exc, 'problem', exc)})")
        return None


def check_tables(
    file: Path,
    data: Any,
    *,
    spec: Mapping[str, tuple[str, frozenset[str] | None]],
    code: re.Pattern[str],
    example: str,
    base: bool,
    problems: list[str],
) -> dict[str, dict[str, str | None]]:
    """Check one file of code tables: `spec` maps a table name to (what its keys are, the
    names its values may take, or None for any snake_case name). In an override file
    (`base` False) a null value removes an entry; the base file must have every table."""
    if not isinstance(data, dict):
        problems.append(f"{file}: expected a mapping of table name to entries at the top level")
        return {}
    found: dict[str, dict[str, str | None]] = {}
    for name, entries in data.items():
        if name == "version":
            if entries != 1:
                problems.append(f"{file}: version {entries!r} is not supported; use 1")
            continue
        if name not in spec:
            known = ", ".join(sorted(spec))
            problems.append(f"{file}: unknown table {name!r}; known tables: {known}")
            continue
        what, allowed = spec[name]
        if not isinstance(entries, dict):
            problems.append(f"{file}: table {name!r} must map {what} to names")
            continue
        checked: dict[str, str | None] = {}
        for key, value in entries.items():
            place = f"{file}: {name}[{key!r}]"
            if not isinstance(key, str):
                problems.append(
                    f"{place}: the code must be a quoted string (YAML read {key!r} as "
                    f'{type(key).__name__}); write it in quotes, e.g. "{example}"'
                )
                continue
            if not code.fullmatch(key):
                problems.append(f"{place}: {what} are 1 to 3 upper-case letters or digits")
                continue
            if value is None:
                if base:
                    problems.append(f"{place}: null removes an entry, only in an override file")
                else:
                    checked[key] = None
                continue
            if not isinstance(value, str):
                problems.append(f"{place}: the value must be a name, not {value!r}")
            elif allowed is not None and value not in allowed:
                problems.append(f"{place}: {value!r} is not one of {', '.join(sorted(allowed))}")
            elif allowed is None and not _SNAKE.fullmatch(value):
                problems.append(f"{place}: {value!r} must be a snake_case name")
            else:
                checked[key] = value
        found[name] = checked
    if base:
        for name in spec:
            if name not in data:
                problems.append(f"{file}: table {name!r} is missing")
    return found
