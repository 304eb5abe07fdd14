"""The web console's users and sessions (0013). Import this module wherever `tables.metadata`
must be complete (gateway.store does).

    console_users(id, name UNIQUE, role, password_hash, created_at, updated_at)
    console_sessions(token_hash PK, user_id, csrf_token, created_at, expires_at)

Passwords arrive here already hashed (gateway.console.auth, Argon2id); a session row holds the
sha256 of the cookie's random token, never the token itself, so a copy of the database
cannot be used to log in. Expired sessions are refused on read and deleted by `purge_sessions`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Column, ForeignKey, Integer, String, Table, delete, insert, select, update

from gateway.errors import GatewayError
from gateway.store.db import Store, as_utc, utcnow
from gateway.store.tables import TZ, metadata

__all__ = [
    "ROLES",
    "ConsoleSession",
    "ConsoleUser",
    "add_user",
    "console_sessions",
    "console_users",
    "delete_session",
    "find_user",
    "list_users",
    "open_session",
    "purge_sessions",
    "session_for",
    "update_password_hash",
]

ROLES = ("viewer", "operator", "admin")
"""Each role can do what the previous one can, and more (gateway.console.auth says what)."""

console_users = Table(
    "console_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(20), nullable=False),  # viewer | operator | admin
    Column("password_hash", String(200), nullable=False),  # Argon2id, PHC string format
    Column("created_at", TZ, nullable=False),
    Column("updated_at", TZ, nullable=False),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # sha256 of the cookie's token
    Column("user_id", Integer, ForeignKey("console_users.id"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),  # sent back by every form and htmx request
    Column("created_at", TZ, nullable=False),
    Column("expires_at", TZ, nullable=False),
)


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """A person who may log in to the console."""

    id: int
    name: str
    role: str
    password_hash: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A logged-in browser: who, with which role, and the CSRF token its forms carry."""

    user: str
    role: str
    csrf_token: str
    expires_at: dt.datetime


def add_user(store: Store, name: str, role: str, password_hash: str, *, replace: bool = False) -> bool:
    """Create the user; with `replace`, an existing one gets the new role and password (and
    its sessions end). Returns True when the user was created. GatewayError for an unknown role
    or an existing user without `replace`."""
    if role not in ROLES:
        raise GatewayError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    u = console_users
    now = utcnow()
    with store.begin() as conn:
        found = conn.execute(select(u.c.id).where(u.c.name == name)).scalar()
        if found is None:
            conn.execute(insert(u).values(name=name, role=role, password_hash=password_hash, created_at=now, updated_at=now))
            return True
        if not replace:
            raise GatewayError(f"user {name!r} exists; pass --replace to give it a new password or role")
        conn.execute(update(u).where(u.c.id == found).values(role=role, password_hash=password_hash, updated_at=now))
        conn.execute(delete(console_sessions).where(console_sessions.c.user_id == found))
        return False


def find_user(store: Store, name: str) -> ConsoleUser | None:
    """The user called `name`, or None."""
    u = console_users
    with store.engine.connect() as conn:
        r = conn.execute(select(u.c.id, u.c.name, u.c.role, u.c.password_hash, u.c.created_at).where(u.c.name == name)).one_or_none()
    if r is None:
        return None
    return ConsoleUser(r.id, r.name, r.role, r.password_hash, as_utc(r.created_at))  # type: ignore[arg-type]


def list_users(store: Store) -> list[ConsoleUser]:
    """Every user, by name."""
    u = console_users
    with store.engine.connect() as conn:
        rows = conn.execute(select(u.c.id, u.c.name, u.c.role, u.c.password_hash, u.c.created_at).order_by(u.c.name)).all()
    return [ConsoleUser(r.id, r.name, r.role, r.password_hash, as_utc(r.created_at)) for r in rows]  # type: ignore[arg-type]


def update_password_hash(store: Store, user_id: int, password_hash: str) -> None:
    """Store a re-hash (stronger parameters) of the same password."""
    with store.begin() as conn:
        conn.execute(update(console_users).where(console_users.c.id == user_id).values(password_hash=password_hash))


def open_session(store: Store, user_id: int, token_hash: str, csrf_token: str, lifetime: dt.timedelta) -> None:
    """Record a new session for `user_id` (its token and CSRF token chosen by the caller)."""
    now = utcnow()
    with store.begin() as conn:
        conn.execute(
            insert(console_sessions).values(
                token_hash=token_hash, user_id=user_id, csrf_token=csrf_token, created_at=now, expires_at=now + lifetime
            )
        )


def session_for(store: Store, token_hash: str) -> ConsoleSession | None:
    """The live session with this token hash, or None (unknown or expired)."""
    s, u = console_sessions, console_users
    with store.engine.connect() as conn:
        r = conn.execute(
            select(u.c.name, u.c.role, s.c.csrf_token, s.c.expires_at)
            .join(u, u.c.id == s.c.user_id)
            .where(s.c.token_hash == token_hash)
        ).one_or_none()
    if r is None:
        return None
    expires = as_utc(r.expires_at)
    if expires is None or expires <= utcnow():
        return None
    return ConsoleSession(r.name, r.role, r.csrf_token, expires)


def delete_session(store: Store, token_hash: str) -> None:
    """End a session (logging out)."""
    with store.begin() as conn:
        conn.execute(delete(console_sessions).where(console_sessions.c.token_hash == token_hash))


def purge_sessions(store: Store) -> int:
    """Delete expired sessions; returns how many."""
    with store.begin() as conn:
        return conn.execute(delete(console_sessions).where(console_sessions.c.expires_at <= utcnow())).rowcount
