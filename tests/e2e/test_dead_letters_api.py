"""Dead letters over the operators' HTTP API (issue 11), in process.

120 POs are read by the real pipeline and their deliveries die (60 for an unknown SKU, 60 for
a timeout); a person then lists them with filters and context, edits, discards and replays
one each, and replays the timeouts by a filter body. Every action answers with what it did,
the order's history names who, and the usual errors (401, 400, 404) hold.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gateway.app import Gateway
from gateway.config import load_config
from gateway.connector import RawMessage
from gateway.store import Store
from gateway.store import tables as t
from gateway.store.outbox import claim_due, mark_dead
from tests.e2e.helpers import file_target, write_config
from tests.support.x12gen import interchange, po

TOKEN = "dl-token-" + "Zq81x" * 6
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    monkeypatch.setenv("GW_TEST_DL_TOKEN", TOKEN)
    cfg_path = write_config(
        tmp_path, connectors=file_target("erp", tmp_path / "out"), service=False,
        extra="intake:\n  port: 0\n  operator_api: {token_env: GW_TEST_DL_TOKEN}\n",
    )
    cfg = load_config(cfg_path)
    gw = Gateway(cfg, store=Store(cfg.store.url))
    body = interchange([po(f"PO-{n:03d}", [("2", "9.99", f"SKU-{n}")], st=f"{n + 1:04d}") for n in range(120)])
    gw.ingest(RawMessage(body=body.encode(), source="test", source_ref="/in/big.edi", display_name="big.edi"))
    claims = claim_due(gw.store, lease_seconds=60, limit=500)
    assert len(claims) == 120
    for c in claims:
        n = int(str(c.order["po_number"])[3:]) if c.order else 0
        mark_dead(gw.store, c, error="HTTP 422: unknown SKU" if n < 60 else "read timeout after 30 s (100% of budget)", status=422 if n < 60 else None)
    yield gw
    gw.close()


def test_dead_letters_over_http(gateway: Gateway) -> None:
    from gateway.intake.app import create_app

    client = TestClient(create_app(gateway))
    assert client.get("/api/dead-letters").status_code == 401

    def listed(**query: Any) -> list[dict[str, Any]]:
        res = client.get("/api/dead-letters", params={"limit": 1000, **query}, headers=AUTH)
        assert res.status_code == 200, res.text
        return list(res.json()["dead_letters"])

    everything = listed()
    assert len(everything) == 120
    assert everything[0]["attempt_log"][-1]["kind"] == "dead" and everything[0]["connector"] == "erp"
    assert len(listed(error="unknown SKU")) == 60 and len(listed(error="100%")) == 60 and listed(error="%_") == []
    assert listed(connector="crm") == [] and listed(until="2000-01-01T00:00:00") == []
    [one] = listed(po="PO-007")
    assert listed(order=one["order_id"][:8])[0]["outbox_id"] == one["outbox_id"]

    unknown = listed(error="unknown SKU")
    edit = client.post(f"/api/dead-letters/{unknown[0]['outbox_id']}/edit", json={"by": "ana", "set": {"lines[1].sku": "SKU-OK"}}, headers=AUTH)
    assert edit.status_code == 200 and edit.json()["state"] == "validated" and edit.json()["version"] == 2
    gone = client.post(f"/api/dead-letters/{unknown[1]['outbox_id']}/discard", json={"by": "bo", "reason": "cancelled"}, headers=AUTH)
    assert gone.status_code == 200 and gone.json()["discarded"] == 1
    again = client.post(f"/api/dead-letters/{unknown[2]['outbox_id']}/replay", json={"by": "cy"}, headers=AUTH)
    assert again.status_code == 200 and again.json()["queued"] == 1
    for used in unknown[:3]:  # none of them is a dead letter any more
        res = client.post(f"/api/dead-letters/{used['outbox_id']}/replay", json={"by": "cy"}, headers=AUTH)
        assert res.status_code == 404 and "no dead letter" in res.json()["error"]
    assert client.post("/api/dead-letters/1/discard", json={"by": "bo"}, headers=AUTH).status_code == 400  # no reason

    assert client.post("/api/dead-letters/replay", json={"by": "cy"}, headers=AUTH).status_code == 400  # no filter
    dry = client.post("/api/dead-letters/replay", json={"by": "cy", "error": "timeout", "dry_run": True}, headers=AUTH)
    assert dry.status_code == 200 and len(dry.json()["matched"]) == 60 and dry.json()["queued"] == 0
    res = client.post("/api/dead-letters/replay", json={"by": "cy", "error": "timeout"}, headers=AUTH)
    assert res.status_code == 200 and res.json()["queued"] == 60
    assert len(listed()) == 57

    with gateway.store.engine.connect() as conn:
        kinds = [(r.kind, r.detail) for r in conn.execute(select(t.events.c.kind, t.events.c.detail).where(t.events.c.outbox_id.isnot(None)))]
    assert sum(k == "replayed" and "by cy" in d for k, d in kinds) == 61
    assert sum(k == "discarded" and "by bo" in d and "cancelled" in d for k, d in kinds) == 1
    assert sum(k == "discarded" and "edited by ana" in d for k, d in kinds) == 1
