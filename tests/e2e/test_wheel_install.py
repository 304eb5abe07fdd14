"""A wheel install works without the checkout (issue 14 #3).

`pip install .` (not editable) used to fail on the first translation with
``cannot read the mapping tables (.../site-packages/mappings/x12/850.yaml: No such file)``:
the standard mappings live at the top of the repository and were not in the wheel. The test
builds a wheel, installs it into a fresh virtual environment (no system site-packages, no
access to the checkout) and runs `gateway translate` and `gateway demo` from a folder
outside the checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.e2e.helpers import ROOT

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GATEWAY_CONFIG", "VIRTUAL_ENV")}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_wheel_translates_and_runs_the_demo(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    built = _run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(wheels)], tmp_path)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("order_gateway-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "gateway/mappings/x12/850.yaml" in names
    assert not any(n.startswith("mappings/") for n in names), "no top-level mappings package in site-packages"

    venv = tmp_path / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    assert made.returncode == 0, made.stderr
    py = venv / "bin" / "python"
    installed = _run([str(py), "-m", "pip", "install", "-q", str(wheel)], tmp_path)
    assert installed.returncode == 0, installed.stderr
    gateway = venv / "bin" / "gateway"

    work = tmp_path / "work"
    work.mkdir()
    where = _run([str(py), "-c", "import gateway; print(gateway.__file__)"], work)
    assert str(venv) in where.stdout and str(ROOT) not in where.stdout, where.stdout

    for sample in ("acme-po-4010.edi", "northwind-po-5010.edi"):
        done = _run([str(gateway), "translate", str(ROOT / "gateway" / "examples" / sample)], work, timeout=120)
        assert done.returncode == 0, done.stderr
        orders = [json.loads(line) for line in done.stdout.splitlines()]
        assert orders and all(o["lines"] for o in orders)
    edifact = _run([str(gateway), "translate", str(ROOT / "tests" / "fixtures" / "edifact" / "orders_full_d96a.edi")], work, timeout=120)
    assert edifact.returncode == 0, edifact.stderr

    cfg = work / "gateway.yaml"
    text = (ROOT / "config" / "gateway.yaml").read_text()
    cfg.write_text(text.replace("\nhome: ..\n", f"\nhome: {work}\n"))
    demo = _run([str(gateway), "demo", "--config", str(cfg)], work, timeout=180)
    assert demo.returncode == 0, demo.stderr
    delivered = sorted(json.loads(p.read_text())["po_number"] for p in (work / "var" / "outbox").glob("*.json"))
    assert delivered == ["4500012500", "ACME-45001", "ACME-45002", "ACME-45004", "NW-2026-0042"]
