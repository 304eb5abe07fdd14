"""File target: writes each order as a JSON file into a folder (an ERP import folder).

Capabilities
    idempotency_key=True   the delivery's key is part of the file name
    idempotent=True        a repeat overwrites the same file with the same content; it never
                           makes a second file, so any error may be retried
    updates=True           a changed order is written as its own file (see File)
    cancels=True           so is a cancellation (the payload of the cancelling version)

Config keys (`FileTargetConfig`)
    name, path (folder, created if missing), payload (JMESPath file shaping the JSON;
    default: the canonical order), retry (RetryPolicy)

File
    ``<path>/<po_number>-<idempotency key>.json`` for a new order, and
    ``<path>/<action>-<po_number>-<idempotency key>.json`` for an update or a cancel (action
    ``update`` or ``cancel``; each version has its own key). The PO number is sanitized to
    ``[A-Za-z0-9._-]`` (other characters become ``_``, leading dots are dropped, at most 80
    characters), so order data can never choose a folder. The file is written to a hidden
    temporary file in the same folder, fsynced, then renamed over the final name (atomic on
    POSIX): an importer never sees half a file.

Error mapping
    disk full, I/O error, anything else from the OS   TransientError
    permission denied, read-only file system, the     PermanentError (a configuration
    folder is a file, name too long                   problem for a person)
    the payload mapping fails                         PermanentError
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
from pathlib import Path

import jmespath

from connectors.targets.file.config import FileTargetConfig
from gateway.connector import Capabilities, Delivery, Receipt
from gateway.errors import PermanentError, TransientError
from gateway.payload import load_payload

__all__ = ["FileConnector", "safe_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_CHANGES = ("update", "cancel")  # actions written as `<action>-<po>-<key>.json`
_PERMANENT_ERRNOS = frozenset(
    {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG}
)


def safe_name(value: object, max_chars: int = 80) -> str:
    """A file-name fragment from untrusted data: [A-Za-z0-9._-] only, no leading dot, ≤ max_chars."""
    text = _UNSAFE.sub("_", str(value or ""))[:max_chars].lstrip(".")
    return text or "order"


class FileConnector:
    """Writes one JSON file per delivery; see the module docstring for the contract."""

    capabilities = Capabilities(idempotency_key=True, idempotent=True, updates=True, cancels=True)

    def __init__(self, config: FileTargetConfig):
        self.config = config
        self.name = config.name
        self.folder = Path(config.path)
        self._payload = load_payload(config.payload)

    def __repr__(self) -> str:
        return f"FileConnector(name={self.name!r}, path={str(self.folder)!r})"

    def path_for(self, delivery: Delivery) -> Path:
        """Where `delivery` is written: always directly inside the configured folder."""
        po = safe_name(delivery.order.get("po_number"))
        key = safe_name(delivery.idempotency_key, 100)
        if delivery.action == "create":
            return self.folder / f"{po}-{key}.json"
        if delivery.action in _CHANGES:
            return self.folder / f"{delivery.action}-{po}-{key}.json"
        raise PermanentError(f"{self.name}: unknown delivery action {delivery.action!r} for order {delivery.order_id}")

    def send(self, delivery: Delivery) -> Receipt:
        target = self.path_for(delivery)  # refuses an unknown action before anything is written
        try:
            shaped = self._payload.render(delivery.order)
            data = json.dumps(shaped, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
        except (TypeError, ValueError, jmespath.exceptions.JMESPathError) as exc:
            raise PermanentError(f"{self.name}: the payload mapping {self._payload.source} failed: {exc}") from None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            _write_atomically(target, data)
        except OSError as exc:
            what = f"{self.name}: cannot write {target.name} in {self.folder}: {exc.strerror or exc}"
            if exc.errno in _PERMANENT_ERRNOS:
                raise PermanentError(what + " (check the folder and its permissions)") from None
            raise TransientError(what) from None
        return Receipt(status=None, reference=target.name, detail={"path": str(target), "bytes": len(data)})

    def close(self) -> None:
        """Nothing to release."""


def _write_atomically(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
