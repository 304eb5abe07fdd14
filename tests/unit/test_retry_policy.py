"""RetryPolicy: full-jitter exponential back-off, bounded by attempts and by age; Retry-After."""

from __future__ import annotations

import datetime as dt
import email.utils

import pytest
from pydantic import ValidationError

from gateway.retry import RetryPolicy, parse_retry_after

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def test_defaults_are_bounded() -> None:
    p = RetryPolicy()
    assert p.max_attempts == 8
    assert p.max_age_seconds == 86_400
    assert p.cap_seconds == 600


@pytest.mark.parametrize(("attempts", "ceiling"), [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (10, 600.0), (60, 600.0)])
def test_ceiling_doubles_and_is_capped(attempts: int, ceiling: float) -> None:
    p = RetryPolicy(base_seconds=2, cap_seconds=600)
    assert p.next_delay(attempts, rand=lambda: 1.0) == pytest.approx(ceiling)
    assert p.next_delay(attempts, rand=lambda: 0.0) == 0.0  # full jitter reaches zero


def test_jitter_spreads_within_the_ceiling() -> None:
    p = RetryPolicy(base_seconds=1, cap_seconds=100)
    values = [p.next_delay(5, rand=lambda v=v: v) for v in (0.1, 0.5, 0.9)]
    assert values == pytest.approx([1.6, 8.0, 14.4])


def test_retry_after_is_a_floor() -> None:
    p = RetryPolicy(base_seconds=1, cap_seconds=600)
    assert p.next_delay(1, retry_after=7, rand=lambda: 0.0) == 7
    # a longer back-off wins over a short Retry-After
    assert p.next_delay(8, retry_after=7, rand=lambda: 1.0) == 128


def test_retry_after_is_capped_by_the_policy() -> None:
    p = RetryPolicy(max_retry_after_seconds=60)
    assert p.next_delay(1, retry_after=86_400, rand=lambda: 0.0) == 60


@pytest.mark.parametrize("value", [0, -5, None])
def test_useless_retry_after_falls_back_to_backoff(value: float | None) -> None:
    p = RetryPolicy(base_seconds=2)
    assert p.next_delay(1, retry_after=value, rand=lambda: 0.5) == 1.0


def test_exhausted_by_attempts() -> None:
    p = RetryPolicy(max_attempts=3)
    assert not p.exhausted(2, NOW, NOW)
    assert p.exhausted(3, NOW, NOW)


def test_exhausted_by_age() -> None:
    p = RetryPolicy(max_attempts=100, max_age_seconds=3600)
    assert not p.exhausted(1, NOW, NOW + dt.timedelta(seconds=3599))
    assert p.exhausted(1, NOW, NOW + dt.timedelta(seconds=3600))


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValidationError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValidationError):
        RetryPolicy(base_seconds=-1)
    with pytest.raises(ValidationError):
        RetryPolicy(max_attemps=3)  # type: ignore[call-arg]


def test_parse_retry_after_seconds() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 120 ") == 120.0


def test_parse_retry_after_http_date() -> None:
    when = email.utils.format_datetime(NOW + dt.timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(when, now=NOW) == pytest.approx(90)


def test_parse_retry_after_date_in_the_past_is_ignored() -> None:
    when = email.utils.format_datetime(NOW - dt.timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(when, now=NOW) is None


@pytest.mark.parametrize("value", [None, "", "soon", "-3", "1.5e3", "Fri, 99 Foo 2026"])
def test_parse_retry_after_garbage_is_ignored(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None
