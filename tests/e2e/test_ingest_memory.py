"""issue 14 #18: memory of `gateway ingest` does not grow with the file; every interchange
of a large file gets its one 997, and its orders their 855, from the real CLI."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.e2e.helpers import ROOT
from tests.support.x12gen import interchange, po


def _file(path: Path, n: int) -> Path:
    with path.open("w", encoding="ascii", newline="") as out:
        for i in range(1, n + 1):
            out.write(interchange([po(f"PO{i:07d}")], icn=f"{i:09d}", gcn=str(i)))
    return path


_LAUNCHER = (
    "import os, subprocess, sys\n"
    "child = subprocess.Popen(sys.argv[1:])\n"
    "_, status, usage = os.wait4(child.pid, 0)\n"
    "sys.stderr.write(f'MAXRSS_KB {usage.ru_maxrss}')\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def _ingest(tmp: Path, edi: Path, name: str) -> tuple[float, str]:
    """Run `gateway ingest` for an acknowledging partner; (the child's peak RSS in MB, stderr)."""
    acks = tmp / f"acks-{name}"
    acks.mkdir()
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(
        f"store:\n  url: sqlite:///{tmp / (name + '.db')}\n"
        "connectors:\n  - {type: http_json, name: erp, url: 'http://127.0.0.1:9/orders', allow_private_targets: true}\n"
        "partners:\n  - name: acme\n    x12_ids: ['ZZ:ACMERETAIL']\n"
        f"    acks: {{outbound: {acks}, order_response: true}}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_CRASHPOINT"}
    # The peak RSS Linux reports for a child includes the memory of the process it was forked
    # from (pytest, large after a long run): a small launcher forks the CLI and reports that
    # grandchild's own peak.
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, sys.executable, "-m", "gateway.cli", "ingest", "--config", str(cfg), str(edi)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    err, _, peak = done.stderr.rpartition("MAXRSS_KB ")
    return int(peak) / 1024, err


def test_ingest_of_many_acknowledged_interchanges_stays_flat(tmp_path: Path) -> None:
    """issue 14 #18: 6,000 one-PO interchanges for a partner that wants 997s and 855s.

    The old pipeline collected every interchange's and order's acknowledgement data for the
    whole file (about 16 KB an order) and planned them at the end. The peak RSS of the CLI
    for 6,000 interchanges must stay within a few MB of that for 500 (the file grows by
    1.7 MB), and each interchange gets exactly one 997 and each order one 855."""
    small = _file(tmp_path / "small.edi", 500)
    large = _file(tmp_path / "large.edi", 6_000)
    rss_small, _ = _ingest(tmp_path, small, "small")
    rss_large, err = _ingest(tmp_path, large, "large")
    assert "6000 orders accepted" in err, err
    assert rss_large < 200, f"peak RSS {rss_large:.0f} MB for a 2 MB file"
    assert rss_large - rss_small < 25, f"peak RSS grew from {rss_small:.0f} MB to {rss_large:.0f} MB with the number of interchanges"

    db = sqlite3.connect(tmp_path / "large.db")
    try:
        # Acknowledgements are outbox rows of the one dispatcher (kind other than 'order').
        kinds = dict(db.execute("SELECT kind, count(*) FROM outbox WHERE kind != 'order' GROUP BY kind").fetchall())
        assert kinds == {"997": 6_000, "855": 6_000}
        # One 997 per received interchange: each answers its own group control number (AK1).
        groups = [bytes(b).decode().split("AK1*PO*", 1)[1].split("~", 1)[0] for (b,) in db.execute("SELECT body FROM outbox WHERE kind = '997'")]
        assert sorted(groups, key=int) == [str(i) for i in range(1, 6_001)]
        # Every outbound interchange has its own control number; every 855 names its order.
        controls = [c for (c,) in db.execute("SELECT control_number FROM outbox WHERE kind != 'order'")]
        assert len(set(controls)) == 12_000
        assert db.execute("SELECT count(*) FROM outbox WHERE kind = '855' AND order_id IS NULL").fetchone()[0] == 0
        linked = db.execute("SELECT count(*) FROM outbox a JOIN orders o ON o.id = a.order_id WHERE a.kind = '855'").fetchone()[0]
        assert linked == 6_000
    finally:
        db.close()
