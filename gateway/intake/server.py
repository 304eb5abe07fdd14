"""The intake served by uvicorn on its own thread, for `gateway run` and for tests.

    server = IntakeServer(gw, config.intake)
    server.start()            # returns once it listens; raises GatewayError if it cannot
    ... server.url ...        # http://127.0.0.1:8080
    server.stop()             # stops accepting, lets requests in flight finish

The listening socket is bound in `start()` itself, so an address already in use is an error
raised to the caller, not a log line on a background thread. Port 0 picks a free port
(`url` tells which). uvicorn's signal handlers are not installed (it does not own the main
thread); the service's own SIGTERM handling calls `stop()`.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import TYPE_CHECKING

import uvicorn

from gateway.errors import GatewayError
from gateway.intake.app import create_app
from gateway.intake.config import IntakeConfig

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)

__all__ = ["IntakeServer"]


class IntakeServer:
    def __init__(self, gateway: Gateway, config: IntakeConfig, *, grace_seconds: float = 10.0):
        self.config = config
        self.app = create_app(gateway, config)
        self._uvicorn = uvicorn.Server(
            uvicorn.Config(
                self.app,
                http="h11",
                loop="asyncio",
                lifespan="off",
                log_config=None,  # leave the gateway's logging set-up alone
                access_log=False,  # one line per delivery is logged by the intake itself, without payloads
                server_header=False,
                limit_concurrency=config.max_connections,
                timeout_keep_alive=15,
                timeout_graceful_shutdown=int(grace_seconds),
            )
        )
        self._grace = grace_seconds
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

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

    def __enter__(self) -> IntakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
