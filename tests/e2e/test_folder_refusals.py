"""Files the drop folder refuses, seen from the CLI: an empty file and a hard link end up in
failed/ with a quarantined message that says why; nothing else is held up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from gateway.store import tables as t
from tests.e2e.helpers import run_cli
from tests.e2e.test_folder_volume import delivered, drop, outbox_config

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("stable", [0, 0.3])
def test_empty_file_and_hard_link_are_refused_and_moved_to_failed(tmp_path: Path, stable: float) -> None:
    """issue 14 #21 (reliability E7): a 0-byte file is refused as EMPTY once stable instead of
    staying in the inbox forever; issue 14 #22: a hard link is refused (HARDLINK), never read."""
    cfg = outbox_config(tmp_path, stable=stable)
    inbox = tmp_path / "inbox"
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"TOP SECRET, not an order")
    (inbox / "empty.edi").write_bytes(b"")
    os.link(secret, inbox / "linked.edi")
    good = drop(inbox, 1)
    res = run_cli("run", "--once", "--config", str(cfg))
    assert res.returncode == 0, res.stderr[-3000:]
    assert os.listdir(inbox) == []
    failed = sorted(name.rsplit("-", 1)[1] for name in os.listdir(tmp_path / "failed"))
    assert failed == ["empty.edi", "linked.edi"]
    assert delivered(tmp_path / "outbox") == [good]
    engine = create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(t.messages.c.display_name, t.messages.c.state, t.messages.c.reason)).all()
            bodies = conn.execute(select(t.message_bodies.c.body)).scalars().all()
    finally:
        engine.dispose()
    by_name = {r.display_name: r for r in rows}
    assert (by_name["empty.edi"].state, by_name["empty.edi"].reason) == ("quarantined", "EMPTY")
    assert (by_name["linked.edi"].state, by_name["linked.edi"].reason) == ("quarantined", "HARDLINK")
    assert all(b"TOP SECRET" not in bytes(b) for b in bodies)
    # A person sees both refusals and why.
    listed = run_cli("messages", "--state", "quarantined", "--config", str(cfg), env={"COLUMNS": "250"})
    assert listed.returncode == 0, listed.stderr
    assert "EMPTY: the file has no content" in listed.stdout and "HARDLINK: the file has 2 links" in listed.stdout
