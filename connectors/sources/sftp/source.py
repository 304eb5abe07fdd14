"""SFTP source: order files are picked up from an inbox folder on an SFTP server.

Capabilities: poll + ack (remote move or delete). Config keys: see SftpSourceConfig.
It behaves like the drop-folder source, over the network:

- A file is claimed only when complete: its size and mtime stayed unchanged for
  `stable_seconds` across polls, or its done-marker (`FILE + done_suffix`) exists.
- Symlinks are never followed: entries are looked at with lstat; a symlink, a file that
  stayed empty for the stability window (`EMPTY`), or a file over `max_bytes` (checked
  before anything is downloaded), is refused and moved to the failed folder with its reason. SFTP v3 has no O_NOFOLLOW, so after opening a file its attributes
  are compared with the lstat taken just before and after: a file swapped meanwhile is left
  for the next poll (or refused, if it became a symlink).
- Downloads go into memory, reading at most `max_bytes + 1` bytes.
- Remote names are metadata only. A name that is not one plain path segment (contains '/',
  is '.' or '..', holds a NUL byte) is never touched; the archive name is
  `<timestamp>-<message id[:8]>-<safe name>`, built from characters we choose.
- `ack` runs once, only after the message is committed (gateway.ingest owns both rules):
  the file moves to `archive_path` (or is deleted when none is set); refused ones move to
  the failed folder. A crash before that leaves the file in the inbox; the next poll
  downloads it again and the store recognises the same bytes: nothing doubled. A file
  another poll or node took first is skipped.
- The connection is kept between polls. When it drops, the poll ends without acknowledging
  anything; the next poll reconnects. Failed connects in a row back off (0, 1, 3, 7, ...
  polls skipped, at most five minutes' worth). An ack finding the connection gone
  reconnects at once.

Error mapping
    server unreachable, connection dropped, timeout   logged; the poll yields nothing more
    host key unknown or changed                        HostKeyError (a ConfigError) from poll
    login refused                                      LoginError (a ConfigError) from poll
    connection lost during ack, reconnect failed       TransientError from ack (the file
                                                       stays and is offered again)
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import posixpath
import re
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType

import paramiko

from connectors.sources.sftp.channel import SftpServer, SftpSession, connection_lost
from connectors.sources.sftp.config import SftpSourceConfig
from gateway.connector import AckOutcome, RawMessage
from gateway.errors import ConfigError, TransientError

log = logging.getLogger(__name__)

__all__ = ["SftpSource", "plain_name"]

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SFTP_ERRORS = (OSError, EOFError, paramiko.SSHException, paramiko.SFTPError)
_MAX_BACKOFF_SECONDS = 300.0
_PREFETCH_FROM = 1 << 20  # files at least this large are fetched with pipelined requests


class _ConnectionLost(Exception):
    """Internal: the connection dropped in the middle of a poll."""


@dataclass(slots=True)
class _Seen:
    size: int
    mtime: int
    since: float


@dataclass(slots=True)
class _Claim:
    name: str  # entry name inside the inbox, as the server listed it (checked by plain_name)
    done_marker: str | None


def plain_name(name: str) -> bool:
    """Whether a listed name is one ordinary path segment we may join to the inbox path."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\x00" not in name


class SftpSource:
    """Polls one inbox folder on an SFTP server; see the module docstring for the behaviour.

    `clock` (monotonic seconds) times the stability window; `server` replaces the connection
    factory built from the configuration.
    """

    def __init__(
        self,
        config: SftpSourceConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        server: SftpServer | None = None,
    ):
        self.config = config
        self.name = config.name
        self.inbox = config.remote_path
        self.archive = config.archive_path
        self.failed = config.failed_folder
        self._server = server or SftpServer(config)
        self._clock = clock
        self._session: SftpSession | None = None
        self._ready_dirs: set[str] = set()  # folders known to exist on this session
        self._seen: dict[str, _Seen] = {}
        self._failures = 0  # connects failed in a row
        self._skip_polls = 0  # polls left to sit out before the next connect attempt

    # -- the Source protocol ------------------------------------------------------------------

    def poll(self) -> Iterator[RawMessage]:
        """Yield each complete file (or refusal) in the inbox; acknowledges nothing."""
        session = self._connected()
        if session is None:
            return
        try:
            entries = sorted(session.sftp.listdir_attr(self.inbox), key=lambda e: e.filename)
        except _SFTP_ERRORS as exc:
            if connection_lost(exc, session):
                self._lost("listing the inbox", exc)
            else:
                log.warning("sftp source %s: cannot list %s: %s", self.name, self.inbox, exc)
            return
        suffix = self.config.done_suffix
        now = self._clock()
        names = {e.filename for e in entries}
        present: set[str] = set()
        for entry in entries:
            name = entry.filename
            if not plain_name(name):
                log.warning(
                    "sftp source %s: the server listed %r, which is not a plain file name; left alone",
                    self.name,
                    name,
                )
                continue
            if name.startswith(".") or (suffix and name.endswith(suffix)):
                continue  # hidden/partial uploads and done-markers are not orders
            if not fnmatch.fnmatchcase(name, self.config.pattern):
                continue
            present.add(name)
            mode, size, mtime = entry.st_mode or 0, entry.st_size or 0, entry.st_mtime or 0
            if stat.S_ISLNK(mode):
                yield self._refusal(
                    name,
                    "SYMLINK: a symbolic link in the inbox is never followed; put the file itself there",
                )
                continue
            if not stat.S_ISREG(mode):
                continue  # sub-folders and the like: not ours
            if suffix:
                if name + suffix not in names:
                    continue
            elif not self._stable(name, size, mtime, now):
                continue
            if size == 0:
                yield self._refusal(name, "EMPTY: the file has no content (it stayed empty for the stability window); send it again with its content")
                continue
            if size > self.config.max_bytes:
                yield self._refusal(name, self._too_large(size))
                continue
            try:
                msg = self._download(name)
            except _ConnectionLost:
                return
            if msg is not None:
                yield msg
            if self._session is None:
                return  # an ack in between lost the connection and could not get it back
        for gone in set(self._seen) - present:
            del self._seen[gone]

    def ack(self, message: RawMessage, outcome: AckOutcome, message_id: str) -> None:
        """Move the committed file to the archive (or delete it), a refused one to failed."""
        claim = message.ack_token
        if not isinstance(claim, _Claim):
            raise TypeError(f"message {message.source_ref} did not come from this source")
        target_dir = self.failed if outcome == "rejected" else self.archive
        for attempt in (1, 2):
            session = self._session
            try:
                if session is None or not session.alive():
                    self._drop()
                    session = self._session = self._server.connect()
                self._settle(session, claim, message_id, target_dir)
                break
            except TransientError:
                self._drop()
                raise
            except _SFTP_ERRORS as exc:
                if not connection_lost(exc, session):
                    raise
                self._drop()
                if attempt == 2:
                    raise TransientError(
                        f"sftp source {self.name}: connection lost while acknowledging {claim.name}; "
                        "it stays in the inbox and is offered again"
                    ) from exc
                log.info(
                    "sftp source %s: connection lost before acknowledging %s; reconnecting",
                    self.name,
                    claim.name,
                )
        self._seen.pop(claim.name, None)

    def close(self) -> None:
        """Close the connection (the next poll opens a new one)."""
        self._drop()

    def __enter__(self) -> SftpSource:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- connection ---------------------------------------------------------------------------

    def _connected(self) -> SftpSession | None:
        if self._session is not None:
            if self._session.alive():
                return self._session
            log.info("sftp source %s: the server closed the connection; reconnecting", self.name)
            self._drop()
        if self._skip_polls > 0:
            self._skip_polls -= 1
            return None
        try:
            self._session = self._server.connect()
        except (TransientError, ConfigError) as exc:
            self._failures += 1
            self._skip_polls = min(
                2 ** min(self._failures - 1, 16) - 1,
                int(_MAX_BACKOFF_SECONDS / self.config.poll_seconds),
            )
            if isinstance(exc, ConfigError):
                raise
            log.warning(
                "sftp source %s: %s; next try in %d poll(s)", self.name, exc, self._skip_polls + 1
            )
            return None
        self._failures = 0
        return self._session

    def _lost(self, doing: str, exc: BaseException) -> None:
        log.warning(
            "sftp source %s: connection lost while %s (%s); nothing acknowledged, will reconnect",
            self.name,
            doing,
            exc,
        )
        self._drop()

    def _drop(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        self._ready_dirs.clear()

    # -- helpers ------------------------------------------------------------------------------

    def _stable(self, name: str, size: int, mtime: int, now: float) -> bool:
        seen = self._seen.get(name)
        if seen is None or seen.size != size or seen.mtime != mtime:
            self._seen[name] = _Seen(size, mtime, now)
            # With no stability window a file is taken at first sight, unless it is empty:
            # the writer may not have written yet. An empty one is judged on a later poll.
            return self.config.stable_seconds == 0 and size > 0
        return now - seen.since >= self.config.stable_seconds

    def _download(self, name: str) -> RawMessage | None:
        """The file's bytes, a refusal, or None to look again next poll. Raises _ConnectionLost."""
        session = self._session
        if session is None:
            raise _ConnectionLost
        sftp = session.sftp
        path = posixpath.join(self.inbox, name)
        try:
            before = sftp.lstat(path)
            if stat.S_ISLNK(before.st_mode or 0):
                return self._refusal(
                    name, "SYMLINK: a symbolic link in the inbox is never followed"
                )
            if not stat.S_ISREG(before.st_mode or 0):
                return None
            if (before.st_size or 0) > self.config.max_bytes:
                return self._refusal(name, self._too_large(before.st_size or 0))
            with sftp.open(path, "rb") as fh:
                opened = fh.stat()
                if not stat.S_ISREG(opened.st_mode or 0) or not _same(opened, before):
                    # Changed (or swapped) between lstat and open: look again next poll.
                    self._seen.pop(name, None)
                    return None
                if (opened.st_size or 0) >= _PREFETCH_FROM:
                    fh.prefetch(opened.st_size, max_concurrent_requests=64)
                body = _read_bounded(fh, self.config.max_bytes + 1)
            after = sftp.lstat(path)
        except _SFTP_ERRORS as exc:
            if connection_lost(exc, session):
                self._lost(f"downloading {name}", exc)
                raise _ConnectionLost from exc
            if not isinstance(exc, FileNotFoundError):  # vanished: someone else took it
                log.warning(
                    "sftp source %s: cannot read %s: %s; will try again", self.name, name, exc
                )
            self._seen.pop(name, None)
            return None
        if stat.S_ISLNK(after.st_mode or 0):
            return self._refusal(
                name, "SYMLINK: the file was replaced by a symbolic link while it was read"
            )
        if len(body) > self.config.max_bytes:
            return self._refusal(
                name, f"TOO_LARGE: the file grew over the limit of {self.config.max_bytes} bytes"
            )
        if not _same(after, before) or len(body) != before.st_size:
            # Still being written after all: wait until it is stable again.
            self._seen.pop(name, None)
            return None
        return RawMessage(
            body=body,
            source=self.name,
            source_ref=self._ref(name),
            display_name=name,
            ack_token=_Claim(
                name, name + self.config.done_suffix if self.config.done_suffix else None
            ),
        )

    def _settle(
        self, session: SftpSession, claim: _Claim, message_id: str, target_dir: str | None
    ) -> None:
        sftp = session.sftp
        src = posixpath.join(self.inbox, claim.name)
        if target_dir is None:
            try:
                sftp.remove(src)
            except FileNotFoundError:
                # Another poll (or node) that read the same file took it first.
                log.info("sftp source %s: %s was already taken by another poll", self.name, claim.name)
        else:
            self._ensure_dir(sftp, target_dir)
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
            safe = _SAFE.sub("_", claim.name)[-120:].lstrip(".") or "file"
            _move(
                sftp,
                src,
                posixpath.join(target_dir, f"{stamp}-{message_id[:8]}-{safe}"),
                log_name=f"{self.name}: {claim.name}",
            )
        if claim.done_marker:
            with contextlib.suppress(FileNotFoundError):
                sftp.remove(posixpath.join(self.inbox, claim.done_marker))

    def _ensure_dir(self, sftp: paramiko.SFTPClient, folder: str) -> None:
        if folder in self._ready_dirs:
            return
        try:
            sftp.lstat(folder)
        except FileNotFoundError:
            sftp.mkdir(folder)
            log.info("sftp source %s: created %s on the server", self.name, folder)
        self._ready_dirs.add(folder)

    def _refusal(self, name: str, reason: str) -> RawMessage:
        # The refusal itself is stored (with no content) so a person sees it, then the entry
        # moves to the failed folder. Its bytes are never downloaded.
        return RawMessage(
            body=f"refused {self.name}/{name} at {time.time_ns()}".encode(),
            source=self.name,
            source_ref=self._ref(name),
            display_name=name,
            ack_token=_Claim(name, None),
            rejected=reason,
        )

    def _too_large(self, size: int) -> str:
        return f"TOO_LARGE: {size} bytes is over the limit of {self.config.max_bytes}; raise max_bytes for this source if it is genuine"

    def _ref(self, name: str) -> str:
        path = posixpath.join(self.inbox, name)
        return f"sftp://{self.config.host}:{self.config.port}{path if path.startswith('/') else '/~/' + path}"


def _read_bounded(fh: paramiko.SFTPFile, limit: int) -> bytes:
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = fh.read(min(1 << 20, remaining))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _same(a: paramiko.SFTPAttributes, b: paramiko.SFTPAttributes) -> bool:
    return (a.st_size, a.st_mtime) == (b.st_size, b.st_mtime)


def _exists(sftp: paramiko.SFTPClient, path: str) -> bool:
    try:
        sftp.lstat(path)
    except FileNotFoundError:
        return False
    return True


def _move(sftp: paramiko.SFTPClient, src: str, target: str, *, log_name: str) -> None:
    """Rename `src` to `target` (or `target.1`, `.2`, ... if taken); never overwrites."""
    for i in range(10_000):
        candidate = target if i == 0 else f"{target}.{i}"
        if _exists(sftp, candidate):
            continue
        try:
            sftp.rename(src, candidate)  # a plain SFTP rename refuses an existing target
            return
        except OSError:
            if not _exists(sftp, src):
                log.info("sftp source %s was already taken by another poll", log_name)
                return
            if _exists(sftp, candidate):
                continue  # taken between our look and the rename
            raise
    raise FileExistsError(target)
