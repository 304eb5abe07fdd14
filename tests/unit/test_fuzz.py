"""The mutation fuzzer over every parser (tests/fuzz), as CI runs it: every kept find is
replayed, then the fuzzer runs for a bounded time (issue 14 #14: "run a mutation fuzzer over
every parser in CI for a bounded time and keep what it finds as regression files")."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from tests import fuzz

KEPT = fuzz.kept()
SECONDS = float(os.environ.get("GATEWAY_FUZZ_SECONDS", "30"))


def test_there_are_seeds_for_every_parser():
    """Every parser entry point gets fuzzed: each format has at least one seed."""
    assert not [f for f in fuzz.FORMATS if not fuzz.seeds_for(f)]


@pytest.mark.parametrize(("fmt", "path"), KEPT, ids=[f"{f}/{p.name}" for f, p in KEPT])
def test_kept_find_is_read_or_refused(fmt: str, path: Path):
    """issue 14 #14: each regression file under tests/fixtures/fuzz/<format>/ is read or refused
    with an InputRejected, within the time limit, never another exception."""
    find = fuzz.check(fmt, path.read_bytes())
    assert find is None, f"{path}: {find.signature if find else ''}\n{find.detail if find else ''}"


@pytest.mark.timeout(SECONDS + 180)  # the run, then minimizing what it found
def test_mutation_fuzzer_finds_nothing_new(tmp_path: Path):
    """issue 14 #14: a time-boxed, seeded run (GATEWAY_FUZZ_SECONDS, default 30, shared by all
    formats; GATEWAY_FUZZ_SEED, default the date). A find is written, minimized, to tmp_path:
    fix it and keep the file under tests/fixtures/fuzz/<format>/."""
    seconds = SECONDS
    seed = int(os.environ.get("GATEWAY_FUZZ_SEED", dt.date.today().strftime("%Y%m%d")))
    stats = fuzz.fuzz(seconds, seed=seed, minimize_budget=10, on_find=lambda f: fuzz.keep(f, tmp_path))
    assert sum(stats.runs.values()) > 0
    assert set(stats.runs) == set(fuzz.FORMATS)
    assert not stats.finds, f"seed {seed}: " + "\n\n".join(
        f"{f.fmt}: {f.signature}, kept as {tmp_path / f.fmt / (f.name + '.bin')}\n{f.detail[-1500:]}" for f in stats.finds
    )
