"""Deciding in a process of its own, beside the reading of orders.

The rules are pure Python over master data; on one core they cost about half of what reading
an X12 order does (bench/bench_rules.py). So a large message's orders are decided by a worker
process while this one goes on parsing, mapping and writing: each chunk of new orders goes to
the worker as the JSON text that is stored anyway, and the decisions are collected before the
batch that holds them is written, then applied in the batch's transaction as before
(gateway.processing.decide.apply: stock, routing, states and answers are unchanged).

- Only a large message (LARGE_BYTES, about 200 X12 orders) uses it: its worker is started when
  the first such message begins and kept for later ones; until it says it is ready (imports
  done, master data loaded: about a second) chunks are decided in process. A small message's
  few orders are decided in process, as they always were.
- It reads master data and order history through a connection of its own, as the in-process
  decide step does (Processor._decide), and keeps the contents a message's orders had so far
  (the duplicates rule) seeded with what was decided in process before it took over.
- Nothing depends on it for correctness: if it fails on a chunk or dies, every chunk it still
  held is decided in process, in order, from its JSON, and it is replaced for a later message.
- Started with `spawn`, never `fork`: the service has threads (a forked lock held by one of
  them would hang the child). `processing.decide_workers: 0` keeps every decision in process.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import logging
import multiprocessing as mp
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:
    import fcntl
except ImportError:  # not on Windows: the pipe keeps its size
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from multiprocessing.connection import Connection as Pipe

    from gateway.processing.decide import Decider

__all__ = ["LARGE_BYTES", "DecidePool", "DecideWorker", "RemoteRun", "WorkerGone"]

log = logging.getLogger(__name__)

LARGE_BYTES = 256 * 1024
"""A message at least this large has its orders decided by a worker (once one is ready)."""

DeciderSpec = Callable[[], tuple[str, "Decider"]]
"""Picklable; called in the worker: (the store's URL, the decider), master data loaded."""


class WorkerGone(Exception):
    """The worker failed on a chunk or died: what it still held is decided in process."""


def _serve(inp: Pipe, out: Pipe, spec: DeciderSpec) -> None:
    """The worker's loop: decide chunks from `inp`, answers to `out`, until told to stop or
    the gateway's end of `inp` closes."""
    from gateway import crashpoints
    from gateway.gctune import tune_for_batches
    from gateway.model import Order
    from gateway.processing.decide import decide_orders
    from gateway.store import Store

    # Ctrl-C in a terminal and a hang-up reach the whole process group: they are the gateway's
    # to handle (it stops this worker when it stops).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    url, decider = spec()
    store = Store(url, migrate=False)
    tune_for_batches()
    # This process only decides: a chunk's orders are garbage once answered and hold no cycles,
    # so young collections while it is decided only rescan them (they cost more than reading
    # the orders' JSON). Collected between chunks instead; the master data was frozen by spec().
    gc.collect()
    gc.freeze()
    gc.disable()
    chunks = 0
    seen: dict[str, dict[str, str]] = {}  # per message run: contents decided so far
    # A thread takes chunks off the pipe as they come, so the gateway never waits to hand one
    # over while an earlier chunk is being decided (a pipe holds 64 KB; a chunk is ~350 KB).
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    threading.Thread(target=_drain, args=(inp, inbox), daemon=True, name="decide-inbox").start()
    out.send(("ready",))
    try:
        while True:
            msg = inbox.get()
            if msg is None:
                return  # the gateway process is gone
            if msg[0] == "stop":
                return
            if msg[0] == "end":
                seen.pop(msg[1], None)
                continue
            _, run, chunk, answers, texts, seed = msg
            crashpoints.hit("decide_worker")
            try:
                mine = seen.setdefault(run, {})
                mine.update(seed)
                known = len(mine)
                orders = [Order.model_validate_json(text) for text in texts]
                with Store.reading(), store.engine.connect() as conn:  # never waits for the gateway's batch
                    decided = decide_orders(decider(conn), orders, mine, answers=answers)
                # what this chunk added: the last entries (a dict keeps insertion order)
                added = dict(itertools.islice(reversed(mine.items()), len(mine) - known))
                out.send(("decided", run, chunk, decided, added))
                del orders, decided
            except Exception:
                out.send(("failed", run, chunk, traceback.format_exc(limit=8)))
            chunks += 1
            if chunks % 20 == 0:
                gc.collect(0 if chunks % 1000 else 2)
    finally:
        store.dispose()


def _drain(pipe: Pipe, inbox: queue.SimpleQueue[Any]) -> None:
    """The worker's reading thread: every message into `inbox`; None once the pipe closes."""
    try:
        while True:
            msg = pipe.recv()
            inbox.put(msg)
            if msg[0] == "stop":
                return
    except (EOFError, OSError):
        inbox.put(None)


def _widen(pipe: Pipe) -> None:
    """Let the pipe hold several chunks (Linux: up to fs.pipe-max-size, 1 MB by default; 64 KB
    otherwise), so handing one over does not wait for the worker to read it: with the GIL
    held by its deciding thread, the worker reads a 350 KB chunk in 64 KB pieces only every few
    milliseconds."""
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if setsize is None:
        return
    try:
        limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    except (OSError, ValueError):
        limit = 1 << 20
    with contextlib.suppress(OSError):
        fcntl.fcntl(pipe.fileno(), setsize, min(limit, 4 << 20))


class DecideWorker:
    """One worker process and the gateway's ends of its two pipes (`tx`: chunks, `rx`: answers).

    Chunks are handed to a feeder thread (`post`), which writes them to the pipe: the reading
    thread never blocks on a worker that stopped reading (hung, or stopped by a signal); it
    notices at `collect`'s timeout, and the worker is killed, which ends the feeder's write."""

    def __init__(self, spec: DeciderSpec):
        ctx = mp.get_context("spawn")
        self.rx, their_tx = ctx.Pipe(duplex=False)  # answers
        their_rx, self.tx = ctx.Pipe(duplex=False)  # chunks
        _widen(self.tx)
        self.process = ctx.Process(target=_serve, args=(their_rx, their_tx, spec), daemon=True, name="gateway-decide")
        try:
            self.process.start()
        except BaseException:
            for end in (self.rx, self.tx):
                end.close()
            raise
        finally:
            their_rx.close()
            their_tx.close()
        self.ready = False
        self.broken = False
        self._outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._feeder = threading.Thread(target=self._feed, daemon=True, name="decide-feeder")
        self._feeder.start()

    def _feed(self) -> None:
        while (msg := self._outbox.get()) is not None:
            try:
                self.tx.send(msg)
            except Exception:  # the worker is gone (killed, or closed): collect notices
                self.broken = True
                return

    def post(self, msg: tuple[Any, ...]) -> None:
        """Hand a message to the worker without waiting for it to be written."""
        if self.broken:
            raise WorkerGone("the decide worker is gone")
        self._outbox.put(msg)

    def poll_ready(self) -> bool:
        if not self.ready and not self.broken:
            try:
                if self.rx.poll():
                    self.ready = self.rx.recv() == ("ready",)
                    self.broken = not self.ready
                elif not self.process.is_alive():
                    self.broken = True
            except Exception:
                self.broken = True
        return self.ready

    def stop(self) -> None:
        """Tell an idle, ready worker to finish (it has nothing pending); kill it otherwise."""
        if self.ready and not self.broken:
            self._outbox.put(("stop",))
            self.process.join(timeout=2)
        self.kill()

    def kill(self) -> None:
        """At once: a worker that failed, hung or still holds chunks is not waited for."""
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.broken = True
        self._outbox.put(None)  # the feeder ends (its pending write ended with the process)
        self._feeder.join(timeout=5)
        for end in (self.tx, self.rx):
            with contextlib.suppress(OSError):
                end.close()


class DecidePool:
    """At most `size` workers for one pipeline, each lent to one message run at a time."""

    def __init__(self, spec: DeciderSpec, size: int = 1):
        self.spec = spec
        self.size = size
        self._lock = threading.Lock()
        self._idle: list[DecideWorker] = []
        self._all: list[DecideWorker] = []
        self._closed = False
        self._failed_starts = 0  # workers that died before they were ready, in a row

    def warm(self, wait: float = 0.0) -> bool:
        """Start a worker now if there is none (a large message begins): it is ready sooner.
        `wait`: seconds to wait until one is ready (a benchmark of a running service). Returns
        whether one is ready."""
        with self._lock:
            if not self._closed and not self._all:
                self._start()
        deadline = time.monotonic() + wait
        while True:
            with self._lock:
                self._check()
                if any(w.ready for w in self._all):
                    return True
                if self._closed or not self._all or time.monotonic() >= deadline:
                    return False
            time.sleep(0.01)

    def _check(self) -> None:
        """Read the workers' "ready"; discard the broken. Three that die before they are ready
        in a row (say a master-data folder that cannot be read there) close the pool."""
        for w in list(self._all):
            was_ready = w.ready
            w.poll_ready()
            if w.ready and not was_ready:
                self._failed_starts = 0
            if w.broken:
                self._discard(w)
                if not was_ready:
                    self._failed_starts += 1
        if self._failed_starts >= 3 and not self._closed:
            log.error("decide workers keep failing before they are ready (see their errors above); deciding in process")
            self._closed = True

    def _start(self) -> None:
        try:
            w = DecideWorker(self.spec)
        except Exception:  # cannot start a process here: decide in process
            log.warning("cannot start a decide worker; deciding in process", exc_info=True)
            self._closed = True
            return
        self._all.append(w)
        self._idle.append(w)

    def lend(self) -> DecideWorker | None:
        """A ready worker for one run, else None (and one is started if there is room)."""
        with self._lock:
            self._check()
            if self._closed:
                return None
            for w in self._idle:
                if w.ready:
                    self._idle.remove(w)
                    return w
            if len(self._all) < self.size:
                self._start()
            return None

    def give_back(self, worker: DecideWorker, *, healthy: bool) -> None:
        """A lent worker back; one that failed, died or still holds chunks is killed (not under
        the pool's lock: other threads lend and give back meanwhile)."""
        with self._lock:
            keep = healthy and not self._closed and not worker.broken and worker.process.is_alive()
            if keep:
                self._idle.append(worker)
            else:
                self._forget(worker)
        if not keep and (not healthy or worker.broken):
            worker.kill()
        elif not keep:
            worker.stop()  # healthy, but the pool closed meanwhile

    def _forget(self, worker: DecideWorker) -> None:
        if worker in self._idle:
            self._idle.remove(worker)
        if worker in self._all:
            self._all.remove(worker)

    def _discard(self, worker: DecideWorker) -> None:
        """Forget and kill a broken or still-starting worker (nothing of it can be pending)."""
        self._forget(worker)
        worker.kill()

    def close(self) -> None:
        """Stop the idle workers; a worker lent to a run that is still going is stopped when
        that run gives it back."""
        with self._lock:
            self._closed = True
            idle = list(self._idle)
            for w in idle:
                self._forget(w)
        for w in idle:
            w.stop()


@dataclass
class RemoteRun:
    """One message run's use of a worker: the chunks sent and not yet collected, in order."""

    worker: DecideWorker
    key: str
    pending: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # chunk -> its rows
    sent: int = 0
    seeded: bool = False
    decided: int = 0  # orders whose decisions came back

    def send(self, rows: list[dict[str, Any]], answers: bool, seed: dict[str, str]) -> None:
        chunk = self.sent
        self.sent += 1
        texts = [str(row["data"]) for row in rows]
        self.pending[chunk] = rows
        self.worker.post(("decide", self.key, chunk, answers, texts, {} if self.seeded else dict(seed)))
        self.seeded = True

    def collect(self, fingerprints: dict[str, str], timeout: float = 300.0) -> None:
        """Wait for every chunk sent; each row gets its ``_decision``. Raises WorkerGone (the
        rows of the chunks still pending stay in `pending`, for the caller to decide), also
        when the worker gives no answer for `timeout` seconds."""
        while self.pending:
            try:
                if not self.worker.rx.poll(timeout):
                    raise WorkerGone(f"the decide worker gave no answer in {timeout:.0f} s")
                msg = self.worker.rx.recv()
            except WorkerGone:
                raise
            except Exception as exc:  # EOF: it died; a closed pipe: killed meanwhile
                raise WorkerGone(f"the decide worker died ({exc or type(exc).__name__})") from exc
            if msg[1] != self.key or msg[2] not in self.pending:
                continue  # an answer for an earlier run that stopped before collecting it
            if msg[0] == "failed":
                raise WorkerGone(f"the decide worker failed on a chunk:\n{msg[3]}")
            _, _, chunk, decided, seen = msg
            rows: list[dict[str, Any]] = self.pending.pop(chunk)
            for row, one in zip(rows, decided, strict=True):
                row["_decision"] = one
            fingerprints.update(seen)
            self.decided += len(rows)

    def left(self) -> list[dict[str, Any]]:
        """The rows of the chunks not collected, in the order they were sent (and forgets them)."""
        rows = [row for chunk in sorted(self.pending) for row in self.pending[chunk]]
        self.pending.clear()
        return rows
