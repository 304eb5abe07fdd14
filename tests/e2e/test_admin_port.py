"""The admin port (issue 12): `gateway run` serves /healthz, /readyz and /metrics whenever
`admin:` is configured, with no HTTP intake; /readyz says why a node is not ready."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import text

from gateway.config import AdminConfig
from gateway.intake.admin import AdminServer
from gateway.store import Store
from tests.e2e.helpers import ROOT, file_target, gateway_cmd, write_config


@pytest.mark.parametrize("admin", ["admin: {port: 0}\n", ""], ids=["configured", "default"])
def test_run_serves_probes_without_an_intake(tmp_path: Path, admin: str) -> None:
    """Always on: as configured, else on 127.0.0.1:9464."""
    cfg = write_config(tmp_path, connectors=file_target("outbox", tmp_path / "outbox"), extra=admin)
    proc = subprocess.Popen(
        gateway_cmd("run", "--config", str(cfg), "--for", "120"), cwd=ROOT, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "GATEWAY_LOG_FORMAT": "json"},
    )
    try:
        assert proc.stderr is not None
        url = None
        for line in proc.stderr:  # the service logs the address once it listens
            message = json.loads(line)["message"]
            if message.startswith("admin port listening on "):
                url = message.split()[4]
                break
        assert url is not None, "the admin port never started"
        if not admin:
            assert url == "http://127.0.0.1:9464", url
        assert requests.get(f"{url}/healthz").json() == {"status": "ok"}
        ready = requests.get(f"{url}/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}
        metrics = requests.get(f"{url}/metrics").text
        assert "gateway_up 1" in metrics and "gateway_messages" in metrics
        assert requests.get(f"{url}/webhooks/shopify/x").status_code == 404  # no intake route on this port
    finally:
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=60)  # drains and closes the pipe
    assert proc.returncode == 0, rest[-2000:]


def test_readyz_names_a_schema_behind(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'gateway.db'}")
    gw: Any = type("Gw", (), {"store": store, "config": None})()
    try:
        with AdminServer(gw, AdminConfig(port=0)) as admin:
            assert requests.get(f"{admin.url}/readyz").status_code == 200
            with store.begin() as conn:
                conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
            behind = requests.get(f"{admin.url}/readyz")
            assert behind.status_code == 503 and "gateway db upgrade" in behind.json()["reason"]
            assert requests.get(f"{admin.url}/healthz").status_code == 200
    finally:
        store.dispose()
