"""Logging set-up: readable lines or one JSON object per line, without personal data.

`log_format: json` in the configuration (or ``GATEWAY_LOG_FORMAT=json``, which wins) writes
each event as one JSON object on one line, for a log shipper:

    {"time": "2026-12-05T11:48:26.123Z", "level": "INFO", "logger": "gateway.dispatch.worker",
     "message": "outbox 12 (order 6f1c...) sent to erp", "order_id": "6f1c...", "delivery_id": 12}

The ids `order_id`, `message_id` and `delivery_id` come from the log call's ``extra=`` or from
the context set with :func:`log_context` around the work on one message or order; an
exception adds `error` (its type and text) and, at DEBUG level only, `traceback`.

Personal data: the gateway logs ids, counts, reasons and connector names, never an order's
content. As a second line of defence every line at INFO and above passes through
:class:`Redact`: e-mail addresses keep only their domain (``***@acme.example``) and a URL's
password becomes ``***``. DEBUG lines are left as written (turn DEBUG on only to diagnose).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["IDS", "JsonFormatter", "Redact", "configure_logging", "log_context"]

#: The ids a log line carries when they are known.
IDS = ("order_id", "message_id", "delivery_id")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_CONTEXT: ContextVar[dict[str, Any] | None] = ContextVar("gateway_log_context", default=None)
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?=[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*):[^@/\s]+@", re.IGNORECASE)
_NOISY = {"pyx12": logging.CRITICAL, "apscheduler.executors": logging.WARNING, "apscheduler.scheduler": logging.WARNING, "alembic": logging.WARNING}


@contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """Every line logged inside (in this thread or task) carries these ids (None ones are left out)."""
    merged = {**(_CONTEXT.get() or {}), **{k: v for k, v in ids.items() if v is not None}}
    token = _CONTEXT.set(merged)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def redact(text: str) -> str:
    """`text` with e-mail addresses reduced to their domain and URL passwords masked."""
    return _URL_PASSWORD.sub(r"\g<scheme>:***@", _EMAIL.sub("***@", text))


class Redact(logging.Filter):
    """Masks personal data and passwords in lines at INFO and above, and adds the ids of
    :func:`log_context` to every record (a handler filter: every logger's lines pass)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_CONTEXT.get() or {}).items():
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        if record.levelno >= logging.INFO:
            message = record.getMessage()
            cleaned = redact(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ms), level, logger, message, the known ids, and
    the error of an exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in IDS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text = f"{type(exc).__name__}: {exc}"
            entry["error"] = redact(text) if record.levelno >= logging.INFO else text
            if logging.getLogger().isEnabledFor(logging.DEBUG):
                entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Set up the root logger as `logging.basicConfig` does: only when nothing else did (a
    host application's or a test runner's handlers stay as they are); a second call changes
    the level and format of the handler set up here.

    ``GATEWAY_LOG_FORMAT`` (text or json) overrides `log_format`."""
    chosen = os.environ.get("GATEWAY_LOG_FORMAT", "").strip().lower() or log_format
    if chosen not in ("text", "json"):
        chosen = "text"
    for name, noisy_level in _NOISY.items():
        logging.getLogger(name).setLevel(noisy_level)
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_gateway", False)), None)
    if handler is None and root.handlers:
        return
    if handler is None:
        handler = logging.StreamHandler()
        handler._gateway = True  # type: ignore[attr-defined]
        handler.addFilter(Redact())
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter() if chosen == "json" else logging.Formatter(TEXT_FORMAT))
    root.setLevel(level)
