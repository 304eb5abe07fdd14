from __future__ import annotations

import os
from pathlib import Path

from connectors.sources.folder.config import FolderSourceConfig
from connectors.sources.folder.source import FolderSource


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path, **kw) -> tuple[FolderSource, Clock]:
    clock = Clock()
    cfg = FolderSourceConfig(name="drop", path=tmp_path / "inbox", archive=tmp_path / "archive", failed=tmp_path / "failed", **kw)
    return FolderSource(cfg, clock=clock), clock


def test_file_is_claimed_only_once_stable(tmp_path):
    src, clock = make(tmp_path, stable_seconds=1)
    f = tmp_path / "inbox" / "po.edi"
    f.write_bytes(b"ISA first part")
    assert list(src.poll()) == []  # first sight
    clock.now += 2
    with open(f, "ab") as fh:  # still being written
        fh.write(b" more")
    assert list(src.poll()) == []
    clock.now += 0.5
    assert list(src.poll()) == []  # unchanged, but not for long enough
    clock.now += 1
    [msg] = list(src.poll())
    assert msg.body == b"ISA first part more"
    assert msg.display_name == "po.edi"


def test_empty_file_waits_then_is_refused_once_stable(tmp_path):
    """issue 14 #21, reliability E7: a 0-byte file is not left in the inbox forever."""
    src, clock = make(tmp_path, stable_seconds=2)
    (tmp_path / "inbox" / "empty.edi").write_bytes(b"")
    (tmp_path / "inbox" / "late.edi").write_bytes(b"")
    assert list(src.poll()) == []  # first sight: the writer may not have written yet
    clock.now += 1
    (tmp_path / "inbox" / "late.edi").write_bytes(b"ISA late")  # content arrives in time
    assert list(src.poll()) == []
    clock.now += 1.5
    [msg] = list(src.poll())
    assert msg.display_name == "empty.edi"
    assert msg.rejected and msg.rejected.startswith("EMPTY:")
    src.ack(msg, "rejected", "55555555")
    assert os.listdir(tmp_path / "inbox") == ["late.edi"]
    [failed] = os.listdir(tmp_path / "failed")
    assert failed.endswith("-55555555-empty.edi")
    clock.now += 2
    [late] = list(src.poll())
    assert late.body == b"ISA late" and late.rejected is None


def test_empty_file_without_a_window_is_judged_on_the_next_poll(tmp_path):
    src, clock = make(tmp_path, stable_seconds=0)
    (tmp_path / "inbox" / "empty.edi").write_bytes(b"")
    assert list(src.poll()) == []
    clock.now += 0.1
    [msg] = list(src.poll())
    assert msg.rejected and msg.rejected.startswith("EMPTY:")


def test_hard_link_is_refused_never_read(tmp_path):
    """issue 14 #22: a hard link to a file elsewhere is refused like a symlink."""
    src, clock = make(tmp_path, stable_seconds=0)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"TOP SECRET")
    os.link(secret, tmp_path / "inbox" / "link.edi")
    assert list(src.poll()) == []  # a link-then-unlink rename may be half-way: look again
    clock.now += 0.1
    [msg] = list(src.poll())
    assert msg.rejected and msg.rejected.startswith("HARDLINK:")
    assert b"TOP SECRET" not in msg.body
    src.ack(msg, "rejected", "66666666")
    assert os.listdir(tmp_path / "inbox") == []
    assert secret.read_bytes() == b"TOP SECRET" and os.stat(secret).st_nlink == 2
    assert len(os.listdir(tmp_path / "failed")) == 1


def test_ack_of_a_file_another_poll_moved_or_replaced_is_skipped(tmp_path):
    """reliability F17: two polls read the same file; the second ack finds it gone and skips.
    A new file dropped under the same name meanwhile is not moved unread."""
    src, _ = make(tmp_path, stable_seconds=0)
    other, _ = make(tmp_path, stable_seconds=0)
    (tmp_path / "inbox" / "a.edi").write_bytes(b"A")
    (tmp_path / "inbox" / "b.edi").write_bytes(b"B")
    mine, theirs = list(src.poll()), list(other.poll())
    other.ack(theirs[0], "stored", "11111111")
    src.ack(mine[0], "duplicate", "11111111")  # gone already: not an error
    other.ack(theirs[1], "stored", "22222222")
    (tmp_path / "inbox" / "b.edi").write_bytes(b"B2")  # the partner sends a new b.edi
    src.ack(mine[1], "duplicate", "22222222")
    assert os.listdir(tmp_path / "inbox") == ["b.edi"]
    assert (tmp_path / "inbox" / "b.edi").read_bytes() == b"B2"
    assert len(os.listdir(tmp_path / "archive")) == 2


def test_done_marker_claims_and_is_removed(tmp_path):
    src, _ = make(tmp_path, done_suffix=".done")
    (tmp_path / "inbox" / "po.edi").write_bytes(b"data")
    assert list(src.poll()) == []
    (tmp_path / "inbox" / "po.edi.done").write_bytes(b"")
    [msg] = list(src.poll())
    src.ack(msg, "stored", "abcdef12-0000")
    assert sorted(os.listdir(tmp_path / "inbox")) == []
    [archived] = os.listdir(tmp_path / "archive")
    assert archived.endswith("-abcdef12-po.edi")


def test_ack_moves_to_archive_or_failed(tmp_path):
    src, clock = make(tmp_path, stable_seconds=0)
    (tmp_path / "inbox" / "a.edi").write_bytes(b"A")
    (tmp_path / "inbox" / "b.edi").write_bytes(b"B")
    msgs = list(src.poll())
    assert [m.display_name for m in msgs] == ["a.edi", "b.edi"]
    src.ack(msgs[0], "stored", "11111111")
    src.ack(msgs[1], "rejected", "22222222")
    assert len(os.listdir(tmp_path / "archive")) == 1
    assert len(os.listdir(tmp_path / "failed")) == 1


def test_symlink_is_refused_never_followed(tmp_path):
    """reliability M7: a symlink in the drop folder is refused, never followed."""
    src, _ = make(tmp_path, stable_seconds=0)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"TOP SECRET")
    os.symlink(secret, tmp_path / "inbox" / "link.edi")
    [msg] = list(src.poll())
    assert msg.rejected and msg.rejected.startswith("SYMLINK")
    assert b"TOP SECRET" not in msg.body
    src.ack(msg, "rejected", "33333333")
    assert os.listdir(tmp_path / "inbox") == []
    assert secret.read_bytes() == b"TOP SECRET"


def test_oversized_file_refused_without_reading(tmp_path):
    src, _ = make(tmp_path, stable_seconds=0, max_bytes=10)
    (tmp_path / "inbox" / "big.edi").write_bytes(b"x" * 11)
    [msg] = list(src.poll())
    assert msg.rejected and msg.rejected.startswith("TOO_LARGE")
    assert b"x" * 11 not in msg.body


def test_hostile_file_name_never_becomes_a_path(tmp_path):
    """reliability M7: a hostile file name is metadata only, never a path."""
    src, _ = make(tmp_path, stable_seconds=0)
    name = "po..%2F..%2Fetc passwd;rm -rf $HOME\u202e.edi"
    (tmp_path / "inbox" / name).write_bytes(b"X")
    [msg] = list(src.poll())
    src.ack(msg, "stored", "44444444")
    [archived] = os.listdir(tmp_path / "archive")
    assert "/" not in archived and " " not in archived and "$" not in archived and ";" not in archived
    assert (tmp_path / "archive" / archived).read_bytes() == b"X"


def test_hidden_files_subfolders_and_pattern_are_left_alone(tmp_path):
    src, _ = make(tmp_path, stable_seconds=0, pattern="*.edi")
    inbox = tmp_path / "inbox"
    (inbox / ".partial.edi").write_bytes(b"x")
    (inbox / "notes.txt").write_bytes(b"x")
    (inbox / "sub").mkdir()
    (inbox / "po.edi").write_bytes(b"x")
    assert [m.display_name for m in src.poll()] == ["po.edi"]
