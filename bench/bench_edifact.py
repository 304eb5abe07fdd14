"""Benchmark of the EDIFACT ORDERS path: parse + map + JSON, against pydifact's bare parse.

Run: ``.venv/bin/python bench/bench_edifact.py [--runs 3] [--interchanges 1000] [--per 10]``.
It writes its generated input (deterministic, seeded) to ``bench/out/`` (git-ignored) and
prints one line per figure, the best of `--runs` timed runs, each figure in its own
subprocess so one does not warm or bloat the other:

    edifact translate: N orders/s        EdifactParser events -> map_orders -> Order ->
                                         order.model_dump_json()
    edifact parse only: N msgs/s         EdifactParser events, no mapping
    ... with pydifact's tokenizer        the same two figures with the split tokenizer
                                         switched off (issue 14: "before"), and the
                                         speed-up of the split tokenizer
    pydifact Interchange.from_str: N     Interchange.from_str(text) and iterating
                                         get_messages() and each message's segments: the
                                         "bare parse" the ratio compares with
    pydifact Parser().parse: N           Parser().parse(text), iterating every segment
    ratio translate/from_str: R x        target <= 1.3

The input (as in recipes/libraries.md section 7): 1,000 interchanges x 10 ORDERS D96A EAN008
messages (one UNA, then UNB/UNH/BGM/DTM x2/RFF with ``?+``/NAD x3/CUX/LIN-IMD-QTY-PRI x 5-20/UNS/CNT/
UNT/UNZ), 10,000 messages, about 13 MB. pydifact reads the whole file as one string, which
it silently merges into one interchange; it still sees every message.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"

_NAMES = ["ACME", "GLOBEX", "INITECH", "UMBRELLA", "STARK", "WAYNE", "HOOLI", "VANDELAY"]
_CITY = [("SPRINGFIELD", "62701"), ("DAYTON", "45402"), ("FRESNO", "93721")]


def _gln(rng: random.Random) -> str:
    return str(rng.randint(10**12, 10**13 - 1))


def _message(rng: random.Random, ref: int, po: str) -> list[str]:
    """One ORDERS D96A EAN008 message as segments without terminators, UNH through UNT."""
    segs = [
        f"UNH+{ref}+ORDERS:D:96A:UN:EAN008",
        f"BGM+220+{po}+9",
        f"DTM+137:2024{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}:102",
        f"DTM+2:2024{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}:102",
        f"RFF+CT:CONTRACT?+{rng.randint(100, 999)}",
    ]
    for role in ("BY", "SU", "DP"):
        city, postal = rng.choice(_CITY)
        segs.append(
            f"NAD+{role}+{_gln(rng)}::9++{rng.choice(_NAMES)} STORE {rng.randint(1, 999)}"
            f"+{rng.randint(1, 9999)} MAIN STREET+{city}++{postal}+US"
        )
    segs.append("CUX+2:EUR:9")
    n_lines = rng.randint(5, 20)
    for i in range(1, n_lines + 1):
        segs += [
            f"LIN+{i}++{rng.randint(10**12, 10**13 - 1)}:EN",
            f"IMD+F++:::WIDGET {rng.choice(_NAMES)} SIZE {rng.randint(1, 20)}",
            f"QTY+21:{rng.randint(1, 500)}:PCE",
            f"PRI+AAA:{rng.randint(1, 99999) // 100},{rng.randint(0, 99):02d}",
        ]
    segs += ["UNS+S", f"CNT+2:{n_lines}"]
    segs.append(f"UNT+{len(segs) + 1}+{ref}")
    return segs


def generate(path: Path, *, interchanges: int, per_interchange: int, seed: int = 96) -> int:
    """Write a deterministic ORDERS file; return the number of messages written."""
    rng = random.Random(seed)
    count = 0
    with path.open("w", encoding="ascii", newline="") as out:
        for i in range(1, interchanges + 1):
            segs = [f"UNB+UNOA:3+{_gln(rng)}:14+{_gln(rng)}:14+240115:1200+IC{i:08d}"]
            for m in range(1, per_interchange + 1):
                count += 1
                segs.extend(_message(rng, m, f"PO{count:08d}"))
            segs.append(f"UNZ+{per_interchange}+IC{i:08d}")
            # One UNA, at the start: pydifact refuses a second one ("not multiple UNA segments
            # allowed"); later interchanges use the defaults, which are the same characters.
            out.write(("UNA:+,? '\n" if i == 1 else "") + "'\n".join(segs) + "'\n")
    return count


# -- the measured functions: each returns the number of messages (orders) it saw -------------


def translate(path: Path) -> int:
    """The `gateway translate` path: parse events -> map_orders -> Order -> JSON."""
    from gateway.formats.base import Document
    from gateway.formats.edifact import EdifactParser
    from gateway.mapping.edifact_orders import map_orders

    orders = 0
    with path.open("rb") as stream:
        for event in EdifactParser().parse(stream, name=path.name):
            if isinstance(event, Document) and event.doc_type == "ORDERS":
                map_orders(event).model_dump_json()
                orders += 1
    return orders


def parse_only(path: Path) -> int:
    from gateway.formats.base import Document
    from gateway.formats.edifact import EdifactParser

    docs = 0
    with path.open("rb") as stream:
        for event in EdifactParser().parse(stream, name=path.name):
            if isinstance(event, Document):
                docs += 1
    return docs


def bare_from_str(path: Path) -> int:
    """pydifact's documented route: Interchange.from_str, then every message's segments."""
    from pydifact.exceptions import MissingImplementationWarning
    from pydifact.segmentcollection import Interchange

    messages = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingImplementationWarning)
        interchange = Interchange.from_str(path.read_text(encoding="ascii"))
        for message in interchange.get_messages():
            for _segment in message.segments:
                pass
            messages += 1
    return messages


def bare_parser(path: Path) -> int:
    """pydifact's streaming Parser over every segment (UNA/UNB/UNZ included)."""
    from pydifact.exceptions import MissingImplementationWarning
    from pydifact.parser import Parser

    messages = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingImplementationWarning)
        for segment in Parser().parse(path.read_text(encoding="ascii")):
            if segment.tag == "UNH":
                messages += 1
    return messages


def _pydifact_tokenizer() -> None:
    """Switch the gateway back to pydifact's character-by-character tokenizer ("before")."""
    from gateway.formats.edifact import tokenizer

    tokenizer._split_segments = lambda text, chars: None  # type: ignore[assignment]


def translate_before(path: Path) -> int:
    _pydifact_tokenizer()
    return translate(path)


def parse_only_before(path: Path) -> int:
    _pydifact_tokenizer()
    return parse_only(path)


FIGURES: dict[str, Callable[[Path], int]] = {
    "translate": translate,
    "parse_only": parse_only,
    "translate_before": translate_before,
    "parse_only_before": parse_only_before,
    "from_str": bare_from_str,
    "parser": bare_parser,
}


def _timed(fn: Callable[[Path], int], path: Path, runs: int) -> tuple[float, int]:
    best = float("inf")
    n = 0
    for _ in range(runs):
        start = time.perf_counter()
        n = fn(path)
        best = min(best, time.perf_counter() - start)
    return best, n


def _in_subprocess(figure: str, path: Path, runs: int) -> tuple[float, int, float]:
    """Run one figure in a fresh interpreter; return (best seconds, messages, peak RSS MB)."""
    out = subprocess.run(
        [sys.executable, __file__, "--measure", figure, "--input", str(path), "--runs", str(runs)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return float(result["seconds"]), int(result["messages"]), float(result["rss_mb"])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--interchanges", type=int, default=1000)
    ap.add_argument("--per", type=int, default=10, help="messages per interchange")
    ap.add_argument("--skip-parser", action="store_true", help="skip the Parser().parse figure")
    ap.add_argument("--measure", choices=sorted(FIGURES), help=argparse.SUPPRESS)
    ap.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.measure:  # the child process: one figure, printed as JSON
        sys.path.insert(0, str(ROOT))
        seconds, n = _timed(FIGURES[args.measure], args.input, args.runs)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        print(json.dumps({"seconds": seconds, "messages": n, "rss_mb": rss_mb}))
        return

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"orders_{args.interchanges}x{args.per}.edi"
    if not path.exists():
        generate(path, interchanges=args.interchanges, per_interchange=args.per)
    size_mb = path.stat().st_size / 1e6
    print(f"input: {path.relative_to(ROOT)} ({size_mb:.1f} MB, best of {args.runs} runs)")

    t_translate, n_orders, rss = _in_subprocess("translate", path, args.runs)
    print(
        f"edifact translate: {n_orders / t_translate:,.0f} orders/s ({t_translate:.2f} s, "
        f"{n_orders} orders, peak RSS {rss:.0f} MB)"
    )
    t_parse, n_docs, rss = _in_subprocess("parse_only", path, args.runs)
    print(
        f"edifact parse only: {n_docs / t_parse:,.0f} msgs/s ({t_parse:.2f} s, peak RSS {rss:.0f} MB)"
    )
    t_before, _, rss = _in_subprocess("translate_before", path, args.runs)
    print(
        f"edifact translate with pydifact's tokenizer (before): {n_orders / t_before:,.0f} orders/s "
        f"({t_before:.2f} s, peak RSS {rss:.0f} MB); split tokenizer {t_before / t_translate:.1f} x faster"
    )
    t_pbefore, _, rss = _in_subprocess("parse_only_before", path, args.runs)
    print(
        f"edifact parse only with pydifact's tokenizer (before): {n_docs / t_pbefore:,.0f} msgs/s "
        f"({t_pbefore:.2f} s, peak RSS {rss:.0f} MB); split tokenizer {t_pbefore / t_parse:.1f} x faster"
    )
    t_bare, n_bare, rss = _in_subprocess("from_str", path, args.runs)
    print(
        f"pydifact Interchange.from_str + get_messages: {n_bare / t_bare:,.0f} msgs/s "
        f"({t_bare:.2f} s, {size_mb / t_bare:.2f} MB/s, {n_bare} messages, peak RSS {rss:.0f} MB)"
    )
    t_parser = 0.0
    if not args.skip_parser:
        t_parser, n_parser, rss = _in_subprocess("parser", path, args.runs)
        print(
            f"pydifact Parser().parse: {n_parser / t_parser:,.0f} msgs/s ({t_parser:.2f} s, "
            f"peak RSS {rss:.0f} MB)"
        )
    print(f"ratio translate/from_str: {t_translate / t_bare:.2f} x (target <= 1.3)")
    if t_parser:
        print(f"ratio translate/Parser().parse: {t_translate / t_parser:.2f} x")


if __name__ == "__main__":
    main()
