"""One registry of plugin types: a configuration's ``type:`` -> its config model and its class.

Two kinds of plugin plug into the core: **sources** (poll and acknowledge) and **targets**
(connectors: send one delivery). Each type has a configuration model (a pydantic model whose
``type`` field is a ``Literal`` of the type's name) and a class built from that model.

Built-in types are listed as data in ``connectors/registry.py`` (``"module:attr"`` strings),
so nothing is imported until a configuration uses a type: loading a configuration imports
the config models of the types it names, and only building a source or a connector imports
its class (and that class's dependencies, such as paramiko or imapclient).

Installed packages add types through two entry-point groups::

    [project.entry-points."order_gateway.connectors"]
    acme_erp = "acme_gateway.connector:AcmeConnector"

    [project.entry-points."order_gateway.sources"]
    acme_drop = "acme_gateway.source:AcmeSource"

The entry point names the class; the class names its configuration model in a
``config_model`` attribute (subclass :class:`TargetConfigBase` or :class:`SourceConfigBase`),
and a source that keeps state in the store says ``needs_store = True``. A built-in wins when
a package registers the same name. An unknown type is a configuration error with a
"did you mean" and the list of known types; a type that cannot be imported is one too.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    ValidationError,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from gateway.connector import Capabilities
from gateway.errors import ConfigError
from gateway.retry import RetryPolicy

__all__ = [
    "ENTRY_POINT_GROUPS",
    "BreakerConfig",
    "Kind",
    "PluginSpec",
    "SourceConfigBase",
    "TargetConfigBase",
    "build",
    "config_model",
    "known_types",
    "lookup",
    "plugin_class",
    "validate_configs",
]

Kind = Literal["source", "target"]
ENTRY_POINT_GROUPS: dict[Kind, str] = {"source": "order_gateway.sources", "target": "order_gateway.connectors"}
_NOUN: dict[Kind, str] = {"source": "source", "target": "connector"}

PathFixer = Callable[[Path | None], Path | None]


@dataclass(frozen=True, slots=True)
class PluginSpec:
    """Where one plugin type lives, as import strings (nothing is imported to list it)."""

    type: str
    impl: str  # "module:Class" of the source or connector
    config: str | None = None  # "module:Model"; None: the class's `config_model` attribute
    needs_store: bool = False  # a source that keeps a cursor in the store is handed the store


class SourceConfigBase(BaseModel):
    """What the core reads from every source's configuration; each type adds its own keys."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="Source type (folder, sftp, imap, cart_poll, or one an installed package adds).")
    name: str = Field(description="Unique name of this source; recorded on every message it receives.")
    poll_seconds: PositiveFloat = Field(5.0, description="Seconds between two polls.")
    partner: str | None = Field(None, description="Trading partner every message from this source comes from, if only one.")

    def message_format(self) -> str | None:
        """The format every message from this source has; None: detect it from the content."""
        fmt = getattr(self, "format", None)
        return None if fmt in (None, "auto") else str(fmt)

    def resolve_paths(self, fix: PathFixer) -> None:
        """Make relative paths absolute (against the configuration's home); none by default."""


class BreakerConfig(BaseModel):
    """When to stop calling a target that keeps failing (see "Circuit breaker and rate limit" in the README)."""

    model_config = ConfigDict(extra="forbid")

    failures: PositiveInt = Field(5, description="Transient failures in a row (over every node) that open the breaker.")
    open_seconds: PositiveFloat = Field(60.0, description="Seconds no delivery is sent while open; then one probe delivery decides.")


class TargetConfigBase(BaseModel):
    """What the core reads from every connector's configuration; each type adds its own keys."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="Connector type (http_json, file, or one an installed package adds).")
    name: str = Field(description="Unique name of this connector.")
    payload: Path | None = Field(None, description="Optional JMESPath file shaping the body sent (default: the canonical order).")
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="Retry policy for failed sends.")
    after: list[str] = Field(
        default_factory=list,
        description=(
            "Connectors whose delivery of the same order must be sent before this one is tried "
            "(their receipt references reach the payload as steps.<name>.reference)."
        ),
    )
    breaker: BreakerConfig | None = Field(
        None, description="Circuit breaker: stop sending to a target that keeps failing (`breaker: {}` for the defaults; default: none)."
    )
    rate_per_second: PositiveFloat | None = Field(
        None, description="Most sends per second to this connector from one node (default: no limit)."
    )
    poll_status_minutes: PositiveFloat | None = Field(
        None,
        validation_alias=AliasChoices("poll_status_minutes", "poll_shipments_minutes"),
        description=(
            "Ask this connector every N minutes what became of the orders it took: shipments and invoices from an ERP "
            "(tryton, odoo, erpnext), shipments from a shipping service (shipstation). Old name: poll_shipments_minutes."
        ),
    )

    per_part: bool | None = Field(
        None,
        description=(
            "Send an order the routing split over warehouses as one delivery per part (its lines and its "
            "warehouse, carrier, service and weight); default: yes for a connector that ships (shipstation, "
            "easypost), no for the others (ERPs, CRM, http_json, file)."
        ),
    )

    def resolve_paths(self, fix: PathFixer) -> None:
        """Make relative paths absolute (against the configuration's home)."""
        self.payload = fix(self.payload)

    def sends_parts(self, capabilities: Capabilities) -> bool:
        """Whether this connector gets a split order once per part: `per_part` when set, else
        whether its connector ships (`Capabilities.ships`)."""
        return capabilities.ships if self.per_part is None else self.per_part

    def call_seconds(self) -> float:
        """The longest one send may take (the dispatch lease must be longer); 0: unbounded by config."""
        return 0.0


_BASES: dict[Kind, type[BaseModel]] = {"source": SourceConfigBase, "target": TargetConfigBase}


def _builtins(kind: Kind) -> dict[str, PluginSpec]:
    from connectors import registry

    return registry.SOURCES if kind == "source" else registry.TARGETS


@cache
def _installed(kind: Kind) -> dict[str, PluginSpec]:
    """Types that installed packages declare (read once per process: entry points are slow)."""
    return {ep.name: PluginSpec(ep.name, ep.value) for ep in entry_points(group=ENTRY_POINT_GROUPS[kind])}


def known_types(kind: Kind) -> dict[str, PluginSpec]:
    """Built-in types plus those installed packages declare (built-ins win on a clash)."""
    return {**_installed(kind), **_builtins(kind)}


def lookup(kind: Kind, type_name: str) -> PluginSpec:
    """The spec of one type; ConfigError with a suggestion for an unknown one."""
    spec = _builtins(kind).get(type_name) or _installed(kind).get(type_name)
    if spec is not None:
        return spec
    raise ConfigError(_unknown(kind, type_name))


def _unknown(kind: Kind, type_name: str) -> str:
    types = sorted(known_types(kind))
    hint = difflib.get_close_matches(type_name, types, n=1)
    suggestion = f"did you mean {hint[0]!r}? " if hint else ""
    group = ENTRY_POINT_GROUPS[kind]
    return (
        f"unknown {_NOUN[kind]} type {type_name!r}; {suggestion}known types: {', '.join(types)} "
        f"(installed packages add types through the {group!r} entry points)"
    )


def _load(kind: Kind, type_name: str, target: str) -> Any:
    module_name, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{_NOUN[kind]} type {type_name!r} cannot be loaded from {target}: {exc}") from exc


def plugin_class(kind: Kind, type_name: str) -> type[Any]:
    """The class of a type (imported now, with its dependencies)."""
    cls = _load(kind, type_name, lookup(kind, type_name).impl)
    if not isinstance(cls, type):
        raise ConfigError(f"{_NOUN[kind]} type {type_name!r}: {lookup(kind, type_name).impl} is not a class")
    return cls


def config_model(kind: Kind, type_name: str) -> type[BaseModel]:
    """The configuration model of a type."""
    spec = lookup(kind, type_name)
    model = _load(kind, type_name, spec.config) if spec.config else getattr(plugin_class(kind, type_name), "config_model", None)
    base = _BASES[kind]
    if not (isinstance(model, type) and issubclass(model, base)):
        where = spec.config or f"{spec.impl}.config_model"
        raise ConfigError(f"{_NOUN[kind]} type {type_name!r}: {where} must be a subclass of gateway.plugins.{base.__name__}")
    return model


def build(kind: Kind, cfg: Any, **deps: Any) -> Any:
    """A ready source or connector for one configured item (`cfg.type` names the type).

    `deps` are what the core can hand over (``store=``); a source gets the store only when
    its type needs it.
    """
    type_name = getattr(cfg, "type", None)
    if not isinstance(type_name, str):
        raise ConfigError(f"{_NOUN[kind]} {getattr(cfg, 'name', '?')!r} has no type")
    spec = lookup(kind, type_name)
    cls = plugin_class(kind, type_name)
    if kind == "source" and (spec.needs_store or getattr(cls, "needs_store", False)):
        return cls(cfg, store=deps["store"])
    return cls(cfg)


def validate_configs(kind: Kind, items: Iterable[Any]) -> list[BaseModel]:
    """Validate each item with its own type's model; every problem at once, located by index.

    Raises pydantic's ValidationError (so the configuration loader reports it with file:line
    like any other problem); an unknown or unloadable type is a problem at ``[i].type``.
    """
    return validate_typed(
        items, _BASES[kind], lambda name: config_model(kind, name), noun=_NOUN[kind], known=lambda: known_types(kind), title=f"{kind}s"
    )


def validate_typed(
    items: Iterable[Any],
    base: type[BaseModel],
    model_of: Callable[[str], type[BaseModel]],
    *,
    noun: str,
    known: Callable[[], Iterable[str]],
    title: str,
) -> list[Any]:
    """The one way a list of typed configuration items is validated (sources, connectors,
    rules): each by the model its `type` names (`model_of`, ConfigError for an unknown one),
    every problem collected and raised at once as pydantic's ValidationError."""
    out: list[Any] = []
    errors: list[InitErrorDetails] = []
    for i, item in enumerate(items):
        if isinstance(item, base):
            out.append(item)
            continue
        type_name = item.get("type") if isinstance(item, dict) else None
        if not isinstance(type_name, str):
            errors.append(_error((i,), "missing_type", f"every {noun} needs a 'type' (known types: {', '.join(sorted(known()))})", item))
            continue
        try:
            model = model_of(type_name)
        except ConfigError as exc:
            errors.append(_error((i, "type"), "unknown_type", "; ".join(exc.problems), type_name))
            continue
        try:
            out.append(model.model_validate(item))
        except ValidationError as exc:
            for e in exc.errors():
                errors.append(_error((i, *e["loc"]), e["type"], e["msg"], e["input"]))
    if errors:
        raise ValidationError.from_exception_data(title, errors)
    return out


def _error(loc: tuple[int | str, ...], code: str, message: str, value: Any) -> InitErrorDetails:
    # Braces in a message would be read as format fields by PydanticCustomError.
    return InitErrorDetails(type=PydanticCustomError(code, message.replace("{", "(").replace("}", ")")), loc=loc, input=value)
