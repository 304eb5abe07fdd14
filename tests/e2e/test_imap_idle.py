"""End to end: `run_service` with an IMAP source on a real Dovecot picks a new mail up through
IMAP IDLE at once, though its poll runs only once an hour.

The service runs in a thread of the test (as `gateway run` runs it, minus the signal
handlers); the IMAP source polls every 3600 s and processing looks every 3600 s, so a mail
stored and moved within the test's deadline can only have been fetched because the IDLE
watcher woke the poll job.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.app import Gateway
from gateway.config import load_config
from gateway.service import _RunNow, run_service
from gateway.store import tables as t
from tests.support.dovecot import DovecotServer, dovecot_fixture

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ORDER_MAIL = ROOT / "tests" / "fixtures" / "email" / "x12_850_attachment.eml"
DEADLINE = 30.0  # generous for a loaded CI machine; nothing waits this long when it works

dovecot = dovecot_fixture()


def wait_until(check: Callable[[], object], what: str, limit: float = DEADLINE) -> None:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {limit} s")
        time.sleep(0.05)


def crlf(raw: bytes) -> bytes:
    """IMAP carries CRLF lines; the server would hand LF-only fixtures back changed."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def gateway_for(tmp_path: Path, dovecot: DovecotServer, user: str, *, idle: bool = True) -> Gateway:
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(
        f"""\
store:
  url: sqlite:///{tmp_path / "gateway.db"}
sources:
  - type: imap
    name: mailbox
    host: {dovecot.host}
    port: {dovecot.ssl_port}
    tls: ssl
    ca_file: {dovecot.ca_file}
    username: {user}
    password: ${{env:GATEWAY_TEST_IMAP_PASSWORD}}
    timeout: 5
    poll_seconds: 3600
    idle: {str(idle).lower()}
    idle_seconds: 600
processing:
  poll_seconds: 3600
"""
    )
    return Gateway(load_config(cfg, env={"GATEWAY_TEST_IMAP_PASSWORD": dovecot.password}))


class Service:
    """`run_service` on a thread, with the polls it ran counted."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.polls = 0
        self.stop = threading.Event()
        poll_source = gw.poll_source

        def counted(source: Any) -> tuple[int, int]:
            try:
                return poll_source(source)
            finally:
                self.polls += 1

        gw.poll_source = counted  # type: ignore[method-assign]
        gw.sources  # built here, not raced for by the service's threads  # noqa: B018
        self.thread = threading.Thread(
            target=run_service, args=(gw,), kwargs={"stop": self.stop}, daemon=True
        )

    def stop_and_join(self) -> None:
        self.stop.set()
        self.thread.join(DEADLINE)
        assert not self.thread.is_alive(), "the service did not stop"


@pytest.fixture
def service_factory() -> Iterator[Callable[[Gateway], Service]]:
    started: list[Service] = []

    def start(gw: Gateway) -> Service:
        s = Service(gw)
        started.append(s)
        s.thread.start()
        return s

    yield start
    for s in started:
        s.stop.set()
        s.thread.join(DEADLINE)


def idle_threads() -> list[threading.Thread]:
    return [th for th in threading.enumerate() if th.name.startswith("imap-idle:")]


def folder_bodies(dovecot: DovecotServer, user: str, folder: str) -> list[bytes]:
    with dovecot.client(user) as c:
        if not c.folder_exists(folder):
            return []
        c.select_folder(folder, readonly=True)
        uids = c.search(["ALL"])
        fetched = c.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
        return [d[b"BODY[]"] for _, d in sorted(fetched.items())]


def count(gw: Gateway, table: Any) -> int:
    with gw.store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_idle_fetches_a_new_order_mail_at_once(
    tmp_path: Path, dovecot: DovecotServer, service_factory: Callable[[Gateway], Service]
) -> None:
    user = dovecot.new_user()
    gw = gateway_for(tmp_path, dovecot, user)
    source = gw.sources[0]
    service = service_factory(gw)
    # the poll at start has run (nothing there) and the watcher waits in IDLE
    wait_until(
        lambda: service.polls >= 1 and getattr(source, "idling", False), "the first poll and IDLE"
    )
    assert [th.name for th in idle_threads()] == ["imap-idle:mailbox"]
    body = crlf(ORDER_MAIL.read_bytes())
    dovecot.append(user, body)

    wait_until(lambda: folder_bodies(dovecot, user, "INBOX") == [], "the mail to leave INBOX")
    # the poll at start and the one IDLE asked for: the next regular poll is an hour away
    assert service.polls == 2
    # Its X12 attachment is a test interchange (ISA15 T) and no test connector is configured:
    # the order is held for a person, so the mail goes where people look (issue 14 #6).
    assert folder_bodies(dovecot, user, "Needs-review") == [body]
    with gw.store.engine.connect() as conn:
        sources = conn.execute(select(t.messages.c.source)).scalars().all()
    assert sources == ["mailbox"]
    # and processing ran at once too (its own look is an hour away)
    wait_until(lambda: count(gw, t.orders) == 1, "the order to be processed")

    service.stop_and_join()
    assert idle_threads() == []

    # every session ended, the watcher's too, with a LOGOUT rather than a dropped socket
    def ended() -> list[str]:
        return [line for line in dovecot.log_lines(user) if "Disconnected" in line]

    logins = sum(1 for line in dovecot.log_lines(user) if "Login:" in line)
    wait_until(lambda: len(ended()) == logins, "the server to log the end of every session")
    assert all("Logged out" in line for line in ended()), ended()


def test_idle_off_starts_no_watcher(
    tmp_path: Path,
    dovecot: DovecotServer,
    service_factory: Callable[[Gateway], Service],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from imapclient import IMAPClient

    calls: list[str] = []
    monkeypatch.setattr(IMAPClient, "idle", lambda self: calls.append("IDLE"))
    user = dovecot.new_user()
    dovecot.append(user, crlf(ORDER_MAIL.read_bytes()))
    gw = gateway_for(tmp_path, dovecot, user, idle=False)
    service = service_factory(gw)
    wait_until(lambda: service.polls >= 1, "the first poll")
    assert folder_bodies(dovecot, user, "INBOX") == []  # the start poll took it
    assert idle_threads() == []
    service.stop_and_join()
    assert calls == []


def test_run_now_request_during_a_run_makes_exactly_one_more_run() -> None:
    """The service's wake-up of a poll job: never lost, never run twice at once."""
    from apscheduler.schedulers.background import BackgroundScheduler

    sched = BackgroundScheduler(timezone="UTC")
    release = threading.Event()
    runs: list[int] = []
    busy = threading.Lock()

    def work() -> None:
        assert busy.acquire(blocking=False), "two runs at once"
        try:
            runs.append(len(runs) + 1)
            if len(runs) == 1:
                release.wait(DEADLINE)
        finally:
            busy.release()

    job = _RunNow(sched, "job", work)
    sched.add_job(job, "interval", seconds=3600, id="job", name="job", max_instances=2)
    sched.start()
    try:
        job.request()  # nothing running: it runs now, not in an hour
        wait_until(lambda: len(runs) == 1, "the requested run")
        job.request()  # while it runs: remembered, not run beside it
        job.request()
        beside = threading.Thread(target=job)  # the scheduler starting a second instance
        beside.start()
        beside.join(DEADLINE)
        assert not beside.is_alive() and runs == [1]
        release.set()
        wait_until(lambda: len(runs) == 2, "one more run")
        job.request()  # the job is idle again: a new request runs it
        wait_until(lambda: len(runs) == 3, "the next requested run")
    finally:
        release.set()
        sched.shutdown(wait=True)
    assert runs == [1, 2, 3]
