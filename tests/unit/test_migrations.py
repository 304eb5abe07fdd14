"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

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
