"""A TCP proxy on 127.0.0.1 that injects network faults (a small in-repo Toxiproxy).

    with TcpFault(("127.0.0.1", erp_port)) as proxy:
        proxy.bandwidth_bps = 1          # the answer trickles one byte a second
        ... send to proxy.url("/orders") ...
        proxy.set(blackhole=True)        # switch at run time; applies to new connections

Modes (each new connection takes the settings current when it is accepted):

``latency``            seconds added before each chunk is forwarded, both ways
``bandwidth_bps``      bytes per second from the upstream to the client (the answer)
``reset_after_bytes``  after this many answer bytes, the client's connection is reset (RST)
``blackhole``          accept and read, never forward nor answer
``close_after_accept`` accept and close at once

Without an upstream (``TcpFault(None)``) only blackhole and close_after_accept make sense.
``proxy.connections`` counts accepted connections. ``proxy.cut()`` resets every open
connection at once (a server restarted under its clients, reliability F6).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = ["Faults", "TcpFault"]


@dataclass(frozen=True, slots=True)
class Faults:
    latency: float = 0.0
    bandwidth_bps: int | None = None
    reset_after_bytes: int | None = None
    blackhole: bool = False
    close_after_accept: bool = False


class TcpFault:
    def __init__(self, upstream: tuple[str, int] | None):
        self.upstream = upstream
        self.faults = Faults()
        self.connections = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcpfault", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    # -- settings ------------------------------------------------------------------------------

    def set(self, **changes: Any) -> None:
        self.faults = replace(self.faults, **changes)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in {f.name for f in fields(Faults)}:
            self.set(**{name: value})
        else:
            object.__setattr__(self, name, value)

    def url(self, path: str = "/", scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def cut(self) -> None:
        """Reset every connection open now, both sides (what a server restart does to them)."""

        async def abort_all() -> None:
            for writer in list(self._writers):
                _reset(writer)

        asyncio.run_coroutine_threadsafe(abort_all(), self._loop).result(5)

    # -- life cycle ----------------------------------------------------------------------------

    def __enter__(self) -> TcpFault:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop
        ).result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    # -- one connection ------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        faults = self.faults
        self._writers.add(writer)
        try:
            if faults.close_after_accept:
                return
            if faults.blackhole or self.upstream is None:
                while await reader.read(65_536):
                    pass
                return
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            self._writers.add(up_writer)
            try:
                await asyncio.gather(
                    self._pump(reader, up_writer, faults, answer=False),
                    self._pump(up_reader, writer, faults, answer=True),
                )
            finally:
                self._writers.discard(up_writer)
                up_writer.transport.abort()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, faults: Faults, *, answer: bool) -> None:
        sent = 0
        try:
            while True:
                data = await reader.read(65_536)
                if not data:
                    break
                if faults.latency:
                    await asyncio.sleep(faults.latency)
                if answer and faults.reset_after_bytes is not None and sent + len(data) > faults.reset_after_bytes:
                    writer.write(data[: faults.reset_after_bytes - sent])
                    await writer.drain()
                    _reset(writer)
                    return
                if answer and faults.bandwidth_bps:
                    step = max(1, faults.bandwidth_bps // 10)
                    for i in range(0, len(data), step):
                        writer.write(data[i : i + step])
                        await writer.drain()
                        await asyncio.sleep(len(data[i : i + step]) / faults.bandwidth_bps)
                else:
                    writer.write(data)
                    await writer.drain()
                sent += len(data)
            with contextlib.suppress(OSError):
                writer.write_eof()
        except (ConnectionError, OSError):
            writer.transport.abort()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with SO_LINGER 0: the peer gets a RST, not a clean FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
