"""Alembic environment: runs on the connection the gateway hands it (see Store.migrate)."""

from alembic import context
from sqlalchemy import create_engine

from gateway.store.tables import metadata

config = context.config


def run() -> None:
    conn = config.attributes.get("connection")
    if conn is not None:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
    try:
        with engine.begin() as c:
            context.configure(connection=c, target_metadata=metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()  # the `alembic` command's own engine: no connection left to the collector


run()
