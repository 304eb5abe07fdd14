"""``python -m tests.fuzz --seconds 600``: a longer fuzzing run than CI's (see tests/fuzz)."""

from __future__ import annotations

import argparse
import sys

from tests.fuzz import CORPUS, FORMATS, Find, fuzz, keep


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--format", action="append", choices=FORMATS, help="fuzz only these (repeatable)")
    ap.add_argument("--corpus", default=str(CORPUS))
    ap.add_argument("--keep", action="store_true", help="write finds to tests/fixtures/fuzz/<format>/")
    args = ap.parse_args(argv)

    def report(find: Find) -> None:
        where = keep(find) if args.keep else None
        print(f"FIND {find.fmt}: {find.signature} ({len(find.data)} bytes){f' -> {where}' if where else ''}", flush=True)
        print(find.detail.rstrip()[-2000:], flush=True)

    from pathlib import Path

    stats = fuzz(args.seconds, seed=args.seed, formats=tuple(args.format or FORMATS), corpus=Path(args.corpus), on_find=report)
    total = sum(stats.runs.values())
    per = ", ".join(f"{k} {v}" for k, v in sorted(stats.runs.items()))
    print(f"{total} inputs in {args.seconds:.0f} s ({per}); {len(stats.finds)} find(s)")
    return 1 if stats.finds else 0


if __name__ == "__main__":
    sys.exit(main())
