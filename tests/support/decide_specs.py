"""Decider specs for decide worker tests (gateway.processing.decide_worker): module-level, so a
spawned worker process can import them."""

from __future__ import annotations

from typing import Any


def unreadable_masterdata() -> tuple[str, Any]:
    """A worker whose master data cannot be read: it dies before it is ready."""
    raise RuntimeError("masterdata folder /nowhere cannot be read")
