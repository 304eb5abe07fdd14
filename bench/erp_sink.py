"""A loopback ERP for the benchmarks: answers every POST with 201 and notes when which PO came.

Runs as its own process, so the gateway being measured does not share its interpreter:

    python -m bench.erp_sink --port 0          # prints "listening on http://127.0.0.1:PORT/orders"

`GET /stats` answers {"received": [[po_number, unix_time], ...]} (every POST, repeats
included) and `POST /reset` forgets them. HTTP/1.1 with keep-alive, like a real ERP.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 65536  # headers and body leave in one segment (flushed after each request)
    server: _Sink

    def log_message(self, *_: Any) -> None:  # quiet
        pass

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/stats":
            with self.server.lock:
                received = list(self.server.received)
            self._answer(200, {"received": received})
        else:
            self._answer(200, {"ok": True})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path == "/reset":
            with self.server.lock:
                self.server.received.clear()
            self._answer(200, {"ok": True})
            return
        now = time.time()
        try:
            po = json.loads(raw).get("po_number")
        except (ValueError, AttributeError):
            po = None
        with self.server.lock:
            self.server.received.append((po, now))
            n = len(self.server.received)
        self._answer(201, {"id": f"ERP-{n}"})


class _Sink(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int) -> None:
        super().__init__((host, port), _Handler)
        self.lock = threading.Lock()
        self.received: list[tuple[str | None, float]] = []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    sink = _Sink("127.0.0.1", args.port)
    print(f"listening on http://127.0.0.1:{sink.server_address[1]}/orders", flush=True)
    sink.serve_forever()


if __name__ == "__main__":
    main()
