"""Template keys of the run guards: `retry` (top level and per step), `deadline_seconds`, `crash_limit`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from atlas_tasks.errors import TemplateError
from atlas_tasks.lifecycle import retries
from atlas_tasks.templates import load_template


def _write(home: Path, doc: dict[str, Any]) -> None:
    (home / "templates").mkdir(parents=True, exist_ok=True)
    (home / "templates" / "guarded.json").write_text(json.dumps(doc), encoding="utf-8")


def test_template_guard_keys_become_task_metadata(tmp_path: Path) -> None:
    """The keys reach the new task: the retry default, deadline_seconds and the crash limit; a step keeps its own."""
    step = {"name": "check", "type": "validation", "commands": ["true"], "retry": {"max_attempts": 4}}
    _write(tmp_path, {"steps": [step], "retry": {"max_attempts": 2}, "deadline_seconds": 600, "crash_limit": 3})
    task = load_template(tmp_path, "guarded").new_task("x")
    assert task.metadata["retry_policy"] == {"max_attempts": 2}
    assert task.metadata["deadline_seconds"] == 600
    assert task.metadata["recovery"]["limit"] == 3
    policy = retries.policy_for(task, task.steps[0])
    assert policy is not None and policy.max_attempts == 4 and policy.source == "step"


@pytest.mark.parametrize(
    ("extra", "step_retry", "word"),
    [
        ({"retry": {"max_attempts": 0}}, None, "max_attempts"),
        ({}, {"backoff": 2}, "unknown key"),
        ({"deadline_seconds": -5}, None, "deadline_seconds"),
        ({"crash_limit": "many"}, None, "crash_limit"),
    ],
)
def test_bad_guard_keys_fail_at_template_load(
    tmp_path: Path, extra: dict[str, Any], step_retry: dict[str, Any] | None, word: str
) -> None:
    """A bad guard key is a TemplateError naming the file and the key, at load time."""
    step: dict[str, Any] = {"name": "check", "type": "validation", "commands": ["true"]}
    if step_retry is not None:
        step["retry"] = step_retry
    _write(tmp_path, {"steps": [step], **extra})
    with pytest.raises(TemplateError, match=word):
        load_template(tmp_path, "guarded")
