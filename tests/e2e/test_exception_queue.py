"""The exception queue from the outside (issue 10): `gateway exceptions`, `edit`, `release`.

300 one-PO files go through `gateway run --once` to a real HTTP ERP; 40 of them are refused by
validation (a zero quantity) and 20 re-use a PO number with other content (DUPLICATE_PO). A
person lists them, corrects the first kind with `gateway edit` (a new version, checked again,
sent once) and releases the second with `--override`; every PO reaches the ERP exactly once
and each order's history says who changed what.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.helpers import run_cli, write_config
from tests.support.fake_erp import FakeERP
from tests.support.x12gen import interchange, po

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # 60 CLI edits and releases, each a process


def drop(inbox: Path, name: str, body: str) -> None:
    tmp = inbox / f".{name}.part"
    tmp.write_text(body, encoding="ascii")
    os.replace(tmp, inbox / name)


def exceptions(cfg: Path, *args: str) -> list[dict[str, object]]:
    res = run_cli("exceptions", "--config", str(cfg), "--json", "--limit", "1000", *args)
    assert res.returncode == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


# 300 files through `run --once`; of them INVALID refused by validation and corrected one by one
# with `gateway edit`, and DUPES duplicate POs released with `gateway release` (a CLI process each).
FILES, INVALID, DUPES = 300, 12, 8


def test_a_person_corrects_and_releases_refused_orders_and_each_po_is_sent_once(tmp_path: Path) -> None:
    with FakeERP() as erp:
        cfg = write_config(tmp_path, erp.url)
        inbox = tmp_path / "inbox"
        for n in range(FILES):
            if n < INVALID:  # refused by validation: line 1 orders nothing
                lines = [("0", "4.50", f"SKU-{n}"), ("3", "2.00", "SKU-X")]
            else:
                lines = [("2", "9.99", f"SKU-{n}")]
            drop(inbox, f"po{n:03d}.edi", interchange([po(f"PO-{n:03d}", lines)], icn=f"{n + 1:09d}"))
        # DUPES files re-use PO numbers 100.. with other content: DUPLICATE_PO, a person decides
        for n in range(DUPES):
            drop(inbox, f"again{n:02d}.edi", interchange([po(f"PO-{100 + n:03d}", [("7", "1.00", "SKU-NEW")])], icn=f"{500 + n:09d}"))
        res = run_cli("run", "--once", "--config", str(cfg), timeout=300)
        assert res.returncode == 0, res.stderr
        assert len(erp.orders) == FILES - INVALID

        waiting = exceptions(cfg)
        assert len(waiting) == INVALID + DUPES
        invalid = exceptions(cfg, "--reason", "VALIDATION")
        dupes = exceptions(cfg, "--reason", "DUPLICATE_PO")
        assert len(invalid) == INVALID and len(dupes) == DUPES
        assert all("quantity 0" in str(r["error"]) for r in invalid)

        # An edit without saying who is refused, and so is a path that names nothing.
        first = str(invalid[0]["id"])
        res = run_cli("edit", first[:8], "--set", "lines[1].quantity=5", "--config", str(cfg))
        assert res.returncode != 0 and "--by" in res.stderr
        res = run_cli("edit", first[:8], "--set", "lines[9].quantity=5", "--by", "ana", "--config", str(cfg))
        assert res.returncode != 0 and "no line numbered 9" in res.stderr
        # A correction that is still wrong stays in the queue as the new version, with why.
        res = run_cli("edit", first[:8], "--set", "lines[1].quantity=-1", "--by", "ana", "--config", str(cfg))
        assert res.returncode == 1 and "quantity_not_positive" in res.stderr
        for row in exceptions(cfg, "--reason", "VALIDATION"):
            res = run_cli("edit", str(row["id"])[:8], "--set", "lines[1].quantity=5", "--by", "ana", "--config", str(cfg))
            assert res.returncode == 0, res.stderr
            assert "lines[1].quantity" in res.stderr and "accepted and queued" in res.stderr
        # A duplicate PO is not released on the check alone; the person's word overrides it.
        res = run_cli("release", str(dupes[0]["id"])[:8], "--by", "bo", "--config", str(cfg))
        assert res.returncode != 0 and "DUPLICATE_PO" in res.stderr and "--override" in res.stderr
        for row in dupes:
            res = run_cli("release", str(row["id"])[:8], "--by", "bo", "--override", "--config", str(cfg))
            assert res.returncode == 0, res.stderr
        assert exceptions(cfg) == []

        res = run_cli("run", "--once", "--config", str(cfg), timeout=300)
        assert res.returncode == 0, res.stderr
        sent = [o["body"] for o in erp.orders]
        assert len(sent) == FILES + DUPES
        keys = [o["idempotency_key"] for o in erp.orders]
        assert len(set(keys)) == FILES + DUPES
        corrected = {b["po_number"]: b for b in sent if int(b["po_number"][3:]) < INVALID}
        assert len(corrected) == INVALID
        assert all(b["lines"][0]["quantity"] in ("5", 5, 5.0, "5.0") for b in corrected.values())
        assert sorted(b["po_number"] for b in sent).count("PO-100") == 2  # the original and the released one

        # The history says who changed what, and the edited version points at the old one.
        db = sqlite3.connect(tmp_path / "gateway.db")
        try:
            states = dict(db.execute("select state, count(*) from orders group by state").fetchall())
            assert states == {"dispatched": FILES + DUPES, "superseded": INVALID + 1}
            edited = db.execute(
                "select o.version, o.supersedes, s.state from orders o join orders s on s.id = o.supersedes"
            ).fetchall()
            assert len(edited) == INVALID + 1 and {v for v, _, _ in edited} == {2, 3}
            details = [d for (d,) in db.execute("select detail from events where kind = 'edited'")]
            assert sum("edited by ana" in d and "lines[1].quantity: 0 -> 5" in d for d in details) >= INVALID - 1
            released = [d for (d,) in db.execute("select detail from events where kind = 'released'")]
            assert len(released) == DUPES and all("overriding the check by bo (was DUPLICATE_PO" in d for d in released)
        finally:
            db.close()
        res = run_cli("show", first[:8], "--config", str(cfg))
        assert res.returncode == 0 and "edited by ana" in res.stdout + res.stderr
