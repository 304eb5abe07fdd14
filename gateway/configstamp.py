"""Which configuration a running gateway has loaded, so a command can tell when it is stale.

A `gateway run` node records, when it starts and after every reload (SIGHUP), an event
``config_loaded`` in the store with a fingerprint of what it read: the configuration file
and the partner mapping files under ``mappings:``. `gateway reprocess` (whose work the
running node does) compares the fingerprint of the files as they are now with what each
running node loaded, and says so when they differ: the node must be reloaded first, or it
redoes the work with the old configuration.

    detail: "sha256=<first 16 hex> pid=<pid> host=<hostname>"

A node on this host whose process is gone is not running; a node on another host (several
nodes on PostgreSQL) is taken as running, since it cannot be checked from here.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from gateway.config import GatewayConfig
from gateway.store import Store, add_event
from gateway.store.queries import recent_event_details

__all__ = ["LoadedConfig", "fingerprint", "record_loaded", "stale_nodes"]

KIND = "config_loaded"
_MAX_MAPPING_FILES = 2000  # a bound on what is read to fingerprint the mappings folder
_DETAIL = re.compile(r"sha256=([0-9a-f]{16}) pid=([0-9]{1,10}) host=(\S{1,255})")


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """What one node loaded, from its latest ``config_loaded`` event."""

    fingerprint: str
    pid: int
    host: str


def fingerprint(path: Path | None, config: GatewayConfig) -> str:
    """First 16 hex digits of a sha256 over the configuration file and the mapping files."""
    digest = hashlib.sha256()
    if path is not None:
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"<unreadable>")
    if config.mappings is not None and config.mappings.is_dir():
        files = sorted(p for p in config.mappings.rglob("*") if p.is_file())[:_MAX_MAPPING_FILES]
        for file in files:
            digest.update(str(file.relative_to(config.mappings)).encode("utf-8", "replace") + b"\0")
            try:
                digest.update(hashlib.sha256(file.read_bytes()).digest())
            except OSError:
                continue
    return digest.hexdigest()[:16]


def record_loaded(store: Store, value: str) -> None:
    """Record that this process now runs with the configuration of fingerprint `value`."""
    with store.begin() as conn:
        add_event(conn, KIND, f"sha256={value} pid={os.getpid()} host={socket.gethostname()}")


def stale_nodes(store: Store, current: str, *, look_back: int = 50) -> list[LoadedConfig]:
    """Running nodes whose loaded configuration differs from `current`."""
    latest: dict[tuple[str, int], LoadedConfig] = {}
    for detail in recent_event_details(store, KIND, limit=look_back):
        m = _DETAIL.fullmatch(detail or "")
        if m is None:
            continue
        node = LoadedConfig(m.group(1), int(m.group(2)), m.group(3))
        latest.setdefault((node.host, node.pid), node)  # newest first
    here = socket.gethostname()
    return [
        node
        for node in latest.values()
        if node.fingerprint != current and (node.host != here or _alive(node.pid))
    ]


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this very command is not a running node
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
