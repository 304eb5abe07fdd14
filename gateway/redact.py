"""Showing URLs without their passwords.

Every place that prints, logs or raises with a database or service URL passes it through
`redact_url` first; `scrub` removes the URL's password from text we did not write (a driver's
error message), in case the driver quotes its connection string.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["redact_url", "scrub"]

MASK = "***"


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced by ``***``; user, host and path stay."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<invalid URL>" if "@" in url else url
    if password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def scrub(text: str, url: str) -> str:
    """`text` without the password of `url` (raw or percent-decoded)."""
    password = _password(url)
    if not password:
        return text
    for form in {password, unquote(password)}:
        if form:
            text = text.replace(form, MASK)
    return text
