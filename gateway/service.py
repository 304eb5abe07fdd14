"""`gateway run`: the long-running service.

APScheduler 3 runs three kinds of jobs on its own thread pool: one poller per source, the
processor (stored messages -> orders) and the dispatcher (outbox -> connectors). Each job
has `max_instances=1` and `coalesce=True`, so a slow run is never doubled up and a backlog
of missed runs becomes one run.

SIGTERM or SIGINT only sets a flag (work in a signal handler is unsafe); the main thread
then shuts the scheduler down, waiting for running jobs. Everything a job does is committed
state, so even a SIGKILL loses nothing: the next start resumes from the store.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from gateway.app import Gateway
from gateway.errors import StoreUnavailable

log = logging.getLogger(__name__)

__all__ = ["run_service"]


def _guard(name: str, fn: Callable[[], Any]) -> Callable[[], None]:
    def job() -> None:
        try:
            fn()
        except StoreUnavailable as exc:
            log.error("%s: %s; will try again", name, exc)
        except Exception:  # a job must never take the scheduler down; log and go on
            log.exception("%s failed; will try again on its next run", name)

    job.__name__ = name
    return job


def run_service(gw: Gateway, *, stop: threading.Event | None = None, max_seconds: float | None = None) -> None:
    stop = stop or threading.Event()
    gw.start_node()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    cfg = gw.config
    sched = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max(4, len(gw.sources) + 2))},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
        timezone="UTC",
    )
    for source in gw.sources:
        interval = gw.source_config(source.name).poll_seconds
        sched.add_job(
            _guard(f"poll:{source.name}", functools.partial(gw.poll_source, source)),
            "interval", seconds=interval, id=f"poll:{source.name}", next_run_time=_now(),
        )
    sched.add_job(_guard("process", gw.process), "interval", seconds=cfg.processing.poll_seconds, id="process", next_run_time=_now())
    if cfg.connectors:
        sched.add_job(_guard("dispatch", gw.dispatch), "interval", seconds=cfg.dispatch.poll_seconds, id="dispatch", next_run_time=_now())
    log.info(
        "gateway running: %d source(s), %d connector(s), store %s; stop with Ctrl-C or SIGTERM",
        len(gw.sources), len(cfg.connectors), gw.store.engine.url.render_as_string(hide_password=True),
    )
    sched.start()
    server = None
    if cfg.intake is not None and cfg.intake.stores:
        from gateway.intake.server import IntakeServer

        server = IntakeServer(gw, cfg.intake)
        server.start()
        log.info("HTTP intake listening on %s (OpenAPI docs at /docs)", server.url)
    started = time.monotonic()
    try:
        while not stop.wait(0.5):
            if max_seconds is not None and time.monotonic() - started >= max_seconds:
                break
    finally:
        log.info("stopping: waiting for running jobs to finish")
        if server is not None:
            server.stop()  # stop accepting first; requests in flight finish
        sched.shutdown(wait=True)
        gw.close()
        log.info("stopped")


def _now() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC)
