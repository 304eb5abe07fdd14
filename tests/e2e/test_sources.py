"""Where each value came from, for X12 and EDIFACT orders: read again from the kept message.

An operator's day: 150 X12 files (300 orders, one file of 40) and an EDIFACT file are read by
`gateway run --once`; no sources are stored with those orders, yet `gateway show --sources`
gives, for orders anywhere in their files, exactly what translating the file with tracing
gives; after `gateway purge` removed the bodies, the sources are still there, kept first.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, update

from gateway.translate import Translated, translate
from tests.e2e.helpers import ROOT, file_target, run_cli, write_config
from tests.support.x12gen import interchange, po

pytestmark = pytest.mark.slow

PARTNERS = """\
partners:
  - name: acme
    x12_ids: ["ZZ:ACMERETAIL"]
    edifact_ids: ["14:5412345000013"]
    acks: {outbound: OUTBOUND}
"""
EDIFACT = ROOT / "tests" / "fixtures" / "edifact" / "orders_full_d96a.edi"


def _show(cfg: Path, po_number: str) -> dict[str, object]:
    done = run_cli("show", po_number, "--sources", "--json", "--config", str(cfg))
    assert done.returncode == 0, done.stderr[-2000:]
    shown: dict[str, object] = json.loads(done.stdout)
    return shown


def _traced(path: Path, po_number: str) -> dict[str, str]:
    """The oracle: the file translated with tracing, as `gateway translate` reads it."""
    from gateway.config import PartnerConfig
    from gateway.partners import PartnerDirectory

    partners = PartnerDirectory([PartnerConfig(name="acme", x12_ids=["ZZ:ACMERETAIL"], edifact_ids=["14:5412345000013"])])
    for ev in translate(io.BytesIO(path.read_bytes()), name=path.name, partners=partners, trace=True):
        if isinstance(ev, Translated) and ev.order.po_number == po_number:
            return dict(ev.provenance)
    raise AssertionError(f"{po_number} not in {path}")


def test_sources_of_edi_orders_are_read_again_and_kept_before_purge(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, connectors=file_target("outbox", tmp_path / "outbox"), extra=PARTNERS.replace("OUTBOUND", str(tmp_path / "outbound")))
    inbox, keep = tmp_path / "inbox", tmp_path / "copies"
    keep.mkdir()
    for f in range(150):
        n = 40 if f == 149 else 2  # one large file: its last order is far into it
        pos = [po(f"PO-{f:03d}-{i}", [("2", "9.99", f"SKU-{i}"), ("1", "4.50", f"SKU-{f}")], st=f"{i + 1:04d}") for i in range(n)]
        text = interchange(pos, icn=f"{f + 1:09d}")
        (inbox / f"po{f:03d}.edi").write_text(text)
        (keep / f"po{f:03d}.edi").write_text(text)
    # the fixture is marked as a test interchange (UNB 0035 = 1), which production holds
    (inbox / "orders.edi").write_bytes(EDIFACT.read_bytes().replace(b"++1++1'", b"++1'"))

    ran = run_cli("run", "--once", "--config", str(cfg), timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]

    engine = create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    from gateway.store import tables as t

    with engine.connect() as conn:
        rows = conn.execute(select(t.orders.c.po_number, t.orders.c.provenance, t.orders.c.state)).all()
    assert len(rows) == 149 * 2 + 40 + 1
    assert all(not r.provenance for r in rows), "X12 and EDIFACT orders store no sources"
    assert {r.state for r in rows} == {"dispatched"}

    checked = ["PO-000-0", "PO-071-1", "PO-149-0", "PO-149-39"]
    before = {}
    for number in checked:
        shown = _show(cfg, number)
        f = int(number.split("-")[1])
        assert shown["sources"] == _traced(keep / f"po{f:03d}.edi", number), number
        assert shown["sources_note"] is None
        before[number] = shown["sources"]
    sources = before["PO-149-39"]
    assert isinstance(sources, dict)
    assert sources["po_number"].startswith("BEG03 (segment 2, line ")
    assert sources["lines[1].sku"].startswith("PO107 (segment ")

    with engine.connect() as conn:
        edifact_po = conn.execute(select(t.orders.c.po_number).where(t.orders.c.channel == "edifact")).scalar_one()
    shown = _show(cfg, edifact_po)
    assert shown["sources"]["po_number"].startswith("BGM")  # type: ignore[index]
    edifact_before = shown["sources"]

    # Printed for a person too (the table the README shows).
    printed = run_cli("show", "PO-149-39", "--sources", "--config", str(cfg))
    assert printed.returncode == 0 and "BEG03 (segment 2" in printed.stdout

    # Retention removes the bodies; the sources are kept first, and read from the store after.
    with engine.begin() as conn:
        conn.execute(update(t.messages).values(received_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=40)))
    purged = run_cli("purge", "--older-than", "30", "--json", "--config", str(cfg))
    assert purged.returncode == 0, purged.stderr[-2000:]
    assert json.loads(purged.stdout)["messages"] == 151
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.message_bodies)).scalar_one() == 0
        stored = conn.execute(select(t.orders.c.po_number, t.orders.c.provenance)).all()
    assert all(r.provenance for r in stored), "every order's sources were kept before its body went"
    for number in checked:
        assert _show(cfg, number)["sources"] == before[number]
    assert _show(cfg, edifact_po)["sources"] == edifact_before
