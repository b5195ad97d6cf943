"""Deeply nested JSON (deeper than Python's parser follows) is damaged data on every read path, never a RecursionError.

The Go ATLAS's encoder accepts nesting up to 10,000 levels, so a log line or document that deep can reach the store.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from atlas_tasks import CorruptLogError, CorruptTaskError, FileStore, InvalidLogEntryError, Task
from atlas_tasks.documents.logs import parse_log
from atlas_tasks.templates import TemplateError, load_template
from atlas_tasks.testing.conformance import sample_task

DEEP = "[" * 5000 + "]" * 5000


def log_file(store: FileStore, ws: str, task: Task) -> Path:
    return store.task_path(ws, task.id) / "task.log"


def test_deep_log_line_in_the_middle_is_reported(store: FileStore, ws: str, task: Task) -> None:
    """A deep line between intact ones is one CorruptLogError; the intact lines are read."""
    store.append_log(ws, task.id, {"n": 1})
    with log_file(store, ws, task).open("a") as f:
        f.write(DEEP + "\n")
    store.append_log(ws, task.id, {"n": 2})
    lines = store.read_log(ws, task.id)
    assert [line["n"] for line in lines] == [1, 2]
    assert [(type(e), e.line_number) for e in lines.errors] == [(CorruptLogError, 2)]
    assert "nested too deeply" in lines.errors[0].reason


def test_deep_final_line_is_damaged_not_torn(store: FileStore, ws: str, task: Task) -> None:
    """A complete deep final line is reported as damaged, never taken for a torn tail that doctor --fix would cut."""
    store.append_log(ws, task.id, {"n": 1})
    with log_file(store, ws, task).open("a") as f:
        f.write(DEEP + "\n")
    lines = store.read_log(ws, task.id)
    assert (lines.torn_tail, len(lines.errors)) == (False, 1)
    report = store.check(fix=True)
    assert [(f.kind, f.fixed) for f in report.findings] == [("damaged_log", False)]
    assert log_file(store, ws, task).read_text().endswith(DEEP + "\n")


def test_parse_log_reports_deep_lines() -> None:
    """parse_log (used by the dashboard and `logs --follow`) reports a deep line instead of raising."""
    lines = parse_log(f'{DEEP}\n{{"a": 1}}\n'.encode(), "ws", "t", "task.log")
    assert list(lines) == [{"a": 1}]
    assert len(lines.errors) == 1


@pytest.mark.parametrize("entry", [DEEP, DEEP.encode()])
def test_append_log_refuses_a_deep_line(store: FileStore, ws: str, task: Task, entry: str | bytes) -> None:
    """append_log of a deep JSON line raises InvalidLogEntryError and writes nothing."""
    with pytest.raises(InvalidLogEntryError, match="nested too deeply"):
        store.append_log(ws, task.id, entry)
    assert not log_file(store, ws, task).exists()


def test_append_log_refuses_a_deep_mapping(store: FileStore, ws: str, task: Task) -> None:
    """append_log of a mapping nested too deeply to encode raises InvalidLogEntryError."""
    value: object = []
    for _ in range(5000):
        value = [value]
    with pytest.raises(InvalidLogEntryError, match="nested too deeply"):
        store.append_log(ws, task.id, {"deep": value})


@pytest.mark.parametrize("how", ["list_summaries", "list_limit"])
def test_deep_task_json_is_one_corrupt_task_in_listings(store: FileStore, ws: str, how: str) -> None:
    """A task.json nested 2,000 deep is one CorruptTaskError in list_summaries and list(limit=); the rest listed."""
    good = store.create(ws, sample_task(id="task-good"))
    bad = store.create(ws, sample_task(id="task-bad"))
    (store.task_path(ws, bad.id) / "task.json").write_text('{"metadata": ' + "[" * 2000 + "]" * 2000 + "}")
    listed = store.list_summaries(ws) if how == "list_summaries" else store.list(ws, limit=5)
    assert [t.id for t in listed] == [good.id]
    assert [(type(e), e.task_id) for e in listed.errors] == [(CorruptTaskError, bad.id)]


def test_doctor_reports_a_deep_log_line(store: FileStore, ws: str, task: Task) -> None:
    """doctor checks the whole store past a deep log line, reporting it as damaged_log."""
    store.create(ws, sample_task(id="task-other"))
    with log_file(store, ws, task).open("a") as f:
        f.write(DEEP + "\n")
    store.append_log(ws, task.id, {"after": True})
    report = store.check()
    assert report.tasks_checked == 2
    assert [(f.kind, f.task_id) for f in report.findings] == [("damaged_log", task.id)]


def test_deep_template_is_an_invalid_template(home: Path) -> None:
    """A user template nested too deeply is a TemplateError, as any invalid template file."""
    (home / "templates").mkdir(parents=True)
    (home / "templates" / "deep.json").write_text(DEEP)
    with pytest.raises(TemplateError, match="not a valid template"):
        load_template(home, "deep")
