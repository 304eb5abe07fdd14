"""Reliability fault rows F6, F13, F14, F18 and F20 from the outside: `gateway run` as a
subprocess, real files in a drop folder, a loopback fake ERP (tests/support/fake_erp.py), a
real PostgreSQL behind a TCP proxy that can cut it off (tests/support/tcpfault.py), and the
operating system's own file-size limit for a full disk.

The oracle is the one of reliability.md §0: every PO reaches each connector exactly once,
nothing is acknowledged to the source (the file moved to the archive) without its commit,
and every order ends in a state that agrees with its deliveries.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from gateway.store import Store
from tests.e2e.helpers import ROOT, gateway_cmd, http_json, run_cli, write_config
from tests.support.fake_erp import FakeERP
from tests.support.tcpfault import TcpFault
from tests.support.x12gen import file_with_orders, interchange, po

pytestmark = pytest.mark.slow

RETRY = "{max_attempts: 8, base_seconds: 0.05, cap_seconds: 0.3}"


def http_connector(name: str, url: str, retry: str = RETRY) -> str:
    return http_json(name, url, retry=retry)


def config(tmp: Path, store_url: str, connectors: str, extra: str = "", processing_lease: float | None = None) -> Path:
    """Files in at once (no stable wait), `connectors` out."""
    return write_config(tmp, store_url=store_url, connectors=connectors, stable=0, extra=extra, processing_lease=processing_lease)


def drop(tmp: Path, name: str, pos: list[str], icn: int) -> None:
    """Written under a hidden name and renamed, as partners do."""
    part = tmp / "inbox" / f".{name}.part"
    part.write_bytes(file_with_orders(pos, icn=f"{icn:09d}"))
    os.replace(part, tmp / "inbox" / name)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_CRASHPOINT"}
    env.update(extra)
    return env


def wait_for(what: str, check: Callable[[], bool], timeout: float, proc: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the gateway stopped while waiting for {what}: {proc.communicate()[1][-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def order_states(cfg: Path) -> dict[str, str]:
    """PO number -> state, as `gateway orders` shows them to an operator."""
    out = run_cli("orders", "--config", str(cfg), "--limit", "10000", env={"COLUMNS": "300"})
    assert out.returncode == 0, out.stderr
    states: dict[str, str] = {}
    for line in out.stdout.splitlines():
        words = line.split()
        po = next((w for w in words if w.startswith("PO-")), None)
        state = next((w for w in words if w in KNOWN_STATES), None)
        if po and state:
            states[po] = state
    return states


KNOWN_STATES = {"received", "validated", "dispatched", "partial", "quarantined", "duplicate", "failed", "dead", "held", "review", "stale"}


def erp_pos(erp: FakeERP) -> list[str]:
    return sorted(o["body"]["po_number"] for o in erp.orders)


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the gateway did not stop on SIGTERM: {err[-3000:]}")
    return err


# -- F6 ----------------------------------------------------------------------------------------


@pytest.mark.timeout(400)
def test_f6_postgresql_cut_off_mid_batch_recovers_without_a_restart(tmp_path: Path, pg_url: str) -> None:
    """reliability F6: PostgreSQL goes away mid-batch (every connection reset, new ones refused for
    a few seconds, as a restart does) under a running `gateway run`. The same process recovers
    on its own; every file is archived once, every PO reaches the ERP exactly once, and every
    order ends `dispatched` (issue 14 #16: none stays `validated`)."""
    Store(pg_url).dispose()  # migrated before the node starts
    pg = urlsplit(pg_url.replace("postgresql+psycopg", "postgresql"))
    with FakeERP(db=tmp_path / "erp.db") as erp, TcpFault((pg.hostname or "127.0.0.1", pg.port or 5432)) as proxy:
        proxied = pg_url.replace(f"{pg.hostname}:{pg.port or 5432}", f"127.0.0.1:{proxy.port}")
        assert proxied != pg_url
        # A message whose processing the cut interrupted is taken up again after the processing
        # lease: 15 s here instead of the default 120, so the test waits for that once, briefly.
        cfg = config(tmp_path, proxied, http_connector("erp", erp.url), processing_lease=15)
        (tmp_path / "ops").mkdir()
        direct = config(tmp_path / "ops", pg_url, http_connector("erp", erp.url))  # an operator's view, not through the proxy
        expected: list[str] = []
        for f in range(40):
            pos = [f"PO-F6-{f:02d}-{i}" for i in range(2)]
            expected += pos
            drop(tmp_path, f"po{f:02d}.edi", pos, f + 1)
        proc = subprocess.Popen(gateway_cmd("run", "--config", str(cfg)), cwd=ROOT, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_for("the first orders at the ERP", lambda: len(erp.orders) >= 4, 90, proc)
            proxy.set(close_after_accept=True)
            proxy.cut()
            time.sleep(4)
            assert proc.poll() is None, "the gateway stopped when PostgreSQL went away"
            proxy.set(close_after_accept=False)
            wait_for("every PO at the ERP", lambda: len(erp.orders) >= len(expected), 120, proc)
            wait_for("every order dispatched", lambda: set(order_states(direct).values()) == {"dispatched"} and len(order_states(direct)) == len(expected), 60, proc)
            assert proc.poll() is None
        finally:
            err = stop(proc)
        got, keys = erp_pos(erp), [r.idempotency_key for r in erp.requests if r.method == "POST"]
        reconnects = proxy.connections
    assert proc.returncode == 0, err[-3000:]
    assert got == sorted(expected)  # exactly once each
    assert len(set(keys)) == len(expected)
    assert os.listdir(tmp_path / "inbox") == []
    assert len(os.listdir(tmp_path / "archive")) == 40
    messages = run_cli("messages", "--config", str(direct), "--limit", "1000", env={"COLUMNS": "300"})
    assert messages.returncode == 0, messages.stderr
    assert sum(1 for line in messages.stdout.splitlines() if ".edi" in line) == 40  # one row per file
    assert reconnects > 1  # it did reconnect


# -- F13 ---------------------------------------------------------------------------------------


def test_f13_partial_success_retries_only_the_failing_connector(tmp_path: Path) -> None:
    """reliability F13: the ERP takes the orders while the shipping service answers 503 for a
    while. Only the shipping deliveries are retried (the ERP is not called again), the order
    shows which delivery waits, and once shipping is back each PO is at each connector once."""
    with FakeERP() as erp, FakeERP() as shipping:
        shipping.script(*([503] * 10_000))
        cfg = config(
            tmp_path, f"sqlite:///{tmp_path / 'gateway.db'}",
            http_connector("erp", erp.url) + http_connector("shipping", shipping.url, "{max_attempts: 10000, base_seconds: 0.1, cap_seconds: 0.3}"),
        )
        drop(tmp_path, "po.edi", ["PO-F13A", "PO-F13B"], 1)
        down = run_cli("run", "--for", "5", "--config", str(cfg), timeout=60)
        assert down.returncode == 0, down.stderr
        assert erp_pos(erp) == ["PO-F13A", "PO-F13B"]
        assert len(erp.requests) == 2
        assert len(shipping.requests) >= 4 and shipping.orders == []
        show = run_cli("show", "PO-F13A", "--config", str(cfg), env={"COLUMNS": "300"})
        assert show.returncode == 0, show.stderr
        # The deliveries table: a row starts with its connector (history lines name them too).
        rows = [line.replace("│", " ").split() for line in show.stdout.splitlines()]
        erp_line = " ".join(next(r for r in rows if r[:2] == ["erp", "sent"]))
        ship_line = " ".join(next(r for r in rows if r[:1] == ["shipping"] and r[1:2] != ["sent"]))
        assert "ERP-" in erp_line and ("retry" in ship_line or "pending" in ship_line or "503" in ship_line), show.stdout
        assert order_states(cfg)["PO-F13A"] == "validated"  # not dispatched while shipping waits

        shipping.clear_script()
        up = run_cli("run", "--once", "--for", "40", "--config", str(cfg), timeout=90)
        assert up.returncode == 0, up.stderr
        assert len(erp.requests) == 2  # never called again
        assert erp_pos(shipping) == ["PO-F13A", "PO-F13B"]
        keys = {}
        for r in shipping.requests:
            keys.setdefault(r.body["po_number"], set()).add(r.idempotency_key)
        assert all(len(k) == 1 for k in keys.values())  # every retry carried the same key
        assert order_states(cfg) == {"PO-F13A": "dispatched", "PO-F13B": "dispatched"}


# -- F14 ---------------------------------------------------------------------------------------

POISON = '''\
"""Test-only fault injection (reliability F14): validating PO-POISON kills the process, as an
input that makes a parser segfault or run out of memory would."""
import os

import gateway.validation as _v

_real = _v.validate


def _poisoned(order, *args, **kwargs):
    if getattr(order, "po_number", None) == "PO-POISON":
        os._exit(137)
    return _real(order, *args, **kwargs)


_v.validate = _poisoned
'''


def test_f14_an_input_that_kills_the_gateway_every_time_is_quarantined_crash_loop(tmp_path: Path) -> None:
    """reliability F14: one file makes the gateway process die every time it is processed. The
    attempt is counted before the work, so after `processing.max_attempts` (3) deaths it is
    quarantined CRASH_LOOP; the other files are not blocked behind it and each reaches the ERP
    once."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(POISON)
    env = clean_env(PYTHONPATH=f"{hook}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    with FakeERP() as erp:
        cfg = config(tmp_path, f"sqlite:///{tmp_path / 'gateway.db'}", http_connector("erp", erp.url))
        drop(tmp_path, "a.edi", ["PO-F14A"], 1)
        drop(tmp_path, "poison.edi", ["PO-POISON"], 2)
        drop(tmp_path, "b.edi", ["PO-F14B"], 3)
        codes = []
        for _ in range(6):
            done = subprocess.run(gateway_cmd("run", "--once", "--for", "30", "--config", str(cfg)), cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
            codes.append(done.returncode)
            if done.returncode == 0:
                break
        assert codes == [137, 137, 137, 0], codes
        assert erp_pos(erp) == ["PO-F14A", "PO-F14B"]
        drop(tmp_path, "c.edi", ["PO-F14C"], 4)  # later input flows as usual
        again = subprocess.run(gateway_cmd("run", "--once", "--for", "30", "--config", str(cfg)), cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
        assert again.returncode == 0, again.stderr
        assert erp_pos(erp) == ["PO-F14A", "PO-F14B", "PO-F14C"]
    messages = run_cli("messages", "--config", str(cfg), env={"COLUMNS": "300"})
    assert messages.returncode == 0, messages.stderr
    [line] = [line for line in messages.stdout.splitlines() if "poison.edi" in line]
    assert "CRASH_LOOP" in line and "quarantined" in line


# -- F18 ---------------------------------------------------------------------------------------


@pytest.mark.timeout(400)
def test_f18_two_nodes_dispatch_from_one_outbox_each_delivery_sent_once(tmp_path: Path, pg_url: str) -> None:
    """reliability F18: 300 orders queued on PostgreSQL, two `gateway run` nodes dispatch them at
    once. No delivery is sent by both: the ERP sees each Idempotency-Key in exactly one request."""
    with FakeERP() as erp:
        cfg = config(tmp_path, pg_url, http_connector("erp", erp.url))
        expected = []
        for f in range(30):
            pos = [f"PO-F18-{f:02d}-{i}" for i in range(10)]
            expected += pos
            (tmp_path / f"po{f:02d}.edi").write_bytes(file_with_orders(pos, icn=f"{f + 1:09d}"))
        ingest = run_cli("ingest", "--config", str(cfg), *[str(p) for p in sorted(tmp_path.glob("po*.edi"))], timeout=120)
        assert ingest.returncode == 0, ingest.stderr
        assert erp.requests == []  # queued, not yet sent
        nodes = [
            subprocess.Popen(gateway_cmd("run", "--once", "--for", "120", "--config", str(cfg)), cwd=ROOT, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        errs = [n.communicate(timeout=200)[1] for n in nodes]
        for n, err in zip(nodes, errs, strict=True):
            assert n.returncode == 0, err[-3000:]
        keys = [r.idempotency_key for r in erp.requests]
        assert len(keys) == len(set(keys)) == len(expected)  # nobody sent a delivery twice
        assert erp_pos(erp) == sorted(expected)
    assert set(order_states(cfg).values()) == {"dispatched"}


def test_f18_sqlite_refuses_a_second_node(tmp_path: Path) -> None:
    """reliability F18: SQLite has no SKIP LOCKED, so a second `gateway run` on the same SQLite
    store is refused at start with a clear reason, while the first keeps running."""
    with FakeERP() as erp:
        cfg = config(tmp_path, f"sqlite:///{tmp_path / 'gateway.db'}", http_connector("erp", erp.url))
        first = subprocess.Popen(gateway_cmd("run", "--config", str(cfg)), cwd=ROOT, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_for("the first node's store", lambda: (tmp_path / "gateway.db.lock").exists(), 30, first)
            time.sleep(1)
            second = run_cli("run", "--for", "5", "--config", str(cfg), timeout=60)
            assert second.returncode != 0
            assert "SQLite serves one node" in second.stderr
            drop(tmp_path, "po.edi", ["PO-F18S"], 1)
            wait_for("the first node to deliver", lambda: erp_pos(erp) == ["PO-F18S"], 30, first)
        finally:
            err = stop(first)
        assert first.returncode == 0, err[-3000:]


# -- F20 ---------------------------------------------------------------------------------------


def _disk_limit(nbytes: int) -> Callable[[], None]:
    def apply() -> None:
        # Writing past this size fails with EFBIG (Python ignores SIGXFSZ): a full disk for
        # every file this process writes, the store included. The soft limit only, so the
        # test can give the space back to the running process.
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, resource.RLIM_INFINITY))

    return apply


@pytest.mark.timeout(400)
def test_f20_disk_full_while_storing_acknowledges_nothing_and_retries_when_space_returns(tmp_path: Path) -> None:
    """reliability F20: the store's write fails (no space: the process may not grow any file past
    its current size + 32 KiB) while a file of 4 large POs (330 KB or more) is taken in. The transaction fails, the file stays in the drop
    folder (not acknowledged), nothing half-stored is left; with space back the same file goes
    through and each PO reaches the ERP once."""
    with FakeERP() as erp:
        cfg = config(tmp_path, f"sqlite:///{tmp_path / 'gateway.db'}", http_connector("erp", erp.url))
        empty = run_cli("run", "--once", "--for", "10", "--config", str(cfg))  # creates the store
        assert empty.returncode == 0, empty.stderr
        store_size = max(p.stat().st_size for p in tmp_path.glob("gateway.db*"))
        limit = store_size + 32 * 1024
        pos = [f"PO-F20-{i}" for i in range(4)]
        # Enough lines that the raw bytes alone do not fit, however large the empty store is.
        lines = [("1", "2.50", f"SKU-{n:05d}") for n in range(max(2500, (limit + 128 * 1024) // (4 * 30)))]
        body = interchange([po(p, lines, st=f"{i + 1:04d}") for i, p in enumerate(pos)]).encode()
        (tmp_path / "inbox" / "big.edi").write_bytes(body)
        assert len(body) > limit + 64 * 1024  # the raw bytes alone do not fit
        full = subprocess.run(
            gateway_cmd("run", "--once", "--for", "8", "--config", str(cfg)),
            cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60, preexec_fn=_disk_limit(limit),
        )
        assert "store is unavailable" in full.stderr and "nothing acknowledged" in full.stderr, full.stderr[-3000:]
        assert "Traceback" not in full.stderr
        assert os.listdir(tmp_path / "inbox") == ["big.edi"]  # not acknowledged
        assert not (tmp_path / "archive").exists() or os.listdir(tmp_path / "archive") == []
        assert erp.requests == []
        listed = run_cli("messages", "--config", str(cfg), env={"COLUMNS": "300"})
        assert listed.returncode == 0, listed.stderr
        assert "big.edi" not in listed.stdout  # nothing half-stored

        # The service keeps running while the disk is full, and takes the file once space returns.
        service = subprocess.Popen(
            gateway_cmd("run", "--config", str(cfg)), cwd=ROOT, env=clean_env(),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=_disk_limit(limit),
        )
        try:
            time.sleep(5)
            assert service.poll() is None, "the service stopped on a full disk"
            assert os.listdir(tmp_path / "inbox") == ["big.edi"] and erp.requests == []
            resource.prlimit(service.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            wait_for("every PO at the ERP once space returned", lambda: len(erp.orders) >= len(pos), 200, service)
            assert os.listdir(tmp_path / "inbox") == []
        finally:
            err = stop(service)
        assert service.returncode == 0, err[-3000:]
        assert erp_pos(erp) == sorted(pos)
