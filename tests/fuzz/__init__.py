"""A time-boxed mutation fuzzer over every parser (issue 14 #14).

Seeds are the public corpus (../shared/corpus: x12, edifact, xml, email, carts), the project's
fixtures (tests/fixtures) and tests/fuzz/seeds. Each round takes a seed, applies one to four
mutations (bit flip, byte insert/delete/replace, truncation, splicing with another seed of the
same format, separator swap, a repeated segment or line) and runs `gateway.translate.translate`
with the format forced, so the parser and its mapper both read it, plus `detect` on its head.

A find is any exception that is not a `gateway.errors.InputRejected`, or an input that takes
longer than `HANG_SECONDS` of CPU time (CPU, not wall time, so a machine busy with other work
does not make finds; an alarm at `WALL_FACTOR` times that stops a real hang). Finds are minimized (chunks removed while the same exception at
the same place remains) and written to tests/fixtures/fuzz/<format>/<sha1>.bin, which
tests/unit/test_fuzz.py replays on every run.

    python -m tests.fuzz --seconds 600 [--seed N] [--format edifact ...] [--keep]

CI runs it for a bounded time through tests/unit/test_fuzz.py (GATEWAY_FUZZ_SECONDS, default
60, shared by all formats).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import random
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus"
FIXTURES = ROOT / "tests" / "fixtures"
FINDS = FIXTURES / "fuzz"
SEEDS = Path(__file__).resolve().parent / "seeds"
HANG_SECONDS = 2.0
WALL_FACTOR = 10
MAX_INPUT = 256 * 1024

FORMATS = ("x12", "edifact", "cxml", "ubl", "email", "shopify", "woocommerce", "web_form")
_SEPARATORS = b"*~:+'?^|<>{}\",=\n\r\x1d\x1e\x1f"


class Hang(BaseException):
    """Raised by the alarm: a BaseException, so the code under test cannot swallow it."""


@dataclass
class Find:
    fmt: str
    data: bytes
    signature: str  # exception type and the innermost gateway frame, or "hang"
    detail: str  # the traceback, or the elapsed time

    @property
    def name(self) -> str:
        return hashlib.sha1(self.data).hexdigest()[:16]  # noqa: S324 - a file name, not security


@dataclass
class Stats:
    runs: dict[str, int] = field(default_factory=dict)
    finds: list[Find] = field(default_factory=list)


# -- running one input ------------------------------------------------------------------------


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    def fire(signum: int, frame: Any) -> None:
        raise Hang()

    # pytest-timeout may have its own alarm pending: it is put back, less the time spent.
    previous = signal.signal(signal.SIGALRM, fire)
    pending, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    start = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if pending:
            signal.setitimer(signal.ITIMER_REAL, max(pending - (time.monotonic() - start), 0.001))


def _directory() -> Any:
    from gateway.config import PartnerConfig
    from gateway.translate import PartnerDirectory

    return PartnerDirectory([PartnerConfig(name="fuzz", email_senders=["@example.com"])], mappings_root=ROOT / "mappings")


_DIR: Any = None


def consume(fmt: str, data: bytes) -> None:
    """What a parser entry point must survive: detection, parsing and mapping of `data`."""
    global _DIR
    from gateway.formats import detect, get_parser
    from gateway.translate import translate

    if _DIR is None:
        _DIR = _directory()
    from gateway.errors import InputRejected

    with contextlib.suppress(InputRejected):
        detect(data[:4096])
    get_parser(fmt).sniff(data[:4096])
    try:
        for _ in translate(io.BytesIO(data), name="fuzz-input", format=fmt, partners=_DIR):
            pass
    except InputRejected:
        pass


_WARM: set[str] = set()


def _warm_up(fmt: str) -> None:
    """Import what `fmt` needs before anything is timed (pyx12 alone takes a second to load)."""
    if fmt in _WARM:
        return
    _WARM.add(fmt)
    for data in seeds_for(fmt)[:1] or [b"x"]:
        with contextlib.suppress(Exception):  # the timed run reports it
            consume(fmt, data)


def check(fmt: str, data: bytes, *, hang_seconds: float = HANG_SECONDS) -> Find | None:
    """Run `data` through `fmt`; a Find if it raised something other than InputRejected or hung
    (a slow input is timed twice, so a busy machine does not make a find)."""
    _warm_up(fmt)
    find = _check(fmt, data, hang_seconds)
    if find is not None and find.signature == "hang" and find.detail.startswith("took"):
        find = _check(fmt, data, hang_seconds)
    return find


def _check(fmt: str, data: bytes, hang_seconds: float) -> Find | None:
    start = time.process_time()
    try:
        with _alarm(hang_seconds * WALL_FACTOR):
            consume(fmt, data)
    except Hang:
        return Find(fmt, data, "hang", f"no answer after {hang_seconds * WALL_FACTOR:.1f} s")
    except Exception as exc:  # the point of the fuzzer: anything else is a find
        return Find(fmt, data, _signature(exc), traceback.format_exc())
    elapsed = time.process_time() - start
    if elapsed > hang_seconds:
        return Find(fmt, data, "hang", f"took {elapsed:.2f} s of CPU time")
    return None


def _signature(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/gateway/" in f.filename] or frames
    where = f"{Path(ours[-1].filename).name}:{ours[-1].name}" if ours else "?"
    return f"{type(exc).__name__} in {where}"


# -- seeds and mutations ----------------------------------------------------------------------


def seeds(corpus: Path = CORPUS) -> dict[str, list[bytes]]:
    """Seed inputs per format, from the corpus (when present), the fixtures and tests/fuzz/seeds."""
    from gateway.errors import InputRejected
    from gateway.formats import detect

    out: dict[str, list[bytes]] = {f: [] for f in FORMATS}
    folders = [corpus / k for k in ("x12", "edifact", "xml", "email", "carts")]
    folders += [FIXTURES / k for k in ("x12", "edifact", "xml", "email", "carts")]
    folders.append(SEEDS)
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if not path.is_file():
                continue
            data = path.read_bytes()[:MAX_INPUT]
            name = path.name.lower()
            if "shopify" in name:
                fmt = "shopify"
            elif "woocommerce" in name:
                fmt = "woocommerce"
            elif "web_form" in name:
                fmt = "web_form"
            elif path.suffix in (".pdf", ".xlsx", ".csv", ".txt", ".msg"):
                continue  # read through e-mail attachments, not a parser of their own
            else:
                try:
                    fmt = detect(data[:4096])
                except InputRejected:
                    fmt = "email" if folder.name == "email" else ("edifact" if folder.name == "edifact" else "x12" if folder.name == "x12" else "")
            if fmt in out:
                out[fmt].append(data)
    return out


_SEED_CACHE: dict[str, list[bytes]] = {}


def seeds_for(fmt: str) -> list[bytes]:
    if not _SEED_CACHE:
        _SEED_CACHE.update(seeds())
    return _SEED_CACHE.get(fmt, [])


def _segments(data: bytes) -> list[bytes]:
    for sep in (b"~", b"'", b"\n", b">"):
        if data.count(sep) >= 3:
            parts = data.split(sep)
            return [p + sep for p in parts[:-1]] + [parts[-1]]
    return [data]


def mutate(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    """One to four mutations of `data` (see the module docstring)."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(9)
        n = len(buf)
        if kind == 0 and n:  # bit flip
            i = rng.randrange(n)
            buf[i] ^= 1 << rng.randrange(8)
        elif kind == 1:  # insert bytes (random, a separator or a control character)
            i = rng.randint(0, n)
            chunk = rng.choice([bytes([rng.randrange(256)]), bytes([rng.choice(_SEPARATORS)]), bytes([rng.randrange(32)]), b"?" * rng.randint(1, 3)])
            buf[i:i] = chunk * rng.choice([1, 1, 1, 2, 50])
        elif kind == 2 and n:  # delete a run
            i = rng.randrange(n)
            del buf[i : i + rng.choice([1, 1, 2, 8, 64])]
        elif kind == 3 and n:  # truncate
            del buf[rng.randrange(n) :]
        elif kind == 4 and others:  # splice with another seed of the format
            other = rng.choice(others)
            i, j = rng.randint(0, n), rng.randint(0, len(other))
            buf = buf[:i] + other[j:]
        elif kind == 5 and n:  # swap one separator for another everywhere
            a, b = rng.sample(_SEPARATORS, 2)
            buf = bytearray(bytes(buf).replace(bytes([a]), bytes([b])))
        elif kind == 6:  # repeat a segment (or line)
            segs = _segments(bytes(buf))
            k = rng.randrange(len(segs))
            segs[k:k] = [segs[k]] * rng.choice([1, 2, 100])
            buf = bytearray(b"".join(segs))
        elif kind == 7 and n:  # replace a byte with an interesting one
            buf[rng.randrange(n)] = rng.choice([0, 0x7F, 0x80, 0xFF, 0xC3, ord("<"), ord("&"), ord("\\"), ord("{")])
        elif kind == 8:  # drop a segment
            segs = _segments(bytes(buf))
            del segs[rng.randrange(len(segs))]
            buf = bytearray(b"".join(segs))
    return bytes(buf[:MAX_INPUT])


# -- minimizing and keeping finds -------------------------------------------------------------


def minimize(find: Find, *, budget: float = 20.0) -> Find:
    """Remove chunks of the input while the same signature remains (hangs are kept as they are)."""
    if find.signature == "hang":
        return find
    deadline = time.monotonic() + budget
    best = find
    chunk = max(1, len(best.data) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        i = 0
        changed = False
        while i < len(best.data) and time.monotonic() < deadline:
            candidate = best.data[:i] + best.data[i + chunk :]
            again = check(find.fmt, candidate)
            if again is not None and again.signature == find.signature:
                best = again
                changed = True
            else:
                i += chunk
        if not changed:
            chunk //= 2
    return best


def keep(find: Find, folder: Path = FINDS) -> Path:
    target = folder / find.fmt / f"{find.name}.bin"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(find.data)
    return target


def kept(folder: Path = FINDS) -> list[tuple[str, Path]]:
    """The regression files: (format, path), in a stable order."""
    if not folder.is_dir():
        return []
    return [(p.parent.name, p) for p in sorted(folder.glob("*/*.bin")) if p.parent.name in FORMATS]


# -- the loop ---------------------------------------------------------------------------------


def fuzz(
    seconds: float,
    *,
    seed: int = 0,
    formats: tuple[str, ...] = FORMATS,
    corpus: Path = CORPUS,
    on_find: Callable[[Find], None] | None = None,
    minimize_budget: float = 20.0,
) -> Stats:
    """Fuzz `formats` round-robin for `seconds` of wall time; one find per signature."""
    rng = random.Random(seed)
    pool = seeds(corpus)
    stats = Stats()
    seen: set[tuple[str, str]] = set()
    active = [f for f in formats if pool.get(f)]
    deadline = time.monotonic() + seconds
    i = 0
    while active and time.monotonic() < deadline:
        fmt = active[i % len(active)]
        i += 1
        data = mutate(rng, rng.choice(pool[fmt]), pool[fmt])
        stats.runs[fmt] = stats.runs.get(fmt, 0) + 1
        find = check(fmt, data)
        if find is None or (fmt, find.signature) in seen:
            continue
        seen.add((fmt, find.signature))
        find = minimize(find, budget=minimize_budget)
        stats.finds.append(find)
        if on_find is not None:
            on_find(find)
    return stats
