"""List commands for scripts (issue 12): `--json` output and `--state` checked against the states.

200 files are ingested through the real CLI; the JSON listings count and describe them, and a
state that does not exist is an error naming the states that do (it used to print an empty table).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.helpers import run_cli, write_config
from tests.support.x12gen import interchange, po

pytestmark = pytest.mark.slow


def test_listings_as_json_lines_and_states_checked(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "http://127.0.0.1:9/orders")
    files = []
    for n in range(200):
        lines = [("0", "1.00", "A")] if n % 10 == 0 else [("2", "9.99", f"SKU-{n}")]
        f = tmp_path / f"po{n:03d}.edi"
        f.write_text(interchange([po(f"PO-{n:03d}", lines)], icn=f"{n + 1:09d}"))
        files.append(str(f))
    r = run_cli("ingest", "--config", str(cfg), *files, timeout=300)
    assert r.returncode == 1 and "180 orders accepted, 20 quarantined" in r.stderr, r.stderr  # some refused: exit 1

    def lines(*args: str) -> list[dict[str, object]]:
        res = run_cli(*args, "--config", str(cfg), "--json", "-n", "1000")
        assert res.returncode == 0, res.stderr
        return [json.loads(line) for line in res.stdout.splitlines()]

    orders = lines("orders")
    assert len(orders) == 200 and {o["state"] for o in orders} == {"validated", "quarantined"}
    assert len(lines("orders", "--state", "quarantined")) == 20
    assert len(lines("orders", "--state", "VALIDATED")) == 180
    messages = lines("messages")
    assert len(messages) == 200 and sorted({m["state"] for m in messages}) == ["parsed", "quarantined"]
    assert len(lines("messages", "--state", "quarantined")) == 20
    assert all(isinstance(m["received_at"], str) for m in messages)
    res = run_cli("dead-letters", "--config", str(cfg), "--json")
    assert res.returncode == 0 and res.stdout == ""
    for command in ("orders", "messages"):
        res = run_cli(command, "--config", str(cfg), "--state", "bogus")
        assert res.returncode == 2 and "'bogus' is not one of" in res.stderr and "quarantined" in res.stderr
