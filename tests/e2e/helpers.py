"""Shared pieces of the end-to-end tests: a configuration on disk, the CLI as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp: Path, erp_url: str, *, store_url: str | None = None, retry: str = "{max_attempts: 5, base_seconds: 0.05, cap_seconds: 0.2}", stable: float = 0.1, extra: str = "") -> Path:
    store_url = store_url or f"sqlite:///{tmp / 'gateway.db'}"
    cfg = tmp / "gateway.yaml"
    cfg.write_text(
        f"""\
store:
  url: {store_url}
sources:
  - type: folder
    name: inbox
    path: {tmp / 'inbox'}
    archive: {tmp / 'archive'}
    failed: {tmp / 'failed'}
    poll_seconds: 0.2
    stable_seconds: {stable}
connectors:
  - type: http_json
    name: erp
    url: {erp_url}
    allow_private_targets: true
    reference: id
    timeout: {{connect: 2, read: 5}}
    retry: {retry}
processing:
  poll_seconds: 0.2
dispatch:
  poll_seconds: 0.2
  lease_seconds: 10
{extra}"""
    )
    (tmp / "inbox").mkdir(exist_ok=True)
    return cfg


def gateway_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway.cli", *args]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("GATEWAY_CRASHPOINT", None) if env is None or "GATEWAY_CRASHPOINT" not in env else None
    return subprocess.run(gateway_cmd(*args), capture_output=True, text=True, timeout=timeout, env=full_env, cwd=ROOT)
