"""Peak memory of the real CLI: `gateway ingest` and `gateway translate` of large X12 files.

Each command runs in its own subprocess (`python -m gateway.cli ...`, as a user runs it) and
its own peak resident set size is read from `os.wait4` (the child's ru_maxrss), so the
figures include the interpreter, the imports and SQLite, as a user would see them.

Files hold one PO per interchange, as partners send them (tests/support/x12gen.py); with
`--style bench` they are bench/bench_x12.py's 5-20 line orders, ten per interchange. Each
size is measured without partners and with a partner that wants 997s and 855s written to a
folder (the acknowledgement path).

    .venv/bin/python bench/bench_memory.py [--sizes 3,15,50] [--style x12gen|bench]

Goal (issue 14 #18): ingest stays flat, under 200 MB for a 50 MB file (the default size
limit). Also printed: CPU seconds of the child per order (the machine may be shared).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_x12 import generate  # noqa: E402
from tests.support.x12gen import interchange, po  # noqa: E402

PARTNER = """\
partners:
  - name: acme
    x12_ids: ["ZZ:ACMERETAIL", "ZZ:BUYERID"]
    acks: {{outbound: {acks}, order_response: true}}
"""


def write_file(path: Path, megabytes: float, style: str) -> int:
    """A file of about `megabytes` MB; returns the number of orders in it."""
    target = int(megabytes * 1_000_000)
    if style == "bench":
        # ~2.5 KB per order in bench_x12's generator
        return generate(path, interchanges=max(1, target // 25_000), per_interchange=10)
    n = 0
    with path.open("w", encoding="ascii", newline="") as out:
        size = 0
        while size < target:
            n += 1
            text = interchange([po(f"PO{n:08d}")], icn=f"{n % 1_000_000_000:09d}", gcn=str(n))
            out.write(text)
            size += len(text)
    return n


def measure(args: list[str], cwd: Path) -> tuple[float, float, float, int]:
    """(peak RSS MB, CPU seconds, wall seconds, exit status) of one CLI run."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    with proc.stderr:
        proc.stderr.read()  # (read before wait4: a full pipe would block the child)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    return usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, wall, proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="3,15,50", help="file sizes in MB, comma-separated")
    ap.add_argument("--style", choices=("x12gen", "bench"), default="x12gen")
    ap.add_argument("--no-acks", action="store_true", help="skip the runs with an acknowledging partner")
    args = ap.parse_args()
    print(f"goal: gateway ingest peak RSS flat, < 200 MB for a 50 MB file; style {args.style}")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "acks").mkdir()
        for mb in [float(s) for s in args.sizes.split(",") if s.strip()]:
            edi = base / f"orders-{mb:g}mb.edi"
            orders = write_file(edi, mb, args.style)
            real_mb = edi.stat().st_size / 1e6
            rss, cpu, wall, rc = measure(["translate", str(edi)], base)
            print(f"translate {real_mb:5.1f} MB, {orders:>7,} orders: peak RSS {rss:6.0f} MB, cpu {cpu:6.1f} s, exit {rc}")
            runs = [("no partner", "")] + ([] if args.no_acks else [("partner with 997+855", PARTNER.format(acks=base / "acks"))])
            for label, extra in runs:
                db = base / f"gw-{mb:g}-{len(extra)}.db"
                cfg = base / f"gw-{mb:g}-{len(extra)}.yaml"
                cfg.write_text(
                    f"store:\n  url: sqlite:///{db}\n"
                    "connectors:\n  - {type: http_json, name: erp, url: 'http://127.0.0.1:9/orders', allow_private_targets: true}\n" + extra
                )
                rss, cpu, wall, rc = measure(["ingest", "--config", str(cfg), str(edi)], base)
                print(
                    f"ingest    {real_mb:5.1f} MB, {orders:>7,} orders, {label:<20}: peak RSS {rss:6.0f} MB, "
                    f"cpu {cpu:6.1f} s ({cpu / orders * 1e3:.2f} ms/order), wall {wall:6.1f} s, exit {rc}"
                )
                db.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
