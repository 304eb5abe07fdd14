"""Start-up time of the `gateway` command (issue 9, "Fast start").

Run: ``.venv/bin/python bench/bench_startup.py [--runs 9]``. Each figure is the median wall
time (and CPU time, which moves less with the neighbours' load) of `--runs` fresh processes, run from an empty folder (the embedded defaults, so no
configuration file and no partner templates are read):

    startup python -c pass: N ms wall, N ms CPU           the interpreter alone, for reference
    startup gateway --help: N ms wall, N ms CPU           typer, rich and the command table
    startup gateway translate (1 order): N ms wall, ...   configuration, parser, mapping, one order

Target: --help and translate well under 500 ms on a quiet machine (about 1,200 ms before).
The figures move with the neighbours' load on a shared box; the python line shows how much.
`python -X importtime -m gateway.cli ...` says where the time goes.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ONE_ORDER = ROOT / "gateway" / "examples" / "northwind-po-5010.edi"


def _median_ms(args: list[str], cwd: Path, runs: int) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of the child, in ms."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(args, cwd=cwd, capture_output=True, check=False)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed: {done.stderr.decode(errors='replace')[-500:]}")
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    opts = parser.parse_args(argv)
    gateway = [sys.executable, "-m", "gateway.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        figures = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("gateway --help", [*gateway, "--help"]),
            ("gateway translate (1 order)", [*gateway, "translate", str(ONE_ORDER)]),
        ]
        for label, args in figures:
            wall, cpu = _median_ms(args, cwd, opts.runs)
            print(f"startup {label}: {wall:.0f} ms wall, {cpu:.0f} ms CPU (median of {opts.runs})", flush=True)


if __name__ == "__main__":
    main()
