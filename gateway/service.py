"""`gateway run`: the long-running service.

APScheduler 3 runs two kinds of jobs on its own thread pool: one poller per source and the
processor (stored messages -> orders); each poll that stored something runs the processor
at once. Each job runs one at a time (`_RunNow` below) with `coalesce=True`, so a slow run
is never doubled up and a backlog of missed runs becomes one run. The dispatcher (outbox ->
connectors, and acknowledgements and confirmation e-mails -> their channels) is a thread
of its own (`Dispatcher.serve`): it sends while rows are due and then sleeps until the
processor queues something, the next retry is due or its poll.

A connector with `poll_status_minutes` gets a job of its own, ``status:<name>``: it asks the
connector's system what became of the orders it took and records shipments and invoices
(`gateway.tracking`); the documents that queues go out through the dispatcher.

An IMAP source with `idle: true` also gets a daemon thread, `imap-idle:<name>`, that waits
in IMAP IDLE on a connection of its own (`ImapSource.wait_for_mail`). When the server
reports new mail, the thread makes the scheduler run that source's poll job at once, and
when that poll stored something, the processor runs at once too; the poll every
`poll_seconds` goes on as a safety net. Those poll jobs and the processor are `_RunNow`
jobs: a request that comes while the job runs is not dropped (as APScheduler drops a
second instance) but makes the running job go round once more. When the server does not
offer IDLE, the thread logs it once and ends: the source is polled only. The threads end
with the service, within a few seconds (DONE and LOGOUT are sent).

SIGTERM or SIGINT only sets a flag (work in a signal handler is unsafe); the main thread
then tells the dispatcher to claim nothing more and shuts the scheduler down, waiting for
running jobs. Everything a job does is committed state, so even a SIGKILL loses nothing:
the next start resumes from the store.

SIGHUP (with `reload`, as `gateway run` passes it) also only sets a flag. The main thread
builds a complete new gateway from the configuration on disk first; if that fails, the
reason is logged and nothing changes. Otherwise the HTTP intake switches to the new gateway
without closing its port, the old jobs finish, and the new ones start on the same store.
Each node records what it loaded (`gateway.configstamp`), so `gateway reprocess` can tell
when a running node needs a reload first. Poll jobs never overlap themselves, and the
scheduler's "maximum number of running instances reached" is a debug line, not a warning.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from gateway.app import Gateway
from gateway.connector import Source
from gateway.errors import GatewayError, StoreUnavailable
from gateway.processing.alerts import PollHealth, alerter_for

if TYPE_CHECKING:
    from connectors.sources.imap.source import ImapSource
    from gateway.config import GatewayConfig
    from gateway.intake.server import IntakeServer

log = logging.getLogger(__name__)

__all__ = ["run_service", "schedule_stock_reports"]

_WATCH_RETRY_SECONDS = 30.0  # after an unexpected error in an IDLE watcher thread
_WATCH_JOIN_SECONDS = 10.0  # how long the stop waits for the IDLE watcher threads in all


def _push_stock(gw: Gateway, shop: Any) -> None:
    from gateway.shop_stock import push_stock

    push_stock(gw.store, shop)


def _poll_status(gw: Gateway, name: str) -> None:
    """One ``status:<connector>`` job: ask the connector what became of the orders it took
    (shipments, invoices) and record it (gateway.tracking)."""
    from gateway.tracking import poll_connector

    poll_connector(gw.store, gw.config, next(c for c in gw.config.connectors if c.name == name))


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


class _RunNow:
    """A scheduled job that another thread can run at once with `request()`.

    The job runs `fn` one at a time: a run the scheduler starts while another is going
    (the job is added with `max_instances=2`), or a request that comes meanwhile, makes the
    running one go round once more instead of being dropped.
    """

    def __init__(self, sched: BackgroundScheduler, job_id: str, fn: Callable[[], Any]) -> None:
        self.job_id = job_id
        self._sched = sched
        self._fn = fn
        self._lock = threading.Lock()
        self._running = False
        self._again = False

    def __call__(self) -> None:
        with self._lock:
            if self._running:
                self._again = True
                return
            self._running = True
        try:
            while True:
                with self._lock:
                    self._again = False
                self._fn()
                with self._lock:
                    if not self._again:
                        self._running = False
                        return
        except BaseException:
            with self._lock:
                self._running = False
            raise

    def request(self) -> None:
        """Run the job now (or once more right after the run in progress)."""
        with self._lock:
            if self._running:
                self._again = True
                return
        try:
            self._sched.modify_job(self.job_id, next_run_time=_now())
        except Exception:  # the scheduler is shutting down; the stop wins
            log.debug("%s: could not be run at once", self.job_id, exc_info=True)


def _idle_source(gw: Gateway, source: Source) -> ImapSource | None:
    """The source, when it is an IMAP source that watches its folder with IDLE."""
    sc = gw.source_config(source.name)
    if sc.type != "imap" or not sc.idle:
        return None
    from connectors.sources.imap.source import ImapSource

    return source if isinstance(source, ImapSource) else None


def _poll_then_process(gw: Gateway, source: Source, process: _RunNow, health: PollHealth | None = None) -> Callable[[], None]:
    def run() -> None:
        try:
            received, _duplicates = gw.poll_source(source)
        except Exception as exc:  # recorded for the poll_errors alert, then the guard logs it
            if health is not None:
                health.failed(source.name, exc)
            raise
        if health is not None:
            health.ok(source.name)
        if received:
            process.request()

    return run


def _watch(source: ImapSource, poll: _RunNow, stop: threading.Event) -> None:
    """Body of an IDLE watcher thread: new mail runs the source's poll job at once."""
    while not stop.is_set():
        try:
            outcome = source.wait_for_mail(stop)
        except Exception:  # the thread must not die: log, pause, go on
            log.exception(
                "imap source %s: the IDLE watcher failed; it tries again in %g s",
                source.name, _WATCH_RETRY_SECONDS,
            )
            stop.wait(_WATCH_RETRY_SECONDS)
            continue
        if outcome == "new_mail" and not stop.is_set():
            log.debug("imap source %s: new mail reported by IDLE; polling now", source.name)
            poll.request()
        elif outcome in ("unsupported", "disabled"):
            return


def _dispatch_loop(gw: Gateway, stop: threading.Event) -> None:
    """Body of the dispatch thread: `Dispatcher.serve` until the service stops."""
    while not stop.is_set():
        try:
            gw.dispatcher.serve(stop)
        except Exception:  # the thread must not die: log, pause, go on
            log.exception("dispatch failed; it starts again in %g s", gw.config.dispatch.poll_seconds)
            stop.wait(gw.config.dispatch.poll_seconds)


def run_service(
    gw: Gateway,
    *,
    stop: threading.Event | None = None,
    max_seconds: float | None = None,
    reload: Callable[[], Gateway] | None = None,
    loaded: Callable[[Gateway], None] | None = None,
) -> None:
    """Run the jobs until `stop` is set (SIGTERM, SIGINT) or `max_seconds` pass.

    With `reload`, SIGHUP makes a new gateway from the configuration as it is now. That
    happens before anything stops: a configuration that does not load, or a gateway that
    cannot be built from it, is logged and the running one goes on untouched. Otherwise the
    running jobs finish, the new gateway takes over (the store and its node lock are handed
    on) and `loaded` is told, as it is told at the start.
    """
    stop = stop or threading.Event()
    hup = threading.Event()
    gw.start_node()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        if reload is not None:
            signal.signal(signal.SIGHUP, lambda *_: hup.set())
    _quiet_scheduler_log()
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    server: IntakeServer | None = None  # kept across a reload when its address stays
    admin = _start_admin(gw)  # probes and metrics, with or without an intake (issue 12)
    try:
        while True:
            if loaded is not None:
                try:
                    loaded(gw)
                except Exception as exc:  # a record for other commands; never a reason to stop
                    log.warning("could not record the loaded configuration: %s", exc)
            nxt, server = _serve(gw, stop, hup, reload, deadline, server)
            if nxt is None:
                return
            gw = nxt
            if admin is not None:
                admin.serve(gw)  # the port stays; a changed admin: section needs a restart
    finally:
        if admin is not None:
            admin.stop()


def _start_admin(gw: Gateway) -> Any:
    """The admin port (gateway.intake.admin), always: as configured under `admin:`, else on
    127.0.0.1:9464. A configured port that cannot be bound stops the start; the default one,
    taken by another node on this host, is logged and left out (that node serves its probes)."""
    from gateway.config import AdminConfig
    from gateway.intake.admin import AdminServer

    configured = gw.config.admin
    admin = AdminServer(gw, configured or AdminConfig())
    try:
        admin.start()
    except GatewayError as exc:
        if configured is not None:
            raise
        log.warning("admin port not served: %s; give this node its own `admin: {port: N}` for /healthz, /readyz and /metrics", exc)
        return None
    log.info("admin port listening on %s (/healthz, /readyz, /metrics)", admin.url)
    return admin


def _reloaded(gw: Gateway, reload: Callable[[], Gateway]) -> Gateway | None:
    """A new gateway from the configuration on disk, or None (logged) when it cannot be."""
    try:
        new = reload()
    except Exception as exc:  # a bad file must never stop the service: log and keep the old one
        log.error("configuration reload refused, the running configuration stays: %s", _why(exc))
        return None
    try:
        if new.config.store.url != gw.config.store.url:
            raise GatewayError("store.url cannot change on a reload; restart the service for that")
        # Build what the jobs use now, so a problem shows before the old jobs stop.
        _ = new.pipeline, new.sources, new.dispatcher
    except Exception as exc:
        log.error("configuration reload refused, the running configuration stays: %s", _why(exc))
        new.close()
        return None
    return new


def _why(exc: BaseException) -> str:
    problems = getattr(exc, "problems", None)
    if isinstance(problems, list) and problems:
        return "; ".join(str(p) for p in problems)
    return str(exc) or type(exc).__name__


def _serve(
    gw: Gateway,
    stop: threading.Event,
    hup: threading.Event,
    reload: Callable[[], Gateway] | None,
    deadline: float | None,
    server: IntakeServer | None = None,
) -> tuple[Gateway | None, IntakeServer | None]:
    """Run `gw`'s jobs until stopped (None) or reloaded (the gateway that takes over).

    `server` is the HTTP intake a reload kept listening; it is returned when the gateway
    that takes over serves it too (same address and limits): webhooks are never refused
    during a reload.
    """
    cfg = gw.config
    sched = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max(4, len(gw.sources) + 2))},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
        timezone="UTC",
    )
    process = _RunNow(sched, "process", _guard("process", gw.process))
    watch_stop = threading.Event()  # set when the service stops, however it stops
    watchers: list[threading.Thread] = []
    health = PollHealth(gw.store)  # each source's polls, for the poll_errors alert and /metrics
    for source in gw.sources:
        interval = gw.source_config(source.name).poll_seconds
        job_id = f"poll:{source.name}"
        imap = _idle_source(gw, source)
        # Every poll that stored something runs the processor at once (a stored message
        # wakes processing); a poll that overruns its interval goes round again instead
        # of being skipped with a warning.
        poll = _RunNow(sched, job_id, _guard(job_id, _poll_then_process(gw, source, process, health)))
        sched.add_job(poll, "interval", seconds=interval, id=job_id, name=job_id, max_instances=2, next_run_time=_now())
        if imap is not None:
            watchers.append(
                threading.Thread(target=_watch, args=(imap, poll, watch_stop), name=f"imap-idle:{source.name}", daemon=True)
            )
    sched.add_job(process, "interval", seconds=cfg.processing.poll_seconds, id="process", name="process", max_instances=2, next_run_time=_now())
    if cfg.exceptions.teams:
        # Teams are told of newly waiting orders, and reminded past their limit (database clock).
        sched.add_job(_guard("notify", gw.notify), "interval", seconds=cfg.exceptions.check_seconds, id="notify", name="notify", next_run_time=_now())
    if cfg.exceptions.teams:
        # Alerts to the teams: dead letters, silent sources, failing polls; grouped and rate-limited.
        alerts = alerter_for(gw)
        sched.add_job(_guard("alerts", alerts.run), "interval", seconds=cfg.alerts.check_seconds, id="alerts", name="alerts", next_run_time=_now())
    if gw.ack_limits:  # documents a partner did not acknowledge in time: one warning each
        every = max(1.0, min(60.0, min(gw.ack_limits.values()) * 30))  # twice per the shortest limit, at most once a minute
        sched.add_job(_guard("overdue", gw.check_overdue), "interval", seconds=every, id="overdue", name="overdue", next_run_time=_now())
    for shop in cfg.stock_push:
        if shop.every_minutes > 0:  # our available stock to the shop: what changed since it last confirmed
            job_id = f"stock:{shop.name}"
            push = partial(_push_stock, gw, shop)
            sched.add_job(_guard(job_id, push), "interval", seconds=shop.every_minutes * 60, id=job_id, name=job_id, next_run_time=_now())
    schedule_stock_reports(sched, gw)
    for target in cfg.connectors:
        if target.poll_status_minutes:  # shipments and invoices coming back from the connector's system (gateway.tracking)
            job_id = f"status:{target.name}"
            asking = partial(_poll_status, gw, target.name)
            sched.add_job(_guard(job_id, asking), "interval", seconds=target.poll_status_minutes * 60, id=job_id, name=job_id, next_run_time=_now())
    if cfg.connectors or gw.sends_documents:
        # The dispatcher is a thread of its own, not a scheduled job: it keeps going while
        # rows are due and sleeps until something is queued (Gateway.process wakes it). It
        # sends orders, acknowledgements and confirmation e-mails alike.
        watchers.append(threading.Thread(target=_dispatch_loop, args=(gw, watch_stop), name="dispatch", daemon=True))
    log.info(
        "gateway running: %d source(s), %d connector(s), store %s; stop with Ctrl-C or SIGTERM",
        len(gw.sources), len(cfg.connectors), gw.store.engine.url.render_as_string(hide_password=True),
    )
    sched.start()
    for thread in watchers:
        thread.start()
    nxt: Gateway | None = None
    keep_server = False
    # Shop webhooks and web forms both need the HTTP server (issue 14 #5).
    if server is not None and not _serves_intake(cfg):
        server.stop()
        server = None
    if server is None and _serves_intake(cfg):
        from gateway.intake.server import IntakeServer

        assert cfg.intake is not None
        server = IntakeServer(gw, cfg.intake)
        try:
            server.start()
        except BaseException:
            sched.shutdown(wait=True)
            watch_stop.set()
            raise
        log.info("HTTP intake listening on %s (OpenAPI docs at /docs)", server.url)
    try:
        while not stop.wait(0.5):
            if deadline is not None and time.monotonic() >= deadline:
                break
            if hup.is_set() and reload is not None:
                hup.clear()
                log.info("SIGHUP: reloading the configuration")
                nxt = _reloaded(gw, reload)
                if nxt is not None:
                    intake = nxt.config.intake
                    if server is not None and intake is not None and _serves_intake(nxt.config) and server.can_take(intake):
                        server.replace(nxt, intake)  # new deliveries go to the new gateway at once
                        keep_server = True
                    break
    finally:
        log.info("%s: waiting for running jobs to finish", "reloading" if nxt is not None else "stopping")
        watch_stop.set()
        if "dispatcher" in gw.__dict__:
            gw.dispatcher.stopping.set()  # F21: claim nothing more; finish what is claimed
        if server is not None and not keep_server:
            server.stop()  # stop accepting first; requests in flight finish
            server = None
        sched.shutdown(wait=True)
        _join(watchers)
        if nxt is not None:
            nxt.adopt_node(gw)
        gw.close()
        log.info("configuration reloaded" if nxt is not None else "stopped")
    return nxt, server


def schedule_stock_reports(sched: Any, gw: Gateway) -> list[str]:
    """Add a job per partner with acks.stock_report: an 846 / INVRPT (gateway.fulfilment) every
    `every_minutes`, the first one interval after start, so that restarts send no extra
    reports. Returns the job ids."""
    from gateway.fulfilment import Fulfilment

    jobs = []
    for partner in gw.config.partners:
        report = partner.acks.stock_report
        if report is None:
            continue
        job = f"stock-report:{partner.name}"
        send = functools.partial(Fulfilment(gw.store, gw.config).send_stock_report, partner.name)
        sched.add_job(_guard(job, send), "interval", minutes=report.every_minutes, id=job, name=job)
        jobs.append(job)
    return jobs


def _serves_intake(cfg: GatewayConfig) -> bool:
    # Any intake: section starts the server, if only for /health and /metrics (issue 12).
    return cfg.intake is not None


class _SkippedRunFilter(logging.Filter):
    """Turns APScheduler's "maximum number of running instances reached" into a debug line.

    A job still running when its next run is due is normal under load (issue 14 #15): the
    run is coalesced, nothing is lost, and a warning every second floods the log.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG and "maximum number of running instances" in str(record.msg):
            log.debug("%s", record.getMessage())
            return False
        return True


def _quiet_scheduler_log() -> None:
    logger = logging.getLogger("apscheduler.scheduler")
    if not any(isinstance(f, _SkippedRunFilter) for f in logger.filters):
        logger.addFilter(_SkippedRunFilter())


def _join(watchers: list[threading.Thread]) -> None:
    deadline = time.monotonic() + _WATCH_JOIN_SECONDS
    for thread in watchers:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            log.warning("%s did not end in time; its connection is closed under it", thread.name)


def _now() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC)
