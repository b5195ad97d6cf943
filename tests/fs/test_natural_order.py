"""list_artifacts' natural order (documents.summaries): the cached keys give exactly the plain key's order."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from atlas_tasks.documents import summaries

_DIGITS = re.compile(r"(\d+)")


def _reference_key(name: str) -> tuple[Any, ...]:
    return tuple(int(part) if i % 2 else part for i, part in enumerate(_DIGITS.split(name)))


def _names(rng: random.Random, n: int) -> list[str]:
    alphabet = "ab.-_09123"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))) for _ in range(n)]


@pytest.mark.parametrize("seed", range(5))
def test_natural_sorted_matches_the_plain_key(seed: int) -> None:
    rng = random.Random(seed)
    names = [*_names(rng, 500), "a1b", "a.1", "a007", "a7", "validation.10.json", "validation.9.json", "x"]
    rng.shuffle(names)
    expected = sorted(names, key=_reference_key)
    assert summaries.natural_sorted(list(names)) == expected
    assert summaries.natural_sorted(list(names)) == expected  # second call: every key cached


def test_key_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(summaries, "_NATURAL_KEYS_CAP", 50)
    monkeypatch.setattr(summaries, "NATURAL_KEYS", {})
    names = [f"r-{i}.txt" for i in range(40, 0, -1)]
    assert summaries.natural_sorted(names) == [f"r-{i}.txt" for i in range(1, 41)]
    more = [f"s-{i}.txt" for i in range(30, 0, -1)]
    assert summaries.natural_sorted(more) == [f"s-{i}.txt" for i in range(1, 31)]
    assert len(summaries.NATURAL_KEYS) <= 50
