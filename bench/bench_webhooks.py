"""Webhook intake throughput: signed Shopify deliveries accepted and stored per second.

Every delivery goes the whole way a real one does: HTTP/1.1 over a keep-alive connection to
the real uvicorn server on 127.0.0.1, size and type checks, HMAC verification, depth scan,
and a committed `Pipeline.receive` (SQLite in a temporary folder, WAL, synchronous=FULL)
before the 200. Every body is distinct, so each one is a new stored message.

    .venv/bin/python bench/bench_webhooks.py [--deliveries 3000] [--clients 1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.app import Gateway  # noqa: E402
from gateway.config import GatewayConfig  # noqa: E402
from gateway.intake import IntakeConfig, IntakeServer, sign_hmac_base64  # noqa: E402

SECRET = "bench-secret-0123456789abcdef"


def order(n: int) -> bytes:
    return json.dumps(
        {
            "id": 5_000_000_000 + n,
            "name": f"#{n}",
            "order_number": n,
            "email": f"buyer{n}@example.com",
            "created_at": "2026-11-20T10:15:00-05:00",
            "updated_at": "2026-11-20T10:15:02-05:00",
            "currency": "USD",
            "total_price": "26.57",
            "shipping_address": {"name": "Jane Doe", "address1": "1 Main St", "city": "Springfield", "zip": "62701", "country_code": "US"},
            "line_items": [
                {"id": n * 10 + i, "sku": f"SKU-{i}", "title": f"Item {i}", "quantity": i + 1, "price": "9.99"}
                for i in range(3)
            ],
        }
    ).encode()


def sender(url: str, numbers: range, ready: Any, go: Any) -> tuple[float, float, list[str]]:
    """One sender process: warm up its keep-alive connection, wait for the start, send."""
    secret = SECRET.encode()
    failures: list[str] = []
    with requests.Session() as session:

        def post(n: int) -> None:
            body = order(n)
            res = session.post(
                f"{url}/intake/shopify/bench",
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Shopify-Hmac-Sha256": sign_hmac_base64(body, secret),
                    "X-Shopify-Topic": "orders/create",
                    "X-Shopify-Webhook-Id": f"bench-{n}",
                },
                timeout=10,
            )
            if res.status_code != 200 or res.json().get("duplicate") is not False:
                failures.append(f"delivery {n}: {res.status_code} {res.text[:100]}")

        for k in range(20):  # warm-up, numbered apart from the run
            post(-(10**9) - numbers.start - k)
        ready.release()
        go.wait()
        started = time.perf_counter()
        for n in numbers:
            post(n)
        return started, time.perf_counter(), failures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deliveries", type=int, default=3000)
    ap.add_argument("--clients", type=int, default=1, help="concurrent sender processes, one keep-alive connection each")
    args = ap.parse_args()
    ctx = multiprocessing.get_context("spawn")  # senders in their own processes: they do not share the server's GIL
    with tempfile.TemporaryDirectory() as tmp, ctx.Manager() as manager:
        gw = Gateway(GatewayConfig.model_validate({"store": {"url": f"sqlite:///{tmp}/bench.db"}}))
        cfg = IntakeConfig.model_validate({"port": 0, "stores": [{"name": "bench", "platform": "shopify", "secrets": [SECRET]}]})
        server = IntakeServer(gw, cfg).start()
        ready, go = manager.Semaphore(0), manager.Event()
        per = -(-args.deliveries // args.clients)
        try:
            with ProcessPoolExecutor(args.clients, mp_context=ctx) as pool:
                jobs = [
                    pool.submit(sender, server.url, range(i * per, min(args.deliveries, (i + 1) * per)), ready, go)
                    for i in range(args.clients)
                ]
                for _ in jobs:
                    ready.acquire()
                warm = server.app.state.intake.stats["accepted"]
                go.set()
                results = [job.result() for job in jobs]
        finally:
            server.stop()
        stored = server.app.state.intake.stats["accepted"] - warm
        gw.close()
    failures = [f for _, _, fs in results for f in fs]
    if failures:
        sys.exit(f"{len(failures)} deliveries failed, e.g. {failures[0]}")
    elapsed = max(end for _, end, _ in results) - min(start for start, _, _ in results)
    print(
        f"webhooks: {stored / elapsed:,.0f} deliveries/s accepted and stored "
        f"({stored} in {elapsed:.2f} s, {args.clients} sender(s), SQLite)"
    )


if __name__ == "__main__":
    main()
