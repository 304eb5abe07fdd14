"""Who may use the console and what they may do: password hashes, sessions, roles, CSRF.

Passwords are hashed with Argon2id (argon2-cffi, its RFC 9106 low-memory profile): a
memory-hard hash, OWASP's first recommendation, from a library maintained by the PHC
reference implementation's Python binding authors. A hash made with older parameters is
replaced on the next successful login.

A session is a random 256-bit token in an HttpOnly, SameSite=Lax cookie scoped to /console;
the store keeps only its sha256, with an expiry and the session's CSRF token. Every POST
must carry that CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``, which the
pages' htmx sends), compared in constant time; the login form is protected the same way with
a token bound to a short-lived pre-login cookie (double submit).

Roles, each including the one before:

    viewer     reads every page
    operator   + approves, rejects, edits, releases and assigns orders; replays, discards and
               edits dead letters
    admin      + sees the users (users are added with `gateway users add`)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "ROLE_RANK",
    "hash_password",
    "may",
    "new_token",
    "same_token",
    "token_hash",
    "verify_password",
]

ROLE_RANK = {"viewer": 0, "operator": 1, "admin": 2}
_HASHER = PasswordHasher()
# Verified against when the user does not exist, so the answer takes as long either way.
_DUMMY = _HASHER.hash(secrets.token_urlsafe(16))
MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    """The Argon2id hash of `password` (PHC string: algorithm, parameters, salt, hash)."""
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> tuple[bool, str | None]:
    """(matches, a new hash to store when the parameters changed). `stored` None: no such user."""
    try:
        _HASHER.verify(stored or _DUMMY, password)
    except (VerificationError, InvalidHashError):
        return False, None
    if stored is None:
        return False, None
    return True, (_HASHER.hash(password) if _HASHER.check_needs_rehash(stored) else None)


def may(role: str, needed: str) -> bool:
    """Whether `role` includes `needed` (an unknown role includes nothing)."""
    return ROLE_RANK.get(role, -1) >= ROLE_RANK[needed]


def new_token() -> str:
    """A fresh random token for a cookie or a CSRF field."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the store keeps of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_token(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a submitted token with the expected one."""
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())
