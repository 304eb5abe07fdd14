"""A large message's orders are decided by a decide worker process beside the reading, with the
very decisions the reading process would make, also when the worker dies part-way.

Each run is one `gateway ingest` of eight 768-order X12 files (every case of the seeded rules
mix, 48 times over in each) into a store of its own: with `processing.decide_workers: 0` (the
oracle: every decision in process), with one worker, and with one worker killed at its third
chunk. The first large file starts the worker; the files after it are decided by it once it is
ready (about a second).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from gateway.processing.decide_worker import LARGE_BYTES
from gateway.store import tables as t
from tests.e2e.helpers import run_cli
from tests.support import rulesgen as gen

pytestmark = pytest.mark.slow


def _ingest(tmp: Path, bodies: list[bytes], workers: int, env: dict[str, str] | None = None) -> tuple[list[tuple[str, str, str | None, tuple[str, ...]]], str]:
    tmp.mkdir()
    cfg = gen.config(tmp, outbound=tmp / "acks")
    text = cfg.read_text()
    assert "processing:\n  poll_seconds: 0.2\n" in text
    cfg.write_text(text.replace("processing:\n  poll_seconds: 0.2\n", f"processing:\n  poll_seconds: 0.2\n  decide_workers: {workers}\n"))
    files = []
    for n, body in enumerate(bodies):
        files.append(tmp / f"orders-{n}.edi")
        files[-1].write_bytes(body)
    done = run_cli("ingest", *map(str, files), "-c", str(cfg), env=env, timeout=600)
    assert done.returncode in (0, 1) and f"{len(files)} file(s): " in done.stderr, done.stderr[-3000:]  # 1: some quarantined
    engine = create_engine(f"sqlite:///{tmp / 'gateway.db'}")
    o, f = t.orders, t.rule_findings
    with engine.connect() as conn:
        codes: dict[str, list[str]] = {}
        for r in conn.execute(select(f.c.order_id, f.c.code).order_by(f.c.order_id, f.c.code)):
            codes.setdefault(r.order_id, []).append(r.code)
        rows = conn.execute(select(o.c.id, o.c.po_number, o.c.state, o.c.reason).order_by(o.c.po_number)).all()
    engine.dispose()
    return [(r.po_number, r.state, r.reason, tuple(codes.get(r.id, []))) for r in rows], done.stderr


def _by_worker(log: str) -> int:
    return sum(int(line.split(": ")[-1].split()[0]) for line in log.splitlines() if "decided by decide worker" in line)


def test_a_worker_decides_large_files_as_the_reading_process_would(tmp_path: Path) -> None:
    mixes = [gen.x12_mix(48, start=1000 * n) for n in range(8)]
    bodies = [b"".join(c.body for c in cases) for cases in mixes]
    assert all(len(cases) == 768 and len(body) >= LARGE_BYTES for cases, body in zip(mixes, bodies, strict=True))

    oracle, log = _ingest(tmp_path / "in-process", bodies, 0)
    assert "decided by decide worker" not in log
    assert len(oracle) == 8 * 768
    states = Counter(state for _, state, _, _ in oracle)
    assert min(states["validated"], states["held"], states["quarantined"]) >= 768, states
    assert len({codes for *_, codes in oracle}) >= 10  # many different findings, not one verdict

    by_worker, log = _ingest(tmp_path / "worker", bodies, 1)
    assert by_worker == oracle
    assert _by_worker(log) >= 768, log[-3000:]  # at least the last file's orders

    # The worker killed (SIGKILL) before its third chunk: what it held is decided in process.
    after_crash, log = _ingest(tmp_path / "crash", bodies, 1, env={"GATEWAY_CRASHPOINT": "decide_worker:3"})
    assert after_crash == oracle
    assert "deciding in process" in log, log[-3000:]


def test_a_small_file_never_starts_a_worker(tmp_path: Path) -> None:
    cases = gen.x12_mix(1)
    body = b"".join(c.body for c in cases)
    assert len(body) < LARGE_BYTES
    decided, log = _ingest(tmp_path / "small", [body], 1)
    assert len(decided) == len(cases) and "decide worker" not in log
