"""The in-memory target's fault knobs (issue 9); its contract runs in test_target_contract."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from connectors.targets.memory.config import MemoryTargetConfig
from connectors.targets.memory.connector import MemoryConnector
from gateway.config import GatewayConfig
from gateway.connector import Delivery
from gateway.errors import PermanentError, TransientError
from gateway.plugins import build


def delivery(n: int, attempt: int = 1, po: str | None = None) -> Delivery:
    return Delivery(outbox_id=n, order_id=f"o-{n}", idempotency_key=f"key-{n}", attempt=attempt,
                    order={"po_number": po or f"PO-{n}"})


def outcomes(conn: MemoryConnector, sends: int) -> str:
    """One letter per send: s sent, t transient, p permanent."""
    letters = []
    for n in range(sends):
        try:
            conn.send(delivery(n))
            letters.append("s")
        except TransientError:
            letters.append("t")
        except PermanentError:
            letters.append("p")
    return "".join(letters)


def test_fail_every_nth_send_counts_every_attempt() -> None:
    conn = MemoryConnector(MemoryTargetConfig(name="m", fail_every=3))
    assert outcomes(conn, 9) == "sstsstsst"
    assert conn.attempts == 9 and len(conn.orders) == 6


def test_transient_rate_is_seeded_and_repeatable() -> None:
    first = outcomes(MemoryConnector(MemoryTargetConfig(name="m", transient_rate=0.3, seed=7)), 200)
    again = outcomes(MemoryConnector(MemoryTargetConfig(name="m", transient_rate=0.3, seed=7)), 200)
    other = outcomes(MemoryConnector(MemoryTargetConfig(name="m", transient_rate=0.3, seed=8)), 200)
    assert first == again != other
    assert 30 < first.count("t") < 90  # about 60 of 200


def test_permanent_po_numbers_are_refused_and_recorded_nowhere() -> None:
    conn = MemoryConnector(MemoryTargetConfig(name="m", permanent_po_numbers=["PO-2"]))
    assert outcomes(conn, 4) == "ssps"
    with pytest.raises(PermanentError) as info:
        conn.send(delivery(2))
    assert info.value.status == 422 and "PO-2" in str(info.value)
    assert [o["po_number"] for o in conn.orders] == ["PO-0", "PO-1", "PO-3"]
    assert "key-2" not in conn.by_key


def test_delay_makes_a_slow_target() -> None:
    conn = MemoryConnector(MemoryTargetConfig(name="m", delay_seconds=0.2))
    started = time.monotonic()
    conn.send(delivery(1))
    assert time.monotonic() - started >= 0.2


def test_duplicates_are_visible_per_key_but_have_one_effect() -> None:
    conn = MemoryConnector(MemoryTargetConfig(name="m"))
    first = conn.send(delivery(1))
    again = conn.send(delivery(1, attempt=2))
    conn.send(delivery(2))
    assert first.reference == again.reference == "MEM-1"
    assert again.detail == {"replayed": True}
    assert len(conn.orders) == 2 and len(conn.received) == 3
    assert conn.duplicates() == {"key-1": 2}


def test_a_change_needs_the_order_it_changes() -> None:
    conn = MemoryConnector(MemoryTargetConfig(name="m"))
    with pytest.raises(PermanentError, match="names no order"):
        conn.send(Delivery(1, "o-1", "k", 1, {"po_number": "PO-1"}, action="update"))
    with pytest.raises(PermanentError, match="unknown delivery action"):
        conn.send(Delivery(1, "o-1", "k", 1, {"po_number": "PO-1"}, action="merge"))
    assert conn.received == []


def test_configured_as_type_memory(tmp_path: Path) -> None:
    cfg = GatewayConfig.model_validate(
        {"connectors": [{"type": "memory", "name": "dry-run", "fail_every": 5, "permanent_po_numbers": ["X"]}]}
    )
    conn = build("target", cfg.connector("dry-run"))
    assert isinstance(conn, MemoryConnector) and conn.faults.fail_every == 5
    with pytest.raises(ValidationError):
        MemoryTargetConfig(name="m", transient_rate=1.5)
