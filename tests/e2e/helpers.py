"""Shared pieces of the end-to-end tests: a configuration on disk, the CLI as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parents[2]


# Short back-offs, so a test sees retries in seconds.
SHORT_RETRY = "{max_attempts: 5, base_seconds: 0.05, cap_seconds: 0.2}"
DEFAULT_TIMEOUT = "{connect: 2, read: 5}"


def http_json(name: str, url: str, *, retry: str = SHORT_RETRY, timeout: str | None = DEFAULT_TIMEOUT) -> str:
    """One `connectors:` entry: an http_json target at `url` (a loopback fake ERP, so private
    targets are allowed), reference from the answer's ``id``; `timeout` None keeps the default."""
    timeout_line = f"    timeout: {timeout}\n" if timeout is not None else ""
    return (
        f"  - type: http_json\n    name: {name}\n    url: {url}\n    allow_private_targets: true\n"
        f"    reference: id\n{timeout_line}    retry: {retry}\n"
    )


# What a shipping connector needs besides its options: its credentials from the environment
# (the tests set SS_KEY and SS_SECRET, EP_KEY) and, for EasyPost, the depot labels ship from.
_SHIPPING_KEYS = {
    "shipstation": "    api_key: ${env:SS_KEY}\n    api_secret: ${env:SS_SECRET}\n",
    "easypost": (
        "    api_key: ${env:EP_KEY}\n"
        '    from_address: {name: Gateway Co, street1: 9 Depot St, city: Sparks, state: NV, zip: "89431"}\n'
    ),
}


def shipping_connector(kind: Literal["shipstation", "easypost"], name: str, url: str, **options: str | list[str]) -> str:
    """One `connectors:` entry: a ShipStation or EasyPost target at `url` (a fake of
    tests.support.shipping_apis) with its keys from the environment, then each of `options`
    as ``key: value``: a list as a flow sequence (``after=["erp"]``), a string as YAML text
    (``retry=QUICK``)."""
    lines = "".join(f"    {key}: {'[' + ', '.join(value) + ']' if isinstance(value, list) else value}\n" for key, value in options.items())
    return f"  - type: {kind}\n    name: {name}\n    url: {url}\n{_SHIPPING_KEYS[kind]}{lines}"


def file_target(name: str, path: Path) -> str:
    """One `connectors:` entry: a file target writing each order as JSON under `path`."""
    return f"  - type: file\n    name: {name}\n    path: {path}\n"


def write_config(
    tmp: Path,
    erp_url: str | None = None,
    *,
    connectors: str | None = None,
    store_url: str | None = None,
    retry: str = SHORT_RETRY,
    timeout: str | None = DEFAULT_TIMEOUT,
    stable: float = 0.1,
    poll: float | None = 0.2,
    service: bool = True,
    lease: float | None = 10,
    processing_lease: float | None = None,
    extra: str = "",
) -> Path:
    """`tmp`/gateway.yaml for an end-to-end test, and its drop folder `tmp`/inbox.

    A folder source over `tmp` (inbox, archive, failed; `poll` and `stable` seconds, None for
    the default), a store (`store_url`, else SQLite in `tmp`), the `connectors` entries
    (`http_json`, `file_target`; default one http_json "erp" at `erp_url` with `retry` and
    `timeout`), with `service` the processing and dispatch jobs polling every 0.2 s (and a
    `lease` of that many seconds, None for the default; `processing_lease` likewise for
    processing), then `extra` YAML as given.
    """
    if connectors is None:
        assert erp_url is not None, "write_config needs erp_url or connectors"
        connectors = http_json("erp", erp_url, retry=retry, timeout=timeout)
    store_url = store_url or f"sqlite:///{tmp / 'gateway.db'}"
    poll_line = f"    poll_seconds: {poll}\n" if poll is not None else ""
    jobs = ""
    if service:
        lease_line = f"  lease_seconds: {lease}\n" if lease is not None else ""
        taken_up = f"  lease_seconds: {processing_lease}\n" if processing_lease is not None else ""
        jobs = f"processing:\n  poll_seconds: 0.2\n{taken_up}dispatch:\n  poll_seconds: 0.2\n{lease_line}"
    cfg = tmp / "gateway.yaml"
    cfg.write_text(
        f"store:\n  url: {store_url}\n"
        f"sources:\n  - type: folder\n    name: inbox\n    path: {tmp / 'inbox'}\n"
        f"    archive: {tmp / 'archive'}\n    failed: {tmp / 'failed'}\n"
        f"{poll_line}    stable_seconds: {stable}\n"
        f"connectors:\n{connectors}{jobs}{extra}"
    )
    (tmp / "inbox").mkdir(exist_ok=True)
    return cfg


def gateway_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway.cli", *args]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("GATEWAY_CRASHPOINT", None) if env is None or "GATEWAY_CRASHPOINT" not in env else None
    return subprocess.run(gateway_cmd(*args), capture_output=True, text=True, timeout=timeout, env=full_env, cwd=ROOT)
