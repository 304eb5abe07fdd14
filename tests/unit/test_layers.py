"""Layers the import graph must keep (issue 9): SQL lives in gateway/store/ only, and the
processing package does no network I/O.

Read from the source (the AST of every module), so a module that is never imported by a test
is checked all the same.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.e2e.helpers import ROOT

# Modules outside gateway/store/ that still issue SQL and are being moved into repositories
# under gateway/store/ (issue 9, "All SQL in gateway/store/"). This list only ever shrinks:
# a module that no longer needs its entry makes the test fail until the entry is removed.
STILL_TO_MOVE = {
    "gateway/acks/outbound.py",  # plans and stores acknowledgements (issue 14 #18 is changing it)
}


def _modules(*roots: str) -> list[Path]:
    return sorted(p for root in roots for p in (ROOT / root).rglob("*.py") if ".venv" not in p.parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.Module) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import not under `if TYPE_CHECKING:`."""
    found: list[tuple[int, str, list[str]]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module, [a.name for a in node.names]))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _sql_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        f"{path.relative_to(ROOT)}:{line}: imports {module}" + (f" ({', '.join(names)})" if names else "")
        for line, module, names in _runtime_imports(tree)
        if module == "sqlalchemy" or module.startswith("sqlalchemy.")
    ]


def test_no_module_outside_the_store_issues_sql() -> None:
    """issue 9: SQL only in gateway/store/ repositories (a typing-only `Connection` under
    `if TYPE_CHECKING:` is fine: it passes a transaction through, it writes no SQL)."""
    offenders: list[str] = []
    stale: list[str] = []
    for path in _modules("gateway", "connectors"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("gateway/store/"):
            continue
        found = _sql_imports(path)
        if rel in STILL_TO_MOVE:
            if not found:
                stale.append(rel)
            continue
        offenders.extend(found)
    assert not offenders, "SQL outside gateway/store/ (move it into a repository there):\n" + "\n".join(offenders)
    gone = sorted(rel for rel in STILL_TO_MOVE if not (ROOT / rel).exists())
    assert not stale + gone, "no longer issue SQL (or gone); remove from STILL_TO_MOVE: " + ", ".join(stale + gone)


def test_pipeline_and_versions_are_not_on_the_allow_list() -> None:
    """issue 9: the pipeline and version linking reach the store through its repositories."""
    done = {"gateway/pipeline.py", "gateway/versions.py"}
    assert not done & STILL_TO_MOVE
    for rel in done:
        assert _sql_imports(ROOT / rel) == []


def test_the_checker_sees_sql_imports() -> None:
    """The scan catches `import sqlalchemy`, `from sqlalchemy.exc import ...` and a runtime
    `Connection`, and lets a TYPE_CHECKING-only one pass (so a pass above means something)."""
    code = (
        "import sqlalchemy\n"
        "from sqlalchemy.exc import IntegrityError\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from sqlalchemy import Connection\n"
        "def f():\n"
        "    from sqlalchemy import select\n"
    )
    tree = ast.parse(code)
    modules = [m for _, m, _ in _runtime_imports(tree)]
    assert modules == ["sqlalchemy", "sqlalchemy.exc", "typing", "sqlalchemy"]
