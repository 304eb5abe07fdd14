"""Named crash points for the kill -9 recovery tests.

`GATEWAY_CRASHPOINT=after_store` (or `after_store:3` for the third hit) makes the process
SIGKILL itself at that point, the way a power cut or an OOM kill would. The variable is read
once; unset (always, in production) every `hit()` is a dictionary lookup and nothing else.

Points: after_store (raw message committed, source not yet acknowledged), before_ack (in
gateway.ingest, just before the source's acknowledging action), after_orders (orders committed), after_http_before_commit
(a connector answered, the outbox not yet updated), decide_worker (a decide worker process,
before it decides a chunk: gateway.processing.decide_worker; the variable reaches it through
the environment it inherits).
"""

from __future__ import annotations

import os
import signal

__all__ = ["hit"]


def _parse(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    name, _, count = value.partition(":")
    return name, int(count) if count.isdigit() else 1


_TARGET = _parse(os.environ.get("GATEWAY_CRASHPOINT"))
_hits: dict[str, int] = {}


def hit(name: str) -> None:
    if _TARGET is None or _TARGET[0] != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= _TARGET[1]:
        os.kill(os.getpid(), signal.SIGKILL)
