"""Reading an ORDERS message's segments: element and component values, segment text with
the release character, numbers with either decimal mark, date formats by 2379 code, what
each mapped segment uses (so a segment with data in other elements is also kept in
unmapped), and the most components a composite may have. See
`gateway.mapping.edifact_orders`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

# ------------------------------------------------------------------------------------------
# Values

_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)")
_ESCAPE = re.compile(r"([?+:'])")
_RANGE_FORMATS = {"718": 8, "719": 12}
# (length of the value, has time) by DTM 2379 format code; no code: guessed by length.
_DATE_FORMATS = {"102": 8, "203": 12, "204": 14, "101": 6, "201": 10}
_BY_LENGTH = {8: "102", 12: "203", 14: "204", 6: "101", 10: "201"}


def _esc(v: str) -> str:
    return _ESCAPE.sub(r"?\1", v) if ("?" in v or "+" in v or ":" in v or "'" in v) else v


def _text(seg: list[Any]) -> str:
    """A segment as text with the default separators ('+' ':') and release character '?'."""
    return "+".join(_esc(e) if e.__class__ is str else ":".join(_esc(c) for c in e) for e in seg)


def _val(seg: list[Any], i: int, j: int = 0) -> str | None:
    """Component j of element i (a simple element is component 0), stripped, or None."""
    if i >= len(seg):
        return None
    v = seg[i]
    if v.__class__ is not str:
        if j >= len(v):
            return None
        v = v[j]
    elif j:
        return None
    return v.strip() or None


def _comps(seg: list[Any], i: int) -> list[str]:
    """Element i as a list of components ([] if absent)."""
    if i >= len(seg):
        return []
    v = seg[i]
    if v.__class__ is str:
        return [v] if v else []
    return list(v)


def _join(parts: Sequence[str]) -> str | None:
    text = " ".join(p.strip() for p in parts if p and p.strip())
    return text or None


def _masks(spec: str) -> tuple[int, ...]:
    """Covered components per element: "0|0,2|0-4" -> bitmasks (element 1 first)."""
    out = []
    for part in spec.split("|"):
        mask = 0
        for item in filter(None, part.split(",")):
            lo, _, hi = item.partition("-")
            for j in range(int(lo), int(hi or lo) + 1):
                mask |= 1 << j
        out.append(mask)
    return tuple(out)


def _uncovered(seg: list[Any], masks: tuple[int, ...]) -> bool:
    """True if the segment has data in an element or component the mapping does not use."""
    n = len(masks)
    for i in range(1, len(seg)):
        v = seg[i]
        if not v:
            continue
        m = masks[i - 1] if i <= n else 0
        if v.__class__ is str:
            if not m & 1:
                return True
        else:
            for j, c in enumerate(v):
                if c and not (m >> j) & 1:
                    return True
    return False


# What each mapped segment uses (element 1 first; components by index). Code-list
# qualifiers (1131/3055) next to a mapped code count as used: they only say whose code it is.
_COVER = {
    "BGM": _masks("0-2|0|0|0"),
    "DTM": _masks("0-2"),
    "RFF": _masks("0,1"),
    "NAD": _masks("0|0-2|0-4|0-4|0-3|0|0|0|0"),
    "CTA": _masks("0|0,1"),
    "COM": _masks("0,1"),
    "TAX": _masks("0|0-2|0-2||0-3"),
    "CUX": _masks("0-3"),
    "PAT": _masks("0|0-4|0,2,3"),
    "TDT": _masks("0||0||0-3"),
    "TOD": _masks("0|0|0-4"),
    "LOC": _masks("0|0-3"),
    "ALC": _masks("0|1|0||0-4"),
    "PCD": _masks("0,1"),
    "MOA": _masks("0,1"),
    "RTE": _masks("0,1"),
    "QTY": _masks("0-2"),
    "LIN": _masks("0||0-3"),
    "PIA": _masks("0|0-3|0-3|0-3|0-3|0-3"),
    "IMD": _masks("0|0|1-5"),
    "PRI": _masks("0-5"),
    "CNT": _masks("0,1"),
    "FTX": _masks("0|0||0-4|0"),
    "UNS": _masks("0"),
}
# Most components a composite may have (D96A..D01B); more means an unescaped ':'.
_MAX_COMPONENTS = {
    ("IMD", 3): 6,  # C273 7009:1131:3055:7008:7008:3453
    ("FTX", 4): 5,  # C108 4440 x 5
    ("NAD", 3): 5,  # C058 3124 x 5
    ("NAD", 4): 6,  # C080 3036 x 5, 3045
    ("NAD", 5): 4,  # C059 3042 x 4
    ("CTA", 2): 2,  # C056 3413:3412
    ("COM", 1): 2,  # C076 3148:3155
    ("QTY", 1): 3,  # C186 6063:6060:6411
    ("PRI", 1): 6,  # C509 5125:5118:5375:5387:5284:6411
    ("MOA", 1): 5,  # C516 5025:5004:6345:6343:4405
    ("DTM", 1): 3,  # C507 2005:2380:2379
}
# Triggers of segment groups the mapping does not read: what follows them belongs to them.
_GROUP_OTHERS = frozenset({"PAC", "PCI", "EQD", "SCC", "APR", "RCS", "DGS", "CCI", "STG"})

_SOURCE_TRACE = {
    "sender_id": "UNB S002 0004",
    "sender_qualifier": "UNB S002 0007",
    "receiver_id": "UNB S003 0010",
    "receiver_qualifier": "UNB S003 0007",
    "interchange_control_number": "UNB 0020",
    "group_control_number": "UNG 0048",
    "transaction_control_number": "UNH 0062",
    "version": "UNH S009 0052:0054:0051:0057",
    "test_indicator": "UNB 0035",
}
