"""Benchmark of `gateway data import`: a 50,000-item catalogue (CSV and XLSX) through the real CLI.

Run: ``.venv/bin/python bench/bench_masterdata.py [--items 50000] [--store URL] [--xlsx]``.
It writes its generated input (deterministic, seeded) to ``bench/out/`` (git-ignored) and runs
``gateway data import items FILE`` in a child process, twice (a first load, then the same
file again: every row an update), and prints one line per run:

    items csv  50,000 rows: N rows/s, wall W s, peak RSS M MB (first load)

Peak RSS is the child's own (``os.wait4``), so it shows whether the import streams: it should
not grow with the file. Goal (issue 10): 50,000 items in a few seconds.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"

HEADER = ["Item Number", "Description", "EAN", "Base Unit", "Units", "Pack", "Weight kg", "Length", "Width", "Height", "Discontinued"]
_WORDS = ["Widget", "Bolt", "Bracket", "Hinge", "Panel", "Valve", "Gasket", "Spring", "Clamp", "Flange"]


def gtin13(n: int) -> str:
    """A valid EAN-13 built from `n` (check digit computed)."""
    body = f"400{n:09d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def item_rows(count: int, seed: int = 10) -> list[list[str]]:
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        pack = rng.choice([1, 1, 6, 12, 24])
        rows.append([
            f"SKU-{n:06d}", f"{rng.choice(_WORDS)} {rng.randint(1, 999)} mm", gtin13(n), "EA",
            f"CA={pack * 4}; PL={pack * 400}" if pack > 1 else "", str(pack), f"{rng.uniform(0.01, 25):.3f}",
            str(rng.randint(1, 120)), str(rng.randint(1, 80)), str(rng.randint(1, 60)), "Y" if n % 97 == 0 else "N",
        ])
    return rows


def write_items_csv(path: Path, count: int, seed: int = 10) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(item_rows(count, seed))
    return path


def write_items_xlsx(path: Path, count: int, seed: int = 10) -> Path:
    from openpyxl import Workbook

    path.parent.mkdir(parents=True, exist_ok=True)
    # A normal (not write-only) workbook, as Excel saves one: shared strings, and the sheet's
    # <dimension>, without which openpyxl's read-only mode reads the whole sheet twice.
    book = Workbook()
    sheet = book.active
    sheet.title = "Items"
    sheet.append(HEADER)
    for row in item_rows(count, seed):
        sheet.append([row[0], row[1], row[2], row[3], row[4], int(row[5]), float(row[6]), int(row[7]), int(row[8]), int(row[9]), row[10]])
    book.save(path)
    return path


def measure(args: list[str], cwd: Path) -> tuple[float, float, int, str]:
    """(peak RSS MB, wall seconds, exit status, stdout) of one CLI run."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    with proc.stdout:
        text = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    return usage.ru_maxrss / 1024, time.perf_counter() - started, os.waitstatus_to_exitcode(status), text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--store", default=None, help="store URL (default: a fresh SQLite file)")
    ap.add_argument("--xlsx", action="store_true", help="also the same catalogue as XLSX")
    args = ap.parse_args()
    files = [("csv", write_items_csv(OUT / f"items-{args.items}.csv", args.items))]
    if args.xlsx:
        files.append(("xlsx", write_items_xlsx(OUT / f"items-{args.items}.xlsx", args.items)))
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "gateway.yaml"
        url = args.store or f"sqlite:///{Path(tmp) / 'gateway.db'}"
        cfg.write_text(f"store:\n  url: {url}\n")
        for label, path in files:
            for run in ("first load", "again (updates)"):
                rss, wall, rc, text = measure(["data", "import", "items", str(path), "--config", str(cfg)], Path(tmp))
                print(f"items {label:<4} {args.items:,} rows: {args.items / wall:,.0f} rows/s (whole CLI), wall {wall:.2f} s, "
                      f"peak RSS {rss:.0f} MB, exit {rc} ({run})")
                if rc:
                    print(text[-2000:])
                else:
                    print("   ", text.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
