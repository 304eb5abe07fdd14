"""An HTTPS server on 127.0.0.1 with a `trustme` certificate, answering every POST with 201.

    ca = trustme.CA()
    with TlsServer(ca, "erp.example.test") as server:   # certificate for that name
        ... post to https://<name>:{server.port}/orders ...
        server.seen   # [{"host": Host header, "body": JSON}]
        server.sni    # the server names clients asked for in the TLS handshake
"""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import trustme

__all__ = ["TlsServer"]


class TlsServer:
    def __init__(self, ca: trustme.CA, hostname: str):
        self.seen: list[dict[str, Any]] = []
        self.sni: list[str | None] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.seen))
        self.server.daemon_threads = True
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(hostname).configure_cert(context)
        context.sni_callback = self._record_sni
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def _record_sni(self, sock: Any, name: str | None, context: ssl.SSLContext) -> None:
        self.sni.append(name)

    def __enter__(self) -> TlsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(seen: list[dict[str, Any]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.append({"host": self.headers["Host"], "body": json.loads(body)})
            answer = json.dumps({"id": f"ERP-{len(seen)}"}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    return Handler
