from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field

from gateway.plugins import PathFixer, TargetConfigBase
from gateway.retry import RetryPolicy


class FileTargetConfig(TargetConfigBase):
    """Writes each order as a JSON file into a folder (an ERP import folder, or the demo outbox)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["file"] = "file"
    name: str = Field(description="Unique name of this connector.")
    path: Path = Field(description="Folder the order files are written to (created if missing).")
    payload: Path | None = Field(None, description="Optional JMESPath file shaping the JSON written (default: the canonical order).")
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="Retry policy for failed writes.")

    def resolve_paths(self, fix: PathFixer) -> None:
        super().resolve_paths(fix)
        self.path = fix(self.path) or self.path
