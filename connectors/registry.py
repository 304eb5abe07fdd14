"""Connector types by name, imported only when a configuration uses them.

A target's configuration says ``type: http_json``; this module maps that name to the class
that sends, as a ``"module:Class"`` string, so an optional dependency of one connector is
loaded only when that connector is configured. Third-party packages add types through the
``order_gateway.connectors`` entry-point group (``name = "package.module:Class"``). An unknown
type stops start-up with a "did you mean".
"""

from __future__ import annotations

import difflib
import importlib
from importlib.metadata import entry_points
from typing import Any

from gateway.connector import Connector
from gateway.errors import ConfigError

__all__ = ["ENTRY_POINT_GROUP", "TARGETS", "build_connector", "connector_class", "known_types"]

ENTRY_POINT_GROUP = "order_gateway.connectors"

TARGETS: dict[str, str] = {
    "http_json": "connectors.targets.http_json.connector:HttpJsonConnector",
    "file": "connectors.targets.file.connector:FileConnector",
    "memory": "connectors.targets.memory.connector:MemoryConnector",
}


def known_types() -> dict[str, str]:
    """Built-in types plus those installed packages declare (built-ins win on a clash)."""
    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return {**found, **TARGETS}


def connector_class(type_name: str) -> type[Any]:
    """The class for a connector type; ConfigError with a suggestion for an unknown one."""
    types = known_types()
    spec = types.get(type_name)
    if spec is None:
        hint = difflib.get_close_matches(type_name, sorted(types), n=1)
        suggestion = f"did you mean {hint[0]!r}? " if hint else ""
        raise ConfigError(
            f"unknown connector type {type_name!r}; {suggestion}known types: {', '.join(sorted(types))}"
        )
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"connector type {type_name!r} cannot be loaded from {spec}: {exc}") from exc


def build_connector(cfg: Any) -> Connector:
    """A ready connector for one configured target (`cfg.type` names the kind)."""
    type_name = getattr(cfg, "type", None)
    if not isinstance(type_name, str):
        raise ConfigError(f"connector {getattr(cfg, 'name', '?')!r} has no type")
    return connector_class(type_name)(cfg)  # type: ignore[no-any-return]
