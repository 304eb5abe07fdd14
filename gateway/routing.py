"""Routing (issue 10): which warehouse ships an accepted order, split over warehouses when one
cannot fill it, and which carrier and service take each part.

Configured under ``routing:`` in the gateway configuration (validated at start-up, errors with
file:line)::

    routing:
      regions:                       # ship-to "COUNTRY-REGION", else "COUNTRY", else "*"
        US-AK: [WEST]                # warehouses in order of preference
        US: [EAST, WEST]
        "*": [EAST]
      carriers:                      # the first row that matches a part wins
        - {countries: [US], within_days: 2, carrier: UPSN, service: 2DA}
        - {countries: [US], max_weight_kg: 30, carrier: UPSN, service: GND}
        - {carrier: FXFE, service: LTL}

The stock reservation takes each line from the first preferred warehouse that has all of it,
else spreads it over them in that order (gateway.store.masterdata.StockKeeper, ``prefer``);
the warehouses it took stock from are the order's parts. A part's weight is the catalogue's
``weight_kg`` per base unit times the base quantity; ``within_days`` matches an order whose
requested delivery date is at most that many days after it is decided.

The route is plain data, stored with the order and handed to connectors as ``route``::

    {"warehouse": "EAST", "carrier": "UPSN", "service": "GND", "weight_kg": "12.5",
     "parts": [{"part": 1, "warehouse": "EAST", "carrier": "UPSN", "service": "GND",
                "weight_kg": "9", "lines": [{"line": "1", "sku": "W-1", "quantity": "6"}]}, ...]}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["CarrierRule", "PartLine", "Router", "RoutingConfig"]


class CarrierRule(BaseModel):
    """One row of the carrier table: what it matches and the carrier and service it gives."""

    model_config = ConfigDict(extra="forbid")

    carrier: str = Field(min_length=1, max_length=40, description="Carrier code (an X12 SCAC such as UPSN).")
    service: str = Field(min_length=1, max_length=40, description="The carrier's service level (GND, 2DA, LTL, ...).")
    countries: list[str] | None = Field(None, description="Ship-to countries (ISO alpha-2) it takes; unset: any.")
    min_weight_kg: Decimal | None = Field(None, ge=0, description="The part weighs at least this much.")
    max_weight_kg: Decimal | None = Field(None, ge=0, description="The part weighs at most this much.")
    within_days: int | None = Field(None, ge=0, description="The requested delivery date is at most this many days away.")

    @field_validator("countries")
    @classmethod
    def _upper(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [c.strip().upper() for c in value]

    def matches(self, country: str, weight: Decimal, days: int | None) -> bool:
        if self.countries is not None and country not in self.countries:
            return False
        if self.min_weight_kg is not None and weight < self.min_weight_kg:
            return False
        if self.max_weight_kg is not None and weight > self.max_weight_kg:
            return False
        return self.within_days is None or (days is not None and days <= self.within_days)


class RoutingConfig(BaseModel):
    """Where orders ship from and by whom (see gateway.routing)."""

    model_config = ConfigDict(extra="forbid")

    regions: dict[str, Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]] = Field(
        description='Ship-to "COUNTRY-REGION", "COUNTRY" or "*" -> warehouses in order of preference.',
    )
    carriers: list[CarrierRule] = Field(default_factory=list, description="The carrier table; the first matching row wins.")

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for key, warehouses in value.items():
            if len(set(warehouses)) != len(warehouses):
                raise ValueError(f"{key}: a warehouse is listed twice")
            out[key.strip().upper()] = [w.strip() for w in warehouses]
        return out


@dataclass(frozen=True, slots=True)
class PartLine:
    """What one line got from one warehouse (base units)."""

    line: str
    sku: str
    warehouse: str
    quantity: Decimal
    weight_kg: Decimal | None  # per base unit; None: unknown


def _text(value: Decimal) -> str:
    return f"{value.normalize():f}"


class Router:
    def __init__(self, config: RoutingConfig):
        self.config = config

    def warehouses(self, country: str | None, region: str | None) -> tuple[str, ...]:
        """The ship-to's warehouses in order of preference; () when no entry matches (any)."""
        regions = self.config.regions
        c = (country or "").strip().upper()
        r = (region or "").strip().upper()
        for key in (f"{c}-{r}" if c and r else None, c or None, "*"):
            if key is not None and key in regions:
                return tuple(regions[key])
        return ()

    def carrier(self, country: str | None, weight: Decimal, days: int | None) -> tuple[str, str] | None:
        c = (country or "").strip().upper()
        for row in self.config.carriers:
            if row.matches(c, weight, days):
                return row.carrier, row.service
        return None

    def route(self, taken: Sequence[PartLine], *, country: str | None, requested: dt.date | None, today: dt.date) -> dict[str, Any] | None:
        """The route of an order from what its reservation took; None when it took nothing."""
        if not taken:
            return None
        days = (requested - today).days if requested is not None else None
        order: list[str] = []
        by_wh: dict[str, list[PartLine]] = {}
        for pl in taken:
            if pl.warehouse not in by_wh:
                order.append(pl.warehouse)
            by_wh.setdefault(pl.warehouse, []).append(pl)
        parts = []
        total = Decimal(0)
        for n, wh in enumerate(order, 1):
            lines = by_wh[wh]
            weight = sum(((pl.weight_kg or Decimal(0)) * pl.quantity for pl in lines), Decimal(0))
            total += weight
            chosen = self.carrier(country, weight, days)
            parts.append(
                {
                    "part": n, "warehouse": wh, "carrier": chosen[0] if chosen else None, "service": chosen[1] if chosen else None,
                    "weight_kg": _text(weight), "lines": [{"line": pl.line, "sku": pl.sku, "quantity": _text(pl.quantity)} for pl in lines],
                }
            )
        first = parts[0]
        return {"warehouse": first["warehouse"], "carrier": first["carrier"], "service": first["service"], "weight_kg": _text(total), "split": len(parts) > 1, "parts": parts}

    @staticmethod
    def describe(route: dict[str, Any]) -> str:
        """One line for the order's history."""
        parts = "; ".join(
            f"part {p['part']} from {p['warehouse']} by {p['carrier'] or '(no carrier matched)'} {p['service'] or ''}".rstrip()
            + f", {p['weight_kg']} kg, lines {', '.join(x['line'] for x in p['lines'])}"
            for p in route["parts"]
        )
        return f"routed{' (split)' if route['split'] else ''}: {parts}"
