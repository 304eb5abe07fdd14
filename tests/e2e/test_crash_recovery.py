"""kill -9 at named points, restart, and every order reaches the ERP exactly once.

The fake ERP runs as its own process with a SQLite ledger, so its record survives the
gateway's death; it honours Idempotency-Key like a well-behaved ERP. The oracle is the one
Kafka's exactly-once tests use: every PO number appears exactly once among created orders.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import ROOT, gateway_cmd, run_cli, write_config
from tests.support.fake_erp import Ledger
from tests.support.x12gen import file_with_orders

pytestmark = pytest.mark.slow


@pytest.fixture
def erp_process(tmp_path):
    db = tmp_path / "erp.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_erp", "--port", "0", "--db", str(db)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline()
    m = re.search(r"listening on (\S+)", line)
    assert m, f"fake ERP did not start: {line!r} {proc.stderr.read() if proc.poll() is not None else ''}"
    yield m.group(1), db
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)


def seed(tmp_path: Path, files: int = 3, per_file: int = 2) -> list[str]:
    expected = []
    for f in range(files):
        numbers = [f"PO-{f}-{i}" for i in range(per_file)]
        expected += numbers
        (tmp_path / "inbox" / f"f{f}.edi").write_bytes(file_with_orders(numbers, icn=f"{f + 1:09d}"))
    return expected


def ledger_pos(db: Path) -> list[str]:
    led = Ledger(db)
    try:
        return sorted(o["body"]["po_number"] for o in led.orders())
    finally:
        led.close()


@pytest.mark.parametrize(
    "crashpoint",
    [
        "after_store",  # reliability F1: raw message committed, not yet parsed, file not yet moved
        "before_ack:2",  # reliability F3: second file committed, about to move to the archive
        "after_orders",  # orders + outbox committed, message state not yet final
        "after_http_before_commit",  # reliability F2: the ERP answered 201, the outbox not yet updated
        "after_http_before_commit:3",  # reliability F2, at the third delivery
    ],
)
def test_sigkill_at_a_named_point_then_restart_delivers_each_order_once(tmp_path, erp_process, crashpoint):
    """reliability F1, F2, F3: SIGKILL at a named crash point, restart; each PO reaches the ERP
    once (F2: re-sent with the same Idempotency-Key), each file is archived once."""
    url, db = erp_process
    cfg = write_config(tmp_path, url, extra="", stable=0.05)
    expected = seed(tmp_path)
    env = {**os.environ, "GATEWAY_CRASHPOINT": crashpoint}
    proc = subprocess.Popen(gateway_cmd("run", "--config", str(cfg)), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"the crash point {crashpoint} was never reached")
    assert proc.returncode == -signal.SIGKILL, err

    done = run_cli("run", "--once", "--for", "40", "--config", str(cfg))
    assert done.returncode == 0, done.stderr
    assert ledger_pos(db) == sorted(expected)  # each exactly once
    assert os.listdir(tmp_path / "inbox") == []
    assert len(os.listdir(tmp_path / "archive")) == 3
    orders = run_cli("orders", "--config", str(cfg), "--limit", "100")
    assert orders.stdout.count("dispatched") == len(expected)
    assert "quarantined" not in orders.stdout and "duplicate" not in orders.stdout
    messages = run_cli("messages", "--config", str(cfg), env={"COLUMNS": "300"})
    assert sorted(w for line in messages.stdout.splitlines() for w in line.split() if w.endswith(".edi")) == ["f0.edi", "f1.edi", "f2.edi"]  # one inbound row each


def test_random_kills_while_files_keep_arriving(tmp_path, erp_process):
    """reliability F4: kill -9 at random moments, six times, while new files keep arriving."""
    import random

    url, db = erp_process
    cfg = write_config(tmp_path, url, stable=0.05)
    rng = random.Random(20261127)
    expected: list[str] = []
    for round_ in range(6):
        for f in range(2):
            numbers = [f"PO-{round_}-{f}-{i}" for i in range(3)]
            expected += numbers
            (tmp_path / "inbox" / f"r{round_}f{f}.edi").write_bytes(file_with_orders(numbers, icn=f"{round_ * 10 + f + 1:09d}"))
        proc = subprocess.Popen(gateway_cmd("run", "--config", str(cfg)), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(rng.uniform(0.4, 2.0))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
    done = run_cli("run", "--once", "--for", "60", "--config", str(cfg))
    assert done.returncode == 0, done.stderr
    got = ledger_pos(db)
    assert len(got) == len(set(got)), "an order reached the ERP twice"
    assert got == sorted(expected)
    assert os.listdir(tmp_path / "inbox") == []
