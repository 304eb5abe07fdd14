from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, NonNegativeFloat, PositiveInt

from gateway.plugins import TargetConfigBase
from gateway.retry import RetryPolicy


class MemoryTargetConfig(TargetConfigBase):
    """Keeps each order in memory, with fault knobs: a target for tests, demos and dry runs."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["memory"] = "memory"
    name: str = Field(description="Unique name of this connector.")
    fail_every: PositiveInt | None = Field(
        None, description="Every Nth send (counting every attempt) fails with a transient error; unset: never."
    )
    transient_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="Share of sends (0..1) that fail with a transient error, drawn from `seed`."
    )
    seed: int = Field(0, description="Seed of the random draws for transient_rate, so a run can be repeated.")
    permanent_po_numbers: list[str] = Field(
        default_factory=list, description="Orders with these PO numbers are refused with a permanent error."
    )
    delay_seconds: NonNegativeFloat = Field(0.0, description="Seconds each send takes (a slow target).")
    payload: Path | None = Field(None, description="Optional JMESPath file shaping what is kept (default: the canonical order).")
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="Retry policy for transient failures.")
