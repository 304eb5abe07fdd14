"""Which schema revision a store is at, and which the installed gateway expects
(`gateway db upgrade`, and `store.migrate: false`)."""

from __future__ import annotations

from sqlalchemy import inspect, text

from gateway.store.db import MIGRATIONS, Store

__all__ = ["current_revision", "head_revision"]


def head_revision() -> str:
    """The newest migration shipped with this gateway."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None, "the gateway ships migrations"
    return head


def current_revision(store: Store) -> str | None:
    """The store's schema revision; None for a database without the gateway's tables."""
    with store.engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if found is None else str(found)
