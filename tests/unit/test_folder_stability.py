"""Issue 14 throughput: a file's own mtime counts toward its stability window.

Drop-to-claim latency was set by `stable_seconds` counted from our first look; a file whose
last write is already that old is claimed at the next look that sees it unchanged. The mtime
never replaces a look (it must be unchanged on a second poll), and it is not trusted when it
is coarse (whole seconds), in the future, or from a folder whose clock was seen behind ours.
"""

from __future__ import annotations

import os
from pathlib import Path

from connectors.sources.folder.config import FolderSourceConfig
from connectors.sources.folder.source import FolderSource


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path, stable: float = 1.0) -> tuple[FolderSource, Clock, Clock]:
    mono, wall = Clock(1000.0), Clock(2_000_000_000.0)
    cfg = FolderSourceConfig(name="drop", path=tmp_path / "inbox", archive=tmp_path / "archive", failed=tmp_path / "failed", stable_seconds=stable)
    return FolderSource(cfg, clock=mono, wall=wall), mono, wall


def put(tmp_path: Path, name: str, mtime_ns: int) -> Path:
    f = tmp_path / "inbox" / name
    f.write_bytes(b"ISA " + name.encode())
    os.utime(f, ns=(mtime_ns, mtime_ns))
    return f


def advance(mono: Clock, wall: Clock, seconds: float) -> None:
    mono.now += seconds
    wall.now += seconds


def test_a_file_last_written_a_window_ago_is_claimed_at_the_next_unchanged_look(tmp_path):
    src, mono, wall = make(tmp_path)
    put(tmp_path, "old.edi", int((wall.now - 0.7) * 1e9) + 123)  # written 0.7 s before we first look
    assert list(src.poll()) == []  # never at first sight
    advance(mono, wall, 0.5)  # our polls saw it unchanged for 0.5 s only; its mtime says 1.2 s
    [msg] = list(src.poll())
    assert msg.display_name == "old.edi"


def test_a_recent_mtime_still_waits_the_window(tmp_path):
    src, mono, wall = make(tmp_path)
    put(tmp_path, "new.edi", int(wall.now * 1e9) + 123)
    assert list(src.poll()) == []
    advance(mono, wall, 0.5)
    assert list(src.poll()) == []  # written 0.5 s ago
    advance(mono, wall, 0.5)
    [msg] = list(src.poll())
    assert msg.display_name == "new.edi"


def test_coarse_or_future_mtimes_do_not_count(tmp_path):
    src, mono, wall = make(tmp_path)
    put(tmp_path, "coarse.edi", int(wall.now - 5) * 1_000_000_000)  # whole seconds: FAT, some SMB servers
    put(tmp_path, "future.edi", int((wall.now + 30) * 1e9) + 123)
    assert list(src.poll()) == []
    advance(mono, wall, 0.5)
    assert list(src.poll()) == []
    advance(mono, wall, 0.5)
    assert sorted(m.display_name for m in src.poll()) == ["coarse.edi", "future.edi"]  # the window counted by our looks


def test_a_folder_clock_seen_behind_ours_stops_counting_mtimes(tmp_path):
    """A file changed after our look with an mtime before it: the folder's clock lags."""
    src, mono, wall = make(tmp_path)
    f = put(tmp_path, "a.edi", int((wall.now - 0.2) * 1e9) + 123)
    assert list(src.poll()) == []
    advance(mono, wall, 0.5)
    f.write_bytes(b"ISA a, more")  # written now, but the folder says 3 s ago
    os.utime(f, ns=(int((wall.now - 3) * 1e9) + 123,) * 2)
    assert list(src.poll()) == []
    put(tmp_path, "b.edi", int((wall.now - 5) * 1e9) + 123)
    assert list(src.poll()) == []  # first sight of b
    advance(mono, wall, 0.5)
    assert list(src.poll()) == []  # would have been claimed on its mtime: no longer trusted
    advance(mono, wall, 0.5)
    assert sorted(m.display_name for m in src.poll()) == ["a.edi", "b.edi"]
