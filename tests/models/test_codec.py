"""JSON encoding and decoding: Go byte compatibility, omitempty, unknown keys, schema versions and errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atlas_tasks import _codec
from atlas_tasks._codec import (
    SCHEMA_VERSION,
    WORKSPACE_SCHEMA_VERSION,
    decode_task,
    decode_workspace,
    encode_task,
    encode_workspace,
)
from atlas_tasks.errors import SchemaVersionError
from atlas_tasks.models import (
    GO_ZERO_TIME,
    NanoTime,
    Step,
    StepResult,
    Task,
    TaskConfig,
    TaskRef,
    TaskStatus,
    Workspace,
    format_time,
    parse_time,
)
from atlas_tasks.testing import strategies

GO = Path(__file__).parent.parent / "fixtures" / "go"
TASK_FILES = sorted(GO.rglob("task.json"))
WORKSPACE_FILES = sorted(GO.rglob("workspace.json"))
NULL_STEPS = GO / "story-home/workspaces/payments/tasks/task-20251229-090000/task.json"
STORY_COMPLETED = GO / "story-home/workspaces/payments/tasks/task-20251228-100000/task.json"
HEAD_AWAITING = GO / "head-home/workspaces/api/tasks/task-b7e4a2d9-1c3f-4a8e-9b5d-2e7f6c0d8a41/task.json"
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _id(path: Path) -> str:
    return str(path.relative_to(GO).parent)


# --- Go byte compatibility -----------------------------------------------------------------------------------------


def test_fixtures_are_present() -> None:
    """The Go fixture homes hold five tasks and two workspaces."""
    assert len(TASK_FILES) == 5 and len(WORKSPACE_FILES) == 2


@pytest.mark.parametrize("path", [p for p in TASK_FILES if p != NULL_STEPS], ids=_id)
def test_go_task_round_trip_is_byte_identical(path: Path) -> None:
    """A Go-written task.json decoded and re-encoded unchanged gives back exactly the same bytes."""
    raw = path.read_bytes()
    assert encode_task(decode_task(raw, path=str(path))) == raw


@pytest.mark.parametrize("path", WORKSPACE_FILES, ids=_id)
def test_go_workspace_round_trip_is_byte_identical(path: Path) -> None:
    """A Go-written workspace.json decoded and re-encoded unchanged gives back exactly the same bytes."""
    raw = path.read_bytes()
    assert encode_workspace(decode_workspace(raw, path=str(path))) == raw


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [text for item in items for text in _strings(item)]


def test_go_times_format_identically_without_the_parse_cache() -> None:
    """Every time in the fixtures is written back to Go's text by formatting alone (not only via the kept text)."""
    times = {
        text
        for path in [*TASK_FILES, *WORKSPACE_FILES]
        for text in _strings(json.loads(path.read_bytes()))
        if len(text) >= 20 and text[4] == "-" and text[10] == "T"
    }
    assert len(times) > 40
    for text in times:
        parsed = parse_time(text)
        if parsed is None:
            assert text == GO_ZERO_TIME
            continue
        fresh = NanoTime.from_datetime(parsed, getattr(parsed, "nanosecond", 0))  # no remembered text
        assert format_time(fresh) == text


def test_null_steps_come_back_as_empty_list() -> None:
    """The one intended difference: Go's "steps": null is written back as [] and nothing else changes."""
    raw = NULL_STEPS.read_bytes()
    assert encode_task(decode_task(raw)) == raw.replace(b'"steps": null', b'"steps": []')


def test_go_round_trip_keeps_nanoseconds_escapes_and_raw_utf8() -> None:
    """The fixtures exercise 9/8/7-digit times, \\u003c escapes and raw non-ASCII, and all come back."""
    raw = STORY_COMPLETED.read_bytes() + HEAD_AWAITING.read_bytes()
    for needle in (b".512345678Z", b".87654321Z", b".0743409Z", b"\\u003c", b"\\u0026", "→".encode()):
        assert needle in raw
    out = encode_task(decode_task(STORY_COMPLETED.read_bytes())) + encode_task(decode_task(HEAD_AWAITING.read_bytes()))
    assert out == raw


def test_go_style_update_keeps_go_names() -> None:
    """A Go task changed in Python is written with workspace_id/template_id, no top-level model, model in config."""
    task = decode_task(STORY_COMPLETED.read_bytes())
    task.description = "edited"
    task.model = "opus"
    doc = json.loads(encode_task(task))
    keys = list(doc)
    assert keys[:4] == ["id", "workspace_id", "template_id", "description"]
    assert "workspace_name" not in doc and "template" not in doc and "model" not in doc
    assert doc["config"]["model"] == "opus"
    assert list(doc["config"])[:2] == ["model", "max_turns"]  # config.model keeps its position


def test_go_style_model_cleared_keeps_config_model() -> None:
    """Clearing task.model on a Go task leaves config.model as it was (Go has only that slot)."""
    task = decode_task(STORY_COMPLETED.read_bytes())
    task.model = ""
    assert json.loads(encode_task(task))["config"]["model"] == "claude-sonnet-4-5"


def test_go_style_change_reads_back() -> None:
    """A modified Go task reads back equal to what was written."""
    task = decode_task(HEAD_AWAITING.read_bytes())
    task.transition("completed", "approved", now=T0)
    again = decode_task(encode_task(task))
    assert again == task and again.key_style == "go"


def test_story_task_uses_story_names() -> None:
    """A task built in Python is written with workspace_name, template and a top-level model."""
    task = Task(id="t", workspace_name="w", template="bugfix", model="opus", created_at=T0, updated_at=T0)
    doc = json.loads(encode_task(task))
    assert list(doc)[:4] == ["id", "workspace_name", "template", "description"]
    assert doc["model"] == "opus" and "workspace_id" not in doc and doc["config"] == {}


def test_with_key_style_go_writes_go_names() -> None:
    """A story task restyled to Go is written as the Go ATLAS would write it."""
    task = Task(id="t", workspace_name="w", template="bugfix", model="opus").with_key_style("go")
    doc = json.loads(encode_task(task))
    assert (doc["workspace_id"], doc["template_id"], doc["config"]) == ("w", "bugfix", {"model": "opus"})
    assert "model" not in doc
    assert task.config.model == ""  # encoding does not change the task


# --- layout and omitempty -------------------------------------------------------------------------------------------


def test_empty_task_layout() -> None:
    """An empty task is written exactly like Go's MarshalIndent: always-written keys only, zero times, no newline."""
    expected = (
        "{\n"
        '  "id": "",\n'
        '  "workspace_name": "",\n'
        '  "template": "",\n'
        '  "description": "",\n'
        '  "status": "pending",\n'
        '  "current_step": 0,\n'
        '  "steps": [],\n'
        '  "created_at": "0001-01-01T00:00:00Z",\n'
        '  "updated_at": "0001-01-01T00:00:00Z",\n'
        '  "config": {},\n'
        '  "schema_version": "1.0"\n'
        "}"
    )
    assert encode_task(Task()).decode() == expected


def test_empty_workspace_layout() -> None:
    """An empty workspace has its always-written keys, an empty tasks list and an int schema_version."""
    doc = json.loads(encode_workspace(Workspace()))
    assert list(doc) == [
        "name",
        "path",
        "worktree_path",
        "branch",
        "status",
        "tasks",
        "created_at",
        "updated_at",
        "schema_version",
    ]
    assert doc["tasks"] == [] and doc["schema_version"] == WORKSPACE_SCHEMA_VERSION == 1


def test_omitempty_fields_written_when_set() -> None:
    """Optional fields appear, in declaration order, once they hold a value."""
    task = Task(
        step_results=[StepResult(step_name="a", output="ok", num_turns=3)],
        model="opus",
        completed_at=T0,
        metadata={"k": 1},
        running_processes=[42],
        revision=2,
        config=TaskConfig(timeout=timedelta(minutes=30), variables={"a": "b"}),
    )
    doc = json.loads(encode_task(task))
    assert list(doc) == [
        "id",
        "workspace_name",
        "template",
        "description",
        "status",
        "current_step",
        "steps",
        "step_results",
        "model",
        "created_at",
        "updated_at",
        "completed_at",
        "config",
        "metadata",
        "running_processes",
        "revision",
        "schema_version",
    ]
    assert doc["config"] == {"timeout": 1_800_000_000_000, "variables": {"a": "b"}}
    result = doc["step_results"][0]
    assert list(result) == [
        "step_index",
        "step_name",
        "status",
        "started_at",
        "completed_at",
        "duration_ms",
        "output",
        "num_turns",
    ]


def test_step_omits_empty_fields_but_keeps_attempts() -> None:
    """A fresh step writes name, type, status and attempts only (attempts 0 included, like Go)."""
    doc = json.loads(encode_task(Task(steps=[Step(name="a", type="ai")])))
    assert doc["steps"] == [{"name": "a", "type": "ai", "status": "pending", "attempts": 0}]


def test_zero_duration_and_false_are_omitted() -> None:
    """A zero timeout and a false recommended flag are omitted as Go's omitempty does."""
    task = Task(config=TaskConfig(timeout=timedelta(0)))
    assert json.loads(encode_task(task))["config"] == {}


def test_task_ref_omits_missing_times() -> None:
    """Workspace task entries omit started_at/completed_at when unset."""
    ws = Workspace(tasks=[TaskRef(id="t", status=TaskStatus.PENDING)])
    assert json.loads(encode_workspace(ws))["tasks"] == [{"id": "t", "status": "pending"}]


def test_html_and_line_separator_escapes() -> None:
    """<, >, & and U+2028/U+2029 are escaped as Go escapes them; other non-ASCII stays raw UTF-8."""
    raw = encode_task(Task(description="a<b>&c\u2028d\u2029é😀"))
    assert b'"a\\u003cb\\u003e\\u0026c\\u2028d\\u2029' + "é😀".encode() + b'"' in raw
    assert decode_task(raw).description == "a<b>&c\u2028d\u2029é😀"


def test_control_characters_escaped() -> None:
    """Newlines, tabs and other control characters are JSON-escaped."""
    raw = encode_task(Task(description="a\nb\tc\x01"))
    assert b'"a\\nb\\tc\\u0001"' in raw


def test_map_keys_are_sorted() -> None:
    """Metadata and variables are written with sorted keys (nested too), as Go writes maps."""
    task = Task(metadata={"b": 1, "a": {"z": 1, "y": 2}}, config=TaskConfig(variables={"y": "1", "x": "2"}))
    raw = encode_task(task).decode()
    assert raw.index('"a"') < raw.index('"b"') and raw.index('"y": 2') < raw.index('"z": 1')
    assert raw.index('"x"') < raw.index('"y": "1"')
    assert list(task.metadata) == ["b", "a"]  # the task itself is not reordered


def test_encoding_does_not_change_task() -> None:
    """Encoding is read-only: the task equals its deep copy taken before."""
    task = decode_task(STORY_COMPLETED.read_bytes())
    before = task.model_copy(deep=True)
    encode_task(task)
    assert task == before


# --- unknown keys -------------------------------------------------------------------------------------------------


def test_unknown_keys_survive_at_every_level() -> None:
    """Unknown keys at the top level, in a step, a result, an option, config and a transition are written back."""
    doc: dict[str, Any] = {
        "id": "t",
        "steps": [{"name": "a", "attempts": 1, "x_step": [1]}],
        "step_results": [{"step_name": "a", "approval_options": [{"key": "k", "x_opt": True}], "x_res": 1}],
        "transitions": [{"from_status": "pending", "to_status": "running", "x_tr": "v"}],
        "config": {"model": "m", "x_cfg": {"deep": None}},
        "x_top": {"x": 1},
    }
    out = json.loads(encode_task(decode_task(json.dumps(doc))))
    assert out["x_top"] == {"x": 1} and list(out)[-1] == "x_top"
    assert out["steps"][0]["x_step"] == [1]
    assert out["step_results"][0]["x_res"] == 1
    assert out["step_results"][0]["approval_options"][0]["x_opt"] is True
    assert out["transitions"][0]["x_tr"] == "v"
    assert out["config"]["x_cfg"] == {"deep": None}


def test_empty_unknown_keys_are_not_dropped() -> None:
    """An unknown key with an empty value is kept: omitempty applies only to declared fields."""
    out = json.loads(encode_task(decode_task(b'{"x_empty": "", "x_list": [], "x_none": null}')))
    assert (out["x_empty"], out["x_list"], out["x_none"]) == ("", [], None)


def test_unknown_workspace_keys_survive() -> None:
    """A workspace keeps unknown keys too."""
    out = json.loads(encode_workspace(decode_workspace(b'{"name": "w", "x_new": 5}')))
    assert out["x_new"] == 5


# --- schema versions ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [None, "", "1", "1.0", "1.7", "1.x", 1])
def test_task_schema_versions_accepted(version: object) -> None:
    """Missing, empty and any 1.x version (also the int 1) are read."""
    doc: dict[str, Any] = {"id": "t"}
    if version is not None:
        doc["schema_version"] = version
    assert decode_task(json.dumps(doc)).id == "t"


@pytest.mark.parametrize("version", ["2.0", "2", 2, "10.1"])
def test_newer_task_schema_refused(version: object) -> None:
    """A major version above 1 raises SchemaVersionError naming the file and both versions."""
    with pytest.raises(SchemaVersionError) as info:
        decode_task(json.dumps({"schema_version": version}), path="/h/task.json")
    assert (info.value.path, info.value.found, info.value.supported) == ("/h/task.json", str(version), "1.x")


@pytest.mark.parametrize("version", ["abc", "v1", "1.", "1.0 ", True, 1.5, [1]])
def test_garbage_schema_version_is_value_error(version: object) -> None:
    """A schema_version that is not a version is a ValueError, not a crash or a silent accept."""
    with pytest.raises(ValueError, match="schema_version"):
        decode_task(json.dumps({"schema_version": version}))


@pytest.mark.parametrize("version", [1, "1", "1.0"])
def test_workspace_schema_versions_accepted(version: object) -> None:
    """Workspace version 1 is read as an int or a string, and written back as the int 1."""
    ws = decode_workspace(json.dumps({"name": "w", "schema_version": version}))
    assert ws.schema_version == 1
    assert json.loads(encode_workspace(ws))["schema_version"] == 1


def test_newer_workspace_schema_refused() -> None:
    """A workspace.json of version 2 is refused with SchemaVersionError."""
    with pytest.raises(SchemaVersionError):
        decode_workspace(b'{"schema_version": 2}')


def test_new_task_is_written_with_current_version() -> None:
    """A task without a version in the file, or built in Python, is written as version 1.0."""
    assert SCHEMA_VERSION == "1.0"
    assert json.loads(encode_task(decode_task(b"{}")))["schema_version"] == SCHEMA_VERSION


def test_migrations_applied_from_file_major(monkeypatch: pytest.MonkeyPatch) -> None:
    """Migrations whose from_major is at least the file's major run in order; older ones are skipped."""
    calls: list[int] = []

    def step(n: int) -> Any:
        def upgrade(raw: dict[str, Any]) -> dict[str, Any]:
            calls.append(n)
            return {**raw, "description": raw.get("description", "") + str(n)}

        return upgrade

    monkeypatch.setattr(_codec, "MIGRATIONS", [(0, step(0)), (1, step(1)), (1, step(2))])
    task = decode_task(b'{"schema_version": "1.0"}')
    assert calls == [1, 2] and task.description == "12"


# --- errors ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"{", b"{'a': 1}", b'{"a": 1,}', b"\xff\xfe", b'{"a": NaN}', b"[" * 5000])
def test_invalid_json_is_value_error(data: bytes) -> None:
    """Unparseable input raises ValueError that names the file."""
    with pytest.raises(ValueError, match=r"^/x/task.json: invalid JSON"):
        decode_task(data, path="/x/task.json")


@pytest.mark.parametrize("data", [b"[]", b'"task"', b"3", b"null"])
def test_non_object_is_value_error(data: bytes) -> None:
    """A JSON document that is not an object is refused."""
    with pytest.raises(ValueError, match="expected a JSON object"):
        decode_task(data)


def test_invalid_field_is_short_value_error() -> None:
    """A wrong field type is a ValueError whose message names the field, without pydantic's URLs."""
    with pytest.raises(ValueError, match=r"steps\.0\.attempts") as info:
        decode_task(b'{"steps": [{"attempts": "many"}]}', path="t.json")
    assert "errors.pydantic.dev" not in str(info.value) and str(info.value).startswith("t.json: invalid task")


def test_invalid_time_is_value_error() -> None:
    """A malformed time in a document is a ValueError naming the field."""
    with pytest.raises(ValueError, match="created_at"):
        decode_task(b'{"created_at": "yesterday"}')


def test_decode_accepts_str() -> None:
    """decode_task takes text as well as bytes."""
    assert decode_task('{"id": "é"}').id == "é"


# --- property -------------------------------------------------------------------------------------------------------


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(task=strategies.tasks())
def test_task_round_trip_property(task: Task) -> None:
    """Any task encodes, decodes to an equal task (same key style), and re-encodes to identical bytes."""
    raw = encode_task(task)
    again = decode_task(raw)
    assert again == task
    assert again.key_style == task.key_style
    assert encode_task(again) == raw


@settings(max_examples=100)
@given(ws=strategies.workspaces())
def test_workspace_round_trip_property(ws: Workspace) -> None:
    """Any workspace encodes, decodes to an equal workspace, and re-encodes to identical bytes."""
    raw = encode_workspace(ws)
    again = decode_workspace(raw)
    assert again == ws
    assert encode_workspace(again) == raw


# --- the orjson writer against the pydantic-core writer it replaced --------------------------------------------------

# Numbers where two JSON writers are most likely to differ: float spellings (exponents, subnormals, -0.0, the
# non-finite ones Go cannot carry and both write as null) and integers at and beyond 64 bits (orjson refuses those
# and the task is then written by pydantic-core whole).
_numbers = (
    st.floats()
    | st.integers()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 1e16, 1e-7, 5e-324, -0.0])
)
_values = st.recursive(
    _numbers | strategies.texts | st.booleans() | st.none(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(strategies.texts, inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(task=strategies.tasks(), extra=st.dictionaries(strategies.texts, _values, max_size=4))
def test_new_encoder_writes_the_old_encoders_bytes(task: Task, extra: dict[str, Any]) -> None:
    """encode_task (pydantic-core values written by orjson) is byte-identical to pydantic-core's own writer."""
    task.metadata.update(extra)
    assert encode_task(task) == _codec._pydantic_go_json(task)


@settings(max_examples=100)
@given(ws=strategies.workspaces())
def test_new_encoder_writes_the_old_workspace_bytes(ws: Workspace) -> None:
    """encode_workspace is byte-identical to pydantic-core's own writer."""
    assert encode_workspace(ws) == _codec._pydantic_go_json(ws)


@pytest.mark.parametrize("big", [2**64, -(2**63) - 1, 10**30])
def test_integer_beyond_64_bits_is_written_exactly(big: int) -> None:
    """An integer orjson cannot write is still written exactly (by pydantic-core) and reads back as itself."""
    task = Task(id="t", metadata={"n": big, "s": "<&>"})
    raw = encode_task(task)
    assert raw == _codec._pydantic_go_json(task)
    assert f'"n": {big}'.encode() in raw
    assert decode_task(raw).metadata["n"] == big


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(task=strategies.tasks(), extra=st.dictionaries(strategies.texts, _values, max_size=3))
def test_decoding_just_encoded_bytes_equals_parsing_them(task: Task, extra: dict[str, Any]) -> None:
    """Decoding the bytes encode_task just returned (its values kept) gives what parsing a copy of them gives."""
    task.metadata.update(extra)
    raw = encode_task(task)
    from_values = decode_task(raw)
    parsed = decode_task(bytes(bytearray(raw)))  # another object: parsed from the text
    assert from_values == parsed
    assert from_values.key_style == parsed.key_style
    assert encode_task(from_values) == raw


def test_decoded_copy_shares_nothing_with_the_encoded_task() -> None:
    """The task decoded from just-encoded bytes holds no container of the task that was encoded."""
    task = Task(id="t", metadata={"list": [1, {"deep": [2]}]}, extra_key={"inner": [3]})  # type: ignore[call-arg]
    copy = decode_task(encode_task(task))
    assert copy.metadata == task.metadata
    assert copy.metadata["list"] is not task.metadata["list"]
    assert copy.metadata["list"][1] is not task.metadata["list"][1]
    assert copy.__pydantic_extra__["extra_key"] is not task.__pydantic_extra__["extra_key"]  # type: ignore[index]


def test_kept_values_serve_one_decode_only() -> None:
    """A second decode of the same bytes parses them again: two decoded tasks never share a container."""
    raw = encode_task(Task(id="t", metadata={"list": [1, 2]}))
    first, second = decode_task(raw), decode_task(raw)
    assert first == second
    assert first.metadata["list"] is not second.metadata["list"]
