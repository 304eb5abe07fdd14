"""The deployment files (issue 12) hold what they promise; scripts/check_deploy.sh goes
further (wheel, fresh install, a running service) and is run by hand: it needs a minute.

No Docker daemon runs on CI machines, so the image is not built here: the Dockerfile and
docker-compose.yml are read for their essentials, the shipped configuration is loaded, and
the systemd unit passes `systemd-analyze verify`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway.config import load_config
from tests.e2e.helpers import ROOT


def test_dockerfile_builds_a_wheel_and_runs_it_unprivileged() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert len(stages) == 2 and stages[0].endswith(" AS build") and "-slim" in stages[1]
    assert 'pip wheel --no-cache-dir --wheel-dir /wheels ".[postgres]"' in text
    assert "--no-index --find-links=/wheels" in text  # the runtime stage installs the wheels only
    assert "USER gateway" in text and "useradd --system" in text
    assert text.rstrip().endswith('ENTRYPOINT ["gateway"]\nCMD ["run"]')
    assert "/healthz" in text.split("HEALTHCHECK", 1)[1]


def test_compose_runs_the_gateway_with_postgres_after_db_upgrade() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["postgres"]["image"] == "postgres:16"
    gateway, migrate = services["gateway"], services["migrate"]
    assert gateway["environment"]["GATEWAY_DATABASE_URL"].startswith("postgresql+psycopg://gateway:${POSTGRES_PASSWORD")
    assert migrate["command"] == ["db", "upgrade"] and gateway["command"] == ["run"]
    assert gateway["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(gateway["healthcheck"]["test"])
    assert all(p.startswith("127.0.0.1:") for p in gateway["ports"])


def test_shipped_configuration_migrates_only_when_asked() -> None:
    cfg = load_config(ROOT / "deploy" / "gateway.yaml", env={"GATEWAY_DATABASE_URL": "postgresql+psycopg://gw:pw@db/gateway"})
    assert cfg.store.migrate is False and cfg.log_format == "json"
    assert cfg.admin is not None and cfg.admin.port == 9464
    assert cfg.retention.raw_body_days is not None


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("GATEWAY_REQUIRE_SERVICES"):
            pytest.fail("systemd-analyze is missing (Debian: systemd)")
        pytest.skip("systemd-analyze is not installed")
    unit = (ROOT / "deploy" / "gateway.service").read_text()
    assert "ExecStartPre=/opt/gateway/bin/gateway db upgrade" in unit and "NoNewPrivileges=yes" in unit
    gateway = Path(sys.executable).with_name("gateway")  # the installed entry point stands in for /opt
    assert gateway.exists(), gateway
    paths = []
    for name in ("gateway.service", "gateway-purge.service", "gateway-purge.timer"):
        paths.append(tmp_path / name)
        paths[-1].write_text((ROOT / "deploy" / name).read_text().replace("/opt/gateway/bin/gateway", str(gateway)))
    done = subprocess.run([analyze, "verify", *map(str, paths)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
