"""required_fields: what an order must carry, per channel or partner.

``fields`` are dotted paths into the canonical order (``po_number``, ``ship_to``,
``ship_to.postal_code``, ``customer_email``); ``lines.<field>`` is checked on every line.
Unknown paths are configuration errors. Reason code: MISSING_FIELD (default: hold).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, field_validator

from gateway.model import Order, OrderLine
from gateway.rules.base import Finding, Outcome, Rule, RuleConfigBase
from gateway.rules.context import OrderContext

__all__ = ["RequiredFieldsConfig", "RequiredFieldsRule"]


class RequiredFieldsConfig(RuleConfigBase):
    CODES: ClassVar[Mapping[str, Outcome]] = {"MISSING_FIELD": Outcome.HOLD}

    type: Literal["required_fields"] = "required_fields"
    fields: list[str] = Field(
        min_length=1,
        description="Dotted paths that must have a value (ship_to.postal_code; lines.unit_price for every line).",
    )

    @field_validator("fields")
    @classmethod
    def _known_paths(cls, paths: list[str]) -> list[str]:
        for path in paths:
            _check_path(path)
        return paths


def _check_path(path: str) -> None:
    model: Any = Order
    parts = path.split(".")
    if parts[0] == "lines" and len(parts) > 1:
        model, parts = OrderLine, parts[1:]
    for part in parts:
        if (
            not (isinstance(model, type) and issubclass(model, BaseModel))
            or part not in model.model_fields
        ):
            raise ValueError(
                f"{path!r} is not a field of the canonical order (`gateway schema` lists them)"
            )
        ann = model.model_fields[part].annotation
        model = next(
            (
                a
                for a in getattr(ann, "__args__", (ann,))
                if isinstance(a, type) and issubclass(a, BaseModel)
            ),
            None,
        )


def _value(obj: Any, parts: list[str]) -> Any:
    for part in parts:
        if obj is None:
            return None
        obj = getattr(obj, part, None)
    return obj


def _empty(value: Any) -> bool:
    return value is None or (
        isinstance(value, (str, list, dict))
        and not (value.strip() if isinstance(value, str) else value)
    )


class RequiredFieldsRule(Rule):
    config_model = RequiredFieldsConfig

    def check(self, order: Order, ctx: OrderContext) -> Iterable[Finding]:
        cfg = self.config
        assert isinstance(cfg, RequiredFieldsConfig)
        for path in cfg.fields:
            parts = path.split(".")
            if parts[0] == "lines" and len(parts) > 1:
                for rl in ctx.lines:
                    if _empty(_value(rl.line, parts[1:])):
                        yield self.finding(
                            "MISSING_FIELD",
                            f"line {rl.label} has no {'.'.join(parts[1:])}",
                            rl.label,
                            field=path,
                        )
            elif _empty(_value(order, parts)):
                yield self.finding(
                    "MISSING_FIELD",
                    f"the order has no {path} (required for {order.channel.value} orders)",
                    field=path,
                )
