"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gateway.store import Store
from gateway.store.tables import metadata


def test_migrations_match_the_declared_tables(store_url):
    store = Store(store_url)  # runs every migration
    try:
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
        Store(store_url).dispose()  # a second start is a no-op
    finally:
        store.dispose()


def test_upgrade_from_the_first_revision_keeps_data(tmp_path):
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    from gateway.store.db import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "0001")
    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(text("INSERT INTO messages (id, received_at, updated_at, source, sha256, size, state, warnings, attempts, order_count, rejected_count) VALUES ('m1', '2026-01-01', '2026-01-01', 'x', 'abc', 1, 'parsed', '[]', 1, 1, 0)"))
        c.execute(text("INSERT INTO orders (id, message_id, doc_index, created_at, updated_at, channel, state, line_count) VALUES ('o1', 'm1', 0, '2026-01-01', '2026-01-01', 'x12', 'validated', 1)"))
    engine.dispose()
    store = Store(url)
    try:
        with store.engine.connect() as c:
            assert c.execute(text("SELECT version FROM orders WHERE id = 'o1'")).scalar() == 1
    finally:
        store.dispose()


def _alembic(url: str) -> Any:
    from alembic.config import Config

    from gateway.store.db import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


_ACKS_0006 = [
    # (kind, state, channel, body): one per state an acks row could be in at 0006
    ("997", "pending", "folder:/srv/out", "ISA*00*pending~"),
    ("855", "in_flight", "sftp:acme", "ISA*00*in flight~"),
    ("CONTRL", "sent", "folder:/srv/out", "UNB+UNOC:3+x'sent'"),
    ("MAILREPLY", "dead", "smtp", "From: desk@x.example\r\nSubject: Re: PO 1\r\n\r\nthanks, 500 € net\r\n"),
    ("TA1", "held", None, "ISA*00*held~"),
]


def test_0007_moves_every_ack_into_the_outbox_and_back(store_url: str) -> None:
    """issue 9: acknowledgements and confirmation e-mails become outbox rows (their state,
    channel, attempts, error and exact body kept) and the acks table goes; the order rows are
    untouched; downgrade restores the acks table with the same rows and drops the documents."""
    from alembic import command
    from sqlalchemy import create_engine, text

    cfg = _alembic(store_url)
    command.upgrade(cfg, "0006")
    engine = create_engine(store_url)
    at = "2026-01-01 00:00:00+00:00"
    with engine.begin() as c:
        c.execute(text("INSERT INTO messages (id, received_at, updated_at, source, sha256, size, state, warnings, attempts, order_count, rejected_count) VALUES ('m1', :at, :at, 'x', 'abc', 1, 'parsed', '[]', 1, 1, 0)"), {"at": at})
        c.execute(text("INSERT INTO orders (id, message_id, doc_index, created_at, updated_at, channel, state, line_count) VALUES ('o1', 'm1', 0, :at, :at, 'x12', 'dispatched', 1)"), {"at": at})
        c.execute(text("INSERT INTO outbox (order_id, connector, idempotency_key, state, attempts, created_at, updated_at, next_attempt_at, action, replays) VALUES ('o1', 'erp', 'k1', 'sent', 1, :at, :at, :at, 'create', 0)"), {"at": at})
        for i, (kind, state, channel, body) in enumerate(_ACKS_0006):
            c.execute(
                text("INSERT INTO acks (created_at, message_id, order_id, partner, kind, control_number, body, state, channel, error, attempts) VALUES (:at, 'm1', :oid, 'acme', :kind, :cn, :body, :state, :channel, :error, :attempts)"),
                {"at": at, "oid": "o1" if kind == "855" else None, "kind": kind, "cn": f"00000000{i}", "body": body, "state": state, "channel": channel, "error": f"error {i}", "attempts": i},
            )
    engine.dispose()

    command.upgrade(cfg, "0007")
    engine = create_engine(store_url)
    try:
        with engine.connect() as c:
            tables = set(sa.inspect(c).get_table_names())
            assert "acks" not in tables
            rows = c.execute(text("SELECT kind, state, connector, body, order_id, message_id, partner, control_number, attempts, last_error, idempotency_key FROM outbox ORDER BY id")).all()
        order, *docs = rows
        assert (order.kind, order.state, order.connector, order.order_id) == ("order", "sent", "erp", "o1")
        assert [(d.kind, d.state, d.connector) for d in docs] == [(k, s, ch or "-") for k, s, ch, _ in _ACKS_0006]
        assert [bytes(d.body) for d in docs] == [b.encode("utf-8") for *_, b in _ACKS_0006]
        assert [d.order_id for d in docs] == [None, "o1", None, None, None]
        assert {d.message_id for d in docs} == {"m1"} and {d.partner for d in docs} == {"acme"}
        assert [(d.attempts, d.last_error, d.control_number) for d in docs] == [(i, f"error {i}", f"00000000{i}") for i in range(5)]
        assert len({d.idempotency_key for d in rows}) == len(rows)
        # an order may now be answered by several documents on one channel, never delivered twice to a connector
        with engine.begin() as c:
            for n in (2, 3):
                c.execute(text("INSERT INTO outbox (order_id, connector, idempotency_key, state, attempts, created_at, updated_at, next_attempt_at, action, replays, kind) VALUES ('o1', 'sftp:acme', :k, 'pending', 0, :at, :at, :at, 'create', 0, '855')"), {"k": f"d{n}", "at": at})
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as c:
            c.execute(text("INSERT INTO outbox (order_id, connector, idempotency_key, state, attempts, created_at, updated_at, next_attempt_at, action, replays) VALUES ('o1', 'erp', 'k2', 'pending', 0, :at, :at, :at, 'create', 0)"), {"at": at})
        with engine.begin() as c:
            c.execute(text("DELETE FROM outbox WHERE idempotency_key IN ('d2', 'd3')"))
    finally:
        engine.dispose()

    command.downgrade(cfg, "0006")
    engine = create_engine(store_url)
    try:
        with engine.connect() as c:
            back = c.execute(text("SELECT kind, state, channel, body, order_id, error, attempts FROM acks ORDER BY id")).all()
            outbox = c.execute(text("SELECT order_id, connector FROM outbox")).all()
        assert [(a.kind, a.state, a.channel, a.body) for a in back] == list(_ACKS_0006)
        assert [(a.order_id, a.error, a.attempts) for a in back] == [("o1" if k == "855" else None, f"error {i}", i) for i, (k, *_) in enumerate(_ACKS_0006)]
        assert [tuple(r) for r in outbox] == [("o1", "erp")]
    finally:
        engine.dispose()
    command.upgrade(cfg, "head")  # and forward again
