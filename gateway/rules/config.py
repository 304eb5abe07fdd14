"""Configuration of the rules and of the master data they read (the ``masterdata:`` key)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["MasterDataConfig"]


class MasterDataConfig(BaseModel):
    """Where rules read items, prices, stock and accounts from."""

    model_config = ConfigDict(extra="forbid")

    folder: Path | None = Field(
        None,
        description="A folder of CSV files (items.csv, xrefs.csv, prices.csv, stock.csv, accounts.csv, history.csv) read "
        "into memory at start-up: try rules without a database. Without it, the master data in the store.",
    )
