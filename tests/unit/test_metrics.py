"""gateway.intake.metrics: the exposition text, and a store that does not answer."""

from __future__ import annotations

from fastapi.testclient import TestClient

from gateway.intake.metrics import exposition


def test_labels_are_escaped_and_every_family_is_typed() -> None:
    snap = {
        "messages": {"parsed": 3},
        "orders": {"held": 1},
        "outbox": [("order", 'e"r\\p', "sent", 2)],
        "oldest_due_seconds": 1.25,
        "exceptions": [("held", "RULE", 1)],
    }
    text = exposition(snap, {"stored": 4})
    assert 'gateway_outbox{kind="order",connector="e\\"r\\\\p",state="sent"} 2' in text
    assert "# TYPE gateway_intake_requests_total counter" in text
    assert "gateway_outbox_oldest_due_seconds 1.25" in text and text.endswith("gateway_up 1\n")
    down = exposition(None, {})
    assert "gateway_orders" not in down and down.endswith("gateway_up 0\n")


def test_a_store_that_does_not_answer_is_a_503_with_up_0(tmp_path) -> None:
    from gateway.app import Gateway
    from gateway.config import GatewayConfig
    from gateway.intake.app import create_app

    gw = Gateway(GatewayConfig.model_validate({"store": {"url": f"sqlite:///{tmp_path / 'gw.db'}"}}))
    try:
        client = TestClient(create_app(gw))
        assert client.get("/metrics").status_code == 200
        gw.store.engine.dispose()
        (tmp_path / "gw.db").unlink()
        (tmp_path / "gw.db").mkdir()  # the file is gone and cannot be made again
        res = client.get("/metrics")
        assert res.status_code == 503 and res.text.endswith("gateway_up 0\n")
    finally:
        gw.close()
