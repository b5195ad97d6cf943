"""The parsed-time cache: the same values as a fresh parse, errors never cached, bounded."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from atlas_tasks import models
from atlas_tasks.models import NanoTime, format_time, parse_time


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-02T03:04:05.123456789Z",
        "2026-01-02T03:04:05Z",
        "2026-01-02t03:04:05.5z",
        "2026-01-02T03:04:05.100+02:00",
        "0001-01-01T00:00:00Z",
    ],
)
def test_cached_parse_equals_a_fresh_one(text: str) -> None:
    fresh = models._parse_rfc3339_text(text)
    first, second = parse_time(text), parse_time(text)
    assert first == fresh and second == fresh and type(second) is type(fresh)
    if isinstance(fresh, NanoTime):
        assert isinstance(second, NanoTime)
        assert (second.nanosecond, format_time(second)) == (fresh.nanosecond, format_time(fresh))


@pytest.mark.parametrize("text", ["2026-13-02T03:04:05Z", "2026-01-02 03:04:05Z", "2026-01-02T03:04:05"])
def test_invalid_times_raise_every_time(text: str) -> None:
    for _ in range(2):
        with pytest.raises(ValueError, match="time"):
            parse_time(text)
    assert text not in models._PARSED_TIMES


def test_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_PARSED_TIMES", {})
    monkeypatch.setattr(models, "_PARSED_TIMES_CAP", 10)
    for second in range(30):
        assert parse_time(f"2026-01-02T03:04:{second:02d}Z") == datetime(2026, 1, 2, 3, 4, second, tzinfo=UTC)
    assert len(models._PARSED_TIMES) <= 10
