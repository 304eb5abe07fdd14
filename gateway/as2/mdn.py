"""Asynchronous MDNs: posted to the partner's configured ``mdn_url`` by one background thread.

The message an MDN answers is committed before the MDN is queued, so an MDN that cannot be
delivered loses nothing of the order: the partner resends the message (the same Message-ID
is a duplicate here, answered with the MDN again). Delivery is retried with the gateway's
`RetryPolicy` (exponential back-off, full jitter); each outcome is an event of the stored
message (``as2_mdn_posted`` or ``as2_mdn_failed``). The queue lives in memory: MDNs
waiting when the process stops are not posted (the partner's resend covers them).

Only the configured ``mdn_url`` is ever posted to, never an address taken from a message.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests

from gateway.retry import RetryPolicy, parse_retry_after
from gateway.store import add_event

if TYPE_CHECKING:
    from gateway.store import Store

log = logging.getLogger(__name__)

__all__ = ["MdnPoster"]

_TIMEOUT = (5.0, 30.0)  # connect, read


@dataclass(slots=True)
class _Pending:
    url: str
    headers: dict[str, str]
    body: bytes
    stored: str | None
    attempts: int = 0
    first: dt.datetime | None = None


class MdnPoster:
    """Posts MDNs in the background; `post` returns at once. `close` stops the thread."""

    def __init__(self, store: Store, policy: RetryPolicy | None = None):
        self.store = store
        self.policy = policy or RetryPolicy(max_attempts=6, base_seconds=2.0, cap_seconds=120.0)
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="as2-mdn", daemon=True)
        self._thread.start()

    def post(self, url: str, headers: dict[str, str], body: bytes, stored: str | None) -> None:
        """Queue one MDN for `url` (the partner's configured address)."""
        clean = {k: v for k, v in headers.items() if k.lower() != "mime-version"}
        self._queue.put(_Pending(url, clean, body, stored))

    def close(self) -> None:
        self._stop.set()
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._queue.get()
            if item is None:
                return
            self._attempt(item)

    def _attempt(self, item: _Pending) -> None:
        now = dt.datetime.now(dt.UTC)
        item.first = item.first or now
        item.attempts += 1
        retry_after: float | None = None
        try:
            answer = requests.post(item.url, data=item.body, headers=item.headers, timeout=_TIMEOUT)
            if 200 <= answer.status_code < 300:
                self._record("as2_mdn_posted", item, f"MDN posted to {item.url} (HTTP {answer.status_code})")
                return
            problem = f"HTTP {answer.status_code}"
            retry_after = parse_retry_after(answer.headers.get("Retry-After"))
        except requests.RequestException as exc:
            problem = type(exc).__name__
        if self.policy.exhausted(item.attempts, item.first, now):
            log.error("as2: MDN to %s not delivered after %d attempts: %s", item.url, item.attempts, problem)
            self._record("as2_mdn_failed", item, f"MDN to {item.url} not delivered after {item.attempts} attempts: {problem}")
            return
        delay = self.policy.next_delay(item.attempts, retry_after)
        log.info("as2: MDN to %s: %s; attempt %d in %.1f s", item.url, problem, item.attempts + 1, delay)
        timer = threading.Timer(delay, self._queue.put, args=(item,))
        timer.daemon = True
        timer.start()

    def _record(self, kind: str, item: _Pending, detail: str) -> None:
        if item.stored is None:
            return
        try:
            with self.store.begin() as conn:
                add_event(conn, kind, detail, message_id=item.stored)
        except Exception as exc:  # a record of an MDN is not worth the thread
            log.error("as2: %s for %s not recorded: %s", kind, item.stored, exc)
