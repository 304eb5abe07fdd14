from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, PositiveFloat, PositiveInt

from gateway.plugins import PathFixer, SourceConfigBase


class FolderSourceConfig(SourceConfigBase):
    """A local drop folder (or a mounted SFTP/SMB share) polled for order files."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["folder"] = "folder"
    name: str = Field(description="Unique name of this source; recorded on every message it receives.")
    path: Path = Field(description="The inbox folder partners drop files into.")
    archive: Path | None = Field(None, description="Where stored files move to (default: <path>/../archive).")
    failed: Path | None = Field(None, description="Where refused files move to (default: <path>/../failed).")
    poll_seconds: PositiveFloat = Field(0.5, description="Seconds between two looks at the inbox (a file is taken once it stayed unchanged for stable_seconds).")
    stable_seconds: float = Field(
        1.0, ge=0, description="A file is claimed only after its size and mtime stayed the same this long."
    )
    done_suffix: str | None = Field(
        None, description="If set (e.g. '.done'), a file is claimed only once FILE+suffix exists; the marker is removed with it."
    )
    max_bytes: PositiveInt = Field(50_000_000, description="Larger files are refused without reading them.")
    pattern: str = Field("*", description="Glob of file names to pick up (e.g. '*.edi'); others are left alone.")
    format: Literal["auto", "x12"] = Field("auto", description="Input format; 'auto' detects it from the content.")
    partner: str | None = Field(None, description="Trading partner every file in this folder comes from, if only one.")

    def resolve_paths(self, fix: PathFixer) -> None:
        self.path = fix(self.path) or self.path
        self.archive = fix(self.archive) or self.path.parent / "archive"
        self.failed = fix(self.failed) or self.path.parent / "failed"
