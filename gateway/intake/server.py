"""The intake served by uvicorn on its own thread, for `gateway run` and for tests.

    server = IntakeServer(gw, config.intake)
    server.start()            # returns once it listens; raises GatewayError if it cannot
    ... server.url ...        # http://127.0.0.1:8080
    server.stop()             # stops accepting, lets requests in flight finish

The listening socket is bound in `start()` itself, so an address already in use is an error
raised to the caller, not a log line on a background thread. Port 0 picks a free port
(`url` tells which). uvicorn's signal handlers are not installed (it does not own the main
thread); the service's own SIGTERM handling calls `stop()`.

Slow clients (issue 14 #20). uvicorn has no timeout for a request's head and counts every
open connection against its concurrency limit, so a few hundred connections trickling header
lines made it answer 503 to every signed webhook. `_GuardedH11` closes a connection whose
request head has not arrived within ``header_timeout_seconds`` of its first byte (or of the
connection), and when ``max_connections`` are open, a new connection closes the one that has
waited longest for its head instead of being refused: a connection that sends its request
promptly is always served. Only when every open connection is inside a request is the new
one answered 503 at once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from gateway.errors import GatewayError
from gateway.intake.app import close_app, create_app
from gateway.intake.config import IntakeConfig

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)

__all__ = ["IntakeServer"]


_BUSY_BODY = b'{"error": "too many open connections"}'
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: application/json\r\n"
    b"Connection: close\r\nContent-Length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY
)


def _guarded_h11(header_timeout: float, max_connections: int) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a request-head timeout and a connection cap (see above)."""
    waiting: OrderedDict[_GuardedH11, None] = OrderedDict()  # connections between requests, oldest first

    class _GuardedH11(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                oldest = next(iter(waiting), None)
                if oldest is None:  # every other connection is inside a request
                    transport.write(_BUSY)
                    transport.close()
                    return
                log.debug("intake: %d connections open; dropping the one waiting longest for its request", len(self.connections))
                oldest._drop()
            waiting[self] = None
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._head_timer is None and self.conn.their_state is h11.IDLE:
                self._arm()  # the first byte of a new request on a kept-alive connection
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:  # the head is in (or the request was bad)
                self._disarm()
                waiting.pop(self, None)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                waiting[self] = None  # idle until its next request; the keep-alive timer runs

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            waiting.pop(self, None)
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(header_timeout, self._head_timeout)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timeout(self) -> None:
            self._head_timer = None
            if self.conn.their_state is h11.IDLE:
                log.debug("intake: no request head from %s within %g s; closed", self.client, header_timeout)
                self._drop()

        def _drop(self) -> None:
            waiting.pop(self, None)
            self._disarm()
            if not self.transport.is_closing():
                self.transport.close()

    return _GuardedH11


class IntakeServer:
    def __init__(self, gateway: Gateway, config: IntakeConfig, *, grace_seconds: float = 10.0):
        self.config = config
        self.app = create_app(gateway, config)
        protocol: Any = _guarded_h11(config.header_timeout_seconds, config.max_connections)
        self._uvicorn = uvicorn.Server(
            uvicorn.Config(
                self._asgi,  # forwards to self.app, which replace() swaps on a reload
                http=protocol,
                interface="asgi3",  # uvicorn cannot tell from the bound method
                loop="asyncio",
                lifespan="off",
                log_config=None,  # leave the gateway's logging set-up alone
                access_log=False,  # one line per delivery is logged by the intake itself, without payloads
                server_header=False,
                limit_concurrency=None,  # enforced by _GuardedH11, which also drops slow heads
                timeout_keep_alive=15,
                timeout_graceful_shutdown=int(grace_seconds),
            )
        )
        self._grace = grace_seconds
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    async def _asgi(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    def can_take(self, config: IntakeConfig) -> bool:
        """Whether `config` can be served by this running server (`replace`), or needs a new one."""
        keep = ("host", "port", "max_connections", "header_timeout_seconds")
        return all(getattr(config, k) == getattr(self.config, k) for k in keep)

    def replace(self, gateway: Gateway, config: IntakeConfig) -> None:
        """Serve new requests with `gateway` and `config` (a reload), without closing the port.

        Requests in flight finish with the application they started with; the connectors it
        holds are closed now (`close_app`: one still in flight builds its own).
        """
        if not self.can_take(config):
            raise GatewayError("intake: a new address or connection limits need a new server")
        old, self.app, self.config = self.app, create_app(gateway, config), config
        close_app(old)

    @property
    def port(self) -> int:
        if self._socket is None:
            return self.config.port
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}"

    def start(self, timeout: float = 10.0) -> IntakeServer:
        """Listen on config.host:port and serve on a background thread; returns once serving."""
        if self._thread is not None:
            return self
        if self._uvicorn.should_exit:
            raise GatewayError(
                "intake: a stopped IntakeServer cannot be started again; make a new one"
            )
        try:
            infos = socket.getaddrinfo(
                self.config.host, self.config.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
            family, kind, proto, _, address = infos[0]
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(address)
                sock.listen(2048)
            except OSError:
                sock.close()
                raise
        except OSError as exc:
            raise GatewayError(
                f"intake: cannot listen on {self.config.host}:{self.config.port}: {exc.strerror or exc}"
            ) from exc
        sock.setblocking(False)
        self._socket = sock
        self._failure = None
        self._thread = threading.Thread(target=self._serve, name="intake-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise GatewayError(
                    f"intake: the HTTP server did not start: {self._failure or 'timed out'}"
                )
            time.sleep(0.01)
        log.info("intake listening on %s (%d store(s))", self.url, len(self.config.stores))
        return self

    def _serve(self) -> None:
        assert self._socket is not None
        try:
            self._uvicorn.run(sockets=[self._socket])
        except BaseException as exc:  # uvicorn ends with SystemExit when start-up fails
            self._failure = exc
            log.error("intake: the HTTP server stopped: %r", exc)

    def stop(self) -> None:
        """Stop accepting connections and wait for requests in flight (up to the grace period)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._uvicorn.should_exit = True
            thread.join(self._grace + 5)
            if thread.is_alive():
                self._uvicorn.force_exit = True
                thread.join(5)
            log.info("intake stopped")
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        close_app(self.app)  # after the requests in flight: the connectors they used

    def __enter__(self) -> IntakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
