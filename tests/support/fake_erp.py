"""A fake ERP: a real HTTP server on 127.0.0.1 that creates orders and dedupes retries.

    with FakeERP() as erp:
        erp.script(503, 201)                 # next answers: 503, then a normal 201
        erp.script(Scripted(400, body={"error": "unknown SKU"}))
        erp.script(Scripted(429, headers={"Retry-After": "7"}))
        erp.script(Scripted(201, delay=0.3))  # create the order, answer late (client timeout)
        ... send to erp.url ...
        assert len(erp.orders) == 1
        assert {r.idempotency_key for r in erp.requests} == {key}

Behaviour of a POST/PUT to any path (except the change routes further down):

* every request is recorded (method, path, headers, JSON body);
* a scripted answer, if one is queued, is used first: a non-2xx answer creates nothing, a
  2xx answer goes through the normal path below (optionally answering after `delay`);
* normal path: a request whose ``Idempotency-Key`` was already seen gets the original
  ``201 {"id": "ERP-<n>"}`` again (header ``Idempotent-Replayed: true``) and creates nothing;
  the same key with a different body gets 422 (IETF idempotency-key draft). Otherwise an
  order ``ERP-<n>`` is created.

Changes to an order it created, addressed by its id (``ERP-<n>``, percent-decoded):

* ``PUT`` or ``PATCH /orders/<id>`` records an update, ``DELETE /orders/<id>`` and ``POST`` or
  ``PATCH /orders/<id>/cancel`` record a cancellation; each answers ``200 {"id": <id>,
  "status": "updated" | "cancelled"}``. An unknown id gets 404 and records nothing (no
  order is created). The same Idempotency-Key again records nothing and gets the original
  answer (header ``Idempotent-Replayed: true``); with a different body, 422. Scripted
  answers apply here too. ``erp.changes`` lists what was recorded.

``GET /orders`` lists the created orders, ``GET /health`` answers 200.

Orders and requests live in SQLite (in memory, or a file with ``db=``), so the server also
runs as its own process for crash tests, where the gateway is killed and restarted and the
effects must be counted across restarts:

    python -m tests.support.fake_erp --port 0 --db /tmp/erp.db   # prints "listening on URL"
    Ledger("/tmp/erp.db").orders()                                # from the test process

In a test module, ``fake_erp = fake_erp_fixture()`` declares a fixture that yields a
running FakeERP.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sqlite3
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

__all__ = ["FakeERP", "Ledger", "RecordedRequest", "Scripted", "fake_erp_fixture"]


@dataclass(frozen=True, slots=True)
class Scripted:
    """One scripted answer. A 2xx creates the order normally; anything else creates nothing."""

    status: int = 201
    body: Any = None  # JSON-able, str or bytes; default: {"error": "scripted <status>"}
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (after creating, for a 2xx)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON, or None if the body was not JSON

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


class Ledger:
    """The ERP's durable state: created orders and every request seen (SQLite)."""

    def __init__(self, path: str | Path = ":memory:"):
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS erp_orders (n INTEGER PRIMARY KEY AUTOINCREMENT, "
            "idempotency_key TEXT UNIQUE, body TEXT, created_at REAL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS erp_requests (n INTEGER PRIMARY KEY AUTOINCREMENT, "
            "method TEXT, path TEXT, headers TEXT, body TEXT, at REAL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS erp_changes (n INTEGER PRIMARY KEY AUTOINCREMENT, "
            "order_n INTEGER, action TEXT, idempotency_key TEXT UNIQUE, body TEXT, at REAL)"
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO erp_requests (method, path, headers, body, at) VALUES (?, ?, ?, ?, ?)",
                (request.method, request.path, json.dumps(request.headers), json.dumps(request.body), time.time()),
            )

    def create(self, key: str | None, body: Any) -> tuple[int, dict[str, Any]]:
        """(status, answer): 201 for a new order or a repeat of a known key, 422 on a key clash."""
        text = json.dumps(body, sort_keys=True)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if key is not None:
                    row = self._db.execute(
                        "SELECT n, body FROM erp_orders WHERE idempotency_key = ?", (key,)
                    ).fetchone()
                    if row is not None:
                        self._db.execute("COMMIT")
                        if row[1] != text:
                            return 422, {"error": "Idempotency-Key reused with a different body"}
                        return 200, {"id": f"ERP-{row[0]}", "replayed": True}
                cur = self._db.execute(
                    "INSERT INTO erp_orders (idempotency_key, body, created_at) VALUES (?, ?, ?)",
                    (key, text, time.time()),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return 201, {"id": f"ERP-{cur.lastrowid}"}

    def change(self, order_id: str, action: str, key: str | None, body: Any) -> tuple[int, dict[str, Any]]:
        """(status, answer) for an update or cancel of `order_id` ("ERP-<n>"): 200, 404 or 422."""
        text = json.dumps(body, sort_keys=True)
        n = int(order_id[4:]) if order_id.startswith("ERP-") and order_id[4:].isdigit() else None
        status = "updated" if action == "update" else "cancelled"
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if n is None or self._db.execute("SELECT 1 FROM erp_orders WHERE n = ?", (n,)).fetchone() is None:
                    self._db.execute("COMMIT")
                    return 404, {"error": f"no order {order_id}"}
                if key is not None:
                    row = self._db.execute(
                        "SELECT order_n, action, body FROM erp_changes WHERE idempotency_key = ?", (key,)
                    ).fetchone()
                    if row is not None:
                        self._db.execute("COMMIT")
                        if (row[0], row[1], row[2]) != (n, action, text):
                            return 422, {"error": "Idempotency-Key reused with a different request"}
                        return 200, {"id": order_id, "status": status, "replayed": True}
                self._db.execute(
                    "INSERT INTO erp_changes (order_n, action, idempotency_key, body, at) VALUES (?, ?, ?, ?, ?)",
                    (n, action, key, text, time.time()),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return 200, {"id": order_id, "status": status}

    def changes(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT order_n, action, idempotency_key, body FROM erp_changes ORDER BY n"
            ).fetchall()
        return [
            {"id": f"ERP-{n}", "action": action, "idempotency_key": key, "body": json.loads(body)}
            for n, action, key, body in rows
        ]

    def orders(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT n, idempotency_key, body FROM erp_orders ORDER BY n").fetchall()
        return [{"id": f"ERP-{n}", "idempotency_key": key, "body": json.loads(body)} for n, key, body in rows]

    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            rows = self._db.execute("SELECT method, path, headers, body FROM erp_requests ORDER BY n").fetchall()
        return [RecordedRequest(m, p, json.loads(h), json.loads(b)) for m, p, h, b in rows]


class FakeERP:
    """The server; see the module docstring. Start with `start()` or `with FakeERP() as erp:`."""

    def __init__(self, db: str | Path | None = None, *, host: str = "127.0.0.1", port: int = 0):
        self.ledger = Ledger(db if db is not None else ":memory:")
        self._script: deque[Scripted] = deque()
        self._script_lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- life cycle ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """Where orders are posted."""
        return f"{self.base_url}/orders"

    def start(self) -> FakeERP:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-erp", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()
        self.ledger.close()

    def __enter__(self) -> FakeERP:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting and inspection --------------------------------------------------------------

    def script(self, *answers: int | Scripted) -> None:
        """Queue answers for the next requests (ints are statuses)."""
        with self._script_lock:
            for a in answers:
                self._script.append(a if isinstance(a, Scripted) else Scripted(int(a)))

    def clear_script(self) -> None:
        with self._script_lock:
            self._script.clear()

    def next_scripted(self) -> Scripted | None:
        with self._script_lock:
            return self._script.popleft() if self._script else None

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every order request received (POST/PUT, and PATCH/DELETE), in order."""
        return self.ledger.requests()

    @property
    def orders(self) -> list[dict[str, Any]]:
        """The distinct orders created: {"id", "idempotency_key", "body"}."""
        return self.ledger.orders()

    @property
    def changes(self) -> list[dict[str, Any]]:
        """Updates and cancels recorded, in order: {"id", "action", "idempotency_key", "body"}."""
        return self.ledger.changes()


def _handler_for(erp: FakeERP) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # without it every answer waits ~40 ms (Nagle + delayed ACK)
        timeout = 10  # an idle keep-alive connection is closed after this

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
            return

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.rstrip("/") == "/orders":
                self._answer(200, erp.orders)
            elif self.path == "/health":
                self._answer(200, {"ok": True})
            else:
                self._answer(404, {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            self._order()

        def do_PUT(self) -> None:  # noqa: N802
            self._order()

        def do_PATCH(self) -> None:  # noqa: N802
            self._order()

        def do_DELETE(self) -> None:  # noqa: N802
            self._order()

        def _change(self) -> tuple[str, str] | None:
            """(ERP id, action) when this request changes an existing order's resource."""
            match = _CHANGE_PATH.match(self.path.split("?", 1)[0])
            if match is None:
                return None
            order_id, cancel = unquote(match.group(1)), bool(match.group(2))
            if cancel and self.command in ("POST", "PATCH"):
                return order_id, "cancel"
            if not cancel and self.command == "DELETE":
                return order_id, "cancel"
            if not cancel and self.command in ("PUT", "PATCH"):
                return order_id, "update"
            return None

        def _order(self) -> None:
            change = self._change()
            if change is None and self.command in ("PATCH", "DELETE"):
                self._read_body()
                self._answer(405, {"error": f"{self.command} only on /orders/<id>"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            headers = {k.lower(): v for k, v in self.headers.items()}
            erp.ledger.record(RecordedRequest(self.command, self.path, headers, body))
            scripted = erp.next_scripted()
            if scripted is not None and not 200 <= scripted.status < 300:
                if scripted.delay:
                    time.sleep(scripted.delay)
                payload = scripted.body if scripted.body is not None else {"error": f"scripted {scripted.status}"}
                self._answer(scripted.status, payload, scripted.headers)
                return
            if raw and body is None:
                self._answer(400, {"error": "the body is not JSON"})
                return
            if change is not None:
                status, answer = erp.ledger.change(change[0], change[1], headers.get("idempotency-key"), body)
            else:
                status, answer = erp.ledger.create(headers.get("idempotency-key"), body)
            extra = dict(scripted.headers) if scripted else {}
            if answer.pop("replayed", False):
                status = 200 if change is not None else 201  # the original answer, again
                extra["Idempotent-Replayed"] = "true"
            if scripted is not None and scripted.delay:
                time.sleep(scripted.delay)
            self._answer(status, answer, extra)

        def _read_body(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)

        def _answer(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            if isinstance(payload, bytes):
                data, ctype = payload, "application/octet-stream"
            elif isinstance(payload, str):
                data, ctype = payload.encode("utf-8"), "text/plain; charset=utf-8"
            else:
                data, ctype = json.dumps(payload).encode("utf-8"), "application/json"
            try:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (a timeout test)

    return Handler


_CHANGE_PATH = re.compile(r"^/orders/([^/]+)(/cancel)?/?$")


def fake_erp_fixture(**kwargs: Any) -> Any:
    """A pytest fixture yielding a running FakeERP: ``fake_erp = fake_erp_fixture()``."""
    import pytest

    @pytest.fixture
    def _fixture() -> Iterator[FakeERP]:
        with FakeERP(**kwargs) as erp:
            yield erp

    return _fixture


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.fake_erp", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on start)")
    parser.add_argument("--db", type=Path, default=None, help="SQLite file keeping orders across restarts")
    parser.add_argument("--script", default="", help="comma-separated statuses for the first requests, e.g. 503,201")
    args = parser.parse_args(argv)
    erp = FakeERP(args.db, host=args.host, port=args.port)
    if args.script:
        erp.script(*(int(s) for s in args.script.split(",") if s.strip()))

    def _stop(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    print(f"fake-erp listening on {erp.url}", flush=True)
    try:
        erp._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        erp._server.server_close()
        erp.ledger.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
