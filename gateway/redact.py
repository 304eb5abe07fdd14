"""Showing what we did not write: URLs without their passwords, text without control characters.

Every place that prints, logs or raises with a database or service URL passes it through
`redact_url` first; `scrub` removes the URL's password from text we did not write (a driver's
error message), in case the driver quotes its connection string. `printable` is text from a
message or an answer (a file name, a header, an error body) made safe for a log line, an
error or an HTTP answer: no line break or escape sequence of the sender's reaches them.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["printable", "redact_url", "scrub"]

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


def printable(text: str, limit: int | None = None, replacement: str = "?") -> str:
    """The first `limit` characters of `text` (all of it with None), each one that is not
    printable (control characters, line breaks, ...) replaced by `replacement`."""
    return "".join(c if c.isprintable() else replacement for c in text[:limit])
