"""Small helpers that turn stored values into what the console's pages show."""

from __future__ import annotations

import datetime as dt
from typing import Any

__all__ = ["leaves", "raw_text", "source_of", "when"]

MAX_RAW_BYTES = 200_000


def leaves(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(path, value) of every scalar of a canonical order, paths as `gateway schema` names them."""
    if isinstance(data, dict):
        items: list[tuple[str, Any]] = []
        for k, v in data.items():
            items += leaves(v, f"{prefix}.{k}" if prefix else str(k))
        return items
    if isinstance(data, list) and data and isinstance(data[0], (dict, list)):
        items = []
        for i, v in enumerate(data):
            items += leaves(v, f"{prefix}[{i}]")
        return items
    return [(prefix, data)]


def source_of(provenance: dict[str, str], path: str) -> str:
    """Where the value at `path` came from: its own record, else its closest recorded ancestor."""
    while path:
        if path in provenance:
            return provenance[path]
        cut = max(path.rfind("."), path.rfind("["))
        if cut <= 0:
            break
        path = path[:cut]
    return ""


def raw_text(body: bytes | None) -> tuple[str, bool]:
    """A message's bytes as text for a <pre> (undecodable bytes replaced), and whether it was cut."""
    if body is None:
        return "", False
    cut = len(body) > MAX_RAW_BYTES
    return body[:MAX_RAW_BYTES].decode("utf-8", errors="replace"), cut


def when(value: Any) -> str:
    """A timestamp as people read it (UTC, to the second)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return str(value.strftime("%Y-%m-%d %H:%M:%S"))
    return str(value)
