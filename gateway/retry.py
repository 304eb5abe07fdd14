"""When to try a delivery again: exponential back-off with full jitter, bounded twice.

A delivery is retried while both bounds hold: fewer than `max_attempts` attempts, and the
first attempt less than `max_age_seconds` ago. The wait before attempt n+1 is a random
value in [0, min(cap, base * 2**n)] (full jitter, so a fleet of retries does not stampede
a recovering ERP), but never less than what the server asked for in `Retry-After`
(itself capped by `max_retry_after_seconds`, so a hostile value cannot park an order).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

__all__ = ["RetryPolicy", "parse_retry_after"]


class RetryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: PositiveInt = Field(8, description="Attempts before the delivery is dead-lettered.")
    max_age_seconds: PositiveFloat = Field(
        86_400, description="Dead-letter once the first attempt is older than this, whatever the count."
    )
    base_seconds: PositiveFloat = Field(2.0, description="Back-off for the first retry; doubles each time.")
    cap_seconds: PositiveFloat = Field(600.0, description="Longest back-off between two attempts.")
    max_retry_after_seconds: PositiveFloat = Field(
        3_600, description="Longest wait a server's Retry-After header may impose."
    )

    def next_delay(
        self,
        attempts: int,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait after `attempts` failed attempts (attempts >= 1)."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2.0 ** max(attempts - 1, 0))
        delay: float = rand() * ceiling
        if retry_after is not None and retry_after > 0:
            delay = max(delay, min(retry_after, self.max_retry_after_seconds))
        return delay

    def exhausted(self, attempts: int, first_attempt_at: dt.datetime, now: dt.datetime) -> bool:
        return attempts >= self.max_attempts or (now - first_attempt_at).total_seconds() >= self.max_age_seconds


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    seconds = (when - (now or dt.datetime.now(dt.UTC))).total_seconds()
    return seconds if seconds > 0 else None
