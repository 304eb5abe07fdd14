"""The IMAP source against a real Dovecot (tests/support/dovecot.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from connectors.sources.imap.config import ImapSourceConfig
from connectors.sources.imap.source import ImapLoginError, ImapSource
from gateway.pipeline import Pipeline
from gateway.store import tables as t
from gateway.store.db import Store
from tests.support.dovecot import DovecotServer, dovecot_fixture

dovecot = dovecot_fixture()


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


def test_crash_before_ack_reoffers_the_same_bytes(
    dovecot: DovecotServer, user: str, store: Store
) -> None:
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
