"""The document models: times, durations, lenient enums, key styles and the in-memory transition API."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from atlas_tasks.errors import InvalidTransitionError
from atlas_tasks.models import (
    GO_ZERO_TIME,
    NanoDuration,
    NanoTime,
    Step,
    StepResult,
    StepStatus,
    StepType,
    Task,
    TaskConfig,
    TaskStatus,
    Transition,
    Workspace,
    format_duration,
    format_time,
    parse_duration,
    parse_time,
    utcnow,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def go_task() -> dict[str, object]:
    """A small task document in the Go ATLAS's key spelling."""
    return {
        "id": "task-20251228-100000",
        "workspace_id": "payments",
        "template_id": "bugfix",
        "status": "running",
        "steps": [{"name": "analyze", "type": "ai", "status": "pending", "attempts": 0}],
        "config": {"model": "sonnet"},
    }


# --- times -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "micro", "nano"),
    [
        ("2026-11-24T18:37:51Z", 0, 0),
        ("2026-11-24T18:37:51.5Z", 500000, 0),
        ("2026-11-24T18:37:51.07Z", 70000, 0),
        ("2026-11-24T18:37:51.074Z", 74000, 0),
        ("2026-11-24T18:37:51.0743Z", 74300, 0),
        ("2026-11-24T18:37:51.07434Z", 74340, 0),
        ("2026-11-24T18:37:51.074341Z", 74341, 0),
        ("2026-11-24T18:37:51.0743409Z", 74340, 900),
        ("2026-11-24T18:37:51.07434096Z", 74340, 960),
        ("2026-11-24T18:37:51.074340961Z", 74340, 961),
    ],
)
def test_parse_time_any_fraction_length(text: str, micro: int, nano: int) -> None:
    """RFC 3339 times with 0 to 9 fractional digits parse to aware UTC values keeping every digit."""
    value = parse_time(text)
    assert isinstance(value, NanoTime)
    assert value.utcoffset() == timedelta(0)
    assert (value.microsecond, value.nanosecond) == (micro, nano)
    assert format_time(value) == text


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("2026-03-02T14:05:09.123456789+01:00", timedelta(hours=1)),
        ("2026-03-02T14:05:09-05:30", -timedelta(hours=5, minutes=30)),
    ],
)
def test_parse_time_numeric_offset(text: str, offset: timedelta) -> None:
    """A numeric zone offset is kept and written back as written."""
    value = parse_time(text)
    assert value is not None and value.utcoffset() == offset
    assert format_time(value) == text


def test_zero_time_reads_as_none_and_none_writes_zero_time() -> None:
    """Go's zero time 0001-01-01T00:00:00Z is None in Python, and None is written back as it."""
    assert parse_time(GO_ZERO_TIME) is None
    assert parse_time(datetime(1, 1, 1, tzinfo=UTC)) is None
    assert format_time(None) == GO_ZERO_TIME


def test_zero_time_field_round_trip() -> None:
    """A StepResult whose times are Go zero times holds None and dumps the zero time again."""
    result = StepResult.model_validate({"started_at": GO_ZERO_TIME, "completed_at": GO_ZERO_TIME})
    assert result.started_at is None and result.completed_at is None
    assert result.model_dump(mode="json")["started_at"] == GO_ZERO_TIME


def test_naive_datetime_rejected_on_validation() -> None:
    """A naive datetime given to a time field is a validation error."""
    with pytest.raises(ValidationError, match="timezone-aware"):
        Task(created_at=datetime(2026, 1, 1))


def test_naive_datetime_rejected_on_format() -> None:
    """A naive datetime assigned after validation cannot be written."""
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-24T18:37:51",  # no zone
        "2026-11-24 18:37:51Z",  # space separator
        "2026-11-24T18:37Z",  # no seconds
        "2026-11-24T18:37:51.Z",  # empty fraction
        "2026-11-24T18:37:51,5Z",  # comma
        "2026-11-24T18:37:51.0743409612Z",  # 10 digits
        "2026-W48-2T18:37:51Z",  # week date
        "20261124T183751Z",  # basic format
        "2026-13-24T18:37:51Z",  # month 13
        "2026-11-24T18:37:51+0100",  # offset without colon
        "",
    ],
)
def test_parse_time_rejects_non_rfc3339(text: str) -> None:
    """Strings that are not RFC 3339 date-times with seconds and a zone are refused."""
    with pytest.raises(ValueError, match="time"):
        parse_time(text)


def test_parse_time_accepts_lowercase_separators() -> None:
    """RFC 3339 allows lower-case t and z; they parse and are written in Go's upper case."""
    value = parse_time("2026-11-24t18:37:51.5z")
    assert format_time(value) == "2026-11-24T18:37:51.5Z"


def test_non_canonical_text_is_written_canonically() -> None:
    """Trailing fraction zeros and +00:00 are written as Go writes them (trimmed, Z)."""
    assert format_time(parse_time("2026-11-24T18:37:51.500+00:00")) == "2026-11-24T18:37:51.5Z"


def test_parse_time_rejects_other_types() -> None:
    """Numbers and other non-time values are refused."""
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_time(1700000000)


def test_format_time_refuses_sub_minute_offset() -> None:
    """An offset with seconds cannot be written in RFC 3339 without moving the instant, so it is refused."""
    odd = datetime(2026, 1, 1, tzinfo=timezone(timedelta(minutes=5, seconds=30)))
    with pytest.raises(ValueError, match="whole number of minutes"):
        format_time(odd)


def test_format_time_plain_datetime_trims_zeros() -> None:
    """A datetime made in Python is written with its fraction trimmed and Z for UTC."""
    assert format_time(datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC)) == "2026-01-02T03:04:05.12Z"
    assert format_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-8)))) == (
        "2026-01-02T03:04:05-08:00"
    )


def test_nanotime_survives_pickle_and_deepcopy() -> None:
    """Pickling and deep-copying a NanoTime keep its nanoseconds."""
    value = NanoTime.from_datetime(T0, 123)
    for clone in (pickle.loads(pickle.dumps(value)), copy.deepcopy(value), copy.copy(value)):
        assert isinstance(clone, NanoTime)
        assert clone == value and clone.nanosecond == 123


def test_nanotime_astimezone_keeps_nanoseconds() -> None:
    """Converting a NanoTime to another zone is the same instant and keeps its nanoseconds."""
    moved = NanoTime.from_datetime(T0, 7).astimezone(timezone(timedelta(hours=2)))
    assert moved == T0 and moved.nanosecond == 7
    assert format_time(moved) == "2026-01-02T05:04:05.000000007+02:00"


def test_nanotime_behaves_as_datetime() -> None:
    """Arithmetic and comparison are datetime's, at microsecond precision."""
    value = NanoTime.from_datetime(T0, 500)
    assert value == T0 and hash(value) == hash(T0)
    later: datetime = value + timedelta(seconds=1)
    assert later - T0 == timedelta(seconds=1)
    assert getattr(later, "nanosecond", 0) == 0
    assert "nanosecond=500" in repr(value)


def test_nanotime_rejects_out_of_range_nanoseconds() -> None:
    """Sub-microsecond nanoseconds must be 0-999."""
    with pytest.raises(ValueError, match=r"0\.\.999"):
        NanoTime.from_datetime(T0, 1000)


def test_utcnow_is_aware_utc() -> None:
    """utcnow returns an aware datetime in UTC."""
    assert utcnow().utcoffset() == timedelta(0)


# --- durations ---------------------------------------------------------------------------------------------------


def test_timeout_reads_integer_nanoseconds() -> None:
    """config.timeout 1800000000000 (Go's 30m) is timedelta(minutes=30)."""
    assert TaskConfig.model_validate({"timeout": 1_800_000_000_000}).timeout == timedelta(minutes=30)


@pytest.mark.parametrize("nanos", [1, 999, 1_800_000_000_001, -1_500, 10**15 + 7])
def test_timeout_round_trips_to_the_nanosecond(nanos: int) -> None:
    """Any integer nanoseconds survive parse and format exactly, including sub-microsecond parts."""
    value = parse_duration(nanos)
    assert format_duration(value) == nanos
    assert TaskConfig(timeout=value).model_dump(mode="json")["timeout"] == nanos


def test_timeout_accepts_timedelta_and_writes_nanoseconds() -> None:
    """A timedelta set in Python is written as Go's integer nanoseconds."""
    assert TaskConfig(timeout=timedelta(seconds=90)).model_dump(mode="json")["timeout"] == 90_000_000_000


@pytest.mark.parametrize("bad", [1.5, "30m", True])
def test_timeout_rejects_non_integers(bad: object) -> None:
    """Floats, strings and booleans are not Go durations."""
    with pytest.raises(ValidationError):
        TaskConfig.model_validate({"timeout": bad})


def test_nanoduration_pickles_and_counts_as_non_zero() -> None:
    """A NanoDuration keeps its nanoseconds through pickle, and 5ns is truthy (Go would write it)."""
    value = parse_duration(5)
    assert isinstance(value, NanoDuration) and value
    clone = pickle.loads(pickle.dumps(value))
    assert format_duration(clone) == 5 and format_duration(copy.deepcopy(value)) == 5


# --- enums and lenient strings -----------------------------------------------------------------------------------


def test_known_step_values_become_enum_members() -> None:
    """Known step types and statuses are StepType/StepStatus members."""
    step = Step.model_validate({"name": "x", "type": "verify", "status": "no_changes"})
    assert step.type is StepType.VERIFY and step.status is StepStatus.NO_CHANGES


def test_unknown_step_values_are_kept_as_strings() -> None:
    """A step type or status this version does not know stays the raw string and is written back."""
    step = Step.model_validate({"name": "x", "type": "ci_matrix", "status": "retrying"})
    assert (step.type, step.status) == ("ci_matrix", "retrying")
    assert type(step.type) is str
    assert step.model_dump(mode="json")["type"] == "ci_matrix"


def test_unknown_result_and_transition_statuses_are_kept() -> None:
    """StepResult.status and transition statuses also accept values this version does not know."""
    assert StepResult(status="partial").status == "partial"
    assert Transition(from_status="running", to_status="paused").to_status == "paused"


def test_lenient_fields_reject_non_strings() -> None:
    """A number where a status string belongs is still an error."""
    with pytest.raises(ValidationError):
        Step.model_validate({"status": 3})


def test_task_status_must_be_known() -> None:
    """Task.status is a TaskStatus: an unknown value is a validation error."""
    with pytest.raises(ValidationError):
        Task.model_validate({"status": "paused"})


def test_defaults_are_go_zero_values() -> None:
    """Missing keys get Go's zero values (and the story's defaults for status and versions)."""
    task = Task()
    assert (task.id, task.status, task.steps, task.created_at, task.schema_version) == (
        "",
        TaskStatus.PENDING,
        [],
        None,
        "1.0",
    )
    assert (Step().type, Step().status, Workspace().schema_version) == ("", StepStatus.PENDING, 1)


def test_null_lists_and_maps_read_as_empty() -> None:
    """JSON null where Go has a nil slice or map reads as empty."""
    task = Task.model_validate({"steps": None, "metadata": None, "config": None, "running_processes": None})
    assert (task.steps, task.metadata, task.config, task.running_processes) == ([], {}, TaskConfig(), [])
    assert Workspace.model_validate({"tasks": None}).tasks == []


def test_int_schema_version_is_read_as_text() -> None:
    """A task schema_version written as a number is read as its text."""
    assert Task.model_validate({"schema_version": 1}).schema_version == "1"


def test_model_dump_returns_every_field() -> None:
    """model_dump (Python mode) lists every declared field, empty ones included, in the story's names."""
    dumped = Task().model_dump()
    assert list(dumped)[:4] == ["id", "workspace_name", "template", "description"]
    assert dumped["step_results"] == [] and dumped["completed_at"] is None


# --- key styles ----------------------------------------------------------------------------------------------------


def test_go_keys_are_read_into_story_fields() -> None:
    """workspace_id/template_id fill workspace_name/template, and config.model fills model."""
    task = Task.model_validate(go_task())
    assert (task.workspace_name, task.template, task.model) == ("payments", "bugfix", "sonnet")
    assert task.key_style == "go"
    assert task.model_extra == {}


def test_go_style_keeps_explicit_top_level_model() -> None:
    """A Go-style document that also has a top-level model keeps that value."""
    task = Task.model_validate({**go_task(), "model": "opus"})
    assert task.model == "opus" and task.config.model == "sonnet"


def test_story_keys_give_story_style() -> None:
    """workspace_name/template documents, and tasks built in Python, are story style."""
    assert Task.model_validate({"workspace_name": "w", "template": "t"}).key_style == "story"
    assert Task(workspace_name="w").key_style == "story"


def test_both_spellings_prefer_story_and_keep_the_other() -> None:
    """A document with both spellings is story style and keeps the Go key as an unknown key."""
    task = Task.model_validate({"workspace_name": "a", "workspace_id": "b"})
    assert task.key_style == "story" and task.workspace_name == "a"
    assert task.model_extra == {"workspace_id": "b"}


def test_key_style_is_read_only() -> None:
    """key_style cannot be assigned; with_key_style returns a restyled copy instead."""
    task = Task()
    with pytest.raises(AttributeError):
        task.key_style = "go"  # type: ignore[misc, unused-ignore]
    restyled = task.with_key_style("go")
    assert restyled.key_style == "go" and task.key_style == "story"


def test_model_copy_keeps_key_style() -> None:
    """model_copy, with or without update, keeps the key style of a Go task."""
    task = Task.model_validate(go_task())
    assert task.model_copy().key_style == "go"
    assert task.model_copy(update={"description": "x"}).key_style == "go"
    assert task.model_copy(deep=True).key_style == "go"


def test_pickle_keeps_key_style() -> None:
    """A pickled Go task comes back in Go style."""
    assert pickle.loads(pickle.dumps(Task.model_validate(go_task()))).key_style == "go"


def test_unknown_keys_kept_in_model_extra() -> None:
    """Keys the model does not declare are kept, at the top level and in nested models."""
    doc = go_task()
    doc["future_field"] = {"x": 1}
    doc["steps"][0]["hint"] = "y"  # type: ignore[index]
    task = Task.model_validate(doc)
    assert task.model_extra == {"future_field": {"x": 1}}
    assert task.steps[0].model_extra == {"hint": "y"}


# --- Task.transition and helpers ----------------------------------------------------------------------------------


def test_transition_records_and_applies() -> None:
    """transition() appends the record, sets status and updated_at, and returns the record."""
    task = Task(id="t-1", status=TaskStatus.RUNNING)
    record = task.transition("validating", "checks", now=T0)
    assert task.transitions == [record]
    assert (record.from_status, record.to_status, record.timestamp, record.reason) == (
        TaskStatus.RUNNING,
        TaskStatus.VALIDATING,
        T0,
        "checks",
    )
    assert task.status is TaskStatus.VALIDATING and task.updated_at == T0
    assert task.completed_at is None


@pytest.mark.parametrize(
    ("start", "end"),
    [("awaiting_approval", "completed"), ("awaiting_approval", "rejected"), ("running", "abandoned")],
)
def test_transition_to_terminal_sets_completed_at(start: str, end: str) -> None:
    """Entering completed, rejected or abandoned sets completed_at to the transition time."""
    task = Task(status=TaskStatus(start))
    task.transition(end, now=T0)
    assert task.completed_at == T0 and task.is_terminal


def test_transition_defaults_to_now_utc() -> None:
    """Without now, the transition is stamped with the current UTC time."""
    before = utcnow()
    record = Task().transition(TaskStatus.RUNNING)
    assert record.timestamp is not None and before <= record.timestamp <= utcnow()


def test_invalid_transition_leaves_task_unchanged() -> None:
    """A refused move raises InvalidTransitionError and changes nothing."""
    task = Task(id="t-2", status=TaskStatus.COMPLETED)
    before = task.model_copy(deep=True)
    with pytest.raises(InvalidTransitionError):
        task.transition("running", now=T0)
    assert task == before


def test_transition_to_unknown_status_is_refused() -> None:
    """A status name that does not exist is an invalid transition, not a crash."""
    with pytest.raises(InvalidTransitionError):
        Task(status=TaskStatus.RUNNING).transition("paused")


def test_transition_with_naive_now_leaves_task_unchanged() -> None:
    """A naive now is refused before anything changes."""
    task = Task(status=TaskStatus.PENDING)
    with pytest.raises(ValueError, match="timezone-aware"):
        task.transition("running", now=datetime(2026, 1, 1))
    assert task.status is TaskStatus.PENDING and task.transitions == []


def test_current_step() -> None:
    """current is the step at current_step, or None past the end."""
    task = Task(steps=[Step(name="a"), Step(name="b")], current_step=1)
    assert task.current is not None and task.current.name == "b"
    task.current_step = 2
    assert task.current is None
