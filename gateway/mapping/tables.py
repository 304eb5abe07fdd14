"""Reading mapping data files: one place that turns a YAML file into data or a clear problem.

Every mapping's code tables (X12, EDIFACT, cXML, UBL) and the declarative JSON mappings are
read here; each mapping then checks its own tables. Problems are collected, not raised, so
a configuration check reports all of them together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["read_yaml"]


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
