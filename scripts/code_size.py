#!/usr/bin/env python3
"""Code size of the gateway: lines per module and the largest functions (issue 9).

Run: ``python3 scripts/code_size.py [--top N] [--json] [ROOT ...]``. With no ROOT it measures
``gateway/`` and ``connectors/`` beside this script's folder. Two tables, largest first:

    lines  module                               physical lines of each ``.py`` file
    lines  function  file:line                  ``def`` to its last line, methods as Class.name,
                                                nested functions as outer.inner

A function's lines run from its ``def`` line to its last line (decorators excluded), so a
nested function is counted in its own row and again inside its parent. ``--json`` prints
``{"totals": {...}, "modules": [...], "functions": [...]}`` for tools. Only the standard
library is used (``ast``), so it runs without the project's virtualenv.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PACKAGES = ("gateway", "connectors")


@dataclass(frozen=True)
class Module:
    path: str
    lines: int


@dataclass(frozen=True)
class Function:
    name: str
    path: str
    line: int
    lines: int


def _functions(tree: ast.AST, path: str) -> list[Function]:
    """Every function and method in `tree`, named by where it sits (Class.method, outer.inner)."""
    found: list[Function] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + child.name
                end = child.end_lineno or child.lineno
                found.append(Function(name, path, child.lineno, end - child.lineno + 1))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def measure(roots: list[Path], base: Path) -> tuple[list[Module], list[Function]]:
    """Lines of every module under `roots` and every function in them, largest first."""
    modules: list[Module] = []
    functions: list[Function] = []
    for root in roots:
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for file in files:
            if ".venv" in file.parts or "__pycache__" in file.parts:
                continue
            source = file.read_text(encoding="utf-8")
            try:
                shown = str(file.resolve().relative_to(base))
            except ValueError:
                shown = str(file)
            modules.append(Module(shown, len(source.splitlines())))
            functions.extend(_functions(ast.parse(source, filename=str(file)), shown))
    modules.sort(key=lambda m: (-m.lines, m.path))
    functions.sort(key=lambda f: (-f.lines, f.path, f.line))
    return modules, functions


def render(modules: list[Module], functions: list[Function], top: int) -> str:
    total = sum(m.lines for m in modules)
    over_80 = sum(1 for f in functions if f.lines > 80)
    out = [
        f"{len(modules)} modules, {total} lines; {len(functions)} functions, "
        f"{over_80} over 80 lines",
        "",
        f"Largest modules (top {top})",
        f"{'lines':>6}  module",
    ]
    out += [f"{m.lines:>6}  {m.path}" for m in modules[:top]]
    out += ["", f"Largest functions (top {top})", f"{'lines':>6}  {'function':<48} where"]
    out += [f"{f.lines:>6}  {f.name:<48} {f.path}:{f.line}" for f in functions[:top]]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="*", type=Path, help="folders or files (default: gateway, connectors)")
    parser.add_argument("--top", type=int, default=20, help="rows per table (default 20)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    if args.top < 1:
        parser.error("--top must be at least 1")
    roots = args.roots or [ROOT / name for name in DEFAULT_PACKAGES]
    missing = [str(r) for r in roots if not r.exists()]
    if missing:
        parser.error(f"no such file or folder: {', '.join(missing)}")
    base = Path.cwd().resolve() if args.roots else ROOT
    modules, functions = measure(roots, base)
    if args.json:
        document = {
            "totals": {
                "modules": len(modules),
                "lines": sum(m.lines for m in modules),
                "functions": len(functions),
                "functions_over_80_lines": sum(1 for f in functions if f.lines > 80),
            },
            "modules": [asdict(m) for m in modules[: args.top]],
            "functions": [asdict(f) for f in functions[: args.top]],
        }
        print(json.dumps(document, indent=2))
    else:
        sys.stdout.write(render(modules, functions, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
