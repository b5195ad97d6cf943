"""The command line meets tombstones: a deleted task says it was deleted, and its id stays retired."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner, Result

from atlas_tasks import FileStore, Task
from atlas_tasks.cli import app
from atlas_tasks.retention.bundle import export_tasks
from atlas_tasks.store import Store
from store_kinds import cli_args

STORE_KINDS = ("memory", "file", "postgres")


def cli(store: Store, *args: str) -> Result:
    return CliRunner().invoke(app, [*cli_args(store), *args])


def one_error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr.removeprefix("error: ").rstrip("\n")


def test_show_of_a_deleted_task_says_when_it_was_deleted(store: Store) -> None:
    """`show` of a task `delete` removed is one error line saying it was deleted, and when (its tombstone)."""
    store.create_workspace("w")
    task_id = store.create("w", Task(description="short-lived")).id
    assert cli(store, "delete", "w", task_id, "--yes").exit_code == 0
    stone = store.tombstone("w", task_id)  # type: ignore[attr-defined]
    message = one_error_line(cli(store, "show", "w", task_id))
    assert f"was deleted at {stone.deleted_at} (tombstone)" in message, message


def test_import_of_another_task_under_a_deleted_id_is_one_error_line(store: Store, tmp_path: Path) -> None:
    """`import` of a bundle whose task reuses a deleted id is one error line suggesting --as-new-id; nothing lands."""
    store.create_workspace("w")
    task_id = store.create("w", Task(description="the first")).id
    elsewhere = FileStore(tmp_path / "elsewhere")
    elsewhere.create_workspace("w")
    elsewhere.create("w", Task(id=task_id, description="another task, same id"))
    export_tasks(elsewhere, "w", [task_id], tmp_path / "other.tar")
    assert cli(store, "delete", "w", task_id, "--yes").exit_code == 0
    message = one_error_line(cli(store, "import", str(tmp_path / "other.tar")))
    assert "retired" in message and "--as-new-id" in message, message
    assert store.list("w") == []
