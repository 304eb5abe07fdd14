"""scripts/code_size.py (issue 9): lines per module and the largest functions, largest first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.e2e.helpers import ROOT

SCRIPT = ROOT / "scripts" / "code_size.py"

SAMPLE = '''\
"""A module."""


def short():
    return 1


class Parser:
    def parse(self):
        a = 1
        b = 2

        def inner():
            return a + b

        return inner()

    async def close(self):
        pass


def longest():
    x = 0
    x += 1
    x += 2
    x += 3
    x += 4
    x += 5
    return x
'''


def _run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def _sample(tmp_path: Path) -> Path:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text(SAMPLE, encoding="utf-8")
    (pkg / "sub" / "b.py").write_text("def one():\n    pass\n", encoding="utf-8")
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "ignored.py").write_text("x = 1\n" * 99, encoding="utf-8")
    return pkg


def test_json_names_and_counts_every_function_largest_first(tmp_path: Path) -> None:
    pkg = _sample(tmp_path)
    done = _run("--json", "--top", "50", pkg, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["totals"] == {
        "modules": 2,
        "lines": len(SAMPLE.splitlines()) + 2,
        "functions": 6,
        "functions_over_80_lines": 0,
    }
    assert [m["path"] for m in report["modules"]] == ["pkg/a.py", "pkg/sub/b.py"]
    rows = {f["name"]: (f["lines"], f["path"], f["line"]) for f in report["functions"]}
    assert rows == {
        "longest": (8, "pkg/a.py", 22),
        "Parser.parse": (8, "pkg/a.py", 9),
        "Parser.close": (2, "pkg/a.py", 18),
        "Parser.parse.inner": (2, "pkg/a.py", 13),
        "short": (2, "pkg/a.py", 4),
        "one": (2, "pkg/sub/b.py", 1),
    }
    sizes = [f["lines"] for f in report["functions"]]
    assert sizes == sorted(sizes, reverse=True)


def test_top_limits_both_tables(tmp_path: Path) -> None:
    pkg = _sample(tmp_path)
    done = _run("--top", "1", pkg, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "2 modules, 31 lines; 6 functions, 0 over 80 lines"
    modules = lines[lines.index("Largest modules (top 1)") + 2]
    assert modules.split() == ["29", "pkg/a.py"]
    functions = lines[lines.index("Largest functions (top 1)") + 2 :]
    assert len(functions) == 1
    assert functions[0].split() == ["8", "Parser.parse", "pkg/a.py:9"]


def test_default_measures_the_project_and_refuses_bad_arguments(tmp_path: Path) -> None:
    done = _run("--json", "--top", "5", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["totals"]["modules"] > 100
    paths = [m["path"] for m in report["modules"]]
    assert all(p.startswith(("gateway/", "connectors/")) for p in paths)
    assert len(report["functions"]) == 5
    assert _run("--top", "0").returncode == 2
    assert "no such file" in _run(tmp_path / "missing").stderr
