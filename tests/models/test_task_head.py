"""The head of a stored task (what update's revision check reads) is read the same by the fast and the exact parser."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic_core import from_json, to_json

from atlas_tasks.documents import head
from atlas_tasks.documents.head import TaskHead
from atlas_tasks.errors import CorruptTaskError, SchemaVersionError

# Values where orjson and pydantic-core part ways: integers beyond 64 bits (a float from orjson), non-finite and
# huge floats (refused by orjson), plus ordinary ones.
_odd = (
    st.integers()
    | st.sampled_from([2**63, 2**64, 2**64 + 1, -(2**63) - 1, 10**40])
    | st.floats()
    | st.text(max_size=8)
    | st.none()
    | st.lists(st.integers(0, 3), max_size=3)
)


def _head_or_error(raw: bytes) -> Any:
    try:
        return TaskHead.parse(raw, "ws", "t", "task.json")
    except (CorruptTaskError, SchemaVersionError) as exc:
        return type(exc)


def _same(fast: Any, exact: Any) -> bool:
    """Equal heads (or errors); a NaN field counts as equal to a NaN field, as both parsers read the same NaN."""
    return bool(fast == exact) or repr(fast) == repr(exact)


def _exact(raw: bytes) -> Any:
    """TaskHead.parse with pydantic-core alone (the parser it used before orjson)."""
    original = head._load
    head._load = lambda data: from_json(data, allow_inf_nan=True)  # type: ignore[assignment]
    try:
        return _head_or_error(raw)
    finally:
        head._load = original


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(fields=st.dictionaries(st.sampled_from(["revision", "status", "transitions", "created_at", "x"]), _odd))
@example(fields={"revision": None, "status": None, "transitions": None, "created_at": float("nan")})
@example(fields={"revision": float("inf")})
def test_fast_head_equals_exact_head(fields: dict[str, Any]) -> None:
    """For any values of the fields the head reads, the fast parse gives the exact parse's head (or error)."""
    raw = to_json(fields, inf_nan_mode="constants")
    assert _same(_head_or_error(raw), _exact(raw))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"revision": 18446744073709551617, "status": "running"}',
        b'{"revision": 3, "schema_version": 18446744073709551617}',
        b'{"revision": NaN}',
        b'{"revision": Infinity}',
        b'{"revision": 2, "metadata": {"x": Infinity}}',
        b'{"revision": 2, "metadata": {"big": 1e400}}',
    ],
)
def test_documents_orjson_misreads_or_refuses(raw: bytes) -> None:
    """Documents orjson reads differently (a big integer) or refuses get the exact parser's head."""
    assert _same(_head_or_error(raw), _exact(raw))


def test_a_revision_of_infinity_is_a_corrupt_task() -> None:
    """A task.json whose revision is Infinity is a CorruptTaskError naming the task, not an OverflowError."""
    with pytest.raises(CorruptTaskError, match="infinity"):
        TaskHead.parse(b'{"revision": Infinity}', "ws", "t", "task.json")
