"""Hypothesis strategies for the document models: times, steps, results, transitions, tasks and workspaces.

Every generated model survives an encode/decode round trip unchanged: values Go would omit when empty (a zero
duration, the zero time) are generated either as their empty form or as a non-empty value, never as an empty value
of another type (``timedelta(0)`` reads back as ``None``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from atlas_tasks.models import (
    ApprovalOption,
    KeyStyle,
    NanoTime,
    Step,
    StepResult,
    StepStatus,
    StepType,
    Task,
    TaskConfig,
    TaskRef,
    TaskStatus,
    Transition,
    Workspace,
    WorkspaceStatus,
    parse_duration,
)

# Characters Go escapes or JSON must escape, mixed into generated text so that encoding is exercised.
_TRICKY = '<>&\u2028\u2029"\\\n\t\x00é→😀'

#: Any text JSON can carry (no lone surrogates), biased towards characters that need escaping.
texts = st.text(st.characters(codec="utf-8") | st.sampled_from(_TRICKY), max_size=24)
#: Short identifier-like names (step names, ids, keys).
names = st.from_regex(r"[a-z][a-z0-9_-]{0,15}", fullmatch=True)

_LIMITS = (datetime(1970, 1, 1), datetime(2100, 12, 31))


def zones() -> st.SearchStrategy[timezone]:
    """UTC (often) or a fixed offset in whole minutes, as RFC 3339 can write it."""
    offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
    return st.one_of(st.just(UTC), offsets)


def aware_datetimes() -> st.SearchStrategy[datetime]:
    """Aware datetimes with microseconds, sometimes a :class:`NanoTime` with extra nanoseconds."""
    plain = st.datetimes(min_value=_LIMITS[0], max_value=_LIMITS[1], timezones=zones())
    nano = st.builds(NanoTime.from_datetime, plain, st.integers(1, 999))
    return st.one_of(plain, nano)


optional_datetimes = st.none() | aware_datetimes()


def json_values() -> st.SearchStrategy[Any]:
    """JSON values as the JSON decoder returns them (ints within int64, finite floats, nested lists and objects)."""
    leaves = (
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**63 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | texts
    )
    return st.recursive(
        leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3), max_leaves=8
    )


def _lenient(enum: type[StepType] | type[StepStatus] | type[TaskStatus]) -> st.SearchStrategy[str]:
    # Known members usually, now and then a value a newer Go might write.
    return st.one_of(st.sampled_from(list(enum)), names)


def durations() -> st.SearchStrategy[timedelta | None]:
    """``None`` or a non-zero Go duration (any int64-range nanoseconds, so sometimes a NanoDuration)."""
    non_zero = st.integers(-(10**15), 10**15).filter(bool).map(parse_duration)
    return st.none() | non_zero


def task_configs() -> st.SearchStrategy[TaskConfig]:
    """Task configurations with any mix of empty and set fields."""
    return st.builds(
        TaskConfig,
        agent=st.sampled_from(["", "claude", "gemini", "codex"]),
        model=st.sampled_from(["", "opus", "sonnet", "gpt-5-codex"]),
        max_turns=st.integers(0, 500),
        timeout=durations(),
        permission_mode=st.sampled_from(["", "acceptEdits", "plan"]),
        validation_commands=st.lists(texts, max_size=3),
        variables=st.dictionaries(names, texts, max_size=3),
    )


def steps() -> st.SearchStrategy[Step]:
    """Steps of any type and status (including values this library does not know)."""
    return st.builds(
        Step,
        name=names,
        type=_lenient(StepType),
        description=texts,
        prompt=texts,
        commands=st.lists(texts, max_size=3),
        timeout_seconds=st.integers(0, 86400),
        status=_lenient(StepStatus),
        started_at=optional_datetimes,
        completed_at=optional_datetimes,
        error=texts,
        attempts=st.integers(0, 20),
    )


def step_results() -> st.SearchStrategy[StepResult]:
    """Step results, HEAD-only fields (session, turns, metadata, approval options) included."""
    options = st.builds(ApprovalOption, key=names, label=texts, description=texts, recommended=st.booleans())
    return st.builds(
        StepResult,
        step_index=st.integers(0, 20),
        step_name=names,
        status=_lenient(StepStatus),
        started_at=optional_datetimes,
        completed_at=optional_datetimes,
        duration_ms=st.integers(0, 10**9),
        output=texts,
        error=texts,
        files_changed=st.lists(texts, max_size=3),
        artifact_path=texts,
        session_id=texts,
        num_turns=st.integers(0, 100),
        metadata=st.dictionaries(texts, json_values(), max_size=3),
        approval_options=st.lists(options, max_size=2),
    )


def transitions() -> st.SearchStrategy[Transition]:
    """Transition records (not necessarily valid edges: they test the document, not the state machine)."""
    return st.builds(
        Transition,
        from_status=_lenient(TaskStatus),
        to_status=_lenient(TaskStatus),
        timestamp=optional_datetimes,
        reason=texts,
    )


def extra_keys() -> st.SearchStrategy[dict[str, Any]]:
    """Keys a model does not declare (a newer writer's fields); prefixed so they never clash with a field."""
    return st.dictionaries(st.from_regex(r"x_[a-z]{1,8}", fullmatch=True), json_values(), max_size=2)


@st.composite
def tasks(draw: st.DrawFn, key_style: KeyStyle | None = None) -> Task:
    """Whole tasks, in either key style (or the given one), with unknown keys at the top level.

    In Go style ``config.model`` equals ``model``: Go has one slot for the model, so other combinations cannot
    survive a round trip.
    """
    task = Task(
        id=draw(names),
        workspace_name=draw(names),
        template=draw(names),
        description=draw(texts),
        status=draw(st.sampled_from(list(TaskStatus))),
        steps=(drawn_steps := draw(st.lists(steps(), max_size=4))),
        current_step=draw(st.integers(0, len(drawn_steps))),  # 0..len(steps): the range a store accepts
        step_results=draw(st.lists(step_results(), max_size=3)),
        transitions=draw(st.lists(transitions(), max_size=4)),
        model=draw(st.sampled_from(["", "opus", "sonnet"])),
        created_at=draw(optional_datetimes),
        updated_at=draw(optional_datetimes),
        completed_at=draw(optional_datetimes),
        config=draw(task_configs()),
        metadata=draw(st.dictionaries(texts, json_values(), max_size=3)),
        running_processes=draw(st.lists(st.integers(1, 2**22), max_size=3)),
        revision=draw(st.integers(0, 10**6)),
        **draw(extra_keys()),
    )
    style = key_style or draw(st.sampled_from(["story", "go"]))
    if style == "go":
        task.config.model = task.model
        task = task.with_key_style("go")
    return task


def task_refs() -> st.SearchStrategy[TaskRef]:
    """Workspace entries for tasks."""
    return st.builds(
        TaskRef,
        id=names,
        status=_lenient(TaskStatus),
        started_at=optional_datetimes,
        completed_at=optional_datetimes,
    )


def workspaces() -> st.SearchStrategy[Workspace]:
    """Whole workspaces."""
    return st.builds(
        Workspace,
        name=names,
        path=texts,
        worktree_path=texts,
        branch=texts,
        status=st.sampled_from(list(WorkspaceStatus)),
        tasks=st.lists(task_refs(), max_size=3),
        created_at=optional_datetimes,
        updated_at=optional_datetimes,
        repo_path=texts,
        metadata=st.dictionaries(texts, json_values(), max_size=3),
    )


__all__ = [
    "aware_datetimes",
    "durations",
    "extra_keys",
    "json_values",
    "names",
    "optional_datetimes",
    "step_results",
    "steps",
    "task_configs",
    "task_refs",
    "tasks",
    "texts",
    "transitions",
    "workspaces",
    "zones",
]
