"""From drop folder to ERP: orders/s and latency, SQLite vs PostgreSQL vs two PostgreSQL nodes,
and the dispatcher against a bare `requests` loop to the same loopback sink.

    .venv/bin/python -m bench.bench_throughput [--files 1000] [--queued 10000]
        [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]   # a fresh database per run is made next to it

End to end: `gateway run` (the real CLI, one process per node, default configuration apart
from the paths and the ERP URL) while `--files` one-PO X12 files are dropped at once; the
ERP is `bench/erp_sink.py` in a process of its own. Printed: orders/s from the drop to the
last PO received, and p50/p95 of each PO's time from its drop to the ERP. A second run drops
5 files a second for 10 s: the latency of normal traffic (goal p95 < 2 s).

Dispatch: `--queued` orders waiting in the outbox are sent by `Dispatcher.drain()` (default
dispatch settings), next to a bare `requests.Session` loop posting the same JSON to the same
sink; on PostgreSQL also by two dispatcher processes at once. Goals (issue 14): >= 100
orders/s end to end on SQLite, dispatch >= 70% of the bare loop, two PG nodes >= 1.7x one.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.x12gen import file_with_orders  # noqa: E402

# -- helpers -----------------------------------------------------------------------------------


@contextmanager
def sink() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.erp_sink"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        yield line.rsplit(" ", 1)[-1].strip()
    finally:
        proc.terminate()
        proc.wait(10)


def received(url: str) -> list[tuple[str, float]]:
    base = url.rsplit("/", 1)[0]
    return [tuple(r) for r in requests.get(f"{base}/stats", timeout=30).json()["received"]]  # type: ignore[misc]


def reset(url: str) -> None:
    requests.post(url.rsplit("/", 1)[0] + "/reset", timeout=10)


@contextmanager
def fresh_pg(base_url: str) -> Iterator[str]:
    from sqlalchemy import create_engine, text

    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def write_config(tmp: Path, store_url: str, erp_url: str) -> Path:
    cfg = tmp / "gateway.yaml"
    cfg.write_text(
        f"""\
store:
  url: {store_url}
sources:
  - type: folder
    name: inbox
    path: {tmp / 'inbox'}
    archive: {tmp / 'archive'}
    failed: {tmp / 'failed'}
connectors:
  - type: http_json
    name: erp
    url: {erp_url}
    allow_private_targets: true
    reference: id
"""
    )
    (tmp / "inbox").mkdir(exist_ok=True)
    return cfg


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def drop(inbox: Path, i: int, tag: str) -> tuple[str, float]:
    po = f"{tag}-{i:06d}"
    body = file_with_orders([po], icn=f"{i % 1_000_000_000:09d}")
    part = inbox / f".{po}.part"
    part.write_bytes(body)
    os.replace(part, inbox / f"{po}.edi")
    return po, time.time()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc; the machine is shared,
    so CPU per order says more than wall-clock rates do)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(url: str, tag: str, n: int, timeout: float) -> list[tuple[str, float]]:
    end = time.monotonic() + timeout
    while True:
        got = [r for r in received(url) if r[0] and r[0].startswith(tag)]
        if len({po for po, _ in got}) >= n or time.monotonic() > end:
            return got
        time.sleep(0.2)


# -- end to end --------------------------------------------------------------------------------


def end_to_end(store_url: str, erp_url: str, nodes: int, files: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cfg = write_config(tmp, store_url, erp_url)
        subprocess.run([sys.executable, "-m", "gateway.cli", "config", "check", "-c", str(cfg)], cwd=ROOT, check=True, capture_output=True)
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "run", "-c", str(cfg)],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(tmp / f"node{i}.log", "w"),  # noqa: SIM115
            )
            for i in range(nodes)
        ]
        try:
            time.sleep(3.0)  # started, migrated, first polls done
            reset(erp_url)
            tag = f"B{uuid.uuid4().hex[:6]}"
            cpu0 = sum(cpu_seconds(p.pid) for p in procs)
            drops = dict(drop(tmp / "inbox", i, tag) for i in range(files))
            got = wait_for(erp_url, tag, files, timeout=600)
            cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu0
            first = {}
            for po, at in got:
                first.setdefault(po, at)
            lat = [first[po] - drops[po] for po in first]
            t0 = min(drops.values())
            burst = {
                "orders": len(first),
                "repeats": len(got) - len(first),
                "rate": len(first) / (max(first.values()) - t0) if first else 0.0,
                "p50": pct(lat, 50),
                "p95": pct(lat, 95),
                "cpu_ms": 1000 * cpu / len(first) if first else float("nan"),
            }
            # Normal traffic: 5 files a second for 10 s.
            tag2 = f"T{uuid.uuid4().hex[:6]}"
            drops2 = {}
            for i in range(50):
                po, at = drop(tmp / "inbox", files + i, tag2)
                drops2[po] = at
                time.sleep(max(0.0, at + 0.2 - time.time()))
            got2 = wait_for(erp_url, tag2, 50, timeout=120)
            first2: dict[str, float] = {}
            for po, at in got2:
                first2.setdefault(po, at)
            lat2 = [first2[po] - drops2[po] for po in first2]
            burst.update(trickle_p50=pct(lat2, 50), trickle_p95=pct(lat2, 95), trickle_n=len(first2))
            return burst
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()


# -- dispatch only -----------------------------------------------------------------------------


def seed(store_url: str, n: int) -> None:
    from sqlalchemy import insert

    from gateway.store import Store
    from gateway.store import tables as t
    from gateway.store.outbox import new_deliveries

    store = Store(store_url)
    at = store.db_now()
    with store.begin() as conn:
        for start in range(0, n, 1000):
            msgs, orders, outbox = [], [], []
            for i in range(start, min(n, start + 1000)):
                mid, oid = str(uuid.uuid4()), str(uuid.uuid4())
                msgs.append(dict(id=mid, received_at=at, updated_at=at, source="bench", sha256=uuid.uuid4().hex * 2, size=1,
                                 state="parsed", warnings=[], attempts=1, order_count=1, rejected_count=0))
                orders.append(dict(id=oid, message_id=mid, doc_index=0, created_at=at, updated_at=at, channel="x12",
                                   po_number=f"Q-{i:06d}", state="validated", line_count=1,
                                   data={"po_number": f"Q-{i:06d}", "currency": "USD",
                                         "lines": [{"line": 1, "sku": "WID-1", "quantity": "2", "unit_price": "9.99"}]}))
                outbox.extend(new_deliveries(oid, ["erp"], at))
            conn.execute(insert(t.messages), msgs)
            conn.execute(insert(t.orders), orders)
            conn.execute(insert(t.outbox), outbox)
    store.dispose()


def drain(store_url: str, erp_url: str) -> tuple[int, float]:
    """Send everything queued with the default dispatch settings; (sent, seconds)."""
    from connectors.targets.http_json.config import HttpJsonConfig
    from connectors.targets.http_json.connector import HttpJsonConnector
    from gateway.config import DispatchConfig
    from gateway.dispatch.worker import Dispatcher
    from gateway.store import Store

    store = Store(store_url)
    conn = HttpJsonConnector(HttpJsonConfig(name="erp", url=erp_url, allow_private_targets=True, reference="id"))
    d = Dispatcher(store, {"erp": conn}, {}, DispatchConfig())
    started = time.perf_counter()
    stats = d.drain()
    secs = time.perf_counter() - started
    d.close()
    store.dispose()
    return stats.sent, secs


def drain_nodes(store_url: str, erp_url: str, nodes: int) -> tuple[int, float]:
    """`nodes` dispatcher processes at once; (sent by all, seconds until the last finished)."""
    procs = [
        subprocess.Popen([sys.executable, "-m", "bench.bench_throughput", "--drain-node", store_url, erp_url],
                         cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(nodes)
    ]
    outs = [json.loads((p.communicate(timeout=900)[0] or "{}").strip().splitlines()[-1]) for p in procs]
    return sum(o["sent"] for o in outs), max(o["end"] for o in outs) - min(o["start"] for o in outs)


def bare_loop(erp_url: str, n: int) -> float:
    """Seconds for n POSTs of an order's JSON with one requests.Session, one after the other."""
    body = {"po_number": "BARE", "currency": "USD", "lines": [{"line": 1, "sku": "WID-1", "quantity": "2", "unit_price": "9.99"}]}
    with requests.Session() as s:
        started = time.perf_counter()
        for i in range(n):
            s.post(erp_url, json=body, headers={"Idempotency-Key": str(i)}, timeout=10).raise_for_status()
        return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--queued", type=int, default=10_000)
    ap.add_argument("--pg", default=os.environ.get("GATEWAY_TEST_PG_URL"))
    ap.add_argument("--skip-e2e", action="store_true")
    ap.add_argument("--skip-dispatch", action="store_true")
    ap.add_argument("--drain-node", nargs=2, metavar=("STORE", "ERP"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.drain_node:
        start = time.time()
        sent, _ = drain(*args.drain_node)
        print(json.dumps({"sent": sent, "start": start, "end": time.time()}))
        return
    with sink() as erp:
        if not args.skip_e2e:
            print(f"end to end: {args.files} one-PO X12 files dropped at once, then 5 files/s for 10 s (default configuration)")
            print(f"  {'backend':<22} {'orders':>7} {'orders/s':>9} {'p50 s':>7} {'p95 s':>7} {'CPU ms/order':>13}   {'5/s: p50 s':>11} {'p95 s':>7}")
            runs: list[tuple[str, Any, int]] = []
            with tempfile.TemporaryDirectory() as d:
                runs.append(("sqlite", f"sqlite:///{d}/gateway.db", 1))
                if args.pg:
                    runs += [("postgresql", "pg", 1), ("postgresql, 2 nodes", "pg", 2)]
                for label, url, nodes in runs:
                    if url == "pg":
                        with fresh_pg(args.pg) as pg:
                            r = end_to_end(pg, erp, nodes, args.files)
                    else:
                        r = end_to_end(url, erp, nodes, args.files)
                    extra = f"  ({r['repeats']} repeated)" if r["repeats"] else ""
                    print(f"  {label:<22} {r['orders']:>7} {r['rate']:>9.1f} {r['p50']:>7.2f} {r['p95']:>7.2f} {r['cpu_ms']:>13.1f}   "
                          f"{r['trickle_p50']:>11.2f} {r['trickle_p95']:>7.2f}{extra}", flush=True)
        if not args.skip_dispatch:
            n = args.queued
            print(f"dispatch: {n} queued orders to the same loopback sink (default dispatch settings)")
            secs = bare_loop(erp, n)
            bare = n / secs
            print(f"  {'bare requests loop':<28} {n / secs:>9.0f} calls/s")
            with tempfile.TemporaryDirectory() as d:
                url = f"sqlite:///{d}/gateway.db"
                seed(url, n)
                sent, secs = drain(url, erp)
                print(f"  {'dispatcher, sqlite':<28} {sent / secs:>9.0f} orders/s  ({sent / secs / bare:.0%} of the bare loop)", flush=True)
            if args.pg:
                one = 0.0
                for nodes in (1, 2):
                    with fresh_pg(args.pg) as pg:
                        seed(pg, n)
                        sent, secs = drain_nodes(pg, erp, nodes)
                    rate = sent / secs
                    one = one or rate
                    note = f"({rate / bare:.0%} of the bare loop)" if nodes == 1 else f"({rate / one:.2f}x one node)"
                    print(f"  {f'dispatcher, postgresql x{nodes}':<28} {rate:>9.0f} orders/s  {note}  [{sent} sent]", flush=True)


if __name__ == "__main__":
    main()
