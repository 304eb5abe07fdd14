"""What the rules add to ingest, counted in instructions instead of seconds.

`bench_rules.py` measures time, the issue's own measure, but on a shared VM its figures move
by 30-50% from one run to the next (the same code measured +49% and +92% within minutes on
2026-12-07). Instructions executed do not depend on what else the machine runs: this script
runs `bench_rules.py --once without|with` under callgrind for N and 2N orders, two at a time,
and prints the instructions per order of each kind (the difference of the two sizes, so
start-up and the catalogue's construction cancel) and what the rules add.

It cannot see what makes an instruction slow: with the rules, each instruction takes longer
(a 50,000-item catalogue read at random, chunks of orders revisited after their mapping), so
the time overhead is higher than the instruction overhead. Use both.

    .venv/bin/python bench/bench_rules_instructions.py [--orders 1000] [--stock]   # needs valgrind; ~5 min
"""

from __future__ import annotations

import argparse
import concurrent.futures
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent / "bench_rules.py"


def instructions(kind: str, orders: int, stock: bool, out: Path) -> int:
    """Instructions of one `bench_rules.py --once KIND` run of `orders` orders."""
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, str(BENCH), "--workers", "0", "--orders", str(orders), "--once", kind]
    cmd += ["--stock"] if stock else []
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"callgrind run failed ({' '.join(cmd)}):\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=1000, help="N: runs of N and 2N orders of each kind")
    ap.add_argument("--stock", action="store_true", help="add the stock rule, reservations and routing (as bench_rules.py --stock)")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    runs = [(kind, n) for kind in ("without", "with") for n in (args.orders, 2 * args.orders)]
    with tempfile.TemporaryDirectory() as tmp, concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = {run: pool.submit(instructions, run[0], run[1], args.stock, Path(tmp) / f"cg.{run[0]}.{run[1]}") for run in runs}
        counted = {run: future.result() for run, future in futures.items()}
    per_order = {kind: (counted[(kind, 2 * args.orders)] - counted[(kind, args.orders)]) / args.orders for kind in ("without", "with")}
    ruled = "10 rules, stock reserved and routed" if args.stock else "9 rules"
    print(f"without rules: {per_order['without'] / 1e6:.3f} M instructions per order")
    print(f"with {ruled}: {per_order['with'] / 1e6:.3f} M instructions per order")
    print(f"the rules add {100 * (per_order['with'] / per_order['without'] - 1):.1f}% to the instructions of ingest (target for time: <= 20%)")


if __name__ == "__main__":
    main()
