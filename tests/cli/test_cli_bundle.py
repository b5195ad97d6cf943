"""`atlas-tasks export` and `atlas-tasks import`: bundles from the command line, on every store."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from atlas_tasks.cli import app
from atlas_tasks.store import Store
from atlas_tasks.testing.conformance import sample_task
from store_kinds import cli_args

pytestmark = pytest.mark.stores("file", "memory", "postgres")


def cli(store: Store, *args: str) -> Result:
    return CliRunner().invoke(app, [*cli_args(store), *args])


def _task(store: Store) -> str:
    store.create_workspace("w", exist_ok=True)
    task = store.create("w", sample_task())
    store.append_log("w", task.id, {"event": "hello"})
    store.save_artifact("w", task.id, "notes.txt", "kept\n")
    return task.id


def test_export_json_document_and_import_json_document(store: Store, tmp_path: Path) -> None:
    """`export --json` and `import --json` print one document each, with the keys docs/cli.md lists."""
    task_id = _task(store)
    out = tmp_path / "b.tgz"
    exported = cli(store, "export", "w", "latest", "-o", str(out), "--json")
    assert exported.exit_code == 0, exported.output
    doc = json.loads(exported.stdout)
    assert doc["tasks"] == [task_id] and doc["files"] == 4 and doc["bundle_bytes"] == out.stat().st_size
    assert set(doc) == {
        "path", "workspace", "tasks", "files", "content_bytes", "bundle_bytes", "manifest_sha256", "seconds",
        "warnings",
    }  # fmt: skip
    imported = cli(store, "import", str(out), "--workspace", "copy", "--json")
    assert imported.exit_code == 0, imported.output
    doc2 = json.loads(imported.stdout)
    assert doc2["workspace"] == "copy" and doc2["tasks"] == [{"original_id": task_id, "id": task_id}]
    assert doc2["manifest_sha256"] == doc["manifest_sha256"] and doc2["workspace_created"] is True
    assert store.get_artifact("copy", task_id, "notes.txt") == b"kept\n"


def test_export_resolves_id_fragments(store: Store, tmp_path: Path) -> None:
    """Task ids on the export command line may be unique fragments, as for every other command."""
    task_id = _task(store)
    result = cli(store, "export", "w", task_id[-4:], "-o", str(tmp_path / "b.tar"))
    assert result.exit_code == 0, result.output
    with tarfile.open(tmp_path / "b.tar") as tar:
        assert f"workspaces/w/tasks/{task_id}/task.json" in tar.getnames()


def test_import_of_an_existing_id_is_one_error_line_naming_as_new_id(store: Store, tmp_path: Path) -> None:
    """Importing into the workspace the task came from fails with one `error:` line that names --as-new-id."""
    _task(store)
    cli(store, "export", "w", "latest", "-o", str(tmp_path / "b.tar"))
    result = cli(store, "import", str(tmp_path / "b.tar"))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--as-new-id" in lines[0]
    again = cli(store, "import", str(tmp_path / "b.tar"), "--as-new-id")
    assert again.exit_code == 0, again.output
    assert len(store.list("w")) == 2


def test_import_of_a_damaged_bundle_is_one_error_line(store: Store, tmp_path: Path) -> None:
    """A bundle cut short is refused with one `error:` line naming the file, and no workspace appears."""
    _task(store)
    out = tmp_path / "b.tar"
    cli(store, "export", "w", "latest", "-o", str(out))
    out.write_bytes(out.read_bytes()[:700])
    result = cli(store, "import", str(out), "--workspace", "fresh")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: bundle {out}")
    assert "fresh" not in [ws.name for ws in store.list_workspaces()]


def test_running_an_import_again_says_which_tasks_it_already_imported(store: Store, tmp_path: Path) -> None:
    """The same import run twice exits 0 both times; the second names each task as already imported."""
    task_id = _task(store)
    cli(store, "export", "w", "latest", "-o", str(tmp_path / "b.tar"))
    first = cli(store, "import", str(tmp_path / "b.tar"), "--workspace", "copy")
    assert first.exit_code == 0 and first.stdout.strip() == f"imported {task_id} into workspace copy"
    second = cli(store, "import", str(tmp_path / "b.tar"), "--workspace", "copy", "--json")
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["tasks"] == [{"original_id": task_id, "id": task_id, "already_imported": True}]
    assert [t.id for t in store.list("copy")] == [task_id]


def test_import_over_max_size_is_one_error_line(store: Store, tmp_path: Path) -> None:
    """--max-size below the bundle's content refuses it with one `error:` line, and nothing is imported."""
    _task(store)
    cli(store, "export", "w", "latest", "-o", str(tmp_path / "b.tar"))
    result = cli(store, "import", str(tmp_path / "b.tar"), "--workspace", "copy", "--max-size", "100")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--max-size" in lines[0]
    assert "copy" not in [ws.name for ws in store.list_workspaces()]
    bad = cli(store, "import", str(tmp_path / "b.tar"), "--max-size", "lots")
    assert bad.exit_code == 2 and "--max-size" in bad.output
