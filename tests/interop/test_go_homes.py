"""Homes written by the Go ATLAS (story-era and current) load, list, update and take new artifacts correctly."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from atlas_tasks import FileStore, TaskStatus
from atlas_tasks.ids import TIMESTAMP_ID_RE, UUID_ID_RE, timestamp_candidates
from atlas_tasks.testing.conformance import sample_task

FIXTURES = Path(__file__).parent.parent / "fixtures" / "go"
STORY_TASK = "task-20251228-100000"
HEAD_AWAITING = "task-b7e4a2d9-1c3f-4a8e-9b5d-2e7f6c0d8a41"


@pytest.fixture
def story_home(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / "story-home", tmp_path / "story-home"))


@pytest.fixture
def head_home(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / "head-home", tmp_path / "head-home"))


def test_story_home_lists_every_task_newest_first(story_home: Path) -> None:
    """All three story-era tasks list, newest first by created_at, with no errors."""
    listed = FileStore(story_home).list("payments")
    assert [t.id for t in listed] == ["task-20251229-090000", "task-20251228-100000", "task-20251228-100000-123"]
    assert listed.errors == []


def test_story_task_fields_read(story_home: Path) -> None:
    """Go's key names (workspace_id, template_id, config.model) land in the story's fields."""
    task = FileStore(story_home).get("payments", STORY_TASK)
    assert task.workspace_name == "payments"
    assert task.template == "bugfix"
    assert task.model == task.config.model != ""
    assert task.status == TaskStatus.COMPLETED
    assert task.key_style == "go"


def test_null_steps_load(story_home: Path) -> None:
    """A task written with "steps": null (a nil slice in Go) loads with no steps."""
    assert FileStore(story_home).get("payments", "task-20251229-090000").steps == []


def test_update_keeps_go_key_names(story_home: Path) -> None:
    """After we update a Go-written task, its file still uses Go's key names, so the Go ATLAS reads it fully."""
    store = FileStore(story_home)
    task = store.get("payments", "task-20251228-100000-123")
    task.metadata["note"] = "touched by python"
    store.update("payments", task)
    doc = json.loads((store.task_path("payments", task.id) / "task.json").read_text())
    assert doc["workspace_id"] == "payments" and "workspace_name" not in doc
    assert doc["template_id"] == task.template and "template" not in doc
    assert "model" not in doc and doc["config"]["model"] == task.model
    assert doc["metadata"]["note"] == "touched by python"
    assert isinstance(doc["config"].get("timeout", 0), int)


def test_unchanged_round_trip_is_byte_identical(story_home: Path, head_home: Path) -> None:
    """Reading and re-encoding an untouched Go task gives Go's exact bytes (times to the nanosecond, escapes)."""
    from atlas_tasks._codec import encode_task

    for path in [*story_home.rglob("task.json"), *head_home.rglob("task.json")]:
        raw = path.read_bytes()
        if b'"steps": null' in raw:
            continue  # null becomes [] (documented): the one intended difference
        store = FileStore(path.parents[4])
        task = store.get(path.parents[2].name, path.parent.name)
        assert encode_task(task) == raw, path


def test_versioned_artifact_continues_go_numbering(story_home: Path) -> None:
    """With validation.1/.2.json written by Go, the next version is validation.3.json and Go's files are intact."""
    store = FileStore(story_home)
    before = store.get_artifact("payments", STORY_TASK, "validation.2.json")
    assert store.save_versioned_artifact("payments", STORY_TASK, "validation.json", b"{}") == "validation.3.json"
    assert store.get_artifact("payments", STORY_TASK, "validation.2.json") == before
    assert store.list_artifacts("payments", STORY_TASK) == [f"validation.{i}.json" for i in (1, 2, 3)]


def test_go_log_reads(story_home: Path) -> None:
    """The Go task.log (zerolog JSON lines) reads back whole."""
    lines = FileStore(story_home).read_log("payments", STORY_TASK)
    assert [line["event"] for line in lines] == ["step started", "step completed", "validation failed"]


def test_head_home_reads_uuid_tasks_and_subdir_artifacts(head_home: Path) -> None:
    """Current-Go homes: uuid ids list, HEAD-only fields load, and sdd/ artifacts are listed."""
    store = FileStore(head_home)
    listed = store.list("api")
    assert len(listed) == 2 and listed.errors == []
    assert all(UUID_ID_RE.fullmatch(t.id) for t in listed)
    artifacts = {t.id: store.list_artifacts("api", t.id) for t in listed}
    assert ["sdd/spec.md"] in artifacts.values()


def test_unknown_keys_survive_update(head_home: Path) -> None:
    """Keys this library does not know (a newer Go's fields) are written back unchanged on update."""
    store = FileStore(head_home)
    path = store.task_path("api", HEAD_AWAITING) / "task.json"
    before = json.loads(path.read_text())
    unknown_top = {k for k in before if k not in type(store.get("api", HEAD_AWAITING)).model_fields}
    assert unknown_top, "the fixture should carry a key the model does not know"
    task = store.get("api", HEAD_AWAITING)
    task.description += " (edited)"
    store.update("api", task)
    after = json.loads(path.read_text())
    for key in unknown_top:
        assert after[key] == before[key]


# -- ids (issue: task ids every Go ATLAS can list) ----------------------------------------------------------------
def test_uuid_workspace_gets_uuid_ids(head_home: Path) -> None:
    """In a workspace the current Go ATLAS manages (uuid ids), new tasks get task-<uuid4> ids by default."""
    created = FileStore(head_home).create("api", sample_task())
    assert UUID_ID_RE.fullmatch(created.id) and len(created.id) == 41


def test_forced_timestamp_style(head_home: Path) -> None:
    """id_style="timestamp" gives story ids even in a uuid workspace, and listing mixes both kinds by time."""
    store = FileStore(head_home, id_style="timestamp")
    created = store.create("api", sample_task())
    assert TIMESTAMP_ID_RE.fullmatch(created.id)
    listed = store.list("api")
    assert listed[0].id == created.id and len(listed) == 3


def test_forced_uuid_style(tmp_path: Path) -> None:
    """id_style="uuid" gives uuid4 ids in a fresh workspace."""
    store = FileStore(tmp_path, id_style="uuid")
    store.create_workspace("w")
    assert UUID_ID_RE.fullmatch(store.create("w", sample_task()).id)


def test_story_workspace_keeps_timestamp_ids(story_home: Path) -> None:
    """A workspace with timestamp ids keeps getting timestamp ids."""
    assert TIMESTAMP_ID_RE.fullmatch(FileStore(story_home).create("payments", sample_task()).id)


def test_collision_suffixes_are_three_digits() -> None:
    """After task-YYYYMMDD-HHMMSS, candidates are -NNN starting at the millisecond, all in the story-era pattern."""
    now = datetime(2026, 11, 25, 10, 15, 0, 998_000, tzinfo=UTC)
    candidates = list(timestamp_candidates(now))
    assert candidates[:4] == [
        "task-20261125-101500",
        "task-20261125-101500-998",
        "task-20261125-101500-999",
        "task-20261125-101500-000",
    ]
    assert len(set(candidates)) == 1001
    go_story_list = re.compile(r"^task-\d{8}-\d{6}(-\d{3})?$")
    assert all(go_story_list.match(c) for c in candidates)


def test_workspace_json_stays_go_format(story_home: Path) -> None:
    """With task_refs="all", a create in a Go workspace adds a TaskRef and keeps workspace.json's int schema_version."""
    store = FileStore(story_home, task_refs="all")
    created = store.create("payments", sample_task())
    doc = json.loads((story_home / "workspaces" / "payments" / "workspace.json").read_text())
    assert doc["schema_version"] == 1
    assert created.id in [ref["id"] for ref in doc["tasks"]]
    assert len(doc["tasks"]) == 4


def test_default_create_leaves_a_go_workspace_json_untouched(story_home: Path) -> None:
    """By default a create in a story-era Go workspace leaves its workspace.json (refs and all) byte for byte."""
    path = story_home / "workspaces" / "payments" / "workspace.json"
    before = path.read_bytes()
    FileStore(story_home).create("payments", sample_task())
    assert path.read_bytes() == before


def test_crashed_go_run_is_interrupted_and_resumes(story_home: Path) -> None:
    """A Go task left running by a dead engine (no lease, no write for 5+ minutes) is interrupted and resumable."""
    from atlas_tasks.runs import is_interrupted, recover

    store = FileStore(story_home)
    crashed = store.get("payments", "task-20251228-100000-123")
    assert crashed.status == TaskStatus.RUNNING
    assert is_interrupted(store, "payments", crashed)
    (recovered,) = recover(store, "payments")
    assert recovered.id == crashed.id and recovered.status == TaskStatus.INTERRUPTED
    doc = json.loads((store.task_path("payments", crashed.id) / "task.json").read_text())
    assert doc["status"] == "interrupted" and "workspace_id" in doc


def test_recently_written_go_run_is_not_called_crashed(story_home: Path) -> None:
    """A Go task updated moments ago may have a live Go engine (which takes no lease of ours): not interrupted."""
    from atlas_tasks.models import utcnow
    from atlas_tasks.runs import is_interrupted

    store = FileStore(story_home)
    task = store.get("payments", "task-20251228-100000-123")
    task.updated_at = utcnow()
    assert not is_interrupted(store, "payments", task)


GO_LIST = {  # the task directories each Go era's task store List shows (../shared/formats/atlas-go.md §4)
    "story": re.compile(r"^task-\d{8}-\d{6}(-\d{3})?$"),
    "head": re.compile(r"^task-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"),
}


def go_list(home: Path, workspace: str, era: str) -> dict[str, str]:
    """What the Go ATLAS's List returns, as id -> status: matching directories whose task.json decodes, refs unused."""
    listed = {}
    for entry in sorted((home / "workspaces" / workspace / "tasks").iterdir()):
        if GO_LIST[era].match(entry.name) and (entry / "task.json").is_file():
            doc = json.loads((entry / "task.json").read_text())
            listed[doc["id"]] = doc["status"]
    return listed


@pytest.mark.parametrize("task_refs", ["existing", "all"])
@pytest.mark.parametrize(("era", "workspace"), [("story", "payments"), ("head", "api")])
def test_go_list_shows_our_new_task_with_or_without_its_ref(
    story_home: Path, head_home: Path, era: str, workspace: str, task_refs: str
) -> None:
    """A task we create in a Go workspace is listed and read by that Go era's List, whether or not it got a ref."""
    home = story_home if era == "story" else head_home
    store = FileStore(home, task_refs=task_refs)  # type: ignore[arg-type]
    before = go_list(home, workspace, era)
    created = store.create(workspace, sample_task())
    refs = [r["id"] for r in json.loads((home / "workspaces" / workspace / "workspace.json").read_text())["tasks"]]
    assert (created.id in refs) == (task_refs == "all")
    assert go_list(home, workspace, era) == {**before, created.id: "running"}
