"""Rule types by name: the built-ins, then those installed packages add.

Like connectors (gateway.plugins), built-ins are listed as ``"module:Class"`` strings and
imported only when a configuration names them. A package adds a rule type through the
``order_gateway.rules`` entry-point group; the entry point names the rule class, whose
``config_model`` is its configuration (a subclass of :class:`gateway.rules.base.RuleConfigBase`
whose ``type`` is a ``Literal`` of the name)::

    [project.entry-points."order_gateway.rules"]
    embargo = "acme_rules.embargo:EmbargoRule"

An unknown type is a configuration error with a "did you mean"; a built-in wins on a clash.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from gateway.errors import ConfigError
from gateway.rules.base import Rule, RuleConfigBase

__all__ = [
    "BUILTINS",
    "ENTRY_POINT_GROUP",
    "build_rules",
    "known_types",
    "rule_class",
    "validate_rule_configs",
]

ENTRY_POINT_GROUP = "order_gateway.rules"

BUILTINS: dict[str, str] = {
    "required_fields": "gateway.rules.builtin.required_fields:RequiredFieldsRule",
    "address": "gateway.rules.builtin.address:AddressRule",
    "catalogue": "gateway.rules.builtin.catalogue:CatalogueRule",
    "price": "gateway.rules.builtin.price:PriceRule",
    "payment": "gateway.rules.builtin.payment:PaymentRule",
    "credit": "gateway.rules.builtin.credit:CreditRule",
    "risk": "gateway.rules.builtin.risk:RiskRule",
    "duplicates": "gateway.rules.builtin.duplicates:DuplicatesRule",
    "stock": "gateway.rules.builtin.stock:StockRule",
    "expression": "gateway.rules.builtin.expression:ExpressionRule",
}


@cache
def _installed() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known_types() -> dict[str, str]:
    return {**_installed(), **BUILTINS}


def rule_class(type_name: str) -> type[Rule]:
    target = BUILTINS.get(type_name) or _installed().get(type_name)
    if target is None:
        types = sorted(known_types())
        hint = difflib.get_close_matches(type_name, types, n=1)
        raise ConfigError(
            f"unknown rule type {type_name!r}; {f'did you mean {hint[0]!r}? ' if hint else ''}known types: {', '.join(types)} "
            f"(installed packages add types through the {ENTRY_POINT_GROUP!r} entry points)"
        )
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"rule type {type_name!r} cannot be loaded from {target}: {exc}") from exc
    if not (
        isinstance(cls, type)
        and issubclass(cls, Rule)
        and issubclass(cls.config_model, RuleConfigBase)
    ):
        raise ConfigError(
            f"rule type {type_name!r}: {target} must be a gateway.rules.Rule with a config_model"
        )
    return cls


def validate_rule_configs(items: Iterable[Any]) -> list[RuleConfigBase]:
    """Each item validated by its own type's model; every problem at once, located by index
    (pydantic's ValidationError, so the configuration loader adds file:line)."""
    from gateway.plugins import validate_typed

    return validate_typed(
        items, RuleConfigBase, lambda name: rule_class(name).config_model, noun="rule", known=known_types, title="rules"
    )


def build_rules(configs: Iterable[RuleConfigBase]) -> list[Rule]:
    return [rule_class(c.type)(c) for c in configs]
