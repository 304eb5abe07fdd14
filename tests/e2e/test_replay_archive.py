"""`gateway replay-archive --since DATE` from the outside (issue 10, go-live safety).

The seeded rules mix (tests/support/rulesgen.py: 320+ X12 files and cross-channel cXML pairs)
goes through `gateway run --once`; read again with the same configuration nothing differs; after
a rules change and a mapping change exactly the orders they touch are listed, and the store is
unchanged by the replay.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.e2e.helpers import run_cli
from tests.support import rulesgen as gen

pytestmark = pytest.mark.slow


def replay(cfg: Path, *args: str) -> list[dict[str, object]]:
    r = run_cli("replay-archive", "--since", "2000-01-01", "--json", "-c", str(cfg), *args, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_replay_archive_shows_exactly_what_a_change_would_decide_differently(tmp_path: Path) -> None:
    cfg = gen.config(tmp_path, outbound=tmp_path / "acks")
    cases = gen.x12_mix(20)
    pairs = [gen.cross_channel_pair(i) for i in range(3)]
    for c in [*cases, *(c for p in pairs for c in p)]:
        (tmp_path / "inbox" / c.file).write_bytes(c.body)
    r = run_cli("run", "--once", "-c", str(cfg), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    db = tmp_path / "gateway.db"
    digest = hashlib.sha256(db.read_bytes()).hexdigest()

    same = replay(cfg)
    assert len(same) == len(cases) + 6
    assert [r for r in same if r["changed"]] == []
    assert {r["then"] for r in same} == {"accept", "hold", "reject"}

    # A stricter risk threshold and no more price check: the orders they concern change, only them.
    text = cfg.read_text()
    cfg.write_text(text.replace("hold_above: 50000", "hold_above: 500").replace("  - type: price\n    tolerance_percent: 1\n", ""))
    changed = [r for r in replay(cfg) if r["changed"]]
    assert changed, "a rules change must show"
    assert all(r["changes"] == [] for r in changed)  # the mapping did not change
    reasons = {(r["then_reason"], r["now_reason"]) for r in changed}
    assert any(now == "HIGH_VALUE" for _, now in reasons) or any(then in ("PRICE_OFF_LIST", "PRICE_MISSING", "TOTAL_MISMATCH") for then, _ in reasons)
    for r in changed:
        assert r["then_reason"] in ("PRICE_OFF_LIST", "PRICE_MISSING", "TOTAL_MISMATCH", None) or r["now"] == "hold", r

    # The table form says how many, and touches nothing.
    cfg.write_text(text)
    r = run_cli("replay-archive", "--since", "2000-01-01", "-c", str(cfg), timeout=600)
    assert r.returncode == 0 and "0 decided differently now, 0 read differently" in r.stderr
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest

    r = run_cli("replay-archive", "--since", "yesterday", "-c", str(cfg))
    assert r.returncode != 0 and "is not a date" in r.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run_cli("replay-archive", "--since", "2000-01-01", "-c", str(gen.config(empty, outbound=empty / "acks")))
    assert r.returncode != 0 and not (empty / "gateway.db").exists()


def test_replay_archive_shows_content_read_differently(tmp_path: Path) -> None:
    """As if the orders had been read by an older mapping: the stored order differs from what
    the current mapping reads, field by field."""
    import sqlite3

    cfg = gen.config(tmp_path, outbound=tmp_path / "acks")
    cases = gen.x12_mix(2)
    for c in cases:
        (tmp_path / "inbox" / c.file).write_bytes(c.body)
    assert run_cli("run", "--once", "-c", str(cfg), timeout=600).returncode == 0
    db = sqlite3.connect(tmp_path / "gateway.db")
    try:
        oid, data = db.execute("select id, data from orders where state in ('validated', 'dispatched') order by po_number limit 1").fetchone()
        order = json.loads(data)
        order["lines"][0]["quantity"] = "999"
        order["currency"] = "EUR"
        db.execute("update orders set data = ? where id = ?", (json.dumps(order), oid))
        db.commit()
    finally:
        db.close()
    changed = [r for r in replay(cfg) if r["changed"]]
    assert len(changed) == 1
    [r] = changed
    assert r["po_number"] == order["po_number"] and r["then"] == r["now"] == "accept"
    assert any("currency" in c for c in r["changes"]) and any("999" in c for c in r["changes"])
