"""One find-or-create at a time per key, inside one connector.

The dispatcher sends deliveries from a thread pool, so two orders of one new customer can
both search for it, both find nothing and both create it. Systems with a unique key (Tryton's
party code, ERPNext's customer name) refuse the second create and the connector re-reads;
Odoo's ``res.partner.ref`` and the ship-to addresses of every ERP have no such key, and the
customer would be created twice. Holding a lock per key around search-then-create closes
that window within one gateway node. Across nodes it stays open: point those nodes at
customers that exist (``create_customers: false``) where that matters.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager


class KeyedLocks:
    """``with locks(key):`` excludes other threads holding the same key, not other keys."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Hashable, tuple[threading.Lock, int]] = {}

    @contextmanager
    def __call__(self, key: Hashable) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key) or (threading.Lock(), 0)
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:  # forget a key nobody waits for, so the table does not grow forever
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)
