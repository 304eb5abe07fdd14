"""Steps that depend on each other (`after:`): configuration, claims, references, partial state."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_config
from gateway.connector import Receipt
from gateway.errors import ConfigError
from gateway.retry import RetryPolicy
from gateway.store.dead_letters import list_dead, replay
from gateway.store.outbox import (
    due_count,
    mark_dead,
    mark_failed,
    mark_sent,
    next_due,
    step_progress,
)
from tests.unit.test_outbox import T0, claim, events, order_state, rows, seed

STEPS = {"shipping": ("erp",)}


def by_connector(claims: list[Any]) -> dict[str, Any]:
    return {c.connector: c for c in claims}


# -- configuration ---------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "gateway.yaml"
    p.write_text(text)
    return p


def test_after_names_configured_connectors_without_a_cycle(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
connectors:
  - {type: memory, name: erp, after: [ship]}
  - {type: memory, name: shipping, after: [erpp]}
  - {type: memory, name: ship, after: [erp]}
  - {type: memory, name: self, after: [self]}
""",
    )
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    problems = exc.value.problems
    assert f"{path}:3: connectors[1].after[0]: no connector named 'erpp'; did you mean 'erp'?" in problems
    assert f"{path}:5: connectors[3].after[0]: connector 'self' cannot come after itself" in problems
    [cycle] = [p for p in problems if "circle" in p]
    assert cycle.startswith(f"{path}:2: connectors[0].after") and "erp -> ship -> erp" in cycle


def test_steps_are_transitive(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
connectors:
  - {type: memory, name: crm}
  - {type: memory, name: erp, after: [crm]}
  - {type: memory, name: shipping, after: [erp]}
""",
    )
    assert load_config(path, env={}).steps() == {"erp": ("crm",), "shipping": ("crm", "erp")}


# -- claims ----------------------------------------------------------------------------------


def test_a_step_waits_for_the_earlier_one_and_gets_its_reference(store: Any) -> None:
    oid = seed(store, connectors=("erp", "shipping"))
    [erp] = claim(store, steps=STEPS)  # shipping is held back, not claimed
    assert erp.connector == "erp"
    assert next_due(store, steps=STEPS) == erp.lease_until  # the waiting step is not "due"
    assert claim(store, steps=STEPS) == []
    mark_sent(store, erp, Receipt(status=201, reference="SO-17"), now=T0)
    assert order_state(store, oid) == "validated"
    [ship] = claim(store, steps=STEPS)
    assert ship.connector == "shipping" and ship.steps == {"erp": "SO-17"}
    assert ship.order["steps"] == {"erp": {"reference": "SO-17"}}
    assert ship.delivery().steps == {"erp": "SO-17"}
    assert "attempt 1 of 8 to shipping after erp (SO-17)" in events(store, oid)[-1][1]
    mark_sent(store, ship, Receipt(status=201, reference="SHIP-1"), now=T0)
    assert order_state(store, oid) == "dispatched"


def test_without_steps_both_go_at_once(store: Any) -> None:
    seed(store, connectors=("erp", "shipping"))
    assert sorted(c.connector for c in claim(store)) == ["erp", "shipping"]


def test_several_steps_after_one(store: Any) -> None:
    steps = {"shipping": ("erp",), "labels": ("erp",), "crm": ()}
    seed(store, connectors=("erp", "shipping", "labels", "crm"))
    first = by_connector(claim(store, steps=steps))
    assert set(first) == {"erp", "crm"}
    mark_sent(store, first["erp"], Receipt(status=201, reference="SO-2"), now=T0)
    assert {c.connector: c.steps for c in claim(store, steps=steps)} == {"shipping": {"erp": "SO-2"}, "labels": {"erp": "SO-2"}}


def test_a_failing_step_never_reruns_the_one_that_succeeded_and_shows_the_partial_state(store: Any) -> None:
    oid = seed(store, connectors=("erp", "shipping"))
    [erp] = claim(store, steps=STEPS)
    mark_sent(store, erp, Receipt(status=201, reference="SO-1"), now=T0)
    policy = RetryPolicy(max_attempts=5, base_seconds=1, cap_seconds=1)
    now = T0
    for _ in range(3):
        [ship] = claim(store, now, steps=STEPS)
        assert ship.connector == "shipping"
        mark_failed(store, ship, error="HTTP 503 from shipping", status=503, policy=policy, now=now, rand=lambda: 1.0)
        [progress] = step_progress(store, [oid], STEPS).values()
        assert progress.sent == ("erp",)
        assert "shipping retrying after attempt" in progress.describe()
        now += dt.timedelta(seconds=2)
    [ship] = claim(store, now, steps=STEPS)
    mark_sent(store, ship, Receipt(status=200, reference="SHIP-1"), now=now)
    [erp_row] = [r for r in rows(store, oid) if r.connector == "erp"]
    assert erp_row.attempts == 1 and order_state(store, oid) == "dispatched"
    assert step_progress(store, [oid], STEPS) == {}


def test_a_step_behind_a_dead_one_waits_and_is_released_by_the_replay(store: Any) -> None:
    oid = seed(store, connectors=("erp", "shipping"))
    other = seed(store, connectors=("shipping",), po="PO-2")  # routing left the ERP out: nothing holds it
    claims = by_connector(claim(store, steps=STEPS))
    assert set(claims) == {"erp", "shipping"} and claims["shipping"].order_id == other
    mark_dead(store, claims["erp"], error="HTTP 400 from erp", status=400, now=T0)
    mark_sent(store, claims["shipping"], Receipt(status=201), now=T0)
    assert [d.connector for d in list_dead(store)] == ["erp"]  # the waiting step is no dead letter
    assert next(r for r in rows(store, oid) if r.connector == "shipping").state == "pending"
    assert claim(store, T0 + dt.timedelta(days=30), steps=STEPS) == []
    assert due_count(store, steps=STEPS) == 0 and due_count(store) == 1  # `run --once` does not wait for it
    assert step_progress(store, [oid], STEPS) == {}  # nothing sent yet: not partial
    [dead] = list_dead(store)
    assert replay(store, [dead.outbox_id], now=T0) == 1
    [erp] = claim(store, steps=STEPS)
    mark_sent(store, erp, Receipt(status=201, reference="SO-9"), now=T0)
    [ship] = claim(store, steps=STEPS)
    assert ship.order_id == oid and ship.steps == {"erp": "SO-9"}
