"""Cost of one HTTP JSON send: the connector against a loopback sink in another process.

Compares the connector as built for production (one session, proxy variables read once,
pinned and watched connections) with the same connector on a plain `requests.Session`, which
scans the proxy variables (HTTP(S)_PROXY, NO_PROXY, ...) and the CA bundle variables on every
call, as the connector did before (issue 14: about 0.6 ms of 3 ms per send). Wall and CPU time
per send are printed for each; the sink answers ``201 {"id": ...}`` on a kept-alive connection.

    .venv/bin/python bench/bench_http_send.py [--sends 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.targets.http_json.config import HttpJsonConfig  # noqa: E402
from connectors.targets.http_json.connector import HttpJsonConnector  # noqa: E402
from gateway.connector import Delivery  # noqa: E402

ORDER = {
    "po_number": "PO-BENCH",
    "currency": "USD",
    "buyer": {"name": "Acme Retail", "code": "ACME"},
    "lines": [{"line_number": str(i), "sku": f"SKU-{i}", "quantity": "2", "unit_price": "9.99"} for i in range(5)],
}


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are written apart: no 40 ms delayed ACK
    answer = json.dumps({"id": "ERP-1"}).encode()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.answer)))
        self.end_headers()
        self.wfile.write(self.answer)


def serve(port: Any) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    port.value = server.server_address[1]
    server.serve_forever()


def measure(conn: HttpJsonConnector, sends: int) -> tuple[float, float]:
    """(wall µs, CPU µs) per send."""
    deliveries = [Delivery(outbox_id=i, order_id=f"o-{i}", idempotency_key=f"k-{i}", attempt=1, order=ORDER)
                  for i in range(sends)]
    conn.send(deliveries[0])  # warm: connection open
    wall, cpu = time.perf_counter(), time.process_time()
    for d in deliveries:
        conn.send(d)
    return ((time.perf_counter() - wall) / sends * 1e6, (time.process_time() - cpu) / sends * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    # a realistic environment: a corporate proxy with a bypass list
    os.environ.setdefault("HTTPS_PROXY", "http://proxy.corp.example:3128")
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost,.corp.example,10.0.0.0/8")
    port = multiprocessing.Value("i", 0)
    sink = multiprocessing.Process(target=serve, args=(port,), daemon=True)
    sink.start()
    while not port.value:
        time.sleep(0.01)
    cfg = HttpJsonConfig(name="erp", url=f"http://127.0.0.1:{port.value}/orders", allow_private_targets=True)
    results: dict[str, list[tuple[float, float]]] = {"before (plain requests.Session)": [], "after (one session, env read once)": []}
    for _ in range(args.rounds):
        before = HttpJsonConnector(cfg, requests.Session())
        results["before (plain requests.Session)"].append(measure(before, args.sends))
        before.session.close()
        after = HttpJsonConnector(cfg)
        results["after (one session, env read once)"].append(measure(after, args.sends))
        after.close()
    sink.terminate()
    print(f"{args.sends} sends x {args.rounds} rounds to a loopback sink, best round:")
    for name, rounds in results.items():
        wall, cpu = min(rounds)
        print(f"  {name:38s} {wall:7.0f} µs wall   {cpu:7.0f} µs CPU per send")


if __name__ == "__main__":
    main()
