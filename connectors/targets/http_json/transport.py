"""The network side of the HTTP JSON target: pinned addresses and a total deadline per call.

``Call``
    one send: its total deadline (connect + send + the whole response) and, when the SSRF
    guard checked the host, the addresses it checked. Entered with ``with call:`` around the
    request; the connection in use registers itself with the call of its thread.
``GuardedAdapter``
    a `requests` adapter whose new connections go to an address of the current call's checked
    list, never to a second DNS answer (a DNS rebind cannot slip a private address in between
    the check and the connect). The Host header, TLS SNI and certificate verification still
    use the host name. Through a proxy nothing is pinned (the proxy resolves the name), but
    the deadline still applies.
``WATCHDOG``
    one daemon thread for the process: when a call's deadline passes it shuts the call's
    socket down, which unblocks a read stuck on a server that trickles one byte a second or
    never answers. A `requests` timeout alone bounds each socket operation, not the call.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.poolmanager import ProxyManager
from urllib3.util import connection as _connection

from gateway.errors import DeliveryError, PermanentError, TransientError

__all__ = ["WATCHDOG", "Call", "GuardedAdapter", "Watchdog"]

_local = threading.local()
_RECHECK_SECONDS = 0.05  # a call past its deadline with no socket yet (still connecting) is checked again


class Call:
    """One send: a deadline, the checked addresses of its host, the connection it uses."""

    __slots__ = ("addresses", "conn", "deadline", "done", "expired", "host", "lock", "seconds")

    def __init__(self, seconds: float, host: str, addresses: list[str] | None):
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.host = _norm(host)
        self.addresses = addresses  # None: not checked (allow_private_targets), resolve normally
        self.conn: Any = None
        self.expired = False
        self.done = False
        self.lock = threading.Lock()

    def __enter__(self) -> Call:
        _local.call = self
        WATCHDOG.watch(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.done = True
            self.conn = None
        _local.call = None

    def attach(self, conn: Any) -> None:
        with self.lock:
            self.conn = conn
            conn._gateway_call = self

    def expire(self) -> bool:
        """Shut the call's socket down; False if there is no socket yet (check again soon)."""
        with self.lock:
            if self.done:
                return True
            self.expired = True
            conn = self.conn
            sock = getattr(conn, "sock", None) if conn is not None else None
            if sock is None or getattr(conn, "_gateway_call", None) is not self:
                return False
            # the plain socket's shutdown, also for an SSLSocket: it wakes a blocked recv
            # without touching the TLS object another thread is reading through
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            return True


def current_call() -> Call | None:
    return getattr(_local, "call", None)


class Watchdog:
    """One thread that expires calls whose deadline passed (a heap of deadlines)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Call]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, call: Call, deadline: float | None = None) -> None:
        entry = (call.deadline if deadline is None else deadline, next(self._seq), call)
        with self._cond:
            heapq.heappush(self._heap, entry)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="http-deadline-watchdog", daemon=True)
                self._thread.start()
            if self._heap[0] is entry:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                deadline, _, call = self._heap[0]
                if call.done:
                    heapq.heappop(self._heap)
                    continue
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
            if not call.expire():
                self.watch(call, time.monotonic() + _RECHECK_SECONDS)


WATCHDOG = Watchdog()


class _Guarded:
    """Mixin for urllib3 connections: register with the thread's call; connect to checked addresses."""

    pin = True
    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any

    def connect(self) -> None:
        call = current_call()
        if call is not None:
            call.attach(self)
        super().connect()  # type: ignore[misc]

    def request(self, *args: Any, **kwargs: Any) -> None:
        call = current_call()
        if call is not None:
            call.attach(self)
        super().request(*args, **kwargs)  # type: ignore[misc]

    def _new_conn(self) -> socket.socket:
        call = current_call()
        if not self.pin or call is None or call.addresses is None:
            return super()._new_conn()  # type: ignore[misc, no-any-return]
        if _norm(self.host) != call.host:
            raise NewConnectionError(self, f"refusing to connect to {self.host}: not the checked host")  # type: ignore[arg-type]
        last: OSError | None = None
        for address in call.addresses:
            try:
                return _connection.create_connection(
                    (address, self.port), self.timeout,
                    source_address=self.source_address, socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
                ) from exc
            except OSError as exc:
                last = exc
        raise NewConnectionError(self, f"Failed to establish a new connection: {last}")  # type: ignore[arg-type]


class _PinnedHTTPConnection(_Guarded, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_Guarded, HTTPSConnection):
    pass


class _ProxiedHTTPConnection(_Guarded, HTTPConnection):
    pin = False


class _ProxiedHTTPSConnection(_Guarded, HTTPSConnection):
    pin = False


class _PinnedPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedSPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class _ProxiedPool(HTTPConnectionPool):
    ConnectionCls = _ProxiedHTTPConnection


class _ProxiedSPool(HTTPSConnectionPool):
    ConnectionCls = _ProxiedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections are pinned to the call's checked addresses and watched."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PinnedPool, "https": _PinnedSPool}

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is ProxyManager:  # a SOCKS manager keeps its own connection classes
            manager.pool_classes_by_scheme = {"http": _ProxiedPool, "https": _ProxiedSPool}
        return manager


def _norm(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


def read_within(response: requests.Response, call: Call, limit: int) -> bytes:
    """A streamed answer's body, cut at `limit` bytes or when the call's total deadline ran out
    (the caller checks `call.expired`): what the RPC/REST connectors read an answer with."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=65_536):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit or call.expired:
            break
    return b"".join(chunks)


def transport_error(exc: requests.exceptions.RequestException, where: str, call: Call, looked_up: str = "order") -> DeliveryError:
    """What a failed request means for a connector that looks `looked_up` (the order, the sale)
    up before it creates it again: a lost answer is transient, a TLS problem permanent."""
    if call.expired:
        return TransientError(f"no complete answer from {where} within {call.seconds:g} s; the retry looks the {looked_up} up first")
    if isinstance(exc, requests.exceptions.SSLError):
        return PermanentError(f"TLS failure talking to {where}: a configuration problem (certificate, verify_tls)")
    if isinstance(exc, requests.exceptions.Timeout):
        return TransientError(f"timeout talking to {where}; the retry looks the {looked_up} up first")
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        return TransientError(f"connection to {where} failed: {type(exc).__name__}")
    return PermanentError(f"request to {where} could not be made: {type(exc).__name__}")
