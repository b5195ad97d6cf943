"""Status and type fields are validated in Rust: known values become enum members, others stay strings."""

from __future__ import annotations

import pytest

from atlas_tasks import Step, StepStatus
from atlas_tasks._codec import decode_task


def test_known_values_are_members_and_unknown_ones_strings() -> None:
    task = decode_task(b'{"steps": [{"name": "a", "type": "ai", "status": "success"}, {"status": "warped"}]}')
    assert task.steps[0].status is StepStatus.SUCCESS
    assert task.steps[1].status == "warped"
    assert type(task.steps[1].status) is str
    assert Step(status="running").status is StepStatus.RUNNING


@pytest.mark.parametrize("value", ["3", "null", "[]"])
def test_a_non_string_is_one_clear_error(value: str) -> None:
    with pytest.raises(ValueError, match="expected a string") as caught:
        decode_task(f'{{"steps": [{{"status": {value}}}]}}'.encode())
    assert "(and" not in str(caught.value)
