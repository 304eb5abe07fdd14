"""Reading mapping data files: one place that turns a YAML file into data or a clear problem.

Every mapping's code tables (X12, EDIFACT, cXML, UBL) and the declarative JSON mappings are
read here, and the code tables are checked and merged here too (`read_tables`): a mapping
says which tables it has and what their keys and values may be. Problems are collected, not
raised, so a configuration check reports all of them together.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["EDI_CODES", "Codes", "check_tables", "read_tables", "read_yaml"]

_SNAKE = re.compile(r"[a-z][a-z0-9_]*")

# table name -> (what its keys are, the names its values may take, or None for any
# snake_case name)
_Spec = Mapping[str, tuple[str, frozenset[str] | None]]


@dataclass(frozen=True, slots=True)
class Codes:
    """What the keys of a mapping's tables may be: `pattern`, and the same in words."""

    pattern: re.Pattern[str]
    rule: str  # read after "<what> are", e.g. "BEG01 purpose codes are ..."


EDI_CODES = Codes(re.compile(r"[A-Z0-9]{1,3}"), "1 to 3 upper-case letters or digits")


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


def read_tables(
    files: Sequence[Path],
    problems: list[str],
    *,
    spec: _Spec,
    example: str,
    codes: Codes = EDI_CODES,
    shared: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, dict[str, str]]:
    """Read, check and merge the code tables in `files`: the first is the base, each later
    one an override whose entries replace the base's and whose ``null`` entries remove them.

    `shared` holds tables of another mapping, read from that mapping's own file, which these
    files may change: their entries are merged onto them and, in every file, checked as an
    override's are. Every table of `spec` is in the result; with problems it may be
    incomplete. `example` and `codes`: see `check_tables`.
    """
    shared = shared or {}
    merged = {name: dict(shared.get(name, {})) for name in spec}
    for position, file in enumerate(files):
        before = len(problems)
        data = read_yaml(file, problems)
        if len(problems) > before:
            continue
        checked = check_tables(
            file,
            {} if data is None else data,  # None: an empty file, or only comments
            spec=spec,
            example=example,
            codes=codes,
            base=position == 0,
            shared=shared.keys(),
            problems=problems,
        )
        for table, entries in checked.items():
            for key, value in entries.items():
                if value is None:
                    merged[table].pop(key, None)
                else:
                    merged[table][key] = value
    return merged


def check_tables(
    file: Path,
    data: Any,
    *,
    spec: _Spec,
    example: str,
    base: bool,
    problems: list[str],
    codes: Codes = EDI_CODES,
    shared: Collection[str] = (),
) -> dict[str, dict[str, str | None]]:
    """Check one file of code tables against `spec`; keys must match `codes`, and `example`
    is a key shown, quoted, when YAML read one as a number or a boolean. In an override
    file (`base` False) a null value removes an entry; the base file must have every table
    but the `shared` ones, which change another mapping's tables as an override does."""
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
            elif not codes.pattern.fullmatch(key):
                problems.append(f"{place}: {what} are {codes.rule}")
            elif value is None:
                if base and name not in shared:
                    problems.append(f"{place}: null removes an entry, only in an override file")
                else:
                    checked[key] = None
            elif allowed is not None and (not isinstance(value, str) or value not in allowed):
                problems.append(f"{place}: {value!r} is not one of {', '.join(sorted(allowed))}")
            elif not isinstance(value, str):
                problems.append(f"{place}: the value must be a name, not {value!r}")
            elif allowed is None and not _SNAKE.fullmatch(value):
                problems.append(f"{place}: {value!r} must be a snake_case name")
            else:
                checked[key] = value
        found[name] = checked
    if base:
        for name in spec:
            if name not in data and name not in shared:
                problems.append(f"{file}: table {name!r} is missing")
    return found
