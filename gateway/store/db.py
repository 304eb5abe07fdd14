"""Opening the store: SQLite (WAL) by default, PostgreSQL by URL, schema kept by Alembic."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, insert, text
from sqlalchemy.exc import DBAPIError, OperationalError

from gateway.errors import StoreMissing, StoreUnavailable
from gateway.redact import redact_url, scrub
from gateway.store import tables as t

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
#: The PostgreSQL advisory lock that serialises migrations across nodes ("gateway" in ASCII).
MIGRATION_LOCK = 0x67617465776179
_CREATE_HINT = "`gateway run` or `gateway ingest` creates it"


class RawJSON(str):
    """JSON text already serialized (by pydantic, in Rust): stored as is in a JSON column."""

    __slots__ = ()


def _json_serializer(value: Any) -> str:
    if isinstance(value, RawJSON):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


class Store:
    """The engine plus the one way to open a write transaction.

    On SQLite every transaction starts with BEGIN IMMEDIATE: a deferred transaction that
    later upgrades to a writer gets SQLITE_BUSY without waiting for busy_timeout.
    """

    def __init__(self, url: str, *, migrate: bool = True, echo: bool = False, create: bool = True):
        """`create=False` opens only a store that exists (read-only commands): a missing SQLite
        file or a database without the gateway's tables raises StoreMissing, creating nothing."""
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            if create:
                _ensure_sqlite_dir(url)
            else:
                _require_sqlite_file(url)
            self.engine: Engine = create_engine(
                url,
                echo=echo,
                connect_args={"timeout": 30, "check_same_thread": False},
                json_serializer=_json_serializer,
            )
            _configure_sqlite(self.engine)
        else:
            self.engine = create_engine(
                url, echo=echo, pool_pre_ping=True, pool_size=5, max_overflow=5, json_serializer=_json_serializer
            )
        if not create and not self._has_schema():
            self.engine.dispose()
            raise StoreMissing(f"the store at {redact_url(url)} holds no gateway data yet; {_CREATE_HINT}")
        if migrate:
            self.migrate()

    def _has_schema(self) -> bool:
        from sqlalchemy import inspect

        try:
            with self.engine.connect() as conn:
                return bool(inspect(conn).has_table("alembic_version"))
        except (OperationalError, DBAPIError) as exc:
            reason = scrub(str(exc.orig), self.url)
            raise StoreUnavailable(f"cannot open the store at {redact_url(self.url)}: {reason}") from exc

    @property
    def supports_skip_locked(self) -> bool:
        return not self.is_sqlite

    def migrate(self) -> None:
        """Bring the schema to the latest revision (idempotent)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        try:
            with self.engine.begin() as conn:
                if not self.is_sqlite:
                    # Nodes started together on an empty database wait for each other here
                    # instead of racing to create the same tables; released at commit.
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except (OperationalError, DBAPIError) as exc:
            reason = scrub(str(exc.orig), self.url)
            raise StoreUnavailable(f"cannot open the store at {redact_url(self.url)}: {reason}") from exc

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction; raises StoreUnavailable when the database cannot be reached."""
        try:
            with self.engine.begin() as conn:
                wait = _LOCK_WAIT.get()
                if wait is not None and not self.is_sqlite:
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(wait * 1000)}")
                if _REDOABLE.get() and not self.is_sqlite:
                    conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                yield conn
        except OperationalError as exc:
            raise StoreUnavailable(f"the store is unavailable: {scrub(str(exc.orig), self.url)}") from exc

    @staticmethod
    @contextmanager
    def redoable() -> Iterator[None]:
        """Write transactions begun inside may be lost on power failure (never on a crash of
        the process): use it only for work whose loss means doing it again.

        Every commit after which we tell the outside world something (a source is
        acknowledged after its message is stored; a delivery, an acknowledgement or an e-mail
        is claimed before it is sent) stays fully durable. Processing a stored message is
        different: if its results are lost, the message is still `received` in the store and
        is simply processed again (orders are keyed by message and position, interchanges by
        sender and control number, both written in the same transactions as what they guard).

        SQLite (WAL): `synchronous=NORMAL` instead of FULL. A commit is then written to the
        WAL but not fsynced; it survives a killed process (the OS holds the pages) and may be
        lost only with the machine. The WAL is one file appended in order, so the next FULL
        commit's fsync makes every earlier frame durable too: before a delivery claimed on an
        order can be sent, the order itself is on disk. PostgreSQL: `synchronous_commit = off`
        for the transaction, with the same argument (WAL is flushed in order; a later
        synchronous commit flushes every earlier record).
        """
        token = _REDOABLE.set(True)
        try:
            yield
        finally:
            _REDOABLE.reset(token)

    @staticmethod
    @contextmanager
    def reading() -> Iterator[None]:
        """Transactions begun inside only read: on SQLite they start deferred (a WAL snapshot
        that never waits for a writer, and that a writer never waits for) instead of BEGIN
        IMMEDIATE. For the rules' reads of master data and order history, which may run while
        this process's own batch transaction holds the write lock (gateway.processing.decide_worker).
        A write inside fails at once (SQLITE_BUSY) instead of waiting."""
        token = _READING.set(True)
        try:
            yield
        finally:
            _READING.reset(token)

    @staticmethod
    @contextmanager
    def lock_wait(seconds: float) -> Iterator[None]:
        """Write transactions begun inside wait at most `seconds` for a lock another writer holds.

        For callers with a deadline of their own: a webhook must be answered (503 if need be)
        within the shop's few seconds, while the store normally waits up to 30 s. On SQLite it
        bounds BEGIN IMMEDIATE (busy_timeout), on PostgreSQL every lock (lock_timeout); either
        way the wait ends in StoreUnavailable.
        """
        token = _LOCK_WAIT.set(seconds)
        try:
            yield
        finally:
            _LOCK_WAIT.reset(token)

    def db_now(self, conn: Connection | None = None) -> dt.datetime:
        """The database's clock (aware UTC): leases, retry times and ages are measured on it,
        so a node whose own clock is off cannot rescue or dead-letter another node's work
        (reliability F19). Read inside `conn` when given (one small query), else on its own.
        """
        if self.is_sqlite:
            return _sqlite_now()
        if conn is None:
            with self.engine.connect() as own:
                return db_now(own)
        return db_now(conn)

    def dispose(self) -> None:
        self.engine.dispose()


def db_now(conn: Connection) -> dt.datetime:
    """The database's clock (aware UTC) read in `conn`: what `Store.db_now` reads, for a
    repository that is handed a transaction and no Store (a document queued by processing)."""
    if conn.dialect.name == "sqlite":
        return _sqlite_now()
    value = conn.exec_driver_sql("SELECT statement_timestamp()").scalar_one()
    return value.astimezone(dt.UTC)  # type: ignore[no-any-return]


def _sqlite_now() -> dt.datetime:
    # SQLite's clock is the host's (read through SQLite, not Python's, which tests may
    # shift); CURRENT_TIMESTAMP has whole seconds only. Reading it needs no transaction on
    # the store, which on SQLite would take the write lock.
    mem = getattr(_CLOCK, "conn", None)
    if mem is None:  # one per thread, kept: opening one per call cost ~0.3 ms per read
        mem = _CLOCK.conn = sqlite3.connect(":memory:")
    text = mem.execute("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')").fetchone()[0]
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def add_event(
    conn: Connection,
    kind: str,
    detail: str | None = None,
    *,
    message_id: str | None = None,
    order_id: str | None = None,
    outbox_id: int | None = None,
    at: dt.datetime | None = None,
) -> None:
    conn.execute(
        insert(t.events).values(
            at=at or utcnow(),
            kind=kind,
            detail=detail,
            message_id=message_id,
            order_id=order_id,
            outbox_id=outbox_id,
        )
    )


class Bulk:
    """One statement run for many rows straight through the driver's executemany, for the
    hot paths that read or write a row per order line (stock reservations): SQLAlchemy's per-row
    parameter building and type processing cost more than SQLite's own work there (measured:
    13 against 5 µs per conditional stock update, 18 against 8 per reservation insert; on
    PostgreSQL 22 against 17 and 23 against 19).

    `sql` is plain SQL with ``?`` placeholders and rows are tuples of values as the driver
    takes them: `processor` turns a Python value into that, through the column type's own bind
    processing (what SQLAlchemy would have done), so rows written either way read back alike.
    Nothing from a message is ever part of `sql`; it only travels as a bound value."""

    def __init__(self, conn: Connection, sql: str):
        self.conn = conn
        self.sql = sql if conn.dialect.paramstyle == "qmark" else sql.replace("?", "%s")

    def processor(self, column: Any) -> Any:
        """The column's bind processing as a function of one value (identity when none)."""
        process = column.type.dialect_impl(self.conn.dialect).bind_processor(self.conn.dialect)
        return process if process is not None else _same

    def run(self, rows: list[tuple[Any, ...]]) -> int:
        """Execute for every row; the number of rows the statement changed, in all."""
        if not rows:
            return 0
        return int(self.conn.exec_driver_sql(self.sql, rows).rowcount)

    def read(self, params: tuple[Any, ...]) -> Sequence[tuple[Any, ...]]:
        """Run once as a query; its rows as the driver returns them (no type processing),
        fetched at once (row by row costs a Python call per row)."""
        return self.conn.exec_driver_sql(self.sql, params).fetchall()


def _same(value: Any) -> Any:
    return value


def add_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert many events in one executemany (rows need at least `kind`)."""
    if not rows:
        return
    now = utcnow()
    full = [
        {"at": now, "detail": None, "message_id": None, "order_id": None, "outbox_id": None, **r}
        for r in rows
    ]
    conn.execute(insert(t.events), full)


_DEFAULT_BUSY_MS = 30_000
_CLOCK = threading.local()  # an in-memory SQLite per thread, to read SQLite's clock (Store.db_now)
# Set by Store.lock_wait for the transactions of one caller (a thread, or an async task).
_LOCK_WAIT: ContextVar[float | None] = ContextVar("gateway_store_lock_wait", default=None)
# Set by Store.redoable: the transactions of one caller whose loss on power failure only
# means doing the work again.
_REDOABLE: ContextVar[bool] = ContextVar("gateway_store_redoable", default=False)
# Set by Store.reading: transactions that only read (deferred on SQLite).
_READING: ContextVar[bool] = ContextVar("gateway_store_reading", default=False)


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:" and not path.startswith("file:"):
        Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def _require_sqlite_file(url: str) -> None:
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:" and not path.startswith("file:") and not Path(path).expanduser().is_file():
        raise StoreMissing(f"no store at {path}: nothing has been received yet ({_CREATE_HINT})")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit survives power loss, and we acknowledge sources right after it.
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={_DEFAULT_BUSY_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        wait_ms = _DEFAULT_BUSY_MS if (wait := _LOCK_WAIT.get()) is None else max(1, int(wait * 1000))
        if conn.info.get("busy_ms", _DEFAULT_BUSY_MS) != wait_ms:  # one PRAGMA only when it changes
            conn.exec_driver_sql(f"PRAGMA busy_timeout={wait_ms}")
            conn.info["busy_ms"] = wait_ms
        # Set per transaction, before BEGIN (see Store.redoable); FULL unless asked otherwise,
        # so a pooled connection never carries NORMAL into a commit that must be durable.
        sync = "NORMAL" if _REDOABLE.get() else "FULL"
        if conn.info.get("synchronous", "FULL") != sync:
            conn.exec_driver_sql(f"PRAGMA synchronous={sync}")
            conn.info["synchronous"] = sync
        conn.exec_driver_sql("BEGIN" if _READING.get() else "BEGIN IMMEDIATE")
