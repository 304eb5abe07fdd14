"""Drop-folder source: partners (or an SFTP/SMB mount) put order files into an inbox folder.

Capabilities: poll + ack (move). Config keys: see FolderSourceConfig.

- A file is claimed only when complete: its size and mtime stayed unchanged for
  `stable_seconds` across polls, or its done-marker (`FILE + done_suffix`) exists. The
  file's own mtime counts toward that window (a file dropped 0.9 s ago is not made to wait
  a whole window from when we first saw it), but only as extra evidence on top of what the
  polls saw: the file must also have been seen unchanged on an earlier poll, its mtime must
  be at least `stable_seconds` old by our clock (not in the future), carry sub-second
  precision (a filesystem that rounds mtimes to seconds or two, like FAT or some SMB
  servers, could make a file look older than it is), and the folder's clock must never have
  been seen behind ours (a file seen changing got an mtime before our previous look:
  from then on this source counts only what the polls saw). Every write moves the mtime,
  so an mtime that old says no byte was written for the window, which is what the polls
  would have waited to see; a writer that keeps the file open and pauses longer than
  the window is claimed early by either rule, which is why a writer that pauses should
  use a done-marker or a hidden name.
- Symlinks are never followed (opened with O_NOFOLLOW) and hard links never read: a symlink
  (`SYMLINK`), a file with more than one link (`HARDLINK`, it could be another file of this
  machine), a file over `max_bytes` (`TOO_LARGE`) or one that stayed empty for the stability
  window (`EMPTY`) is refused and moved to `failed/` with its reason. Anything that is not a
  regular file (a sub-folder, a fifo) is left alone.
- File names are metadata only: the archive name is `<timestamp>-<message id>-<safe name>`,
  built from characters we choose, inside folders we configured.
- `ack` runs once, only after the message is committed (gateway.ingest owns that rule and the
  single-shot guard): stored files move to `archive/`, refused ones to `failed/`. A crash
  before the move leaves the file in the inbox; the next poll reads it again and the store
  recognises the same bytes: nothing doubled.
- Several polls of one folder may overlap (two nodes, or two polls in flight): both may read
  and store a file (the store answers "duplicate" to the second); the first move wins, and a
  file already moved is simply skipped. A file replaced under the same name since it was read
  (another inode) is left in the inbox for the next poll (reliability F17).
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import logging
import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from connectors.sources.folder.config import FolderSourceConfig
from gateway.connector import AckOutcome, RawMessage

log = logging.getLogger(__name__)

__all__ = ["FolderSource"]

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(slots=True)
class _Seen:
    size: int
    mtime_ns: int
    nlink: int
    since: float
    wall: float  # our wall clock at that look, to compare with the folder's mtimes


@dataclass(slots=True)
class _Claim:
    name: str  # entry name inside the inbox (as listed by the OS, not a path we built from data)
    done_marker: str | None
    identity: tuple[int, int]  # (st_dev, st_ino) of the entry that was read or refused


class FolderSource:
    # Files found in one poll are committed up to this many per transaction, each moved only
    # after that commit (gateway.ingest): one fsync for a burst of small files.
    commit_group = 32

    def __init__(
        self, config: FolderSourceConfig, clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time
    ):
        self.config = config
        self.name = config.name
        self.inbox = Path(config.path)
        self.archive = Path(config.archive or self.inbox.parent / "archive")
        self.failed = Path(config.failed or self.inbox.parent / "failed")
        for d in (self.inbox, self.archive, self.failed):
            d.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._wall = wall
        self._seen: dict[str, _Seen] = {}
        self._trust_mtime = True  # False once the folder's clock was seen behind ours

    def poll(self) -> Iterator[RawMessage]:
        suffix = self.config.done_suffix
        now = self._clock()
        present: set[str] = set()
        try:
            entries = sorted(os.scandir(self.inbox), key=lambda e: e.name)
        except FileNotFoundError:
            self.inbox.mkdir(parents=True, exist_ok=True)
            return
        names = {e.name for e in entries}
        for entry in entries:
            name = entry.name
            if name.startswith(".") or (suffix and name.endswith(suffix)):
                continue  # hidden/partial uploads and done-markers are not orders
            if not fnmatch.fnmatch(name, self.config.pattern):
                continue
            present.add(name)
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(st.st_mode):
                yield self._refusal(name, "SYMLINK: a symbolic link in the inbox is never followed; put the file itself there", st)
                continue
            if not stat.S_ISREG(st.st_mode):
                continue  # sub-folders, fifos: not ours
            if suffix:
                if name + suffix not in names:
                    continue
            elif not self._stable(name, st, now):
                continue
            if st.st_nlink > 1:
                yield self._refusal(name, _hardlink(st.st_nlink), st)
                continue
            if st.st_size == 0:
                yield self._refusal(name, "EMPTY: the file has no content (it stayed empty for the stability window); send it again with its content", st)
                continue
            if st.st_size > self.config.max_bytes:
                yield self._refusal(
                    name, f"TOO_LARGE: {st.st_size} bytes is over the limit of {self.config.max_bytes}; raise max_bytes for this source if it is genuine", st
                )
                continue
            msg = self._read(name, suffix)
            if msg is not None:
                yield msg
        for gone in set(self._seen) - present:
            self._seen.pop(gone, None)  # another poll in flight may have dropped it already

    def ack(self, message: RawMessage, outcome: AckOutcome, message_id: str) -> None:
        """Move the committed file to `archive/` (a refused one to `failed/`)."""
        claim: _Claim = message.ack_token
        target_dir = self.failed if outcome == "rejected" else self.archive
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        safe = _SAFE.sub("_", claim.name)[-120:].lstrip(".") or "file"
        target = target_dir / f"{stamp}-{message_id[:8]}-{safe}"
        src = self.inbox / claim.name
        try:
            st = os.lstat(src)
            if (st.st_dev, st.st_ino) != claim.identity:
                log.info("folder %s: %s was replaced since it was read; the new file is read on a later poll", self.name, claim.name)
                self._seen.pop(claim.name, None)
                return
            os.replace(src, _unique(target))
        except FileNotFoundError:
            # Another poll (or node) that read the same file moved it first.
            log.info("folder %s: %s was already moved by another poll", self.name, claim.name)
        if claim.done_marker:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.inbox / claim.done_marker)
        self._seen.pop(claim.name, None)

    # -- helpers ------------------------------------------------------------------------------

    def _stable(self, name: str, st: os.stat_result, now: float) -> bool:
        seen = self._seen.get(name)
        wall = self._wall()
        if seen is None or (seen.size, seen.mtime_ns, seen.nlink) != (st.st_size, st.st_mtime_ns, st.st_nlink):
            if seen is not None and seen.mtime_ns != st.st_mtime_ns:
                self._check_clock(name, st, seen.wall)
            self._seen[name] = _Seen(st.st_size, st.st_mtime_ns, st.st_nlink, now, wall)
            # With no stability window a file is taken at first sight, unless it is empty or
            # hard-linked: a writer may not have written yet, or be half-way through a
            # link-then-unlink rename. Those are judged on a later poll.
            return self.config.stable_seconds == 0 and st.st_size > 0 and st.st_nlink == 1
        if now - seen.since >= self.config.stable_seconds:
            return True
        # Unchanged since an earlier poll: its own mtime may complete the window (see above).
        age = wall - st.st_mtime_ns / 1e9
        return self._trust_mtime and st.st_mtime_ns % 1_000_000_000 != 0 and age >= self.config.stable_seconds  # (future: < 0)

    def _check_clock(self, name: str, st: os.stat_result, previous_look: float) -> None:
        """A file changed since our previous look, yet its mtime is before that look: the
        folder's clock is behind ours (or its mtimes are coarse, or were set back on
        purpose). Its mtimes no longer count toward stability for this source."""
        if self._trust_mtime and st.st_mtime_ns / 1e9 < previous_look - 0.05:
            self._trust_mtime = False
            log.info(
                "folder %s: %s changed after our previous look but its mtime is %.2f s before it; "
                "the folder's clock is taken as unreliable and files wait the full stable_seconds",
                self.name, name, previous_look - st.st_mtime_ns / 1e9,
            )

    def _read(self, name: str, suffix: str | None) -> RawMessage | None:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(self.inbox / name, flags)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                try:
                    link = os.lstat(self.inbox / name)
                except FileNotFoundError:
                    return None
                return self._refusal(name, "SYMLINK: a symbolic link in the inbox is never followed", link)
            log.warning("folder %s: cannot open %s: %s", self.name, name, exc.strerror)
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return None
            if st.st_nlink > 1:
                return self._refusal(name, _hardlink(st.st_nlink), st)
            if st.st_size > self.config.max_bytes:
                return self._refusal(name, f"TOO_LARGE: {st.st_size} bytes is over the limit of {self.config.max_bytes}", st)
            chunks = []
            remaining = self.config.max_bytes + 1
            while remaining > 0:
                chunk = os.read(fd, min(1 << 20, remaining))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
            body = b"".join(chunks)
        finally:
            os.close(fd)
        if len(body) > self.config.max_bytes:
            return self._refusal(name, f"TOO_LARGE: the file grew over the limit of {self.config.max_bytes} bytes", st)
        ref = f"{self.inbox}/{name}"
        return RawMessage(
            body=body,
            source=self.name,
            source_ref=ref,
            display_name=name,
            ack_token=_Claim(name, name + suffix if suffix else None, (st.st_dev, st.st_ino)),
        )

    def _refusal(self, name: str, reason: str, st: os.stat_result) -> RawMessage:
        # The refusal itself is stored (with no content) so a person sees it, then the entry
        # moves to failed/. Its bytes are never read.
        return RawMessage(
            body=f"refused {self.name}/{name} at {time.time_ns()}".encode(),
            source=self.name,
            source_ref=f"{self.inbox}/{name}",
            display_name=name,
            ack_token=_Claim(name, None, (st.st_dev, st.st_ino)),
            rejected=reason,
        )


def _hardlink(links: int) -> str:
    return (
        f"HARDLINK: the file has {links} links; a hard link in the inbox is never read "
        "(it could be any file of this machine); put a copy of the file itself there"
    )


def _unique(target: Path) -> Path:
    if not target.exists():
        return target
    for i in range(1, 10_000):
        candidate = target.with_name(f"{target.name}.{i}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(target)
