"""The README's table of reliability rows stays true (issue 14, "How it is verified"): every row
of the bad-input catalogue and of the fault table is listed, and each test file the table
gives for a row names that row ("reliability F17", "reliability X1-X4, M7")."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

ALL_ROWS = (
    [f"E{i}" for i in range(1, 14)]
    + [f"X{i}" for i in range(1, 5)]
    + [f"M{i}" for i in range(1, 8)]
    + ["C1", "C2"]
    + [f"W{i}" for i in range(1, 4)]
    + [f"S{i}" for i in range(1, 5)]
    + [f"F{i}" for i in range(1, 24)]
)

_ID = r"[EXMCWSF]\d{1,2}"
_ITEM = rf"{_ID}(?:\s*(?:-|–|\.\.)\s*(?:[EXMCWSF])?\d{{1,2}})?"
_NAMED = re.compile(rf"reliability(?: rows?)?[ :]+({_ITEM}(?:\s*(?:,|and|, and)\s*{_ITEM})*)", re.I)


def expand(text: str) -> set[str]:
    """'X1-X4, M7' -> {'X1', 'X2', 'X3', 'X4', 'M7'}."""
    rows: set[str] = set()
    for m in re.finditer(r"([EXMCWSF])(\d{1,2})(?:\s*(?:-|–|\.\.)\s*(?:[EXMCWSF])?(\d{1,2}))?", text):
        letter, first, last = m.group(1), int(m.group(2)), int(m.group(3) or m.group(2))
        rows |= {f"{letter}{i}" for i in range(first, last + 1)}
    return rows


def named_in(path: Path) -> set[str]:
    text = path.read_text(errors="replace")
    return set().union(*(expand(m.group(1)) for m in _NAMED.finditer(text)))


def readme_table() -> list[tuple[set[str], list[str]]]:
    text = (ROOT / "README.md").read_text()
    lines = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("| ") else []
        if len(cells) == 2 and "tests/" in cells[1]:
            lines.append((expand(cells[0]), re.findall(r"`(tests/[^`]+\.py)`", cells[1])))
    return lines


def test_expand_reads_ranges_and_lists() -> None:
    assert expand("X1-X4, M7 and C2") == {"X1", "X2", "X3", "X4", "M7", "C2"}
    assert expand("F7..F12") == {f"F{i}" for i in range(7, 13)}
    assert named_in(Path(__file__)) >= {"F17", "X1", "X4", "M7"}  # the docstring above


def test_every_row_is_in_the_readme_table_and_named_by_its_tests() -> None:
    table = readme_table()
    assert table, "the README has no table of reliability rows"
    listed = set().union(*(rows for rows, _ in table))
    assert set(ALL_ROWS) - listed == set(), "rows missing from the README table"
    for rows, files in table:
        assert files, rows
        named: set[str] = set()
        for f in files:
            assert (ROOT / f).is_file(), f"{f} (README) does not exist"
            named |= named_in(ROOT / f)
        assert rows - named == set(), f"README says {sorted(rows - named)} are tested in {files}, which do not name them"
