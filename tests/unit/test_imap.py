"""The IMAP source against a real Dovecot (tests/support/dovecot.py)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from connectors.sources.imap.config import ImapSourceConfig
from connectors.sources.imap.source import IdleOutcome, ImapLoginError, ImapSource
from gateway.pipeline import Pipeline
from gateway.store import tables as t
from gateway.store.db import Store
from tests.support.dovecot import DovecotServer, dovecot_fixture, running_dovecot

dovecot = dovecot_fixture()

# Generous: the suite may run on a loaded CI machine. Nothing waits this long when it works.
DEADLINE = 30.0


def mail(n: int, subject: str | None = None) -> bytes:
    subject = subject or f"Order {n}"
    return (
        f"From: buyer@example.test\r\nTo: orders@example.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <order-{n}@example.test>\r\n\r\nPO {n}\r\n"
    ).encode()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'gateway.db'}")


@pytest.fixture
def user(dovecot: DovecotServer) -> str:
    return dovecot.new_user()


def config(dovecot: DovecotServer, user: str, **kw: Any) -> ImapSourceConfig:
    values = {"type": "imap", "name": "mailbox", **dovecot.login(user, tls="ssl"), **kw}
    return ImapSourceConfig(**values)


def folder_uids(dovecot: DovecotServer, user: str, folder: str) -> dict[int, set[bytes]]:
    with dovecot.client(user) as c:
        if not c.folder_exists(folder):
            return {}
        c.select_folder(folder, readonly=True)
        uids = c.search(["ALL"])
        return {u: set(d[b"FLAGS"]) for u, d in c.fetch(uids, ["FLAGS"]).items()} if uids else {}


def bodies(dovecot: DovecotServer, user: str, folder: str) -> list[bytes]:
    with dovecot.client(user) as c:
        if not c.folder_exists(folder):
            return []
        c.select_folder(folder, readonly=True)
        uids = c.search(["ALL"])
        return (
            [d[b"BODY[]"] for _, d in sorted(c.fetch(uids, ["BODY.PEEK[]"]).items())]
            if uids
            else []
        )


def receive_all(pipeline: Pipeline, source: ImapSource) -> list[tuple[bytes, bool]]:
    seen = []
    for raw in source.poll():
        result = pipeline.receive(raw)
        outcome = "duplicate" if result.duplicate else ("rejected" if raw.rejected else "stored")
        source.ack(raw, outcome, result.message_id)
        seen.append((raw.body, result.duplicate))
    return seen


def message_rows(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.messages)).scalar_one())


def test_new_mail_peeked_then_moved_and_never_offered_again(
    dovecot: DovecotServer, user: str, store: Store
) -> None:
    dovecot.append(user, mail(1))
    dovecot.append(user, mail(2, "=?utf-8?q?Bestellung_=C3=BC/1?="))
    with ImapSource(config(dovecot, user), store=store) as source:
        got = list(source.poll())
        assert [m.body for m in got] == [mail(1), mail(2, "=?utf-8?q?Bestellung_=C3=BC/1?=")]
        assert got[0].display_name == "Order 1"
        assert got[1].display_name == "Bestellung ü-1"
        assert got[0].source == "mailbox"
        assert got[0].source_ref.startswith(f"imap:{user}@127.0.0.1/INBOX;UIDVALIDITY=")
        assert got[0].source_ref.endswith(";UID=1")
        # BODY.PEEK[]: nothing became \Seen before the commit
        flags = folder_uids(dovecot, user, "INBOX")
        assert len(flags) == 2 and all(b"\\Seen" not in f for f in flags.values())
        for m in got:
            source.ack(m, "stored", "id")
        assert folder_uids(dovecot, user, "INBOX") == {}
        assert bodies(dovecot, user, "Processed") == [m.body for m in got]
        assert list(source.poll()) == []


def test_cursor_survives_a_new_source_instance(
    dovecot: DovecotServer, user: str, store: Store
) -> None:
    dovecot.append(user, mail(1))
    with ImapSource(config(dovecot, user), store=store) as source:
        (m,) = source.poll()
        source.ack(m, "stored", "id")
    # a copy of mail 1 is put back into INBOX with a *lower* UID than the cursor cannot happen;
    # instead check that the next instance starts after UID 1
    dovecot.append(user, mail(2))
    with ImapSource(config(dovecot, user), store=store) as source:
        got = list(source.poll())
        assert [x.body for x in got] == [mail(2)]
        assert got[0].source_ref.endswith(";UID=2")
    from gateway.store.cursors import get_cursor

    value = get_cursor(store, "mailbox")
    assert value is not None and value.endswith(":1")  # mail 2 was not acknowledged


def test_uidvalidity_change_rescans_without_a_second_row(
    dovecot: DovecotServer, user: str, store: Store
) -> None:
    """reliability F16: UIDVALIDITY changes (doveadm); the cursor resets and the rescan stores no duplicate."""
    pipeline = Pipeline(store, connectors=[])
    dovecot.append(user, mail(1))
    with ImapSource(config(dovecot, user), store=store) as source:
        assert receive_all(pipeline, source) == [(mail(1), False)]
    # the same mail is back in INBOX (restored from a backup, say) and the folder was recreated
    dovecot.append(user, mail(1))
    dovecot.set_uidvalidity(user, "INBOX", 4242)
    with ImapSource(config(dovecot, user), store=store) as source:
        assert receive_all(pipeline, source) == [(mail(1), True)]
    assert message_rows(store) == 1
    assert folder_uids(dovecot, user, "INBOX") == {}
    assert len(bodies(dovecot, user, "Processed")) == 2
    from gateway.store.cursors import get_cursor

    assert (get_cursor(store, "mailbox") or "").startswith("4242:")


def test_rescan_recognises_a_mail_by_message_id_though_its_bytes_changed(
    dovecot: DovecotServer, user: str, store: Store
) -> None:
    """reliability F16: after a UIDVALIDITY change the rescan dedupes by Message-ID too."""
    pipeline = Pipeline(store, connectors=[])
    dovecot.append(user, mail(1))
    with ImapSource(config(dovecot, user), store=store) as source:
        assert receive_all(pipeline, source) == [(mail(1), False)]
    # restored from a backup through another relay: one more Received header, same Message-ID
    relayed = b"Received: from backup.example by mx.example; Tue, 1 Dec 2026 10:00:00 +0000\r\n" + mail(1)
    dovecot.append(user, relayed)
    dovecot.set_uidvalidity(user, "INBOX", 4343)
    with ImapSource(config(dovecot, user), store=store) as source:
        assert receive_all(pipeline, source) == [(relayed, True)]
    assert message_rows(store) == 1
    assert folder_uids(dovecot, user, "INBOX") == {}


def test_crash_before_ack_reoffers_the_same_bytes(
    dovecot: DovecotServer, user: str, store: Store
) -> None:
    """reliability F3 (IMAP): committed, died before the MOVE; the next poll's copy is a no-op, then acked."""
    pipeline = Pipeline(store, connectors=[])
    dovecot.append(user, mail(7))
    crashed = ImapSource(config(dovecot, user), store=store)
    (m,) = crashed.poll()
    first = pipeline.receive(m)  # committed, then the process dies before ack
    assert not first.duplicate
    with ImapSource(config(dovecot, user), store=store) as source:
        again = list(source.poll())
        assert [x.body for x in again] == [mail(7)]
        result = pipeline.receive(again[0])
        assert result.duplicate and result.message_id == first.message_id
        source.ack(again[0], "duplicate", result.message_id)
    crashed.close()
    assert folder_uids(dovecot, user, "INBOX") == {}
    assert bodies(dovecot, user, "Processed") == [mail(7)]
    assert message_rows(store) == 1


def test_kick_mid_session_next_poll_reconnects(
    dovecot: DovecotServer, user: str, store: Store
) -> None:
    """reliability F15: `doveadm kick` between polls; the next poll and the ack reconnect."""
    dovecot.append(user, mail(1))
    with ImapSource(config(dovecot, user), store=store) as source:
        assert len(list(source.poll())) == 1  # not acknowledged
        dovecot.kick(user)
        got = list(source.poll())  # reconnects; the unacknowledged mail is offered again
        assert [x.body for x in got] == [mail(1)]
        dovecot.kick(user)
        source.ack(got[0], "stored", "id")  # the ack reconnects too
    assert folder_uids(dovecot, user, "INBOX") == {}
    assert bodies(dovecot, user, "Processed") == [mail(1)]


def test_kick_mid_fetch_ends_the_poll_with_nothing_acknowledged(
    dovecot: DovecotServer, user: str, store: Store
) -> None:
    """reliability F15: the connection dropped mid-FETCH: nothing marked or moved, the next poll resumes."""
    dovecot.append(user, mail(1))
    dovecot.append(user, mail(2))
    with ImapSource(config(dovecot, user), store=store) as source:
        polled = source.poll()
        first = next(polled)
        dovecot.kick(user)
        assert list(polled) == []  # the drop ends the poll
        assert len(folder_uids(dovecot, user, "INBOX")) == 2
        again = list(source.poll())
        assert [x.body for x in again] == [first.body, mail(2)]


def test_oversized_mail_is_refused_and_moved_to_failed(
    dovecot: DovecotServer, user: str, store: Store
) -> None:
    """reliability M1: RFC822.SIZE is checked before BODY.PEEK[]: an oversized mail is stored with
    its headers only as MAIL_TOO_LARGE and moved out of the inbox."""
    pipeline = Pipeline(store, connectors=[])
    big = mail(9) + b"x" * 5000 + b"\r\n"
    dovecot.append(user, big)
    with ImapSource(config(dovecot, user, max_message_bytes=1000), store=store) as source:
        (m,) = source.poll()
        assert m.rejected is not None and m.rejected.startswith("MAIL_TOO_LARGE: ")
        assert len(m.body) < 500
        result = pipeline.receive(m)
        source.ack(m, "rejected", result.message_id)
    assert folder_uids(dovecot, user, "INBOX") == {}
    assert bodies(dovecot, user, "Failed") == [big]
    with store.engine.connect() as conn:
        assert conn.execute(select(t.messages.c.reason)).scalar_one() == "MAIL_TOO_LARGE"


def test_wrong_password_is_a_clear_error_and_nothing_moves(
    dovecot: DovecotServer, user: str, store: Store
) -> None:
    dovecot.append(user, mail(1))
    source = ImapSource(config(dovecot, user, password="wrong"), store=store)
    with pytest.raises(ImapLoginError, match="refused the login"):
        list(source.poll())
    assert len(folder_uids(dovecot, user, "INBOX")) == 1


def test_plain_and_starttls_connections(dovecot: DovecotServer, user: str, store: Store) -> None:
    dovecot.append(user, mail(3))
    for tls in ("none", "starttls"):
        cfg = ImapSourceConfig(type="imap", name=f"m-{tls}", **dovecot.login(user, tls=tls))
        with ImapSource(cfg, store=store) as source:
            assert [x.body for x in source.poll()] == [mail(3)]


def test_config_needs_a_credential() -> None:
    with pytest.raises(ValueError, match="password or oauth2_token"):
        ImapSourceConfig(type="imap", name="m", host="h", username="u")


def test_config_folders_must_all_differ_review_included() -> None:
    base = {"type": "imap", "name": "m", "host": "h", "username": "u", "password": "p"}
    with pytest.raises(ValueError, match="review_folder"):
        ImapSourceConfig(**base, review_folder="Processed")
    with pytest.raises(ValueError, match="must all differ"):
        ImapSourceConfig(**base, review_folder="Failed")
    with pytest.raises(ValueError, match="must all differ"):
        ImapSourceConfig(**base, folder="Needs-review")


def test_config_idle_defaults_and_the_rfc_2177_limit() -> None:
    base = {"type": "imap", "name": "m", "host": "h", "username": "u", "password": "p"}
    cfg = ImapSourceConfig(**base)
    assert cfg.idle is True and cfg.idle_seconds == 300
    assert cfg.format == "email"
    assert ImapSourceConfig(**base, idle_seconds=1740).idle_seconds == 1740
    with pytest.raises(ValueError, match="1740"):
        ImapSourceConfig(**base, idle_seconds=1741)
    with pytest.raises(ValueError, match="greater than 0"):
        ImapSourceConfig(**base, idle_seconds=0)
    for name in ("idle", "idle_seconds", "review_folder"):
        assert ImapSourceConfig.model_fields[name].description


# -- acknowledging by outcome ---------------------------------------------------------------------


def test_each_outcome_moves_the_mail_to_its_folder(
    dovecot: DovecotServer, user: str, store: Store
) -> None:
    assert ImapSource.routes_by_outcome is True  # the gateway processes before it acks
    for n in (1, 2, 3, 4):
        dovecot.append(user, mail(n))
    with ImapSource(config(dovecot, user), store=store) as source:
        got = list(source.poll())
        for m, outcome in zip(got, ("stored", "review", "rejected", "duplicate"), strict=True):
            source.ack(m, outcome, "id")  # type: ignore[arg-type]
    assert folder_uids(dovecot, user, "INBOX") == {}
    assert bodies(dovecot, user, "Processed") == [mail(1), mail(4)]
    assert bodies(dovecot, user, "Needs-review") == [mail(2)]
    assert bodies(dovecot, user, "Failed") == [mail(3)]
    from gateway.store.cursors import get_cursor

    assert (get_cursor(store, "mailbox") or "").endswith(":4")


def test_review_folder_is_configurable(dovecot: DovecotServer, user: str, store: Store) -> None:
    dovecot.append(user, mail(5))
    with ImapSource(config(dovecot, user, review_folder="Orders/Check"), store=store) as source:
        (m,) = source.poll()
        source.ack(m, "review", "id")
    assert bodies(dovecot, user, "Orders/Check") == [mail(5)]
    assert folder_uids(dovecot, user, "INBOX") == {}


# -- IDLE -------------------------------------------------------------------------------------


def wait_until(check: Callable[[], object], what: str, limit: float = DEADLINE) -> None:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {limit} s")
        time.sleep(0.02)


class Watcher:
    """``wait_for_mail`` on a thread of its own, called again after each "timeout" as
    gateway.service does; ``outcome`` is the first other answer."""

    def __init__(self, source: ImapSource) -> None:
        self.source = source
        self.stop = threading.Event()
        self.timeouts = 0
        self.outcome: IdleOutcome | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while (outcome := self.source.wait_for_mail(self.stop)) == "timeout":
            self.timeouts += 1
        self.outcome = outcome

    def start(self) -> Watcher:
        self.thread.start()
        return self

    def result(self) -> IdleOutcome | None:
        self.thread.join(DEADLINE)
        assert not self.thread.is_alive(), "wait_for_mail did not return"
        return self.outcome


@pytest.fixture
def watchers() -> Iterator[list[Watcher]]:
    """Watchers made by a test are stopped and joined even when it fails."""
    made: list[Watcher] = []
    yield made
    for w in made:
        w.stop.set()
        w.thread.join(DEADLINE)


def watch(watchers: list[Watcher], source: ImapSource) -> Watcher:
    w = Watcher(source)
    watchers.append(w)
    return w.start()


def idle_source(dovecot: DovecotServer, user: str, store: Store, **kw: Any) -> ImapSource:
    return ImapSource(config(dovecot, user, **{"idle_seconds": 600, **kw}), store=store)


def test_idle_wakes_when_another_client_appends(
    dovecot: DovecotServer, user: str, store: Store, watchers: list[Watcher]
) -> None:
    with idle_source(dovecot, user, store) as source:
        w = watch(watchers, source)
        wait_until(lambda: source.idling, "the watcher to be in IDLE")
        dovecot.append(user, mail(1))
        assert w.result() == "new_mail"
        assert not source.idling
        # the poll connection was never used by the watcher: it polls as usual
        assert [m.body for m in source.poll()] == [mail(1)]


def test_idle_time_over_returns_without_mail(
    dovecot: DovecotServer, user: str, store: Store
) -> None:
    with idle_source(dovecot, user, store, idle_seconds=0.3) as source:
        assert source.wait_for_mail(threading.Event()) == "timeout"
        assert not source.idling


def test_idle_is_reissued_on_the_same_connection_and_still_wakes(
    dovecot: DovecotServer, user: str, store: Store, watchers: list[Watcher]
) -> None:
    with idle_source(dovecot, user, store, idle_seconds=0.3) as source:
        w = watch(watchers, source)
        wait_until(lambda: w.timeouts >= 2, "two IDLEs to time out")
        assert logins(dovecot, user) == 1  # each IDLE re-issued on the one watcher connection
        dovecot.append(user, mail(2))
        assert w.result() == "new_mail"


def test_idle_reconnects_after_a_kick_and_still_wakes(
    dovecot: DovecotServer,
    user: str,
    store: Store,
    watchers: list[Watcher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="connectors.sources.imap.source")

    def lost() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "IDLE connection was lost" in r.getMessage()]

    with idle_source(dovecot, user, store) as source:
        w = watch(watchers, source)
        wait_until(lambda: source.idling, "the watcher to be in IDLE")
        dovecot.kick(user)
        wait_until(lost, "the watcher to notice the kick")
        wait_until(lambda: source.idling, "the watcher to be back in IDLE")
        assert w.thread.is_alive() and w.outcome is None  # no error came out
        dovecot.append(user, mail(3))
        assert w.result() == "new_mail"
    (record,) = lost()  # one drop, one warning: no spinning on the dead socket
    assert record.levelno == logging.WARNING
    assert "reconnects in 1 s" in record.getMessage()
    assert any("watching INBOX with IDLE again" in r.getMessage() for r in caplog.records)


def test_idle_connection_ending_without_bye_is_noticed_and_reopened(
    dovecot: DovecotServer,
    user: str,
    store: Store,
    watchers: list[Watcher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="connectors.sources.imap.source")

    def lost() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "IDLE connection was lost" in r.getMessage()]

    with idle_source(dovecot, user, store) as source:
        w = watch(watchers, source)
        wait_until(lambda: source.idling, "the watcher to be in IDLE")
        assert dovecot.kill_sessions(user) == 1  # a bare EOF: imapclient reports nothing
        wait_until(lost, "the watcher to notice the end of the connection")
        wait_until(lambda: source.idling, "the watcher to be back in IDLE")
        dovecot.append(user, mail(8))
        assert w.result() == "new_mail"
    assert len(lost()) == 1


def test_mail_that_came_while_no_idle_was_open_is_reported_at_once(
    dovecot: DovecotServer, user: str, store: Store, watchers: list[Watcher]
) -> None:
    dovecot.append(user, mail(4))  # before the watcher ever connected
    with idle_source(dovecot, user, store) as source:
        assert watch(watchers, source).result() == "new_mail"


def logins(dovecot: DovecotServer, user: str) -> int:
    return sum(1 for line in dovecot.log_lines(user) if "Login:" in line)


def test_stop_event_ends_idle_with_done_and_logout(
    dovecot: DovecotServer, user: str, store: Store, watchers: list[Watcher]
) -> None:
    source = idle_source(dovecot, user, store)
    w = watch(watchers, source)
    wait_until(lambda: source.idling, "the watcher to be in IDLE")
    w.stop.set()
    assert w.result() == "stopped"
    assert not source.idling
    # the server saw a LOGOUT (a dropped socket is logged as "Connection closed")
    wait_until(
        lambda: any("Logged out" in line for line in dovecot.log_lines(user)),
        "the server to log the LOGOUT",
    )
    assert not any("Connection closed" in line for line in dovecot.log_lines(user))
    assert source.wait_for_mail(w.stop) == "stopped"  # a stopped watcher opens nothing
    source.close()


def test_idle_false_never_issues_idle(
    dovecot: DovecotServer, user: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imapclient import IMAPClient

    calls: list[str] = []
    monkeypatch.setattr(IMAPClient, "idle", lambda self: calls.append("IDLE"))
    dovecot.append(user, mail(6))
    before = logins(dovecot, user)
    with ImapSource(config(dovecot, user, idle=False), store=store) as source:
        assert source.wait_for_mail(threading.Event()) == "disabled"
        assert logins(dovecot, user) == before  # no watcher connection was opened
        assert [m.body for m in source.poll()] == [mail(6)]  # polling works as before
    assert calls == []


@pytest.fixture(scope="module")
def dovecot_without_idle() -> Iterator[DovecotServer]:
    with running_dovecot(
        imap_capability="IMAP4rev1 LITERAL+ SASL-IR ID ENABLE UIDPLUS MOVE NAMESPACE UNSELECT"
    ) as server:
        yield server


def test_server_without_idle_is_logged_once_and_polled(
    dovecot_without_idle: DovecotServer, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    server = dovecot_without_idle
    user = server.new_user()
    server.append(user, mail(7))
    caplog.set_level(logging.INFO, logger="connectors.sources.imap.source")
    with ImapSource(config(server, user), store=store) as source:
        stop = threading.Event()
        assert source.wait_for_mail(stop) == "unsupported"
        assert source.wait_for_mail(stop) == "unsupported"
        assert [m.body for m in source.poll()] == [mail(7)]
    said = [r for r in caplog.records if "does not offer IDLE" in r.getMessage()]
    assert len(said) == 1
    assert "polling every 60 s" in said[0].getMessage()


def test_message_id_is_the_dedupe_key_only_when_well_formed() -> None:
    from connectors.sources.imap.source import _dedupe_key

    assert _dedupe_key(b"<a.b/c@partner.example>") == "message-id:<a.b/c@partner.example>"
    assert _dedupe_key(b"  <x@y>  ") == "message-id:<x@y>"
    for bad in (None, "<x@y>", b"", b"x@y", b"<no-at-sign>", b"<a b@c>", b"<" + b"a" * 300 + b"@c>", b"<x@y>\r\nBcc: z"):
        assert _dedupe_key(bad) is None, bad
